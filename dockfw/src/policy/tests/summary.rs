//! `dockfw check` output: one line per rule, in evaluation order.

use super::parse_ok;
use crate::policy::{check_summary, describe_rule};

#[test]
fn summary_lists_rules_in_order_with_their_origin() {
    let policy = parse_ok(
        r#"[sets.office]
cidrs = ["203.0.113.0/24", "2001:db8:1::/48"]

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
total_rate = "5000/s"
audit = true
"#,
    );
    let summary = check_summary(&policy);
    assert!(summary.ends_with('\n'), "{summary:?}");
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines,
        [
            "2 rules, in evaluation order (first match wins; no match = hand to netfilter); non-first fragments: pass",
            "  1. db-office-only (/etc/dockfw/policy.toml:4): 3306/tcp, not from 203.0.113.0/24, 2001:db8:1::/48 -> drop",
            "  2. web-syn-flood (/etc/dockfw/policy.toml:10): every published port of container web, TCP SYN only \
             -> rate-limit 200/s burst 400 per source, all sources together 5000/s burst 5000 \
             [audit: count would-be drops, drop nothing]",
        ]
    );
}

#[test]
fn descriptions_cover_every_condition() {
    let policy = parse_ok(
        r#"[[rules]]
ports = ["9000-9002/udp", "53/tcp"]
label = "tier=public"
from = ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]
iface = "eth0"
source_ports = 53
tcp_flags = "ALL/NONE"
fragments = "drop"
action = "pass"

[[rules]]
label = "public"
source_ports = "1024-65535"
tcp_flags = "SYN,ACK/SYN"
action = "rate-limit"
rate = "30/m"
per = "port"
"#,
    );
    assert_eq!(
        describe_rule(&policy.rules[0]),
        "9000-9002/udp, 53/tcp of containers labelled tier=public, from 4 prefixes (10.0.0.0/8, 10.1.0.0/16, \
         10.2.0.0/16, ...), arriving on eth0, TCP flags ALL/NONE, source port 53, fragments: drop -> pass (to \
         netfilter, stop evaluating)"
    );
    assert_eq!(
        describe_rule(&policy.rules[1]),
        "every published port of containers with label public, TCP flags SYN,ACK/SYN, source ports 1024-65535 -> \
         rate-limit 30/m burst 30 per port"
    );
    assert!(check_summary(&policy).starts_with("2 rules"));
    assert!(
        check_summary(&policy)
            .lines()
            .next()
            .is_some_and(|line| line.ends_with("unless a rule says otherwise"))
    );
}
