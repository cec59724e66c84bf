//! The report: markdown tables of the medians and ratios, the targets with
//! PASS/MISS, setup times and program sizes. Printed and written to
//! `bench/results/micro.md`.

use std::fmt::Write as _;

use super::{
    Options,
    sizes::ProgramSize,
    variants::{COMMON, FLOOR, Table, Variant, WORST, thousands, verdict_label},
    world::{BAN_SCALES, PEER_INSTANCES, World},
};
use crate::bench::measure::Summary;

/// Flatness bound: the dearest point of a series over the cheapest.
const FLAT_WITHIN: f64 = 1.5;
/// The common path may cost at most this many floors.
const FLOOR_MULTIPLE: f64 = 3.0;

/// A variant's medians, by name.
struct Row<'a> {
    variant: &'a Variant,
    summary: Summary,
}

/// Whether every target was met, and the report text.
pub struct Report {
    /// The markdown.
    pub text: String,
    /// Targets missed.
    pub missed: usize,
}

fn find<'a>(rows: &'a [Row<'a>], name: &str) -> Option<&'a Row<'a>> {
    rows.iter().find(|row| row.variant.name == name)
}

fn ratio(value: f64, base: Option<f64>) -> String {
    match base {
        Some(base) if base > 0.0 => format!("{:.2}x", value / base),
        _ => "-".into(),
    }
}

fn table(out: &mut String, title: &str, rows: &[&Row<'_>], floor: Option<f64>, peer: Option<f64>) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(
        out,
        "| variant | verdict | ns/packet, kernel mean | ns/packet, CPU clock | CPU clock min-max | x floor | x xdp-filter |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let summary = row.summary;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2}-{:.2} | {} | {} |",
            row.variant.name,
            verdict_label(row.variant),
            summary.kernel_ns,
            summary.cpu_ns,
            summary.cpu_min,
            summary.cpu_max,
            ratio(summary.cpu_ns, floor),
            ratio(summary.cpu_ns, peer),
        );
    }
}

fn spread(rows: &[&Row<'_>]) -> Option<f64> {
    let values: Vec<f64> = rows.iter().map(|row| row.summary.cpu_ns).collect();
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    (values.len() >= 2 && min > 0.0).then_some(max / min)
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "**MISS**" }
}

/// Builds the report.
pub fn build(
    options: &Options,
    world: &World,
    variants: &[Variant],
    sizes: &[ProgramSize],
) -> Report {
    let rows: Vec<Row<'_>> = variants
        .iter()
        .map(|variant| Row {
            variant,
            summary: Summary::of(&variant.samples),
        })
        .collect();
    let in_table = |table: Table| -> Vec<&Row<'_>> {
        rows.iter()
            .filter(|row| row.variant.table == table)
            .collect()
    };
    let floor = find(&rows, FLOOR).map(|row| row.summary.cpu_ns);
    let peer = find(&rows, PEER_INSTANCES[0].0).map(|row| row.summary.cpu_ns);
    let common = find(&rows, COMMON).map(|row| row.summary.cpu_ns);

    let mut out = String::new();
    let _ = writeln!(out, "# dockfw micro benchmark (BPF_PROG_TEST_RUN)\n");
    let _ = writeln!(
        out,
        "Kernel {}, {}; {} runs of {} repeats per variant, interleaved; medians. \
         Ratios use the CPU-clock column (the kernel reports whole ns only).",
        machine("/proc/sys/kernel/osrelease"),
        cpu_model(),
        options.runs,
        thousands(options.repeat as usize),
    );
    let main = &world.dataplanes[world.main];
    let _ = writeln!(
        out,
        "Policy: 1,000 published ports (IPv4 + IPv6 TCP), 16 rules on the hit port, match on the 16th; \
         {} IPv4 + {} IPv6 bans (random /16../32 and /32../128, none covering the source; one shares \
         the IPv4 source's /24, so that /24's ban bitmap is looked up; one the IPv6 source's /32 but not \
         its /64). The host has 5 IPv4 and 3 IPv6 local prefixes, the destination among them \
         (wildcard ports match only local destinations). Frame: 54-byte TCP SYN.",
        thousands(main.bans_v4),
        thousands(main.bans_v6),
    );

    let _ = writeln!(
        out,
        "\nBPF_PROG_TEST_RUN repeats one frame, so maps and trie nodes stay in cache: the cost of \
         pointer-chasing lookups (LPM tries) is a lower bound of what a flood from many sources pays."
    );

    table(
        &mut out,
        "Headline",
        &in_table(Table::Headline),
        floor,
        peer,
    );
    let bans = in_table(Table::Bans);
    table(
        &mut out,
        "Flatness: common path over IPv4 ban count",
        &bans,
        floor,
        peer,
    );
    let rules = in_table(Table::Rules);
    table(
        &mut out,
        "Flatness: common path over rules on the port (match on the last)",
        &rules,
        floor,
        peer,
    );

    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | measured | result |");
    let _ = writeln!(out, "|---|---:|---|");
    let mut missed = 0;
    let mut target = |name: String, value: Option<f64>, bound: f64| {
        let met = value.is_some_and(|value| value <= bound);
        if !met {
            missed += 1;
        }
        let shown = value.map_or("n/a".into(), |value| format!("{value:.2}x"));
        let _ = writeln!(out, "| {name} | {shown} | {} |", verdict(met));
    };
    target(
        format!("common path <= {FLOOR_MULTIPLE}x floor"),
        common.zip(floor).map(|(c, f)| c / f),
        FLOOR_MULTIPLE,
    );
    target(
        "common path <= xdp-filter".into(),
        common.zip(peer).map(|(c, p)| c / p),
        1.0,
    );
    let partial = if bans.len() < BAN_SCALES.len() {
        " (partial: --max-bans)"
    } else {
        ""
    };
    target(
        format!("flat within {FLAT_WITHIN}x from 10 to 1,000,000 bans{partial}"),
        spread(&bans),
        FLAT_WITHIN,
    );
    target(
        format!("flat within {FLAT_WITHIN}x from 1 to 32 rules"),
        spread(&rules),
        FLAT_WITHIN,
    );

    table(
        &mut out,
        "Attribution: one step more per row (same data plane as the headline)",
        &in_table(Table::Attribution),
        floor,
        peer,
    );

    steps(&mut out, &rows);

    let _ = writeln!(out, "\n### Setup\n");
    let _ = writeln!(
        out,
        "| data plane | IPv4 /24s with a ban state | ports with source rules: in tries / in hash or LPM tables | trie nodes | load | policy | ban set | write_bans |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for dataplane in &world.dataplanes {
        let setup = dataplane.setup;
        let tries = dataplane.harness.tries;
        let _ = writeln!(
            out,
            "| {} IPv4 + {} IPv6 bans | {:.1}% | {} / {} | {} | {:.2?} | {:.2?} | {:.2?} | {:.2?} |",
            thousands(dataplane.bans_v4),
            thousands(dataplane.bans_v6),
            100.0 * dataplane.summary_fill_v4,
            thousands(tries.ports_in_tries),
            thousands(tries.ports_in_levels),
            thousands(tries.nodes),
            setup.load,
            setup.policy,
            setup.ban_set,
            setup.write_bans,
        );
    }

    let _ = writeln!(out, "\n### Programs\n");
    let _ = writeln!(
        out,
        "| program | id | xlated insns | jited bytes | verified insns |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let show = |value: Option<u64>| value.map_or("-".into(), |value| value.to_string());
    for size in sizes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            size.label,
            size.id,
            show(size.xlated_insns),
            show(size.jited_bytes),
            show(size.verified_insns)
        );
    }
    let _ = writeln!(
        out,
        "\nxdp-filter: timed program per instance (`xdp-filter load --features F` + `xdp-filter port 8080`):"
    );
    for program in &world.peer.programs {
        let how = if program.timed_name.contains("dispatcher") {
            "the libxdp dispatcher, which runs xdp-filter's program as an freplace extension"
        } else {
            "xdp-filter's own program, attached directly by libxdp (no dispatcher in use)"
        };
        let _ = writeln!(
            out,
            "- {} -> `{}` (id {}): {how}",
            program.features, program.timed_name, program.id
        );
    }
    Report { text: out, missed }
}

/// What each step adds: differences between attribution rows, in the
/// order a packet meets them. (label, later row, earlier row); rows are
/// named by their letter, `floor`, `worst`.
const STEPS: [(&str, &str, &str); 14] = [
    ("Ethernet parse + global counter", "a.", "floor"),
    ("IPv4 + TCP parse, config, port index", "b.", "a."),
    ("port policy, ban summary bit, port counter", "c.", "b."),
    ("partly banned /24: slot index + bitmap, miss", "d.", "c."),
    (
        "rule action lookup + drop counter (no source condition)",
        "e.",
        "c.",
    ),
    ("source trie, port with 1 rule", "f.", "e."),
    ("source trie, 16 rules instead of 1", "g.", "f."),
    (
        "partly banned /24 bitmap lookup on the common path",
        "h.",
        "g.",
    ),
    (
        "drop events on: budget check with bpf_ktime_get_ns",
        "k.",
        "h.",
    ),
    (
        "IPv6 instead of IPv4 (ban summaries, 16-byte source trie walk)",
        "j.",
        "h.",
    ),
    (
        "IPv6 exact /64 entry and its host filter (source shares a /64 with a /128 ban)",
        "m.",
        "j.",
    ),
    (
        "IPv6 ban LPM trie walk (source shares a /64 with a /96 ban)",
        "o.",
        "j.",
    ),
    ("802.1Q + 3 IPv6 extension headers", "worst", "j."),
    ("TC program instead of XDP (skb)", "l.", "h."),
];

fn row_by_key<'a>(rows: &'a [Row<'a>], key: &str) -> Option<&'a Row<'a>> {
    match key {
        "floor" => find(rows, FLOOR),
        "worst" => find(rows, WORST),
        letter => rows.iter().find(|row| row.variant.name.starts_with(letter)),
    }
}

fn steps(out: &mut String, rows: &[Row<'_>]) {
    let _ = writeln!(
        out,
        "\n### Cost per step (differences of the medians above, CPU clock)\n"
    );
    let _ = writeln!(out, "| step | rows | ns/packet |");
    let _ = writeln!(out, "|---|---|---:|");
    for (label, later, earlier) in STEPS {
        if let (Some(a), Some(b)) = (row_by_key(rows, later), row_by_key(rows, earlier)) {
            let _ = writeln!(
                out,
                "| {label} | {} - {} | {:+.1} |",
                later.trim_end_matches('.'),
                earlier.trim_end_matches('.'),
                a.summary.cpu_ns - b.summary.cpu_ns
            );
        }
    }
}

fn machine(path: &str) -> String {
    std::fs::read_to_string(path).map_or("?".into(), |text| text.trim().to_string())
}

fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split(':').nth(1))
        })
        .map_or("unknown CPU".into(), |model| model.trim().to_string());
    let cpus = text
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    format!("{model} x {cpus}")
}
