//! A `dockfw run` daemon started by a test inside a test namespace, with its
//! own pin and run directories; killed, detached and cleaned up on drop.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use crate::netns::NetNs;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running (or stopped) daemon.
pub struct Daemon {
    bin: PathBuf,
    ns_path: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// Pin directory on bpffs.
    pub pin_dir: PathBuf,
    /// Run directory (socket, state).
    pub run_dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `bin run ARGS --pin-dir P --run-dir R` inside `ns` and waits
    /// for its control socket.
    pub fn start(bin: &str, ns: &NetNs, args: &[&str]) -> Self {
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/dfw-test-{id}"));
        let run_dir = PathBuf::from(format!("/tmp/dfw-run-{id}"));
        if let Err(error) = fs::create_dir_all(&run_dir) {
            panic!("creating {}: {error}", run_dir.display());
        }
        let mut daemon = Self {
            bin: PathBuf::from(bin),
            ns_path: ns.path(),
            args: args.iter().map(ToString::to_string).collect(),
            child: None,
            log: run_dir.join("daemon.log"),
            pin_dir,
            run_dir,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|error| panic!("opening {}: {error}", self.log.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|error| panic!("cloning the log handle: {error}"));
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns_path.display()))
            .arg("--")
            .arg(&self.bin)
            .arg("run")
            .args(&self.args)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .env("DOCKFW_LOG", "info")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.bin.display()));
        self.child = Some(child);
        let socket = self.run_dir.join("dockfw.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!(
                    "dockfw run exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dockfw run did not listen within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a client command (`ban`, `status`, ...) against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.bin);
        command.args(args);
        if !matches!(args.first(), Some(&"check")) {
            command
                .arg("--run-dir")
                .arg(&self.run_dir)
                .arg("--pin-dir")
                .arg(&self.pin_dir);
        }
        command
            .output()
            .unwrap_or_else(|error| panic!("running dockfw {args:?}: {error}"))
    }

    /// Like [`cli`](Self::cli), panicking with the output unless it succeeds.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "dockfw {args:?} failed: {}{}\n--- daemon log ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `dockfw status --json`.
    pub fn status(&self) -> serde_json::Value {
        let text = self.cli_ok(&["status", "--json"]);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("status JSON: {error}\n{text}"))
    }

    /// Polls the status until `ready` holds (or panics after `timeout`).
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if ready(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}: last status {status:#}\n--- log ---\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            // The child is nsenter, which execs dockfw: same pid.
            // SAFETY: kill(2) on a pid we spawned.
            unsafe { libc::kill(child.id() as i32, signal) };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("dockfw did not exit after signal {signal}:\n{}", self.log());
                    }
                }
            }
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        self.signal_and_wait(libc::SIGTERM);
    }

    /// Starts the daemon again with the same arguments and directories.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: the daemon is still running");
        self.spawn();
    }

    /// The pin directory's path.
    pub fn pins(&self) -> &Path {
        &self.pin_dir
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.bin)
            .args(["detach", "--pin-dir"])
            .arg(&self.pin_dir)
            .output();
        let _ = fs::remove_dir_all(&self.pin_dir);
        let _ = fs::remove_dir_all(&self.run_dir);
    }
}
