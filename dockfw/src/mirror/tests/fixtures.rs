//! The two Docker layouts from `iptables-save` fixtures: Docker 20.10
//! (captured from dockerd 20.10.24 in a test namespace, FORWARD ->
//! DOCKER-USER -> DOCKER-ISOLATION-STAGE-1 -> DOCKER, no DOCKER-USER in
//! ip6tables) and Docker 28 (handwritten after moby's generated iptables
//! documentation and real 28.x output: DOCKER-USER, DOCKER-FORWARD,
//! DOCKER-CT, DOCKER-INTERNAL, DOCKER-BRIDGE, raw-table direct-access
//! drops, DOCKER-USER in ip6tables too).

use super::{Packet, Setup, outcome, plain_ifaces, port, reasons, xdp};
use crate::{
    mirror::report::{ChainState, Outcome},
    model::{Action, BindingKey, Family, Per, Proto},
};

const D20_V4: &str = include_str!("../fixtures/docker20.v4.save");
const D20_V6: &str = include_str!("../fixtures/docker20.v6.save");
const D20_SETS: &str = include_str!("../fixtures/docker20.ipset");
const D28_V4: &str = include_str!("../fixtures/docker28.v4.save");
const D28_V6: &str = include_str!("../fixtures/docker28.v6.save");
const D28_SETS: &str = include_str!("../fixtures/docker28.ipset");

fn docker20() -> Setup {
    let mut ports = Vec::new();
    for family in [Family::V4, Family::V6] {
        let web6 = "fd00:d0f:60::242:ad2:3c02";
        let rng6 = "fd00:d0f:60::242:ad2:3c03";
        let (web, rng) = match family {
            Family::V4 => ("10.210.60.2", "10.210.60.3"),
            Family::V6 => (web6, rng6),
        };
        ports.push(port(family, Proto::Tcp, None, 8080, "web", web, 80));
        ports.push(port(family, Proto::Udp, None, 8053, "web", web, 53));
        for p in 7000..=7002 {
            ports.push(port(family, Proto::Tcp, None, p, "rng", rng, p));
        }
    }
    ports.push(port(
        Family::V4,
        Proto::Tcp,
        Some("127.0.0.1"),
        9000,
        "other",
        "10.210.62.2",
        9000,
    ));
    Setup {
        v4: Some(D20_V4.into()),
        v6: Some(D20_V6.into()),
        ipsets: D20_SETS.into(),
        ports,
        local: [
            "192.0.2.10",
            "127.0.0.1",
            "10.210.60.1",
            "10.210.62.1",
            "2001:db8::10",
            "::1",
        ]
        .iter()
        .map(|addr| addr.parse().unwrap())
        .collect(),
        ifaces: plain_ifaces(&["eth0"]),
        rate_limits: false,
        nftables: false,
    }
}

fn docker28() -> Setup {
    Setup {
        v4: Some(D28_V4.into()),
        v6: Some(D28_V6.into()),
        ipsets: D28_SETS.into(),
        ports: vec![
            port(Family::V4, Proto::Tcp, None, 8080, "web", "172.17.0.2", 80),
            port(Family::V6, Proto::Tcp, None, 8080, "web", "fd00:ca7::2", 80),
            port(Family::V4, Proto::Udp, None, 5353, "dns", "172.17.0.3", 53),
            port(
                Family::V4,
                Proto::Tcp,
                Some("127.0.0.1"),
                15432,
                "db",
                "172.18.0.2",
                5432,
            ),
        ],
        local: [
            "198.51.100.10",
            "127.0.0.1",
            "172.17.0.1",
            "172.18.0.1",
            "2001:db8::10",
            "::1",
        ]
        .iter()
        .map(|addr| addr.parse().unwrap())
        .collect(),
        ifaces: plain_ifaces(&["eth0"]),
        rate_limits: false,
        nftables: false,
    }
}

fn packet(addr: &str, port: u16, proto: Proto, src: &str, sport: u16, flags: Option<u8>) -> Packet {
    let addr: std::net::IpAddr = addr.parse().unwrap();
    Packet {
        key: BindingKey {
            family: Family::of(&addr),
            proto,
            addr: Some(addr),
            port,
        },
        src: src.parse().unwrap(),
        sport,
        flags,
        iface: "eth0".into(),
    }
}

fn verdict(rules: &[crate::model::Rule], packet: &Packet) -> Option<Action> {
    xdp(rules, packet).map(|(action, _)| action)
}

#[test]
fn docker20_layout() {
    let t = docker20().run();
    let v4 = &t.report.families[0];
    assert_eq!(v4.state, ChainState::Mirrored);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    assert!(matches!(
        outcome(&t, "DOCKER-USER#2"),
        Outcome::Mirrored { .. }
    ));
    assert!(matches!(outcome(&t, "DOCKER-USER#3"), Outcome::Jump { .. }));
    assert!(reasons(outcome(&t, "DOCKER-USER#3>DFW-RATE#2")).contains("rate limit"));
    assert!(matches!(
        outcome(&t, "DOCKER-USER#4"),
        Outcome::Mirrored { .. }
    ));
    match outcome(&t, "DOCKER-USER#5") {
        Outcome::Mirrored { ports, .. } => assert_eq!(ports, &["127.0.0.1:9000/tcp"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        outcome(&t, "DOCKER-USER#7"),
        Outcome::NoEffect { .. }
    ));
    assert!(reasons(outcome(&t, "DOCKER-USER#9")).contains("-o docker0"));
    assert!(reasons(outcome(&t, "DOCKER-USER#10")).contains("REJECT"));
    assert!(matches!(
        outcome(&t, "DOCKER-USER#11"),
        Outcome::Mirrored { .. }
    ));

    let host = "192.0.2.10";
    // blocklist (its nomatch half excepted), on the attached interface.
    let syn = Some(0x02);
    assert_eq!(
        verdict(
            &t.rules,
            &packet(host, 8080, Proto::Tcp, "198.51.100.1", 5000, syn)
        ),
        Some(Action::Drop)
    );
    assert_eq!(
        verdict(
            &t.rules,
            &packet(host, 8080, Proto::Tcp, "198.51.100.200", 5000, syn)
        ),
        None
    );
    assert_eq!(
        verdict(
            &t.rules,
            &packet(host, 7001, Proto::Tcp, "192.0.2.150", 5000, syn)
        ),
        Some(Action::Drop)
    );
    assert_eq!(
        verdict(
            &t.rules,
            &packet(host, 7002, Proto::Tcp, "192.0.2.1", 5000, syn)
        ),
        Some(Action::Drop)
    );
    // ESTABLISHED may accept anything but a SYN.
    assert_ne!(
        verdict(
            &t.rules,
            &packet(host, 7002, Proto::Tcp, "192.0.2.1", 5000, Some(0x10))
        ),
        Some(Action::Drop)
    );
    // The limited ACCEPT may accept any DNS packet.
    assert_ne!(
        verdict(
            &t.rules,
            &packet(host, 8053, Proto::Udp, "192.0.2.1", 5000, None)
        ),
        Some(Action::Drop)
    );

    let v6 = &t.report.families[1];
    assert_eq!(v6.state, ChainState::Missing);
    assert!(
        v6.message
            .as_deref()
            .unwrap_or_default()
            .contains("no DOCKER-USER")
    );
    assert!(t.rules.iter().all(|rule| {
        rule.ports
            .bindings
            .iter()
            .flatten()
            .all(|key| key.family == Family::V4)
    }));
}

#[test]
fn docker28_layout() {
    let t = docker28().run();
    assert_eq!(t.report.families[0].state, ChainState::Mirrored);
    assert_eq!(t.report.families[1].state, ChainState::Mirrored);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    assert!(reasons(outcome(&t, "DOCKER-USER#2>SCANNERS#1")).contains("expiring"));
    assert!(matches!(
        outcome(&t, "DOCKER-USER#3"),
        Outcome::Mirrored { .. }
    ));
    match outcome(&t, "DOCKER-USER#4") {
        Outcome::Mirrored { ports, .. } => assert_eq!(ports, &["127.0.0.1:15432/tcp"]),
        other => panic!("{other:?}"),
    }
    assert!(reasons(outcome(&t, "DOCKER-USER#5")).contains("-m string"));
    assert!(matches!(
        outcome(&t, "DOCKER-USER#6"),
        Outcome::Shadow { .. }
    ));

    let public = "198.51.100.10";
    let syn = Some(0x02);
    // scanners: the lasting /24, source ports 1024 and up; not the entry
    // about to expire, not the nomatch address.
    assert_eq!(
        verdict(
            &t.rules,
            &packet(public, 8080, Proto::Tcp, "45.155.205.9", 40000, syn)
        ),
        Some(Action::Drop)
    );
    assert_ne!(
        verdict(
            &t.rules,
            &packet(public, 8080, Proto::Tcp, "45.155.205.9", 80, syn)
        ),
        Some(Action::Drop)
    );
    assert_ne!(
        verdict(
            &t.rules,
            &packet(public, 8080, Proto::Tcp, "185.242.226.9", 40000, syn)
        ),
        Some(Action::Drop)
    );
    // Rule 3 is mirrored, but any UDP datagram may belong to a flow that
    // rule 1 accepts as ESTABLISHED: XDP hands them all to netfilter.
    assert_eq!(
        verdict(
            &t.rules,
            &packet(public, 5353, Proto::Udp, "192.0.2.1", 40000, None)
        ),
        Some(Action::Pass)
    );
    // The connlimit ACCEPT may take any SYN to port 80: rule 7 cannot drop it.
    assert_ne!(
        verdict(
            &t.rules,
            &packet(public, 8080, Proto::Tcp, "192.0.2.1", 40000, syn)
        ),
        Some(Action::Drop)
    );
    assert_eq!(
        verdict(
            &t.rules,
            &packet(
                "2001:db8::10",
                8080,
                Proto::Tcp,
                "2001:db8:bad::1",
                40000,
                syn
            )
        ),
        Some(Action::Drop)
    );
    let v6_limit = t.report.families[1]
        .rules
        .iter()
        .find(|rule| rule.path == "DOCKER-USER#2")
        .map(|rule| reasons(&rule.outcome))
        .unwrap_or_default();
    assert!(v6_limit.contains("rate limit"), "{v6_limit}");

    let mut setup = docker28();
    setup.rate_limits = true;
    let t = setup.run();
    let limit = t
        .rules
        .iter()
        .find_map(|rule| match rule.action {
            Action::RateLimit(limit)
                if rule
                    .ports
                    .bindings
                    .iter()
                    .flatten()
                    .any(|k| k.family == Family::V6) =>
            {
                Some(limit)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no IPv6 rate limit: {:#?}", t.report));
    assert_eq!(limit.per, Per::Source);
    assert_eq!(limit.burst, 100);
}

#[test]
fn docker28_raw_drops_do_not_untrust_keys() {
    let t = docker28().run();
    assert!(
        t.report.families[0].untrusted.is_empty(),
        "{:#?}",
        t.report.families[0].untrusted
    );
    assert_eq!(
        t.report.families[0].keys.len(),
        4 + 4 + 1,
        "{:#?}",
        t.report.families[0].keys
    );
}

#[test]
fn explanation_renders_every_rule() {
    let t = docker20().run();
    let text = t.report.render();
    for needle in [
        "DOCKER-USER#3>DFW-RATE#2",
        "netfilter-only",
        "REJECT",
        "ipv6 DOCKER-USER: Missing",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let json = serde_json::to_string(&t.report).unwrap();
    let back: crate::mirror::report::MirrorReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t.report);
}
