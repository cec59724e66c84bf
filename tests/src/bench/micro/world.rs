//! Everything the micro benchmark runs against, set up once: the floor
//! program, the xdp-filter peers, and one loaded dockfw data plane per ban
//! scale (bans are global, so each scale needs its own maps; the policy is
//! the same in all of them). Setup times are recorded for the report.

use std::{
    os::fd::AsFd as _,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunOptions, Xdp},
};
use dockfw::{
    bans::BanSet,
    dataplane::{
        Capacities,
        testrun::{Program, run},
    },
};
use dockfw_tests::runner::Harness;
use ipnet::IpNet;

use super::{
    Options, fd_run,
    peer::Peer,
    scenario::{self, PORT_16_RULES},
};
use crate::bench::{
    measure::{self, RunOutcome, Sample},
    rng::Rng,
};

/// Ban counts of the flatness series.
pub const BAN_SCALES: [usize; 4] = [10, 1_000, 100_000, 1_000_000];
/// The ban count of the headline and attribution variants.
pub const MAIN_BANS: usize = 100_000;
/// Seeds: the policy's prefixes, IPv4 bans and IPv6 bans draw from their
/// own streams so changing one count leaves the others as they were.
const POLICY_SEED: u64 = 0xd0c4_f00d;
const BANS_V4_SEED: u64 = 0xba11_0004;
const BANS_V6_SEED: u64 = 0xba11_0006;
/// Program instances of the peer: (label, `xdp-filter load --features`).
pub const PEER_INSTANCES: [(&str, &str); 2] = [
    ("xdp-filter (default: all features)", "all"),
    ("xdp-filter --features tcp", "tcp"),
];

/// How long one data plane took to set up.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetupTimes {
    /// Verifying and loading both programs and creating the maps.
    pub load: Duration,
    /// Compiling and writing the policy (one generation).
    pub policy: Duration,
    /// Building the ban set and its summary (for the fill figure; the
    /// write builds the summary and expiry views again).
    pub ban_set: Duration,
    /// `write_bans`: one LPM insert per prefix plus the summary words.
    pub write_bans: Duration,
}

/// One loaded dockfw data plane.
pub struct Dataplane {
    /// IPv4 bans in its tries.
    pub bans_v4: usize,
    /// IPv6 bans in its tries.
    pub bans_v6: usize,
    /// Share of IPv4 /24s with a ban state other than "none" (a random
    /// source needs more than the state word with this probability).
    pub summary_fill_v4: f64,
    /// The harness holding it.
    pub harness: Harness,
    /// Setup times.
    pub setup: SetupTimes,
}

/// The floor, the peers and the data planes.
pub struct World {
    /// The object holding `dockfw_floor`.
    pub floor: Ebpf,
    /// xdp-filter instances (their namespace goes when this drops).
    pub peer: Peer,
    /// One data plane per ban scale, in [`BAN_SCALES`] order.
    pub dataplanes: Vec<Dataplane>,
    /// Index in `dataplanes` of the one with [`MAIN_BANS`].
    pub main: usize,
}

/// A failed setup step.
pub type SetupError = String;

impl World {
    /// Sets everything up, printing progress (1M bans take a while).
    pub fn build(options: &Options) -> Result<Self, SetupError> {
        let mut floor = Ebpf::load(dockfw::ebpf::FLOOR_OBJECT)
            .map_err(|error| format!("loading the floor object: {error}"))?;
        floor_program_mut(&mut floor)?
            .load()
            .map_err(|error| format!("loading {}: {error}", dockfw::ebpf::FLOOR_PROGRAM))?;

        eprintln!("setting up xdp-filter in a private namespace ...");
        let peer =
            Peer::start(&PEER_INSTANCES, PORT_16_RULES).map_err(|error| error.to_string())?;

        let scales: Vec<usize> = BAN_SCALES
            .iter()
            .copied()
            .filter(|count| *count <= options.max_bans)
            .collect();
        let largest = scales.last().copied().unwrap_or(0);
        let main = scales
            .iter()
            .position(|count| *count == MAIN_BANS)
            .unwrap_or(scales.len().saturating_sub(1));
        eprintln!("generating {largest} IPv4 and {MAIN_BANS} IPv6 ban prefixes ...");
        let all_v4 = scenario::bans_v4(&mut Rng::new(BANS_V4_SEED), largest);
        let all_v6 = scenario::bans_v6(&mut Rng::new(BANS_V6_SEED), MAIN_BANS);

        let mut dataplanes = Vec::new();
        for (index, count) in scales.iter().enumerate() {
            let v6 = if index == main { &all_v6[..] } else { &[] };
            dataplanes.push(Self::dataplane(&all_v4[..*count], v6)?);
        }
        if dataplanes.is_empty() {
            return Err("--max-bans leaves no ban scale to measure (the smallest is 10)".into());
        }
        Ok(Self {
            floor,
            peer,
            dataplanes,
            main,
        })
    }

    fn dataplane(v4: &[IpNet], v6: &[IpNet]) -> Result<Dataplane, SetupError> {
        eprintln!(
            "loading a data plane with {} IPv4 and {} IPv6 bans ...",
            v4.len(),
            v6.len()
        );
        let defaults = Capacities::default();
        let capacities = Capacities {
            bans_v4: defaults.bans_v4.max(v4.len() as u32),
            bans_v6: defaults.bans_v6.max(v6.len() as u32),
            ..defaults
        };
        let mut setup = SetupTimes::default();
        let started = Instant::now();
        let mut harness = Harness::with_capacities(capacities);
        setup.load = started.elapsed();

        let started = Instant::now();
        harness.apply(
            &scenario::policy(&mut Rng::new(POLICY_SEED)),
            &scenario::ports(),
        );
        harness.set_local(scenario::LOCAL_PREFIXES);
        setup.policy = started.elapsed();

        let started = Instant::now();
        let mut nets = v4.to_vec();
        nets.extend_from_slice(v6);
        let bans: BanSet = scenario::ban_set(&nets);
        let tables = bans.tables();
        setup.ban_set = started.elapsed();
        // Share of IPv4 /24s whose two-bit ban state is not "no ban".
        let touched: u32 = tables
            .states_v4
            .iter()
            .map(|word| ((word | (word >> 1)) & 0x5555_5555_5555_5555).count_ones())
            .sum();
        let summary_fill_v4 = f64::from(touched) / (tables.states_v4.len() as f64 * 32.0);

        let started = Instant::now();
        harness.set_bans(bans);
        setup.write_bans = started.elapsed();
        eprintln!(
            "  load {:.2?}, policy {:.2?}, ban set {:.2?}, write_bans {:.2?}",
            setup.load, setup.policy, setup.ban_set, setup.write_bans
        );
        Ok(Dataplane {
            bans_v4: v4.len(),
            bans_v6: v6.len(),
            summary_fill_v4,
            harness,
            setup,
        })
    }

    /// The data plane of the headline and attribution variants.
    pub fn main(&mut self) -> &mut Dataplane {
        &mut self.dataplanes[self.main]
    }
}

fn floor_program_mut(floor: &mut Ebpf) -> Result<&mut Xdp, SetupError> {
    let name = dockfw::ebpf::FLOOR_PROGRAM;
    floor
        .program_mut(name)
        .ok_or_else(|| format!("the floor object has no program {name}"))?
        .try_into()
        .map_err(|error| format!("{name} is not an XDP program: {error}"))
}

/// Which program a variant runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `dockfw_floor`.
    Floor,
    /// xdp-filter instance `n`.
    Peer(usize),
    /// dockfw's program `program` in data plane `n`.
    Dockfw(usize, Program),
}

/// Runs `frame` through an aya XDP program `repeat` times.
fn run_xdp(program: &Xdp, frame: &[u8], repeat: u32) -> Result<RunOutcome, String> {
    let mut out = vec![0u8; frame.len() + 256];
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::default()
        })
        .map_err(|error| format!("BPF_PROG_TEST_RUN: {}", dockfw_tests::chain(&error)))?;
    Ok((result.return_value, result.duration))
}

impl World {
    /// One timed test run of `frame` through `subject`.
    pub fn time(
        &mut self,
        subject: Subject,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Sample), String> {
        match subject {
            Subject::Floor => {
                let program = floor_program_mut(&mut self.floor)?;
                measure::time(repeat, || run_xdp(program, frame, repeat))
            }
            Subject::Peer(index) => {
                let fd = self.peer.programs[index].fd.as_fd();
                measure::time(repeat, || {
                    fd_run::run(fd, frame, repeat)
                        .map_err(|error| format!("BPF_PROG_TEST_RUN: {error}"))
                })
            }
            Subject::Dockfw(index, program) => {
                let dataplane = &mut self.dataplanes[index].harness.dataplane;
                measure::time(repeat, || {
                    run(dataplane, program, frame, None, repeat)
                        .map(|result| (result.verdict, result.duration))
                        .map_err(|error| {
                            format!("BPF_PROG_TEST_RUN: {}", dockfw_tests::chain(&error))
                        })
                })
            }
        }
    }
}
