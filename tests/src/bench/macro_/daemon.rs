//! dockfw as an operator runs it: `dockfw run` in the host namespace,
//! following the real dockerd and the policy file, attached natively,
//! generically or at TC. The 100,000 bans are written into the pinned maps
//! before the daemon starts, so it adopts them as on a restart (feeding
//! them one `dockfw ban` at a time would take longer than the benchmark).
//! Drops are read from the daemon's own per-CPU counters.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use dockfw::{
    bans::BanSet,
    cli::CapacityArgs,
    dataplane::{Dataplane, LoadOptions, Maps, bans::write_bans},
};
use dockfw_common::{capacity, reason};
use dockfw_tests::netns::NetNs;

use super::topology::WEB_PORT;

/// How long the daemon may take to attach, sync with Docker and compile.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to detach and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The daemon's capacities, its defaults spelled out: the pre-populated maps
/// and the daemon must agree, so both get these.
fn capacity_args() -> CapacityArgs {
    CapacityArgs {
        max_ports: capacity::POLICIES / 2 - 1,
        max_rules: capacity::RULES / 2,
        max_bans: capacity::BANS_V4,
        max_rule_sources: capacity::RULE_SOURCES_V4,
        max_source_trie_nodes: capacity::RULE_SOURCE_NODES,
        max_rate_sources: capacity::RATE_SOURCES,
        max_stats: capacity::STATS,
    }
}

/// What a ready daemon must show.
pub struct Expect {
    /// Published IPv4 TCP ports.
    pub tcp_ports: usize,
    /// Rules on the attacked port.
    pub rules_on_port: usize,
    /// Bans in force.
    pub bans: usize,
}

/// A running `dockfw run`; stopped, detached and its pins removed on drop.
pub struct DockfwDaemon {
    bin: PathBuf,
    child: Option<Child>,
    pin_dir: PathBuf,
    run_dir: PathBuf,
    maps: Option<Maps>,
    /// `native`, `generic` or `tc`.
    pub mode: &'static str,
}

impl DockfwDaemon {
    /// Writes `bans` into fresh pinned maps, then starts the daemon on them.
    pub fn start(
        bin: &Path,
        ns: &NetNs,
        dev: &str,
        mode: &'static str,
        policy: &Path,
        docker_host: &str,
        bans: &BanSet,
    ) -> Result<Self, String> {
        let tag = format!("macro-{}-{mode}", std::process::id());
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/dfw-bench-{tag}"));
        let run_dir = std::env::temp_dir().join(format!("dfw-bench-{tag}"));
        let mut daemon = Self {
            bin: bin.to_path_buf(),
            child: None,
            pin_dir,
            run_dir,
            maps: None,
            mode,
        };
        let capacities = capacity_args();
        let started = Instant::now();
        {
            let options = LoadOptions {
                pin_dir: Some(daemon.pin_dir.clone()),
                capacities: capacities.capacities(),
                trace: false,
            };
            let mut dataplane = Dataplane::load(&options).map_err(|error| {
                format!(
                    "pre-loading the pinned maps: {}",
                    dockfw_tests::chain(&error)
                )
            })?;
            write_bans(&mut dataplane.maps, &BanSet::new(), bans).map_err(|error| {
                format!(
                    "writing {} bans: {}",
                    bans.len(),
                    dockfw_tests::chain(&error)
                )
            })?;
        }
        eprintln!(
            "  {} bans written to {} in {:.1?}",
            bans.len(),
            daemon.pin_dir.display(),
            started.elapsed()
        );
        std::fs::create_dir_all(&daemon.run_dir)
            .map_err(|error| format!("creating {}: {error}", daemon.run_dir.display()))?;
        let log = std::fs::File::create(daemon.log_path())
            .map_err(|error| format!("creating the daemon log: {error}"))?;
        let log_err = log
            .try_clone()
            .map_err(|error| format!("cloning the log handle: {error}"))?;
        let numbers = [
            ("--max-ports", capacities.max_ports),
            ("--max-rules", capacities.max_rules),
            ("--max-bans", capacities.max_bans),
            ("--max-rule-sources", capacities.max_rule_sources),
            ("--max-source-trie-nodes", capacities.max_source_trie_nodes),
            ("--max-rate-sources", capacities.max_rate_sources),
            ("--max-stats", capacities.max_stats),
        ];
        let mut command = ns.command(bin);
        command
            .args(["run", "--iface", dev, "--mode", mode, "--policy"])
            .arg(policy)
            .args(["--docker-host", docker_host, "--pin-dir"])
            .arg(&daemon.pin_dir)
            .arg("--run-dir")
            .arg(&daemon.run_dir);
        for (flag, value) in numbers {
            command.arg(flag).arg(value.to_string());
        }
        let child = command
            .env("DOCKFW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|error| format!("starting {}: {error}", bin.display()))?;
        daemon.child = Some(child);
        Ok(daemon)
    }

    fn log_path(&self) -> PathBuf {
        self.run_dir.join("daemon.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn status(&self) -> Result<serde_json::Value, String> {
        let output = Command::new(&self.bin)
            .args(["status", "--json", "--run-dir"])
            .arg(&self.run_dir)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .output()
            .map_err(|error| format!("dockfw status: {error}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        serde_json::from_slice(&output.stdout).map_err(|error| format!("status JSON: {error}"))
    }

    /// Waits until the daemon is attached in its mode, synced with Docker,
    /// and enforces the full policy over every published port.
    pub fn wait_ready(&mut self, expect: &Expect) -> Result<(), String> {
        let wanted_mode = match self.mode {
            "native" => "xdp-native",
            "generic" => "xdp-generic",
            _ => "tc",
        };
        let web = format!("{WEB_PORT}/tcp");
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last: String;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("dockfw run exited ({status}):\n{}", self.log()));
            }
            match self.status() {
                Ok(status) => {
                    let ports = status["ports"].as_array().cloned().unwrap_or_default();
                    let tcp_v4 = ports
                        .iter()
                        .filter(|port| port["family"] == "ipv4")
                        .filter(|port| port["port"].as_str().is_some_and(|p| p.ends_with("/tcp")))
                        .count();
                    let rules = ports
                        .iter()
                        .find(|port| port["family"] == "ipv4" && port["port"] == web.as_str())
                        .and_then(|port| port["rules"].as_array().map(Vec::len))
                        .unwrap_or(0);
                    let bans = status["bans"].as_u64().unwrap_or(0) as usize;
                    let mode = status["interfaces"][0]["mode"].as_str().unwrap_or("?");
                    if tcp_v4 >= expect.tcp_ports
                        && rules == expect.rules_on_port
                        && bans >= expect.bans
                        && mode == wanted_mode
                    {
                        break;
                    }
                    last = format!(
                        "{tcp_v4} IPv4 TCP ports, {rules} rules on {web}, {bans} bans, mode {mode}"
                    );
                }
                Err(error) => last = error,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "dockfw ({}) not ready after {READY_TIMEOUT:?}: {last}\n{}",
                    self.mode,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let maps = Maps::from_pins(&self.pin_dir)
            .map_err(|error| format!("opening the pinned maps: {}", dockfw_tests::chain(&error)))?;
        self.maps = Some(maps);
        Ok(())
    }

    /// Packets the data plane dropped at the attacked port (by rule, ban or
    /// rate limit), from the daemon's status: classified packets are
    /// counted per port and rule, not under the global reasons.
    pub fn drops(&self) -> Result<u64, String> {
        let status = self.status()?;
        let web = [format!("{WEB_PORT}/tcp"), format!("{WEB_PORT}/udp")];
        let dropped =
            |counters: &serde_json::Value| counters["dropped"]["packets"].as_u64().unwrap_or(0);
        Ok(status["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|port| port["family"] == "ipv4")
            .filter(|port| web.iter().any(|label| port["port"] == label.as_str()))
            .map(|port| {
                dropped(&port["banned"])
                    + port["rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|rule| dropped(&rule["counters"]))
                        .sum::<u64>()
            })
            .sum())
    }
}

impl DockfwDaemon {
    /// Every global counter, for a failure message.
    pub fn counters(&self) -> String {
        let Some(maps) = self.maps.as_ref() else {
            return "not ready".into();
        };
        dockfw::dataplane::counters::read_globals(maps)
            .map(|all| {
                all.iter()
                    .filter(|(_, totals)| totals.packets > 0)
                    .map(|(code, totals)| format!("{} {}", reason::name(*code), totals.packets))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|error| error.to_string())
    }
}

impl Drop for DockfwDaemon {
    fn drop(&mut self) {
        self.maps = None;
        if let Some(mut child) = self.child.take() {
            // nsenter execs dockfw: the child's pid is the daemon's.
            dockfw_tests::process::terminate(&mut child, "dockfw", STOP_GRACE);
        }
        let _ = Command::new(&self.bin)
            .args(["detach", "--pin-dir"])
            .arg(&self.pin_dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}
