//! More shapes: user chains, FORWARD before DOCKER-USER, which keys get
//! rules, sets that change, rate limits, the rule budget and missing
//! chains (same setup as [`super::shapes`]).

use super::{
    outcome, reasons,
    shapes::{ACK, SYN, drops, key, run, save, setup, tcp, udp},
    xdp,
};
use crate::{
    mirror::report::Outcome,
    model::{Action, Per, Proto},
};

#[test]
fn user_chains_are_inlined_with_their_returns() {
    let t = run(&[
        "-A DOCKER-USER -p tcp -j FILTERS",
        "-A FILTERS -s 203.0.113.0/24 -j RETURN",
        "-A FILTERS -m connlimit --connlimit-above 3 -j RETURN",
        "-A FILTERS -p tcp -m tcp --dport 7000 -j DROP",
        "-A FILTERS -s 198.51.100.0/24 -j DROP",
    ]);
    assert!(matches!(outcome(&t, "DOCKER-USER#1"), Outcome::Jump { .. }));
    // After an inexact RETURN, nothing in the chain is dropped in XDP.
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1>FILTERS#3"),
        Outcome::NetfilterOnly { .. }
    ));
    assert!(!drops(&t, &tcp(7000, "198.51.100.1", 1, SYN)));

    let t = run(&[
        "-A DOCKER-USER -p tcp -j FILTERS",
        "-A FILTERS -s 203.0.113.0/24 -j RETURN",
        "-A FILTERS -j DROP",
        "-A DOCKER-USER -j DROP",
    ]);
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
    // Returned from FILTERS, then dropped by DOCKER-USER#2.
    assert!(drops(&t, &tcp(8080, "203.0.113.1", 1, SYN)));
    assert_eq!(
        xdp(&t.rules, &tcp(8080, "198.51.100.1", 1, SYN)).map(|(_, name)| name),
        Some("DOCKER-USER#1>FILTERS#2".into())
    );
}

#[test]
fn loops_depth_gotos_and_unknown_targets_pass() {
    let t = run(&[
        "-A DOCKER-USER -j A",
        "-A A -j B",
        "-A B -j A",
        "-A DOCKER-USER -j DROP",
    ]);
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));

    let t = run(&[
        "-A DOCKER-USER -p udp -j NFQUEUE --queue-num 1",
        "-A DOCKER-USER -j DROP",
    ]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    assert!(!drops(&t, &udp(8053, "198.51.100.1")));
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));

    let t = run(&[
        "-A DOCKER-USER -s 198.51.100.0/24 -g G",
        "-A G -p udp -j DROP",
        "-A DOCKER-USER -j DROP",
    ]);
    assert!(drops(&t, &udp(8053, "198.51.100.1")));
    // Leaving the goto'd chain goes on in FORWARD, not in DOCKER-USER.
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
    assert!(drops(&t, &tcp(8080, "203.0.113.1", 1, SYN)));
}

#[test]
fn fragments_other_protocols_and_log_have_no_effect() {
    let t = run(&[
        "-A DOCKER-USER -f -j DROP",
        "-A DOCKER-USER -p icmp -j DROP",
        "-A DOCKER-USER -j LOG --log-prefix \"seen: \"",
    ]);
    for path in ["DOCKER-USER#1", "DOCKER-USER#2", "DOCKER-USER#3"] {
        assert!(
            matches!(outcome(&t, path), Outcome::NoEffect { .. }),
            "{path}"
        );
    }
    assert!(t.rules.is_empty());
}

#[test]
fn tcp_flags() {
    let t = run(&[
        "-A DOCKER-USER -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP",
        "-A DOCKER-USER -p tcp -m tcp --dport 7000 --syn -j DROP",
    ]);
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, 0)));
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, ACK)));
    assert!(drops(&t, &tcp(7000, "198.51.100.1", 1, SYN)));
    assert!(!drops(&t, &tcp(7000, "198.51.100.1", 1, SYN | ACK)));
}

#[test]
fn forward_rules_before_docker_user_are_respected() {
    let mut s = setup(&["-A DOCKER-USER -j DROP"]);
    s.v4 = Some(save(
        &["-A DOCKER-USER -j DROP"],
        &[
            "-A FORWARD -s 10.0.0.0/8 -j ACCEPT",
            "-A FORWARD -s 11.0.0.0/8 -j DROP",
        ],
        "",
    ));
    let t = s.run();
    assert!(!drops(&t, &tcp(8080, "10.1.1.1", 1, SYN)));
    assert!(drops(&t, &tcp(8080, "11.1.1.1", 1, SYN)));
    assert!(matches!(
        outcome(&t, "FORWARD#2"),
        Outcome::NetfilterOnly { .. }
    ));
}

#[test]
fn only_keys_docker_dnats_get_rules() {
    let mut s = setup(&["-A DOCKER-USER -j DROP"]);
    // The API says 8080 goes to port 81: the two disagree.
    s.ports[0].container_port = 81;
    // A redirect before Docker's DNAT for 7000.
    s.v4 = Some(
        save(&["-A DOCKER-USER -j DROP"], &[], "")
            .replace(
                "-A PREROUTING -m addrtype",
                "-A PREROUTING -p tcp -m tcp --dport 7000 -j REDIRECT --to-ports 3128\n-A PREROUTING -m addrtype",
            ),
    );
    let t = s.run();
    let untrusted: Vec<&str> = t.report.families[0]
        .untrusted
        .iter()
        .map(|key| key.reason.as_str())
        .collect();
    assert!(
        untrusted.iter().any(|why| why.contains("Docker API")),
        "{untrusted:?}"
    );
    assert!(
        untrusted.iter().any(|why| why.contains("REDIRECT")),
        "{untrusted:?}"
    );
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
    assert!(!drops(&t, &tcp(7000, "198.51.100.1", 1, SYN)));
    assert!(drops(&t, &tcp(7001, "198.51.100.1", 1, SYN)));

    // NOTRACK in raw: no conntrack, no DNAT.
    let mut s = setup(&["-A DOCKER-USER -j DROP"]);
    s.v4 = Some(save(
        &["-A DOCKER-USER -j DROP"],
        &[],
        "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p udp -j CT --notrack\nCOMMIT\n",
    ));
    let t = s.run();
    assert!(!drops(&t, &udp(8053, "198.51.100.1")));
    assert!(drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
}

#[test]
fn wildcards_get_one_entry_per_local_address() {
    let s = setup(&["-A DOCKER-USER -p udp -j DROP"]);
    let t = s.run();
    let ports = t.ports_with(&s.ports);
    let added: Vec<String> = ports[s.ports.len()..]
        .iter()
        .map(|p| p.key.label())
        .collect();
    assert_eq!(added, ["192.0.2.10:8053/udp", "127.0.0.1:8053/udp"]);
    // A packet to another address on the wildcard port meets no mirrored rule.
    let mut other = udp(8053, "198.51.100.1");
    other.key.addr = None;
    assert!(!drops(&t, &other));
}

#[test]
fn trailing_returns_and_passes_cost_no_rules() {
    let t = run(&[
        "-A DOCKER-USER -s 203.0.113.0/24 -j ACCEPT",
        "-A DOCKER-USER -p tcp -m tcp --dport 80 -j DROP",
        "-A DOCKER-USER -s 10.0.0.0/8 -j ACCEPT",
        "-A DOCKER-USER -j RETURN",
    ]);
    let names: Vec<&str> = t.rules.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["DOCKER-USER#1", "DOCKER-USER#2"]);
    // The pass is only where a drop follows.
    assert_eq!(t.rules[0].ports.bindings.as_ref().map(Vec::len), Some(2));
}

#[test]
fn set_entries_about_to_expire_are_not_dropped() {
    let t = run(&["-A DOCKER-USER -m set --match-set soon src -j DROP"]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Partial { .. }
    ));
    assert!(!drops(&t, &tcp(8080, "203.0.113.1", 1, SYN)));
    assert!(drops(&t, &tcp(8080, "203.0.113.2", 1, SYN)));
    let t = run(&["-A DOCKER-USER -m set ! --match-set soon src -j DROP"]);
    assert!(!drops(&t, &tcp(8080, "203.0.113.1", 1, SYN)));
    assert!(drops(&t, &tcp(8080, "203.0.113.9", 1, SYN)));
    let t = run(&[
        "-A DOCKER-USER -j SET --del-set blocklist src",
        "-A DOCKER-USER -m set --match-set blocklist src -j DROP",
    ]);
    assert!(reasons(outcome(&t, "DOCKER-USER#2")).contains("-j SET"));
}

#[test]
fn rate_limits_only_on_request() {
    let lines = [
        "-A DOCKER-USER -p udp -m udp --dport 53 -m limit --limit 100/sec --limit-burst 200 -j ACCEPT",
        "-A DOCKER-USER -p udp -m udp --dport 53 -j LOG --log-prefix \"dns: \"",
        "-A DOCKER-USER -p udp -m udp --dport 53 -j DROP",
        "-A DOCKER-USER -p tcp -m hashlimit --hashlimit-above 20/sec --hashlimit-burst 40 --hashlimit-mode srcip --hashlimit-name web -j DROP",
        "-A DOCKER-USER -p tcp -m hashlimit --hashlimit-above 20/sec --hashlimit-mode srcip,srcport --hashlimit-name fine -j DROP",
    ];
    let t = run(&lines);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    assert!(!drops(&t, &udp(8053, "198.51.100.1")));
    let mut s = setup(&lines);
    s.rate_limits = true;
    let t = s.run();
    let limited: Vec<_> = t
        .rules
        .iter()
        .filter_map(|rule| match rule.action {
            Action::RateLimit(limit) => Some((rule.name.clone(), limit)),
            _ => None,
        })
        .collect();
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert_eq!(limited[0].0, "DOCKER-USER#1");
    assert_eq!(limited[0].1.per, Per::Port);
    assert_eq!(limited[0].1.burst, 200);
    assert_eq!(limited[1].0, "DOCKER-USER#4");
    assert_eq!(limited[1].1.per, Per::Source);
    assert!(reasons(outcome(&t, "DOCKER-USER#5")).contains("rate limit"));
}

#[test]
fn the_rule_budget_cuts_a_suffix() {
    let lines: Vec<String> = (0..40)
        .map(|i| format!("-A DOCKER-USER -s 198.51.{i}.0/24 -p tcp -m tcp --dport 80 -j DROP"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut t = run(&refs);
    t.fit_budget(|port| usize::from(port.key.port == 8080) * 2);
    let on_key = t
        .rules
        .iter()
        .filter(|rule| {
            rule.ports
                .bindings
                .as_ref()
                .is_some_and(|b| b.contains(&key(8080, Proto::Tcp)))
        })
        .count();
    assert_eq!(on_key, 30);
    assert!(
        t.report
            .budget
            .iter()
            .any(|line| line.contains("DOCKER-USER#31")),
        "{:?}",
        t.report.budget
    );
}

#[test]
fn missing_chains_and_the_nftables_backend() {
    let mut s = setup(&[]);
    s.v4 = Some("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n".into());
    s.nftables = true;
    let t = s.run();
    assert!(t.report.nftables_backend);
    let message = t.report.families[0].message.clone().unwrap_or_default();
    assert!(message.contains("nftables"), "{message}");
    assert!(
        t.report
            .render()
            .contains("keeps enforcing its policy file")
    );

    let mut s = setup(&[]);
    s.v4 = Some(save(&[], &[], "").replace("-A FORWARD -j DOCKER-USER\n", ""));
    let t = s.run();
    assert_eq!(
        t.report.families[0].state,
        crate::mirror::report::ChainState::NotReached
    );

    let mut s = setup(&[]);
    s.v4 = Some("garbage\n".into());
    let t = s.run();
    assert_eq!(
        t.report.families[0].state,
        crate::mirror::report::ChainState::Unreadable
    );
}

#[test]
fn an_unreadable_rule_is_a_shadow() {
    let t = run(&[
        "-A DOCKER-USER -m comment --comment \"unbalanced -j ACCEPT",
        "-A DOCKER-USER -j DROP",
    ]);
    assert!(matches!(
        outcome(&t, "DOCKER-USER#1"),
        Outcome::Shadow { .. }
    ));
    assert!(!drops(&t, &tcp(8080, "198.51.100.1", 1, SYN)));
}

#[test]
fn a_large_host_translates_quickly() {
    // 600 published ports on four local addresses, a DNAT rule each, and a
    // DOCKER-USER of 30 rules: the translation stays well under the poll
    // interval (printed, not asserted: tests do not time).
    let mut s = setup(&["-A DOCKER-USER -j DROP"]);
    let mut dnat = String::new();
    s.ports.clear();
    for index in 0..600u16 {
        let port = 10000 + index;
        s.ports.push(super::port(
            crate::model::Family::V4,
            Proto::Tcp,
            None,
            port,
            "many",
            "10.210.60.9",
            port,
        ));
        dnat.push_str(&format!(
            "-A DOCKER ! -i docker0 -p tcp -m tcp --dport {port} -j DNAT --to-destination 10.210.60.9:{port}\n"
        ));
    }
    s.local
        .extend(["10.0.0.1", "10.0.0.2"].map(|addr| addr.parse::<std::net::IpAddr>().unwrap()));
    let lines: Vec<String> = (0..30)
        .map(|i| format!("-A DOCKER-USER -s 198.51.{i}.0/24 -p tcp -m multiport --dports 10000:10100,10500 -j DROP"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    s.v4 = Some(save(&refs, &[], "").replace(
        "-A DOCKER -i docker0 -j RETURN\n",
        &format!("-A DOCKER -i docker0 -j RETURN\n{dnat}"),
    ));
    let started = std::time::Instant::now();
    let t = s.run();
    eprintln!(
        "600 ports x 4 addresses, 30 rules: {} keys, {} rules in {:?}",
        t.keys.len(),
        t.rules.len(),
        started.elapsed()
    );
    assert_eq!(t.keys.len(), 2400);
    assert!(drops(&t, &tcp(10050, "198.51.3.1", 1, SYN)));
}
