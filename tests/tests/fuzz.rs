//! The data plane against an independent reference model
//! (`dockfw_tests::model`): random and damaged frames (valid, truncated at
//! every byte, bogus IHL and data offsets, IPv6 extension chains longer than
//! the walk, one to three VLAN tags, fragments of tracked and unknown
//! datagrams, odd TCP flags, garbage) under random policies, published ports
//! and bans, through both programs with BPF_PROG_TEST_RUN.
//!
//! Properties, for every frame and program:
//! - the verdict is never XDP_ABORTED;
//! - traffic to no published port passes and moves only global counters;
//! - the verdict equals the model's, and so does the counter that moved
//!   (packets and bytes of every counter, compared per step).
//!
//! A failing case is shrunk and saved to `tests/regressions/*.json` (seed,
//! policy, frames in hex); `saved_regressions_still_pass` replays every saved
//! case forever.
//!
//! Root tier. The default run is a fixed number of frames
//! (`DOCKFW_FUZZ_FRAMES`, default 1,000,000) from a fixed seed
//! (`DOCKFW_FUZZ_SEED`); `cargo xtask fuzz --minutes N` sets
//! `DOCKFW_FUZZ_MINUTES` and runs fresh seeds for that long.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use dockfw::{
    dataplane::{
        Capacities, TrieUsage,
        testrun::{Program, run},
    },
    model::{Action, Per, Policy, PortSpec, Proto, Rate, RateLimit, Rule, RuleOrigin},
};
use dockfw_common::xdp_verdict;
use dockfw_tests::{
    frame::{Frame, SYN},
    model::{
        check::{Case, Ingress, Mode, Step, run_case, shrink},
        generate::{FrameGen, Rng, bans, policy, ports},
    },
    runner::{Harness, tcp4},
};

/// Frames of the default (CI) run.
const DEFAULT_FRAMES: u64 = 1_000_000;
/// Seed of the default run.
const DEFAULT_SEED: u64 = 0xdf_f022;

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|error| panic!("{name}={text:?}: {error}")))
}

/// The ingress ifindex each program sees in a test run: the one whose
/// interface condition makes a drop rule match.
fn calibrate(harness: &mut Harness) -> Ingress {
    let frame = Frame::tcp("198.51.100.1", 1000, "192.0.2.1", 80, SYN).build();
    let mut found = BTreeMap::new();
    for candidate in [1u32, 0] {
        harness.ifaces = BTreeMap::from([("probe".to_string(), candidate)]);
        let mut rule = Rule::new(
            "probe",
            RuleOrigin::Label {
                container: "web".into(),
            },
            Action::Drop,
        );
        rule.ifaces = vec!["probe".into()];
        let policy = Policy {
            rules: vec![rule],
            ..Policy::default()
        };
        harness.apply(&policy, &[tcp4(80, "web")]);
        for program in [Program::Xdp, Program::Tc] {
            let result = run(&mut harness.dataplane, program, &frame, None, 1)
                .unwrap_or_else(|error| panic!("calibration run of {program:?}: {error}"));
            if result.verdict == xdp_verdict::DROP {
                found.entry(program == Program::Xdp).or_insert(candidate);
            }
        }
    }
    let get = |xdp: bool| {
        *found.get(&xdp).unwrap_or_else(|| {
            panic!("calibration: no ingress ifindex (0 or 1) matched for xdp={xdp}")
        })
    };
    Ingress {
        xdp: get(true),
        tc: get(false),
    }
}

/// The case a seed stands for: one to three policies in a row, each with
/// its ports, bans and two to six thousand frames (a policy change costs
/// as much as thousands of frames; a case stays far below the fragment
/// table's size).
fn generate_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut current_ports = ports(&mut rng);
    for _ in 0..1 + rng.below(3) {
        if !steps.is_empty() && rng.chance(50) {
            current_ports = ports(&mut rng);
        }
        let step_policy = policy(&mut rng);
        // Every ban change rewrites the ban shortcuts: half the steps keep
        // none, so the time goes to frames.
        let step_bans = if rng.chance(50) {
            bans(&mut rng)
        } else {
            Vec::new()
        };
        let audit = rng.chance(10);
        let target = 2000 + rng.below(4000) as usize;
        let mut frames = Vec::with_capacity(target + 64);
        let mut frame_rng = Rng::new(rng.bits());
        let mut generator = FrameGen::new(&mut frame_rng, &current_ports);
        while frames.len() < target {
            generator.next_frames(&mut frames);
        }
        steps.push(Step {
            policy: step_policy,
            ports: current_ports.clone(),
            audit,
            bans: step_bans,
            frames,
        });
    }
    Case { seed, steps }
}

fn fail(
    harness: &mut Harness,
    ingress: &Ingress,
    case: &Case,
    failure: &dockfw_tests::model::check::Failure,
) -> ! {
    let (small, failure) = shrink(harness, ingress, case, failure);
    let text = format!(
        "step {}, frame {:?}: {}",
        failure.step, failure.frame, failure.message
    );
    let path = small.save(
        &regressions_dir(),
        &format!("fuzz-{:016x}-{}", case.seed, std::process::id()),
        &text,
    );
    panic!(
        "the data plane disagrees with the model (seed {:#x}); case saved to {}\n{text}",
        case.seed,
        path.display()
    );
}

#[test]
fn the_data_plane_agrees_with_the_reference_model() {
    fuzz(Harness::new(), DEFAULT_FRAMES);
}

/// The same with a node array of 8 source-trie nodes: ports whose
/// tables fit use the trie, the others the hash/LPM tables, both
/// in one policy; every policy change moves ports between the two. Fixed
/// runs only: a timed run (`DOCKFW_FUZZ_MINUTES`) goes to the test above.
#[test]
fn ports_beyond_the_trie_nodes_agree_with_the_reference_model() {
    if env_u64("DOCKFW_FUZZ_MINUTES").is_some() {
        eprintln!("fuzz: timed run; the fixed run of this test is left to CI");
        return;
    }
    let capacities = Capacities {
        rule_source_nodes: 8,
        ..Capacities::default()
    };
    let tries = fuzz(Harness::with_capacities(capacities), DEFAULT_FRAMES / 2);
    assert!(
        tries.ports_in_tries > 0 && tries.ports_in_levels > 0,
        "the cases must put some ports in tries and some in the level table: {tries:?}"
    );
}

/// Runs random cases through `harness` until the frame budget
/// (`DOCKFW_FUZZ_FRAMES`, else `default_frames`) or the time budget
/// (`DOCKFW_FUZZ_MINUTES`) is spent. Returns where the source tables went.
fn fuzz(mut harness: Harness, default_frames: u64) -> TrieUsage {
    let ingress = calibrate(&mut harness);
    let minutes = env_u64("DOCKFW_FUZZ_MINUTES");
    let (frame_budget, deadline, base_seed) = match minutes {
        Some(minutes) => (
            u64::MAX,
            Some(Instant::now() + Duration::from_secs(minutes * 60)),
            env_u64("DOCKFW_FUZZ_SEED").unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |since| since.as_nanos() as u64)
            }),
        ),
        None => (
            env_u64("DOCKFW_FUZZ_FRAMES").unwrap_or(default_frames),
            None,
            env_u64("DOCKFW_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
        ),
    };
    eprintln!("fuzz: base seed {base_seed:#x}, ingress {ingress:?}");
    let started = Instant::now();
    let mut frames = 0u64;
    let mut cases = 0u64;
    while frames < frame_budget && deadline.is_none_or(|deadline| Instant::now() < deadline) {
        let seed = base_seed.wrapping_add(cases.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let case = generate_case(seed);
        match run_case(&mut harness, &ingress, &case, Mode::PerStep) {
            Ok(ran) => frames += ran.frames,
            Err(failure) => fail(&mut harness, &ingress, &case, &failure),
        }
        cases += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz: {frames} frames (x2 programs) in {cases} cases, {elapsed:.1} s, {:.0} frames/s; \
         source tables {:?}",
        frames as f64 / elapsed,
        harness.tries
    );
    harness.tries
}

/// A statistic id released by one policy and handed to a new rule by a
/// later one starts with empty buckets, per source too: the new rule must
/// not inherit the old rule's spent buckets.
#[test]
fn a_recycled_statistic_id_starts_with_fresh_per_source_buckets() {
    let mut harness = Harness::new();
    let ingress = calibrate(&mut harness);
    let limit = |name: &str| {
        let mut rule = Rule::new(
            name,
            RuleOrigin::Label {
                container: "web".into(),
            },
            Action::RateLimit(RateLimit {
                rate: Rate {
                    count: 1,
                    per_ns: 3600 * 1_000_000_000,
                },
                burst: 1,
                per: Per::Source,
                total: None,
            }),
        );
        rule.ports.ports = vec![PortSpec {
            proto: Proto::Tcp,
            low: 80,
            high: 80,
        }];
        rule
    };
    let frame = Frame::tcp("10.0.0.7", 1000, "192.0.2.1", 80, SYN).build();
    let step = |rules: Vec<Rule>, frames: usize| Step {
        policy: Policy {
            rules,
            ..Policy::default()
        },
        ports: vec![tcp4(80, "web")],
        audit: false,
        bans: Vec::new(),
        frames: vec![frame.clone(); frames],
    };
    // "a" spends 10.0.0.7's bucket; "b" arrives while "a" still holds its
    // id; "c" gets the id "a" released.
    let case = Case {
        seed: 0,
        steps: vec![
            step(vec![limit("a")], 2),
            step(vec![limit("b")], 0),
            step(vec![limit("c")], 1),
        ],
    };
    if let Err(failure) = run_case(&mut harness, &ingress, &case, Mode::PerFrame) {
        fail(&mut harness, &ingress, &case, &failure);
    }
}

#[test]
fn saved_regressions_still_pass() {
    let mut harness = Harness::new();
    let ingress = calibrate(&mut harness);
    let Ok(entries) = std::fs::read_dir(regressions_dir()) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()));
        let case = Case::from_json(&value);
        if let Err(failure) = run_case(&mut harness, &ingress, &case, Mode::PerFrame) {
            panic!(
                "regression {} fails again: step {}, frame {:?}: {}",
                path.display(),
                failure.step,
                failure.frame,
                failure.message
            );
        }
    }
}
