//! The compiler against the policy's meaning: for random policies and
//! packets, the compiled bitmaps (evaluated the way the data plane does)
//! pick the same rule as evaluating the rules one by one.

use std::{collections::BTreeMap, net::IpAddr};

use dockfw_common::rule_flag;

use super::*;
use crate::model::{
    BindingKey, ContainerRef, Family, PortSpec, Rate, RateLimit, RuleOrigin, SourceMatch,
};

fn port(proto: Proto, number: u16, container: &str) -> PublishedPort {
    PublishedPort {
        key: BindingKey {
            family: Family::V4,
            proto,
            addr: None,
            port: number,
        },
        container: ContainerRef {
            id: format!("{container}-id-0123456789"),
            name: container.into(),
            labels: BTreeMap::from([("tier".to_string(), container.to_string())]),
        },
        container_addr: None,
        container_port: 80,
    }
}

fn origin() -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: "policy.toml".into(),
        line: 1,
    }
}

struct Packet {
    src: IpAddr,
    sport: u16,
    flags: u8,
    ifindex: u32,
}

/// The rule the spec says matches: the first rule, in order, whose every
/// condition holds.
fn reference(
    policy: &Policy,
    port: &PublishedPort,
    packet: &Packet,
    ifaces: &BTreeMap<String, u32>,
) -> Option<usize> {
    policy.rules.iter().position(|rule| {
        let tcp = port.key.proto == Proto::Tcp;
        applies(rule, port)
            && rule.sources.matches(&packet.src)
            && (rule.ifaces.is_empty()
                || rule
                    .ifaces
                    .iter()
                    .any(|name| ifaces.get(name) == Some(&packet.ifindex)))
            && (!rule.syn_only || (tcp && is_syn(packet.flags)))
            && rule
                .source_ports
                .is_none_or(|(low, high)| (low..=high).contains(&packet.sport))
            && rule
                .tcp_flags
                .is_none_or(|(mask, value)| tcp && packet.flags & mask == value & mask)
    })
}

/// The rule the compiled form picks, evaluated as the data plane does.
fn compiled_choice(port: &CompiledPort, packet: &Packet) -> Option<usize> {
    let policy = &port.policy;
    let mut bits = if policy.flags & port_flag::HAS_SOURCE_RULES != 0 {
        sources::lookup(&port.sources, &packet.src)
    } else {
        policy.default_bits
    };
    if policy.flags & port_flag::HAS_IFACE_RULES != 0 {
        bits &= port
            .iface_masks
            .iter()
            .find(|(ifindex, _)| *ifindex == packet.ifindex)
            .map_or(policy.iface_default_mask, |(_, mask)| *mask);
    }
    let tcp = port.port.key.proto == Proto::Tcp;
    if !(tcp && is_syn(packet.flags)) {
        bits &= !policy.syn_only_mask;
    }
    while bits != 0 {
        let index = bits.trailing_zeros() as usize;
        let rule = &port.rules[index].action;
        let residual_ok = rule.flags & rule_flag::RESIDUAL == 0 || {
            let flags = if tcp { packet.flags } else { 0 };
            (rule.sport_lo..=rule.sport_hi).contains(&packet.sport)
                && flags & rule.tcp_flags_mask == rule.tcp_flags_value
        };
        if residual_ok {
            return Some(port.rules[index].rule);
        }
        bits &= bits - 1;
    }
    None
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        crate::test_rng::step(&mut self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn addr(&mut self) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 | (self.next() as u32 & 0x0003_ffff),
        ))
    }

    fn nets(&mut self, count: u64) -> Vec<ipnet::IpNet> {
        (0..self.below(count))
            .map(|_| {
                let len = 14 + self.below(19) as u8;
                ipnet::IpNet::new(self.addr(), len)
                    .map(|net| net.trunc())
                    .unwrap()
            })
            .collect()
    }
}

fn random_rule(rng: &mut Rng, index: usize) -> Rule {
    let action = match rng.below(3) {
        0 => Action::Pass,
        1 => Action::Drop,
        _ => Action::RateLimit(RateLimit {
            rate: "100/s".parse().unwrap(),
            burst: 10,
            per: Per::Port,
            total: None,
        }),
    };
    let mut rule = Rule::new(format!("r{index}"), origin(), action);
    if rng.below(2) == 0 {
        rule.ports.ports = vec![PortSpec {
            proto: if rng.below(2) == 0 {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            low: 80,
            high: 80 + rng.below(3) as u16,
        }];
    }
    if rng.below(4) == 0 {
        rule.ports.container = Some("web".into());
    }
    if rng.below(2) == 0 {
        rule.sources = SourceMatch {
            from: (rng.below(3) != 0).then(|| rng.nets(4)),
            not_from: rng.nets(3),
        };
    }
    rule.syn_only = rng.below(5) == 0;
    if rng.below(6) == 0 {
        rule.ifaces = vec![if rng.below(2) == 0 { "eth0" } else { "eth1" }.into()];
    }
    if rng.below(6) == 0 {
        let low = rng.below(60000) as u16;
        rule.source_ports = Some((low, low.saturating_add(rng.below(5000) as u16)));
    }
    if rng.below(8) == 0 {
        rule.tcp_flags = Some((0x12, 0x10));
    }
    rule
}

#[test]
fn compiled_bitmaps_pick_the_same_rule_as_the_spec() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ifaces = BTreeMap::from([("eth0".to_string(), 2), ("eth1".to_string(), 3)]);
    let ports = vec![
        port(Proto::Tcp, 80, "web"),
        port(Proto::Tcp, 81, "api"),
        port(Proto::Udp, 80, "dns"),
        port(Proto::Udp, 82, "web"),
    ];
    for _ in 0..300 {
        let policy = Policy {
            rules: (0..rng.below(12) as usize)
                .map(|i| random_rule(&mut rng, i))
                .collect(),
            fragments: FragmentAction::Pass,
        };
        let input = CompileInput {
            policy: &policy,
            ports: &ports,
            ifaces: &ifaces,
            audit: false,
            stats_capacity: 1 << 16,
        };
        let compiled = compile(&input, &mut StatRegistry::default()).unwrap();
        for compiled_port in &compiled.ports {
            for _ in 0..40 {
                let packet = Packet {
                    src: rng.addr(),
                    sport: rng.below(65536) as u16,
                    flags: [0x02, 0x12, 0x10, 0x04][rng.below(4) as usize],
                    ifindex: 2 + rng.below(3) as u32,
                };
                assert_eq!(
                    compiled_choice(compiled_port, &packet),
                    reference(&policy, &compiled_port.port, &packet, &ifaces),
                    "port {}, policy {policy:#?}",
                    compiled_port.port.key
                );
            }
        }
    }
}

#[test]
fn more_than_32_rules_on_a_port_is_an_error_naming_it() {
    let policy = Policy {
        rules: (0..33)
            .map(|i| Rule::new(format!("r{i}"), origin(), Action::Drop))
            .collect(),
        fragments: FragmentAction::Pass,
    };
    let ports = [port(Proto::Tcp, 80, "web")];
    let input = CompileInput {
        policy: &policy,
        ports: &ports,
        ifaces: &BTreeMap::new(),
        audit: false,
        stats_capacity: 1 << 16,
    };
    let error = compile(&input, &mut StatRegistry::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("33 rules") && message.contains("80/tcp"),
        "{message}"
    );
}

#[test]
fn rate_limits_audit_and_fragments_are_encoded() {
    let mut rule = Rule::new(
        "limit",
        origin(),
        Action::RateLimit(RateLimit {
            rate: "200/s".parse::<Rate>().unwrap(),
            burst: 400,
            per: Per::Source,
            total: Some(("5000/s".parse::<Rate>().unwrap(), 10000)),
        }),
    );
    rule.fragments = Some(FragmentAction::Drop);
    let policy = Policy {
        rules: vec![rule],
        fragments: FragmentAction::Pass,
    };
    let ports = [port(Proto::Tcp, 80, "web")];
    let input = CompileInput {
        policy: &policy,
        ports: &ports,
        ifaces: &BTreeMap::new(),
        audit: true,
        stats_capacity: 1 << 16,
    };
    let compiled = compile(&input, &mut StatRegistry::default()).unwrap();
    let port = &compiled.ports[0];
    let action = port.rules[0].action;
    assert_eq!(action.interval_ns, 5_000_000);
    assert_eq!(action.burst_ns, 400 * 5_000_000);
    assert_eq!(action.aggregate_interval_ns, 200_000);
    assert_eq!(action.aggregate_burst_ns, 10_000 * 200_000);
    assert_eq!(action.flags & rule_flag::PER_SOURCE, rule_flag::PER_SOURCE);
    assert_eq!(
        action.flags & rule_flag::AUDIT,
        rule_flag::AUDIT,
        "global audit marks rules"
    );
    assert_ne!(port.policy.flags & port_flag::AUDIT, 0, "and ports");
    assert_ne!(port.policy.flags & port_flag::FRAGMENTS_DROP, 0);
}

#[test]
fn statistic_ids_survive_recompiles_and_are_released() {
    let policy = Policy {
        rules: vec![Rule::new("a", origin(), Action::Drop)],
        fragments: FragmentAction::Pass,
    };
    let mut registry = StatRegistry::default();
    let compile_with = |ports: &[PublishedPort], registry: &mut StatRegistry| {
        let input = CompileInput {
            policy: &policy,
            ports,
            ifaces: &BTreeMap::new(),
            audit: false,
            stats_capacity: 64,
        };
        compile(&input, registry).unwrap()
    };
    let both = [port(Proto::Tcp, 80, "web"), port(Proto::Tcp, 81, "api")];
    let first = compile_with(&both, &mut registry);
    assert_eq!(registry.take_fresh().len(), 8);
    let again = compile_with(&both, &mut registry);
    assert_eq!(first, again, "same input, same ids");
    assert!(registry.take_fresh().is_empty());
    compile_with(&both[..1], &mut registry);
    assert!(
        registry.get(&StatOwner::Unmatched(both[1].key)).is_none(),
        "released"
    );
}

#[test]
fn udp_ports_ignore_tcp_only_rules() {
    let mut syn = Rule::new("syn", origin(), Action::Drop);
    syn.syn_only = true;
    let policy = Policy {
        rules: vec![syn],
        fragments: FragmentAction::Pass,
    };
    let ports = [port(Proto::Udp, 53, "dns")];
    let input = CompileInput {
        policy: &policy,
        ports: &ports,
        ifaces: &BTreeMap::new(),
        audit: false,
        stats_capacity: 64,
    };
    let compiled = compile(&input, &mut StatRegistry::default()).unwrap();
    assert!(compiled.ports[0].rules.is_empty());
}
