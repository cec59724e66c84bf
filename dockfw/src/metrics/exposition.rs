//! The exposition: a [`Snapshot`] as Prometheus text (0.0.4) or
//! OpenMetrics, through `prometheus-client`.
//!
//! Counters are not kept in `prometheus-client` metric objects: their values
//! live in the kernel's per-CPU maps and are read at scrape time, so the
//! snapshot is written out by a [`Collector`] with constant values.

use std::sync::Arc;

use dockfw_common::outcome;
use std::fmt::Write as _;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder, MetricEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};

use super::{labels::StatLabels, snapshot::Snapshot};
use crate::dataplane::counters::Totals;

/// `Content-Type` of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    Text,
    /// OpenMetrics 1.0 (what Prometheus asks for first).
    OpenMetrics,
}

impl Format {
    /// The format a scraper's `Accept` header asks for: OpenMetrics when it
    /// lists it, else the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    /// The `Content-Type` of this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Encodes `snapshot`.
pub fn encode(snapshot: Arc<Snapshot>, format: Format) -> String {
    let capacity = 4096 + snapshot.stats.len() * 2 * 160;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    // Sized up front so a 10 MB page is not built by repeated doubling:
    // about 150 bytes per line, a packets and a bytes line per expected
    // outcome of each statistic.
    let mut out = String::with_capacity(capacity);
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail; a label set the encoder rejects
    // would be a bug, and a partial page is still better than none.
    if let Err(error) = result {
        tracing::error!(%error, "encoding the metrics failed");
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector(Arc<Snapshot>);

/// The labels of a traffic series.
struct SeriesLabels<'a>(&'a StatLabels);

impl EncodeLabelSet for SeriesLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        let labels = self.0;
        let values = labels.values();
        if labels.rendered.is_empty() {
            let pairs: [(&str, &str); 5] =
                std::array::from_fn(|i| (StatLabels::NAMES[i], values[i]));
            return pairs.encode(encoder);
        }
        // The scrape budget (1,000 ports x 32 rules in < 50 ms) leaves no
        // room to escape and write five labels per line for ~80,000 lines:
        // the label set is rendered once per policy generation, and written
        // here as the last label's key (the text encoder writes keys as
        // given), followed by that label's value through the encoder.
        let mut label = encoder.encode_label();
        let mut key = label.encode_label_key()?;
        key.write_str(&labels.rendered)?;
        let mut value = key.encode_label_value()?;
        value.write_str(values[values.len() - 1])?;
        value.finish()
    }
}

fn counter(
    encoder: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_family(labels)?
        .encode_counter::<NoLabelSet, u64, u64>(&value, None)
}

fn gauge(
    encoder: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: i64,
) -> Result<(), std::fmt::Error> {
    encoder.encode_family(labels)?.encode_gauge(&value)
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One traffic counter family over every statistic that expects `code` or
/// counted some.
fn traffic(
    encoder: &mut DescriptorEncoder<'_>,
    snapshot: &Snapshot,
    name: &str,
    help: &str,
    code: u32,
    value: impl Fn(&Totals) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for sample in &snapshot.stats {
        let totals = match code {
            outcome::PASS => &sample.counters.passed,
            outcome::DROP => &sample.counters.dropped,
            _ => &sample.counters.audited,
        };
        if totals.packets == 0 && !sample.labels.expects(code) {
            continue;
        }
        counter(&mut metric, &SeriesLabels(&sample.labels), value(totals))?;
    }
    Ok(())
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = &*self.0;
        let packets = |totals: &Totals| totals.packets;
        let bytes = |totals: &Totals| totals.bytes;
        traffic(
            &mut encoder,
            snapshot,
            "dockfw_dropped_packets",
            "Packets to published ports dropped in XDP/TC, before conntrack and DNAT",
            outcome::DROP,
            packets,
        )?;
        traffic(
            &mut encoder,
            snapshot,
            "dockfw_dropped_bytes",
            "Bytes (whole frames) of packets to published ports dropped in XDP/TC",
            outcome::DROP,
            bytes,
        )?;
        traffic(
            &mut encoder,
            snapshot,
            "dockfw_passed_packets",
            "Packets to published ports handed on to netfilter (Docker's chains decide)",
            outcome::PASS,
            packets,
        )?;
        traffic(
            &mut encoder,
            snapshot,
            "dockfw_passed_bytes",
            "Bytes (whole frames) of packets to published ports handed on to netfilter",
            outcome::PASS,
            bytes,
        )?;
        traffic(
            &mut encoder,
            snapshot,
            "dockfw_audit_would_drop_packets",
            "Packets that audit mode or an audit rule counted as would-drop and passed",
            outcome::AUDIT,
            packets,
        )?;

        let mut metric = encoder.encode_descriptor(
            "dockfw_unpublished_packets",
            "Packets that reached no published port and were handed on untouched, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, totals) in &snapshot.unpublished {
            counter(&mut metric, &[("reason", *reason)], totals.packets)?;
        }

        let mut plain = |name: &str, help: &str, kind: MetricType, value: u64| {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => metric.encode_counter::<NoLabelSet, u64, u64>(&value, None),
                _ => metric.encode_gauge(&saturating_i64(value)),
            }
        };
        plain(
            "dockfw_bans",
            "Banned source prefixes in force",
            MetricType::Gauge,
            snapshot.bans,
        )?;
        plain(
            "dockfw_published_ports",
            "Published ports (bindings) the policy in force covers",
            MetricType::Gauge,
            snapshot.published_ports,
        )?;
        plain(
            "dockfw_policy_generation",
            "Policies activated so far (persisted across restarts)",
            MetricType::Gauge,
            snapshot.policy_generation,
        )?;
        plain(
            "dockfw_policy_reload_errors",
            "Policy loads or compiles that failed; the previous policy stayed in force",
            MetricType::Counter,
            snapshot.policy_reload_errors,
        )?;
        plain(
            "dockfw_docker_sync_errors",
            "Docker engine sessions that ended in an error (reconnected with backoff)",
            MetricType::Counter,
            snapshot.docker_sync_errors,
        )?;
        plain(
            "dockfw_events_sampled",
            "Sampled drop events read from the kernel's ring buffer",
            MetricType::Counter,
            snapshot.events_sampled,
        )?;

        let mut metric = encoder.encode_descriptor(
            "dockfw_map_entries",
            "Entries in use in a BPF map (per policy generation for generation-split maps)",
            None,
            MetricType::Gauge,
        )?;
        for usage in &snapshot.maps {
            if let Some(entries) = usage.entries {
                gauge(&mut metric, &[("map", usage.map)], saturating_i64(entries))?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "dockfw_map_capacity",
            "Entries a BPF map can hold (per policy generation for generation-split maps)",
            None,
            MetricType::Gauge,
        )?;
        for usage in &snapshot.maps {
            gauge(
                &mut metric,
                &[("map", usage.map)],
                saturating_i64(usage.capacity),
            )?;
        }

        let mut metric = encoder.encode_descriptor(
            "dockfw_attached_info",
            "Interfaces the data plane is attached to, with the attach mode",
            None,
            MetricType::Gauge,
        )?;
        for attached in &snapshot.attached {
            gauge(
                &mut metric,
                &[("iface", attached.iface.as_str()), ("mode", attached.mode)],
                1,
            )?;
        }
        let mut metric = encoder.encode_descriptor(
            "dockfw_build_info",
            "The running dockfw's version",
            None,
            MetricType::Gauge,
        )?;
        gauge(&mut metric, &[("version", env!("CARGO_PKG_VERSION"))], 1)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
