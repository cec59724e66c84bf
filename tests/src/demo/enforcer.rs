//! dockfw as an operator would add it to the host: `dockfw run` in the host
//! namespace, native XDP on the host's interface, following the real
//! dockerd and mirroring the DOCKER-USER rule that is already there
//! (`--mirror-docker-user`): the same policy, enforced before conntrack.
//!
//! The `dockfw` it runs is this very binary under the name `dockfw` (a
//! symlink in the state directory; `main` dispatches on the name), so the
//! demo always runs the dockfw it was built with, and the commands it
//! prints for `--keep` work as shown.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use dockfw::{dataplane::AttachMode, status::Status};
use serde_json::json;

use super::{
    signals,
    state::{self, StateDir},
    topology::Topology,
};

/// Where the daemon serves /metrics (inside the host namespace).
pub const METRICS_ADDR: &str = "127.0.0.1:9469";
/// How long the daemon may take to attach, sync with Docker and mirror.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to detach and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The `dockfw` command of this run: a link to this binary.
pub fn dockfw_command(state: &Path) -> PathBuf {
    state.join("dockfw")
}

/// A running `dockfw run`; stopped (it detaches), its pins removed on drop,
/// unless kept.
pub struct Enforcer {
    bin: PathBuf,
    child: Option<Child>,
    /// Pin directory.
    pub pin_dir: PathBuf,
    /// Run directory (control socket).
    pub run_dir: PathBuf,
    log: PathBuf,
    /// `--keep`: leave it running.
    pub keep: bool,
}

impl Enforcer {
    /// Starts the daemon; [`wait_ready`](Self::wait_ready) waits for it.
    pub fn start(state: &mut StateDir, topology: &Topology) -> Result<Self, String> {
        let dir = state.dir().to_path_buf();
        let bin = dockfw_command(&dir);
        let exe =
            std::env::current_exe().map_err(|error| format!("locating this program: {error}"))?;
        if !bin.exists() {
            std::os::unix::fs::symlink(&exe, &bin).map_err(|error| {
                format!("linking {} to {}: {error}", bin.display(), exe.display())
            })?;
        }
        // An explicit, empty policy file: the rule comes from DOCKER-USER,
        // and a policy in /etc/dockfw on this machine must not join in.
        let policy = dir.join("policy.toml");
        fs::write(
            &policy,
            "# The demo's policy is the DOCKER-USER rule, mirrored (--mirror-docker-user).\n",
        )
        .map_err(|error| format!("writing {}: {error}", policy.display()))?;
        let run_dir = dir.join("run");
        fs::create_dir_all(&run_dir)
            .map_err(|error| format!("creating {}: {error}", run_dir.display()))?;
        let log = dir.join("dockfw.log");
        let log_file = fs::File::create(&log)
            .map_err(|error| format!("creating {}: {error}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|error| format!("duplicating the log handle: {error}"))?;
        let pin_dir = state::pin_dir(std::process::id());
        let mut command = topology.host.command(&bin);
        command
            .args([
                "run",
                "--iface",
                &topology.host_dev,
                "--mode",
                "native",
                "--policy",
            ])
            .arg(&policy)
            .args(["--docker-host", &topology.engine.host_url()])
            .arg("--mirror-docker-user")
            .args(["--metrics-addr", METRICS_ADDR, "--pin-dir"])
            .arg(&pin_dir)
            .arg("--run-dir")
            .arg(&run_dir)
            .env("DOCKFW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            // Its own process group: a Ctrl-C at the terminal reaches the
            // demo, which stops dockfw in order (and --keep leaves it be).
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|error| format!("starting {}: {error}", bin.display()))?;
        // nsenter execs dockfw: the child's pid is the daemon's.
        state.record("daemon_pid", json!(child.id()))?;
        state.record("pin_dir", json!(pin_dir))?;
        state.record("run_dir", json!(run_dir))?;
        Ok(Self {
            bin,
            child: Some(child),
            pin_dir,
            run_dir,
            log,
            keep: false,
        })
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Result<Status, String> {
        let output = Command::new(&self.bin)
            .args(["status", "--json", "--run-dir"])
            .arg(&self.run_dir)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .output()
            .map_err(|error| format!("dockfw status: {error}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("dockfw status --json: {error}"))
    }

    /// Waits until dockfw is attached in native XDP, synced with Docker and
    /// enforces the mirrored rule.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last: String;
        loop {
            signals::check()?;
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "dockfw run exited ({status}):\n{}",
                    self.log_text()
                ));
            }
            match self.status() {
                Ok(status) => {
                    let native = status
                        .interfaces
                        .first()
                        .is_some_and(|iface| iface.mode == AttachMode::XdpNative);
                    let mirrored = status.mirror.as_ref().map_or(0, |mirror| mirror.enforced);
                    if native && status.docker.synced && mirrored >= 1 {
                        break;
                    }
                    last = format!(
                        "native XDP: {native}, Docker synced: {}, DOCKER-USER rules enforced: {mirrored}{}",
                        status.docker.synced,
                        status
                            .mirror
                            .as_ref()
                            .map(|mirror| format!(" (errors: {:?})", mirror.errors))
                            .unwrap_or_default()
                    );
                }
                Err(error) => last = error,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "dockfw was not ready after {READY_TIMEOUT:?}: {last}\n--- dockfw log ---\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Packets dockfw has dropped so far, over every published port (the
    /// mirrored rule's drops, bans, fragments), as `dockfw status` counts
    /// them.
    pub fn dropped(&self) -> Result<u64, String> {
        let status = self.status()?;
        Ok(status
            .ports
            .iter()
            .map(|port| {
                port.rules
                    .iter()
                    .map(|rule| rule.counters.dropped.packets)
                    .chain(
                        [&port.unmatched, &port.banned, &port.fragments].map(|c| c.dropped.packets),
                    )
                    .sum::<u64>()
            })
            .sum())
    }
}

impl Drop for Enforcer {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(mut child) = self.child.take() {
            dockfw_tests::process::terminate(&mut child, "dockfw", STOP_GRACE);
        }
        if let Err(error) = dockfw::dataplane::pins::detach_all(&self.pin_dir) {
            eprintln!(
                "cleanup: detaching {}: {}",
                self.pin_dir.display(),
                dockfw_tests::chain(&error)
            );
        }
        if let Err(error) = fs::remove_dir_all(&self.pin_dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cleanup: removing {}: {error}", self.pin_dir.display());
        }
    }
}
