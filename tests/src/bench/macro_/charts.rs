//! The results as JSON, and the PNG charts drawn from it by
//! `bench/plot_macro.py` (CPU per drop and drop rate per variant;
//! legitimate traffic under increasing attack).

use std::{path::PathBuf, process::Command};

use serde_json::{Value, json};

use super::{
    flood::KINDS,
    report::{HEADLINE, Outcome},
};

/// The results as the chart script reads them.
pub fn to_json(outcome: &Outcome) -> Value {
    let variants: Vec<Value> = outcome
        .variants
        .iter()
        .map(|result| {
            let kinds: Vec<Value> = KINDS
                .iter()
                .filter_map(|kind| {
                    let s = result.summary(*kind)?;
                    Some(json!({"key": kind.key(), "label": kind.label(),
                                "offered_pps": s.offered_pps, "dropped_pps": s.dropped_pps,
                                "ns_per_drop": s.ns_per_drop, "ns_min": s.ns_min,
                                "ns_max": s.ns_max, "receiver_busy": s.busy,
                                "ring_full_pps": s.ring_lost_pps}))
                })
                .collect();
            let p = result.probe;
            json!({"key": result.variant.key(), "label": result.variant.label(), "kinds": kinds,
                   "probe": {"sent": p.sent, "dropped": p.dropped,
                             "conntrack_new": p.conntrack_new, "conntrack_left": p.conntrack_left}})
        })
        .collect();
    let legit: Vec<Value> = outcome
        .legit
        .iter()
        .map(|(variant, points)| {
            let points: Vec<Value> = points
                .iter()
                .map(|p| {
                    json!({"target_pps": p.target_pps, "flood_pps": p.flood_pps,
                                "offered_rps": p.offered_rps, "served_rps": p.served_rps})
                })
                .collect();
            json!({"key": variant.key(), "label": variant.label(), "points": points})
        })
        .collect();
    json!({"headline": HEADLINE.key(), "runs": outcome.runs, "seconds": outcome.seconds,
           "variants": variants, "legit": legit})
}

/// Draws the PNGs with Debian's matplotlib (`cargo xtask setup` installs
/// python3-matplotlib; the system interpreter, not one on PATH that may
/// lack it).
pub fn draw(json: &std::path::Path, dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/plot_macro.py");
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|candidate| !candidate.starts_with('/') || std::path::Path::new(candidate).exists())
        .unwrap_or("python3");
    let output = Command::new(python)
        .arg(&script)
        .arg(json)
        .arg(dir)
        .output()
        .map_err(|error| format!("running {}: {error}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "drawing the charts failed (is python3-matplotlib installed? `cargo xtask setup`): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect())
}
