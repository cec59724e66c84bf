//! The flood generator itself: paced UDP arrives at the rate asked, spoofed
//! sources are spread over the prefix, and TCP SYNs carry valid checksums
//! (the receiving kernel answers them with RSTs instead of counting
//! checksum errors). Root tier.

use std::time::Duration;

use dockfw_tests::{
    netns::{NetNs, VethPair},
    traffic::UdpCounter,
    trafficgen::{Flood, FloodKind, Generator, mac_of},
};

fn snmp(ns: &NetNs, proto: &str, field: &str) -> u64 {
    let output = ns.run_ok("read /proc/net/snmp", "cat", &["/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text
        .lines()
        .filter(|line| line.starts_with(&format!("{proto}:")));
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        panic!("no {proto} lines in /proc/net/snmp");
    };
    let index = header
        .split_whitespace()
        .position(|name| name == field)
        .unwrap_or_else(|| panic!("no {field}"));
    values
        .split_whitespace()
        .nth(index)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_generator_sends_paced_valid_frames() {
    let gen_ns = NetNs::new("gen-src");
    let recv_ns = NetNs::new("gen-dst");
    let _veth = VethPair::new(
        &gen_ns,
        "gen0",
        &["10.79.0.1/24"],
        &recv_ns,
        "recv0",
        &["10.79.0.2/24"],
    );
    // veth runs NAPI on the receiving side only with GRO on (or XDP).
    recv_ns.run_ok("enable GRO", "ethtool", &["-K", "recv0", "gro", "on"]);
    let mut flood = Flood {
        kind: FloodKind::Udp,
        src: "10.79.0.1".parse().unwrap(),
        random_src_bits: 0,
        random_sport: false,
        dst: "10.79.0.2".parse().unwrap(),
        dport: 7777,
        dst_mac: mac_of(&recv_ns, "recv0"),
        src_mac: mac_of(&gen_ns, "gen0"),
        rate_pps: Some(20_000),
    };
    let mut generator = Generator::new(&flood);
    let ifindex = {
        let _inside = gen_ns.enter();
        dockfw::dataplane::attach::ifindex("gen0").expect("gen0 exists")
    };

    let receiver = UdpCounter::start(&recv_ns, "0.0.0.0", 7777, 6.0);
    let stats = {
        let _inside = gen_ns.enter();
        generator.run(ifindex, 10_000, Duration::from_secs(5))
    };
    let counts = receiver.counts();
    assert_eq!(stats.sent, 10_000, "{stats:?}");
    // Pacing caps the rate (its burst allowance is 20 ms worth). On an idle
    // machine it also reaches the rate; a loaded one may run slower, so
    // only the cap is asserted.
    let rate = stats.pps();
    assert!(rate < 30_000.0, "paced at {rate:.0} pps, asked 20,000");
    assert!(stats.held_back > 0, "pacing held frames back: {stats:?}");
    let received = counts.get("10.79.0.1").copied().unwrap_or(0);
    assert!(received >= 9_900, "{received} of 10,000 arrived");

    // TCP SYNs from a spoofed /24 to a closed port: valid checksums mean
    // RSTs, not checksum errors.
    flood.kind = FloodKind::TcpSyn;
    flood.random_src_bits = 8;
    flood.rate_pps = Some(10_000);
    generator.configure(&flood);
    let errors_before = snmp(&recv_ns, "Tcp", "InCsumErrors");
    let rsts_before = snmp(&recv_ns, "Tcp", "OutRsts");
    let stats = {
        let _inside = gen_ns.enter();
        generator.run(ifindex, 2_000, Duration::from_secs(5))
    };
    assert_eq!(stats.sent, 2_000);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        snmp(&recv_ns, "Tcp", "InCsumErrors"),
        errors_before,
        "checksums must be valid"
    );
    assert!(
        snmp(&recv_ns, "Tcp", "OutRsts") - rsts_before >= 1_900,
        "the receiver answered the SYNs"
    );
}
