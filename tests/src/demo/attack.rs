//! The attacker: a TCP SYN flood at the published port with valid
//! checksums (conntrack would mark broken ones INVALID and they would never
//! reach DOCKER-USER), alternating every second between one fixed source
//! and sources spoofed all over the attacker's /17 (each a new conntrack
//! entry for netfilter). Sent by the live-frames XDP generator from the
//! internet namespace, on its own CPU.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use dockfw_tests::trafficgen::{Flood, FloodKind, Generator};

use super::{
    receiver::{self, WAN_CPU},
    signals,
    topology::{ATTACK_BASE, ATTACK_FIXED, ATTACK_RANDOM_BITS, HOST_ADDR, Topology, WEB_PORT},
};

/// How long the flood keeps one kind of source before switching.
const SWITCH_EVERY: Duration = Duration::from_secs(1);
/// Slack on the packet bound of each stretch (the pacer's burst).
const BOUND_SLACK: f64 = 1.2;

/// Where the flood's packets claim to come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sources {
    /// One address and port.
    Fixed,
    /// Random addresses in the attacker's /17, random ports.
    Spoofed,
}

fn flood(topology: &Topology, sources: Sources, rate: u64) -> Flood {
    let spoofed = sources == Sources::Spoofed;
    Flood {
        kind: FloodKind::TcpSyn,
        src: if spoofed { ATTACK_BASE } else { ATTACK_FIXED },
        random_src_bits: if spoofed { ATTACK_RANDOM_BITS } else { 0 },
        random_sport: spoofed,
        dst: HOST_ADDR,
        dport: WEB_PORT,
        dst_mac: topology.host_mac,
        src_mac: topology.wan_mac,
        rate_pps: Some(rate),
    }
}

/// Floods at `rate` until `until` (or until `stop` is set or a signal
/// arrives), switching sources every [`SWITCH_EVERY`]. Returns how long it
/// flooded.
pub fn run(
    topology: &Topology,
    rate: u64,
    until: Instant,
    stop: &AtomicBool,
) -> Result<Duration, String> {
    signals::block_in_this_thread();
    receiver::set_affinity(0, WAN_CPU)?;
    let mut sources = Sources::Spoofed;
    let mut generator = Generator::new(&flood(topology, sources, rate));
    let _inside = topology.wan.enter();
    let started = Instant::now();
    let bound = (rate as f64 * SWITCH_EVERY.as_secs_f64() * BOUND_SLACK) as u64;
    while !stop.load(Ordering::SeqCst) && !signals::interrupted() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        generator.configure(&flood(topology, sources, rate));
        generator.run(topology.wan_ifindex, bound, left.min(SWITCH_EVERY));
        sources = match sources {
            Sources::Fixed => Sources::Spoofed,
            Sources::Spoofed => Sources::Fixed,
        };
    }
    Ok(started.elapsed())
}
