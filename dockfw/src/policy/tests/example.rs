//! The documented example parses into exactly the expected policy.

use std::path::PathBuf;

use super::{POLICY_PATH, load_with};
use crate::model::{
    Action, FragmentAction, Per, Policy, PortSelector, PortSpec, Proto, Rate, RateLimit, Rule,
    RuleOrigin, SourceMatch,
};

const EXAMPLE: &str = r#"fragments = "pass"            # optional top-level default

[sets.office]
cidrs = ["203.0.113.0/24", "2001:db8:1::/48"]
[sets.blocklist]
file = "/etc/dockfw/blocklist.txt"

[[rules]]
name = "db-office-only"
ports = ["3306/tcp"]
not_from = ["@office"]
action = "drop"

[[rules]]
name = "web-syn-flood"
container = "web"
syn_only = true
action = "rate-limit"
rate = "200/s"
burst = 400
per = "source"
total_rate = "5000/s"
total_burst = 10000
"#;

const BLOCKLIST: &str =
    "# bad actors\n198.51.100.7\n\n192.0.2.0/24  # a whole net\n2001:db8:dead::/48\n";

fn origin(line: usize) -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: PathBuf::from(POLICY_PATH),
        line,
    }
}

fn net(text: &str) -> ipnet::IpNet {
    text.parse()
        .unwrap_or_else(|error| panic!("test CIDR {text}: {error}"))
}

#[test]
fn example_parses_into_the_expected_policy() {
    let loaded = load_with(EXAMPLE, &[("/etc/dockfw/blocklist.txt", BLOCKLIST)])
        .unwrap_or_else(|error| panic!("example should parse:\n{error}"));
    let per_second = |count| Rate {
        count,
        per_ns: 1_000_000_000,
    };
    let expected = Policy {
        rules: vec![
            Rule {
                ports: PortSelector {
                    ports: vec![PortSpec {
                        proto: Proto::Tcp,
                        low: 3306,
                        high: 3306,
                    }],
                    ..PortSelector::default()
                },
                sources: SourceMatch {
                    from: None,
                    not_from: vec![net("203.0.113.0/24"), net("2001:db8:1::/48")],
                },
                ..Rule::new("db-office-only", origin(8), Action::Drop)
            },
            Rule {
                ports: PortSelector {
                    container: Some("web".to_owned()),
                    ..PortSelector::default()
                },
                syn_only: true,
                ..Rule::new(
                    "web-syn-flood",
                    origin(14),
                    Action::RateLimit(RateLimit {
                        rate: per_second(200),
                        burst: 400,
                        per: Per::Source,
                        total: Some((per_second(5000), 10000)),
                    }),
                )
            },
        ],
        fragments: FragmentAction::Pass,
    };
    assert_eq!(loaded.policy, expected);
    assert_eq!(
        loaded.set_files,
        vec![PathBuf::from("/etc/dockfw/blocklist.txt")]
    );
    let blocklist = loaded.sets.get("blocklist").cloned().unwrap_or_default();
    assert_eq!(
        blocklist,
        vec![
            net("198.51.100.7/32"),
            net("192.0.2.0/24"),
            net("2001:db8:dead::/48")
        ]
    );
}

#[test]
fn minimal_rules_get_default_names_and_defaults() {
    let policy = super::parse_ok(
        "[[rules]]\naction = \"drop\"\n\n[[rules]]\nports = \"8080/tcp\"\naction = \"rate-limit\"\nrate = \"30/m\"\nper = \"port\"\n",
    );
    let names: Vec<&str> = policy.rules.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["rule-1", "rule-2"]);
    assert_eq!(policy.fragments, FragmentAction::Pass);
    assert_eq!(
        policy.rules[0],
        Rule::new("rule-1", origin(1), Action::Drop)
    );
    assert_eq!(
        policy.rules[1].action,
        Action::RateLimit(RateLimit {
            rate: Rate {
                count: 30,
                per_ns: 60_000_000_000,
            },
            burst: 30,
            per: Per::Port,
            total: None,
        })
    );
}

#[test]
fn every_optional_rule_field_is_read() {
    let policy = super::parse_ok(
        r#"fragments = "drop"
[[rules]]
ports = ["9000-9002/udp", "53/tcp"]
label = "com.example.tier=public"
from = ["10.0.0.0/8", "192.0.2.1"]
not_from = "10.1.0.0/16"
iface = ["eth0", "eth1"]
source_ports = "1024-65535"
tcp_flags = "SYN,ACK/SYN"
fragments = "pass"
action = "rate-limit"
rate = "100/s"
total_rate = "1000/s"
audit = true

[[rules]]
container = "0123456789ab"
label = "dockfw.public"
source_ports = 53
action = "pass"
"#,
    );
    assert_eq!(policy.fragments, FragmentAction::Drop);
    let first = &policy.rules[0];
    assert_eq!(first.ports.ports.len(), 2);
    assert_eq!(
        first.ports.label,
        Some(("com.example.tier".to_owned(), Some("public".to_owned())))
    );
    assert_eq!(
        first.sources.from,
        Some(vec![net("10.0.0.0/8"), net("192.0.2.1/32")])
    );
    assert_eq!(first.sources.not_from, vec![net("10.1.0.0/16")]);
    assert_eq!(first.ifaces, ["eth0", "eth1"]);
    assert_eq!(first.source_ports, Some((1024, 65535)));
    assert_eq!(first.tcp_flags, Some((0x12, 0x02)));
    assert_eq!(first.fragments, Some(FragmentAction::Pass));
    assert!(first.audit);
    let Action::RateLimit(limit) = first.action else {
        panic!("first rule should rate-limit, is {:?}", first.action);
    };
    assert_eq!((limit.burst, limit.per), (100, Per::Source));
    assert_eq!(
        limit.total.map(|(rate, burst)| (rate.count, burst)),
        Some((1000, 1000))
    );
    let second = &policy.rules[1];
    assert_eq!(second.ports.container.as_deref(), Some("0123456789ab"));
    assert_eq!(second.ports.label, Some(("dockfw.public".to_owned(), None)));
    assert_eq!(second.source_ports, Some((53, 53)));
    assert_eq!(second.action, Action::Pass);
}

#[test]
fn an_empty_file_is_an_empty_policy() {
    assert_eq!(super::parse_ok(""), Policy::default());
    assert_eq!(super::parse_ok("# nothing yet\n"), Policy::default());
}
