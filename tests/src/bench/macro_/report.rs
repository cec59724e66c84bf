//! What the run measured, summarised: medians per variant and flood kind,
//! the targets, the legitimate-traffic curve; written as markdown and JSON,
//! and drawn as PNG charts by `bench/plot_macro.py`.

use std::{fmt::Write as _, path::PathBuf};

use super::{
    charts,
    flood::{Kind, Probe, Sample},
    legit::LegitPoint,
    options::Options,
    tables, targets,
    topology::ATTACK_NET,
    variants::Variant,
};
use crate::bench::measure::median;

/// The flood of the summary table (the architecture brief's).
pub const HEADLINE: Kind = Kind::UdpFixed;

/// One variant's floods.
pub struct VariantResult {
    /// Which.
    pub variant: Variant,
    /// The paced probe flood.
    pub probe: Probe,
    /// Every timed flood.
    pub samples: Vec<(Kind, Sample)>,
    /// A note for the report.
    pub note: Option<String>,
}

impl VariantResult {
    /// An empty result.
    pub fn new(variant: Variant, probe: Probe, note: Option<String>) -> Self {
        Self {
            variant,
            probe,
            samples: Vec::new(),
            note,
        }
    }

    fn of(&self, kind: Kind) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, sample)| *sample)
            .collect()
    }

    /// Medians of `kind`'s floods.
    pub fn summary(&self, kind: Kind) -> Option<Summary> {
        let samples = self.of(kind);
        if samples.is_empty() {
            return None;
        }
        let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
        let ns = pick(|s| s.ns_per_drop);
        Some(Summary {
            offered_pps: median(&pick(|s| s.offered_pps)),
            dropped_pps: median(&pick(|s| s.dropped_pps)),
            ns_per_drop: median(&ns),
            ns_min: ns.iter().copied().fold(f64::INFINITY, f64::min),
            ns_max: ns.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            busy: median(&pick(|s| s.receiver_busy)),
            ring_lost_pps: median(&pick(|s| s.ring_lost_pps)),
        })
    }
}

/// Medians of one variant and kind.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Offered pps.
    pub offered_pps: f64,
    /// Dropped pps.
    pub dropped_pps: f64,
    /// Receiver ns per drop.
    pub ns_per_drop: f64,
    /// Lowest ns per drop of the runs.
    pub ns_min: f64,
    /// Highest.
    pub ns_max: f64,
    /// Receiver CPU share.
    pub busy: f64,
    /// Frames per second lost to a full ring.
    pub ring_lost_pps: f64,
}

/// Everything measured, with the conditions.
pub struct Outcome {
    /// Runs per kind.
    pub runs: usize,
    /// Seconds per flood.
    pub seconds: f64,
    /// Offered rate of the measured floods (None: as fast as it goes).
    pub flood_rate: Option<u64>,
    /// Published TCP ports.
    pub ports: u16,
    /// Bans.
    pub bans: usize,
    /// Rules on the attacked port.
    pub rules: usize,
    /// Request rate and seconds per legit point.
    pub legit_load: (f64, f64),
    /// Per variant.
    pub variants: Vec<VariantResult>,
    /// Legitimate traffic per variant.
    pub legit: Vec<(Variant, Vec<LegitPoint>)>,
    load_before: String,
    load_after: String,
    busy_before: String,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Compilers and test runners running beside the benchmark (noise).
fn busy_processes() -> String {
    let mut names = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if ["cargo", "rustc", "dockerd", "dockfw"].contains(&comm) || comm.starts_with("verdicts") {
            *names.entry(comm.to_string()).or_default() += 1;
        }
    }
    names
        .iter()
        .map(|(name, count)| format!("{count} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Outcome {
    /// Starts recording (machine load now).
    pub fn new(options: &Options) -> Self {
        Self {
            runs: options.runs,
            seconds: options.seconds,
            flood_rate: options.flood_rate,
            ports: options.ports,
            bans: options.bans,
            rules: options.rules,
            legit_load: (options.legit_rate, options.legit_seconds),
            variants: Vec::new(),
            legit: Vec::new(),
            load_before: loadavg(),
            load_after: String::new(),
            busy_before: busy_processes(),
        }
    }

    /// Records the load at the end.
    pub fn finish(&mut self) {
        self.load_after = loadavg();
    }

    /// The result of `variant`, if it ran.
    pub fn variant(&self, variant: Variant) -> Option<&VariantResult> {
        self.variants
            .iter()
            .find(|result| result.variant == variant)
    }

    /// Median ns per drop of `variant` under `kind`.
    pub fn ns(&self, variant: Variant, kind: Kind) -> Option<f64> {
        self.variant(variant)?.summary(kind).map(|s| s.ns_per_drop)
    }
}

/// What was written.
pub struct Written {
    /// The markdown.
    pub markdown: String,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Targets missed.
    pub missed: usize,
}

/// Writes the report (and the charts) when `out` is set; returns it.
pub fn write(outcome: &Outcome, out: Option<&PathBuf>) -> Result<Written, String> {
    let mut text = String::new();
    let _ = writeln!(text, "# dockfw macro benchmark (veth floods)\n");
    let _ = writeln!(
        text,
        "Kernel {}, {}. Generator (XDP live frames, 64-byte frames {}, {} s per \
         flood, bounded in packets) on CPU 0; the receiving veth's threaded NAPI kthread pinned to \
         CPU 1, its schedstat run time is the receiver's CPU. {} floods per variant and kind, \
         medians. dockerd 20.10 in the host namespace: {} published TCP ports (the attacked \
         8080 is also published for UDP). Flood sources: {ATTACK_NET} (random: 32,768 sources and \
         random ports). dockfw: {} rules on 8080, the flood matches the last; {} banned IPv4 \
         prefixes, one in each /24 of the flood's sources (so every flood packet reads its /24's \
         ban bitmap), the rest random outside 10.0.0.0/8.",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        cpu_model(),
        match outcome.flood_rate {
            Some(rate) => format!("paced at {rate} per second"),
            None => "as fast as it goes".to_string(),
        },
        outcome.seconds,
        outcome.runs,
        outcome.ports,
        outcome.rules,
        outcome.bans,
    );
    let _ = writeln!(
        text,
        "\nMachine load (1/5/15 min) before {} and after {}; running beside it at the start: {}.",
        outcome.load_before,
        outcome.load_after,
        if outcome.busy_before.is_empty() {
            "nothing notable"
        } else {
            &outcome.busy_before
        }
    );
    let _ = writeln!(text, "\n### Summary: 64-byte {}\n", HEADLINE.label());
    tables::summary(&mut text, outcome);
    tables::per_kind(&mut text, outcome);
    let (target_text, missed) = targets::evaluate(outcome);
    text.push_str(&target_text);
    tables::legit(&mut text, outcome);
    let notes: Vec<&String> = outcome
        .variants
        .iter()
        .filter_map(|r| r.note.as_ref())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(text, "\n### Notes\n");
        for note in notes {
            let _ = writeln!(text, "- {note}");
        }
    }
    let mut files = Vec::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        let _ = writeln!(
            text,
            "\n![receiver CPU per dropped packet](macro-cpu-per-drop.png)\n\n\
             ![dropped packets per second](macro-drop-rate.png)\n\n\
             ![legitimate traffic under attack](macro-legit.png)"
        );
        let md = dir.join("macro.md");
        std::fs::write(&md, &text).map_err(|error| format!("writing {}: {error}", md.display()))?;
        let json_path = dir.join("macro.json");
        let json = serde_json::to_string_pretty(&charts::to_json(outcome))
            .map_err(|error| format!("JSON: {error}"))?;
        std::fs::write(&json_path, json)
            .map_err(|error| format!("writing {}: {error}", json_path.display()))?;
        files.push(md);
        files.push(json_path.clone());
        files.extend(charts::draw(&json_path, dir)?);
    }
    Ok(Written {
        markdown: text,
        files,
        missed,
    })
}

fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = text
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .map_or("unknown CPU".into(), |model| model.trim().to_string());
    let cpus = text
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    format!("{model} x {cpus}")
}
