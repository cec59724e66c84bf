//! The report's markdown tables.

use std::fmt::Write as _;

use super::{
    flood::KINDS,
    legit::FLOOD as LEGIT_FLOOD,
    report::{HEADLINE, Outcome},
    variants::Variant,
};

fn mpps(pps: f64) -> String {
    format!("{:.2}", pps / 1e6)
}

/// The summary: one row per variant under the headline flood.
pub fn summary(out: &mut String, outcome: &Outcome) {
    let base = outcome.ns(Variant::DockerUser, HEADLINE);
    let _ = writeln!(
        out,
        "| where the packet is dropped | offered Mpps | dropped Mpps | receiver ns per drop | drops per CPU-second vs DOCKER-USER | conntrack entries made by 100k flood SYNs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for result in &outcome.variants {
        let Some(s) = result.summary(HEADLINE) else {
            continue;
        };
        let ratio = base.map_or("-".into(), |base| format!("{:.1}x", base / s.ns_per_drop));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {ratio} | {} |",
            result.variant.label(),
            mpps(s.offered_pps),
            mpps(s.dropped_pps),
            s.ns_per_drop,
            result.probe.conntrack_new
        );
    }
}

/// Every variant under every flood kind.
pub fn per_kind(out: &mut String, outcome: &Outcome) {
    let header: Vec<&str> = KINDS.iter().map(|kind| kind.label()).collect();
    let _ = writeln!(
        out,
        "\n### Receiver ns per dropped packet, every flood (median, min-max of {} runs)\n",
        outcome.runs
    );
    let _ = writeln!(out, "| variant | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(KINDS.len()));
    for result in &outcome.variants {
        let cells: Vec<String> = KINDS
            .iter()
            .map(|kind| {
                result.summary(*kind).map_or("-".into(), |s| {
                    format!("{:.0} ({:.0}-{:.0})", s.ns_per_drop, s.ns_min, s.ns_max)
                })
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", result.variant.key(), cells.join(" | "));
    }
    let _ = writeln!(
        out,
        "\n### Dropped / offered Mpps and receiver CPU busy, every flood (medians)\n"
    );
    let _ = writeln!(out, "| variant | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(KINDS.len()));
    for result in &outcome.variants {
        let cells: Vec<String> = KINDS
            .iter()
            .map(|kind| {
                result.summary(*kind).map_or("-".into(), |s| {
                    format!(
                        "{} / {} ({:.0}%)",
                        mpps(s.dropped_pps),
                        mpps(s.offered_pps),
                        100.0 * s.busy
                    )
                })
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", result.variant.key(), cells.join(" | "));
    }
}

/// Legitimate traffic under attack.
pub fn legit(out: &mut String, outcome: &Outcome) {
    if outcome.legit.is_empty() {
        return;
    }
    let (rate, seconds) = outcome.legit_load;
    let _ = writeln!(out, "\n### Legitimate traffic under attack\n");
    let _ = writeln!(
        out,
        "HTTP GETs to the published container at {rate:.0}/s (open loop, {seconds:.0} s per point, \
         served = page received within 1 s), from the flood's link, beside a {} flood at each \
         rate; share of the rate served with no flood.\n",
        LEGIT_FLOOD.label()
    );
    let _ = write!(out, "| flood target |");
    for (variant, _) in &outcome.legit {
        let _ = write!(out, " {}: flood Mpps | served/s | share |", variant.key());
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "|---|{}",
        "---:|---:|---:|".repeat(outcome.legit.len())
    );
    let rows = outcome
        .legit
        .iter()
        .map(|(_, points)| points.len())
        .max()
        .unwrap_or(0);
    for row in 0..rows {
        let target = outcome.legit[0].1.get(row).map(|point| point.target_pps);
        let label = match target.flatten() {
            None => "no flood".to_string(),
            Some(0) => "as fast as the generator goes".to_string(),
            Some(pps) => format!("{} Mpps", mpps(pps as f64)),
        };
        let _ = write!(out, "| {label} |");
        for (_, points) in &outcome.legit {
            let base = points.first().map_or(0.0, |point| point.served_rps);
            match points.get(row) {
                Some(point) => {
                    let share = if base > 0.0 {
                        100.0 * point.served_rps / base
                    } else {
                        0.0
                    };
                    let _ = write!(
                        out,
                        " {} | {:.0} | {share:.0}% |",
                        mpps(point.flood_pps),
                        point.served_rps
                    );
                }
                None => {
                    let _ = write!(out, " - | - | - |");
                }
            }
        }
        let _ = writeln!(out);
    }
}
