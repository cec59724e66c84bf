//! DOCKER-USER mirroring against the real oracle: netfilter itself.
//!
//! # How the oracle works
//!
//! A real dockerd 20.10 runs in a host namespace with IPv4 and IPv6
//! (ip6tables on; the IPv6 DOCKER-USER chain that engines from 27 on create
//! is added by the test) and five containers: a remapped TCP port
//! (8080->80), a remapped UDP port (8053->53), TCP and UDP on the same
//! number (9000), TCP and UDP ranges (7000-7003, 7100-7101), a port bound to
//! one host address (10.210.61.254:8443->443), and a container on a second
//! bridge network (9100). A client namespace sends raw frames to the host's
//! veth; a far namespace sits behind the host for traffic to an address
//! that is not the host's.
//!
//! For each seeded random rule set (the supported grammar, with a share of
//! untranslatable conditions and targets, user chains, RETURN and goto),
//! installed atomically with `iptables-restore`/`ip6tables-restore`:
//!
//! 1. `dockfw run --mirror-docker-user --audit` picks the change up; the
//!    test knows it has when the daemon's status reports the content hash
//!    of the very readings the test takes itself. In audit mode the fast
//!    path drops nothing, so every packet reaches netfilter.
//! 2. dockfw's verdict for each packet comes from `BPF_PROG_TEST_RUN` of a
//!    trace instance of the data plane over the daemon's pinned maps (no
//!    side effect): "would drop" (audit) or pass, and which mirrored rule.
//! 3. The packets are sent for real, grouped by the mirrored rule that
//!    would drop them (plus one group for the rest); after each group the
//!    DOCKER-USER counters (`iptables-save -c`) say which netfilter rules
//!    counted it. Each packet's fate is whether it was delivered: AF_PACKET
//!    captures on every container's `eth0` and in the far namespace (the
//!    containers drop their own replies, so only the test's packets reach
//!    the counters). Every packet has a unique (source, source port), so no
//!    conntrack entry is shared.
//!
//! The checks: no packet netfilter delivered would have been dropped by
//! dockfw (unsound drops, must be zero); no packet to an unpublished port
//! or to an address that is not the host's would be touched; and, as a
//! figure, the share of netfilter's DOCKER-USER drops dockfw takes over,
//! overall and for rules `dockfw mirror --explain` reports as mirrored
//! exactly and not shadowed (the target there is all of them).
//!
//! `DOCKFW_MIRROR_SETS` (default 50), `DOCKFW_MIRROR_PACKETS` (default 200)
//! and `DOCKFW_MIRROR_SEED` set the size and the seed; `DOCKFW_MIRROR_DEBUG`
//! prints the packets and rules behind any shortfall and slow pickup.
//! Root tier: `cargo test -p dockfw-tests --test mirror_oracle -- --test-threads=1`.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use dockfw::{
    control::{Request, Response, client::request},
    mirror::source::Snapshot,
    trace::{Tracer, context::TraceContext, explain},
};
use dockfw_common::{outcome, xdp_verdict};
use dockfw_tests::{
    daemon::Daemon,
    mirror::{
        HOST_IFACE, World,
        rules::{self, Aim, Packet, Rng},
        wire::{Capture, Sender, frame, proto_number},
    },
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The content hash of the readings the daemon's policy comes from (asked
/// over the control socket: no process per poll).
fn mirror_digest(daemon: &Daemon) -> String {
    match request(&daemon.run_dir, &Request::Status) {
        Ok(Response::Status { status }) => status
            .mirror
            .map(|mirror| mirror.digest)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn trace_context(daemon: &Daemon) -> TraceContext {
    match request(&daemon.run_dir, &Request::TraceContext) {
        Ok(Response::TraceContext { context }) => *context,
        other => panic!("trace context: {other:?}"),
    }
}

/// Outcomes of `dockfw mirror --explain --json` by (family, path).
fn explain_outcomes(
    daemon: &Daemon,
    docker: &str,
) -> BTreeMap<(String, String), serde_json::Value> {
    let text = daemon.cli_ok(&[
        "mirror",
        "--explain",
        "--json",
        "--iface",
        HOST_IFACE,
        "--docker-host",
        docker,
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("explain JSON: {error}\n{text}"));
    let mut out = BTreeMap::new();
    for family in report["families"].as_array().into_iter().flatten() {
        for rule in family["rules"].as_array().into_iter().flatten() {
            let key = (
                family["family"].as_str().unwrap_or_default().to_owned(),
                rule["path"].as_str().unwrap_or_default().to_owned(),
            );
            out.insert(key, rule.clone());
        }
    }
    out
}

/// One packet's result.
struct Fate {
    packet: Packet,
    family: &'static str,
    would_drop: bool,
    rule: String,
    delivered: bool,
}

/// Totals over the run.
#[derive(Default)]
struct Totals {
    sets: u64,
    packets: u64,
    v6_packets: u64,
    delivered: u64,
    delivered_v6: u64,
    xdp_drops_v6: u64,
    netfilter_drops: u64,
    taken: u64,
    xdp_drops: u64,
    translatable_drops: u64,
    translatable_missed: u64,
    unsound: Vec<String>,
    touched: Vec<String>,
    pickup_ms: Vec<u128>,
}

#[test]
fn mirror_never_drops_what_netfilter_delivers() {
    let sets = env_number("DOCKFW_MIRROR_SETS", 50);
    let per_set = env_number("DOCKFW_MIRROR_PACKETS", 200) as usize;
    let seed = env_number("DOCKFW_MIRROR_SEED", 0x00d0_cf17);
    let world = World::start();
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
            "--audit",
        ],
    );
    daemon.wait_status("mirroring", Duration::from_secs(30), |status| {
        status["docker"]["synced"] == true
            && !status["mirror"]["digest"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
    });
    let sender = Sender::new(&world.client.path(), "eth-c");
    let capture = Capture::start(&world.capture_points);
    let _inside = world.host.enter();
    let mut tracer =
        Tracer::open(&daemon.pin_dir).unwrap_or_else(|error| panic!("trace instance: {error}"));
    let ifindex = nix_ifindex(HOST_IFACE);
    let mut rng = Rng::new(seed);
    let mut used = BTreeSet::new();
    let mut totals = Totals::default();

    for set in 0..sets {
        let texts: Vec<String> = world
            .pools
            .iter()
            .map(|pools| rules::rule_set(&mut rng, pools))
            .collect();
        let started = std::time::Instant::now();
        for (pools, text) in world.pools.iter().zip(&texts) {
            world.install(pools.family, text);
        }
        let installed = started.elapsed().as_millis();
        let expected = format!("{:016x}", Snapshot::read(&[HOST_IFACE.to_owned()]).digest());
        let read = started.elapsed().as_millis();
        let waited = World::wait(Duration::from_secs(10), || {
            mirror_digest(&daemon) == expected
        });
        assert!(
            waited.is_some(),
            "set {set}: the daemon did not pick the rules up within 10 s\n{}",
            daemon.log()
        );
        let pickup = started.elapsed().as_millis();
        if pickup > 2000 {
            eprintln!(
                "set {set}: picked up after {pickup} ms (installed after {installed} ms, read \
                 after {read} ms; load average {})",
                load_average()
            );
            if std::env::var_os("DOCKFW_MIRROR_DEBUG").is_some() {
                let log = daemon.log();
                let lines: Vec<&str> = log.lines().rev().take(12).collect();
                eprintln!("{}", lines.into_iter().rev().collect::<Vec<_>>().join("\n"));
                eprintln!("{}", texts.join(""));
            }
        }
        totals.pickup_ms.push(pickup);
        let context = trace_context(&daemon);
        let outcomes = explain_outcomes(&daemon, &docker);

        // dockfw's verdicts.
        let v6_share = per_set / 4;
        let mut fates = Vec::new();
        for (pools, count) in world.pools.iter().zip([per_set - v6_share, v6_share]) {
            for packet in rules::packets(&mut rng, pools, count, &mut used) {
                let bytes = frame(&packet, world.host_mac, world.client_mac);
                let record = tracer
                    .trace(&bytes, Some(ifindex))
                    .unwrap_or_else(|error| panic!("trace: {error}"));
                let would_drop =
                    record.verdict == xdp_verdict::DROP || record.outcome == outcome::AUDIT;
                let rule = explain(&record, None, &context)
                    .rule
                    .map(|rule| rule.name)
                    .unwrap_or_default();
                fates.push((
                    bytes,
                    Fate {
                        packet,
                        family: pools.family,
                        would_drop,
                        rule,
                        delivered: false,
                    },
                ));
            }
        }

        // netfilter's fates, group by group.
        // Packets XDP passes are split: to a published port (what a
        // mirrored rule should have taken) and the rest (which no mirrored
        // rule may take: traffic to another address is forwarded untouched
        // and meets DOCKER-USER with its own port).
        let mut groups: BTreeMap<(String, bool), Vec<usize>> = BTreeMap::new();
        for (index, (_, fate)) in fates.iter().enumerate() {
            let published = matches!(fate.packet.aim, Aim::Published(_));
            let group = if fate.would_drop {
                fate.rule.clone()
            } else {
                String::new()
            };
            groups.entry((group, published)).or_default().push(index);
        }
        world.zero_counters();
        let mut missed: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((group, published), members) in &groups {
            let frames: Vec<Vec<u8>> = members
                .iter()
                .map(|index| fates[*index].0.clone())
                .collect();
            sender.send(&frames);
            std::thread::sleep(Duration::from_millis(40));
            for family in ["ipv4", "ipv6"] {
                for (path, text, packets) in world.counters(family) {
                    let key = (family.to_owned(), path);
                    let before = last.insert(key.clone(), packets).unwrap_or(0);
                    let delta = packets.saturating_sub(before);
                    if text.ends_with("-j DROP") {
                        totals.netfilter_drops += delta;
                        if !group.is_empty() {
                            totals.taken += delta;
                        }
                        if group.is_empty() && *published {
                            *missed.entry(key.clone()).or_default() += delta;
                            if delta > 0 && std::env::var_os("DOCKFW_MIRROR_DEBUG").is_some() {
                                let packets: Vec<String> = members
                                    .iter()
                                    .map(|index| format!("{:?}", fates[*index].1.packet))
                                    .collect();
                                eprintln!("{key:?} took {delta} of:\n{}", packets.join("\n"));
                            }
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(150));
        for (_, fate) in &mut fates {
            let packet = &fate.packet;
            fate.delivered = capture.saw(&(packet.src, packet.sport, proto_number(packet.proto)));
        }

        // Checks and figures.
        for (_, fate) in &fates {
            totals.packets += 1;
            totals.v6_packets += u64::from(fate.family == "ipv6");
            totals.delivered += u64::from(fate.delivered);
            totals.delivered_v6 += u64::from(fate.delivered && fate.family == "ipv6");
            totals.xdp_drops_v6 +=
                u64::from(fate.would_drop && !fate.delivered && fate.family == "ipv6");
            totals.xdp_drops += u64::from(fate.would_drop && !fate.delivered);
            let describe = || {
                format!(
                    "set {set} ({}): {:?} by {:?}\n{}",
                    fate.family,
                    fate.packet,
                    fate.rule,
                    texts.join("")
                )
            };
            if fate.would_drop && fate.delivered {
                totals.unsound.push(describe());
            }
            if fate.would_drop && !matches!(fate.packet.aim, Aim::Published(_)) {
                totals.touched.push(describe());
            }
        }
        // A rule of a user chain counts for every path that reaches it: it
        // is translatable only when it is mirrored exactly on all of them.
        let mut exact_rules: BTreeMap<(String, String), bool> = BTreeMap::new();
        for ((family, _), rule) in &outcomes {
            let exact = rule["outcome"]["kind"] == "mirrored"
                && rule["outcome"]["action"] == "drop"
                && rule["notes"].as_array().is_none_or(Vec::is_empty);
            *exact_rules
                .entry((family.clone(), rule_position(rule)))
                .or_insert(true) &= exact;
        }
        for (key, exact) in exact_rules {
            if !exact {
                continue;
            }
            let counted = last.get(&key).copied().unwrap_or(0);
            let lost = missed.get(&key).copied().unwrap_or(0);
            totals.translatable_drops += counted;
            totals.translatable_missed += lost;
            if lost > 0 {
                eprintln!(
                    "set {set}: {key:?} mirrored exactly, yet {lost} of its {counted} drops were passed by XDP"
                );
                if std::env::var_os("DOCKFW_MIRROR_DEBUG").is_some() {
                    eprintln!("{}", texts.join(""));
                }
            }
        }
        totals.sets += 1;
    }

    let share = |part: u64, whole: u64| {
        if whole == 0 {
            100.0
        } else {
            100.0 * part as f64 / whole as f64
        }
    };
    let pickup_max = totals.pickup_ms.iter().max().copied().unwrap_or(0);
    let pickup_mean = totals.pickup_ms.iter().sum::<u128>() / totals.pickup_ms.len().max(1) as u128;
    eprintln!(
        "mirror oracle: {} rule sets x {} packets ({} IPv6), seed {seed:#x}: {} delivered by netfilter ({} IPv6), \
         {} dropped by a DOCKER-USER DROP rule, {} of them taken over in XDP ({:.1}%); dockfw would drop {} \
         packets in all ({} IPv6) (the rest REJECTed or INVALID in netfilter); drops of rules mirrored exactly: {} \
         taken over of {} ({:.1}%); unsound drops: {}; unpublished or foreign traffic touched: {}; pickup of \
         a change: mean {pickup_mean} ms, max {pickup_max} ms",
        totals.sets,
        per_set,
        totals.v6_packets,
        totals.delivered,
        totals.delivered_v6,
        totals.netfilter_drops,
        totals.taken,
        share(totals.taken, totals.netfilter_drops),
        totals.xdp_drops,
        totals.xdp_drops_v6,
        totals.translatable_drops - totals.translatable_missed,
        totals.translatable_drops,
        share(
            totals.translatable_drops - totals.translatable_missed,
            totals.translatable_drops
        ),
        totals.unsound.len(),
        totals.touched.len(),
    );
    assert!(
        totals.unsound.is_empty(),
        "unsound drops:\n{}",
        totals.unsound.join("\n\n")
    );
    assert!(
        totals.touched.is_empty(),
        "touched traffic that is not published:\n{}",
        totals.touched.join("\n\n")
    );
    assert_eq!(
        totals.translatable_missed, 0,
        "drops of rules mirrored exactly were left to netfilter (see above)"
    );
    assert!(
        totals.delivered > 0 && totals.xdp_drops > 0,
        "the run exercised nothing"
    );
}

/// The 1-minute load average, to read slow pickups against.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// `CHAIN#POSITION` of a reported rule.
fn rule_position(rule: &serde_json::Value) -> String {
    format!(
        "{}#{}",
        rule["chain"].as_str().unwrap_or_default(),
        rule["position"].as_u64().unwrap_or(0)
    )
}

/// The index of an interface in the calling thread's namespace.
fn nix_ifindex(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: if_nametoindex reads a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(index != 0, "no interface {name:?}");
    index
}
