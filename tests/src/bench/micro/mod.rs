//! `dockfw-bench micro`: mean cost per packet of dockfw's XDP program under
//! BPF_PROG_TEST_RUN, against the floor (a program that only drops) and
//! xdp-filter dropping the same port, all measured in one run. Also the
//! flatness of the common path over ban and rule counts, and a row per
//! data-plane step to attribute the cost.
//!
//! Needs root (BPF, namespaces) and xdp-tools. Writes the report to
//! `bench/results/micro.md` and prints it; exits 0 even when a target is
//! missed (marked MISS): it is a benchmark, not a test.

mod fd_run;
mod peer;
mod report;
mod scenario;
mod sizes;
mod variants;
mod world;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

/// Default repeats per BPF_PROG_TEST_RUN call.
const DEFAULT_REPEAT: u32 = 1_000_000;
/// The report, relative to the workspace root.
const DEFAULT_REPORT: &str = "bench/results/micro.md";
/// Default timed runs per variant.
const DEFAULT_RUNS: usize = 11;

const USAGE: &str = "\
usage: dockfw-bench micro [--runs N] [--repeat N] [--max-bans N] [--only TEXT] [--out FILE]

  --runs N       timed runs per variant, interleaved; the median is reported (default 11)
  --repeat N     iterations per BPF_PROG_TEST_RUN call (default 1000000)
  --max-bans N   skip ban scales above N (default 1000000)
  --only TEXT    time only the variants whose name contains TEXT (to profile one path
                 with `perf record`); targets needing other variants show n/a, and the
                 report is written only with --out
  --out FILE     where the markdown report goes (default bench/results/micro.md)";

/// Options of the micro benchmark.
pub struct Options {
    /// Timed runs per variant.
    pub runs: usize,
    /// Iterations per test run.
    pub repeat: u32,
    /// Largest ban scale to set up.
    pub max_bans: usize,
    /// Only variants whose name contains this.
    pub only: Option<String>,
    /// Report file (`None`: the default, unless `--only` narrowed the run).
    pub out: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            runs: DEFAULT_RUNS,
            repeat: DEFAULT_REPEAT,
            max_bans: world::BAN_SCALES[world::BAN_SCALES.len() - 1],
            only: None,
            out: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let number = |text: &String| -> Result<u64, String> {
                text.replace('_', "")
                    .parse()
                    .map_err(|_| format!("{flag} takes a number, not {text:?}"))
            };
            match flag.as_str() {
                "--runs" => options.runs = number(value()?)?.max(1) as usize,
                "--repeat" => {
                    options.repeat = number(value()?)?.clamp(1, u64::from(u32::MAX)) as u32
                }
                "--max-bans" => options.max_bans = number(value()?)? as usize,
                "--only" => options.only = Some(value()?.clone()),
                "--out" => options.out = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }
}

/// Runs the micro benchmark.
pub fn main(args: &[String]) -> ExitCode {
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(error) if error.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("dockfw-bench micro: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dockfw-bench micro: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    dockfw_tests::require_root("the micro benchmark");
    if options.repeat < DEFAULT_REPEAT {
        eprintln!(
            "note: --repeat {} is below {DEFAULT_REPEAT}; short runs are dominated by the syscall's fixed cost",
            options.repeat
        );
    }
    let started = Instant::now();
    let mut world = world::World::build(options)?;
    eprintln!("setup took {:.1?}", started.elapsed());

    let mut variants = variants::all(&world);
    if let Some(only) = &options.only {
        variants.retain(|variant| variant.name.contains(only.as_str()));
    }
    variants::check(&mut world, &variants)?;
    variants::time_all(&mut world, &mut variants, options.runs, options.repeat)?;
    let sizes = sizes::collect(&mut world);
    let report = report::build(options, &world, &variants, &sizes);

    println!("{}", report.text);
    if report.missed > 0 {
        println!(
            "MISS: {} target(s) missed (see Targets above)",
            report.missed
        );
    } else {
        println!("all targets met");
    }
    let out = match (&options.out, &options.only) {
        (Some(out), _) => out.clone(),
        (None, None) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DEFAULT_REPORT),
        (None, Some(_)) => {
            eprintln!(
                "--only without --out: the partial report is not written to {DEFAULT_REPORT}"
            );
            return Ok(());
        }
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
    }
    std::fs::write(&out, &report.text)
        .map_err(|error| format!("writing {}: {error}", out.display()))?;
    let shown = std::fs::canonicalize(&out).unwrap_or(out);
    eprintln!("report written to {}", shown.display());
    Ok(())
}
