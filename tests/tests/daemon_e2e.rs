//! `dockfw run` end to end, against a real dockerd in a namespace the test
//! creates, for native XDP, generic XDP and TC: HTTP through Docker's DNAT,
//! drop rules, bans that expire, rate limits, container restarts with a new
//! IP, policy edits (good and broken), a daemon restart under a stream from a
//! banned client, Docker's chains untouched, unpublished ports untouched.
//! Root tier: `cargo test -p dockfw-tests --test daemon_e2e -- --test-threads=1`.

use std::{
    fs,
    path::Path,
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
const HOST: &str = "10.78.0.1";
const GOOD: &str = "10.78.0.2";
const BAD: &str = "10.78.0.3";
const LIMITED: &str = "10.78.0.4";
const STREAMER: &str = "10.78.0.5";
const WEB: u16 = 8080;
const UDP: u16 = 9000;
const SSH: u16 = 2222;
const TIMEOUT: Duration = Duration::from_secs(2);
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn policy(blocked: &str) -> String {
    format!(
        r#"
[sets.bad]
cidrs = ["{blocked}/32"]

[[rules]]
name = "drop-bad"
ports = ["{WEB}/tcp"]
from = ["@bad"]
action = "drop"

[[rules]]
name = "limit-syn"
ports = ["{WEB}/tcp"]
from = ["{LIMITED}/32"]
syn_only = true
action = "rate-limit"
rate = "12/m"
burst = 3
per = "source"
"#
    )
}

fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, text)
        .unwrap_or_else(|error| panic!("writing {}: {error}", temporary.display()));
    fs::rename(&temporary, path)
        .unwrap_or_else(|error| panic!("renaming onto {}: {error}", path.display()));
}

/// `iptables-save` of Docker's tables without counters.
fn docker_chains(ns: &NetNs) -> String {
    let mut text = String::new();
    for table in ["filter", "nat"] {
        let output = ns.run_ok("iptables-save", "iptables-save", &["-t", table]);
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if line.starts_with('#') {
                continue;
            }
            // ":CHAIN POLICY [packets:bytes]" -> drop the counters.
            let line = match line.rsplit_once(" [") {
                Some((head, _)) if line.starts_with(':') => head,
                _ => line,
            };
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Packets from `src` that reached netfilter (counted by a raw PREROUTING
/// rule in the host namespace, which Docker does not use).
fn reached_netfilter(ns: &NetNs, src: &str) -> u64 {
    let output = ns.run_ok(
        "iptables -t raw -L",
        "iptables",
        &["-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x"],
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.contains(src))
        .and_then(|line| line.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no raw counter rule for {src}"))
}

fn rule_counter(status: &serde_json::Value, port: &str, rule: &str, outcome: &str) -> u64 {
    status["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["port"] == port && entry["family"] == "ipv4")
        .flat_map(|entry| entry["rules"].as_array().cloned().unwrap_or_default())
        .find(|entry| entry["name"] == rule)
        .and_then(|entry| entry["counters"][outcome]["packets"].as_u64())
        .unwrap_or(0)
}

fn generation(status: &serde_json::Value) -> u64 {
    status["policy_generation"].as_u64().unwrap_or(0)
}

fn scenario(mode: &str) {
    dockfw_tests::require_root("the daemon end-to-end test");
    let host = NetNs::new("e2e-host");
    let client = NetNs::new("e2e-client");
    let _veth = VethPair::new(
        &host,
        "eth-h",
        &["10.78.0.1/24"],
        &client,
        "eth-c",
        &[
            "10.78.0.2/24",
            "10.78.0.3/24",
            "10.78.0.4/24",
            "10.78.0.5/24",
        ],
    );
    let engine = DockerEngine::start(&host, "10.210.51.1/24");
    engine.run_container("web", &["8080:80", "9000:9000/udp"], WEB_CMD);
    let _ssh = TcpListener::start(&host, "0.0.0.0", SSH);
    let chains_before = docker_chains(&host);

    let dir = tempdir();
    let policy_path = dir.join("policy.toml");
    write_atomically(&policy_path, &policy(BAD));
    let policy_arg = policy_path.display().to_string();
    let docker_host = engine.host_url();
    let mut daemon = Daemon::start(
        BIN,
        &host,
        &[
            "--iface",
            "eth-h",
            "--mode",
            mode,
            "--policy",
            &policy_arg,
            "--docker-host",
            &docker_host,
            "--keep-on-exit",
        ],
    );
    let status = daemon.wait_status("the first policy", Duration::from_secs(30), |status| {
        generation(status) >= 1
            && status["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|port| port["port"] == "8080/tcp"))
    });
    let expected_mode = match mode {
        "native" => "xdp-native",
        "generic" => "xdp-generic",
        _ => "tc",
    };
    assert_eq!(status["interfaces"][0]["mode"], expected_mode, "{status:#}");

    // Allowed through Docker's DNAT; dropped by rule; counters move.
    let page = http_get(&client, GOOD, HOST, WEB, TIMEOUT);
    assert!(
        page.as_deref()
            .is_some_and(|page| page.contains("hello-dockfw")),
        "{mode}: good client: {page:?}"
    );
    assert_eq!(
        http_get(&client, BAD, HOST, WEB, TIMEOUT),
        None,
        "{mode}: bad client must get nothing"
    );
    let status = daemon.status();
    assert!(
        rule_counter(&status, "8080/tcp", "drop-bad", "dropped") >= 1,
        "{mode}: drop counter {status:#}"
    );
    assert!(
        tcp_connects(&client, BAD, HOST, SSH, TIMEOUT),
        "{mode}: an unpublished port is never touched"
    );

    // Docker's own chains are identical with the daemon running.
    assert_eq!(
        docker_chains(&host),
        chains_before,
        "{mode}: Docker's iptables chains changed"
    );

    // A ban takes effect and expires (timings generous: CI machines are
    // loaded, and a request to a banned client waits for its timeout).
    let banned_at = Instant::now();
    daemon.cli_ok(&["ban", &format!("{GOOD}/32"), "--for", "8s"]);
    assert!(
        daemon.cli_ok(&["bans"]).contains(GOOD),
        "{mode}: ban listed"
    );
    assert_eq!(
        http_get(&client, GOOD, HOST, WEB, TIMEOUT),
        None,
        "{mode}: banned client"
    );
    let expiry = Duration::from_secs(8);
    if let Some(left) = expiry.checked_sub(banned_at.elapsed()) {
        thread::sleep(left + Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(&client, GOOD, HOST, WEB, TIMEOUT).is_none() {
        assert!(
            Instant::now() < deadline,
            "{mode}: the ban expired, but GOOD is still dropped"
        );
    }
    assert!(
        !daemon.cli_ok(&["bans"]).contains(GOOD),
        "{mode}: expired ban no longer listed"
    );

    // A rate limit admits its burst (3 SYNs), then its rate (one per 5 s:
    // slow enough that a loaded machine cannot refill it within the burst).
    let burst: Vec<bool> = (0..4)
        .map(|_| tcp_connects(&client, LIMITED, HOST, WEB, Duration::from_millis(500)))
        .collect();
    assert_eq!(burst, [true, true, true, false], "{mode}: burst of 3");
    thread::sleep(Duration::from_millis(5500));
    assert!(
        tcp_connects(&client, LIMITED, HOST, WEB, TIMEOUT),
        "{mode}: refilled at the rate"
    );

    // A container restart with a new IP keeps its rules.
    let old_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"].clone();
    engine.docker_ok("stop web", &["stop", "-t", "1", "web"]);
    engine.run_container("filler", &[], &["sleep", "600"]);
    engine.docker_ok("start web", &["start", "web"]);
    let new_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"].clone();
    assert_ne!(
        old_ip, new_ip,
        "the test needs the container to change address"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(&client, GOOD, HOST, WEB, TIMEOUT).is_none() {
        assert!(
            Instant::now() < deadline,
            "{mode}: web unreachable after its restart\n{}",
            daemon.log()
        );
    }
    assert_eq!(
        http_get(&client, BAD, HOST, WEB, TIMEOUT),
        None,
        "{mode}: rules follow the restarted container"
    );

    // A policy edit applies as a whole: now GOOD is blocked and BAD is not.
    let before = generation(&daemon.status());
    write_atomically(&policy_path, &policy(GOOD));
    daemon.wait_status("the edited policy", Duration::from_secs(5), |status| {
        generation(status) > before
    });
    assert_eq!(
        http_get(&client, GOOD, HOST, WEB, TIMEOUT),
        None,
        "{mode}: edited policy blocks GOOD"
    );
    assert!(
        http_get(&client, BAD, HOST, WEB, TIMEOUT).is_some(),
        "{mode}: edited policy lets BAD in"
    );

    // A broken edit is rejected with file:line; the policy in force stays.
    write_atomically(
        &policy_path,
        "[[rules]]\nname = \"broken\"\naction = \"explode\"\n",
    );
    let status = daemon.wait_status("the rejected edit", Duration::from_secs(5), |status| {
        !status["policy"]["last_error"].is_null()
    });
    let error = status["policy"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("policy.toml:3"),
        "{mode}: error names file:line: {error}"
    );
    assert_eq!(
        http_get(&client, GOOD, HOST, WEB, TIMEOUT),
        None,
        "{mode}: old policy still enforced"
    );

    // Restart the daemon under a steady stream from a banned client: not one
    // packet reaches netfilter.
    daemon.cli_ok(&["ban", &format!("{STREAMER}/32")]);
    host.run_ok(
        "count the streamer",
        "iptables",
        &[
            "-t",
            "raw",
            "-I",
            "PREROUTING",
            "-s",
            STREAMER,
            "-j",
            "ACCEPT",
        ],
    );
    let stream = {
        let client = client.path();
        thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0u32;
            while start.elapsed() < Duration::from_secs(6) {
                let output = std::process::Command::new("nsenter")
                    .arg(format!("--net={}", client.display()))
                    .args(["--", "python3", "-c", "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind((sys.argv[1],0))\nfor i in range(500): s.sendto(b'x',(sys.argv[2],int(sys.argv[3])))", STREAMER, HOST, &UDP.to_string()])
                    .output();
                if output.is_ok_and(|output| output.status.success()) {
                    sent += 500;
                }
            }
            sent
        })
    };
    thread::sleep(Duration::from_millis(500));
    daemon.stop();
    if mode == "generic" {
        // Upgrading from a version whose local-address set had another
        // layout: the new daemon replaces that map, and the programs still
        // attached must not lose the host's addresses meanwhile (the stream
        // goes to a wildcard port).
        dockfw_tests::pin_foreign_map(
            &daemon
                .pins()
                .join("maps")
                .join(dockfw_common::LOCAL_ADDRS_MAP),
            "array",
            1552,
            2,
            dockfw_common::LOCAL_ADDRS_MAP,
        );
    }
    thread::sleep(Duration::from_millis(500));
    daemon.restart();
    daemon.wait_status("the restarted daemon", Duration::from_secs(30), |status| {
        generation(status) > 0
    });
    let sent = stream.join().unwrap_or(0);
    assert!(sent >= 1000, "the stream must have run ({sent} sent)");
    assert_eq!(
        reached_netfilter(&host, STREAMER),
        0,
        "{mode}: packets leaked across the restart"
    );
    let status = daemon.status();
    assert_eq!(
        status["interfaces"][0]["adopted"], true,
        "{mode}: the link was re-adopted: {status:#}"
    );
    assert!(
        daemon.cli_ok(&["bans"]).contains(STREAMER),
        "{mode}: bans survive the restart"
    );
    assert!(
        status["local_addresses"]
            .as_array()
            .is_some_and(|list| list.iter().any(|net| net == "10.78.0.1/32")),
        "{mode}: the host's addresses are in force after the restart: {status:#}"
    );
    host.run_ok(
        "remove the counter",
        "iptables",
        &[
            "-t",
            "raw",
            "-D",
            "PREROUTING",
            "-s",
            STREAMER,
            "-j",
            "ACCEPT",
        ],
    );
    send_udp(&client, GOOD, HOST, UDP, 1);
    drop(daemon);
    drop(engine);
    let _ = fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dfw-e2e-{}-{}", std::process::id(), rand_suffix()));
    fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

#[test]
fn native_xdp_end_to_end() {
    scenario("native");
}

#[test]
fn generic_xdp_end_to_end() {
    scenario("generic");
}

#[test]
fn tc_end_to_end() {
    scenario("tc");
}
