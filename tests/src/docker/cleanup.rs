//! Tearing an engine down without panicking (it runs in `Drop`, possibly
//! while a test is already failing): remove the containers, stop dockerd,
//! reap what it left, unmount, delete the directory. Each failure is
//! printed and the next step still runs.

use std::{
    ffi::CString,
    fs,
    os::unix::ffi::OsStrExt,
    path::Path,
    time::{Duration, Instant},
};

use super::DockerEngine;

/// How long a managed containerd gets to exit after its dockerd died.
const CONTAINERD_EXIT: Duration = Duration::from_secs(10);

/// Everything [`DockerEngine`] created goes, in dependency order.
pub(super) fn tear_down(engine: &mut DockerEngine) {
    // After a kill_daemon the containers still run in their shims; a start
    // (no live-restore) kills them, so the engine can remove them itself.
    if !engine.daemon_running()
        && !processes_under(&engine.dir).is_empty()
        && let Err(error) = engine.try_start_daemon()
    {
        eprintln!("cleanup: restart dockerd to reap its containers: {error}");
    }
    if engine.daemon_running() {
        remove_containers(engine);
    }
    if let Err(error) = engine.stop_daemon_quietly() {
        eprintln!("cleanup: stop dockerd: {error}");
    }
    // Our dockerd's containerd and shims are the only processes whose
    // command line names our unique directory.
    for (pid, _) in processes_under(&engine.dir) {
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            eprintln!(
                "cleanup: SIGKILL {pid}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    unmount_under(&engine.dir);
    if let Err(error) = fs::remove_dir_all(&engine.dir) {
        eprintln!("cleanup: remove {}: {error}", engine.dir.display());
    }
}

fn remove_containers(engine: &DockerEngine) {
    let listed = engine.docker(&["ps", "-aq", "--no-trunc"]);
    let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return;
    }
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(ids);
    let removed = engine.docker(&args);
    if !removed.status.success() {
        eprintln!(
            "cleanup: docker rm -f: {}",
            String::from_utf8_lossy(&removed.stderr).trim()
        );
    }
}

/// After dockerd died: waits for the containerd it manages to follow (it
/// gets SIGKILL when its parent dies), and kills it if it does not. A
/// dockerd started while the old containerd is still exiting finds its pid
/// alive, does not start a new one, and then times out on its socket. The
/// same happens while the dead containerd is a zombie its new parent has
/// not reaped yet (its pid still answers `kill(pid, 0)`): then the pid file
/// goes, and the next dockerd starts a fresh containerd.
pub(super) fn reap_managed_containerd(dir: &Path) {
    let deadline = Instant::now() + CONTAINERD_EXIT;
    loop {
        let left: Vec<_> = processes_under(dir)
            .into_iter()
            .filter(|(_, argv0)| argv0 == b"containerd")
            .collect();
        if left.is_empty() {
            forget_dead_containerd(dir);
            return;
        }
        if Instant::now() >= deadline {
            for (pid, _) in left {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes dockerd's containerd pid file when that pid is gone or a zombie.
fn forget_dead_containerd(dir: &Path) {
    let pid_file = dir.join("exec/containerd/containerd.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    if matches!(state, None | Some('Z' | 'X'))
        && let Err(error) = fs::remove_file(&pid_file)
    {
        eprintln!("cleanup: remove {}: {error}", pid_file.display());
    }
}

/// Pids (other than ours) whose command line mentions `dir`, with argv[0].
fn processes_under(dir: &Path) -> Vec<(libc::pid_t, Vec<u8>)> {
    let needle = dir.as_os_str().as_bytes();
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if !cmdline.windows(needle.len()).any(|w| w == needle) {
                return None;
            }
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let name = argv0
                .rsplit(|b| *b == b'/')
                .next()
                .unwrap_or_default()
                .to_vec();
            Some((libc::pid_t::try_from(pid).ok()?, name))
        })
        .collect()
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.as_os_str().as_bytes();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| {
            let bytes = point.as_bytes();
            bytes.starts_with(prefix) && matches!(bytes.get(prefix.len()), None | Some(b'/'))
        })
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    points.dedup();
    for point in points {
        let Ok(path) = CString::new(point.as_str()) else {
            continue;
        };
        // SAFETY: `path` is a valid NUL-terminated string for the call.
        if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "cleanup: umount {point}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
