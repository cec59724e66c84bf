//! `dockfw-demo --teardown`: removes what a `--keep` run left up, or what a
//! demo killed before its guards ran left behind, found by the names every
//! run gives its things (they carry its pid) and by its state file. A demo
//! that is still running is left alone.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use super::state::{self, STATE_PREFIX};

/// Where `ip netns` keeps its handles.
const NETNS_DIR: &str = "/run/netns";
/// Namespace names of the demo: `dfw-demo-ROLE-PID-N`.
const NETNS_PREFIX: &str = "dfw-demo-";
/// The Docker engine's directories: `/tmp/dfw-docker-PID-SEQ-NANOS`.
const ENGINE_PREFIX: &str = "/tmp/dfw-docker-";
/// How long dockfw and dockerd get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Tears down every left-over run; what it did, one line each.
pub fn run() -> Result<Vec<String>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("--teardown needs root, as the demo did".into());
    }
    let mut done = Vec::new();
    for pid in left_over_runs() {
        if is_running_demo(pid) {
            done.push(format!(
                "demo {pid} is still running: it cleans up itself when it ends (Ctrl-C or kill {pid})"
            ));
            continue;
        }
        done.extend(tear_down(pid));
    }
    if done.is_empty() {
        done.push("nothing to tear down: no demo namespaces, engines, pins or state left".into());
    }
    Ok(done)
}

/// Runs that left something behind and are no longer running (kept or
/// killed): what `--teardown` would remove.
pub fn left_over() -> Vec<u32> {
    left_over_runs()
        .into_iter()
        .filter(|pid| *pid != std::process::id() && !is_running_demo(*pid))
        .collect()
}

/// Pids of runs that left something: state directories, namespaces, pins.
fn left_over_runs() -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    let prefixes = [
        (Path::new("/run"), "dfw-demo-"),
        (Path::new("/sys/fs/bpf"), "dfw-demo-"),
    ];
    for (dir, prefix) in prefixes {
        for name in names_in(dir) {
            if let Some(pid) = name.strip_prefix(prefix).and_then(|rest| rest.parse().ok()) {
                pids.insert(pid);
            }
        }
    }
    for name in names_in(Path::new(NETNS_DIR)) {
        if let Some(pid) = netns_pid(&name) {
            pids.insert(pid);
        }
    }
    pids
}

/// The pid in a demo namespace name `dfw-demo-ROLE-PID-N`.
fn netns_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NETNS_PREFIX)?;
    let mut parts = rest.rsplit('-');
    let _seq: u32 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is a live dockfw-demo process (not a recycled pid).
pub fn is_running_demo(pid: u32) -> bool {
    fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
        exe.file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("dockfw-demo"))
    })
}

/// Removes run `pid`'s things in dependency order: dockfw (it detaches),
/// its pins, the containers and dockerd, the engine's directory, the
/// namespaces, the state directory.
fn tear_down(pid: u32) -> Vec<String> {
    let recorded = state::read(pid).unwrap_or_default();
    let mut done = Vec::new();
    let what = if recorded.kept {
        "kept demo"
    } else {
        "left-over demo"
    };
    done.push(format!("{what} {pid}:"));

    if let Some(daemon) = recorded.daemon_pid
        && cmdline(daemon).is_some_and(|line| line.contains("dockfw"))
    {
        match stop(daemon) {
            Ok(()) => done.push(format!("  stopped dockfw (pid {daemon})")),
            Err(error) => done.push(format!("  dockfw (pid {daemon}): {error}")),
        }
    }
    let pins = state::pin_dir(pid);
    if pins.exists() {
        if let Err(error) = dockfw::dataplane::pins::detach_all(&pins) {
            done.push(format!(
                "  detaching {}: {}",
                pins.display(),
                dockfw_tests::chain(&error)
            ));
        }
        match fs::remove_dir_all(&pins) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => done.push(format!("  removing {}: {error}", pins.display())),
        }
        done.push(format!(
            "  detached dockfw and removed its pins {}",
            pins.display()
        ));
    }

    let mut engines: BTreeSet<PathBuf> = recorded.engine_dir.into_iter().collect();
    let engine_prefix = format!("dfw-docker-{pid}-");
    for name in names_in(Path::new("/tmp")) {
        if name.starts_with(&engine_prefix) {
            engines.insert(Path::new("/tmp").join(name));
        }
    }
    // Only ever an engine directory of the demo, whatever the state says.
    for engine in engines.iter().filter(|dir| is_engine_dir(dir)) {
        done.extend(remove_engine(engine));
    }

    let mut namespaces: BTreeSet<String> = recorded.namespaces.into_iter().collect();
    namespaces.extend(
        names_in(Path::new(NETNS_DIR))
            .into_iter()
            .filter(|name| netns_pid(name) == Some(pid)),
    );
    for name in namespaces {
        if !Path::new(NETNS_DIR).join(&name).exists() {
            continue;
        }
        match Command::new("ip").args(["netns", "del", &name]).output() {
            Ok(output) if output.status.success() => {
                done.push(format!("  deleted the namespace {name}"));
            }
            Ok(output) => done.push(format!(
                "  ip netns del {name}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => done.push(format!("  ip netns del {name}: {error}")),
        }
    }

    let state_dir = PathBuf::from(format!("{STATE_PREFIX}{pid}"));
    if state_dir.exists() {
        match fs::remove_dir_all(&state_dir) {
            Ok(()) => done.push(format!("  removed {}", state_dir.display())),
            Err(error) => done.push(format!("  removing {}: {error}", state_dir.display())),
        }
    }
    done
}

/// Whether `dir` is `/tmp/dfw-docker-*`.
fn is_engine_dir(dir: &Path) -> bool {
    dir.to_str().is_some_and(|text| {
        text.starts_with(ENGINE_PREFIX) && !text[ENGINE_PREFIX.len()..].contains('/')
    })
}

/// Removes the containers while dockerd still answers, stops dockerd,
/// kills what is left of its containerd and shims, unmounts and deletes
/// the directory.
fn remove_engine(dir: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let socket = format!("unix://{}", dir.join("docker.sock").display());
    let docker = |args: &[&str]| {
        Command::new("docker")
            .env("DOCKER_HOST", &socket)
            .env("DOCKER_CONFIG", dir.join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
    };
    let dockerd = fs::read_to_string(dir.join("docker.pid"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|pid| cmdline(*pid).is_some_and(|line| line.contains("dockerd")));
    if let Some(dockerd) = dockerd {
        if let Ok(listed) = docker(&["ps", "-aq"]) {
            let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
            let ids: Vec<&str> = listed.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(&ids);
                if docker(&args).is_ok_and(|output| output.status.success()) {
                    done.push(format!("  removed {} container(s)", ids.len()));
                }
            }
        }
        match stop(dockerd) {
            Ok(()) => done.push(format!("  stopped dockerd (pid {dockerd})")),
            Err(error) => done.push(format!("  dockerd (pid {dockerd}): {error}")),
        }
    }
    for pid in processes_mentioning(dir) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        done.push(format!(
            "  killed {pid} ({})",
            cmdline(pid).unwrap_or_default()
        ));
    }
    unmount_under(dir);
    match fs::remove_dir_all(dir) {
        Ok(()) => done.push(format!("  removed the engine directory {}", dir.display())),
        Err(error) => done.push(format!("  removing {}: {error}", dir.display())),
    }
    done
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`]; waits for the pid to go.
fn stop(pid: u32) -> Result<(), String> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
        return Err(format!("SIGTERM: {}", std::io::Error::last_os_error()));
    }
    let deadline = Instant::now() + STOP_GRACE;
    while alive(pid) {
        if Instant::now() >= deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return Err(format!("ignored SIGTERM for {STOP_GRACE:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// `/proc/PID/cmdline` with spaces between the arguments.
fn cmdline(pid: u32) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (!bytes.is_empty()).then(|| {
        String::from_utf8_lossy(&bytes)
            .trim_end_matches('\0')
            .replace('\0', " ")
    })
}

/// Live processes other than this one whose command line names `dir`.
fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let own = std::process::id();
    names_in(Path::new("/proc"))
        .into_iter()
        .filter_map(|name| name.parse::<u32>().ok())
        .filter(|pid| *pid != own && alive(*pid))
        .filter(|pid| cmdline(*pid).is_some_and(|line| line.contains(&needle)))
        .collect()
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| {
            point
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    points.dedup();
    for point in points {
        let Ok(path) = std::ffi::CString::new(point) else {
            continue;
        };
        // SAFETY: a NUL-terminated path for the call's duration.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

#[cfg(test)]
mod tests {
    use super::netns_pid;

    #[test]
    fn namespace_names_give_their_run() {
        assert_eq!(netns_pid("dfw-demo-host-4242-0"), Some(4242));
        assert_eq!(netns_pid("dfw-demo-wan-17-3"), Some(17));
        assert_eq!(netns_pid("dfw-bench-host-17-3"), None);
        assert_eq!(netns_pid("dfw-demo-host"), None);
    }
}
