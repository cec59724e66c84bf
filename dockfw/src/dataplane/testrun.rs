//! Running a frame through the loaded programs with `BPF_PROG_TEST_RUN`: the
//! real data-plane code against the real maps, without a network. Used by
//! `dockfw trace`, the verdict tests and the micro benchmark.

use std::time::Duration;

use aya::programs::{ProgramError, TestRun, TestRunOptions};
use dockfw_common::xdp_verdict;

use super::{Dataplane, LoadError};

/// Which program runs the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `dockfw_xdp`.
    Xdp,
    /// `dockfw_tc`.
    Tc,
}

/// The outcome of a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The verdict as an [`xdp_verdict`] (a TC verdict is mapped: OK ->
    /// PASS, SHOT -> DROP).
    pub verdict: u32,
    /// The program's raw return value.
    pub raw: u32,
    /// Mean time per run as the kernel measured it.
    pub duration: Duration,
}

/// Errors of a test run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program is not loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The kernel refused the run.
    #[error("BPF_PROG_TEST_RUN failed: {0}")]
    Run(#[from] ProgramError),
    /// Frames shorter than an Ethernet header are refused by the kernel.
    #[error("a frame must be at least 14 bytes, this one has {0}")]
    TooShort(usize),
}

/// `struct xdp_md` as the kernel reads it from `ctx_in`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// TC verdicts.
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;

/// Runs `frame` through `program` `repeat` times. `ifindex` sets the XDP
/// ingress interface (it must exist in the caller's network namespace).
pub fn run(
    dataplane: &mut Dataplane,
    program: Program,
    frame: &[u8],
    ifindex: Option<u32>,
    repeat: u32,
) -> Result<RunResult, RunError> {
    if frame.len() < 14 {
        return Err(RunError::TooShort(frame.len()));
    }
    let mut out = vec![0u8; frame.len() + 256];
    let result = match program {
        Program::Xdp => {
            let md = XdpMd {
                data_end: frame.len() as u32,
                ingress_ifindex: ifindex.unwrap_or(0),
                ..XdpMd::default()
            };
            // SAFETY: XdpMd is repr(C) plain integers; viewing it as bytes
            // is sound.
            let ctx = unsafe {
                std::slice::from_raw_parts((&raw const md).cast::<u8>(), size_of::<XdpMd>())
            };
            let options = TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: ifindex.is_some().then_some(ctx),
                repeat: repeat.max(1),
                ..TestRunOptions::default()
            };
            dataplane.xdp()?.test_run(options)?
        }
        Program::Tc => {
            let options = TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: repeat.max(1),
                ..TestRunOptions::default()
            };
            dataplane.tc()?.test_run(options)?
        }
    };
    let verdict = match (program, result.return_value) {
        (Program::Xdp, value) => value,
        (Program::Tc, TC_ACT_OK) => xdp_verdict::PASS,
        (Program::Tc, TC_ACT_SHOT) => xdp_verdict::DROP,
        (Program::Tc, _) => xdp_verdict::ABORTED,
    };
    Ok(RunResult {
        verdict,
        raw: result.return_value,
        duration: result.duration,
    })
}
