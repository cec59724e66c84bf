//! Packet-level verdicts of both programs through BPF_PROG_TEST_RUN: every
//! parse path, every action, rule order, negated sets and counter deltas.
//! Root tier: `cargo test -p dockfw-tests --test verdicts -- --test-threads=1`.

use dockfw::{
    bans::NEVER,
    compile::StatOwner,
    dataplane::local::LocalUpdate,
    dataplane::testrun::{Program, run},
    model::{
        Action, Family, FragmentAction, Per, Policy, PortSpec, Proto, Rate, RateLimit, Rule,
        RuleOrigin, SourceMatch,
    },
};
use dockfw_common::{
    reason,
    xdp_verdict::{DROP, PASS},
};
use dockfw_tests::{
    frame::{ACK, Ext, Frame, L4, RST, SYN},
    runner::{Harness, published, tcp4},
};

const PROGRAMS: [Program; 2] = [Program::Xdp, Program::Tc];

fn origin() -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: "verdicts.toml".into(),
        line: 1,
    }
}

fn rule(name: &str, ports: &[&str], action: Action) -> Rule {
    let mut rule = Rule::new(name, origin(), action);
    rule.ports.ports = ports
        .iter()
        .map(|spec| spec.parse::<PortSpec>().unwrap())
        .collect();
    rule
}

fn from(list: &[&str]) -> Option<Vec<ipnet::IpNet>> {
    Some(list.iter().map(|net| net.parse().unwrap()).collect())
}

fn policy(rules: Vec<Rule>) -> Policy {
    Policy {
        rules,
        fragments: FragmentAction::Pass,
    }
}

fn rate_limit(rate: &str, burst: u32, per: Per) -> Action {
    Action::RateLimit(RateLimit {
        rate: rate.parse::<Rate>().unwrap(),
        burst,
        per,
        total: None,
    })
}

/// A harness with a drop-everything rule on 8080/tcp (v4 and v6), the usual
/// subject of the parse-path cases.
fn drop_8080() -> Harness {
    let mut harness = Harness::new();
    let ports = [
        tcp4(8080, "web"),
        published(Family::V6, Proto::Tcp, None, 8080, "web"),
        published(Family::V4, Proto::Udp, None, 5353, "dns"),
    ];
    harness.apply(&policy(vec![rule("drop-all", &[], Action::Drop)]), &ports);
    harness
}

fn both(harness: &mut Harness, frame: &[u8]) -> [u32; 2] {
    PROGRAMS.map(|program| harness.verdict(program, frame))
}

#[test]
fn parse_paths_reach_the_published_port() {
    let mut harness = drop_8080();
    let cases: Vec<(&str, Frame)> = vec![
        (
            "plain IPv4 TCP",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN),
        ),
        (
            "IPv4 with 4 bytes of options",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN).options(&[1, 1, 1, 0]),
        ),
        (
            "IPv4 with 40 bytes of options (IHL 15)",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN).options(&[1; 40]),
        ),
        (
            "802.1Q",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN).vlan(0x8100, 10),
        ),
        (
            "QinQ 802.1ad + 802.1Q",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN)
                .vlan(0x88a8, 100)
                .vlan(0x8100, 10),
        ),
        (
            "IPv4 UDP",
            Frame::udp("198.51.100.1", 1000, "192.0.2.1", 5353),
        ),
        (
            "first IPv4 fragment",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN)
                .fragment(0, true, 7)
                .payload(64),
        ),
        (
            "plain IPv6",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN),
        ),
        (
            "IPv6 hop-by-hop",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN).ext(Ext::HopByHop),
        ),
        (
            "IPv6 routing",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN).ext(Ext::Routing),
        ),
        (
            "IPv6 destination options",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN).ext(Ext::DestOpts),
        ),
        (
            "IPv6 first fragment",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN).ext(Ext::Fragment {
                offset: 0,
                more: true,
                id: 9,
            }),
        ),
        (
            "IPv6 with 6 extension headers",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN)
                .ext(Ext::HopByHop)
                .ext(Ext::DestOpts)
                .ext(Ext::Routing)
                .ext(Ext::DestOpts)
                .ext(Ext::Fragment {
                    offset: 0,
                    more: true,
                    id: 3,
                })
                .ext(Ext::DestOpts),
        ),
        (
            "VLAN + IPv6 + 3 extension headers",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN)
                .vlan(0x8100, 5)
                .ext(Ext::HopByHop)
                .ext(Ext::Routing)
                .ext(Ext::DestOpts),
        ),
    ];
    for (name, frame) in cases {
        assert_eq!(both(&mut harness, &frame.build()), [DROP, DROP], "{name}");
    }
}

#[test]
fn traffic_that_is_not_to_a_published_port_is_untouched() {
    let mut harness = drop_8080();
    let before = harness.global(reason::NOT_PUBLISHED).packets;
    let cases: Vec<(&str, Frame)> = vec![
        (
            "SSH",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 22, SYN),
        ),
        (
            "UDP to a TCP-only port",
            Frame::udp("198.51.100.1", 1000, "192.0.2.1", 8080),
        ),
        (
            "TCP to a UDP-only port",
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 5353, SYN),
        ),
        (
            "ICMP",
            Frame::new("198.51.100.1", "192.0.2.1", L4::Other(1)),
        ),
        (
            "IPv6 to another port",
            Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8081, SYN),
        ),
    ];
    let count = cases.len() as u64;
    for (name, frame) in cases {
        assert_eq!(both(&mut harness, &frame.build()), [PASS, PASS], "{name}");
    }
    assert_eq!(
        harness.global(reason::NOT_PUBLISHED).packets - before,
        2 * count
    );

    // Not IP at all: an ARP frame.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let before = harness.global(reason::NOT_IP).packets;
    assert_eq!(both(&mut harness, &arp), [PASS, PASS]);
    assert_eq!(harness.global(reason::NOT_IP).packets - before, 2);
}

#[test]
fn ipv6_chains_longer_than_the_walk_pass_and_are_counted() {
    let mut harness = drop_8080();
    let mut frame = Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN);
    for _ in 0..7 {
        frame = frame.ext(Ext::DestOpts);
    }
    let before = harness.global(reason::IPV6_EXT_LIMIT).packets;
    assert_eq!(both(&mut harness, &frame.build()), [PASS, PASS]);
    assert_eq!(harness.global(reason::IPV6_EXT_LIMIT).packets - before, 2);
}

#[test]
fn truncated_frames_never_drop_and_count_as_malformed() {
    let mut harness = drop_8080();
    let frames = [
        Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN)
            .options(&[1; 8])
            .vlan(0x8100, 3),
        Frame::udp("198.51.100.1", 1000, "192.0.2.1", 5353),
        Frame::tcp("2001:db8::1", 1000, "2001:db8::2", 8080, SYN)
            .ext(Ext::HopByHop)
            .ext(Ext::Fragment {
                offset: 0,
                more: true,
                id: 1,
            }),
    ];
    for frame in frames {
        let bytes = frame.build();
        assert_eq!(
            both(&mut harness, &bytes),
            [DROP, DROP],
            "the whole frame is dropped"
        );
        for len in 14..bytes.len() {
            let before = harness.global(reason::MALFORMED).packets;
            assert_eq!(
                harness.verdict(Program::Xdp, &bytes[..len]),
                PASS,
                "XDP, truncated to {len} of {}",
                bytes.len()
            );
            let mut runs = 1;
            // BPF_PROG_TEST_RUN refuses (EINVAL) to build an skb whose fixed
            // network header is cut short (and, for VLAN frames, one cut
            // anywhere in the headers), so TC is checked where the kernel
            // accepts the input.
            let l3_end = 14 + 4 * frame.vlans.len() + if frame.src.is_ipv4() { 20 } else { 40 };
            let refusable = len < l3_end || !frame.vlans.is_empty();
            match run(&mut harness.dataplane, Program::Tc, &bytes[..len], None, 1) {
                Ok(result) => {
                    assert_eq!(
                        result.verdict,
                        PASS,
                        "TC, truncated to {len} of {}",
                        bytes.len()
                    );
                    runs += 1;
                }
                Err(error) if refusable && dockfw_tests::chain(&error).contains("os error 22") => {}
                Err(error) => panic!("TC test run at {len}: {}", dockfw_tests::chain(&error)),
            }
            assert_eq!(
                harness.global(reason::MALFORMED).packets - before,
                runs,
                "malformed counted at {len}"
            );
        }
    }
    // Bogus IHL (below 5) and TCP data offset below 5.
    let mut bad_ihl = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN).build();
    bad_ihl[14] = 0x44;
    let mut bad_doff = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN).build();
    bad_doff[14 + 20 + 12] = 0x40;
    for bytes in [bad_ihl, bad_doff] {
        assert_eq!(both(&mut harness, &bytes), [PASS, PASS]);
    }
}

#[test]
fn later_fragments_follow_their_first_fragment_and_the_port_action() {
    let mut harness = Harness::new();
    let ports = [
        tcp4(8080, "web"),
        published(Family::V6, Proto::Udp, None, 53, "dns"),
    ];
    let mut pass_rule = rule("allow", &[], Action::Pass);
    pass_rule.fragments = Some(FragmentAction::Drop);
    pass_rule.ports.ports = vec!["8080/tcp".parse().unwrap()];
    harness.apply(&policy(vec![pass_rule]), &ports);
    let key = ports[0].key;

    for program in PROGRAMS {
        let id = if program == Program::Xdp { 70 } else { 71 };
        // A later fragment before any first fragment: untracked, passed.
        let orphan =
            Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, 0).fragment(100, false, id + 100);
        let before = harness.global(reason::FRAGMENT_UNTRACKED).packets;
        assert_eq!(harness.verdict(program, &orphan.build()), PASS);
        assert_eq!(
            harness.global(reason::FRAGMENT_UNTRACKED).packets - before,
            1
        );

        let first = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN)
            .fragment(0, true, id)
            .payload(64);
        assert_eq!(
            harness.verdict(program, &first.build()),
            PASS,
            "first fragment: rule pass"
        );
        let later = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, 0)
            .fragment(11, false, id)
            .payload(16);
        let before = harness.stat(&StatOwner::Fragments(key)).dropped.packets;
        assert_eq!(
            harness.verdict(program, &later.build()),
            DROP,
            "port drops later fragments"
        );
        assert_eq!(
            harness.stat(&StatOwner::Fragments(key)).dropped.packets - before,
            1
        );
    }

    // IPv6 UDP with the default action (pass), counted per port.
    let v6_key = ports[1].key;
    let first = Frame::udp("2001:db8::1", 999, "2001:db8::2", 53)
        .ext(Ext::Fragment {
            offset: 0,
            more: true,
            id: 5,
        })
        .payload(64);
    let later = Frame::udp("2001:db8::1", 999, "2001:db8::2", 53)
        .ext(Ext::Fragment {
            offset: 9,
            more: false,
            id: 5,
        })
        .payload(8);
    assert_eq!(harness.xdp(&first), PASS);
    assert_eq!(harness.xdp(&later), PASS);
    assert_eq!(
        harness.stat(&StatOwner::Fragments(v6_key)).passed.packets,
        1
    );
}

#[test]
fn ports_published_on_a_specific_address_match_only_it() {
    let mut harness = Harness::new();
    let ports = [
        published(Family::V4, Proto::Tcp, Some("192.0.2.10"), 7070, "local"),
        published(Family::V4, Proto::Tcp, None, 9090, "any"),
        published(Family::V4, Proto::Tcp, Some("192.0.2.11"), 9090, "specific"),
    ];
    let mut drop_local = rule("drop-local", &["7070/tcp"], Action::Drop);
    drop_local.ports.container = Some("local".into());
    let drop_specific = {
        let mut rule = rule("drop-specific", &["9090/tcp"], Action::Drop);
        rule.ports.container = Some("specific".into());
        rule
    };
    harness.apply(&policy(vec![drop_local, drop_specific]), &ports);
    for program in PROGRAMS {
        let to = |dst: &str, port| Frame::tcp("198.51.100.1", 1000, dst, port, SYN).build();
        assert_eq!(harness.verdict(program, &to("192.0.2.10", 7070)), DROP);
        assert_eq!(
            harness.verdict(program, &to("192.0.2.99", 7070)),
            PASS,
            "other address: not published"
        );
        assert_eq!(
            harness.verdict(program, &to("192.0.2.11", 9090)),
            DROP,
            "the specific binding wins"
        );
        assert_eq!(
            harness.verdict(program, &to("192.0.2.12", 9090)),
            PASS,
            "wildcard binding: no rule"
        );
    }
}

#[test]
fn wildcard_ports_match_only_the_hosts_local_addresses() {
    let mut harness = Harness::new();
    let mut drop_all = rule("drop-all", &["8080/tcp"], Action::Drop);
    drop_all.fragments = Some(FragmentAction::Drop);
    let mut specific = rule("drop-specific", &["7070/tcp"], Action::Drop);
    specific.ports.container = Some("specific".into());
    let ports = [
        tcp4(8080, "web"),
        published(Family::V6, Proto::Tcp, None, 8080, "web"),
        published(Family::V4, Proto::Tcp, Some("192.0.2.10"), 7070, "specific"),
    ];
    harness.apply(&policy(vec![drop_all, specific]), &ports);
    let v4 = |dst: &str, port| Frame::tcp("198.51.100.1", 1000, dst, port, SYN).build();
    let v6 = |dst: &str| Frame::tcp("2001:db8:ff::1", 1000, dst, 8080, SYN).build();
    let routed = v4("203.0.113.7", 8080);
    let anyip = v4("198.18.5.9", 8080);
    let host = &[
        "192.0.2.1/32",
        "198.18.0.0/16",
        "127.0.0.0/8",
        "2001:db8::2/128",
        "fe80::1/128",
    ];
    // Nothing known yet: every destination counts as local (the state a
    // daemon is in for the moment between loading and its first read).
    for program in PROGRAMS {
        assert_eq!(harness.verdict(program, &routed), DROP, "{program:?}");
    }

    assert_eq!(harness.set_local(host), LocalUpdate::Flipped);
    let not_published = harness.global(reason::NOT_PUBLISHED).packets;
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(program, &v4("192.0.2.1", 8080)),
            DROP,
            "{program:?}"
        );
        assert_eq!(
            harness.verdict(program, &anyip),
            DROP,
            "{program:?}: AnyIP prefix"
        );
        assert_eq!(
            harness.verdict(program, &v6("2001:db8::2")),
            DROP,
            "{program:?}"
        );
        assert_eq!(
            harness.verdict(program, &v6("fe80::1")),
            DROP,
            "{program:?}"
        );
        assert_eq!(
            harness.verdict(program, &routed),
            PASS,
            "{program:?}: routed through the host, not to a published port"
        );
        assert_eq!(
            harness.verdict(program, &v4("192.0.2.2", 8080)),
            PASS,
            "{program:?}: a neighbour of the local /32"
        );
        assert_eq!(
            harness.verdict(program, &v6("2001:db8::3")),
            PASS,
            "{program:?}: routed IPv6"
        );
        // A binding on a specific address matches it, listed or not (Docker
        // binds only to addresses the host has; the set may lag behind).
        assert_eq!(
            harness.verdict(program, &v4("192.0.2.10", 7070)),
            DROP,
            "{program:?}"
        );
    }
    assert_eq!(
        harness.global(reason::NOT_PUBLISHED).packets - not_published,
        6,
        "routed packets count as not published"
    );
    // Later fragments follow their first fragment: to a local address the
    // port's fragment action (drop) applies, routed ones are not tracked.
    for (dst, id, verdict) in [("192.0.2.1", 90, DROP), ("203.0.113.7", 91, PASS)] {
        let first = Frame::tcp("198.51.100.1", 1000, dst, 8080, SYN)
            .fragment(0, true, id)
            .payload(64);
        let later = Frame::tcp("198.51.100.1", 1000, dst, 8080, 0)
            .fragment(11, false, id)
            .payload(16);
        assert_eq!(harness.xdp(&first), verdict, "first fragment to {dst}");
        assert_eq!(harness.xdp(&later), verdict, "later fragment to {dst}");
    }

    // Writing the same set again changes nothing; a new address is followed
    // and a removed one stops matching.
    assert_eq!(harness.set_local(host), LocalUpdate::Unchanged);
    assert_eq!(
        harness.set_local(&["203.0.113.7/32", "2001:db8::2/128"]),
        LocalUpdate::Flipped
    );
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(program, &routed),
            DROP,
            "{program:?}: now local"
        );
        assert_eq!(
            harness.verdict(program, &anyip),
            PASS,
            "{program:?}: no longer local"
        );
    }

    // Two host addresses with the same slot: the second is found in the
    // prefix list.
    let slot =
        |addr: std::net::Ipv4Addr| dockfw_common::local_slot_v4(u32::from_ne_bytes(addr.octets()));
    let first = std::net::Ipv4Addr::new(192, 0, 2, 1);
    let second = (2..)
        .map(|i| std::net::Ipv4Addr::from(u32::from(first) + i))
        .find(|addr| slot(*addr) == slot(first))
        .unwrap();
    let (first_net, second_net) = (format!("{first}/32"), format!("{second}/32"));
    harness.set_local(&[&first_net, &second_net]);
    for program in PROGRAMS {
        for addr in [first, second] {
            assert_eq!(
                harness.verdict(program, &v4(&addr.to_string(), 8080)),
                DROP,
                "{program:?}: {addr} (slot {})",
                slot(addr)
            );
        }
        assert_eq!(harness.verdict(program, &routed), PASS, "{program:?}");
        // Empty slots hold filler addresses that no destination can equal.
        for dst in ["0.0.0.0", "1.0.0.0", "1.0.0.1", "1.0.0.2"] {
            assert_eq!(
                harness.verdict(program, &v4(dst, 8080)),
                PASS,
                "{program:?}: {dst}"
            );
        }
    }

    // More prefixes than the set holds: that family falls back to "every
    // destination is local" rather than missing the host's own addresses.
    let many: Vec<String> = (0..=dockfw_common::MAX_LOCAL_V4)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .chain(["2001:db8::2/128".to_string()])
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    harness.set_local(&many);
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(program, &routed),
            DROP,
            "{program:?}: IPv4 overflow"
        );
        assert_eq!(
            harness.verdict(program, &v6("2001:db8::3")),
            PASS,
            "{program:?}: IPv6 still exact"
        );
    }
}

#[test]
fn rule_order_first_match_and_negated_sets() {
    let mut harness = Harness::new();
    let ports = [tcp4(3306, "db"), tcp4(80, "web")];
    let mut office_only = rule("db-office-only", &["3306/tcp"], Action::Drop);
    office_only.sources = SourceMatch {
        from: None,
        not_from: from(&["203.0.113.0/24"]).unwrap(),
    };
    let mut allow_admin = rule("allow-admin", &["80/tcp"], Action::Pass);
    allow_admin.sources = SourceMatch {
        from: from(&["198.51.100.7/32"]),
        not_from: vec![],
    };
    let mut drop_net = rule("drop-net", &["80/tcp"], Action::Drop);
    drop_net.sources = SourceMatch {
        from: from(&["198.51.100.0/24"]),
        not_from: vec![],
    };
    let mut drop_rst = rule("drop-rst", &["80/tcp"], Action::Drop);
    drop_rst.tcp_flags = Some((RST, RST));
    let mut high_ports = rule("drop-low-sport", &["80/tcp"], Action::Drop);
    high_ports.source_ports = Some((0, 1023));
    harness.apply(
        &policy(vec![
            office_only,
            allow_admin,
            drop_net,
            drop_rst,
            high_ports,
        ]),
        &ports,
    );

    let cases = [
        (
            "office reaches the db",
            Frame::tcp("203.0.113.5", 40000, "192.0.2.1", 3306, SYN),
            PASS,
        ),
        (
            "others do not",
            Frame::tcp("198.51.100.9", 40000, "192.0.2.1", 3306, SYN),
            DROP,
        ),
        (
            "admin passes before the network drop",
            Frame::tcp("198.51.100.7", 40000, "192.0.2.1", 80, SYN),
            PASS,
        ),
        (
            "the network drops",
            Frame::tcp("198.51.100.8", 40000, "192.0.2.1", 80, SYN),
            DROP,
        ),
        (
            "RST from elsewhere",
            Frame::tcp("192.0.2.200", 40000, "192.0.2.1", 80, RST | ACK),
            DROP,
        ),
        (
            "low source port",
            Frame::tcp("192.0.2.200", 80, "192.0.2.1", 80, SYN),
            DROP,
        ),
        (
            "nothing matches",
            Frame::tcp("192.0.2.200", 40000, "192.0.2.1", 80, SYN),
            PASS,
        ),
    ];
    for program in PROGRAMS {
        for (name, frame, expected) in &cases {
            assert_eq!(
                harness.verdict(program, &frame.build()),
                *expected,
                "{program:?}: {name}"
            );
        }
    }
    let web = ports[1].key;
    assert_eq!(harness.rule_stat(web, "allow-admin").passed.packets, 2);
    assert_eq!(harness.rule_stat(web, "drop-net").dropped.packets, 2);
    assert_eq!(harness.stat(&StatOwner::Unmatched(web)).passed.packets, 2);
}

#[test]
fn syn_only_rules_match_connection_attempts_only() {
    let mut harness = Harness::new();
    let ports = [tcp4(80, "web")];
    let mut syn = rule("drop-syn", &["80/tcp"], Action::Drop);
    syn.syn_only = true;
    harness.apply(&policy(vec![syn]), &ports);
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN).build()
            ),
            DROP
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN | ACK).build()
            ),
            PASS
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, ACK).build()
            ),
            PASS
        );
    }
}

#[test]
fn bans_drop_first_and_expire_on_time() {
    let mut harness = Harness::new();
    let ports = [
        tcp4(80, "web"),
        published(Family::V6, Proto::Tcp, None, 80, "web"),
    ];
    harness.apply(&policy(vec![rule("allow-all", &[], Action::Pass)]), &ports);
    harness.ban("198.51.100.0/24", NEVER);
    harness.ban("2001:db8:bad::/48", NEVER);
    let soon = dockfw::bans::monotonic_ns() + 300_000_000;
    harness.ban("203.0.113.9/32", soon);
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.77", 1, "192.0.2.1", 80, SYN).build()
            ),
            DROP
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("2001:db8:bad::1", 1, "2001:db8::2", 80, SYN).build()
            ),
            DROP
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("203.0.113.9", 1, "192.0.2.1", 80, SYN).build()
            ),
            DROP
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.101.1", 1, "192.0.2.1", 80, SYN).build()
            ),
            PASS
        );
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.77", 1, "192.0.2.1", 22, SYN).build()
            ),
            PASS,
            "a ban never touches unpublished ports"
        );
    }
    assert_eq!(
        harness
            .stat(&StatOwner::Banned(ports[0].key))
            .dropped
            .packets,
        4
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        harness.xdp(&Frame::tcp("203.0.113.9", 1, "192.0.2.1", 80, SYN)),
        PASS,
        "expired"
    );
    harness.unban("198.51.100.0/24");
    assert_eq!(
        harness.xdp(&Frame::tcp("198.51.100.77", 1, "192.0.2.1", 80, SYN)),
        PASS,
        "unbanned"
    );
}

#[test]
fn audit_counts_would_be_drops_and_drops_nothing() {
    let mut harness = Harness::new();
    let ports = [tcp4(80, "web")];
    let mut audited = rule("audited", &[], Action::Drop);
    audited.audit = true;
    harness.apply(&policy(vec![audited]), &ports);
    for program in PROGRAMS {
        assert_eq!(
            harness.verdict(
                program,
                &Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN).build()
            ),
            PASS
        );
    }
    let counters = harness.rule_stat(ports[0].key, "audited");
    assert_eq!((counters.audited.packets, counters.dropped.packets), (2, 0));

    // Global audit: rules and bans.
    harness.audit = true;
    harness.apply(&policy(vec![rule("drop", &[], Action::Drop)]), &ports);
    harness.ban("198.51.100.0/24", NEVER);
    assert_eq!(
        harness.xdp(&Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN)),
        PASS
    );
    assert_eq!(
        harness.xdp(&Frame::tcp("203.0.113.1", 1, "192.0.2.1", 80, SYN)),
        PASS
    );
    assert_eq!(
        harness
            .stat(&StatOwner::Banned(ports[0].key))
            .audited
            .packets,
        1
    );
    assert_eq!(harness.rule_stat(ports[0].key, "drop").audited.packets, 1);
}

#[test]
fn rate_limits_admit_the_burst_then_the_rate() {
    for program in PROGRAMS {
        let mut harness = Harness::new();
        let ports = [tcp4(80, "web"), tcp4(81, "api")];
        // One packet per hour: no refill during the test.
        harness.apply(
            &policy(vec![
                rule("per-source", &["80/tcp"], rate_limit("1/h", 3, Per::Source)),
                rule("per-port", &["81/tcp"], rate_limit("1/h", 3, Per::Port)),
            ]),
            &ports,
        );
        let send = |harness: &mut Harness, src: &str, port| {
            harness.verdict(program, &Frame::tcp(src, 1, "192.0.2.1", port, SYN).build())
        };
        let first: Vec<u32> = (0..4)
            .map(|_| send(&mut harness, "198.51.100.1", 80))
            .collect();
        assert_eq!(
            first,
            [PASS, PASS, PASS, DROP],
            "{program:?}: burst of 3 per source"
        );
        assert_eq!(
            send(&mut harness, "198.51.100.2", 80),
            PASS,
            "another source has its own bucket"
        );
        let shared: Vec<u32> = [
            "198.51.100.1",
            "198.51.100.2",
            "198.51.100.3",
            "198.51.100.4",
        ]
        .iter()
        .map(|src| send(&mut harness, src, 81))
        .collect();
        assert_eq!(
            shared,
            [PASS, PASS, PASS, DROP],
            "{program:?}: one bucket per port"
        );
        let counters = harness.rule_stat(ports[0].key, "per-source");
        assert_eq!((counters.passed.packets, counters.dropped.packets), (4, 1));
    }

    // The rate refills: 1000/s, burst 1 -> one packet per millisecond.
    let mut harness = Harness::new();
    let ports = [tcp4(80, "web")];
    harness.apply(
        &policy(vec![rule("fast", &[], rate_limit("1000/s", 1, Per::Port))]),
        &ports,
    );
    let frame = Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN);
    assert_eq!(harness.xdp(&frame), PASS);
    assert_eq!(harness.xdp(&frame), DROP);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(harness.xdp(&frame), PASS, "refilled after the interval");
}

#[test]
fn per_source_limits_keep_an_aggregate_cap() {
    let mut harness = Harness::new();
    let ports = [tcp4(80, "web")];
    harness.apply(
        &policy(vec![rule(
            "capped",
            &[],
            Action::RateLimit(RateLimit {
                rate: "1/h".parse().unwrap(),
                burst: 2,
                per: Per::Source,
                total: Some(("1/h".parse().unwrap(), 5)),
            }),
        )]),
        &ports,
    );
    let verdicts: Vec<u32> = (0..8)
        .map(|i| {
            harness.xdp(&Frame::tcp(
                &format!("198.51.100.{i}"),
                1,
                "192.0.2.1",
                80,
                SYN,
            ))
        })
        .collect();
    assert_eq!(
        verdicts,
        [PASS, PASS, PASS, PASS, PASS, DROP, DROP, DROP],
        "5 in total"
    );
}

#[test]
fn policy_changes_replace_the_whole_policy() {
    let mut harness = Harness::new();
    let ports = [tcp4(80, "web")];
    let frame = Frame::tcp("198.51.100.1", 1, "192.0.2.1", 80, SYN);
    harness.apply(&policy(vec![rule("a", &[], Action::Drop)]), &ports);
    assert_eq!(harness.xdp(&frame), DROP);
    harness.apply(&policy(vec![rule("b", &[], Action::Pass)]), &ports);
    assert_eq!(harness.xdp(&frame), PASS);
    harness.apply(&policy(vec![]), &ports);
    assert_eq!(harness.xdp(&frame), PASS);
    harness.apply(&policy(vec![rule("c", &[], Action::Drop)]), &[]);
    assert_eq!(
        harness.xdp(&frame),
        PASS,
        "no published port: nothing is touched"
    );
    harness.apply(&policy(vec![rule("c", &[], Action::Drop)]), &ports);
    assert_eq!(harness.xdp(&frame), DROP);
}

#[test]
fn counters_count_bytes_too() {
    let mut harness = drop_8080();
    let frame = Frame::tcp("198.51.100.1", 1, "192.0.2.1", 8080, SYN)
        .payload(100)
        .build();
    harness.verdict(Program::Xdp, &frame);
    let counters = harness.rule_stat(tcp4(8080, "web").key, "drop-all");
    assert_eq!(
        (counters.dropped.packets, counters.dropped.bytes),
        (1, frame.len() as u64)
    );
}

#[test]
fn every_ban_shape_decides_like_the_ban_set() {
    ban_rounds(&mut Harness::new(), &[8, 12, 16, 20, 24, 26, 30, 32]);
    // Mostly bans longer than /24: most /24s they touch are partly banned.
    let (placed, _) = ban_rounds(&mut Harness::new(), &[24, 25, 26, 28, 30, 32]);
    assert!(placed > 0, "no partly banned /24 was tested");
}

/// With 7 slots for partly banned /24s (slot 0 means none), most rounds
/// have more such /24s than slots: those stay in state EXACT (the ban trie
/// answers), the others use their slot, and slots change hands between
/// rounds; every verdict must stay exact.
#[test]
fn partly_banned_slash24s_beyond_the_slots_still_decide_like_the_ban_set() {
    let capacities = dockfw::dataplane::Capacities {
        ban24: 8,
        ..dockfw::dataplane::Capacities::default()
    };
    let mut harness = Harness::with_capacities(capacities);
    let (placed, homeless) = ban_rounds(&mut harness, &[24, 25, 26, 28, 30, 32]);
    assert!(
        placed > 0 && homeless > 0,
        "the rounds must leave some /24s in slots and some without: {placed} / {homeless}"
    );
}

/// Ban expiries for the shape tests: never, in ten minutes, a second ago.
fn ban_expiries() -> [u64; 3] {
    let now = dockfw::bans::monotonic_ns();
    [
        NEVER,
        now + 600_000_000_000,
        now.saturating_sub(1_000_000_000),
    ]
}

/// A xorshift64 sequence from `seed` (nonzero): reproducible shapes.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Eight rounds of random bans in 10.0.0.0/11 with prefix lengths from
/// `lengths`, each permanent, timed or expired; after each, probes inside,
/// at the edges of and around them get the ban set's answer. Returns how
/// many partly banned /24s had a slot, and how many did not, summed over
/// the rounds.
fn ban_rounds(harness: &mut Harness, lengths: &[u8]) -> (usize, usize) {
    let ports = [tcp4(80, "web")];
    harness.apply(&policy(vec![]), &ports);
    let expiries = ban_expiries();
    let mut next = xorshift(0x0bad_5eed_u64);
    let (mut placed, mut homeless) = (0, 0);
    for round in 0..8 {
        let mut bans = dockfw::bans::BanSet::new();
        for _ in 0..60 {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x001f_ffff));
            let len = lengths[(next() % lengths.len() as u64) as usize];
            let net = ipnet::IpNet::new(addr.into(), len).unwrap().trunc();
            bans.insert(net, expiries[(next() % 3) as usize]);
        }
        harness.set_bans(bans.clone());
        let partial = bans.tables().partial_v4.len();
        let in_slots = harness
            .dataplane
            .maps
            .ban_slots
            .as_ref()
            .map_or(0, |slots| slots.in_use());
        placed += in_slots;
        homeless += partial - in_slots;
        let mut probes: Vec<std::net::Ipv4Addr> = (0..150)
            .map(|_| std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x001f_ffff)))
            .collect();
        for (net, _) in bans.iter() {
            if let ipnet::IpNet::V4(net) = net {
                probes.extend([net.network(), net.broadcast()]);
            }
        }
        let now = dockfw::bans::monotonic_ns();
        for probe in probes {
            let expected = if bans.is_banned(&probe.into(), now) {
                DROP
            } else {
                PASS
            };
            let frame = Frame::tcp(&probe.to_string(), 1, "192.0.2.1", 80, SYN).build();
            assert_eq!(
                harness.verdict(Program::Xdp, &frame),
                expected,
                "round {round}: {probe}, bans {bans:?}"
            );
        }
    }
    // And back to nothing: every shortcut is cleared.
    harness.set_bans(dockfw::bans::BanSet::new());
    let frame = Frame::tcp("10.0.0.1", 1, "192.0.2.1", 80, SYN).build();
    assert_eq!(harness.verdict(Program::Xdp, &frame), PASS);
    (placed, homeless)
}

/// IPv6 bans of every shape in four /32s (three /64s each, so bans share
/// /32s and /64s): /64s holding only /64 and /128 bans are decided by their
/// exact entries, the rest by the trie; the last rounds with a ban too wide
/// for the summaries. Each round moves the maps from the last round's set;
/// every probe gets the ban set's answer from both programs, and the exact
/// maps hold exactly the tables' entries.
#[test]
fn every_ipv6_ban_shape_decides_like_the_ban_set() {
    let mut harness = Harness::new();
    let ports = [published(Family::V6, Proto::Tcp, None, 80, "web")];
    harness.apply(&policy(vec![]), &ports);
    let expiries = ban_expiries();
    let mut next = xorshift(0x6_0bad_5eed_u64);
    let mut addr = move || {
        let value = next();
        let slash32 = (0x2001_0db8u128 + u128::from(value % 4)) << 96;
        let slash64 = u128::from((value >> 8) % 3) << 64;
        std::net::Ipv6Addr::from(slash32 | slash64 | u128::from((value >> 16) % 64))
    };
    let lengths = [40, 48, 63, 64, 64, 64, 96, 127, 128, 128, 128, 128];
    let mut exact_probes = 0;
    for round in 0..12 {
        let mut bans = dockfw::bans::BanSet::new();
        let count = 4 + (addr().segments()[7] as usize % 16);
        for index in 0..count {
            let len = lengths[(index * 7 + round) % lengths.len()];
            let net = ipnet::IpNet::new(addr().into(), len).unwrap().trunc();
            bans.insert(net, expiries[(index + round) % 3]);
        }
        if round >= 8 {
            // Too wide for the summaries: every IPv6 source is looked up.
            bans.insert("2400::/12".parse().unwrap(), NEVER);
        }
        harness.set_bans(bans.clone());
        let tables = bans.tables();
        assert_eq!(tables.summary_v6.always_v6, round >= 8);
        assert_exact_maps(&harness, &tables, round);
        let mut probes: Vec<std::net::Ipv6Addr> = (0..120).map(|_| addr()).collect();
        for (net, _) in bans.iter() {
            if let ipnet::IpNet::V6(net) = net {
                probes.extend([net.network(), net.broadcast()]);
            }
        }
        let now = dockfw::bans::monotonic_ns();
        for probe in probes {
            let bits = u128::from(probe);
            exact_probes += usize::from(tables.exact_v6.contains_key(&((bits >> 64) as u64)));
            let expected = if bans.is_banned(&probe.into(), now) {
                DROP
            } else {
                PASS
            };
            let frame = Frame::tcp(&probe.to_string(), 1, "2001:db8::2", 80, SYN).build();
            for program in PROGRAMS {
                assert_eq!(
                    harness.verdict(program, &frame),
                    expected,
                    "round {round}, {program:?}: {probe}, bans {bans:?}"
                );
            }
        }
    }
    assert!(
        exact_probes > 100,
        "too few probes met exact entries: {exact_probes}"
    );
    harness.set_bans(dockfw::bans::BanSet::new());
    assert_exact_maps(&harness, &dockfw::bans::BanSet::new().tables(), 99);
}

/// The exact IPv6 maps hold `tables`' entries and nothing else.
fn assert_exact_maps(harness: &Harness, tables: &dockfw::bans::BanTables, round: usize) {
    let maps = &harness.dataplane.maps;
    let held64: std::collections::BTreeMap<u64, dockfw_common::Ban64> = maps
        .ban64_v6
        .iter()
        .map(|entry| entry.map(|(key, value)| (u64::from_be_bytes(key), value)))
        .collect::<Result<_, _>>()
        .unwrap();
    let wanted64: std::collections::BTreeMap<u64, dockfw_common::Ban64> = tables
        .exact_v6
        .iter()
        .map(|(prefix, exact)| (*prefix, exact.entry()))
        .collect();
    assert_eq!(held64, wanted64, "round {round}: /64 entries");
    let held128: std::collections::BTreeMap<u128, u64> = maps
        .ban128_v6
        .iter()
        .map(|entry| entry.map(|(key, value)| (u128::from_be_bytes(key), value)))
        .collect::<Result<_, _>>()
        .unwrap();
    let wanted128: std::collections::BTreeMap<u128, u64> = tables
        .exact_v6
        .iter()
        .flat_map(|(prefix, exact)| {
            exact
                .hosts
                .iter()
                .map(move |(low, expiry)| ((u128::from(*prefix) << 64) | u128::from(*low), *expiry))
        })
        .collect();
    assert_eq!(held128, wanted128, "round {round}: /128 entries");
}

/// A writer that died half-way leaves the exact IPv6 maps wrong; the
/// resync at start puts them right from the tries.
#[test]
fn a_resync_puts_the_exact_ipv6_entries_right() {
    let mut harness = Harness::new();
    let ports = [published(Family::V6, Proto::Tcp, None, 80, "web")];
    harness.apply(&policy(vec![]), &ports);
    let mut bans = dockfw::bans::BanSet::new();
    bans.insert("2001:db8:1:1::/64".parse().unwrap(), NEVER);
    bans.insert("2001:db8:1:2::5/128".parse().unwrap(), NEVER);
    harness.set_bans(bans.clone());
    let maps = &mut harness.dataplane.maps;
    // A /64 entry that lost its ban, one of a /64 with no ban, a /64 whose
    // /128 went missing, a stray /128.
    let key64 = |text: &str| {
        let bits = u128::from(text.parse::<std::net::Ipv6Addr>().unwrap());
        ((bits >> 64) as u64).to_be_bytes()
    };
    let unbanned = dockfw_common::Ban64::default();
    maps.ban64_v6
        .insert(key64("2001:db8:1:1::"), unbanned, 0)
        .unwrap();
    let stale = dockfw_common::Ban64 {
        expires_ns: NEVER,
        ..Default::default()
    };
    maps.ban64_v6
        .insert(key64("2001:db8:9:9::"), stale, 0)
        .unwrap();
    let host = u128::from("2001:db8:1:2::5".parse::<std::net::Ipv6Addr>().unwrap());
    maps.ban128_v6.remove(&host.to_be_bytes()).unwrap();
    let stray = u128::from("2001:db8:1:1::7".parse::<std::net::Ipv6Addr>().unwrap());
    maps.ban128_v6.insert(stray.to_be_bytes(), 1, 0).unwrap();
    let frame = |src: &str| Frame::tcp(src, 1, "2001:db8::2", 80, SYN).build();
    for src in ["2001:db8:1:1::1", "2001:db8:1:2::5"] {
        assert_eq!(
            harness.verdict(Program::Xdp, &frame(src)),
            PASS,
            "{src}: the wrong entries decide before the resync"
        );
    }
    dockfw::dataplane::bans::resync_bans(&mut harness.dataplane.maps, &bans).unwrap();
    assert_exact_maps(&harness, &bans.tables(), 0);
    for (src, expected) in [
        ("2001:db8:1:1::1", DROP),
        ("2001:db8:9:9::1", PASS),
        ("2001:db8:1:2::5", DROP),
        ("2001:db8:1:2::6", PASS),
        ("2001:db8:1:1::7", DROP),
    ] {
        assert_eq!(
            harness.verdict(Program::Xdp, &frame(src)),
            expected,
            "{src}"
        );
    }
}

/// The exact IPv6 maps can be smaller than the ban trie (a trie re-adopted
/// from pins made with a larger --max-bans): a /64 whose entries do not fit
/// is left to the trie, and no verdict changes.
#[test]
fn exact_ipv6_entries_that_do_not_fit_leave_the_trie_to_decide() {
    let capacities = dockfw::dataplane::Capacities {
        bans_v6: 4,
        ..dockfw::dataplane::Capacities::default()
    };
    let mut harness = Harness::with_capacities(capacities);
    let ports = [published(Family::V6, Proto::Tcp, None, 80, "web")];
    harness.apply(&policy(vec![]), &ports);
    // Three strays fill the /128 map but for one entry.
    for host in 1..=3u128 {
        let stray = (0x3fff_u128 << 112) | host;
        harness
            .dataplane
            .maps
            .ban128_v6
            .insert(stray.to_be_bytes(), NEVER, 0)
            .unwrap();
    }
    let mut bans = dockfw::bans::BanSet::new();
    for net in [
        "2001:db8:1:1::/64",
        "2001:db8:1:2::5/128",
        "2001:db8:1:2::6/128",
    ] {
        bans.insert(net.parse().unwrap(), NEVER);
    }
    harness.set_bans(bans);
    let held: Vec<[u8; 8]> = harness
        .dataplane
        .maps
        .ban64_v6
        .keys()
        .collect::<Result<_, _>>()
        .unwrap();
    let slash64 = |text: &str| {
        ((u128::from(text.parse::<std::net::Ipv6Addr>().unwrap()) >> 64) as u64).to_be_bytes()
    };
    assert_eq!(
        held,
        [slash64("2001:db8:1:1::")],
        "the /64 with two /128s does not fit"
    );
    for (src, expected) in [
        ("2001:db8:1:1::1", DROP),
        ("2001:db8:1:2::5", DROP),
        ("2001:db8:1:2::6", DROP),
        ("2001:db8:1:2::7", PASS),
    ] {
        let frame = Frame::tcp(src, 1, "2001:db8::2", 80, SYN).build();
        for program in PROGRAMS {
            assert_eq!(
                harness.verdict(program, &frame),
                expected,
                "{program:?}: {src}"
            );
        }
    }
    // Room again, and the /64 left out changes: its entry (never written)
    // is removed without error, and the new one fits.
    for host in 1..=2u128 {
        let stray = (0x3fff_u128 << 112) | host;
        harness
            .dataplane
            .maps
            .ban128_v6
            .remove(&stray.to_be_bytes())
            .unwrap();
    }
    let mut more = harness.bans.clone();
    more.insert("2001:db8:1:2::8/128".parse().unwrap(), NEVER);
    harness.set_bans(more);
    assert_eq!(harness.dataplane.maps.ban64_v6.keys().count(), 2);
    for (src, expected) in [("2001:db8:1:2::8", DROP), ("2001:db8:1:2::7", PASS)] {
        let frame = Frame::tcp(src, 1, "2001:db8::2", 80, SYN).build();
        assert_eq!(harness.verdict(Program::Xdp, &frame), expected, "{src}");
    }
}

#[test]
fn a_ban_covers_the_later_fragments_of_a_banned_source() {
    let mut harness = Harness::new();
    let ports = [tcp4(8080, "web")];
    harness.apply(&policy(vec![rule("allow", &[], Action::Pass)]), &ports);
    harness.ban("198.51.100.0/24", NEVER);
    for program in PROGRAMS {
        let id = if program == Program::Xdp { 90 } else { 91 };
        let first = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, SYN)
            .fragment(0, true, id)
            .payload(64);
        let later = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 8080, 0)
            .fragment(11, false, id)
            .payload(16);
        assert_eq!(
            harness.verdict(program, &first.build()),
            DROP,
            "{program:?}: banned first fragment"
        );
        assert_eq!(
            harness.verdict(program, &later.build()),
            DROP,
            "{program:?}: and its later fragment"
        );
    }
    assert_eq!(
        harness
            .stat(&StatOwner::Banned(ports[0].key))
            .dropped
            .packets,
        4
    );
}
