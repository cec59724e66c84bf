//! `cargo xtask`: dockfw's developer entry point. Every command first runs
//! `setup` (unless `--no-setup`), which installs whatever is missing, so a
//! fresh Debian 12 machine needs nothing but rustup and this repository.

mod cmd;
mod launch;
mod setup;
mod test;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

/// dockfw's developer tasks: setup, build, run, test tiers, bench, demo, fuzz, docs.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    /// Do not run `setup` first (assume toolchains and packages are in place).
    #[arg(long, global = true)]
    no_setup: bool,
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what is missing (idempotent; apt-get needs root).
    ///
    /// Checks and installs only what is missing: nightly rust-src and clippy,
    /// stable rustfmt and clippy, the Debian packages (LLVM 22, iptables,
    /// docker.io, packet tools, ...), and bpf-linker 0.13 built against
    /// LLVM 22.
    Setup,
    /// Build the workspace's default members.
    ///
    /// The eBPF programs are built by dockfw's build script (aya-build).
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Build dockfw and exec it with ARGS (needs root).
    ///
    /// Example: `cargo xtask run -- run --iface eth0`. Builds with the
    /// release profile unless --debug, then replaces this process with
    /// `dockfw ARGS...` so signals reach the daemon.
    Run {
        /// Build with the release profile (the default; kept for symmetry
        /// with `build --release`).
        #[arg(long, conflicts_with = "debug")]
        release: bool,
        /// Build with the dev profile instead of release.
        #[arg(long)]
        debug: bool,
        /// Arguments for dockfw.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Run the test tiers (lint, unit, root) and print a summary.
    ///
    /// Exits non-zero if any tier failed. A tier that cannot run (not root,
    /// no BPF, no dockerd) fails: it is never skipped. The test processes get
    /// DOCKFW_TEST_STRICT=1.
    Test(test::TestArgs),
    /// Run the benchmark harness (`dockfw-bench macro`, or `micro` with --micro).
    Bench {
        /// BPF_PROG_TEST_RUN micro-benchmarks instead of the veth flood benchmarks.
        #[arg(long)]
        micro: bool,
        /// The /metrics scrape benchmark (1,000 ports x 32 rules, 50 ms budget).
        #[arg(long, conflicts_with = "micro")]
        scrape: bool,
        /// Arguments for the benchmark harness.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Run the demo (`dockfw-demo`).
    Demo {
        /// Arguments for the demo.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Run the fuzz test (`dockfw-tests --test fuzz`) for a bounded time.
    Fuzz {
        /// How long to fuzz, in minutes (passed as DOCKFW_FUZZ_MINUTES).
        #[arg(long, default_value_t = 5, value_name = "N")]
        minutes: u32,
    },
    /// Generate the reference docs into target/docs (`dockfw --example gen-docs`).
    Docs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let ci = match &cli.command {
        Task::Test(args) => args.ci || cmd::ci_from_env(std::env::var("CI").ok().as_deref()),
        _ => false,
    };
    let workspace = cmd::Workspace::locate(ci)?;
    if let Task::Run { .. } = cli.command {
        // Checked before setup and the build, which take minutes.
        if !cmd::is_root()? {
            bail!(
                "`cargo xtask run` must run as root: dockfw attaches XDP/TC programs and pins maps under /sys/fs/bpf"
            );
        }
    }
    if !cli.no_setup || matches!(cli.command, Task::Setup) {
        setup::run(&workspace)?;
    }
    match cli.command {
        Task::Setup => {}
        Task::Build { release } => launch::build(&workspace, release)?,
        Task::Run { debug, args, .. } => launch::run_daemon(&workspace, !debug, &args)?,
        Task::Test(args) => {
            let reports = test::run(&workspace, &args);
            if reports.iter().any(|report| report.failure.is_some()) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Task::Bench {
            scrape: true, args, ..
        } => launch::bench_command(&workspace, "scrape", &args)?,
        Task::Bench { micro, args, .. } => launch::bench(&workspace, micro, &args)?,
        Task::Demo { args } => launch::demo(&workspace, &args)?,
        Task::Fuzz { minutes } => launch::fuzz(&workspace, minutes)?,
        Task::Docs => launch::docs(&workspace)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use test::Tier;

    fn parse(args: &[&str]) -> Cli {
        match Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())) {
            Ok(cli) => cli,
            Err(error) => panic!("parsing {args:?} failed: {error}"),
        }
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_passes_everything_after_the_separator() {
        let cli = parse(&["run", "--", "run", "--iface", "eth0"]);
        let Task::Run {
            release,
            debug,
            args,
        } = cli.command
        else {
            panic!("not the run task: {:?}", cli.command);
        };
        assert!(!release && !debug);
        assert_eq!(args, ["run", "--iface", "eth0"]);
    }

    #[test]
    fn run_flags_before_the_separator_are_ours() {
        let cli = parse(&["--no-setup", "run", "--debug", "--", "--help"]);
        assert!(cli.no_setup);
        let Task::Run { debug, args, .. } = cli.command else {
            panic!("not the run task: {:?}", cli.command);
        };
        assert!(debug);
        assert_eq!(args, ["--help"]);
        assert!(Cli::try_parse_from(["xtask", "run", "--release", "--debug"]).is_err());
    }

    #[test]
    fn test_tiers_repeat_and_ci_flag() {
        let cli = parse(&["test", "--tier", "root", "--tier", "lint", "--ci"]);
        let Task::Test(args) = cli.command else {
            panic!("not the test task: {:?}", cli.command);
        };
        assert_eq!(args.tiers, [Tier::Root, Tier::Lint]);
        assert!(args.ci);
        assert!(Cli::try_parse_from(["xtask", "test", "--tier", "nope"]).is_err());
    }

    #[test]
    fn bench_mode_flag_and_passthrough() {
        let cli = parse(&["bench", "--micro", "--runs", "3"]);
        let Task::Bench { micro, args, .. } = cli.command else {
            panic!("not the bench task: {:?}", cli.command);
        };
        assert!(micro);
        assert_eq!(args, ["--runs", "3"]);
    }

    #[test]
    fn fuzz_minutes_default_and_value() {
        let Task::Fuzz { minutes } = parse(&["fuzz"]).command else {
            panic!("not the fuzz task");
        };
        assert_eq!(minutes, 5);
        let Task::Fuzz { minutes } = parse(&["fuzz", "--minutes", "30"]).command else {
            panic!("not the fuzz task");
        };
        assert_eq!(minutes, 30);
    }
}
