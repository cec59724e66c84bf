//! What a real-Docker test needs on the machine. A missing prerequisite is a
//! panic naming it, never a silent skip (with or without
//! `DOCKFW_TEST_STRICT=1`): a green run must mean the tests ran.

use std::path::{Path, PathBuf};

/// Where Debian's `busybox-static` installs its binary (`/usr/bin` on
/// merged-/usr systems, where `/bin` is a link to it).
const BUSYBOX_CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// The install hint printed with every missing prerequisite.
const INSTALL_HINT: &str = "run the root tier as root after `apt-get install -y docker.io iptables busybox-static util-linux iproute2`";

/// ELF program header type of the interpreter request (dynamic binaries).
const PT_INTERP: u32 = 3;

/// Checks root, the binaries and a static busybox; returns busybox's path.
pub(super) fn require() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing("root (network namespaces and dockerd need it)");
    }
    for program in ["dockerd", "docker", "nsenter", "ip", "tar"] {
        if find_in_path(program).is_none() {
            missing(&format!("`{program}` in PATH"));
        }
    }
    let Some(busybox) = BUSYBOX_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        missing(&format!(
            "a busybox binary at one of {BUSYBOX_CANDIDATES:?}"
        ));
    };
    match is_static(&busybox) {
        Ok(true) => busybox,
        Ok(false) => missing(&format!(
            "a static busybox ({} is dynamically linked; the test image has no libc)",
            busybox.display()
        )),
        Err(error) => missing(&format!(
            "a readable busybox at {}: {error}",
            busybox.display()
        )),
    }
}

fn missing(what: &str) -> ! {
    let strict = std::env::var("DOCKFW_TEST_STRICT").is_ok_and(|v| v == "1");
    panic!(
        "prerequisite missing: {what}; {INSTALL_HINT} (DOCKFW_TEST_STRICT={}; this tier never skips)",
        if strict { "1" } else { "unset" }
    );
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether a 64-bit little-endian ELF binary has no `PT_INTERP` header.
fn is_static(path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let field = |at: usize, len: usize| -> Result<u64, String> {
        let slice = bytes.get(at..at + len).ok_or("truncated ELF header")?;
        Ok(slice
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian).
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let table = usize::try_from(field(0x20, 8)?).map_err(|e| e.to_string())?; // e_phoff
    let entry = usize::try_from(field(0x36, 2)?).map_err(|e| e.to_string())?; // e_phentsize
    let count = usize::try_from(field(0x38, 2)?).map_err(|e| e.to_string())?; // e_phnum
    for index in 0..count {
        if field(table + index * entry, 4)? == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}
