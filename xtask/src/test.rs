//! `cargo xtask test`: every test tier, in order, with a summary.
//!
//! A tier whose prerequisites are missing (not root, no BPF syscall, no
//! dockerd) *fails* with the reason: a skipped tier is a failed tier, in CI
//! and on a laptop alike, so a green run always means every tier ran.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::cmd::{self, Workspace};

/// Arguments of `cargo xtask test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Run only this tier (repeatable); without it every tier runs. Tiers
    /// always run in the order lint, unit, root.
    #[arg(long = "tier", value_enum, value_name = "NAME")]
    pub tiers: Vec<Tier>,
    /// Strict, non-interactive run (also set by env CI=1 or CI=true): no
    /// standard input for children, cargo runs with --locked.
    #[arg(long)]
    pub ci: bool,
}

/// A test tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Tier {
    /// `cargo fmt --check`, clippy on the host crates, clippy on the eBPF
    /// crate for the BPF target.
    Lint,
    /// `cargo test` of every crate but the root-only test crate; no root.
    Unit,
    /// The root-only crate `dockfw-tests`: BPF_PROG_TEST_RUN verdicts,
    /// namespaces, a real dockerd; one test at a time.
    Root,
}

impl Tier {
    /// Every tier, in the order they run.
    pub const ALL: [Tier; 3] = [Tier::Lint, Tier::Unit, Tier::Root];

    /// The tier's name on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Lint => "lint",
            Tier::Unit => "unit",
            Tier::Root => "root",
        }
    }
}

/// The tiers to run: the requested ones (all if none), each once, in the
/// canonical order.
pub fn select_tiers(requested: &[Tier]) -> Vec<Tier> {
    if requested.is_empty() {
        return Tier::ALL.to_vec();
    }
    let mut tiers = requested.to_vec();
    tiers.sort();
    tiers.dedup();
    tiers
}

/// How one tier ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierReport {
    /// Which tier.
    pub tier: Tier,
    /// `None` if it passed, else why it failed.
    pub failure: Option<String>,
    /// Wall-clock time the tier took.
    pub duration: Duration,
}

/// Runs the selected tiers and prints the summary; returns the reports so
/// the caller can set the exit code.
pub fn run(workspace: &Workspace, args: &TestArgs) -> Vec<TierReport> {
    let tiers = select_tiers(&args.tiers);
    let mut reports = Vec::new();
    for tier in tiers {
        println!();
        println!("==== tier {} ====", tier.name());
        let started = Instant::now();
        let failure = match tier {
            Tier::Lint => lint(workspace),
            Tier::Unit => unit(workspace),
            Tier::Root => root(workspace),
        };
        let report = TierReport {
            tier,
            failure,
            duration: started.elapsed(),
        };
        match &report.failure {
            None => println!("==== tier {}: passed ====", tier.name()),
            Some(reason) => println!("==== tier {}: FAILED: {reason} ====", tier.name()),
        }
        reports.push(report);
    }
    println!();
    print!("{}", format_summary(&reports));
    reports
}

/// The summary table: one row per tier with its result and duration, then
/// the reason of each failure.
pub fn format_summary(reports: &[TierReport]) -> String {
    let mut table = String::from("tier  result  duration\n");
    for report in reports {
        let result = if report.failure.is_some() {
            "FAILED"
        } else {
            "passed"
        };
        let _ = writeln!(
            table,
            "{:<4}  {:<6}  {:>8}",
            report.tier.name(),
            result,
            format_duration(report.duration)
        );
    }
    let failed: Vec<_> = reports.iter().filter(|r| r.failure.is_some()).collect();
    for report in &failed {
        if let Some(reason) = &report.failure {
            let _ = writeln!(table, "  {}: {reason}", report.tier.name());
        }
    }
    let _ = writeln!(
        table,
        "{} of {} tiers passed",
        reports.len() - failed.len(),
        reports.len()
    );
    table
}

/// `12.3s` under a minute, `4m05s` above.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A cargo command for a tier: `DOCKFW_TEST_STRICT=1` tells the tests to
/// fail instead of skipping when something they need is missing.
fn tier_cargo(workspace: &Workspace, args: &[&str]) -> Command {
    let mut command = workspace.cargo(args);
    command.env("DOCKFW_TEST_STRICT", "1");
    command
}

/// Runs the steps in order, all of them even after a failure so one run
/// reports every problem, and joins the failures into one reason.
fn run_steps(steps: Vec<(&str, Command)>) -> Option<String> {
    let mut failures = Vec::new();
    for (name, mut command) in steps {
        if let Err(error) = cmd::run(&mut command) {
            eprintln!("error: {name}: {error:#}");
            failures.push(name);
        }
    }
    if failures.is_empty() {
        None
    } else {
        Some(format!("{} failed", failures.join(", ")))
    }
}

fn lint(workspace: &Workspace) -> Option<String> {
    let locked = workspace.locked();
    let mut host_clippy = vec![
        "clippy",
        "--workspace",
        "--all-targets",
        "--exclude",
        "dockfw-ebpf",
    ];
    host_clippy.extend(locked);
    host_clippy.extend(["--", "-D", "warnings"]);
    // The eBPF crate only builds for the BPF target, from the workspace root
    // (so the workspace's lints and profiles apply), with nightly for
    // `-Z build-std=core`. Clippy only type-checks, so bpf-linker is not
    // involved; `--release` matches the profile aya-build compiles with.
    let mut ebpf_clippy = vec![
        "+nightly",
        "clippy",
        "-p",
        "dockfw-ebpf",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--release",
    ];
    ebpf_clippy.extend(locked);
    ebpf_clippy.extend(["--", "-D", "warnings"]);
    run_steps(vec![
        (
            "rustfmt",
            tier_cargo(workspace, &["fmt", "--all", "--check"]),
        ),
        ("clippy (host crates)", tier_cargo(workspace, &host_clippy)),
        ("clippy (eBPF crate)", tier_cargo(workspace, &ebpf_clippy)),
    ])
}

fn unit(workspace: &Workspace) -> Option<String> {
    let mut args = vec![
        "test",
        "--workspace",
        "--exclude",
        "dockfw-tests",
        "--no-fail-fast",
    ];
    args.extend(workspace.locked());
    run_steps(vec![("cargo test (unit)", tier_cargo(workspace, &args))])
}

fn root(workspace: &Workspace) -> Option<String> {
    if let Err(reason) = root_prerequisites() {
        return Some(reason);
    }
    warn_stale_namespaces();
    let mut args = vec!["test", "-p", "dockfw-tests", "--no-fail-fast"];
    args.extend(workspace.locked());
    // Root tests share the kernel (namespaces, XDP attachments, dockerd):
    // one at a time.
    args.extend(["--", "--test-threads=1"]);
    run_steps(vec![("cargo test (root)", tier_cargo(workspace, &args))])
}

/// Programs the root tier drives, and the package that provides each.
const ROOT_PROGRAMS: &[(&str, &str)] = &[
    ("dockerd", "docker.io"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("iptables", "iptables"),
    ("busybox", "busybox-static"),
];

/// Why the root tier cannot run here, if it cannot.
fn root_prerequisites() -> Result<(), String> {
    match cmd::is_root() {
        Ok(true) => {}
        Ok(false) => {
            return Err(
                "not root: the root tier loads BPF programs, creates network \
                        namespaces and runs dockerd; rerun as root"
                    .to_owned(),
            );
        }
        Err(error) => return Err(format!("cannot tell whether we are root: {error:#}")),
    }
    // This sysctl exists exactly when the kernel has the bpf() syscall
    // (CONFIG_BPF_SYSCALL).
    if !Path::new("/proc/sys/kernel/unprivileged_bpf_disabled").exists() {
        return Err("this kernel has no BPF syscall (CONFIG_BPF_SYSCALL is off)".to_owned());
    }
    let missing: Vec<String> = ROOT_PROGRAMS
        .iter()
        .filter(|(program, _)| cmd::find_in_path(program).is_none())
        .map(|(program, package)| format!("{program} (apt package {package})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "not on PATH: {}; `cargo xtask setup` installs them",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Warns about namespaces left by an earlier, interrupted test run; they
/// are not deleted, since they may belong to a run still in progress.
fn warn_stale_namespaces() {
    let listing = match cmd::probe(Command::new("ip").args(["netns", "list"])) {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(error) => {
            println!("warning: could not list network namespaces: {error:#}");
            return;
        }
    };
    let stale = stale_namespaces(&listing);
    if !stale.is_empty() {
        println!(
            "warning: network namespaces from an earlier dockfw test run are still there: {} \
             (not deleting them; remove them with `ip netns delete NAME` once no test run \
             uses them)",
            stale.join(" ")
        );
    }
}

/// Names of dockfw test namespaces (`dfw-*`) in `ip netns list` output,
/// whose lines look like `dfw-host (id: 3)` or just `dfw-host`.
pub fn stale_namespaces(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with("dfw-"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tier_means_every_tier_in_order() {
        assert_eq!(select_tiers(&[]), vec![Tier::Lint, Tier::Unit, Tier::Root]);
    }

    #[test]
    fn requested_tiers_run_once_in_canonical_order() {
        assert_eq!(
            select_tiers(&[Tier::Root, Tier::Lint, Tier::Root]),
            vec![Tier::Lint, Tier::Root]
        );
    }

    #[test]
    fn summary_lists_every_tier_and_each_failure() {
        let reports = [
            TierReport {
                tier: Tier::Lint,
                failure: None,
                duration: Duration::from_millis(12_345),
            },
            TierReport {
                tier: Tier::Root,
                failure: Some("not root".to_owned()),
                duration: Duration::from_secs(245),
            },
        ];
        assert_eq!(
            format_summary(&reports),
            "tier  result  duration\n\
             lint  passed     12.3s\n\
             root  FAILED     4m05s\n  \
             root: not root\n\
             1 of 2 tiers passed\n"
        );
    }

    #[test]
    fn stale_namespaces_are_only_ours() {
        let listing = "dfw-host (id: 3)\nother\ndfw-client\nmy-dfw-thing (id: 1)\n";
        assert_eq!(stale_namespaces(listing), vec!["dfw-host", "dfw-client"]);
        assert!(stale_namespaces("").is_empty());
    }
}
