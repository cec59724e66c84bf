//! Faults, each survived without losing enforcement: the daemon SIGKILLed
//! under a flood, the Docker engine restarted, containers restarted and
//! removed while traffic flows, a spoofed flood larger than the per-source
//! table, policy sources that go bad, capacities that run out.
//!
//! What reaches netfilter is counted by `raw PREROUTING` rules in the host
//! namespace (Docker never uses the raw table): a packet the fast path
//! dropped never gets there.
//!
//! Root tier: `cargo test -p dockfw-tests --test faults -- --test-threads=1`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use dockfw_tests::{
    daemon::Daemon,
    docker::DockerEngine,
    netns::{NetNs, VethPair},
    traffic::{TcpListener, http_get, send_udp, tcp_connects},
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");
const HOST: &str = "10.79.0.1";
const GOOD: &str = "10.79.0.2";
const BAD: &str = "10.79.0.3";
const LIMITED: &str = "10.79.0.4";
const STREAMER: &str = "10.79.0.5";
const WEB: u16 = 8080;
const UDP: u16 = 9000;
const TIMEOUT: Duration = Duration::from_secs(2);
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];
const UDP_CMD: &[&str] = &["sleep", "3600"];

/// A host namespace (Docker, dockfw) and a client namespace on a veth.
struct Net {
    host: NetNs,
    client: NetNs,
    _veth: VethPair,
}

fn net(name: &str) -> Net {
    dockfw_tests::require_root("the fault tests");
    let host = NetNs::new(&format!("{name}-h"));
    let client = NetNs::new(&format!("{name}-c"));
    let veth = VethPair::new(
        &host,
        "eth-h",
        &["10.79.0.1/24"],
        &client,
        "eth-c",
        &[
            "10.79.0.2/24",
            "10.79.0.3/24",
            "10.79.0.4/24",
            "10.79.0.5/24",
        ],
    );
    // Replies to spoofed sources go back the way they came (and vanish).
    client.run_ok(
        "client default route",
        "ip",
        &["route", "add", "default", "via", HOST],
    );
    host.run_ok(
        "host route to the spoofed range",
        "ip",
        &["route", "add", "10.99.0.0/16", "via", GOOD],
    );
    Net {
        host,
        client,
        _veth: veth,
    }
}

/// A private directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dfw-faults-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos())
        ));
        fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, text)
        .unwrap_or_else(|error| panic!("writing {}: {error}", temporary.display()));
    fs::rename(&temporary, path)
        .unwrap_or_else(|error| panic!("renaming onto {}: {error}", path.display()));
}

/// Counts packets matching `matcher` at raw PREROUTING in `ns` (a rule
/// tagged with a comment of its own, so it is found whatever
/// `iptables-save` makes of the matcher).
struct RawCounter<'a> {
    ns: &'a NetNs,
    rule: Vec<String>,
    tag: String,
}

static NEXT_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl<'a> RawCounter<'a> {
    fn new(ns: &'a NetNs, matcher: &[&str]) -> Self {
        let tag = format!(
            "dfw-count-{}",
            NEXT_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut rule: Vec<String> = matcher.iter().map(ToString::to_string).collect();
        rule.extend(["-m", "comment", "--comment", &tag, "-j", "ACCEPT"].map(String::from));
        let mut args = vec!["-t", "raw", "-I", "PREROUTING"];
        args.extend(rule.iter().map(String::as_str));
        ns.run_ok("add a raw counter", "iptables", &args);
        Self { ns, rule, tag }
    }

    fn packets(&self) -> u64 {
        let output = self
            .ns
            .run_ok("iptables-save -c", "iptables-save", &["-c", "-t", "raw"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find(|line| line.starts_with('[') && line.contains(&self.tag))
            .and_then(|line| line.trim_start_matches('[').split(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no raw counter {} ({:?})", self.tag, self.rule))
    }
}

impl Drop for RawCounter<'_> {
    fn drop(&mut self) {
        let mut args = vec!["-t", "raw", "-D", "PREROUTING"];
        args.extend(self.rule.iter().map(String::as_str));
        let _ = self.ns.run("iptables", &args);
    }
}

const FLOOD: &str = r#"
import random, socket, struct, sys, time
src, dst, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
spoof = sys.argv[5] if len(sys.argv) > 5 else ""
pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
deadline = time.time() + seconds
sent = 0
if spoof:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    a, b = (int(x) for x in spoof.split("."))
    target = socket.inet_aton(dst)
    while time.time() < deadline:
        for _ in range(200):
            host = random.getrandbits(16)
            source = bytes([a, b, host >> 8, host & 255])
            udp = struct.pack("!HHHH", 1024 + (host & 0x3fff), port, 9, 0) + b"x"
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, source, target)
            sock.sendto(ip + udp, (dst, 0))
            sent += 1
        if pause:
            time.sleep(pause)
else:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    while time.time() < deadline:
        for _ in range(100):
            try:
                sock.sendto(b"flood", (dst, port))
                sent += 1
            except OSError:
                pass
        if pause:
            time.sleep(pause)
print(sent, flush=True)
"#;

/// A UDP flood running in the client namespace.
struct Flood(Option<Child>);

impl Flood {
    fn start(ns: &NetNs, args: &[&str]) -> Self {
        let child = ns
            .command("python3")
            .args(["-c", FLOOD])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting a flood: {error}"));
        Self(Some(child))
    }

    /// Waits for the end; packets sent.
    fn sent(mut self) -> u64 {
        let Some(child) = self.0.take() else {
            return 0;
        };
        let output = child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("waiting for the flood: {error}"));
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "flood output {:?} {:?}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
            })
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn generation(status: &serde_json::Value) -> u64 {
    status["policy_generation"].as_u64().unwrap_or(0)
}

/// The published ports the daemon reports, as `PORT/PROTO family container`.
fn reported_ports(status: &serde_json::Value) -> Vec<String> {
    let mut ports: Vec<String> = status["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| {
            format!(
                "{} {} {}",
                port["port"].as_str().unwrap_or_default(),
                port["family"].as_str().unwrap_or_default(),
                port["container"].as_str().unwrap_or_default()
            )
        })
        .collect();
    ports.sort();
    ports
}

fn last_error(status: &serde_json::Value) -> String {
    status["policy"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn start_daemon(net: &Net, engine: &DockerEngine, policy: &Path, extra: &[&str]) -> Daemon {
    let policy = policy.display().to_string();
    let docker_host = engine.host_url();
    let mut args = vec![
        "--iface",
        "eth-h",
        "--mode",
        "native",
        "--policy",
        &policy,
        "--docker-host",
        &docker_host,
    ];
    args.extend(extra);
    Daemon::start(BIN, &net.host, &args)
}

/// Waits until the control socket answers (a restarted daemon replaces the
/// socket a killed one left behind).
fn wait_for_control(daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.cli(&["status", "--json"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the control socket did not answer within 30 s\n{}",
            daemon.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_port(daemon: &Daemon, port: &str) -> serde_json::Value {
    daemon.wait_status(&format!("port {port}"), Duration::from_secs(30), |status| {
        generation(status) >= 1 && reported_ports(status).iter().any(|p| p.starts_with(port))
    })
}

#[test]
fn sigkill_under_a_banned_flood_leaks_nothing_and_keeps_bans_and_buckets() {
    let net = net("kill");
    let engine = DockerEngine::start(&net.host, "10.210.80.1/24");
    engine.run_container("sink", &["9000:9000/udp"], UDP_CMD);
    let dir = TempDir::new("kill");
    let policy = dir.join("policy.toml");
    write_atomically(
        &policy,
        &format!(
            r#"
[[rules]]
name = "slow-source"
ports = ["{UDP}/udp"]
from = ["{LIMITED}/32"]
action = "rate-limit"
rate = "1/h"
burst = 3
per = "source"
"#
        ),
    );
    let mut daemon = start_daemon(&net, &engine, &policy, &[]);
    wait_for_port(&daemon, "9000/udp");
    daemon.cli_ok(&["ban", &format!("{STREAMER}/32")]);
    let banned = RawCounter::new(&net.host, &["-s", STREAMER, "-p", "udp"]);
    let limited = RawCounter::new(&net.host, &["-s", LIMITED, "-p", "udp"]);

    // The limited source spends its burst before the crash.
    send_udp(&net.client, LIMITED, HOST, UDP, 10);
    assert_eq!(
        limited.packets(),
        3,
        "the burst of 3 passes, the rest is dropped"
    );

    let flood = Flood::start(
        &net.client,
        &[STREAMER, HOST, &UDP.to_string(), "6", "", "0.001"],
    );
    thread::sleep(Duration::from_millis(700));
    daemon.signal_and_wait(libc::SIGKILL);
    thread::sleep(Duration::from_millis(700));
    daemon.restart();
    wait_for_control(&daemon);
    let status = daemon.wait_status("the restarted daemon", Duration::from_secs(30), |status| {
        generation(status) >= 1
    });
    let sent = flood.sent();
    assert!(sent >= 1000, "the flood must have run ({sent} sent)");
    assert_eq!(
        banned.packets(),
        0,
        "packets of a banned source leaked across a SIGKILL"
    );
    assert!(
        status["interfaces"]
            .as_array()
            .is_some_and(|ifaces| !ifaces.is_empty() && ifaces.iter().all(|i| i["adopted"] == true)),
        "the restarted daemon re-adopted the pinned links: {status:#}"
    );
    assert!(
        daemon.cli_ok(&["bans"]).contains(STREAMER),
        "the ban survived the crash"
    );
    send_udp(&net.client, LIMITED, HOST, UDP, 10);
    assert_eq!(
        limited.packets(),
        3,
        "the spent bucket survived the crash (no fresh burst)"
    );
}

#[test]
fn docker_engine_restart_keeps_enforcing_and_resyncs_within_2s() {
    let net = net("dockerd");
    let mut engine = DockerEngine::start(&net.host, "10.210.81.1/24");
    engine.docker_ok(
        "run web",
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--restart",
            "always",
            "-p",
            "8080:80",
            "-p",
            "9000:9000/udp",
            dockfw_tests::docker::TEST_IMAGE,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    let dir = TempDir::new("dockerd");
    let policy = dir.join("policy.toml");
    write_atomically(
        &policy,
        &format!(
            "[[rules]]\nname = \"drop-bad\"\nports = [\"{WEB}/tcp\", \"{UDP}/udp\"]\nfrom = [\"{BAD}/32\"]\naction = \"drop\"\n"
        ),
    );
    let daemon = start_daemon(&net, &engine, &policy, &[]);
    let status = wait_for_port(&daemon, "9000/udp");
    let expected = reported_ports(&status);
    assert!(expected.len() >= 2, "8080/tcp and 9000/udp: {expected:?}");
    let bad = RawCounter::new(&net.host, &["-s", BAD, "-p", "udp"]);

    let flood = Flood::start(
        &net.client,
        &[BAD, HOST, &UDP.to_string(), "20", "", "0.002"],
    );
    thread::sleep(Duration::from_millis(500));
    engine.stop_daemon();
    // The engine is down (and took its containers down): the last known
    // ports stay in force.
    thread::sleep(Duration::from_secs(2));
    let down = daemon.status();
    assert_eq!(
        reported_ports(&down),
        expected,
        "ports kept while Docker is down"
    );
    engine.restart_daemon();
    let back = Instant::now();
    // Docker flushes and re-creates its chains on start; make sure of it.
    let _ = net.host.run("iptables", &["-t", "nat", "-F", "DOCKER"]);
    let deadline = back + Duration::from_secs(2);
    let mut exact = false;
    while Instant::now() < deadline {
        let status = daemon.status();
        if status["docker"]["connected"] == true
            && status["docker"]["synced"] == true
            && reported_ports(&status) == expected
        {
            exact = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        exact,
        "the published-port map was not exact within 2 s of the engine's return: {:#}\n{}",
        daemon.status(),
        daemon.log()
    );
    let sent = flood.sent();
    assert!(sent >= 1000, "the flood must have run ({sent} sent)");
    assert_eq!(
        bad.packets(),
        0,
        "enforcement stopped while Docker restarted"
    );
    // And the container behind the port still serves the good client.
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(&net.client, GOOD, HOST, WEB, TIMEOUT).is_none() {
        assert!(
            Instant::now() < deadline,
            "web did not come back\n{}",
            engine.daemon_log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        http_get(&net.client, BAD, HOST, WEB, TIMEOUT),
        None,
        "BAD still dropped"
    );
}

#[test]
fn restarted_and_removed_containers_leave_no_stale_keys() {
    let net = net("ctr");
    let engine = DockerEngine::start(&net.host, "10.210.82.1/24");
    engine.run_container("web", &["8080:80"], WEB_CMD);
    let dir = TempDir::new("ctr");
    let policy = dir.join("policy.toml");
    write_atomically(
        &policy,
        &format!(
            r#"
[[rules]]
name = "web-drops-bad"
container = "web"
from = ["{BAD}/32"]
action = "drop"

[[rules]]
name = "api-drops-good"
container = "api"
from = ["{GOOD}/32"]
action = "drop"
"#
        ),
    );
    let daemon = start_daemon(&net, &engine, &policy, &[]);
    wait_for_port(&daemon, "8080/tcp");
    assert!(http_get(&net.client, GOOD, HOST, WEB, TIMEOUT).is_some());
    assert_eq!(http_get(&net.client, BAD, HOST, WEB, TIMEOUT), None);

    // Restarted with a new address: the same rules, nothing else.
    let old_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"].clone();
    engine.docker_ok("stop web", &["stop", "-t", "1", "web"]);
    engine.run_container("filler", &[], &["sleep", "600"]);
    engine.docker_ok("start web", &["start", "web"]);
    let new_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"].clone();
    assert_ne!(old_ip, new_ip, "the container must change address");
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&net.client, GOOD, HOST, WEB, TIMEOUT).is_none() {
        assert!(
            Instant::now() < deadline,
            "web unreachable after restart\n{}",
            daemon.log()
        );
    }
    assert_eq!(http_get(&net.client, BAD, HOST, WEB, TIMEOUT), None);

    // Removed while a client keeps connecting: the key goes, and a plain
    // listener on the freed port sees BAD again.
    let probing = {
        let client = net.client.path();
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                let _ = Command::new("nsenter")
                    .arg(format!("--net={}", client.display()))
                    .args(["--", "python3", "-c", "import socket,sys\ns=socket.socket()\ns.settimeout(0.2)\ns.bind((sys.argv[1],0))\ntry: s.connect((sys.argv[2],int(sys.argv[3])))\nexcept Exception: pass", BAD, HOST, "8080"])
                    .output();
            }
        })
    };
    engine.docker_ok("remove web", &["rm", "-f", "web"]);
    daemon.wait_status("web's port gone", Duration::from_secs(5), |status| {
        !reported_ports(status)
            .iter()
            .any(|p| p.starts_with("8080/tcp"))
    });
    let _ = probing.join();
    let listener = TcpListener::start(&net.host, "0.0.0.0", WEB);
    assert!(
        tcp_connects(&net.client, BAD, HOST, WEB, TIMEOUT),
        "a stale key still drops traffic to the removed container's port"
    );
    drop(listener);

    // Another container takes the port: its rules apply, web's do not.
    engine.run_container("api", &["8080:80"], WEB_CMD);
    daemon.wait_status("api's port", Duration::from_secs(10), |status| {
        reported_ports(status)
            .iter()
            .any(|p| p == "8080/tcp ipv4 api")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&net.client, BAD, HOST, WEB, TIMEOUT).is_none() {
        assert!(
            Instant::now() < deadline,
            "web's rule still applies to api's port\n{}",
            daemon.log()
        );
    }
    assert_eq!(
        http_get(&net.client, GOOD, HOST, WEB, TIMEOUT),
        None,
        "api's own rule applies"
    );
}

/// `max_entries` and the entries in use of a pinned map.
fn pinned_map(pin_dir: &Path, name: &str) -> (u32, usize) {
    let path = pin_dir.join("maps").join(name);
    let output = Command::new("bpftool")
        .args(["-j", "map", "show", "pinned"])
        .arg(&path)
        .output()
        .unwrap_or_else(|error| panic!("bpftool map show: {error}"));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("bpftool map show {}: {error}", path.display()));
    let max_entries = info["max_entries"].as_u64().unwrap_or(0) as u32;
    let output = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned"])
        .arg(&path)
        .output()
        .unwrap_or_else(|error| panic!("bpftool map dump: {error}"));
    let entries: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    (max_entries, entries.as_array().map_or(0, Vec::len))
}

#[test]
fn a_spoofed_flood_beyond_the_lru_is_capped_by_the_port_aggregate() {
    const SOURCES: u32 = 64;
    const TOTAL_PER_SECOND: u64 = 200;
    const TOTAL_BURST: u64 = 100;
    let net = net("spoof");
    let engine = DockerEngine::start(&net.host, "10.210.83.1/24");
    engine.run_container("sink", &["9000:9000/udp"], UDP_CMD);
    let dir = TempDir::new("spoof");
    let policy = dir.join("policy.toml");
    write_atomically(
        &policy,
        &format!(
            r#"
[[rules]]
name = "per-source"
ports = ["{UDP}/udp"]
action = "rate-limit"
rate = "10/s"
burst = 5
per = "source"
total_rate = "{TOTAL_PER_SECOND}/s"
total_burst = {TOTAL_BURST}
"#
        ),
    );
    let sources = SOURCES.to_string();
    let daemon = start_daemon(&net, &engine, &policy, &["--max-rate-sources", &sources]);
    wait_for_port(&daemon, "9000/udp");
    let reached = RawCounter::new(&net.host, &["-p", "udp", "--dport", "9000"]);

    let seconds = 4.0;
    let started = Instant::now();
    let sent = Flood::start(
        &net.client,
        &[GOOD, HOST, &UDP.to_string(), &seconds.to_string(), "10.99"],
    )
    .sent();
    let elapsed = started.elapsed().as_secs_f64();
    let passed = reached.packets();
    eprintln!("spoofed flood: {sent} sent in {elapsed:.1} s, {passed} reached netfilter");
    // 65,536 spoofed sources, a few packets each: the per-source buckets
    // alone would admit nearly all of them.
    assert!(sent >= 20_000, "the flood must be large ({sent} sent)");
    let cap = TOTAL_BURST + (TOTAL_PER_SECOND as f64 * (elapsed + 1.0)) as u64;
    assert!(
        passed <= cap,
        "{passed} of {sent} spoofed packets reached netfilter in {elapsed:.1} s; the aggregate \
         allows at most {cap}"
    );
    assert!(passed > 0, "the aggregate admits its rate");

    let (max_entries, used) = pinned_map(&daemon.pin_dir, dockfw_common::RATE_SOURCES_MAP);
    assert_eq!(
        max_entries, SOURCES,
        "the per-source table has the configured size"
    );
    assert!(
        used <= SOURCES as usize,
        "{used} per-source buckets in a table of {SOURCES}"
    );
    let status = daemon.status();
    let dropped: u64 = status["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|port| port["port"] == "9000/udp")
        .flat_map(|port| port["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|rule| rule["counters"]["dropped"]["packets"].as_u64())
        .sum();
    assert!(
        dropped + passed >= sent * 9 / 10,
        "the drops are counted ({dropped} dropped, {passed} passed, {sent} sent): {status:#}"
    );
}

fn good_policy(blocklist: &Path) -> String {
    format!(
        r#"
[sets.blocklist]
file = "{}"

[[rules]]
name = "drop-listed"
ports = ["{WEB}/tcp"]
from = ["@blocklist"]
action = "drop"
"#,
        blocklist.display()
    )
}

/// The daemon's policy error after a bad change, with the policy in force
/// untouched (same generation, BAD still dropped, GOOD still served).
fn rejected(net: &Net, daemon: &Daemon, generation_before: u64, what: &str) -> String {
    let status = daemon.wait_status(what, Duration::from_secs(10), |status| {
        !last_error(status).is_empty()
    });
    assert_eq!(
        generation(&status),
        generation_before,
        "{what}: nothing may be applied: {status:#}"
    );
    assert_eq!(
        http_get(&net.client, BAD, HOST, WEB, TIMEOUT),
        None,
        "{what}: the policy in force stays (BAD dropped)"
    );
    assert!(
        http_get(&net.client, GOOD, HOST, WEB, TIMEOUT).is_some(),
        "{what}: and nothing more is dropped"
    );
    last_error(&status)
}

/// Restores the good policy and waits until it is active again.
fn restore(daemon: &Daemon, policy: &Path, blocklist: &Path) -> u64 {
    let before = generation(&daemon.status());
    write_atomically(blocklist, &format!("# bad actors\n{BAD}/32\n"));
    write_atomically(policy, &good_policy(blocklist));
    let status = daemon.wait_status("the good policy again", Duration::from_secs(10), |status| {
        last_error(status).is_empty() && generation(status) > before
    });
    generation(&status)
}

#[test]
fn policy_sources_that_go_bad_leave_the_policy_in_force() {
    let net = net("policy");
    let engine = DockerEngine::start(&net.host, "10.210.84.1/24");
    engine.run_container("web", &["8080:80"], WEB_CMD);
    let dir = TempDir::new("policy");
    let policy = dir.join("policy.toml");
    let blocklist = dir.join("blocklist.txt");
    write_atomically(&blocklist, &format!("# bad actors\n{BAD}/32\n"));
    write_atomically(&policy, &good_policy(&blocklist));
    // Room for 16 rule source prefixes (both generations) and one trie node
    // per generation: a long blocklist fits neither.
    let daemon = start_daemon(
        &net,
        &engine,
        &policy,
        &["--max-rule-sources", "16", "--max-source-trie-nodes", "2"],
    );
    let status = wait_for_port(&daemon, "8080/tcp");
    let mut applied = generation(&status);
    assert_eq!(http_get(&net.client, BAD, HOST, WEB, TIMEOUT), None);
    // The port's source table (the blocklist) missed the trie: still
    // enforced, and the status says why it is slower.
    assert!(
        status["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|warning| warning
                .as_str()
                .is_some_and(|text| text.contains("--max-source-trie-nodes"))),
        "status warns about the trie nodes: {status}"
    );

    // Malformed TOML.
    write_atomically(&policy, "[[rules]]\nname = \"x\"\naction = \"drop\n");
    let error = rejected(&net, &daemon, applied, "malformed policy");
    assert!(
        error.contains("policy.toml:3"),
        "names file and line: {error}"
    );
    applied = restore(&daemon, &policy, &blocklist);

    // A blocklist with junk lines.
    write_atomically(
        &blocklist,
        &format!("{BAD}/32\n10.1.2.3/33\nnot an address\n"),
    );
    let error = rejected(&net, &daemon, applied, "junk in the blocklist");
    assert!(
        error.contains("blocklist.txt:2"),
        "names the set file and line: {error}"
    );
    applied = restore(&daemon, &policy, &blocklist);

    // The policy file deleted.
    fs::remove_file(&policy).unwrap_or_else(|error| panic!("removing the policy: {error}"));
    let error = rejected(&net, &daemon, applied, "deleted policy");
    assert!(error.contains("policy.toml"), "names the file: {error}");
    applied = restore(&daemon, &policy, &blocklist);

    // Unreadable (a directory where the file was).
    fs::remove_file(&policy).unwrap_or_else(|error| panic!("removing the policy: {error}"));
    fs::create_dir(&policy).unwrap_or_else(|error| panic!("a directory: {error}"));
    let error = rejected(&net, &daemon, applied, "unreadable policy");
    assert!(error.contains("policy.toml"), "names the file: {error}");
    fs::remove_dir(&policy).unwrap_or_else(|error| panic!("removing the directory: {error}"));
    applied = restore(&daemon, &policy, &blocklist);

    // More prefixes than the source map holds: an error before anything is
    // written.
    let mut many = String::new();
    for index in 0..40 {
        many.push_str(&format!("198.18.{index}.0/24\n"));
    }
    many.push_str(&format!("{BAD}/32\n"));
    write_atomically(&blocklist, &many);
    let error = rejected(&net, &daemon, applied, "a blocklist beyond capacity");
    assert!(
        error.contains(dockfw_common::RULE_SOURCES_V4_MAP) && error.contains("--max-rule-sources"),
        "names the map and the knob: {error}"
    );
    restore(&daemon, &policy, &blocklist);
}

#[test]
fn capacities_are_configurable_and_checked_before_anything_is_applied() {
    let net = net("cap");
    let engine = DockerEngine::start(&net.host, "10.210.85.1/24");
    engine.run_container("web", &["8080:80"], WEB_CMD);
    let dir = TempDir::new("cap");
    let policy = dir.join("policy.toml");
    write_atomically(
        &policy,
        &format!("[[rules]]\nname = \"drop-bad\"\nfrom = [\"{BAD}/32\"]\naction = \"drop\"\n"),
    );
    let daemon = start_daemon(
        &net,
        &engine,
        &policy,
        &["--max-ports", "2", "--max-stats", "12"],
    );
    let status = wait_for_port(&daemon, "8080/tcp");
    let applied = generation(&status);
    let (max_entries, _) = pinned_map(&daemon.pin_dir, dockfw_common::POLICIES_MAP);
    assert_eq!(
        max_entries, 6,
        "--max-ports 2 sizes the policy array (2 + 1 per generation)"
    );

    // Two more published ports than the maps hold.
    engine.run_container("api", &["8081:80", "8082:80"], WEB_CMD);
    let status = daemon.wait_status("the capacity error", Duration::from_secs(10), |status| {
        !last_error(status).is_empty()
    });
    let error = last_error(&status);
    assert!(
        error.contains("--max-ports") || error.contains("--max-stats"),
        "names the limit to raise: {error}"
    );
    assert_eq!(generation(&status), applied, "nothing applied");
    assert_eq!(
        http_get(&net.client, BAD, HOST, WEB, TIMEOUT),
        None,
        "the policy in force stays"
    );
    assert!(http_get(&net.client, GOOD, HOST, WEB, TIMEOUT).is_some());
    // The new ports are not half-enforced: BAD reaches them through Docker.
    assert!(
        http_get(&net.client, BAD, HOST, 8081, TIMEOUT).is_some(),
        "a port that did not fit is left to netfilter, not half-applied"
    );
}
