//! The pin directory's layout and its removal: link pins by mode
//! (`links/<mode>/<iface>`) and map pins (`maps/<NAME>`).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use aya::programs::links::PinnedLink;

use super::{AttachError, AttachMode};

/// Directory of the link pins.
pub fn links_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("links")
}

pub(super) fn link_pin(pin_dir: &Path, iface: &str, mode: AttachMode) -> PathBuf {
    links_dir(pin_dir)
        .join(mode.name())
        .join(iface.replace('%', "%25").replace('.', "%2E"))
}

/// Pinned links of an interface, any mode.
pub fn pinned_modes(pin_dir: &Path, iface: &str) -> Vec<AttachMode> {
    AttachMode::ALL
        .into_iter()
        .filter(|mode| link_pin(pin_dir, iface, *mode).exists())
        .collect()
}

pub(super) fn remove_link_pin(path: &Path) -> Result<(), AttachError> {
    match PinnedLink::from_pin(path) {
        Ok(pinned) => {
            let link = pinned.unpin().map_err(|source| AttachError::Io {
                action: "unpinning",
                path: path.to_path_buf(),
                source,
            })?;
            // Dropping the last reference destroys the link: detached.
            drop(link);
            Ok(())
        }
        Err(_) => fs::remove_file(path)
            .or_else(ignore_not_found)
            .map_err(|source| AttachError::Io {
                action: "removing",
                path: path.to_path_buf(),
                source,
            }),
    }
}

fn ignore_not_found(error: io::Error) -> io::Result<()> {
    if error.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(error)
    }
}

/// Removes every link pin and map pin under `pin_dir`, then the directories:
/// what `dockfw detach` does.
pub fn detach_all(pin_dir: &Path) -> Result<Vec<String>, AttachError> {
    let mut removed = Vec::new();
    let links = links_dir(pin_dir);
    let mut dirs = Vec::new();
    for mode in AttachMode::ALL {
        let dir = links.join(mode.name());
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                remove_link_pin(&entry.path())?;
                let iface = entry
                    .file_name()
                    .to_string_lossy()
                    .replace("%2E", ".")
                    .replace("%25", "%");
                removed.push(format!("link {iface} ({})", mode.name()));
            }
        }
        dirs.push(dir);
    }
    let maps = super::load::maps_pin_dir(pin_dir);
    if let Ok(entries) = fs::read_dir(&maps) {
        for entry in entries.flatten() {
            fs::remove_file(entry.path())
                .or_else(ignore_not_found)
                .map_err(|source| AttachError::Io {
                    action: "removing",
                    path: entry.path(),
                    source,
                })?;
            removed.push(format!("map {}", entry.file_name().to_string_lossy()));
        }
    }
    dirs.extend([links, maps, pin_dir.to_path_buf()]);
    for dir in dirs {
        if let Err(source) = fs::remove_dir(&dir)
            && source.kind() != io::ErrorKind::NotFound
        {
            return Err(AttachError::Io {
                action: "removing",
                path: dir,
                source,
            });
        }
    }
    Ok(removed)
}

/// How long a writer waits for another to finish (a `dockfw ban` takes a
/// fraction of a second).
pub const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The right to write the maps pinned under a pin directory: an exclusive
/// `flock` on the directory, held by a running daemon for its lifetime and
/// by `dockfw ban`/`unban` without one for their update. Two writers would
/// otherwise lose each other's bans and could hand one ban slot to two
/// /24s. Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WriterLock {
    _dir: fs::File,
}

/// Takes the writer lock of `pin_dir`, waiting up to `wait` for the holder.
pub fn lock_writer(pin_dir: &Path, wait: std::time::Duration) -> io::Result<WriterLock> {
    use std::os::fd::AsRawFd;
    let dir = fs::File::open(pin_dir)?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(WriterLock { _dir: dir });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::WouldBlock || std::time::Instant::now() >= deadline {
            return Err(error);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
