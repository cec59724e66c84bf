//! A real Docker engine (dockerd 20.10 from Debian's `docker.io`) inside a
//! test namespace, with its own data root, exec root, socket and bridge
//! subnet, so tests never touch a host engine; plus the `dockfw-test/busybox`
//! image built from the static busybox binary (there is no registry).
//!
//! ```no_run
//! use dockfw_tests::{docker::DockerEngine, netns::NetNs};
//!
//! let ns = NetNs::new("example");
//! let engine = DockerEngine::start(&ns, "10.210.9.1/24");
//! let id = engine.run_container("web", &["8080:80"], &["httpd", "-f", "-p", "80"]);
//! println!("{id} on {}", engine.host_url());
//! // Drop removes the containers, stops dockerd and deletes its directory.
//! ```

use std::{
    fs,
    io::{Read, Write},
    os::unix::{fs::symlink, net::UnixStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::netns::{NetNs, check};

mod cleanup;
mod prereq;

/// The test image, imported from the static busybox binary.
pub const TEST_IMAGE: &str = "dockfw-test/busybox";
/// What `GET /` returns from `httpd -f -p 80 -h /www` in the test image.
pub const TEST_PAGE: &str = "hello-dockfw\n";

/// busybox applets linked into the image.
const APPLETS: &[&str] = &[
    "sh", "httpd", "nc", "sleep", "wget", "cat", "ls", "echo", "ip", "kill", "mkdir",
];
/// How long dockerd may take to answer `/_ping` after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long dockerd may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// Per-process sequence number that keeps engine directories unique.
static NEXT_ENGINE: AtomicU32 = AtomicU32::new(0);

/// A dockerd running in a namespace; removed with everything it made on drop.
#[derive(Debug)]
pub struct DockerEngine {
    ns: PathBuf,
    dir: PathBuf,
    bip: String,
    daemon: Option<Child>,
}

impl DockerEngine {
    /// Starts dockerd inside `ns` with bridge address `bip` (e.g.
    /// `10.210.7.1/24`; pick a subnet no other engine of the test uses),
    /// waits for its API and imports [`TEST_IMAGE`]. Panics naming the step
    /// that failed, with dockerd's log when it did not come up. Panics too
    /// when a prerequisite (root, dockerd, docker, nsenter, a static
    /// busybox) is missing: tests never skip silently.
    pub fn start(ns: &NetNs, bip: &str) -> Self {
        Self::start_with_config(ns, bip, "{}\n")
    }

    /// Like [`start`](Self::start), with `config` as dockerd's
    /// `daemon.json` (e.g. to turn IPv6 and ip6tables on).
    pub fn start_with_config(ns: &NetNs, bip: &str, config: &str) -> Self {
        let busybox = prereq::require();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seq = NEXT_ENGINE.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/tmp/dfw-docker-{}-{seq}-{nanos:x}",
            std::process::id()
        ));
        if let Err(error) = fs::create_dir_all(dir.join("cli")) {
            panic!("create the engine directory {}: {error}", dir.display());
        }
        if let Err(error) = fs::write(dir.join("daemon.json"), config) {
            panic!("write {}/daemon.json: {error}", dir.display());
        }
        let mut engine = Self {
            ns: ns.path(),
            dir,
            bip: bip.to_owned(),
            daemon: None,
        };
        engine.start_daemon();
        engine.import_image(&busybox);
        engine
    }

    /// The engine's API URL, `unix://DIR/docker.sock`.
    pub fn host_url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The engine's API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// The engine's private directory (data root, exec root, log, socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The docker CLI aimed at this engine only (no user config, context or
    /// TLS settings from the environment).
    pub fn docker_command(&self) -> Command {
        let mut command = Command::new("docker");
        command
            .env("DOCKER_HOST", self.host_url())
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        command
    }

    /// Runs `docker args...` against this engine, whatever its exit status.
    pub fn docker(&self, args: &[&str]) -> Output {
        match self.docker_command().args(args).output() {
            Ok(output) => output,
            Err(error) => panic!("run docker {args:?}: {error}"),
        }
    }

    /// Runs `docker args...`, panicking with `step` unless it succeeds;
    /// returns stdout, trimmed.
    pub fn docker_ok(&self, step: &str, args: &[&str]) -> String {
        let output = check(
            &format!("{step} (docker {})", args.join(" ")),
            self.docker(args),
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `docker run -d --name NAME -p P... dockfw-test/busybox CMD...`;
    /// returns the full container id.
    pub fn run_container(&self, name: &str, publish: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        for port in publish {
            args.extend(["-p", port]);
        }
        args.push(TEST_IMAGE);
        args.extend(cmd);
        self.docker_ok(&format!("run container {name}"), &args)
    }

    /// `docker inspect NAME` as JSON (the object, not the one-element array).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.docker_ok(&format!("inspect {name}"), &["inspect", name]);
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(mut items)) if items.len() == 1 => items.remove(0),
            Ok(other) => panic!("inspect {name}: expected one object, got {other}"),
            Err(error) => panic!("inspect {name}: not JSON: {error}\n{text}"),
        }
    }

    /// The raw `GET /containers/NAME/json` body, as an API client (bollard)
    /// receives it; what the unit-test fixtures are.
    pub fn inspect_raw(&self, name: &str) -> String {
        self.api_get(&format!("/containers/{name}/json"))
            .unwrap_or_else(|error| panic!("GET /containers/{name}/json: {error}"))
    }

    /// dockerd's log so far (all starts).
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Whether dockerd (started by this guard) is running.
    pub fn daemon_running(&mut self) -> bool {
        self.daemon
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILLs dockerd, as a crash would: containers keep running in their
    /// shims until the next start, which (no live-restore) kills them.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            if let Err(error) = child.kill() {
                panic!("SIGKILL dockerd: {error}");
            }
            if let Err(error) = child.wait() {
                panic!("reap dockerd: {error}");
            }
        }
        cleanup::reap_managed_containerd(&self.dir);
    }

    /// Stops dockerd gracefully (SIGTERM; SIGKILL after 20 s); it stops its
    /// containers first (no live-restore).
    pub fn stop_daemon(&mut self) {
        if let Err(error) = self.stop_daemon_quietly() {
            panic!(
                "stop dockerd: {error}\n--- dockerd log ---\n{}",
                self.daemon_log()
            );
        }
    }

    /// Starts dockerd again (same data root) and waits for its API.
    pub fn restart_daemon(&mut self) {
        assert!(
            !self.daemon_running(),
            "restart dockerd: it is still running"
        );
        self.start_daemon();
    }

    fn start_daemon(&mut self) {
        if let Err(error) = self.try_start_daemon() {
            panic!(
                "start dockerd: {error}\n--- dockerd log ---\n{}",
                self.daemon_log()
            );
        }
    }

    fn try_start_daemon(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .map_err(|e| format!("open dockerd.log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("dup dockerd.log: {e}"))?;
        let d = &self.dir;
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .arg("--")
            .arg("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(self.host_url())
            .arg("--bip")
            .arg(&self.bip)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn nsenter dockerd: {e}"))?;
        self.daemon = Some(child);
        self.wait_ready()
    }

    /// Polls `/_ping` until it answers `OK`, the daemon exits, or 60 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.daemon.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.daemon = None;
                return Err(format!("dockerd exited during start-up: {status}"));
            }
            match self.api_get("/_ping") {
                Ok(body) if body == "OK" => return Ok(()),
                Ok(_) | Err(_) if started.elapsed() < READY_TIMEOUT => {
                    thread::sleep(Duration::from_millis(100));
                }
                Ok(body) => {
                    return Err(format!("/_ping answered {body:?} after {READY_TIMEOUT:?}"));
                }
                Err(error) => return Err(format!("no API after {READY_TIMEOUT:?}: {error}")),
            }
        }
    }

    /// A bare HTTP/1.0 GET on the API socket; the body on 200.
    fn api_get(&self, path: &str) -> Result<String, String> {
        let mut stream = UnixStream::connect(self.socket()).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or("response without a body")?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "{}: {body}",
                head.lines().next().unwrap_or_default()
            ));
        }
        Ok(body.to_owned())
    }

    fn stop_daemon_quietly(&mut self) -> Result<(), String> {
        let Some(mut child) = self.daemon.take() else {
            return Ok(());
        };
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: signalling a child we spawned and have not reaped yet.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!("SIGTERM: {}", std::io::Error::last_os_error()));
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    // dockerd's own containerd can outlive it by a moment; a
                    // dockerd started meanwhile would find it "still
                    // running", connect to a socket going away and give up.
                    cleanup::reap_managed_containerd(&self.dir);
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    child
                        .kill()
                        .map_err(|e| format!("SIGKILL after {STOP_GRACE:?}: {e}"))?;
                    child.wait().map_err(|e| format!("reap: {e}"))?;
                    cleanup::reap_managed_containerd(&self.dir);
                    return Err(format!(
                        "dockerd ignored SIGTERM for {STOP_GRACE:?}; killed"
                    ));
                }
                Err(error) => return Err(format!("wait: {error}")),
            }
        }
    }

    /// Builds the image tree (busybox + applet links) and `docker import`s it.
    fn import_image(&self, busybox: &Path) {
        let bin = self.dir.join("img/bin");
        if let Err(error) = fs::create_dir_all(&bin) {
            panic!("import test image: create {}: {error}", bin.display());
        }
        if let Err(error) = fs::copy(busybox, bin.join("busybox")) {
            panic!("import test image: copy {}: {error}", busybox.display());
        }
        for applet in APPLETS {
            if let Err(error) = symlink("busybox", bin.join(applet)) {
                panic!("import test image: link {applet}: {error}");
            }
        }
        // A page to serve (`httpd -f -p 80 -h /www`) and a writable /tmp.
        let www = self.dir.join("img/www");
        for dir in [&www, &self.dir.join("img/tmp")] {
            if let Err(error) = fs::create_dir_all(dir) {
                panic!("import test image: create {}: {error}", dir.display());
            }
        }
        if let Err(error) = fs::write(www.join("index.html"), TEST_PAGE) {
            panic!("import test image: write the test page: {error}");
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(self.dir.join("img"))
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn();
        let mut tar = tar.unwrap_or_else(|error| panic!("import test image: spawn tar: {error}"));
        let Some(tar_out) = tar.stdout.take() else {
            panic!("import test image: no tar stdout")
        };
        let import = self
            .docker_command()
            .args(["import", "-", TEST_IMAGE])
            .stdin(tar_out)
            .output();
        let import =
            import.unwrap_or_else(|error| panic!("import test image: docker import: {error}"));
        match tar.wait() {
            Ok(status) if status.success() => {}
            other => panic!("import test image: tar: {other:?}"),
        }
        check("import test image (docker import)", import);
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        cleanup::tear_down(self);
    }
}
