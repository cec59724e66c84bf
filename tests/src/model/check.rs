//! Runs fuzz cases through the real programs (XDP and TC, BPF_PROG_TEST_RUN)
//! and the model side by side, and compares verdicts and counters.
//!
//! Verdicts are compared frame by frame. Counters are compared per step
//! (every counter of every statistic id in use and every global reason,
//! packets and bytes): reading them after every frame would cost more than
//! the runs. When a step's counters disagree the case is run again reading
//! them after every frame, which names the frame.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
};

use dockfw::{
    bans::{BanSet, NEVER, monotonic_ns},
    compile::StatRegistry,
    dataplane::{
        counters::{read_global, read_stat},
        testrun::{Program, run},
    },
    model::{Policy, PublishedPort},
};
use dockfw_common::{outcome, reason, xdp_verdict};
use ipnet::IpNet;
use serde_json::{Value, json};

use super::eval::{BanExpiry, Counted, Expected, State, World, classify};
use crate::runner::Harness;

/// Longer than a kernel tick at any `CONFIG_HZ` (100 and up).
const TICK: std::time::Duration = std::time::Duration::from_millis(12);

/// One policy in force and the frames sent under it.
#[derive(Clone, Debug)]
pub struct Step {
    /// The policy.
    pub policy: Policy,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// Global audit mode.
    pub audit: bool,
    /// Bans.
    pub bans: Vec<(IpNet, BanExpiry)>,
    /// Frames, each run through XDP then TC.
    pub frames: Vec<Vec<u8>>,
}

/// A fuzz case: policies applied one after the other, as the daemon does,
/// starting from empty state.
#[derive(Clone, Debug)]
pub struct Case {
    /// Seed that generated it (0 for hand-written cases).
    pub seed: u64,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// Where a case went wrong.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Index of the step.
    pub step: usize,
    /// Index of the frame in the step (`None`: the step's counters).
    pub frame: Option<usize>,
    /// What differed.
    pub message: String,
}

/// Interface indexes the programs see in test runs, and the interface map
/// the fuzz policies use.
#[derive(Clone, Debug)]
pub struct Ingress {
    /// Ingress ifindex of an XDP test run.
    pub xdp: u32,
    /// Ingress ifindex of a TC test run.
    pub tc: u32,
}

impl Ingress {
    /// The interfaces rules may name: one for each program's ingress (or
    /// one for both), and one that neither sees.
    pub fn ifaces(&self) -> BTreeMap<String, u32> {
        let mut ifaces = BTreeMap::from([(super::generate::IFACE_NAMES[0].to_string(), self.xdp)]);
        if self.tc != self.xdp {
            ifaces.insert(super::generate::IFACE_NAMES[1].to_string(), self.tc);
        }
        ifaces
    }

    fn of(&self, program: Program) -> u32 {
        match program {
            Program::Xdp => self.xdp,
            Program::Tc => self.tc,
        }
    }
}

/// Counter totals: (packets, bytes) per counter.
type Totals = BTreeMap<Counted, (u64, u64)>;

/// How thoroughly to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Counters once per step.
    PerStep,
    /// Counters after every frame.
    PerFrame,
}

/// What a run of a case did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ran {
    /// Frames run (each through both programs).
    pub frames: u64,
}

/// Resets the state a case may have left: tracked fragments, per-source
/// buckets, bans, statistic ids.
pub fn reset(harness: &mut Harness) {
    let maps = &mut harness.dataplane.maps;
    let frags: Vec<_> = maps.frags.keys().filter_map(Result::ok).collect();
    for key in frags {
        let _ = maps.frags.remove(&key);
    }
    let buckets: Vec<_> = maps.rate_sources.keys().filter_map(Result::ok).collect();
    for key in buckets {
        let _ = maps.rate_sources.remove(&key);
    }
    if !harness.bans.is_empty() {
        harness.set_bans(BanSet::new());
    }
    harness.registry = StatRegistry::default();
}

fn read_totals(harness: &Harness) -> Totals {
    let maps = &harness.dataplane.maps;
    let mut totals = Totals::new();
    for code in 0..reason::COUNT {
        let value = read_global(maps, code)
            .unwrap_or_else(|error| panic!("reading global counter {code}: {error}"));
        totals.insert(Counted::Global(code), (value.packets, value.bytes));
    }
    let ids: BTreeSet<u32> = harness.registry.iter().map(|(_, id)| id).collect();
    for stat_id in ids {
        let value = read_stat(maps, stat_id)
            .unwrap_or_else(|error| panic!("reading statistic {stat_id}: {error}"));
        for (outcome, count) in [
            (outcome::PASS, value.passed),
            (outcome::DROP, value.dropped),
            (outcome::AUDIT, value.audited),
        ] {
            totals.insert(
                Counted::Stat { stat_id, outcome },
                (count.packets, count.bytes),
            );
        }
    }
    totals
}

fn compare(before: &Totals, after: &Totals, expected: &Totals) -> Option<String> {
    let mut report = String::new();
    for (counter, now) in after {
        let was = before.get(counter).copied().unwrap_or((0, 0));
        let moved = (now.0.wrapping_sub(was.0), now.1.wrapping_sub(was.1));
        let want = expected.get(counter).copied().unwrap_or((0, 0));
        if moved != want {
            let _ = writeln!(
                report,
                "  {counter:?}: moved {} packets / {} bytes, the model says {} / {}",
                moved.0, moved.1, want.0, want.1
            );
        }
    }
    for (counter, want) in expected {
        if !after.contains_key(counter) {
            let _ = writeln!(
                report,
                "  {counter:?}: not a counter in use, the model says {} / {}",
                want.0, want.1
            );
        }
    }
    (!report.is_empty()).then_some(report)
}

fn ban_set(bans: &[(IpNet, BanExpiry)]) -> BanSet {
    const HOUR_NS: u64 = 3600 * 1_000_000_000;
    let now = monotonic_ns();
    let mut set = BanSet::new();
    for (net, expiry) in bans {
        let expires = match expiry {
            BanExpiry::Never => NEVER,
            BanExpiry::Future => now + HOUR_NS,
            BanExpiry::Past => now.saturating_sub(HOUR_NS).max(1),
        };
        set.insert(*net, expires);
    }
    set
}

/// Runs `case` on `harness` (reset first) against the model.
pub fn run_case(
    harness: &mut Harness,
    ingress: &Ingress,
    case: &Case,
    mode: Mode,
) -> Result<Ran, Failure> {
    reset(harness);
    harness.ifaces = ingress.ifaces();
    let ifaces = harness.ifaces.clone();
    let mut state = State::default();
    let mut ran = Ran::default();
    for (index, step) in case.steps.iter().enumerate() {
        let fail = |frame: Option<usize>, message: String| Failure {
            step: index,
            frame,
            message,
        };
        let before_ids: BTreeSet<(String, u32)> = harness
            .registry
            .iter()
            .map(|(owner, id)| (format!("{owner:?}"), id))
            .collect();
        if index > 0 {
            // The data plane's clock moves once a tick: let it move, so a
            // statistic id that a "fast" bucket used in the last step starts
            // this one idle, as the model assumes.
            std::thread::sleep(TICK);
        }
        harness.audit = step.audit;
        harness.apply(&step.policy, &step.ports);
        harness.set_bans(ban_set(&step.bans));
        let fresh: Vec<u32> = harness
            .registry
            .iter()
            .filter(|(owner, id)| !before_ids.contains(&(format!("{owner:?}"), *id)))
            .map(|(_, id)| id)
            .collect();
        state.forget_stats(&fresh);

        let mut baseline = read_totals(harness);
        let mut expected = Totals::new();
        for (number, frame) in step.frames.iter().enumerate() {
            for program in [Program::Xdp, Program::Tc] {
                if program == Program::Tc && !tc_test_run_accepts(frame) {
                    continue;
                }
                let world = World {
                    policy: &step.policy,
                    ports: &step.ports,
                    ifaces: &ifaces,
                    audit: step.audit,
                    bans: &step.bans,
                    registry: &harness.registry,
                };
                let want: Expected = classify(&world, &mut state, frame, ingress.of(program));
                let result =
                    run(&mut harness.dataplane, program, frame, None, 1).unwrap_or_else(|error| {
                        panic!(
                            "test run of {program:?} on {}: {}",
                            hex(frame),
                            crate::chain(&error)
                        )
                    });
                if result.verdict == xdp_verdict::ABORTED {
                    return Err(fail(
                        Some(number),
                        format!("{program:?} aborted (raw {})", result.raw),
                    ));
                }
                if result.verdict != want.verdict {
                    return Err(fail(
                        Some(number),
                        format!(
                            "{program:?} returned {} ({}), the model says {want:?}",
                            result.verdict,
                            verdict_name(result.verdict)
                        ),
                    ));
                }
                let entry = expected.entry(want.counted).or_insert((0, 0));
                entry.0 += 1;
                entry.1 += frame.len() as u64;
            }
            ran.frames += 1;
            if mode == Mode::PerFrame {
                let after = read_totals(harness);
                if let Some(report) = compare(&baseline, &after, &expected) {
                    return Err(fail(
                        Some(number),
                        format!("counters differ after this frame:\n{report}"),
                    ));
                }
                baseline = after;
                expected.clear();
            }
        }
        if mode == Mode::PerStep {
            let after = read_totals(harness);
            if let Some(report) = compare(&baseline, &after, &expected) {
                return Err(fail(
                    None,
                    format!("counters differ at the end of the step:\n{report}"),
                ));
            }
        }
    }
    Ok(ran)
}

/// Whether the kernel runs a TC program on this frame with
/// BPF_PROG_TEST_RUN: it refuses (EINVAL) an IPv4 or IPv6 ethertype followed
/// by less than a fixed IP header. Such frames are checked through XDP only.
pub fn tc_test_run_accepts(frame: &[u8]) -> bool {
    const ETH_HLEN: usize = 14;
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 => frame.len() >= ETH_HLEN + 20,
        0x86dd => frame.len() >= ETH_HLEN + 40,
        _ => true,
    }
}

fn verdict_name(verdict: u32) -> &'static str {
    match verdict {
        xdp_verdict::ABORTED => "aborted",
        xdp_verdict::DROP => "drop",
        xdp_verdict::PASS => "pass",
        _ => "other",
    }
}

/// Runs a failing case again frame by frame and cuts it down: the steps up
/// to the failing frame, and if the frame fails on its own, only it.
pub fn shrink(
    harness: &mut Harness,
    ingress: &Ingress,
    case: &Case,
    failure: &Failure,
) -> (Case, Failure) {
    let mut failure = failure.clone();
    if failure.frame.is_none()
        && let Err(precise) = run_case(harness, ingress, case, Mode::PerFrame)
    {
        failure = precise;
    }
    let Some(frame) = failure.frame else {
        return (case.clone(), failure);
    };
    let mut prefix = case.clone();
    prefix.steps.truncate(failure.step + 1);
    prefix.steps[failure.step].frames.truncate(frame + 1);
    let mut alone = prefix.clone();
    for step in &mut alone.steps[..failure.step] {
        step.frames.clear();
    }
    alone.steps[failure.step].frames = vec![case.steps[failure.step].frames[frame].clone()];
    if let Err(single) = run_case(harness, ingress, &alone, Mode::PerFrame) {
        return (alone, single);
    }
    match run_case(harness, ingress, &prefix, Mode::PerFrame) {
        Err(again) => (prefix, again),
        Ok(_) => (case.clone(), failure),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(&text[at..at + 2], 16)
                .unwrap_or_else(|error| panic!("bad frame hex {text:?}: {error}"))
        })
        .collect()
}

fn expiry_name(expiry: BanExpiry) -> &'static str {
    match expiry {
        BanExpiry::Never => "never",
        BanExpiry::Future => "future",
        BanExpiry::Past => "past",
    }
}

impl Case {
    /// The case as JSON: seed, failure, and per step the policy, ports,
    /// bans and frames (hex).
    pub fn to_json(&self, failure: &str) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|step| {
                json!({
                    "policy": step.policy,
                    "ports": step.ports,
                    "audit": step.audit,
                    "bans": step.bans.iter()
                        .map(|(net, expiry)| json!([net.to_string(), expiry_name(*expiry)]))
                        .collect::<Vec<_>>(),
                    "frames": step.frames.iter().map(|frame| hex(frame)).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "seed": self.seed, "failure": failure, "steps": steps })
    }

    /// Reads a case written by [`Case::to_json`].
    pub fn from_json(value: &Value) -> Self {
        let field = |value: &Value, name: &str| -> Value {
            value
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("regression case without {name:?}"))
        };
        let steps = field(value, "steps")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|step| Step {
                policy: serde_json::from_value(field(step, "policy"))
                    .unwrap_or_else(|error| panic!("regression policy: {error}")),
                ports: serde_json::from_value(field(step, "ports"))
                    .unwrap_or_else(|error| panic!("regression ports: {error}")),
                audit: field(step, "audit").as_bool().unwrap_or(false),
                bans: field(step, "bans")
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|ban| {
                        let net = ban[0].as_str().unwrap_or_default();
                        let net: IpNet = net
                            .parse()
                            .unwrap_or_else(|error| panic!("regression ban {net}: {error}"));
                        let expiry = match ban[1].as_str() {
                            Some("never") => BanExpiry::Never,
                            Some("future") => BanExpiry::Future,
                            _ => BanExpiry::Past,
                        };
                        (net, expiry)
                    })
                    .collect(),
                frames: field(step, "frames")
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|frame| unhex(frame.as_str().unwrap_or_default()))
                    .collect(),
            })
            .collect();
        Self {
            seed: field(value, "seed").as_u64().unwrap_or(0),
            steps,
        }
    }

    /// Writes the case to `dir/NAME.json` and returns the path.
    pub fn save(&self, dir: &Path, name: &str, failure: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        let path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&self.to_json(failure))
            .unwrap_or_else(|error| panic!("serialising a case: {error}"));
        std::fs::write(&path, text + "\n")
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
        path
    }
}
