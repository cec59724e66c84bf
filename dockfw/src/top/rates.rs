//! Rates from two cumulative snapshots, grouped by port, reason and rule.

use std::collections::{BTreeMap, HashMap};

use super::{TopSeries, TopSnapshot};
use crate::dataplane::counters::Totals;

/// Packet and byte rates of a group, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    /// Dropped packets per second.
    pub drop_pps: f64,
    /// Dropped bytes per second.
    pub drop_bps: f64,
    /// Passed packets per second.
    pub pass_pps: f64,
    /// Would-drop (audit) packets per second.
    pub audit_pps: f64,
}

impl Rate {
    fn add(&mut self, other: &Self) {
        self.drop_pps += other.drop_pps;
        self.drop_bps += other.drop_bps;
        self.pass_pps += other.pass_pps;
        self.audit_pps += other.audit_pps;
    }

    /// Whether anything moved.
    pub fn is_zero(&self) -> bool {
        self.drop_pps == 0.0 && self.pass_pps == 0.0 && self.audit_pps == 0.0
    }
}

/// Rates grouped for display, each group sorted busiest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Seconds between the snapshots.
    pub seconds: f64,
    /// Everything together.
    pub total: Rate,
    /// Per (published port, family, container).
    pub ports: Vec<(String, Rate)>,
    /// Per reason label.
    pub reasons: Vec<(String, Rate)>,
    /// Per (published port, rule) for rule statistics.
    pub rules: Vec<(String, String, Rate)>,
}

/// The growth of a counter; a counter that went down was reset (its
/// statistic id was reused), so all of its value is new.
fn delta(now: &Totals, before: Option<&Totals>) -> Totals {
    match before {
        Some(before) if before.packets <= now.packets && before.bytes <= now.bytes => Totals {
            packets: now.packets - before.packets,
            bytes: now.bytes - before.bytes,
        },
        _ => *now,
    }
}

fn series_rate(now: &TopSeries, before: Option<&TopSeries>, seconds: f64) -> Rate {
    let per_second = |value: u64| value as f64 / seconds;
    let dropped = delta(&now.counters.dropped, before.map(|b| &b.counters.dropped));
    let passed = delta(&now.counters.passed, before.map(|b| &b.counters.passed));
    let audited = delta(&now.counters.audited, before.map(|b| &b.counters.audited));
    Rate {
        drop_pps: per_second(dropped.packets),
        drop_bps: per_second(dropped.bytes),
        pass_pps: per_second(passed.packets),
        audit_pps: per_second(audited.packets),
    }
}

fn busiest_first(rate: &Rate) -> (u64, u64) {
    // Sort keys as integers (rates are finite and non-negative).
    (
        (rate.drop_pps + rate.audit_pps) as u64,
        rate.pass_pps as u64,
    )
}

/// Rates between `before` and `now`. A series new in `now` counts its whole
/// value: its statistic id was allocated (and zeroed) between the two.
pub fn rates(before: &TopSnapshot, now: &TopSnapshot) -> Rates {
    let seconds = (now.taken_ns.saturating_sub(before.taken_ns) as f64 / 1e9).max(1e-3);
    let previous: HashMap<(u32, &str, &str), &TopSeries> = before
        .series
        .iter()
        .map(|series| {
            (
                (
                    series.stat_id,
                    series.published_port.as_str(),
                    series.rule.as_str(),
                ),
                series,
            )
        })
        .collect();
    let mut total = Rate::default();
    let mut ports: BTreeMap<String, Rate> = BTreeMap::new();
    let mut reasons: BTreeMap<String, Rate> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String), Rate> = BTreeMap::new();
    for series in &now.series {
        let key = (
            series.stat_id,
            series.published_port.as_str(),
            series.rule.as_str(),
        );
        let rate = series_rate(series, previous.get(&key).copied(), seconds);
        total.add(&rate);
        let port = if series.family == "ipv6" {
            format!("{} (v6) {}", series.published_port, series.container)
        } else {
            format!("{} {}", series.published_port, series.container)
        };
        ports.entry(port).or_default().add(&rate);
        reasons
            .entry(series.reason.as_str().to_string())
            .or_default()
            .add(&rate);
        if !series.rule.is_empty() {
            rules
                .entry((series.published_port.clone(), series.rule.clone()))
                .or_default()
                .add(&rate);
        }
    }
    let mut ports: Vec<(String, Rate)> = ports.into_iter().collect();
    ports.sort_by_key(|(_, rate)| std::cmp::Reverse(busiest_first(rate)));
    let mut reasons: Vec<(String, Rate)> = reasons.into_iter().collect();
    reasons.sort_by_key(|(_, rate)| std::cmp::Reverse(busiest_first(rate)));
    let mut rules: Vec<(String, String, Rate)> = rules
        .into_iter()
        .map(|((port, rule), rate)| (port, rule, rate))
        .collect();
    rules.sort_by_key(|(_, _, rate)| std::cmp::Reverse(busiest_first(rate)));
    Rates {
        seconds,
        total,
        ports,
        reasons,
        rules,
    }
}
