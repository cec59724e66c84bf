//! Root tier: the Docker watcher against a real dockerd 20.10 running in a
//! test namespace. Run with
//! `cargo test -p dockfw-tests --test docker_sync -- --test-threads=1`.
//!
//! Set `DOCKFW_CAPTURE_FIXTURES=DIR` to also write the engine's raw inspect
//! response of the test container to `DIR/running_web.json` (how the unit
//! fixtures in `dockfw/src/docker/fixtures/` were captured).

use std::{
    collections::BTreeSet,
    net::{IpAddr, UdpSocket},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use dockfw::{
    docker::{DockerHost, DockerState, DockerWatcher},
    model::{BindingKey, Family, Proto},
};
use dockfw_tests::{
    docker::DockerEngine,
    netns::{NetNs, VethPair},
};
use tokio::{runtime::Runtime, sync::watch};
use tokio_util::sync::CancellationToken;

/// The engine's bridge; no other test uses this subnet.
const BIP: &str = "10.210.41.1/24";
/// The product promise: a Docker change reaches the state within 1 s.
const PROMISE: Duration = Duration::from_secs(1);
/// Bound for a first sync or a reconnect (dockerd start-up is not ours).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// `-p` flags of the test container.
const PUBLISH: &[&str] = &["8080:80", "9000-9002:9000-9002/udp", "127.0.0.1:7070:70"];
const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/bin"];

/// (key, container port) for [`PUBLISH`]. dockerd 20.10 publishes a
/// wildcard `-p` on both `0.0.0.0` and `::`.
fn expected_bindings() -> BTreeSet<(BindingKey, u16)> {
    let wildcard = |proto, port, container_port| {
        [Family::V4, Family::V6].map(|family| {
            (
                BindingKey {
                    family,
                    proto,
                    addr: None,
                    port,
                },
                container_port,
            )
        })
    };
    let mut expected: BTreeSet<_> = wildcard(Proto::Tcp, 8080, 80).into_iter().collect();
    for port in 9000..=9002 {
        expected.extend(wildcard(Proto::Udp, port, port));
    }
    let loopback = IpAddr::from([127, 0, 0, 1]);
    expected.insert((
        BindingKey {
            family: Family::V4,
            proto: Proto::Tcp,
            addr: Some(loopback),
            port: 7070,
        },
        70,
    ));
    expected
}

fn bindings(state: &DockerState) -> BTreeSet<(BindingKey, u16)> {
    state
        .ports
        .iter()
        .map(|p| (p.key, p.container_port))
        .collect()
}

/// Waits until `done` holds, panicking with `step` and the last state after
/// `timeout`.
fn wait_for(
    rt: &Runtime,
    rx: &mut watch::Receiver<DockerState>,
    step: &str,
    timeout: Duration,
    done: impl Fn(&DockerState) -> bool,
) -> DockerState {
    let waited = rt.block_on(async {
        let changed = rx.wait_for(|state| done(state));
        tokio::time::timeout(timeout, async { changed.await.map(|state| state.clone()) }).await
    });
    match waited {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("{step}: the watcher stopped (state channel closed)"),
        Err(_) => panic!(
            "{step}: not within {timeout:?}; last state: {:#?}",
            *rx.borrow()
        ),
    }
}

/// The address `docker inspect` reports for `name` on the default bridge.
fn inspected_addr(engine: &DockerEngine, name: &str, family: Family) -> Option<IpAddr> {
    let inspect = engine.inspect(name);
    let field = match family {
        Family::V4 => "IPAddress",
        Family::V6 => "GlobalIPv6Address",
    };
    let text = inspect["NetworkSettings"]["Networks"]["bridge"][field].as_str()?;
    text.parse().ok()
}

/// Every port is web's, and its container address is what Docker reports.
fn assert_matches_inspect(engine: &DockerEngine, state: &DockerState, step: &str) {
    let inspect = engine.inspect("web");
    let id = inspect["Id"].as_str().unwrap_or_default();
    assert_eq!(
        bindings(state),
        expected_bindings(),
        "{step}: published bindings"
    );
    for port in &state.ports {
        assert_eq!(port.container.name, "web", "{step}: {}", port.key);
        assert_eq!(port.container.id, id, "{step}: {}", port.key);
        assert_eq!(
            port.container_addr,
            inspected_addr(engine, "web", port.key.family),
            "{step}: container address of {}",
            port.key
        );
    }
    assert!(
        state
            .ports
            .iter()
            .any(|p| p.key.family == Family::V4 && p.container_addr.is_some()),
        "{step}: no IPv4 container address at all"
    );
}

#[test]
fn watcher_follows_a_real_engine_through_restarts() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dockfw=debug")),
        )
        .try_init();
    let ns = NetNs::new("dsync");
    let mut engine = DockerEngine::start(&ns, BIP);
    engine.run_container("web", PUBLISH, HTTPD);
    if let Some(dir) = std::env::var_os("DOCKFW_CAPTURE_FIXTURES") {
        let path = std::path::Path::new(&dir).join("running_web.json");
        if let Err(error) = std::fs::write(&path, engine.inspect_raw("web")) {
            panic!("capture fixture {}: {error}", path.display());
        }
    }

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => panic!("build the tokio runtime: {error}"),
    };
    let host = match DockerHost::parse(&engine.host_url()) {
        Ok(host) => host,
        Err(error) => panic!("parse the engine URL: {error}"),
    };
    let watcher = DockerWatcher::new(host);
    let sync_errors = watcher.sync_errors();
    let (tx, mut rx) = watch::channel(DockerState::default());
    let stop = CancellationToken::new();
    let task = rt.spawn(watcher.run(tx, stop.clone()));

    // 1. Full sync: every binding, the container's name, id and address.
    let synced = wait_for(&rt, &mut rx, "first sync", SYNC_TIMEOUT, |s| {
        s.synced && s.connected && !s.ports.is_empty()
    });
    assert_matches_inspect(&engine, &synced, "first sync");

    // 2. Stopped: the ports go within the promise.
    engine.docker_ok("stop web", &["stop", "-t", "1", "web"]);
    let stopped_at = Instant::now();
    let stopped = wait_for(&rt, &mut rx, "ports gone after stop", PROMISE, |s| {
        s.ports.is_empty()
    });
    assert!(stopped.connected && stopped.generation > synced.generation);
    eprintln!(
        "stop reached the state {:?} after docker stop returned",
        stopped_at.elapsed()
    );

    // 3. Started again (possibly with a new address): back within the promise.
    engine.docker_ok("start web", &["start", "web"]);
    let started = wait_for(&rt, &mut rx, "ports back after start", PROMISE, |s| {
        bindings(s) == expected_bindings()
    });
    assert_matches_inspect(&engine, &started, "after restart of web");

    // 4. dockerd crashes: last known ports kept, state disconnected, and it
    //    stays that way while reconnects fail.
    let errors_before = sync_errors.load(Ordering::Relaxed);
    engine.kill_daemon();
    let lost = wait_for(
        &rt,
        &mut rx,
        "disconnected after dockerd was killed",
        SYNC_TIMEOUT,
        |s| !s.connected,
    );
    assert_eq!(
        lost.ports, started.ports,
        "ports changed when the engine went away"
    );
    assert!(lost.synced);
    std::thread::sleep(Duration::from_millis(1500));
    let still = rx.borrow().clone();
    assert!(!still.connected, "reported connected with dockerd dead");
    assert_eq!(
        still.ports, started.ports,
        "ports changed while the engine was away"
    );
    let errors = sync_errors.load(Ordering::Relaxed) - errors_before;
    assert!(
        errors >= 2,
        "sync errors counted while dockerd was dead: {errors}"
    );

    // 5. dockerd restarts: reconnect and full resync. Without live-restore
    //    the restarted engine killed web, so the resync must empty the set.
    engine.restart_daemon();
    let back = wait_for(
        &rt,
        &mut rx,
        "reconnect after dockerd restart",
        SYNC_TIMEOUT,
        |s| s.connected,
    );
    assert_eq!(
        engine.docker_ok("web state", &["inspect", "-f", "{{.State.Status}}", "web"]),
        "exited"
    );
    let resynced = wait_for(&rt, &mut rx, "resync after restart", PROMISE, |s| {
        s.ports.is_empty()
    });
    assert!(resynced.connected && back.generation > lost.generation);

    // 6. Events are followed again after the reconnect.
    engine.docker_ok("start web after the daemon restart", &["start", "web"]);
    let again = wait_for(&rt, &mut rx, "ports back after reconnect", PROMISE, |s| {
        bindings(s) == expected_bindings()
    });
    assert_matches_inspect(&engine, &again, "after reconnect");

    stop.cancel();
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await }) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("watcher task failed: {error}"),
        Err(_) => panic!("watcher did not stop within 5 s of cancel"),
    }
}

#[test]
fn namespace_and_veth_guards_clean_up() {
    let (a_name, b_name);
    {
        let a = NetNs::new("guard-a");
        let b = NetNs::new("guard-b");
        a_name = a.name().to_owned();
        b_name = b.name().to_owned();
        assert!(a_name.starts_with("dfw-guard-a-") && a_name != b_name);
        let _veth = VethPair::new(
            &a,
            "va",
            &["10.210.42.1/30", "fd00:dfb::1/64"],
            &b,
            "vb",
            &["10.210.42.2/30", "fd00:dfb::2/64"],
        );
        // 3 echoes, success if any is answered: the first neighbour
        // solicitation can go out before the peer's end of the veth is up.
        let ping =
            |step, addr| a.run_ok(step, "busybox", &["ping", "-c", "3", "-W", "2", "-q", addr]);
        ping("ping b over the veth", "10.210.42.2");
        ping("ping b over IPv6", "fd00:dfb::2");
        {
            let _inside = b.enter();
            // Only possible where the address is local: inside b.
            if let Err(error) = UdpSocket::bind("10.210.42.2:0") {
                panic!("bind inside {b_name}: {error}");
            }
        }
        assert!(
            UdpSocket::bind("10.210.42.2:0").is_err(),
            "still inside {b_name} after the guard"
        );
    }
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output();
    let listed = listed
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        !listed.contains(&a_name) && !listed.contains(&b_name),
        "namespaces left: {listed}"
    );
}
