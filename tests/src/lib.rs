//! Helpers for dockfw's root-only test tiers: frame builders, a loaded data
//! plane with a verdict runner, and RAII guards for everything a test creates
//! in the kernel (namespaces, veths, processes, containers).

pub mod daemon;
pub mod docker;
pub mod frame;
pub mod mirror;
pub mod model;
pub mod netns;
pub mod process;
pub mod prometheus;
pub mod runner;
pub mod traffic;
pub mod trafficgen;

/// Panics naming `step` unless running as root: root-only tiers never skip.
pub fn require_root(step: &str) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("{step} needs root (CAP_BPF, CAP_NET_ADMIN); run the root tier as root");
    }
}

/// An error with its sources, on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}
