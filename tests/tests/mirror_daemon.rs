//! `dockfw run --mirror-docker-user` enforcing, end to end, against the
//! same world as the differential test (`mirror_oracle`): one batch of real
//! packets goes through netfilter alone, the same batch (fresh source
//! ports) goes through dockfw's native XDP mirroring, and every packet
//! netfilter delivered is delivered again, while the drops of the mirrored
//! rules happen in XDP (DOCKER-USER's counters stay at zero for them).
//! Then changes to the ipsets, the container set and DOCKER-USER itself are
//! picked up within two seconds, and Docker's own chains are the same with
//! dockfw running.
//! Root tier: `cargo test -p dockfw-tests --test mirror_daemon -- --test-threads=1`.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use dockfw::mirror::source::Snapshot;
use dockfw_tests::{
    daemon::Daemon,
    mirror::{
        HOST_IFACE, HOST_V4, HOST_V6, World,
        rules::{Aim, Packet},
        wire::{Capture, Sender, frame, proto_number},
    },
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");
/// The pickup promise, with room for the status polls that observe it.
const PICKUP: Duration = Duration::from_millis(2500);

const RULES_V4: &str = "*filter
-F DOCKER-USER
-A DOCKER-USER -s 198.51.100.0/24 -p tcp -m tcp --dport 80 -j DROP
-A DOCKER-USER -m set --match-set dfw-ip4 src -j DROP
-A DOCKER-USER -s 203.0.113.0/24 -p udp -m conntrack --ctorigdstport 9000 -j DROP
-A DOCKER-USER -p tcp -m tcp --dport 7000:7001 -m connlimit --connlimit-above 100 -j REJECT --reject-with tcp-reset
COMMIT
";

const RULES_V6: &str = "*filter
-F DOCKER-USER
-A DOCKER-USER -s 2001:db8:bad::/48 -p tcp -m tcp --dport 80 -j DROP
COMMIT
";

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn packet(src: &str, dst: &str, proto: &'static str, dport: u16, sport: u16) -> Packet {
    Packet {
        src: ip(src),
        dst: ip(dst),
        proto,
        sport,
        dport,
        flags: if proto == "tcp" { 0x02 } else { 0 },
        aim: Aim::Published(0),
    }
}

/// The logical packets: (source, destination, protocol, port).
const BATCH: &[(&str, &str, &str, u16)] = &[
    ("198.51.100.7", HOST_V4, "tcp", 8080),
    ("198.51.100.200", "10.210.61.254", "tcp", 8080),
    ("198.51.100.7", HOST_V4, "tcp", 7000),
    ("203.0.113.5", HOST_V4, "tcp", 9100),
    ("203.0.113.5", HOST_V4, "udp", 8053),
    ("203.0.113.66", HOST_V4, "udp", 9000),
    ("203.0.113.66", HOST_V4, "tcp", 9000),
    ("192.0.2.10", HOST_V4, "tcp", 8080),
    ("192.0.2.10", HOST_V4, "udp", 9000),
    ("2001:db8:bad::7", HOST_V6, "tcp", 8080),
    ("2001:db8:a::1", HOST_V6, "tcp", 8080),
];

/// Sends the batch `rounds` times with source ports from `base`; which
/// logical packets were delivered (every round must agree).
fn run_batch(world: &World, sender: &Sender, capture: &Capture, base: u16) -> Vec<bool> {
    let packets: Vec<Packet> = BATCH
        .iter()
        .enumerate()
        .map(|(index, (src, dst, proto, dport))| {
            packet(src, dst, proto, *dport, base + index as u16)
        })
        .collect();
    let frames: Vec<Vec<u8>> = packets
        .iter()
        .map(|packet| frame(packet, world.host_mac, world.client_mac))
        .collect();
    sender.send(&frames);
    std::thread::sleep(Duration::from_millis(300));
    packets
        .iter()
        .map(|packet| capture.saw(&(packet.src, packet.sport, proto_number(packet.proto))))
        .collect()
}

/// DOCKER-USER's DROP counters (both families), summed.
fn docker_user_drops(world: &World) -> u64 {
    ["ipv4", "ipv6"]
        .iter()
        .flat_map(|family| world.counters(family))
        .filter(|(path, text, _)| path.starts_with("DOCKER-USER#") && text.ends_with("-j DROP"))
        .map(|(_, _, packets)| packets)
        .sum()
}

/// Packets dropped by mirrored rules, from `dockfw status`.
fn mirrored_drops(daemon: &Daemon) -> u64 {
    let status = daemon.status();
    status["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|port| port["rules"].as_array().cloned().unwrap_or_default())
        .filter(|rule| {
            rule["origin"]
                .as_str()
                .is_some_and(|o| o.starts_with("DOCKER-USER"))
        })
        .map(|rule| rule["counters"]["dropped"]["packets"].as_u64().unwrap_or(0))
        .sum()
}

/// Docker's chains without DOCKER-USER (which the test writes) and counters.
fn docker_chains(world: &World) -> String {
    let mut text = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        let output = world.host.run_ok("save", tool, &[]);
        let saved = dockfw::mirror::save::normalize(&String::from_utf8_lossy(&output.stdout));
        for line in saved.lines().filter(|line| !line.contains("DOCKER-USER")) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Waits until the daemon runs on the readings of now; how long it took.
fn picked_up(world: &World, daemon: &Daemon, what: &str) -> Duration {
    let started = Instant::now();
    let expected = {
        let _inside = world.host.enter();
        format!("{:016x}", Snapshot::read(&[HOST_IFACE.to_owned()]).digest())
    };
    let waited = World::wait(Duration::from_secs(10), || {
        daemon.status()["mirror"]["digest"].as_str() == Some(expected.as_str())
    });
    assert!(
        waited.is_some(),
        "{what}: not picked up within 10 s\n{}",
        daemon.log()
    );
    let took = started.elapsed();
    eprintln!("{what}: picked up after {} ms", took.as_millis());
    took
}

#[test]
fn mirrored_drops_happen_in_xdp_and_follow_changes() {
    let world = World::start();
    world.install("ipv4", RULES_V4);
    world.install("ipv6", RULES_V6);
    let sender = Sender::new(&world.client.path(), "eth-c");
    let capture = Capture::start(&world.capture_points);

    // netfilter alone.
    world.zero_counters();
    let alone = run_batch(&world, &sender, &capture, 20000);
    let netfilter_drops = docker_user_drops(&world);
    assert!(
        netfilter_drops >= 6,
        "the batch must meet the drop rules ({netfilter_drops}): {alone:?}\n{:?}\n{:?}",
        world.counters("ipv4"),
        world.counters("ipv6")
    );
    assert!(
        alone.iter().filter(|delivered| **delivered).count() >= 4,
        "{alone:?}"
    );
    let chains_before = docker_chains(&world);

    // dockfw mirroring, native XDP.
    let docker = world.engine.host_url();
    let daemon = Daemon::start(
        BIN,
        &world.host,
        &[
            "--iface",
            HOST_IFACE,
            "--mode",
            "native",
            "--docker-host",
            &docker,
            "--mirror-docker-user",
        ],
    );
    daemon.wait_status("mirroring", Duration::from_secs(30), |status| {
        status["docker"]["synced"] == true && status["mirror"]["enforced"].as_u64() >= Some(4)
    });
    picked_up(&world, &daemon, "start");
    world.zero_counters();
    let mirrored = run_batch(&world, &sender, &capture, 21000);
    assert_eq!(
        alone, mirrored,
        "the same packets are delivered with dockfw mirroring"
    );
    assert_eq!(
        docker_user_drops(&world),
        0,
        "every DOCKER-USER drop happened in XDP:\n{:?}",
        world.counters("ipv4")
    );
    assert_eq!(
        mirrored_drops(&daemon),
        netfilter_drops,
        "XDP drop counters"
    );
    // The explanation reads the host namespace's rules: run it there.
    let inside = world.host.enter();
    let explained = daemon.cli_ok(&[
        "mirror",
        "--explain",
        "--iface",
        HOST_IFACE,
        "--docker-host",
        &docker,
    ]);
    for needle in [
        "DOCKER-USER#1 [-A DOCKER-USER -s 198.51.100.0/24",
        "drop in XDP on 8080/tcp (6 addresses)",
        "netfilter-only: REJECT answers the sender",
        "4 rule(s) enforced in XDP, 1 netfilter-only",
    ] {
        assert!(
            explained.contains(needle),
            "{needle:?} missing:\n{explained}"
        );
    }
    drop(inside);
    eprintln!("{explained}");
    let status_text = daemon.cli_ok(&["status"]);
    assert!(status_text.contains("DOCKER-USER rule 1"), "{status_text}");
    assert!(
        status_text.contains("mirror: DOCKER-USER ipv4 mirrored"),
        "{status_text}"
    );

    // An ipset change.
    let before = mirrored_drops(&daemon);
    world
        .host
        .run_ok("ipset add", "ipset", &["add", "dfw-ip4", "192.0.2.10"]);
    let took = picked_up(&world, &daemon, "ipset add");
    assert!(took <= PICKUP, "ipset change picked up after {took:?}");
    let after_set = run_batch(&world, &sender, &capture, 22000);
    let index = BATCH
        .iter()
        .position(|entry| entry.0 == "192.0.2.10")
        .unwrap_or(0);
    assert!(!after_set[index], "192.0.2.10 is in the set now");
    assert!(mirrored_drops(&daemon) > before);

    // A container starts publishing 8081 -> 80: DOCKER-USER#1 covers it.
    let started = Instant::now();
    world
        .engine
        .run_container("late", &["8081:80"], &["sleep", "100000"]);
    let waited = World::wait(Duration::from_secs(10), || {
        daemon.status()["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|port| {
                port["port"] == format!("{HOST_V4}:8081/tcp")
                    && port["rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|rule| rule["name"] == "DOCKER-USER#1")
            })
    });
    assert!(
        waited.is_some(),
        "the new container's port got no mirrored rule\n{}",
        daemon.log()
    );
    let took = started.elapsed();
    eprintln!("new container: mirrored after {} ms", took.as_millis());
    assert!(took <= PICKUP, "container change picked up after {took:?}");

    // DOCKER-USER itself changes: the drop of 8080 goes away.
    world.install(
        "ipv4",
        "*filter\n-F DOCKER-USER\n-A DOCKER-USER -s 198.51.100.0/24 -p udp -j DROP\nCOMMIT\n",
    );
    let took = picked_up(&world, &daemon, "rule change");
    assert!(took <= PICKUP, "rule change picked up after {took:?}");
    let after_rules = run_batch(&world, &sender, &capture, 23000);
    assert!(
        after_rules[0],
        "198.51.100.7 -> 8080/tcp is no longer dropped"
    );

    let late = world.engine.inspect("late");
    let late_addrs: Vec<String> = ["IPAddress", "GlobalIPv6Address"]
        .iter()
        .filter_map(|field| late["NetworkSettings"][field].as_str())
        .filter(|addr| !addr.is_empty())
        .map(|addr| format!("{addr}/"))
        .collect();
    assert_eq!(
        docker_chains(&world)
            .lines()
            .filter(|line| !line.contains("8081")
                && !late_addrs.iter().any(|addr| line.contains(addr.as_str())))
            .collect::<Vec<_>>(),
        chains_before.lines().collect::<Vec<_>>(),
        "Docker's chains are the same with dockfw running"
    );
}
