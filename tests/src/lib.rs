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

/// Pins a new map at `path` with bpftool, as another dockfw version would
/// have (4-byte keys, `value` bytes per entry), replacing a pin there.
pub fn pin_foreign_map(path: &std::path::Path, kind: &str, value: u32, entries: u32, name: &str) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("bpftool")
        .args(["map", "create"])
        .arg(path)
        .args(["type", kind, "key", "4", "value"])
        .arg(value.to_string())
        .arg("entries")
        .arg(entries.to_string())
        .args(["name", name])
        .status()
        .unwrap_or_else(|error| panic!("running bpftool: {error}"));
    assert!(status.success(), "bpftool map create {}", path.display());
}
