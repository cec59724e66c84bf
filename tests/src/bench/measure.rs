//! Timing one BPF_PROG_TEST_RUN call and summarising repeated runs.
//!
//! The kernel reports the mean run time as whole nanoseconds (the total is
//! divided by `repeat` in integer arithmetic, `bpf_test_timer_leave` in
//! `net/bpf/test_run.c`), so a 7.9 ns floor reads 7 and ratios to it are off
//! by up to 14 %. The call is therefore also timed with the calling thread's
//! CPU clock: the same loop plus one syscall's fixed cost (a few µs, under
//! 0.01 ns per packet at a million repeats), and time the thread spent
//! preempted is excluded, as it is from the kernel's own timer.

use std::time::Duration;

/// One timed test run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The kernel's mean per run (whole ns).
    pub kernel_ns: f64,
    /// Thread CPU time of the call divided by the repeat count.
    pub cpu_ns: f64,
}

/// What a test run returned: the verdict and the kernel's mean duration.
pub type RunOutcome = (u32, Duration);

/// The calling thread's CPU time in ns.
pub fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass; the thread CPU clock
    // exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// Times `run` (one BPF_PROG_TEST_RUN of `repeat` iterations).
pub fn time<E>(
    repeat: u32,
    run: impl FnOnce() -> Result<RunOutcome, E>,
) -> Result<(u32, Sample), E> {
    let start = thread_cpu_ns();
    let (verdict, duration) = run()?;
    let spent = thread_cpu_ns().saturating_sub(start);
    Ok((
        verdict,
        Sample {
            kernel_ns: duration.as_nanos() as f64,
            cpu_ns: spent as f64 / f64::from(repeat.max(1)),
        },
    ))
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// Medians over the runs of one variant.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Median of the kernel's means.
    pub kernel_ns: f64,
    /// Median of the CPU-clock means.
    pub cpu_ns: f64,
    /// Smallest and largest CPU-clock mean, to show the spread.
    pub cpu_min: f64,
    /// See `cpu_min`.
    pub cpu_max: f64,
}

impl Summary {
    /// Summarises the samples of one variant.
    pub fn of(samples: &[Sample]) -> Self {
        let kernel: Vec<f64> = samples.iter().map(|sample| sample.kernel_ns).collect();
        let cpu: Vec<f64> = samples.iter().map(|sample| sample.cpu_ns).collect();
        Self {
            kernel_ns: median(&kernel),
            cpu_ns: median(&cpu),
            cpu_min: cpu.iter().copied().fold(f64::INFINITY, f64::min),
            cpu_max: cpu.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}
