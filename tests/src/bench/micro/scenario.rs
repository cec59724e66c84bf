//! The benchmark's world: 1,000 published ports (IPv4 and IPv6), rule sets
//! of 1, 8, 16 and 32 rules where the packet matches the last one, random
//! bans that never cover the test sources, and the frames that travel it.
//!
//! Two IPv4 test sources separate the ban summary's two outcomes:
//! [`SRC_NEAR`] shares its /24 with a ban (the /24's state is "partly
//! banned", so the data plane looks up its bitmap and misses), [`SRC_QUIET`]
//! shares it with none (the state alone clears it). The headline "common path" uses
//! `SRC_NEAR`, the dearer of the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dockfw::{
    bans::{BanSet, NEVER},
    model::{
        Action, Family, FragmentAction, Per, Policy, PortSpec, Proto, PublishedPort, Rate,
        RateLimit, Rule, RuleOrigin,
    },
};
use dockfw_tests::{
    frame::{Ext, Frame, SYN},
    runner::published,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::bench::rng::Rng;

/// Destination of every IPv4 frame.
pub const DST_V4: &str = "192.0.2.1";
/// Destination of every IPv6 frame.
pub const DST_V6: &str = "2001:db8:ffff::1";
/// The host's local prefixes, as a Docker host's local routing table holds
/// them (another interface, two bridges, the destination, loopback): every
/// wildcard hit looks its destination up in them.
pub const LOCAL_PREFIXES: &[&str] = &[
    "203.0.113.10/32",
    "172.17.0.1/32",
    "172.18.0.1/32",
    "192.0.2.1/32",
    "127.0.0.0/8",
    "fe80::1/128",
    "2001:db8:ffff::1/128",
    "::1/128",
];
/// IPv4 source whose /24 holds a ban ([`NEAR_BAN_V4`]) but which no ban
/// covers: state "partly banned", the /24's bitmap consulted, no match.
pub const SRC_NEAR: &str = "198.51.101.7";
/// IPv4 source whose /24 no ban touches: its state alone clears it.
pub const SRC_QUIET: &str = "198.51.100.7";
/// IPv4 source inside [`NEAR_BAN_V4`]: banned.
pub const SRC_BANNED: &str = "198.51.101.200";
/// The ban next to [`SRC_NEAR`].
pub const NEAR_BAN_V4: &str = "198.51.101.128/25";
/// IPv6 source sharing its /32 (the summary's unit) with [`NEAR_BAN_V6`]
/// but not its /64: the refinement clears it.
pub const SRC_NEAR_V6: &str = "2001:db8:1::7";
/// The ban next to [`SRC_NEAR_V6`].
pub const NEAR_BAN_V6: &str = "2001:db8:1:1::/64";
/// IPv6 source sharing its /64 with [`SAME64_BAN_V6`]: the /64's exact
/// entry is looked up, and its host filter clears the source.
pub const SRC_SAME64_V6: &str = "2001:db8:1:2::7";
/// The ban in [`SRC_SAME64_V6`]'s /64.
pub const SAME64_BAN_V6: &str = "2001:db8:1:2::5/128";
/// IPv6 source inside [`NEAR_BAN_V6`]: banned, by the /64's exact entry.
pub const SRC_BANNED_V6: &str = "2001:db8:1:1::9";
/// IPv6 source sharing its /64 with [`TRIE_BAN_V6`]: a /96 leaves the /64
/// without an exact entry, the ban trie is walked, and misses.
pub const SRC_TRIE_V6: &str = "2001:db8:1:3::7";
/// The ban in [`SRC_TRIE_V6`]'s /64.
pub const TRIE_BAN_V6: &str = "2001:db8:1:3:0:1::/96";
/// The prefixes of the matching last rule: they cover every test source.
const MATCH_FROM: [&str; 2] = ["198.51.0.0/16", "2001:db8::/32"];

/// Destination port with 16 rules: the common path.
pub const PORT_16_RULES: u16 = 8080;
/// Destination port with one rule.
pub const PORT_1_RULE: u16 = 8081;
/// Destination port with 8 rules.
pub const PORT_8_RULES: u16 = 8082;
/// Destination port with 32 rules (the most a port holds).
pub const PORT_32_RULES: u16 = 8083;
/// Published port no rule selects (unmatched: PASS).
pub const PORT_NO_RULES: u16 = 8084;
/// Published port with one drop rule without a source condition.
pub const PORT_ANY_SOURCE: u16 = 8085;
/// A port nothing publishes.
pub const PORT_UNPUBLISHED: u16 = 22;
/// First of the background ports; together with the test ports they make
/// [`PUBLISHED_PORTS`].
const BACKGROUND_FIRST: u16 = 10_000;
/// Published port numbers (each on IPv4 and IPv6).
pub const PUBLISHED_PORTS: u16 = 1_000;
/// Test ports above.
const TEST_PORTS: u16 = 6;
/// Non-matching rules in front of the matching one (32 rules on a port).
const FILLER_RULES: usize = 31;
/// Prefixes per family in a non-matching rule's source set.
const FILLER_PREFIXES: usize = 4;
/// Prefixes per family of the background ports' rule.
const BACKGROUND_PREFIXES: usize = 16;

fn origin(line: usize) -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: "micro-bench.toml".into(),
        line,
    }
}

fn tcp_ports(ports: &[u16]) -> Vec<PortSpec> {
    ports
        .iter()
        .map(|port| PortSpec {
            proto: Proto::Tcp,
            low: *port,
            high: *port,
        })
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|error| panic!("bad benchmark address {text}: {error}"))
}

fn net(text: &str) -> IpNet {
    text.parse()
        .unwrap_or_else(|error| panic!("bad benchmark prefix {text}: {error}"))
}

/// Whether `net` contains any test source (so it may not be a filler
/// prefix or a random ban).
fn covers_a_test_source(net: &IpNet) -> bool {
    [
        SRC_NEAR,
        SRC_QUIET,
        SRC_BANNED,
        SRC_NEAR_V6,
        SRC_SAME64_V6,
        SRC_BANNED_V6,
        SRC_TRIE_V6,
    ]
    .iter()
    .any(|src| net.contains(&ip(src)))
}

fn random_v4(rng: &mut Rng, shortest: u32, longest: u32) -> Ipv4Net {
    let len = rng.range(shortest, longest) as u8;
    Ipv4Net::new(Ipv4Addr::from(rng.next_u32()), len)
        .unwrap_or_else(|error| panic!("prefix length {len}: {error}"))
        .trunc()
}

fn random_v6(rng: &mut Rng, shortest: u32, longest: u32) -> Ipv6Net {
    let len = rng.range(shortest, longest) as u8;
    // Global unicast (2000::/3), like real ban lists.
    let high = (rng.next_u64() & !(0b111 << 61)) | (0b001 << 61);
    let addr = (u128::from(high) << 64) | u128::from(rng.next_u64());
    Ipv6Net::new(Ipv6Addr::from(addr), len)
        .unwrap_or_else(|error| panic!("prefix length {len}: {error}"))
        .trunc()
}

/// `count` random source prefixes per family, none covering a test source.
fn filler_sources(rng: &mut Rng, count: usize) -> Vec<IpNet> {
    let mut nets = Vec::with_capacity(2 * count);
    while nets.len() < 2 * count {
        let candidate = if nets.len() % 2 == 0 {
            IpNet::V4(random_v4(rng, 8, 32))
        } else {
            IpNet::V6(random_v6(rng, 32, 128))
        };
        if !covers_a_test_source(&candidate) {
            nets.push(candidate);
        }
    }
    nets
}

/// The policy: a background rule on the 994 other ports, 31 non-matching
/// filler rules spread so ports carry 1, 8, 16 and 32 rules, then the rule
/// that matches every test source, a drop-everything rule on
/// [`PORT_ANY_SOURCE`], and nothing on [`PORT_NO_RULES`].
pub fn policy(rng: &mut Rng) -> Policy {
    let mut rules = Vec::new();
    let background_last = BACKGROUND_FIRST + PUBLISHED_PORTS - TEST_PORTS - 1;
    let mut background = Rule::new(
        "background",
        origin(1),
        Action::RateLimit(RateLimit {
            rate: Rate {
                count: 100,
                per_ns: 1_000_000_000,
            },
            burst: 200,
            per: Per::Source,
            total: None,
        }),
    );
    background.ports.ports = vec![PortSpec {
        proto: Proto::Tcp,
        low: BACKGROUND_FIRST,
        high: background_last,
    }];
    background.sources.from = Some(filler_sources(rng, BACKGROUND_PREFIXES));
    rules.push(background);

    for index in 0..FILLER_RULES {
        let mut ports = vec![PORT_32_RULES];
        if index < 15 {
            ports.push(PORT_16_RULES);
        }
        if index < 7 {
            ports.push(PORT_8_RULES);
        }
        // Actions vary as in a real policy; none of these rules matches.
        let action = match index % 3 {
            0 => Action::Drop,
            1 => Action::Pass,
            _ => Action::RateLimit(RateLimit {
                rate: Rate {
                    count: 10,
                    per_ns: 1_000_000_000,
                },
                burst: 20,
                per: Per::Source,
                total: Some((
                    Rate {
                        count: 1000,
                        per_ns: 1_000_000_000,
                    },
                    2000,
                )),
            }),
        };
        let mut rule = Rule::new(format!("filler-{index:02}"), origin(10 + index), action);
        rule.ports.ports = tcp_ports(&ports);
        rule.sources.from = Some(filler_sources(rng, FILLER_PREFIXES));
        rules.push(rule);
    }

    let mut last = Rule::new("match-last", origin(100), Action::Drop);
    last.ports.ports = tcp_ports(&[PORT_1_RULE, PORT_8_RULES, PORT_16_RULES, PORT_32_RULES]);
    last.sources.from = Some(MATCH_FROM.iter().map(|text| net(text)).collect());
    rules.push(last);

    let mut any = Rule::new("drop-any-source", origin(101), Action::Drop);
    any.ports.ports = tcp_ports(&[PORT_ANY_SOURCE]);
    rules.push(any);

    Policy {
        rules,
        fragments: FragmentAction::Pass,
    }
}

/// The published ports: every port number on IPv4 and IPv6 TCP.
pub fn ports() -> Vec<PublishedPort> {
    let test = [
        PORT_16_RULES,
        PORT_1_RULE,
        PORT_8_RULES,
        PORT_32_RULES,
        PORT_NO_RULES,
        PORT_ANY_SOURCE,
    ];
    let background = (0..PUBLISHED_PORTS - TEST_PORTS).map(|offset| BACKGROUND_FIRST + offset);
    let mut ports = Vec::with_capacity(2 * usize::from(PUBLISHED_PORTS));
    for port in test.into_iter().chain(background) {
        let container = format!("svc{port}");
        ports.push(published(Family::V4, Proto::Tcp, None, port, &container));
        ports.push(published(Family::V6, Proto::Tcp, None, port, &container));
    }
    ports
}

/// Whether two IPv4 prefixes share an address.
fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `count` IPv4 bans: [`NEAR_BAN_V4`] first, then random /16../32 prefixes
/// that neither cover [`SRC_NEAR`] nor touch [`SRC_QUIET`]'s /24. A longer
/// list starts with every shorter one (same seed).
pub fn bans_v4(rng: &mut Rng, count: usize) -> Vec<IpNet> {
    let near = match net(NEAR_BAN_V4) {
        IpNet::V4(near) => near,
        IpNet::V6(_) => unreachable!("NEAR_BAN_V4 is IPv4"),
    };
    let quiet_24 = Ipv4Net::new(SRC_QUIET.parse().unwrap_or(Ipv4Addr::UNSPECIFIED), 24)
        .unwrap_or_default()
        .trunc();
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut bans = Vec::with_capacity(count);
    seen.insert(near);
    bans.push(IpNet::V4(near));
    while bans.len() < count {
        let candidate = random_v4(rng, 16, 32);
        if covers_a_test_source(&IpNet::V4(candidate)) || overlaps(&candidate, &quiet_24) {
            continue;
        }
        if seen.insert(candidate) {
            bans.push(IpNet::V4(candidate));
        }
    }
    bans
}

/// `count` IPv6 bans: [`NEAR_BAN_V6`], [`SAME64_BAN_V6`], [`TRIE_BAN_V6`],
/// then random /32../128 prefixes in 2000::/3 that cover no test source.
pub fn bans_v6(rng: &mut Rng, count: usize) -> Vec<IpNet> {
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut bans = vec![net(NEAR_BAN_V6), net(SAME64_BAN_V6), net(TRIE_BAN_V6)];
    seen.extend(bans.iter().copied());
    while bans.len() < count {
        let candidate = IpNet::V6(random_v6(rng, 32, 128));
        if !covers_a_test_source(&candidate) && seen.insert(candidate) {
            bans.push(candidate);
        }
    }
    bans
}

/// A ban set of `nets`, all permanent.
pub fn ban_set(nets: &[IpNet]) -> BanSet {
    let mut set = BanSet::new();
    for net in nets {
        set.insert(*net, NEVER);
    }
    set
}

/// IPv4 TCP SYN from `src` to `port`.
pub fn syn_v4(src: &str, port: u16) -> Vec<u8> {
    Frame::tcp(src, 40_000, DST_V4, port, SYN).build()
}

/// The worst parse path: 802.1Q + IPv6 + hop-by-hop, routing and
/// destination options headers + TCP SYN to `port`.
pub fn syn_v6_worst(port: u16) -> Vec<u8> {
    Frame::tcp(SRC_NEAR_V6, 40_000, DST_V6, port, SYN)
        .vlan(0x8100, 5)
        .ext(Ext::HopByHop)
        .ext(Ext::Routing)
        .ext(Ext::DestOpts)
        .build()
}

/// Plain IPv6 TCP SYN from `src` to `port`.
pub fn syn_v6(src: &str, port: u16) -> Vec<u8> {
    Frame::tcp(src, 40_000, DST_V6, port, SYN).build()
}

/// Plain IPv6 TCP SYN from [`SRC_NEAR_V6`] to `port`.
pub fn syn_v6_plain(port: u16) -> Vec<u8> {
    Frame::tcp(SRC_NEAR_V6, 40_000, DST_V6, port, SYN).build()
}

/// An ARP request: not IP, passed after the Ethernet header.
pub fn arp() -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    frame.extend_from_slice(&[0; 28]);
    frame
}
