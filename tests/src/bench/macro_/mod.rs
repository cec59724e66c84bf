//! `dockfw-bench macro`: the same floods offered to eight ways of dropping
//! them, one after the other in one run, on a veth into a namespace with a
//! real dockerd: offered and dropped packets per second, the receiver's CPU
//! time per dropped packet, the conntrack entries the flood made; then
//! legitimate HTTP traffic under floods of increasing rate, with
//! DOCKER-USER alone and with dockfw.
//!
//! Needs root, two CPUs, Docker, iptables/nftables, xdp-tools and Debian's
//! python3-matplotlib (all from `cargo xtask setup`). Writes
//! `bench/results/macro.md`, `macro.json` and PNG charts; exits 0 even when
//! a target is missed (marked MISS): it is a benchmark, not a test.

mod charts;
mod daemon;
mod flood;
mod legit;
mod netfilter;
mod options;
mod policy;
mod receiver;
mod report;
mod tables;
mod targets;
mod topology;
mod variants;
mod xdp;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use flood::{Flooder, KINDS};
use legit::LegitPoint;
use netfilter::{Chain, IptablesRules};
use options::Options;
use report::{Outcome, VariantResult};
use topology::Topology;
use variants::{DockfwInputs, Installed, Variant};

/// Set by SIGINT/SIGTERM: the run stops at the next step and cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C stops the run between steps (every flood is a few seconds) so the
/// guards can clean up; a second Ctrl-C kills at once (SA_RESETHAND).
fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an
        // atomic (async-signal-safe).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Fails once a signal asked the run to stop.
fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted; cleaning up".into())
    } else {
        Ok(())
    }
}

/// Runs the macro benchmark.
pub fn main(args: &[String]) -> ExitCode {
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(error) if error.is_empty() => {
            println!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("dockfw-bench macro: {error}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    catch_signals();
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dockfw-bench macro: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    dockfw_tests::require_root("the macro benchmark");
    if receiver::cpu_count() < 2 {
        return Err("needs two CPUs: one for the generator, one for the receiver".into());
    }
    let bin = options.dockfw_binary()?;
    let started = Instant::now();
    let mut outcome = Outcome::new(options);

    let topology = Topology::build(options.ports, options.coalesce_us)?;
    check_interrupted()?;
    let scratch = Scratch::new()?;
    let policy_path = scratch.0.join("policy.toml");
    let bulk = topology
        .bulk_last()
        .map(|last| (topology::BULK_FIRST, last));
    std::fs::write(&policy_path, policy::policy_file(options.rules, bulk))
        .map_err(|error| format!("writing {}: {error}", policy_path.display()))?;
    let bans = policy::bans(options.bans);
    let inputs = DockfwInputs {
        bin: &bin,
        policy: &policy_path,
        bans: &bans,
        rules: options.rules,
    };
    let mut flooder = Flooder::new(&topology);
    eprintln!("setup took {:.1?}", started.elapsed());

    for variant in options.variants() {
        check_interrupted()?;
        eprintln!("== {}", variant.label());
        let (installed, napi) = Installed::install(variant, &topology, &inputs)?;
        let probe = flooder.probe(&topology, &installed)?;
        eprintln!(
            "  probe: {} of {} dropped, {} conntrack entries made, table {:+}",
            probe.dropped, probe.sent, probe.conntrack_new, probe.conntrack_left
        );
        let mut result = VariantResult::new(variant, probe, installed.note());
        for _ in 0..options.runs {
            for kind in KINDS {
                check_interrupted()?;
                let sample = flooder.measure(
                    &topology,
                    &installed,
                    napi,
                    kind,
                    options.flood_rate,
                    options.seconds,
                )?;
                eprintln!(
                    "  {:<11} offered {:>6.2} Mpps, dropped {:>6.2} Mpps, ring full {:>6.2} Mpps, {:>7.1} ns/drop, receiver {:>3.0}% busy, {:>3.0}% waiting for its CPU; generator {:>3.0}% busy",
                    kind.key(),
                    sample.offered_pps / 1e6,
                    sample.dropped_pps / 1e6,
                    sample.ring_lost_pps / 1e6,
                    sample.ns_per_drop,
                    100.0 * sample.receiver_busy,
                    100.0 * sample.receiver_waiting,
                    100.0 * sample.generator_busy
                );
                result.samples.push((kind, sample));
            }
        }
        outcome.variants.push(result);
        if options.legit && matches!(variant, Variant::DockerUser | Variant::DockfwNative) {
            // dockfw runs with the DOCKER-USER rule in place, as deployed.
            let _docker_user = match variant {
                Variant::DockfwNative => {
                    Some(IptablesRules::install(&topology.host, Chain::DockerUser)?)
                }
                _ => None,
            };
            let curve = legit_curve(&topology, &mut flooder, options)?;
            outcome.legit.push((variant, curve));
        }
        drop(installed);
    }

    outcome.finish();
    let written = report::write(&outcome, options.out_dir().as_ref())?;
    println!("{}", written.markdown);
    for path in &written.files {
        eprintln!("wrote {}", path.display());
    }
    if written.missed > 0 {
        println!(
            "MISS: {} target(s) missed (see Targets above)",
            written.missed
        );
    } else {
        println!("all targets met");
    }
    let teardown = Instant::now();
    drop(topology);
    eprintln!(
        "teardown took {:.1?}; whole run {:.1?}",
        teardown.elapsed(),
        started.elapsed()
    );
    Ok(())
}

/// No attack, then the flood at each rate, with the variant in place.
fn legit_curve(
    topology: &Topology,
    flooder: &mut Flooder,
    options: &Options,
) -> Result<Vec<LegitPoint>, String> {
    let mut points = Vec::new();
    let rates = std::iter::once(None).chain(options.legit_flood_rates.iter().map(|r| Some(*r)));
    for rate in rates {
        check_interrupted()?;
        let point = legit::point(topology, flooder, options.legit_load(), rate)?;
        eprintln!(
            "  legit: flood {:>6.2} Mpps -> {:>6.1} of {:>6.1} requests/s served",
            point.flood_pps / 1e6,
            point.served_rps,
            point.offered_rps
        );
        points.push(point);
    }
    Ok(points)
}

/// A private scratch directory (the policy file); removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("dfw-bench-macro-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
