//! One `dockfw top` frame as text, fitted to the terminal.

use std::fmt::Write as _;

use super::{
    SOURCE_WINDOW_SECONDS, TopSnapshot,
    rates::{Rate, Rates},
};

/// Terminal size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

impl Default for Size {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// `1.23M`, `45.6k`, `12`: a rate in at most 6 characters.
pub fn si(value: f64) -> String {
    if value >= 999_500_000.0 {
        format!("{:.2}G", value / 1e9)
    } else if value >= 999_500.0 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 9_995.0 {
        format!("{:.1}k", value / 1e3)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value > 0.0 {
        format!("{value:.1}")
    } else {
        "0".into()
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
        clipped.push('~');
        clipped
    }
}

fn rate_cells(rate: &Rate) -> String {
    format!(
        "{:>8} {:>8} {:>8} {:>8}",
        si(rate.drop_pps),
        si(rate.drop_bps * 8.0),
        si(rate.pass_pps),
        si(rate.audit_pps)
    )
}

const RATE_HEADER: &str = "  DROP/s   DROP b/s  PASS/s  AUDIT/s";

/// Renders a frame. `rates` is `None` for the first frame (no interval yet).
pub fn frame(now: &TopSnapshot, rates: Option<&Rates>, clock: &str, size: Size) -> String {
    let cols = size.cols.max(40);
    let mut lines: Vec<String> = Vec::new();
    let ifaces = if now.interfaces.is_empty() {
        "not attached".to_string()
    } else {
        now.interfaces.join(", ")
    };
    lines.push(clip(
        &format!(
            "dockfw top - {clock}  generation {}  ports {}  bans {}{}  [{ifaces}]",
            now.policy_generation,
            now.published_ports,
            now.bans,
            if now.audit { "  AUDIT MODE" } else { "" },
        ),
        cols,
    ));
    match rates {
        None => lines.push("measuring... (rates appear after the first interval)".into()),
        Some(rates) => lines.push(clip(
            &format!(
                "total: drop {}/s ({}b/s)  pass {}/s  audit {}/s  over {:.1}s",
                si(rates.total.drop_pps),
                si(rates.total.drop_bps * 8.0),
                si(rates.total.pass_pps),
                si(rates.total.audit_pps),
                rates.seconds
            ),
            cols,
        )),
    }
    lines.push(String::new());
    let Some(rates) = rates else {
        return finish(lines);
    };
    // Rows left for the four tables, each with a title line and a header.
    let budget = size.rows.saturating_sub(lines.len() + 1).max(12);
    let reasons_rows = rates.reasons.len().min(7);
    let sources_rows = now.sources.len().min(8);
    let rest = budget.saturating_sub(reasons_rows + sources_rows + 8);
    let ports_rows = (rest / 2).max(1);
    let rules_rows = rest.saturating_sub(ports_rows).max(1);
    let name_width = cols.saturating_sub(RATE_HEADER.len() + 1).clamp(12, 60);

    lines.push(format!(
        "{:<name_width$}{RATE_HEADER}",
        "PUBLISHED PORT  CONTAINER"
    ));
    for (port, rate) in rates.ports.iter().take(ports_rows) {
        lines.push(format!(
            "{:<name_width$} {}",
            clip(port, name_width),
            rate_cells(rate)
        ));
    }
    lines.push(format!("{:<name_width$}{RATE_HEADER}", "REASON"));
    for (reason, rate) in rates.reasons.iter().take(reasons_rows) {
        lines.push(format!("{:<name_width$} {}", reason, rate_cells(rate)));
    }
    lines.push(format!("{:<name_width$}{RATE_HEADER}", "RULE  (PORT)"));
    for (port, rule, rate) in rates.rules.iter().take(rules_rows) {
        lines.push(format!(
            "{:<name_width$} {}",
            clip(&format!("{rule}  ({port})"), name_width),
            rate_cells(rate)
        ));
    }
    lines.push(String::new());
    lines.push(clip(
        &format!(
            "HEAVIEST SOURCES (sampled drop events, last {SOURCE_WINDOW_SECONDS}s; {} sampled in all)",
            now.events_sampled
        ),
        cols,
    ));
    if now.sources.is_empty() {
        lines.push("  (no sampled drops in the window)".into());
    }
    for source in now.sources.iter().take(sources_rows) {
        let target = source.published_port.as_deref().unwrap_or("?");
        let rule = source
            .rule
            .as_deref()
            .map(|rule| format!(" rule={rule}"))
            .unwrap_or_default();
        lines.push(clip(
            &format!(
                "  {:<40} {:>6} events  {} {}{}",
                source.source.to_string(),
                source.events,
                target,
                source.reason,
                rule
            ),
            cols,
        ));
    }
    finish(lines)
}

fn finish(lines: Vec<String>) -> String {
    let mut text = String::new();
    for line in lines {
        let _ = writeln!(text, "{line}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        dataplane::counters::{StatCounters, Totals},
        events::SourceCount,
        metrics::labels::Reason,
        top::{TopSeries, rates::rates},
    };

    fn snapshot(at_s: u64, dropped: u64, passed: u64) -> TopSnapshot {
        TopSnapshot {
            taken_ns: at_s * 1_000_000_000,
            interfaces: vec!["eth0 (xdp-native)".into()],
            policy_generation: 3,
            bans: 1,
            published_ports: 1,
            audit: false,
            series: vec![
                TopSeries {
                    stat_id: 4,
                    published_port: "8080/tcp".into(),
                    family: "ipv4".into(),
                    container: "web".into(),
                    rule: "drop-bad".into(),
                    reason: Reason::Rule,
                    counters: StatCounters {
                        dropped: Totals {
                            packets: dropped,
                            bytes: dropped * 60,
                        },
                        ..StatCounters::default()
                    },
                },
                TopSeries {
                    stat_id: 1,
                    published_port: "8080/tcp".into(),
                    family: "ipv4".into(),
                    container: "web".into(),
                    rule: String::new(),
                    reason: Reason::Unmatched,
                    counters: StatCounters {
                        passed: Totals {
                            packets: passed,
                            bytes: passed * 100,
                        },
                        ..StatCounters::default()
                    },
                },
            ],
            sources: vec![SourceCount {
                source: "198.51.100.7".parse().unwrap(),
                events: 12,
                published_port: Some("8080/tcp".into()),
                reason: "rule".into(),
                rule: Some("drop-bad".into()),
            }],
            events_sampled: 40,
        }
    }

    #[test]
    fn rates_are_deltas_over_the_interval() {
        let rates = rates(&snapshot(10, 100, 50), &snapshot(12, 2100, 250));
        assert_eq!(rates.seconds, 2.0);
        assert_eq!(rates.total.drop_pps, 1000.0);
        assert_eq!(rates.total.pass_pps, 100.0);
        assert_eq!(rates.ports.len(), 1);
        assert_eq!(rates.rules[0].1, "drop-bad");
        assert_eq!(rates.reasons[0].0, "rule", "busiest reason first");
    }

    #[test]
    fn a_frame_shows_ports_reasons_rules_and_sources() {
        let before = snapshot(10, 100, 50);
        let now = snapshot(12, 2100, 250);
        let text = frame(
            &now,
            Some(&rates(&before, &now)),
            "12:00:00",
            Size::default(),
        );
        for needle in [
            "generation 3",
            "8080/tcp web",
            "drop-bad  (8080/tcp)",
            "unmatched",
            "198.51.100.7",
            "1000",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(12.34), "12.3");
        assert_eq!(si(1234.0), "1234");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(8_200_000.0), "8.20M");
    }
}
