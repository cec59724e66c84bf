//! The summary table: both phases side by side, and what dockfw gained,
//! as factors. The test reads the figures back by row label.

use super::{
    phase::{Enforcement, Rates},
    units::{millis, nanos, pps, rate},
};

/// The table's rows; the figures are what the test reads back.
pub fn summary_table(before: &Rates, after: &Rates) -> Vec<String> {
    let row = |label: &str, a: String, b: String, gain: String| {
        format!("{label:<26}{a:>15}{b:>15}   {gain}")
    };
    let percent = |share: f64| format!("{:.0} %", 100.0 * share);
    vec![
        row(
            "",
            Enforcement::DockerUser.label().into(),
            Enforcement::Dockfw.label().into(),
            "dockfw gain".into(),
        ),
        row(
            "client requests served",
            format!("{}/s", rate(before.client_served_rps)),
            format!("{}/s", rate(after.client_served_rps)),
            gain(
                after.client_served_rps,
                before.client_served_rps,
                true,
                ("more", "fewer"),
            ),
        ),
        row(
            "client requests kept",
            percent(before.served_share()),
            percent(after.served_share()),
            String::new(),
        ),
        row(
            "client latency p99",
            millis(before.client_p99_ms),
            millis(after.client_p99_ms),
            match (before.client_p99_ms, after.client_p99_ms) {
                (Some(theirs), Some(ours)) => gain(ours, theirs, false, ("lower", "higher")),
                _ => String::new(),
            },
        ),
        row(
            "attack offered",
            format!("{}/s", pps(before.offered_pps)),
            format!("{}/s", pps(after.offered_pps)),
            String::new(),
        ),
        row(
            "attack dropped by policy",
            percent(before.dropped_share()),
            percent(after.dropped_share()),
            String::new(),
        ),
        row(
            "lost, receive ring full",
            format!("{}/s", pps(before.ring_full_pps)),
            format!("{}/s", pps(after.ring_full_pps)),
            String::new(),
        ),
        row(
            "host CPU receiving",
            percent(before.cpu_busy),
            percent(after.cpu_busy),
            gain(after.cpu_busy, before.cpu_busy, false, ("less", "more")),
        ),
        row(
            "CPU per dropped packet",
            nanos(before.ns_per_drop),
            nanos(after.ns_per_drop),
            match (before.ns_per_drop, after.ns_per_drop) {
                (Some(theirs), Some(ours)) => gain(ours, theirs, false, ("less", "more")),
                _ => String::new(),
            },
        ),
    ]
}

/// Two sentences that say what the table means.
pub fn conclusion(before: &Rates, after: &Rates) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Some(a), Some(b)) = (before.ns_per_drop, after.ns_per_drop)
        && b > 0.0
    {
        lines.push(format!(
            "dockfw dropped the attack for {:.1}x less host CPU per packet than DOCKER-USER:",
            a / b
        ));
        lines.push(
            "XDP drops it in the driver, before conntrack, NAT and routing ever see it.".into(),
        );
    }
    lines.push(format!(
        "Requests answered in time: {:.0} % with DOCKER-USER alone, {:.0} % with dockfw.",
        100.0 * before.served_share(),
        100.0 * after.served_share()
    ));
    lines
}

/// How much better `better_when_higher` is than the other figure, as a
/// factor: `12.3x less` when it wins, `1.4x more` when it loses, `same`
/// within 5 %, empty when either is zero. (`words`: the word for a win and
/// for a loss.)
fn gain(ours: f64, theirs: f64, higher_is_better: bool, words: (&str, &str)) -> String {
    if !(ours > 0.0 && theirs > 0.0 && ours.is_finite() && theirs.is_finite()) {
        return String::new();
    }
    let factor = if higher_is_better {
        ours / theirs
    } else {
        theirs / ours
    };
    let (factor, word) = if factor >= 1.0 {
        (factor, words.0)
    } else {
        (1.0 / factor, words.1)
    };
    if factor < 1.05 {
        "same".into()
    } else if factor >= 100.0 {
        format!("{factor:.0}x {word}")
    } else {
        format!("{factor:.1}x {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_read_both_ways() {
        assert_eq!(gain(95.0, 1450.0, false, ("less", "more")), "15.3x less");
        assert_eq!(gain(1450.0, 95.0, false, ("less", "more")), "15.3x more");
        assert_eq!(gain(100.0, 40.0, true, ("more", "fewer")), "2.5x more");
        assert_eq!(gain(100.0, 99.0, true, ("more", "fewer")), "same");
        assert_eq!(gain(1.0, 0.0, true, ("more", "fewer")), "");
    }

    #[test]
    fn the_summary_fits_80_columns() {
        let phase = |cpu: f64, ns: f64| Rates {
            seconds: 20.0,
            offered_pps: 1_500_000.0,
            dropped_pps: 700_000.0,
            ring_full_pps: 800_000.0,
            cpu_busy: cpu,
            ns_per_drop: Some(ns),
            client_offered_rps: 100.0,
            client_served_rps: 55.0,
            client_p50_ms: Some(0.4),
            client_p99_ms: Some(1_012.0),
        };
        let (before, after) = (phase(1.0, 1_428.0), phase(0.14, 95.0));
        for line in summary_table(&before, &after)
            .iter()
            .chain(&conclusion(&before, &after))
        {
            assert!(
                line.chars().count() <= 80,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}
