//! The receiving side's measurements: the receiving veth's threaded NAPI
//! kthread pinned to a CPU of its own, whose exact run time
//! (`/proc/PID/schedstat`) is the receiver's CPU cost; the veth's ethtool
//! counters; the namespace's conntrack table size.
//!
//! Why a kthread: a veth has no interrupt, so without threaded NAPI the
//! receive work runs in softirq on the *sender's* CPU and cannot be told
//! apart from the generator's. With `threaded = 1` every poll of the
//! receiving ring (XDP, GRO, the whole IP and netfilter path of a frame
//! that is dropped) runs in `napi/DEV-ID`, and nothing else does.

use std::{fs, process::Command, time::Duration};

use dockfw_tests::netns::NetNs;

/// CPU of the generator (and of the legitimate clients: the "internet").
pub const GENERATOR_CPU: usize = 0;
/// CPU of the receiving veth's NAPI kthread.
pub const RECEIVER_CPU: usize = 1;

pub use dockfw_tests::process::{run, run_in};

/// Turns on threaded NAPI for `dev` in `ns`, with interrupt coalescing:
/// after a poll that found work, NAPI does not re-arm the "interrupt"
/// (veth's wake-up from the sender) but polls again after `coalesce_us`
/// (`napi_defer_hard_irqs` + `gro_flush_timeout`), as a NIC's rx-usecs
/// does. Without it a receiver faster than the generator sleeps and is
/// woken every few frames, and the wake-ups, not the frames, are what its
/// CPU time measures.
///
/// `nsenter --net` keeps the root namespace's /sys, where `dev` does not
/// exist; `ip netns exec` mounts the namespace's own sysfs, which is what
/// these writes need (it breaks dockerd, so it is used for nothing else).
pub fn enable_threaded_napi(ns: &NetNs, dev: &str, coalesce_us: u32) -> Result<(), String> {
    let sys = format!("/sys/class/net/{dev}");
    let (defer, timeout_ns) = if coalesce_us > 0 {
        (1, u64::from(coalesce_us) * 1000)
    } else {
        (0, 0)
    };
    let script = format!(
        "echo 1 > {sys}/threaded && echo {defer} > {sys}/napi_defer_hard_irqs && \
         echo {timeout_ns} > {sys}/gro_flush_timeout"
    );
    run(
        "enabling threaded NAPI",
        Command::new("ip").args(["netns", "exec", ns.name(), "sh", "-c", &script]),
    )
    .map(drop)
}

/// The NAPI kthread of `dev` (`napi/DEV-ID`, the name cut at 15 bytes):
/// exactly one must exist. veth creates its NAPI instance when GRO is
/// turned on or an XDP program attached, and may re-create it when XDP
/// programs come and go, so callers look it up again after every change.
pub fn napi_thread(dev: &str) -> Result<u32, String> {
    let prefix = format!("napi/{dev}-");
    let mut found = Vec::new();
    let entries = fs::read_dir("/proc").map_err(|error| format!("reading /proc: {error}"))?;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(&prefix) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(format!(
            "no NAPI kthread {prefix}*: threaded NAPI is off or the veth runs no NAPI (GRO off and no XDP program?)"
        )),
        many => Err(format!(
            "{} kthreads named {prefix}* ({many:?}); the interface name must be unique on the machine",
            many.len()
        )),
    }
}

/// Real-time priority of the NAPI kthread.
const NAPI_PRIORITY: i32 = 50;

/// Looks the kthread up (waiting up to a second for a re-created one),
/// pins it to [`RECEIVER_CPU`] and makes it SCHED_FIFO: a NIC's NAPI runs
/// in softirq, ahead of every task, and so does this one; as a normal task
/// it would wait behind whatever else runs on that CPU (a compiler) while
/// its 256-frame ring overflows.
pub fn pin_napi_thread(dev: &str) -> Result<u32, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match napi_thread(dev) {
            Ok(pid) => {
                set_affinity(pid, RECEIVER_CPU)?;
                set_realtime(pid, Some(NAPI_PRIORITY))?;
                return Ok(pid);
            }
            Err(error) => last = error,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last)
}

/// Makes thread `tid` (0 = the calling thread) SCHED_FIFO at `priority`,
/// or SCHED_OTHER again with `None`.
pub fn set_realtime(tid: u32, priority: Option<i32>) -> Result<(), String> {
    let (policy, sched_priority) = match priority {
        // Children forked meanwhile (cleanup commands after a panic) start
        // as normal tasks.
        Some(priority) => (libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, priority),
        None => (libc::SCHED_OTHER, 0),
    };
    let param = libc::sched_param { sched_priority };
    // SAFETY: a valid sched_param for the call's duration.
    if unsafe { libc::sched_setscheduler(tid as libc::pid_t, policy, &param) } != 0 {
        return Err(format!(
            "setting the scheduling policy of thread {tid} ({priority:?}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Pins thread `tid` (0 = the calling thread) to `cpu`.
pub fn set_affinity(tid: u32, cpu: usize) -> Result<(), String> {
    set_affinity_mask(tid, &[cpu])
}

/// Lets thread `tid` (0 = the calling thread) run on every CPU again.
pub fn clear_affinity(tid: u32) -> Result<(), String> {
    let cpus: Vec<usize> = (0..cpu_count()).collect();
    set_affinity_mask(tid, &cpus)
}

fn set_affinity_mask(tid: u32, cpus: &[usize]) -> Result<(), String> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus {
        // SAFETY: CPU_SET writes a bit of the set we own; cpu < CPU_SETSIZE.
        unsafe { libc::CPU_SET(*cpu, &mut set) };
    }
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
            "pinning thread {tid} to CPUs {cpus:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Online CPUs.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Nanoseconds `pid` has spent on a CPU and waiting for one while
/// runnable (the first two fields of schedstat: exact, not sampled at the
/// tick).
pub fn sched_times(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/schedstat");
    let text = fs::read_to_string(&path)
        .map_err(|error| format!("reading {path} (did the NAPI kthread go away?): {error}"))?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(run)), Some(Ok(wait))) => Ok((run, wait)),
        _ => Err(format!("{path}: unexpected content {text:?}")),
    }
}

/// One ethtool statistic of `dev` in `ns` (0 when the driver has none).
pub fn ethtool_stat(ns: &NetNs, dev: &str, name: &str) -> Result<u64, String> {
    let text = run_in(ns, "reading ethtool statistics", "ethtool", &["-S", dev])?;
    Ok(text
        .lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0))
}

/// Entries in the conntrack table of `ns` (0 before conntrack is loaded
/// there). /proc/sys/net follows the reader's network namespace.
pub fn conntrack_entries(ns: &NetNs) -> Result<u64, String> {
    let text = run_in(
        ns,
        "reading the conntrack count",
        "sh",
        &[
            "-c",
            "cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0",
        ],
    )?;
    text.trim()
        .parse()
        .map_err(|_| format!("nf_conntrack_count: {text:?}"))
}
