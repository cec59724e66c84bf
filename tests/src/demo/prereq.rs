//! Everything the demo needs, checked before it creates anything: a demo
//! that stops half-way through setup to say a program is missing has
//! already made (and must unmake) namespaces and a Docker engine. Every
//! missing piece is listed at once, with what installs it.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

/// What `cargo xtask setup` (or the line after it) installs.
pub const INSTALL_HINT: &str = "`cargo xtask setup` installs what the demo needs (or: apt-get install -y \
     docker.io iptables busybox-static ethtool iproute2 util-linux)";

/// Programs the demo runs: namespaces and veths (ip, nsenter), Docker,
/// the DOCKER-USER rule (iptables), NAPI and ring counters (ethtool), the
/// image import (tar).
const PROGRAMS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("iptables", "iptables"),
    ("ethtool", "ethtool"),
    ("tar", "tar"),
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("containerd", "docker.io (containerd)"),
];

/// Where Debian's busybox-static puts its binary.
const BUSYBOX: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];
/// `statfs` magic of the BPF filesystem.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// BPF_F_TEST_XDP_LIVE_FRAMES appeared in Linux 5.18.
const LIVE_FRAMES_KERNEL: (u32, u32) = (5, 18);
/// Threaded NAPI (`/sys/class/net/DEV/threaded`) appeared in Linux 5.12.
const THREADED_NAPI_ATTR: &str = "/sys/class/net/lo/threaded";
/// ELF program header type of an interpreter request (dynamic binaries).
const PT_INTERP: u64 = 3;

/// What is said when the demo does not run as root.
const ROOT: &str = "root: namespaces, dockerd and XDP need it (run it with sudo, or as root)";

/// Whether root is all that is missing (installing packages would not help).
pub fn only_root(missing: &[String]) -> bool {
    matches!(missing, [only] if only == ROOT)
}

/// Every missing prerequisite, one sentence each (empty: all there).
pub fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push(ROOT.to_owned());
        // Nothing below can be checked meaningfully without root.
        return missing;
    }
    if super::receiver::cpu_count() < 2 {
        missing.push(
            "two CPUs: one sends the flood, the other is the host's receiving CPU whose time is measured"
                .to_owned(),
        );
    }
    for (program, package) in PROGRAMS {
        if find_in_path(program).is_none() {
            missing.push(format!("`{program}` in PATH (package {package})"));
        }
    }
    if find_in_path("iptables").is_some() && !iptables_has_conntrack_match() {
        missing.push("iptables' conntrack match (`iptables -m conntrack --help` fails)".to_owned());
    }
    if let Err(error) = static_busybox() {
        missing.push(error);
    }
    if !is_bpffs(Path::new("/sys/fs/bpf")) {
        missing.push("the BPF filesystem at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)".to_owned());
    }
    if !Path::new(THREADED_NAPI_ATTR).exists() {
        missing.push(format!(
            "threaded NAPI (Linux 5.12+; {THREADED_NAPI_ATTR} is missing): the host's \
             receive work must run in a thread of its own to be measured"
        ));
    }
    if let Err(error) = live_frames() {
        missing.push(error);
    }
    missing
}

/// A static busybox for the container image (there is no registry).
pub fn static_busybox() -> Result<PathBuf, String> {
    let Some(busybox) = BUSYBOX
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
    else {
        return Err(format!(
            "a static busybox at {} (package busybox-static)",
            BUSYBOX.join(" or ")
        ));
    };
    match is_static(&busybox) {
        Ok(true) => Ok(busybox),
        Ok(false) => Err(format!(
            "a static busybox: {} is dynamically linked and the image has no libc (package busybox-static)",
            busybox.display()
        )),
        Err(error) => Err(format!(
            "a readable busybox at {}: {error}",
            busybox.display()
        )),
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn iptables_has_conntrack_match() -> bool {
    std::process::Command::new("iptables")
        .args(["-m", "conntrack", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is valid storage for the call to fill.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out pointer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}

/// The running kernel's (major, minor).
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Loads the flood generator and runs it once in live-frames mode on the
/// loopback device with nothing to send (its packet budget is zero, so it
/// returns XDP_DROP): proves BPF, XDP and `BPF_F_TEST_XDP_LIVE_FRAMES`.
fn live_frames() -> Result<(), String> {
    let needs = "BPF_PROG_RUN with live frames (Linux 5.18+), which the flood generator uses";
    if let Some(version) = kernel_version()
        && version < LIVE_FRAMES_KERNEL
    {
        return Err(format!(
            "{needs}: this kernel is {}.{}",
            version.0, version.1
        ));
    }
    let mut ebpf = Ebpf::load(dockfw::ebpf::TRAFFICGEN_OBJECT).map_err(|error| {
        format!(
            "{needs}: loading the generator: {}",
            dockfw_tests::chain(&error)
        )
    })?;
    let program: &mut Xdp = ebpf
        .program_mut(dockfw::ebpf::TRAFFICGEN_PROGRAM)
        .and_then(|program| program.try_into().ok())
        .ok_or_else(|| format!("{needs}: the generator object has no XDP program"))?;
    program.load().map_err(|error| {
        format!(
            "{needs}: verifying the generator: {}",
            dockfw_tests::chain(&error)
        )
    })?;
    const FRAME_LEN: usize = 128;
    let frame = [0u8; FRAME_LEN];
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex (1 = lo),
    // rx_queue_index, egress_ifindex.
    let md: [u32; 6] = [0, FRAME_LEN as u32, 0, 1, 0, 0];
    let ctx: Vec<u8> = md.iter().flat_map(|word| word.to_ne_bytes()).collect();
    let options = TestRunOptions {
        data_in: Some(&frame),
        ctx_in: Some(&ctx),
        repeat: 1,
        attrs: TestRunAttrs::new().xdp_live_frames(1),
        ..TestRunOptions::default()
    };
    program
        .test_run(options)
        .map(drop)
        .map_err(|error| format!("{needs}: {}", dockfw_tests::chain(&error)))
}

/// Whether a 64-bit little-endian ELF binary has no PT_INTERP header.
fn is_static(path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    let field = |at: usize, len: usize| -> Result<u64, String> {
        let slice = bytes.get(at..at + len).ok_or("truncated ELF header")?;
        Ok(slice
            .iter()
            .rev()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
    };
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let table = field(0x20, 8)? as usize; // e_phoff
    let entry = field(0x36, 2)? as usize; // e_phentsize
    let count = field(0x38, 2)? as usize; // e_phnum
    for index in 0..count {
        if field(table + index * entry, 4)? == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}
