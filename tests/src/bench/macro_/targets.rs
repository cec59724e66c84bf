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

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "**MISS**" }
}

/// `f(kind)` for every kind, shown as "a / b / c / d"; whether all meet
/// `ok` (false if any is missing).
fn per_kind(f: impl Fn(Kind) -> Option<f64>, ok: impl Fn(f64) -> bool) -> (String, bool) {
    let values: Vec<Option<f64>> = KINDS.iter().map(|kind| f(*kind)).collect();
    let shown: Vec<String> = values
        .iter()
        .map(|value| value.map_or("n/a".into(), |value| format!("{value:.2}x")))
        .collect();
    let met = values.iter().all(|value| value.is_some_and(&ok));
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
    let mut row = |name: String, shown: String, met: bool| {
        missed += usize::from(!met);
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
                false,
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
            probe.conntrack_new == 0 && probe.conntrack_left <= 0,
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
    let met = dockfw_share.is_some_and(|(share, _)| share >= LEGIT_SHARE);
    row(
        format!(
            "legitimate HTTP with dockfw keeps >= {:.0}% of its no-attack rate at the highest flood rate",
            100.0 * LEGIT_SHARE
        ),
        shown,
        met,
    );
    (out, missed)
}
