//! Observability end to end, against a `dockfw run` daemon with a real
//! dockerd in a namespace the test creates:
//!
//! - `/metrics` passes `promtool check metrics`, answers 404 elsewhere, and a
//!   real Prometheus server scraping it reports exactly the packets the test
//!   had dropped (and passed);
//! - a flood produces sampled events within the per-rule budget, and
//!   `dockfw events --json` prints them; `dockfw top` shows the port and
//!   rule;
//! - the batched counter read agrees with one lookup per counter.
//!
//! Root tier: `cargo test -p dockfw-tests --test observability -- --test-threads=1`.

use std::{
    fs,
    io::Read as _,
    path::PathBuf,
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use dockfw::{
    dataplane::{Capacities, Dataplane, LoadOptions},
    metrics::percpu::{read_batched, read_per_element},
};
use dockfw_common::Counter;
use dockfw_tests::{
    daemon::Daemon,
    docker::DockerEngine,
    netns::{NetNs, VethPair},
    prometheus::{Prometheus, http_get, promtool_check},
    traffic::send_udp,
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");
const HOST: &str = "10.76.0.1";
const GOOD: &str = "10.76.0.2";
const BAD: &str = "10.76.0.3";
const UDP: u16 = 9000;
const METRICS: &str = "127.0.0.1:9469";
const PROMETHEUS: &str = "127.0.0.1:9090";
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

/// Everything one scenario runs against; drop order is field order.
struct Setup {
    daemon: Daemon,
    _engine: DockerEngine,
    _veth: VethPair,
    client: NetNs,
    host: NetNs,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn setup(name: &str, bip: &str, extra: &[&str]) -> Setup {
    dockfw_tests::require_root("the observability test");
    let host = NetNs::new(&format!("{name}-host"));
    let client = NetNs::new(&format!("{name}-client"));
    let veth = VethPair::new(
        &host,
        "eth-h",
        &[&format!("{HOST}/24")],
        &client,
        "eth-c",
        &[&format!("{GOOD}/24"), &format!("{BAD}/24")],
    );
    let engine = DockerEngine::start(&host, bip);
    engine.run_container("web", &["8080:80", "9000:9000/udp"], WEB_CMD);
    let dir = std::env::temp_dir().join(format!("dfw-obs-{}-{name}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    let policy = dir.join("policy.toml");
    fs::write(
        &policy,
        format!(
            "[[rules]]\nname = \"drop-bad\"\nports = [\"{UDP}/udp\"]\nfrom = [\"{BAD}/32\"]\n\
             action = \"drop\"\n"
        ),
    )
    .unwrap_or_else(|error| panic!("writing {}: {error}", policy.display()));
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
        "--metrics-addr",
        METRICS,
    ];
    args.extend_from_slice(extra);
    let daemon = Daemon::start(BIN, &host, &args);
    daemon.wait_status(
        "the policy on 9000/udp",
        Duration::from_secs(30),
        |status| {
            status["ports"].as_array().is_some_and(|ports| {
                ports.iter().any(|port| {
                    port["port"] == "9000/udp"
                        && port["rules"].as_array().is_some_and(|rules| {
                            rules.iter().any(|rule| rule["name"] == "drop-bad")
                        })
                })
            })
        },
    );
    Setup {
        daemon,
        _engine: engine,
        _veth: veth,
        client,
        host,
        dir,
    }
}

fn scrape(setup: &Setup) -> String {
    let (status, body) = http_get(&setup.host, METRICS, "/metrics", None);
    assert_eq!(status, 200, "GET /metrics: {body}");
    body
}

/// The value of the one series of `name` whose line carries every label
/// in `labels` (`key="value"` pairs), if there is one.
fn series_value(text: &str, name: &str, labels: &[&str]) -> Option<u64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn prometheus_scrapes_exactly_the_packets_dropped() {
    let setup = setup("obs-prom", "10.210.70.1/24", &[]);
    const DROPPED: u32 = 400;
    const PASSED: u32 = 60;

    // Before any traffic: the series exist at zero, so rate() has a start.
    let text = scrape(&setup);
    promtool_check(&text);
    let drop_labels = [
        "reason=\"rule\"",
        "published_port=\"9000/udp\"",
        "container=\"web\"",
        "rule=\"drop-bad\"",
    ];
    assert_eq!(
        series_value(&text, "dockfw_dropped_packets_total", &drop_labels),
        Some(0),
        "{text}"
    );

    send_udp(&setup.client, BAD, HOST, UDP, DROPPED);
    send_udp(&setup.client, GOOD, HOST, UDP, PASSED);

    let text = scrape(&setup);
    promtool_check(&text);
    assert_eq!(
        series_value(&text, "dockfw_dropped_packets_total", &drop_labels),
        Some(u64::from(DROPPED)),
        "{text}"
    );
    assert!(
        series_value(&text, "dockfw_dropped_bytes_total", &drop_labels)
            .is_some_and(|bytes| bytes >= u64::from(DROPPED) * 42),
        "{text}"
    );
    for line in [
        "dockfw_published_ports ",
        "dockfw_policy_generation ",
        "dockfw_bans 0",
        "dockfw_attached_info{iface=\"eth-h\",mode=\"xdp-native\"} 1",
        "dockfw_build_info{version=",
        "dockfw_map_capacity{map=\"stats\"}",
        "dockfw_map_entries{map=\"policies\"}",
        "dockfw_map_capacity{map=\"source_trie_nodes\"} 2047",
        "dockfw_map_entries{map=\"ban24_slots\"} 0",
        "dockfw_policy_reload_errors_total 0",
        "dockfw_docker_sync_errors_total ",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(
        !text.contains(GOOD) && !text.contains(BAD),
        "no series names a source address"
    );
    let (status, _) = http_get(&setup.host, METRICS, "/", None);
    assert_eq!(status, 404, "only /metrics is served");
    let (status, om) = http_get(
        &setup.host,
        METRICS,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert_eq!(status, 200);
    assert!(om.ends_with("# EOF\n"), "OpenMetrics on request");

    // A real Prometheus scrapes the daemon and its query returns exactly
    // what was dropped and passed.
    let prometheus = Prometheus::start(&setup.host, METRICS, PROMETHEUS);
    let dropped = "sum(dockfw_dropped_packets_total{reason=\"rule\",published_port=\"9000/udp\",\
                   rule=\"drop-bad\"})";
    let passed =
        "sum(dockfw_passed_packets_total{reason=\"unmatched\",published_port=\"9000/udp\"})";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = (
            prometheus.value(&setup.host, dropped),
            prometheus.value(&setup.host, passed),
        );
        if got == (Some(f64::from(DROPPED)), Some(f64::from(PASSED))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus reports {got:?}, expected ({DROPPED}, {PASSED})\n--- prometheus ---\n{}\n\
             --- daemon ---\n{}",
            prometheus.log(),
            setup.daemon.log()
        );
        thread::sleep(Duration::from_millis(500));
    }
    let up = prometheus.value(&setup.host, "up{job=\"dockfw\"}");
    assert_eq!(up, Some(1.0), "the scrape itself succeeds");
}

#[test]
fn a_flood_yields_events_within_the_budget_and_dockfw_events_prints_them() {
    const PER_SECOND: u32 = 5;
    let per_second = PER_SECOND.to_string();
    let setup = setup(
        "obs-events",
        "10.210.71.1/24",
        &["--events-per-second", &per_second],
    );

    // A live stream, started before the flood (plus --replay, so an event
    // sampled before the subscription is not missed).
    let mut events = std::process::Command::new(BIN)
        .args(["events", "--json", "--replay", "--run-dir"])
        .arg(&setup.daemon.run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting dockfw events: {error}"));
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    send_udp(&setup.client, BAD, HOST, UDP, 3000);
    let flood = started.elapsed();
    thread::sleep(Duration::from_millis(700));
    let _ = events.kill();
    let output = events
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for dockfw events: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("event line {line:?} is not JSON: {error}"))
        })
        .collect();

    // The budget: a burst of one second's worth, then PER_SECOND per
    // second, for the one statistic (rule on port) the flood hits.
    let budget = f64::from(PER_SECOND) * (1.0 + flood.as_secs_f64()) + 1.0;
    assert!(
        !lines.is_empty(),
        "a flood of 3000 drops yields events\nstderr: {}\n--- daemon ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        setup.daemon.log()
    );
    assert!(
        lines.len() as f64 <= budget,
        "{} events for a {flood:?} flood exceed the budget of {budget}:\n{stdout}",
        lines.len()
    );
    for event in &lines {
        assert_eq!(event["source"], BAD, "{event}");
        assert_eq!(event["destination"], HOST, "{event}");
        assert_eq!(event["destination_port"], UDP, "{event}");
        assert_eq!(event["published_port"], "9000/udp", "{event}");
        assert_eq!(event["container"], "web", "{event}");
        assert_eq!(event["rule"], "drop-bad", "{event}");
        assert_eq!(event["reason"], "rule", "{event}");
        assert_eq!(event["outcome"], "drop", "{event}");
        assert_eq!(event["protocol"], "udp", "{event}");
        assert_eq!(event["iface"], "eth-h", "{event}");
    }

    // The counters saw every packet; the events are a sample of them.
    let text = scrape(&setup);
    assert_eq!(
        series_value(
            &text,
            "dockfw_dropped_packets_total",
            &["rule=\"drop-bad\"", "published_port=\"9000/udp\""]
        ),
        Some(3000)
    );
    assert_eq!(
        series_value(&text, "dockfw_events_sampled_total", &[]).or_else(|| {
            text.lines()
                .find(|line| line.starts_with("dockfw_events_sampled_total "))
                .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        }),
        Some(lines.len() as u64),
        "every sampled event reached the stream"
    );

    // Replay and --count: the buffered events, then exit on its own.
    let replayed = setup
        .daemon
        .cli_ok(&["events", "--json", "--replay", "--count", "2"]);
    assert_eq!(replayed.lines().count(), 2, "{replayed}");
    let human = setup.daemon.cli_ok(&["events", "--replay", "--count", "1"]);
    assert!(
        human.contains(&format!("{BAD}:")) && human.contains("-> 9000/udp (web) rule=drop-bad"),
        "{human}"
    );

    // top: one batch frame names the port, the rule and the heavy source.
    let mut top = std::process::Command::new(BIN)
        .args([
            "top",
            "--batch",
            "--iterations",
            "1",
            "--interval",
            "2s",
            "--run-dir",
        ])
        .arg(&setup.daemon.run_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting dockfw top: {error}"));
    thread::sleep(Duration::from_millis(300));
    send_udp(&setup.client, BAD, HOST, UDP, 500);
    let mut frame = String::new();
    if let Some(mut stdout) = top.stdout.take() {
        let _ = stdout.read_to_string(&mut frame);
    }
    let status = top
        .wait()
        .unwrap_or_else(|error| panic!("waiting for dockfw top: {error}"));
    assert!(status.success(), "dockfw top failed:\n{frame}");
    for needle in [
        "9000/udp web",
        "drop-bad  (9000/udp)",
        BAD,
        "HEAVIEST SOURCES",
    ] {
        assert!(frame.contains(needle), "{needle:?} missing from\n{frame}");
    }
}

#[test]
fn the_batched_counter_read_agrees_with_one_lookup_per_counter() {
    dockfw_tests::require_root("loading the data plane");
    let capacities = Capacities {
        stats: 12_000,
        ..Capacities::default()
    };
    let mut dataplane = Dataplane::load(&LoadOptions {
        capacities,
        ..LoadOptions::default()
    })
    .unwrap_or_else(|error| panic!("loading: {}", dockfw_tests::chain(&error)));
    let cpus = aya::util::nr_cpus().unwrap_or_else(|(path, error)| panic!("{path}: {error}"));
    let len = dataplane.maps.stats.len();
    // Scattered values across several batch chunks, different per CPU.
    for index in (0..len).step_by(997).chain([len - 1]) {
        let values: Vec<Counter> = (0..cpus as u64)
            .map(|cpu| Counter {
                packets: u64::from(index) * 3 + cpu,
                bytes: u64::from(index) * 100 + cpu * 7,
            })
            .collect();
        let values = aya::maps::PerCpuValues::try_from(values)
            .unwrap_or_else(|error| panic!("per-CPU values: {error}"));
        dataplane
            .maps
            .stats
            .set(index, values, 0)
            .unwrap_or_else(|error| panic!("seeding counter {index}: {error}"));
    }
    for count in [0, 1, 4, 16_384, 16_385, 40_000, len] {
        let batched = read_batched(&dataplane.maps.stats, count)
            .unwrap_or_else(|error| panic!("batched read of {count}: {error}"));
        let single = read_per_element(&dataplane.maps.stats, count)
            .unwrap_or_else(|error| panic!("per-element read of {count}: {error}"));
        assert_eq!(batched.len(), count.min(len) as usize);
        assert_eq!(batched, single, "reads of {count} counters differ");
    }
    let all = read_batched(&dataplane.maps.stats, len).unwrap_or_else(|error| panic!("{error}"));
    let cpus = cpus as u64;
    assert_eq!(all[997].packets, 997 * 3 * cpus + cpus * (cpus - 1) / 2);
}
