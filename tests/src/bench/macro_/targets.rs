//! The targets, as ratios between variants measured in the same
//! run, judged on every flood kind (a target passes only on all of them).

use std::fmt::Write as _;

use super::{
    flood::{KINDS, Kind},
    report::Outcome,
    variants::Variant,
};

/// dockfw native may spend at most this many floors per drop.
const FLOOR_MULTIPLE: f64 = 1.6;
/// dockfw native must drop at least this many times DOCKER-USER's packets
/// per receiver CPU-second ...
const DOCKER_USER_MULTIPLE: f64 = 12.0;
/// ... and this many times xdp-filter's.
const XDP_FILTER_MULTIPLE: f64 = 2.5;
/// Share of the no-attack request rate kept at the highest flood rate.
const LEGIT_SHARE: f64 = 0.9;

/// PASS, MISS, or not measured (`None`: a variant it needs was skipped
/// with `--only` or `--no-legit`; not counted as missed).
fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "PASS",
        Some(false) => "**MISS**",
        None => "not measured",
    }
}

/// `f(kind)` for every kind, shown as "a / b / c / d"; whether all meet
/// `ok` (`None` if any is missing).
fn per_kind(f: impl Fn(Kind) -> Option<f64>, ok: impl Fn(f64) -> bool) -> (String, Option<bool>) {
    let values: Vec<Option<f64>> = KINDS.iter().map(|kind| f(*kind)).collect();
    let shown: Vec<String> = values
        .iter()
        .map(|value| value.map_or("n/a".into(), |value| format!("{value:.2}x")))
        .collect();
    let met = values
        .iter()
        .map(|value| value.map(&ok))
        .collect::<Option<Vec<bool>>>()
        .map(|all| all.into_iter().all(|met| met));
    (shown.join(" / "), met)
}

/// The share of the no-attack rate served at the last (highest) flood
/// rate, and that rate.
pub fn legit_share(outcome: &Outcome, variant: Variant) -> Option<(f64, f64)> {
    let (_, points) = outcome.legit.iter().find(|(v, _)| *v == variant)?;
    let base = points.first()?.served_rps;
    let last = points.last()?;
    (base > 0.0 && points.len() > 1).then(|| (last.served_rps / base, last.flood_pps))
}

/// The targets section and the number missed.
pub fn evaluate(outcome: &Outcome) -> (String, usize) {
    let mut out = String::new();
    let mut missed = 0;
    let kinds: Vec<&str> = KINDS.iter().map(|kind| kind.label()).collect();
    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(
        out,
        "Ratios of receiver CPU per dropped packet, per flood ({}).\n",
        kinds.join(" / ")
    );
    let _ = writeln!(out, "| target | measured | result |");
    let _ = writeln!(out, "|---|---|---|");
    let mut row = |name: String, shown: String, met: Option<bool>| {
        missed += usize::from(met == Some(false));
        let _ = writeln!(out, "| {name} | {shown} | {} |", verdict(met));
    };
    // Each ratio target also shown for the minimal matcher, the least any
    // filter that reads the frame costs: a ceiling for dockfw's ratios.
    let ns = |variant, kind| outcome.ns(variant, kind);
    let ratio_targets: [(String, Variant, f64, bool); 3] = [
        (
            format!("CPU per drop <= {FLOOR_MULTIPLE}x the floor's"),
            Variant::Floor,
            FLOOR_MULTIPLE,
            false,
        ),
        (
            format!("drops per CPU-second >= {DOCKER_USER_MULTIPLE}x DOCKER-USER's"),
            Variant::DockerUser,
            DOCKER_USER_MULTIPLE,
            true,
        ),
        (
            format!("drops per CPU-second >= {XDP_FILTER_MULTIPLE}x xdp-filter's"),
            Variant::XdpFilter,
            XDP_FILTER_MULTIPLE,
            true,
        ),
    ];
    for (name, base, bound, higher_is_better) in ratio_targets {
        let ratio = |subject: Variant, kind: Kind| -> Option<f64> {
            let (subject, base) = (ns(subject, kind)?, ns(base, kind)?);
            Some(if higher_is_better {
                base / subject
            } else {
                subject / base
            })
        };
        let ok = |value: f64| {
            if higher_is_better {
                value >= bound
            } else {
                value <= bound
            }
        };
        let (shown, met) = per_kind(|kind| ratio(Variant::DockfwNative, kind), ok);
        let (reference, _) = per_kind(|kind| ratio(Variant::Matcher, kind), ok);
        row(
            format!("dockfw native: {name}"),
            format!("{shown} (minimal matcher: {reference})"),
            met,
        );
    }
    for variant in [
        Variant::DockfwNative,
        Variant::DockfwGeneric,
        Variant::DockfwTc,
    ] {
        let Some(result) = outcome.variant(variant) else {
            row(
                format!(
                    "{}: no conntrack entries from dropped flood packets",
                    variant.key()
                ),
                "n/a".into(),
                None,
            );
            continue;
        };
        let probe = result.probe;
        row(
            format!(
                "{}: no conntrack entries from dropped flood packets",
                variant.key()
            ),
            format!(
                "{} made, table {:+}, over {} dropped of {} sent",
                probe.conntrack_new, probe.conntrack_left, probe.dropped, probe.sent
            ),
            Some(probe.conntrack_new == 0 && probe.conntrack_left <= 0),
        );
    }
    let dockfw_share = legit_share(outcome, Variant::DockfwNative);
    let docker_user_share = legit_share(outcome, Variant::DockerUser);
    let shown = match (dockfw_share, docker_user_share) {
        (Some((share, pps)), other) => format!(
            "{:.0}% at {:.2} Mpps (DOCKER-USER alone: {})",
            100.0 * share,
            pps / 1e6,
            other.map_or("n/a".into(), |(share, pps)| format!(
                "{:.0}% at {:.2} Mpps",
                100.0 * share,
                pps / 1e6
            ))
        ),
        (None, _) => "n/a".into(),
    };
    // "... where DOCKER-USER alone keeps less": both halves are checked.
    let met = match (dockfw_share, docker_user_share) {
        (Some((dockfw, _)), Some((docker_user, _))) => {
            Some(dockfw >= LEGIT_SHARE && docker_user < dockfw)
        }
        _ => None,
    };
    row(
        format!(
            "legitimate HTTP with dockfw keeps >= {:.0}% of its no-attack rate at the highest flood rate, where DOCKER-USER alone keeps less",
            100.0 * LEGIT_SHARE
        ),
        shown,
        met,
    );
    (out, missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_passes_only_when_every_flood_meets_it() {
        let (shown, met) = per_kind(|_| Some(1.5), |value| value <= 1.6);
        assert_eq!(shown, "1.50x / 1.50x / 1.50x / 1.50x");
        assert_eq!(met, Some(true));
        let (_, met) = per_kind(
            |kind| Some(if kind == KINDS[3] { 1.7 } else { 1.5 }),
            |value| value <= 1.6,
        );
        assert_eq!(met, Some(false));
    }

    #[test]
    fn a_skipped_variant_is_not_measured_rather_than_missed() {
        let (shown, met) = per_kind(
            |kind| (kind != KINDS[0]).then_some(1.0),
            |value| value <= 1.6,
        );
        assert!(shown.starts_with("n/a / "), "{shown}");
        assert_eq!(met, None);
        assert_eq!(verdict(met), "not measured");
        assert_eq!(verdict(Some(false)), "**MISS**");
    }
}
