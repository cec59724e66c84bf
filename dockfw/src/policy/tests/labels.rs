//! Container labels -> rules: the unnumbered and numbered forms, their
//! order, `@set` references and errors naming the container and label key.

use std::collections::BTreeMap;

use crate::{
    model::{
        Action, ContainerRef, FragmentAction, Per, Policy, PortSelector, PortSpec, Proto, Rate,
        RateLimit, Rule, RuleOrigin,
    },
    policy::{SetTable, merge, rules_from_labels, rules_from_labels_with_sets},
};

const ID: &str = "3f4e8d2c1b0a99887766554433221100ffeeddccbbaa00112233445566778899";

fn container(labels: &[(&str, &str)]) -> ContainerRef {
    ContainerRef {
        id: ID.to_owned(),
        name: "web".to_owned(),
        labels: labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

fn rules(labels: &[(&str, &str)]) -> Vec<Rule> {
    rules_from_labels(&container(labels))
        .unwrap_or_else(|error| panic!("labels should be valid: {error}"))
}

fn error(labels: &[(&str, &str)]) -> String {
    match rules_from_labels(&container(labels)) {
        Ok(rules) => panic!("labels should be refused, got {rules:#?}"),
        Err(error) => error.to_string(),
    }
}

fn net(text: &str) -> ipnet::IpNet {
    text.parse()
        .unwrap_or_else(|error| panic!("test CIDR {text}: {error}"))
}

fn origin() -> RuleOrigin {
    RuleOrigin::Label {
        container: "web".to_owned(),
    }
}

#[test]
fn no_dockfw_labels_no_rules() {
    assert!(rules(&[]).is_empty());
    assert!(
        rules(&[
            ("com.docker.compose.service", "web"),
            ("dockfwx.action", "drop")
        ])
        .is_empty()
    );
}

#[test]
fn the_unnumbered_form_selects_the_container_by_id() {
    let found = rules(&[
        ("dockfw.action", "rate-limit"),
        ("dockfw.rate", "200/s"),
        ("dockfw.burst", "400"),
        ("dockfw.per", "source"),
        ("dockfw.total_rate", "5000/s"),
        ("dockfw.total_burst", "10000"),
        ("dockfw.from", "203.0.113.0/24, 2001:db8::/32"),
        ("dockfw.not_from", "203.0.113.7"),
        ("dockfw.syn_only", "true"),
        ("dockfw.ports", "8080/tcp,9000-9002/tcp"),
        ("dockfw.audit", "yes"),
        ("dockfw.iface", "eth0,eth1"),
        ("dockfw.fragments", "drop"),
    ]);
    let per_second = |count| Rate {
        count,
        per_ns: 1_000_000_000,
    };
    let expected = Rule {
        ports: PortSelector {
            ports: vec![
                PortSpec {
                    proto: Proto::Tcp,
                    low: 8080,
                    high: 8080,
                },
                PortSpec {
                    proto: Proto::Tcp,
                    low: 9000,
                    high: 9002,
                },
            ],
            container: Some(ID.to_owned()),
            ..PortSelector::default()
        },
        sources: crate::model::SourceMatch {
            from: Some(vec![net("203.0.113.0/24"), net("2001:db8::/32")]),
            not_from: vec![net("203.0.113.7/32")],
        },
        ifaces: vec!["eth0".to_owned(), "eth1".to_owned()],
        syn_only: true,
        audit: true,
        fragments: Some(FragmentAction::Drop),
        ..Rule::new(
            "label:web",
            origin(),
            Action::RateLimit(RateLimit {
                rate: per_second(200),
                burst: 400,
                per: Per::Source,
                total: Some((per_second(5000), 10000)),
            }),
        )
    };
    assert_eq!(found, [expected]);
}

#[test]
fn numbered_rules_come_in_index_order_and_the_unnumbered_rule_last() {
    let found = rules(&[
        ("dockfw.action", "drop"),
        ("dockfw.10.action", "rate-limit"),
        ("dockfw.10.rate", "10/s"),
        ("dockfw.2.action", "pass"),
        ("dockfw.2.from", "192.0.2.0/24"),
        ("dockfw.2.source_ports", "1024-65535"),
        ("dockfw.2.tcp_flags", "SYN,ACK/SYN"),
    ]);
    let names: Vec<&str> = found.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["label:web.2", "label:web.10", "label:web"]);
    assert_eq!(found[0].action, Action::Pass);
    assert_eq!(found[0].source_ports, Some((1024, 65535)));
    assert_eq!(found[0].tcp_flags, Some((0x12, 0x02)));
    assert!(matches!(
        found[1].action,
        Action::RateLimit(RateLimit {
            burst: 10,
            per: Per::Source,
            total: None,
            ..
        })
    ));
    assert_eq!(found[2].action, Action::Drop);
    assert!(
        found
            .iter()
            .all(|rule| rule.ports.container.as_deref() == Some(ID) && rule.origin == origin())
    );
}

#[test]
fn set_references_resolve_against_the_policy_files_sets() {
    let labels = container(&[
        ("dockfw.action", "drop"),
        ("dockfw.not_from", "@office,192.0.2.9"),
    ]);
    let sets: SetTable = BTreeMap::from([(
        "office".to_owned(),
        vec![net("203.0.113.0/24"), net("2001:db8:1::/48")],
    )]);
    let found =
        rules_from_labels_with_sets(&labels, &sets).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        found[0].sources.not_from,
        [
            net("203.0.113.0/24"),
            net("2001:db8:1::/48"),
            net("192.0.2.9/32")
        ]
    );
    let without = error(&[("dockfw.action", "drop"), ("dockfw.from", "@office")]);
    assert_eq!(
        without,
        "container web: label dockfw.from: unknown set @office (no sets are defined; define it under [sets.office])"
    );
}

#[test]
fn errors_name_the_container_and_every_bad_label() {
    assert_eq!(
        error(&[
            ("dockfw.action", "rate-limit"),
            ("dockfw.rate", "fast"),
            ("dockfw.per", "ip")
        ]),
        "container web: label dockfw.rate: rate \"fast\" is not COUNT/UNIT (e.g. \"200/s\", \"30/m\", \"1000/h\"); \
         label dockfw.per: `per` must be \"source\" or \"port\", found \"ip\""
    );
    assert_eq!(
        error(&[("dockfw.acton", "drop")]),
        "container web: label dockfw.acton: unknown dockfw label; did you mean dockfw.action?"
    );
    assert_eq!(
        error(&[("dockfw.1.from", "10.0.0.1/8"), ("dockfw.1.action", "drop")]),
        "container web: label dockfw.1.from: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
    );
    assert_eq!(
        error(&[("dockfw.01.action", "drop")]),
        "container web: label dockfw.01.action: rule number \"01\" must be a decimal without leading zeros"
    );
    assert_eq!(
        error(&[("dockfw.ports", "8080")]),
        "container web: label dockfw.ports: port \"8080\" needs a protocol: \"PORT/tcp\", \"PORT/udp\" or \"LOW-HIGH/tcp\""
    );
    assert_eq!(
        error(&[("dockfw.ports", "53/udp")]),
        "container web: label dockfw.action: missing `action` (one of \"drop\", \"pass\", \"rate-limit\")"
    );
    assert_eq!(
        error(&[("dockfw.action", "drop"), ("dockfw.burst", "10")]),
        "container web: label dockfw.burst: `burst` only applies to action = \"rate-limit\" (this rule's action is \"drop\")"
    );
    assert_eq!(
        error(&[("dockfw.action", "drop"), ("dockfw.syn_only", "maybe")]),
        "container web: label dockfw.syn_only: \"maybe\" is not true or false"
    );
    assert_eq!(
        error(&[
            ("dockfw.action", "rate-limit"),
            ("dockfw.rate", "5/s"),
            ("dockfw.burst", "-1")
        ]),
        "container web: label dockfw.burst: burst \"-1\" is not a whole number of packets"
    );
    assert_eq!(
        error(&[("dockfw.action", "drop"), ("dockfw.from", " , ")]),
        "container web: label dockfw.from: empty value; remove the label or give a comma-separated list"
    );
    assert_eq!(
        error(&[
            ("dockfw.action", "drop"),
            ("dockfw.ports", "53/udp"),
            ("dockfw.syn_only", "true")
        ]),
        "container web: label dockfw.syn_only: `syn_only` matches only TCP, but `ports` selects only UDP ports"
    );
    // One bad numbered rule refuses all of the container's labels.
    let refused = rules_from_labels(&container(&[
        ("dockfw.action", "drop"),
        ("dockfw.0.action", "deny"),
    ]));
    assert!(refused.is_err_and(
        |error| error.problems.len() == 1 && error.problems[0].key == "dockfw.0.action"
    ));
}

#[test]
fn merge_puts_the_policy_file_first() {
    let file_rule = Rule::new(
        "office-pass",
        RuleOrigin::PolicyFile {
            path: "/etc/dockfw/policy.toml".into(),
            line: 3,
        },
        Action::Pass,
    );
    let file = Policy {
        rules: vec![file_rule.clone()],
        fragments: FragmentAction::Drop,
    };
    let label_rules = rules(&[("dockfw.action", "drop")]);
    let merged = merge(file, label_rules.clone());
    assert_eq!(merged.fragments, FragmentAction::Drop);
    assert_eq!(merged.rules, [vec![file_rule], label_rules].concat());
}
