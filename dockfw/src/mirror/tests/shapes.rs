//! One DOCKER-USER shape at a time, on a Docker 20.10 layout with a
//! remapped TCP port (8080->80), a remapped UDP port (8053->53) and a TCP
//! range (7000-7002), published on every address of a host whose addresses
//! are 192.0.2.10 and 127.0.0.1, with dockfw attached to eth0.

use std::collections::BTreeSet;

use super::{Packet, Setup, outcome, plain_ifaces, port, reasons, xdp};
use crate::{
    mirror::{Translation, report::Outcome},
    model::{Action, BindingKey, Family, Proto},
};

pub(super) const HOST: &str = "192.0.2.10";

pub(super) fn nat() -> String {
    let mut nat = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
         -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
         -A DOCKER -i docker0 -j RETURN\n\
         -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.210.60.2:80\n\
         -A DOCKER ! -i docker0 -p udp -m udp --dport 8053 -j DNAT --to-destination 10.210.60.2:53\n",
    );
    for port in 7000..=7002 {
        nat.push_str(&format!(
            "-A DOCKER ! -i docker0 -p tcp -m tcp --dport {port} -j DNAT --to-destination 10.210.60.3:{port}\n"
        ));
    }
    nat.push_str("COMMIT\n");
    nat
}

/// A save text: FORWARD jumping to DOCKER-USER, `lines` (full `-A` lines;
/// their chains are declared), `pre` lines of FORWARD before the jump, and
/// the nat table; `extra` tables are prepended.
pub(super) fn save(lines: &[&str], pre: &[&str], extra: &str) -> String {
    let mut chains: BTreeSet<&str> = BTreeSet::from(["DOCKER-USER", "DOCKER"]);
    for line in lines {
        if let Some(chain) = line
            .strip_prefix("-A ")
            .and_then(|rest| rest.split(' ').next())
        {
            chains.insert(chain);
        }
    }
    let mut text = String::from(extra);
    text.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for chain in &chains {
        text.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for line in pre {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("-A FORWARD -j DOCKER-USER\n-A FORWARD -o docker0 -j DOCKER\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("COMMIT\n");
    text.push_str(&nat());
    text
}

pub(super) fn setup(lines: &[&str]) -> Setup {
    Setup {
        v4: Some(save(lines, &[], "")),
        v6: None,
        ipsets: "create blocklist hash:net family inet\n\
                 add blocklist 198.51.100.0/24\n\
                 add blocklist 198.51.100.128/25 nomatch\n\
                 create soon hash:ip family inet timeout 60\n\
                 add soon 203.0.113.1 timeout 2\n\
                 add soon 203.0.113.2 timeout 50\n"
            .into(),
        ports: vec![
            port(Family::V4, Proto::Tcp, None, 8080, "web", "10.210.60.2", 80),
            port(Family::V4, Proto::Udp, None, 8053, "web", "10.210.60.2", 53),
            port(
                Family::V4,
                Proto::Tcp,
                None,
                7000,
                "rng",
                "10.210.60.3",
                7000,
            ),
            port(
                Family::V4,
                Proto::Tcp,
                None,
                7001,
                "rng",
                "10.210.60.3",
                7001,
            ),
            port(
                Family::V4,
                Proto::Tcp,
                None,
                7002,
                "rng",
                "10.210.60.3",
                7002,
            ),
        ],
        local: vec![HOST.parse().unwrap(), "127.0.0.1".parse().unwrap()],
        ifaces: plain_ifaces(&["eth0"]),
        rate_limits: false,
        nftables: false,
    }
}

pub(super) fn run(lines: &[&str]) -> Translation {
    setup(lines).run()
}

pub(super) fn key(port: u16, proto: Proto) -> BindingKey {
    BindingKey {
        family: Family::V4,
        proto,
        addr: Some(HOST.parse().unwrap()),
        port,
    }
}

pub(super) fn tcp(port: u16, src: &str, sport: u16, flags: u8) -> Packet {
    Packet {
        key: key(port, Proto::Tcp),
        src: src.parse().unwrap(),
        sport,
        flags: Some(flags),
        iface: "eth0".into(),
    }
}

pub(super) fn udp(port: u16, src: &str) -> Packet {
    Packet {
        key: key(port, Proto::Udp),
        src: src.parse().unwrap(),
        sport: 40000,
        flags: None,
        iface: "eth0".into(),
    }
}

pub(super) const SYN: u8 = 0x02;
pub(super) const ACK: u8 = 0x10;

pub(super) fn drops(translation: &Translation, packet: &Packet) -> bool {
    matches!(xdp(&translation.rules, packet), Some((Action::Drop, _)))
}

pub(super) fn mirrored_drop(translation: &Translation, path: &str) -> Vec<String> {
    match outcome(translation, path) {
        Outcome::Mirrored { action, ports } if action == "drop" => ports.clone(),
        other => panic!("{path}: expected a mirrored drop, got {other:?}"),
    }
}

#[test]
fn container_port_becomes_the_published_port() {
    let t = run(&["-A DOCKER-USER -p tcp -m tcp --dport 80 -j DROP"]);
    let ports = mirrored_drop(&t, "DOCKER-USER#1");
    assert_eq!(ports, ["127.0.0.1:8080/tcp", "192.0.2.10:8080/tcp"]);
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1234, SYN)));
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1234, ACK)));
    assert!(!drops(&t, &tcp(7000, "198.51.100.1", 1234, SYN)));
    assert_eq!(t.rules[0].origin.to_string(), "DOCKER-USER rule 1");
    assert_eq!(t.rules[0].name, "DOCKER-USER#1");
}

#[test]
fn the_published_port_in_dport_matches_nothing() {
    let t = run(&["-A DOCKER-USER -p tcp -m tcp --dport 8080 -j DROP"]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::NoEffect { .. }
    ));
    assert!(t.rules.is_empty());
}

#[test]
fn conntrack_original_destination_is_the_published_side() {
    let t = run(&[
        "-A DOCKER-USER -p tcp -m conntrack --ctorigdst 192.0.2.10/32 --ctorigdstport 8080 --ctdir ORIGINAL -j DROP",
        "-A DOCKER-USER -m conntrack --ctorigdstport 7001:7002 -j DROP",
    ]);
    assert_eq!(mirrored_drop(&t, "DOCKER-USER#1"), ["192.0.2.10:8080/tcp"]);
    assert_eq!(
        mirrored_drop(&t, "DOCKER-USER#2"),
        [
            "127.0.0.1:7001/tcp",
            "127.0.0.1:7002/tcp",
            "192.0.2.10:7001/tcp",
            "192.0.2.10:7002/tcp"
        ]
    );
}

#[test]
fn sources_ports_ranges_sets_and_negations() {
    let t = run(&[
        "-A DOCKER-USER -s 198.51.100.0/24 -p tcp -m multiport --dports 7000,7001 -j DROP",
        "-A DOCKER-USER ! -s 10.0.0.0/8 -p udp -m udp --dport 53 -j DROP",
        "-A DOCKER-USER -p tcp -m tcp --sport 0:1023 -j DROP",
        "-A DOCKER-USER -m iprange --src-range 192.0.2.100-192.0.2.200 -j DROP",
        "-A DOCKER-USER -m set --match-set blocklist src -j DROP",
    ]);
    for path in [
        "DOCKER-USER#1",
        "DOCKER-USER#2",
        "DOCKER-USER#3",
        "DOCKER-USER#4",
        "DOCKER-USER#5",
    ] {
        mirrored_drop(&t, path);
    }
    assert!(drops(&t, &tcp(7001, "198.51.100.7", 5000, SYN)));
    assert!(!drops(&t, &tcp(7002, "11.0.0.1", 5000, SYN)));
    assert!(drops(&t, &udp(8053, "11.0.0.1")));
    assert!(!drops(&t, &udp(8053, "10.1.2.3")));
    assert!(drops(&t, &tcp(7002, "11.0.0.1", 80, SYN)));
    assert!(drops(&t, &tcp(7002, "192.0.2.150", 5000, SYN)));
    assert!(drops(&t, &tcp(7002, "198.51.100.9", 5000, ACK)));
    // nomatch: the upper half of the set's /24 is not in it.
    assert!(!drops(&t, &tcp(7002, "198.51.100.200", 5000, SYN)));
}

#[test]
fn interfaces_map_to_attached_ones() {
    let t = run(&[
        "-A DOCKER-USER -i eth1 -j DROP",
        "-A DOCKER-USER -i eth+ -s 198.51.100.0/24 -j DROP",
        "-A DOCKER-USER ! -i eth0 -j DROP",
    ]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::NoEffect { .. }
    ));
    mirrored_drop(&t, "DOCKER-USER#2");
    assert!(matches!(
        outcome(&t, "DOCKER-USER#3"),
        Outcome::NoEffect { .. }
    ));
    assert!(drops(&t, &tcp(8080, "198.51.100.7", 5000, SYN)));
}

#[test]
fn interfaces_with_stacked_devices_are_not_exact() {
    let mut s = setup(&[
        "-A DOCKER-USER -i eth0 -j DROP",
        "-A DOCKER-USER -i eth0.100 -j ACCEPT",
    ]);
    s.ifaces = vec![(
        "eth0".into(),
        BTreeSet::from(["eth0".into(), "eth0.100".into()]),
    )];
    let t = s.run();
    assert!(reasons(outcome(&t, "DOCKER-USER#1")).contains("VLAN"));
    assert!(t.rules.is_empty(), "{:#?}", t.rules);
}

#[test]
fn untranslatable_classes_say_why() {
    let cases: &[(&str, &str)] = &[
        ("-A DOCKER-USER -o docker0 -j DROP", "-o docker0"),
        (
            "-A DOCKER-USER -p tcp -j REJECT --reject-with tcp-reset",
            "REJECT",
        ),
        ("-A DOCKER-USER -m mark --mark 0x1 -j DROP", "-m mark"),
        (
            "-A DOCKER-USER -m connlimit --connlimit-above 10 -j DROP",
            "-m connlimit",
        ),
        (
            "-A DOCKER-USER -p tcp -m string --string \"GET /\" --algo bm -j DROP",
            "-m string",
        ),
        ("-A DOCKER-USER -m owner --uid-owner 0 -j DROP", "-m owner"),
        (
            "-A DOCKER-USER -m conntrack --ctstate ESTABLISHED -j DROP",
            "--ctstate ESTABLISHED",
        ),
        (
            "-A DOCKER-USER -m conntrack --ctstate INVALID -j DROP",
            "--ctstate INVALID",
        ),
        (
            "-A DOCKER-USER -p tcp -m tcp --tcp-option 8 -j DROP",
            "--tcp-option",
        ),
        (
            "-A DOCKER-USER -m set --match-set missing src -j DROP",
            "does not exist",
        ),
        (
            "-A DOCKER-USER -m limit --limit 1/sec -j DROP",
            "rate limit",
        ),
        (
            "-A DOCKER-USER -m addrtype --src-type LOCAL -j DROP",
            "-m addrtype",
        ),
    ];
    for (line, needle) in cases {
        let t = run(&[line]);
        let why = reasons(outcome(&t, "DOCKER-USER#1"));
        assert!(why.contains(needle), "{line}: {why}");
        assert!(t.rules.is_empty(), "{line}: {:#?}", t.rules);
    }
}

#[test]
fn conntrack_new_is_a_syn_only() {
    let t = run(&["-A DOCKER-USER -p tcp -m conntrack --ctstate NEW -s 198.51.100.0/24 -j DROP"]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Partial { .. }
    ));
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, ACK)));
    // SYN+FIN is never NEW (conntrack refuses it).
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, SYN | 0x01)));
}

#[test]
fn an_inexact_accept_shadows_later_drops() {
    let t = run(&[
        "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A DOCKER-USER -s 198.51.100.0/24 -j DROP",
        "-A DOCKER-USER -p tcp -m connlimit --connlimit-above 5 -j ACCEPT",
        "-A DOCKER-USER -s 203.0.113.0/24 -j DROP",
    ]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    // A SYN is NEW: dropped; anything else may belong to a connection.
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, ACK)));
    assert!(!drops(&t, &udp(8053, "198.51.100.1")));
    // connlimit may accept any TCP packet: nothing of TCP is dropped after.
    assert!(!drops(&t, &tcp(8080, "203.0.113.1", 1, SYN)));
    assert!(!drops(&t, &udp(8053, "203.0.113.1")));
    let Some(report) = t.report.families[0]
        .rules
        .iter()
        .find(|rule| rule.path == "DOCKER-USER#4")
    else {
        panic!("no report");
    };
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("DOCKER-USER#3")),
        "{report:?}"
    );
}
