//! The host's receiving CPU, measured exactly.
//!
//! A veth has no interrupt: without help its receive work runs in softirq
//! on the *sender's* CPU and cannot be told apart from the flood
//! generator's. With threaded NAPI on the host's end of the veth, every
//! poll of its ring (XDP, GRO, conntrack, NAT, the DOCKER-USER drop, the
//! forward to the container) runs in the kthread `napi/DEV-ID`. The demo
//! pins that thread to a CPU of its own at real-time priority, as a NIC's
//! softirq would run ahead of every task there, and reads its run time
//! from `/proc/PID/schedstat` (nanoseconds, not sampled at the tick).

use std::{fs, process::Command, time::Duration};

use dockfw_tests::netns::NetNs;

/// CPU of the flood generator and of the legitimate client (the internet).
pub const WAN_CPU: usize = 0;
/// Real-time priority of the NAPI kthread.
const NAPI_PRIORITY: i32 = 50;

/// CPU of the host's NAPI kthread: the last one.
pub fn host_cpu() -> usize {
    cpu_count().saturating_sub(1).max(1)
}

/// Online CPUs this process may use.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

pub use dockfw_tests::process::{run, run_in};

/// Frames a busy NAPI instance lets gather between two polls: half the
/// veth's 256-frame ring, so that a burst still fits.
const FRAMES_PER_POLL: u64 = 128;
/// Bounds of the time between two polls of a busy NAPI instance.
const POLL_EVERY_NS: (u64, u64) = (20_000, 1_000_000);

/// The time between two polls of a busy NAPI instance for a flood of
/// `rate` frames per second: [`FRAMES_PER_POLL`] frames' worth.
pub fn poll_every_ns(rate: u64) -> u64 {
    (FRAMES_PER_POLL * 1_000_000_000 / rate.max(1)).clamp(POLL_EVERY_NS.0, POLL_EVERY_NS.1)
}

/// Turns on GRO (veth runs NAPI on the receiving side only with GRO or an
/// XDP program) and threaded NAPI for `dev` in `ns`, with interrupt
/// coalescing sized for a flood of `rate` frames per second.
///
/// A veth has no interrupt moderation: each flush of the sender wakes the
/// NAPI thread (an IPI, which on a VM costs microseconds on both CPUs), and
/// a receiver that drops fast (XDP) goes back to sleep after a few frames,
/// so both CPUs would measure wake-ups rather than dropping. NICs moderate
/// their interrupts (adaptively: `ethtool -C DEV adaptive-rx on`); here
/// `napi_defer_hard_irqs` and `gro_flush_timeout` do it: a NAPI instance
/// that found work polls again [`poll_every_ns`] later, from a timer on its
/// own CPU, and senders do not wake it meanwhile; an idle one is woken by
/// the first frame as before. Both phases run with the same setting. The
/// sysfs writes need the namespace's own /sys, which `ip netns exec`
/// mounts (and which is why it is used for these writes only: it breaks
/// dockerd).
pub fn enable_threaded_napi(ns: &NetNs, dev: &str, rate: u64) -> Result<(), String> {
    run_in(ns, "turning GRO on", "ethtool", &["-K", dev, "gro", "on"])?;
    let script = format!(
        "echo 1 > /sys/class/net/{dev}/napi_defer_hard_irqs && \
         echo {} > /sys/class/net/{dev}/gro_flush_timeout && \
         echo 1 > /sys/class/net/{dev}/threaded",
        poll_every_ns(rate)
    );
    run(
        "enabling threaded NAPI with interrupt coalescing",
        Command::new("ip").args(["netns", "exec", ns.name(), "sh", "-c", &script]),
    )
    .map(drop)
}

/// The NAPI kthread of `dev` (its comm is `napi/DEV-ID`, cut at 15
/// bytes; interface names carry the demo's pid, so exactly one matches).
fn napi_thread(dev: &str) -> Result<u32, String> {
    let prefix = format!("napi/{dev}-");
    let prefix = &prefix[..prefix.len().min(15)];
    let mut found = Vec::new();
    let entries = fs::read_dir("/proc").map_err(|error| format!("reading /proc: {error}"))?;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(format!("no NAPI kthread {prefix}* (is threaded NAPI on?)")),
        many => Err(format!("{} kthreads named {prefix}*: {many:?}", many.len())),
    }
}

/// Finds `dev`'s NAPI kthread (veth re-creates it when an XDP program comes
/// or goes, so callers look it up after every such change, waiting up to a
/// second), pins it to [`host_cpu`] and makes it SCHED_FIFO. Its pid.
pub fn pin_napi_thread(dev: &str) -> Result<u32, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match napi_thread(dev) {
            Ok(pid) => {
                set_affinity(pid, host_cpu())?;
                let param = libc::sched_param {
                    sched_priority: NAPI_PRIORITY,
                };
                // SAFETY: a valid sched_param for the call's duration.
                let rc = unsafe {
                    libc::sched_setscheduler(pid as libc::pid_t, libc::SCHED_FIFO, &param)
                };
                if rc != 0 {
                    return Err(format!(
                        "making the NAPI kthread {pid} SCHED_FIFO: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                return Ok(pid);
            }
            Err(error) => last = error,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last)
}

/// Pins thread `tid` (0 = the calling thread) to `cpu`.
pub fn set_affinity(tid: u32, cpu: usize) -> Result<(), String> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sets one bit of the set we own; cpu < CPU_SETSIZE (1024).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set is initialised and its size is passed.
    let rc = unsafe {
        libc::sched_setaffinity(
            tid as libc::pid_t,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        )
    };
    if rc != 0 {
        return Err(format!(
            "pinning thread {tid} to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Nanoseconds `pid` has run (first field of `/proc/PID/schedstat`).
pub fn run_time_ns(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/schedstat");
    let text = fs::read_to_string(&path)
        .map_err(|error| format!("reading {path} (did the NAPI kthread go away?): {error}"))?;
    text.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| format!("{path}: unexpected content {text:?}"))
}

/// Sum of the ethtool statistics of `dev` in `ns` named `tx_queue_N_SUFFIX`.
pub fn tx_queue_stat(ns: &NetNs, dev: &str, suffix: &str) -> Result<u64, String> {
    let text = run_in(ns, "reading ethtool statistics", "ethtool", &["-S", dev])?;
    Ok(text
        .lines()
        .filter_map(|line| line.trim().split_once(':'))
        .filter(|(key, _)| {
            key.trim()
                .strip_prefix("tx_queue_")
                .and_then(|rest| rest.split_once('_'))
                .is_some_and(|(queue, name)| {
                    queue.bytes().all(|b| b.is_ascii_digit()) && name == suffix
                })
        })
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::poll_every_ns;

    #[test]
    fn a_busy_napi_polls_half_a_ring_at_a_time() {
        assert_eq!(poll_every_ns(1_280_000), 100_000);
        assert_eq!(poll_every_ns(50_000), 1_000_000);
        assert_eq!(poll_every_ns(20_000_000), 20_000);
    }
}
