//! The peer: xdp-filter from Debian's xdp-tools, set up the way an operator
//! would (`xdp-filter load IFACE` + `xdp-filter port 8080`) on a veth in a
//! namespace of our own, then timed on the same frames as dockfw.
//!
//! Isolation: xdp-filter pins its maps under `/sys/fs/bpf/xdp-filter`, a
//! path shared by the whole machine. Each instance therefore runs in a
//! private mount namespace with a bpffs of its own, so neither a concurrent
//! xdp-filter nor a previous run can leak into the measurement. When that
//! namespace ends, the pins go with it; the program stays attached to the
//! veth (the netlink attachment holds it) and we hold it by id.
//!
//! With a libxdp dispatcher, the attached program is the dispatcher and
//! xdp-filter's program is a `BPF_PROG_TYPE_EXT` replacing one of its slots;
//! an EXT program has no test-run support, so the dispatcher (which runs
//! xdp-filter's program) is what gets timed, and the report says so. When
//! the kernel refuses EXT programs, libxdp attaches xdp-filter's program
//! itself and that is timed.

use std::process::Command;

use aya::programs::{ProgramFd, loaded_programs};

/// A setup step that failed, with what to try.
#[derive(Debug)]
pub struct PeerError {
    step: String,
    detail: String,
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.detail)
    }
}

impl std::error::Error for PeerError {}

fn fail(step: impl Into<String>, detail: impl Into<String>) -> PeerError {
    PeerError {
        step: step.into(),
        detail: detail.into(),
    }
}

/// Runs a command, failing with its stderr.
fn sh(step: &str, program: &str, args: &[&str]) -> Result<String, PeerError> {
    let output = Command::new(program).args(args).output().map_err(|error| {
        fail(
            step,
            format!(
                "could not run {program}: {error} (is xdp-tools installed? `cargo xtask setup`)"
            ),
        )
    })?;
    if !output.status.success() {
        return Err(fail(
            step,
            format!(
                "`{program} {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One xdp-filter instance, held by program id.
pub struct PeerProgram {
    /// What the report calls it.
    pub label: String,
    /// `xdp-filter load --features` value.
    pub features: String,
    /// Name of the program that is timed (xdp-filter's, or the dispatcher).
    pub timed_name: String,
    /// Kernel id of the timed program.
    pub id: u32,
    /// The timed program.
    pub fd: ProgramFd,
}

/// The namespace with one veth per xdp-filter instance; removed on drop,
/// which detaches every instance.
pub struct Peer {
    netns: String,
    /// The instances, in the order they were asked for.
    pub programs: Vec<PeerProgram>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veths and so detaches the
        // programs; our handles then hold the last references.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

impl Peer {
    /// Sets up one xdp-filter per `(label, features)` dropping TCP and UDP
    /// to `port`.
    pub fn start(instances: &[(&str, &str)], port: u16) -> Result<Self, PeerError> {
        remove_stale_namespaces();
        let netns = format!("{NETNS_PREFIX}{}", std::process::id());
        sh(
            "creating the peer namespace",
            "ip",
            &["netns", "add", &netns],
        )?;
        let mut peer = Self {
            netns,
            programs: Vec::new(),
        };
        for (index, (label, features)) in instances.iter().enumerate() {
            let program = peer.load(index, label, features, port)?;
            peer.programs.push(program);
        }
        Ok(peer)
    }

    fn load(
        &self,
        index: usize,
        label: &str,
        features: &str,
        port: u16,
    ) -> Result<PeerProgram, PeerError> {
        let ns = self.netns.as_str();
        let iface = format!("dfwx{index}");
        let peer_iface = format!("dfwy{index}");
        sh(
            "creating a veth pair",
            "ip",
            &[
                "-n",
                ns,
                "link",
                "add",
                &iface,
                "type",
                "veth",
                "peer",
                "name",
                &peer_iface,
            ],
        )?;
        for name in [&iface, &peer_iface] {
            sh(
                "bringing a veth up",
                "ip",
                &["-n", ns, "link", "set", name, "up"],
            )?;
        }
        let script = format!(
            "mount -t bpf bpf /sys/fs/bpf && xdp-filter load --features {features} {iface} && xdp-filter port {port}"
        );
        let netns_path = format!("--net=/run/netns/{ns}");
        sh(
            "loading xdp-filter",
            "nsenter",
            &[
                &netns_path,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ],
        )?;
        let id = attached_program(ns, &iface)?;
        let info = loaded_programs()
            .filter_map(Result::ok)
            .find(|info| info.id() == id)
            .ok_or_else(|| {
                fail(
                    "finding xdp-filter's program",
                    format!("no loaded program has id {id}"),
                )
            })?;
        let timed_name = info.name_as_str().unwrap_or("?").to_string();
        let fd = info
            .fd()
            .map_err(|error| fail("opening xdp-filter's program", format!("id {id}: {error}")))?;
        Ok(PeerProgram {
            label: label.to_string(),
            features: features.to_string(),
            timed_name,
            id,
            fd,
        })
    }
}

/// Namespace names: this prefix and the benchmark's pid.
const NETNS_PREFIX: &str = "dfwbench-";

/// Deletes namespaces left by benchmark runs that were killed before their
/// guard ran (their pid is gone).
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing namespace {name} left by an earlier run");
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// The id of the XDP program attached to `iface` in `netns`
/// (`ip -d link` prints `prog/xdp id N`).
fn attached_program(netns: &str, iface: &str) -> Result<u32, PeerError> {
    let text = sh(
        "reading the veth's XDP program",
        "ip",
        &["-n", netns, "-d", "link", "show", "dev", iface],
    )?;
    text.split("prog/xdp id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            fail(
                "reading the veth's XDP program",
                format!("no `prog/xdp id` on {iface}:\n{text}"),
            )
        })
}
