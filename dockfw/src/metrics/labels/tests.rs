//! Label derivation from compiled policies.

use std::collections::BTreeMap;

use super::*;
use crate::{
    compile::{CompileInput, StatRegistry, compile},
    model::{
        BindingKey, ContainerRef, Per, PortSelector, PortSpec, Proto, PublishedPort, Rate,
        RateLimit, Rule,
    },
};

fn port(family: Family, number: u16) -> PublishedPort {
    PublishedPort {
        key: BindingKey {
            family,
            proto: Proto::Tcp,
            addr: None,
            port: number,
        },
        container: ContainerRef {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            labels: BTreeMap::new(),
        },
        container_addr: None,
        container_port: 80,
    }
}

fn file() -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: "policy.toml".into(),
        line: 3,
    }
}

fn docker_user() -> RuleOrigin {
    RuleOrigin::DockerUser {
        chain: "DOCKER-USER".into(),
        position: 1,
        text: "-A DOCKER-USER -p tcp --dport 80 -j DROP".into(),
    }
}

fn limit() -> Action {
    Action::RateLimit(RateLimit {
        rate: Rate {
            count: 10,
            per_ns: 1_000_000_000,
        },
        burst: 5,
        per: Per::Source,
        total: None,
    })
}

fn rule(name: &str, origin: RuleOrigin, action: Action) -> Rule {
    let mut rule = Rule::new(name, origin, action);
    rule.ports = PortSelector {
        ports: vec![PortSpec {
            proto: Proto::Tcp,
            low: 8080,
            high: 8080,
        }],
        ..PortSelector::default()
    };
    rule
}

fn labels_of(policy: &Policy, ports: &[PublishedPort], audit: bool) -> Vec<StatLabels> {
    let ifaces = BTreeMap::new();
    let input = CompileInput {
        policy,
        ports,
        ifaces: &ifaces,
        audit,
        stats_capacity: 1024,
    };
    let compiled = compile(&input, &mut StatRegistry::default()).unwrap();
    stat_labels(&compiled, policy)
}

#[test]
fn a_rules_reason_follows_its_origin_then_its_action() {
    assert_eq!(Reason::of_rule(&file(), &Action::Drop), Reason::Rule);
    assert_eq!(Reason::of_rule(&file(), &Action::Pass), Reason::Rule);
    assert_eq!(Reason::of_rule(&file(), &limit()), Reason::RateLimit);
    let label = RuleOrigin::Label {
        container: "web".into(),
    };
    assert_eq!(Reason::of_rule(&label, &limit()), Reason::RateLimit);
    assert_eq!(
        Reason::of_rule(&docker_user(), &Action::Drop),
        Reason::Mirror
    );
    assert_eq!(Reason::of_rule(&docker_user(), &limit()), Reason::Mirror);
}

#[test]
fn reason_values_are_the_documented_ones() {
    let names: Vec<&str> = Reason::ALL.iter().map(|reason| reason.as_str()).collect();
    assert_eq!(
        names,
        [
            "rule",
            "ban",
            "rate_limit",
            "fragment",
            "mirror",
            "unmatched"
        ]
    );
    assert_eq!(
        Reason::of_code(dockfw_common::reason::RATE_LIMIT_DROP),
        Some(Reason::RateLimit)
    );
    assert_eq!(
        Reason::of_code(dockfw_common::reason::BANNED),
        Some(Reason::Ban)
    );
    // Malformed frames pass before any port is looked at: they are counted
    // as unpublished traffic, never under a published port.
    assert_eq!(Reason::of_code(dockfw_common::reason::MALFORMED), None);
    assert_eq!(Reason::of_code(dockfw_common::reason::NOT_IP), None);
}

#[test]
fn every_statistic_of_a_port_gets_its_labels() {
    let policy = Policy {
        rules: vec![
            rule("drop-bad", file(), Action::Drop),
            rule("limit", file(), limit()),
            rule("mirrored", docker_user(), Action::Drop),
            rule("allow", file(), Action::Pass),
        ],
        ..Policy::default()
    };
    let labels = labels_of(
        &policy,
        &[port(Family::V4, 8080), port(Family::V6, 8080)],
        false,
    );
    // Per port: unmatched, banned, fragments and four rules.
    assert_eq!(labels.len(), 14);
    let v4: Vec<(&str, Reason, &str, Outcomes)> = labels
        .iter()
        .filter(|labels| labels.family == "ipv4")
        .map(|labels| {
            (
                labels.rule.as_str(),
                labels.reason,
                labels.published_port.as_str(),
                labels.outcomes,
            )
        })
        .collect();
    let pass = bit(outcome::PASS);
    let drop = bit(outcome::DROP);
    assert_eq!(
        v4,
        [
            ("", Reason::Unmatched, "8080/tcp", pass),
            ("", Reason::Ban, "8080/tcp", drop),
            ("", Reason::Fragment, "8080/tcp", pass),
            ("drop-bad", Reason::Rule, "8080/tcp", drop),
            ("limit", Reason::RateLimit, "8080/tcp", drop | pass),
            ("mirrored", Reason::Mirror, "8080/tcp", drop),
            ("allow", Reason::Rule, "8080/tcp", pass),
        ]
    );
    assert!(labels.iter().all(|labels| labels.container == "web"));
    let ids: std::collections::BTreeSet<u32> = labels.iter().map(|l| l.stat_id).collect();
    assert_eq!(ids.len(), labels.len(), "one label set per statistic id");
    let table = LabelTable::new(labels.clone());
    assert_eq!(table.len(), 14);
    assert_eq!(
        table.max_stat_id,
        labels.iter().map(|l| l.stat_id).max().unwrap()
    );
    assert_eq!(table.get(labels[3].stat_id).unwrap().rule, "drop-bad");
}

#[test]
fn audit_turns_expected_drops_into_would_drops() {
    let policy = Policy {
        rules: vec![rule("drop-bad", file(), Action::Drop)],
        ..Policy::default()
    };
    let labels = labels_of(&policy, &[port(Family::V4, 8080)], true);
    let audit = bit(outcome::AUDIT);
    let banned = labels.iter().find(|l| l.reason == Reason::Ban).unwrap();
    assert_eq!(banned.outcomes, audit);
    let rule = labels.iter().find(|l| l.rule == "drop-bad").unwrap();
    assert_eq!(rule.outcomes, audit);
    assert!(rule.expects(outcome::AUDIT) && !rule.expects(outcome::DROP));
}
