//! `dockfw trace`: verdicts from the real data plane against live pinned
//! maps, and no side effects at all (counters, rate-limit buckets,
//! fragment tracking, event budgets, the event ring). Then end to end: a
//! daemon with a real dockerd names the rule, its policy-file line, the
//! published port and container; captures are replayed; without a daemon
//! the names come from its state file.
//! Root tier: `cargo test -p dockfw-tests --test trace -- --test-threads=1`.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use dockfw::{
    bans::{BanSet, NEVER},
    compile::{CompileInput, StatRegistry, compile},
    dataplane::{
        Dataplane, GenerationWriter, LoadOptions,
        counters::{read_globals, read_stat},
        testrun::{Program, run},
    },
    model::{
        Action, Family, FragmentAction, Per, Policy, PortSpec, Proto, RateLimit, Rule, RuleOrigin,
        SourceMatch,
    },
    trace::Tracer,
};
use dockfw_common::{Config, TraceRecord, reason, trace_flag, xdp_verdict};
use dockfw_tests::{
    daemon::Daemon,
    docker::DockerEngine,
    frame::{ACK, Frame, SYN},
    netns::{NetNs, VethPair},
    runner::{published, tcp4},
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");

/// A data plane pinned under its own directory, removed on drop.
struct Pinned {
    dir: PathBuf,
    dataplane: Dataplane,
    registry: StatRegistry,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn rule(name: &str, ports: &[&str], action: Action) -> Rule {
    let origin = RuleOrigin::PolicyFile {
        path: "trace.toml".into(),
        line: 1,
    };
    let mut rule = Rule::new(name, origin, action);
    rule.ports.ports = ports
        .iter()
        .map(|spec| spec.parse::<PortSpec>().unwrap())
        .collect();
    rule
}

fn limit(burst: u32, per: Per) -> Action {
    Action::RateLimit(RateLimit {
        rate: "1/h".parse().unwrap(),
        burst,
        per,
        total: None,
    })
}

/// 8080/tcp: drop 198.51.100.0/24, then a per-source limit (1/h, burst 2);
/// 8081/tcp: a per-port limit (1/h, burst 2); 5353/udp: no rules;
/// non-first fragments are dropped; 203.0.113.0/24 is banned; drop events
/// are on (so a real drop would spend an event budget and fill the ring).
fn pinned_dataplane() -> Pinned {
    dockfw_tests::require_root("loading a pinned data plane");
    let dir = PathBuf::from(format!("/sys/fs/bpf/dfw-trace-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let options = LoadOptions {
        pin_dir: Some(dir.clone()),
        ..LoadOptions::default()
    };
    let dataplane = Dataplane::load(&options)
        .unwrap_or_else(|error| panic!("loading: {}", dockfw_tests::chain(&error)));
    let mut pinned = Pinned {
        dir,
        dataplane,
        registry: StatRegistry::default(),
    };
    let config = Config {
        event_interval_ns: 1_000_000,
        event_burst_ns: 1_000_000_000,
        ..Config::default()
    };
    pinned.dataplane.maps.config.set(0, config, 0).unwrap();

    let mut drop_bad = rule("drop-bad", &["8080/tcp"], Action::Drop);
    drop_bad.sources = SourceMatch {
        from: Some(vec!["198.51.100.0/24".parse().unwrap()]),
        not_from: vec![],
    };
    let policy = Policy {
        rules: vec![
            drop_bad,
            rule("limit-source", &["8080/tcp"], limit(2, Per::Source)),
            rule("limit-port", &["8081/tcp"], limit(2, Per::Port)),
        ],
        fragments: FragmentAction::Drop,
    };
    let ports = [
        tcp4(8080, "web"),
        tcp4(8081, "api"),
        published(Family::V4, Proto::Udp, None, 5353, "dns"),
    ];
    let ifaces = BTreeMap::new();
    let input = CompileInput {
        policy: &policy,
        ports: &ports,
        ifaces: &ifaces,
        audit: false,
        stats_capacity: pinned.dataplane.maps.capacities().unwrap().stats,
    };
    let compiled = compile(&input, &mut pinned.registry).unwrap();
    let fresh = pinned.registry.take_fresh();
    GenerationWriter::new()
        .apply(&mut pinned.dataplane.maps, &compiled, &fresh)
        .unwrap();
    let mut bans = BanSet::new();
    bans.insert("203.0.113.0/24".parse().unwrap(), NEVER);
    dockfw::dataplane::bans::write_bans(&mut pinned.dataplane.maps, &BanSet::new(), &bans).unwrap();
    pinned
}

/// Everything a packet could change in the shared maps.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    stats: Vec<(u32, String)>,
    globals: String,
    rate_sources: Vec<String>,
    rate_aggregate: Vec<(u32, u64)>,
    frags: Vec<String>,
    event_budget: Vec<(u32, u64)>,
}

/// The non-zero elements of an array map, with their index.
fn nonzero(
    values: impl Iterator<Item = (usize, Result<u64, aya::maps::MapError>)>,
) -> Vec<(u32, u64)> {
    values
        .map(|(index, value)| (index as u32, value.unwrap()))
        .filter(|(_, value)| *value != 0)
        .collect()
}

fn snapshot(pinned: &Pinned) -> Snapshot {
    let maps = &pinned.dataplane.maps;
    let mut rate_sources: Vec<String> = maps
        .rate_sources
        .iter()
        .map(|entry| format!("{:?}", entry.unwrap()))
        .collect();
    rate_sources.sort();
    let mut frags: Vec<String> = maps
        .frags
        .iter()
        .map(|entry| format!("{:?}", entry.unwrap()))
        .collect();
    frags.sort();
    Snapshot {
        stats: pinned
            .registry
            .iter()
            .map(|(_, id)| (id, format!("{:?}", read_stat(maps, id).unwrap())))
            .collect(),
        globals: format!("{:?}", read_globals(maps).unwrap()),
        rate_sources,
        rate_aggregate: nonzero(maps.rate_aggregate.iter().enumerate()),
        frags,
        event_budget: nonzero(maps.event_budget.iter().enumerate()),
    }
}

/// Events waiting in the ring.
fn drain_events(pinned: &mut Pinned) -> usize {
    let ring = pinned.dataplane.maps.events.as_mut().unwrap();
    let mut count = 0;
    while ring.next().is_some() {
        count += 1;
    }
    count
}

/// Runs a frame through the enforcing (non-trace) instance.
fn enforce(pinned: &mut Pinned, frame: &Frame) -> u32 {
    run(&mut pinned.dataplane, Program::Xdp, &frame.build(), None, 1)
        .unwrap()
        .verdict
}

fn traced(tracer: &mut Tracer, frame: &Frame) -> TraceRecord {
    tracer
        .trace(&frame.build(), None)
        .unwrap_or_else(|error| panic!("trace: {}", dockfw_tests::chain(&error)))
}

#[test]
fn a_trace_reads_the_live_maps_and_changes_nothing() {
    let mut pinned = pinned_dataplane();
    let limited = Frame::tcp("192.0.2.50", 40000, "192.0.2.1", 8080, SYN);
    let per_port = Frame::tcp("192.0.2.51", 40000, "192.0.2.1", 8081, SYN);
    // The enforcing instance spends one token of each bucket: a source
    // bucket and an aggregate bucket exist, each with one token left.
    assert_eq!(enforce(&mut pinned, &limited), xdp_verdict::PASS);
    assert_eq!(enforce(&mut pinned, &per_port), xdp_verdict::PASS);
    let first = Frame::tcp("192.0.2.60", 40000, "192.0.2.1", 8080, SYN).fragment(0, true, 77);
    assert_eq!(enforce(&mut pinned, &first), xdp_verdict::PASS);
    drain_events(&mut pinned);
    let before = snapshot(&pinned);
    assert!(!before.rate_sources.is_empty() && !before.rate_aggregate.is_empty());
    assert_eq!(
        before.frags.len(),
        1,
        "the enforcer remembered the first fragment"
    );

    let mut tracer = Tracer::open(&pinned.dir)
        .unwrap_or_else(|error| panic!("opening the tracer: {}", dockfw_tests::chain(&error)));
    let cases: Vec<(&str, Frame, u32, u8, u32)> = vec![
        (
            "drop rule",
            Frame::tcp("198.51.100.7", 40000, "192.0.2.1", 8080, SYN),
            xdp_verdict::DROP,
            reason::RULE_DROP,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED | trace_flag::SYN,
        ),
        (
            "ban",
            Frame::tcp("203.0.113.9", 40000, "192.0.2.1", 8080, ACK),
            xdp_verdict::DROP,
            reason::BANNED,
            trace_flag::PUBLISHED | trace_flag::BANNED,
        ),
        (
            "per-source limit with a token left",
            limited.clone(),
            xdp_verdict::PASS,
            reason::RATE_LIMIT_PASS,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED | trace_flag::SYN,
        ),
        (
            "per-port limit with a token left",
            per_port.clone(),
            xdp_verdict::PASS,
            reason::RATE_LIMIT_PASS,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED | trace_flag::SYN,
        ),
        (
            "unpublished port",
            Frame::tcp("198.51.100.7", 40000, "192.0.2.1", 22, SYN),
            xdp_verdict::PASS,
            reason::NOT_PUBLISHED,
            trace_flag::SYN,
        ),
        (
            "published UDP, no rule",
            Frame::udp("198.51.100.7", 40000, "192.0.2.1", 5353),
            xdp_verdict::PASS,
            reason::UNMATCHED,
            trace_flag::PUBLISHED,
        ),
        (
            "a first fragment (not remembered by a trace)",
            Frame::tcp("192.0.2.61", 40000, "192.0.2.1", 8080, SYN).fragment(0, true, 78),
            xdp_verdict::PASS,
            reason::RATE_LIMIT_PASS,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED | trace_flag::SYN,
        ),
        (
            "a later fragment the enforcer tracked: the port drops fragments",
            Frame::tcp("192.0.2.60", 40000, "192.0.2.1", 8080, 0).fragment(10, false, 77),
            xdp_verdict::DROP,
            reason::FRAGMENT,
            trace_flag::PUBLISHED | trace_flag::FRAGMENT,
        ),
    ];
    // Several rounds: a trace that spent a token would turn the limits to
    // drops by the second round.
    for round in 0..4 {
        for (name, frame, verdict, code, flags) in &cases {
            let record = traced(&mut tracer, frame);
            assert_eq!(
                (record.verdict, record.reason, record.flags),
                (*verdict, u32::from(*code), *flags),
                "round {round}: {name}: {record:?}"
            );
        }
    }
    let later = Frame::tcp("192.0.2.61", 40000, "192.0.2.1", 8080, 0).fragment(10, false, 78);
    assert_eq!(
        traced(&mut tracer, &later).reason,
        u32::from(reason::FRAGMENT_UNTRACKED),
        "the traced first fragment was not remembered"
    );
    assert_eq!(snapshot(&pinned), before, "a trace changed the shared maps");
    assert_eq!(drain_events(&mut pinned), 0, "a trace emitted events");

    // The trace reads the buckets: once the enforcer spends the last
    // tokens, the trace reports the limit as exceeded.
    assert_eq!(enforce(&mut pinned, &limited), xdp_verdict::PASS);
    assert_eq!(enforce(&mut pinned, &per_port), xdp_verdict::PASS);
    for frame in [&limited, &per_port] {
        let record = traced(&mut tracer, frame);
        assert_eq!(
            (record.verdict, record.reason),
            (xdp_verdict::DROP, u32::from(reason::RATE_LIMIT_DROP)),
            "{record:?}"
        );
    }
    // And the snapshot sees what a real packet changes (the check above
    // is not vacuous).
    let after_enforcing = snapshot(&pinned);
    assert_ne!(after_enforcing.rate_sources, before.rate_sources);
    assert_ne!(after_enforcing.stats, before.stats);
    let drop = Frame::tcp("198.51.100.7", 40000, "192.0.2.1", 8080, SYN);
    assert_eq!(enforce(&mut pinned, &drop), xdp_verdict::DROP);
    assert!(drain_events(&mut pinned) >= 1, "a real drop emits an event");
}

#[test]
fn a_trace_refuses_a_pin_directory_without_maps() {
    dockfw_tests::require_root("loading a trace instance");
    let dir = PathBuf::from(format!("/sys/fs/bpf/dfw-trace-none-{}", std::process::id()));
    let error = Tracer::open(&dir).err().expect("no pins, no trace");
    assert!(
        dockfw_tests::chain(&error).contains("no pinned dockfw maps"),
        "{}",
        dockfw_tests::chain(&error)
    );
    assert!(!dir.exists(), "a failed trace created {}", dir.display());
}

const HOST: &str = "10.79.0.1";
const GOOD: &str = "10.79.0.2";
const BAD: &str = "10.79.0.3";
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];
const POLICY: &str = r#"# trace test policy
[sets.bad]
cidrs = ["10.79.0.3/32"]

[[rules]]
name = "drop-bad"
ports = ["8080/tcp"]
from = ["@bad"]
action = "drop"
"#;

/// A classic pcap (Ethernet, microseconds) of `frames`, 1 ms apart.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut file = Vec::new();
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        file.extend_from_slice(&word.to_le_bytes());
    }
    for (index, frame) in frames.iter().enumerate() {
        for word in [
            1_700_000_000u32,
            index as u32 * 1000,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        file.extend_from_slice(frame);
    }
    fs::write(path, file).unwrap();
}

fn trace_json(daemon: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["trace", "--json"];
    all.extend(args);
    let text = daemon.cli_ok(&all);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("trace JSON: {error}\n{text}"))
}

fn counters(status: &serde_json::Value) -> String {
    status["ports"].to_string()
}

#[test]
fn dockfw_trace_names_rule_port_and_container_without_side_effects() {
    dockfw_tests::require_root("the trace end-to-end test");
    let host = NetNs::new("trace-host");
    let client = NetNs::new("trace-client");
    let _veth = VethPair::new(
        &host,
        "eth-h",
        &["10.79.0.1/24"],
        &client,
        "eth-c",
        &["10.79.0.2/24", "10.79.0.3/24"],
    );
    let engine = DockerEngine::start(&host, "10.210.91.1/24");
    engine.run_container("web", &["8080:80"], WEB_CMD);
    let container_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = std::env::temp_dir().join(format!("dfw-trace-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    fs::write(&policy, POLICY).unwrap();
    let policy_arg = policy.display().to_string();
    let docker_host = engine.host_url();
    let mut daemon = Daemon::start(
        BIN,
        &host,
        &[
            "--iface",
            "eth-h",
            "--mode",
            "native",
            "--policy",
            &policy_arg,
            "--docker-host",
            &docker_host,
        ],
    );
    daemon.wait_status(
        "the policy with port 8080",
        Duration::from_secs(30),
        |status| {
            status["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|port| port["port"] == "8080/tcp"))
        },
    );
    let before = counters(&daemon.status());

    let bad_to = format!("{HOST}:8080/tcp");
    let trace = trace_json(&daemon, &["--from", BAD, "--to", &bad_to, "--syn"]);
    assert_eq!(trace["verdict"], "drop", "{trace:#}");
    assert_eq!(trace["reason"], "rule", "{trace:#}");
    assert_eq!(trace["rule"]["name"], "drop-bad", "{trace:#}");
    assert_eq!(
        trace["rule"]["origin"],
        format!("{}:5", policy.display()),
        "the rule's policy-file line: {trace:#}"
    );
    assert_eq!(trace["port"]["published"], "8080/tcp", "{trace:#}");
    assert_eq!(trace["port"]["container"], "web", "{trace:#}");
    assert_eq!(trace["port"]["container_port"], 80, "{trace:#}");
    assert_eq!(trace["next"], serde_json::Value::Null, "{trace:#}");

    let good = trace_json(
        &daemon,
        &["--from", &format!("{GOOD}:5555"), "--to", &bad_to],
    );
    assert_eq!(good["verdict"], "pass", "{good:#}");
    assert_eq!(good["reason"], "unmatched", "{good:#}");
    let path = good["next"]["path"].as_str().unwrap_or_default();
    assert!(
        path.contains(&format!("DNAT to {container_ip}:80")),
        "{good:#}"
    );
    let ssh = trace_json(&daemon, &["--from", BAD, "--to", &format!("{HOST}:22/tcp")]);
    assert_eq!(
        (ssh["verdict"].as_str(), ssh["reason"].as_str()),
        (Some("pass"), Some("not_published")),
        "{ssh:#}"
    );

    // The text form, with the interface, from inside the host namespace
    // (interface indexes are per namespace).
    let output = host.run_ok(
        "trace --iface",
        BIN,
        &[
            "trace",
            "--from",
            BAD,
            "--to",
            &bad_to,
            "--iface",
            "eth-h",
            "--run-dir",
            &daemon.run_dir.display().to_string(),
            "--pin-dir",
            &daemon.pin_dir.display().to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("verdict: DROP"), "{text}");
    assert!(text.contains("-> container web"), "{text}");
    assert!(!text.contains("note:"), "{text}");

    // A capture: three bad SYNs, two good ACKs, one to SSH.
    let pcap = dir.join("attack.pcap");
    let bad = Frame::tcp(BAD, 40000, HOST, 8080, SYN).build();
    let good = Frame::tcp(GOOD, 40001, HOST, 8080, ACK).build();
    let other = Frame::tcp(BAD, 40002, HOST, 22, SYN).build();
    write_pcap(
        &pcap,
        &[bad.clone(), good.clone(), bad.clone(), good, bad, other],
    );
    let pcap_arg = pcap.display().to_string();
    let report = trace_json(&daemon, &["--pcap", &pcap_arg]);
    let packets = report["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 6, "{report:#}");
    let summary: Vec<(String, String, u64)> = report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["verdict"].as_str().unwrap().to_owned(),
                line["reason"].as_str().unwrap().to_owned(),
                line["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("drop".into(), "rule".into(), 3),
            ("pass".into(), "unmatched".into(), 2),
            ("pass".into(), "not_published".into(), 1),
        ],
        "{report:#}"
    );
    let text = daemon.cli_ok(&["trace", "--pcap", &pcap_arg]);
    assert!(text.contains("6 packets: 3 dropped, 3 passed"), "{text}");

    assert_eq!(
        counters(&daemon.status()),
        before,
        "tracing moved the daemon's counters"
    );

    // Without a daemon (enforcement left pinned), names come from the
    // state file: the rule is still named, the container is not known.
    daemon.signal_and_wait(libc::SIGKILL);
    let trace = trace_json(&daemon, &["--from", BAD, "--to", &bad_to, "--syn"]);
    assert_eq!(trace["verdict"], "drop", "{trace:#}");
    assert_eq!(trace["rule"]["name"], "drop-bad", "{trace:#}");
    assert_eq!(trace["port"]["published"], "8080/tcp", "{trace:#}");
    assert!(
        trace["notes"][0]
            .as_str()
            .is_some_and(|note| note.contains("state file")),
        "{trace:#}"
    );
    let _ = fs::remove_dir_all(&dir);
    drop(client);
}
