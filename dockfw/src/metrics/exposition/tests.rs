//! The exposition's text: names, labels, and which series appear.

use std::sync::Arc;

use super::*;
use crate::{
    dataplane::counters::StatCounters,
    metrics::{
        labels::{Reason, StatLabels},
        snapshot::{Attached, MapUsage, StatSample},
    },
};

fn sample(stat_id: u32, reason: Reason, rule: &str, outcomes: u8, dropped: u64) -> StatSample {
    StatSample {
        labels: Arc::new(StatLabels {
            stat_id,
            reason,
            published_port: "8080/tcp".into(),
            family: "ipv4",
            container: "web \"blue\"".into(),
            rule: rule.into(),
            outcomes,
            rendered: String::new(),
        }),
        counters: StatCounters {
            dropped: Totals {
                packets: dropped,
                bytes: dropped * 60,
            },
            ..StatCounters::default()
        },
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        stats: vec![
            sample(1, Reason::Unmatched, "", 1 << outcome::PASS, 0),
            sample(2, Reason::Ban, "", 1 << outcome::DROP, 0),
            sample(4, Reason::Rule, "drop-bad", 1 << outcome::DROP, 17),
            sample(5, Reason::Mirror, "DOCKER-USER:1", 1 << outcome::DROP, 3),
        ],
        unpublished: vec![(
            "malformed",
            Totals {
                packets: 2,
                bytes: 9,
            },
        )],
        bans: 3,
        published_ports: 1,
        maps: vec![
            MapUsage {
                map: "policies",
                entries: Some(1),
                capacity: 8191,
            },
            MapUsage {
                map: "frags",
                entries: None,
                capacity: 8192,
            },
        ],
        policy_generation: 7,
        attached: vec![Attached {
            iface: "eth0".into(),
            mode: "xdp-native",
        }],
        policy_reload_errors: 1,
        docker_sync_errors: 2,
        events_sampled: 5,
    }
}

#[test]
fn counters_carry_every_label_and_their_values() {
    let text = encode(Arc::new(snapshot()), Format::Text);
    for line in [
        "# TYPE dockfw_dropped_packets_total counter",
        "dockfw_dropped_packets_total{reason=\"rule\",published_port=\"8080/tcp\",family=\"ipv4\",container=\"web \\\"blue\\\"\",rule=\"drop-bad\"} 17",
        "dockfw_dropped_bytes_total{reason=\"rule\",published_port=\"8080/tcp\",family=\"ipv4\",container=\"web \\\"blue\\\"\",rule=\"drop-bad\"} 1020",
        "dockfw_dropped_packets_total{reason=\"mirror\",published_port=\"8080/tcp\",family=\"ipv4\",container=\"web \\\"blue\\\"\",rule=\"DOCKER-USER:1\"} 3",
        "dockfw_dropped_packets_total{reason=\"ban\",published_port=\"8080/tcp\",family=\"ipv4\",container=\"web \\\"blue\\\"\",rule=\"\"} 0",
        "dockfw_passed_packets_total{reason=\"unmatched\",published_port=\"8080/tcp\",family=\"ipv4\",container=\"web \\\"blue\\\"\",rule=\"\"} 0",
        "dockfw_unpublished_packets_total{reason=\"malformed\"} 2",
        "dockfw_bans 3",
        "dockfw_published_ports 1",
        "dockfw_policy_generation 7",
        "dockfw_policy_reload_errors_total 1",
        "dockfw_docker_sync_errors_total 2",
        "dockfw_map_entries{map=\"policies\"} 1",
        "dockfw_map_capacity{map=\"frags\"} 8192",
        "dockfw_attached_info{iface=\"eth0\",mode=\"xdp-native\"} 1",
        "dockfw_build_info{version=\"",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(
        !text.contains("dockfw_map_entries{map=\"frags\"}"),
        "unknown occupancy is left out"
    );
}

#[test]
fn only_expected_or_nonzero_series_appear() {
    let text = encode(Arc::new(snapshot()), Format::Text);
    // The unmatched tally never drops: no dropped series for it.
    assert!(!text.contains("dockfw_dropped_packets_total{reason=\"unmatched\""));
    // Nothing audits here.
    assert!(!text.contains("dockfw_audit_would_drop_packets_total{"));
}

#[test]
fn no_series_is_labelled_by_source_address() {
    let text = encode(Arc::new(snapshot()), Format::Text);
    for forbidden in ["source=", "src=", "addr=", "ip="] {
        assert!(!text.contains(forbidden), "{forbidden}\n{text}");
    }
}

#[test]
fn openmetrics_ends_with_eof_and_negotiation_prefers_it() {
    let text = encode(Arc::new(snapshot()), Format::OpenMetrics);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE dockfw_dropped_packets counter"));
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
    assert_eq!(Format::negotiate(None), Format::Text);
}

#[test]
fn prerendered_labels_encode_exactly_like_label_by_label() {
    let mut rendered = snapshot();
    for sample in &mut rendered.stats {
        let mut labels = (*sample.labels).clone();
        labels.container = "web \"blue\" \\ and\nmore".into();
        labels.render();
        sample.labels = Arc::new(labels);
    }
    let mut unrendered = rendered.clone();
    for sample in &mut unrendered.stats {
        let mut labels = (*sample.labels).clone();
        labels.rendered.clear();
        sample.labels = Arc::new(labels);
    }
    assert!(!rendered.stats[0].labels.rendered.is_empty());
    for format in [Format::Text, Format::OpenMetrics] {
        assert_eq!(
            encode(Arc::new(rendered.clone()), format),
            encode(Arc::new(unrendered.clone()), format)
        );
    }
    let text = encode(Arc::new(rendered), Format::Text);
    assert!(
        text.contains("container=\"web \\\"blue\\\" \\\\ and\\nmore\",rule=\"drop-bad\"} 17"),
        "{text}"
    );
}
