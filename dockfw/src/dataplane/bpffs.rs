//! The BPF filesystem the pins live on. Many hosts mount it at /sys/fs/bpf
//! at boot (systemd does); where nobody did, dockfw mounts it, as cilium and
//! bpfman do, because pins on any other filesystem are impossible.

use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use tracing::info;

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// The conventional mount point.
pub const BPFFS_MOUNT: &str = "/sys/fs/bpf";

/// Errors about the BPF filesystem.
#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    /// The pin directory is not on a BPF filesystem and dockfw will not
    /// mount one elsewhere than /sys/fs/bpf.
    #[error(
        "{0} is not on a BPF filesystem; use a --pin-dir under /sys/fs/bpf, or mount one \
         (`mount -t bpf bpf DIR`)"
    )]
    NotBpffs(PathBuf),
    /// Mounting failed.
    #[error("mounting the BPF filesystem at {BPFFS_MOUNT} failed: {0}")]
    Mount(#[source] io::Error),
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(text) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we pass.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a valid out pointer.
    let rc = unsafe { libc::statfs(text.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}

/// The nearest existing ancestor of `path` (or `path`).
fn existing(path: &Path) -> &Path {
    path.ancestors()
        .find(|ancestor| ancestor.exists())
        .unwrap_or(path)
}

/// Makes sure `pin_dir` can hold pins: it (or its nearest existing parent)
/// is on a BPF filesystem, mounting one at /sys/fs/bpf when that is where
/// the pin dir lives and nothing is mounted there yet.
pub fn ensure_bpffs(pin_dir: &Path) -> Result<(), BpffsError> {
    if is_bpffs(existing(pin_dir)) {
        return Ok(());
    }
    let mount_point = Path::new(BPFFS_MOUNT);
    if !pin_dir.starts_with(mount_point) || is_bpffs(mount_point) {
        return Err(BpffsError::NotBpffs(pin_dir.to_path_buf()));
    }
    let source = CString::new("bpf")
        .map_err(io::Error::other)
        .map_err(BpffsError::Mount)?;
    let target = CString::new(BPFFS_MOUNT)
        .map_err(io::Error::other)
        .map_err(BpffsError::Mount)?;
    let options = CString::new("mode=0700")
        .map_err(io::Error::other)
        .map_err(BpffsError::Mount)?;
    // SAFETY: valid NUL-terminated strings; mount(2) has no other
    // preconditions.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(BpffsError::Mount(io::Error::last_os_error()));
    }
    info!("mounted the BPF filesystem at {BPFFS_MOUNT}");
    Ok(())
}
