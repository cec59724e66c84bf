//! The shared value grammar: addresses, TCP flags, source ports, interfaces.

use crate::policy::values::{parse_iface, parse_net, parse_source_ports, parse_tcp_flags};

#[test]
fn addresses_and_cidrs_of_both_families() {
    let ok = |text: &str| {
        parse_net(text)
            .unwrap_or_else(|message| panic!("{text}: {message}"))
            .to_string()
    };
    assert_eq!(ok("192.0.2.7"), "192.0.2.7/32");
    assert_eq!(ok(" 192.0.2.0/24 "), "192.0.2.0/24");
    assert_eq!(ok("0.0.0.0/0"), "0.0.0.0/0");
    assert_eq!(ok("2001:db8::1"), "2001:db8::1/128");
    assert_eq!(ok("2001:db8::/32"), "2001:db8::/32");
    assert_eq!(ok("::/0"), "::/0");
    assert_eq!(
        parse_net("10.0.0.1/8"),
        Err("\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?".to_owned())
    );
    assert_eq!(
        parse_net("2001:db8::1/64"),
        Err("\"2001:db8::1/64\" has host bits set; did you mean 2001:db8::/64?".to_owned())
    );
    assert_eq!(
        parse_net("2001:db8::/129"),
        Err("\"2001:db8::/129\": /129 is too long for an IPv6 prefix (at most /128)".to_owned())
    );
    for junk in [
        "foo",
        "",
        "10.0.0.0/",
        "10.0.0/8",
        "10.0.0.0/x",
        "192.0.2.1 192.0.2.2",
    ] {
        assert_eq!(
            parse_net(junk),
            Err(format!("{:?} is not an address or CIDR", junk.trim())),
            "{junk:?}"
        );
    }
}

#[test]
fn tcp_flags_are_mask_slash_value() {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    assert_eq!(parse_tcp_flags("SYN,ACK/SYN"), Ok((SYN | ACK, SYN)));
    assert_eq!(parse_tcp_flags("syn,ack/syn"), Ok((SYN | ACK, SYN)));
    assert_eq!(
        parse_tcp_flags("SYN,ACK SYN"),
        Ok((SYN | ACK, SYN)),
        "iptables spelling"
    );
    assert_eq!(
        parse_tcp_flags(" FIN, SYN, RST / NONE "),
        Ok((FIN | SYN | RST, 0))
    );
    assert_eq!(
        parse_tcp_flags("ALL/FIN,PSH,URG"),
        Ok((0xff, FIN | PSH | URG)),
        "xmas scan"
    );
    assert_eq!(parse_tcp_flags("ALL/NONE"), Ok((0xff, 0)), "null scan");
    assert_eq!(parse_tcp_flags("ECE,CWR/ECE"), Ok((0xc0, 0x40)));
    let error = |text: &str| parse_tcp_flags(text).err().unwrap_or_default();
    assert!(error("SYN").contains("is not MASK/VALUE"));
    assert!(
        error("SYN,AKC/SYN")
            .contains("unknown TCP flag \"AKC\" in tcp_flags \"SYN,AKC/SYN\"; did you mean ACK?")
    );
    assert!(error("SYN/ACK").contains("the value has flags that are not in the mask"));
    assert!(error("NONE/NONE").contains("empty mask"));
    assert!(error("SYN,/SYN").contains("unknown TCP flag \"\""));
}

#[test]
fn source_ports_are_a_port_or_a_range() {
    assert_eq!(parse_source_ports("53"), Ok((53, 53)));
    assert_eq!(parse_source_ports("0"), Ok((0, 0)));
    assert_eq!(parse_source_ports("1024-65535"), Ok((1024, 65535)));
    assert_eq!(parse_source_ports(" 1 - 2 "), Ok((1, 2)));
    assert!(parse_source_ports("65536").is_err());
    assert!(parse_source_ports("a-b").is_err());
    assert_eq!(
        parse_source_ports("9-1"),
        Err("source_ports \"9-1\" runs backwards".to_owned())
    );
}

#[test]
fn interface_names_follow_the_kernel() {
    assert_eq!(parse_iface("eth0"), Ok("eth0".to_owned()));
    assert_eq!(parse_iface("enp0s31f6.100"), Ok("enp0s31f6.100".to_owned()));
    assert!(parse_iface("").is_err());
    assert!(parse_iface("a-name-that-is-too-long").is_err());
    assert!(parse_iface("eth 0").is_err());
    assert!(parse_iface("eth*").is_err_and(|message| message.contains("wildcards")));
}
