//! Invariant 1 on a host that also routes: a port published on the wildcard
//! address is enforced only for the host's own addresses, as Docker's DNAT
//! (`-m addrtype --dst-type LOCAL`) applies only to them. A connection the
//! host forwards to another machine's port of the same number passes
//! untouched, and an address added to the host while the daemon runs is
//! protected within seconds.
//!
//! Topology (all namespaces the test creates): client --eth-c/eth-h-- host
//! (dockerd + `dockfw run` on eth-h, forwarding) --eth-b/eth-x-- behind.
//! Root tier: `cargo test -p dockfw-tests --test routing -- --test-threads=1`.

use std::time::Duration;

use dockfw_tests::{
    daemon::Daemon,
    docker::DockerEngine,
    netns::{NetNs, VethPair},
    traffic::{TcpListener, tcp_connects},
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");
const HOST: &str = "10.77.0.1";
const CLIENT: &str = "10.77.0.2";
const ADDED: &str = "10.77.0.9";
const BEHIND: &str = "10.77.1.2";
const WEB: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(2);

fn dropped(status: &serde_json::Value) -> u64 {
    status["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["port"] == "8080/tcp" && entry["family"] == "ipv4")
        .flat_map(|entry| entry["rules"].as_array().cloned().unwrap_or_default())
        .find(|entry| entry["name"] == "drop-client")
        .and_then(|entry| entry["counters"]["dropped"]["packets"].as_u64())
        .unwrap_or(0)
}

fn local_addresses(status: &serde_json::Value) -> Vec<String> {
    status["local_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|net| net.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn wildcard_ports_protect_the_hosts_addresses_and_not_what_it_routes() {
    dockfw_tests::require_root("the routing test");
    let host = NetNs::new("rt-host");
    let client = NetNs::new("rt-client");
    let behind = NetNs::new("rt-behind");
    let _front = VethPair::new(
        &host,
        "eth-h",
        &["10.77.0.1/24"],
        &client,
        "eth-c",
        &["10.77.0.2/24"],
    );
    let _back = VethPair::new(
        &host,
        "eth-b",
        &["10.77.1.1/24"],
        &behind,
        "eth-x",
        &["10.77.1.2/24"],
    );
    client.run_ok(
        "route to behind",
        "ip",
        &["route", "add", "10.77.1.0/24", "via", HOST],
    );
    behind.run_ok(
        "route to client",
        "ip",
        &["route", "add", "10.77.0.0/24", "via", "10.77.1.1"],
    );
    host.run_ok("forwarding", "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    let engine = DockerEngine::start(&host, "10.210.92.1/24");
    // Docker drops forwarded traffic by default; the operator's DOCKER-USER
    // rules let this host route between its two networks.
    for (from, to) in [("eth-h", "eth-b"), ("eth-b", "eth-h")] {
        host.run_ok(
            "DOCKER-USER accept",
            "iptables",
            &["-I", "DOCKER-USER", "-i", from, "-o", to, "-j", "ACCEPT"],
        );
    }
    engine.run_container(
        "web",
        &["8080:80"],
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let _behind_web = TcpListener::start(&behind, "0.0.0.0", WEB);
    // Without dockfw the routed connection works: the test's network does.
    assert!(
        tcp_connects(&client, CLIENT, BEHIND, WEB, TIMEOUT),
        "the host does not forward to the machine behind it"
    );

    let dir = TempDir::new();
    let policy = dir.0.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[rules]]\nname = \"drop-client\"\nports = [\"{WEB}/tcp\"]\n\
             from = [\"10.77.0.0/24\"]\naction = \"drop\"\n"
        ),
    )
    .unwrap();
    let policy_arg = policy.display().to_string();
    let docker_host = engine.host_url();
    let daemon = Daemon::start(
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
    let status = daemon.wait_status("the policy on 8080", Duration::from_secs(30), |status| {
        status["ports"]
            .as_array()
            .is_some_and(|ports| ports.iter().any(|port| port["port"] == "8080/tcp"))
            && !local_addresses(status).is_empty()
    });
    let local = local_addresses(&status);
    for expected in [
        "10.77.0.1/32",
        "10.77.1.1/32",
        "10.210.92.1/32",
        "127.0.0.0/8",
    ] {
        assert!(
            local.iter().any(|net| net == expected),
            "{expected} missing: {local:?}"
        );
    }
    assert!(
        !local.iter().any(|net| net.starts_with(BEHIND)),
        "{local:?}"
    );

    // To the host: dropped by the rule.
    let before = dropped(&status);
    assert!(
        !tcp_connects(&client, CLIENT, HOST, WEB, TIMEOUT),
        "to the host: dropped"
    );
    let after_host = dropped(&daemon.status());
    assert!(
        after_host > before,
        "the drop is counted ({before} -> {after_host})"
    );

    // Through the host to another machine's 8080: untouched.
    assert!(
        tcp_connects(&client, CLIENT, BEHIND, WEB, TIMEOUT),
        "a routed connection to an unpublished destination is never touched\n{}",
        daemon.log()
    );
    assert_eq!(
        dropped(&daemon.status()),
        after_host,
        "nothing routed is counted as dropped"
    );

    // An address added while the daemon runs is protected once it is read.
    host.run_ok(
        "add an address",
        "ip",
        &["addr", "add", "10.77.0.9/24", "dev", "eth-h"],
    );
    daemon.wait_status("the new address", Duration::from_secs(10), |status| {
        local_addresses(status)
            .iter()
            .any(|net| net == "10.77.0.9/32")
    });
    let before = dropped(&daemon.status());
    assert!(
        !tcp_connects(&client, CLIENT, ADDED, WEB, TIMEOUT),
        "to the new address: dropped"
    );
    assert!(dropped(&daemon.status()) > before, "the drop is counted");

    // And a removed one stops being listed.
    host.run_ok(
        "remove the address",
        "ip",
        &["addr", "del", "10.77.0.9/24", "dev", "eth-h"],
    );
    daemon.wait_status("the address gone", Duration::from_secs(10), |status| {
        !local_addresses(status)
            .iter()
            .any(|net| net == "10.77.0.9/32")
    });
}

/// A directory removed when the test ends, passed or not.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("dfw-routing-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
