//! The model's classifier: the specification of a verdict, evaluated over
//! the operator's policy (rules in order, first match wins) rather than over
//! the compiled bitmaps, so the compiler is under test as well.
//!
//! Statistic ids are the only thing taken from dockfw's own bookkeeping
//! (the [`StatRegistry`]): they name the counter a verdict must move.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use dockfw::{
    compile::{StatOwner, StatRegistry},
    model::{Action, Family, FragmentAction, Per, Policy, Proto, PublishedPort, Rule},
};
use dockfw_common::{outcome, reason, xdp_verdict};
use ipnet::IpNet;

use super::parse::{Fragment, ModelPacket, Parsed, parse};

/// TCP SYN and ACK bits.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// Token buckets the model can predict without knowing the kernel's clock
/// (a coarse one, moving once a tick): an interval of at least this is
/// "slow" (a test case lasts far less, so no token comes back while it
/// runs)...
pub const SLOW_INTERVAL_MIN_NS: u64 = 360 * 1_000_000_000;
/// ... and one of at most this interval with at least [`FAST_BURST_MIN_NS`]
/// of burst is "fast": however many packets share a tick, it admits them
/// all, and by the next step it is idle again.
pub const FAST_INTERVAL_MAX_NS: u64 = 1_000;
/// See [`FAST_INTERVAL_MAX_NS`].
pub const FAST_BURST_MIN_NS: u64 = 100_000_000;

/// Which counter a verdict moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counted {
    /// A global reason counter (the packet reached no published port).
    Global(u8),
    /// A statistic id's counter for an outcome.
    Stat {
        /// Statistic id.
        stat_id: u32,
        /// [`outcome`] code.
        outcome: u32,
    },
}

/// The verdict the specification gives a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// [`xdp_verdict`].
    pub verdict: u32,
    /// [`reason`] code.
    pub reason: u8,
    /// The counter that moves.
    pub counted: Counted,
}

impl Expected {
    fn global(reason: u8) -> Self {
        Self {
            verdict: xdp_verdict::PASS,
            reason,
            counted: Counted::Global(reason),
        }
    }
}

/// When a ban stops applying, relative to the test's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanExpiry {
    /// Never.
    Never,
    /// An hour from when it was written (in force for the whole case).
    Future,
    /// Already over (stored, but no longer in force).
    Past,
}

/// What is in force: the policy as the operator wrote it, the published
/// ports, the bans.
#[derive(Clone, Copy)]
pub struct World<'a> {
    /// Rules in order.
    pub policy: &'a Policy,
    /// Published ports (the first of duplicate keys counts).
    pub ports: &'a [PublishedPort],
    /// Interfaces rules may name.
    pub ifaces: &'a BTreeMap<String, u32>,
    /// Global audit mode.
    pub audit: bool,
    /// Bans.
    pub bans: &'a [(IpNet, BanExpiry)],
    /// Statistic ids.
    pub registry: &'a StatRegistry,
}

/// A datagram whose first fragment went to a published port (RFC 791 keys
/// fragments by source, destination, protocol and identification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

/// State that outlives one packet: tracked datagrams and token buckets,
/// each bucket as how far its theoretical arrival time runs ahead of now.
#[derive(Clone, Debug, Default)]
pub struct State {
    datagrams: HashMap<DatagramKey, u16>,
    per_source: HashMap<(u32, [u8; 16]), u64>,
    aggregate: HashMap<u32, u64>,
}

impl State {
    /// A statistic id was (re)allocated: it starts with empty buckets.
    pub fn forget_stats(&mut self, fresh: &[u32]) {
        for id in fresh {
            self.aggregate.remove(id);
        }
        self.per_source.retain(|(id, _), _| !fresh.contains(id));
    }

    /// Number of datagrams tracked.
    pub fn datagrams(&self) -> usize {
        self.datagrams.len()
    }
}

/// Classifies a frame arriving on `ifindex`, updating `state` as the data
/// plane must.
pub fn classify(world: &World<'_>, state: &mut State, frame: &[u8], ifindex: u32) -> Expected {
    let packet = match parse(frame) {
        Parsed::Skip(code) => return Expected::global(code),
        Parsed::Packet(packet) => packet,
    };
    let key = |id| DatagramKey {
        src: packet.src,
        dst: packet.dst,
        proto: packet.proto,
        id,
    };
    let dport = match packet.fragment {
        Fragment::Later { id } => match state.datagrams.get(&key(id)) {
            Some(port) => *port,
            None => return Expected::global(reason::FRAGMENT_UNTRACKED),
        },
        _ => packet.dport,
    };
    let Some(port) = published_port(world.ports, &packet, dport) else {
        return Expected::global(reason::NOT_PUBLISHED);
    };
    let stat = |owner: StatOwner| {
        world
            .registry
            .get(&owner)
            .unwrap_or_else(|| panic!("model: no statistic id for {owner:?}"))
    };
    let selected: Vec<&Rule> = world
        .policy
        .rules
        .iter()
        .filter(|rule| can_match(rule, port))
        .collect();
    let drop_unless = |audit: bool| {
        if audit {
            (xdp_verdict::PASS, outcome::AUDIT)
        } else {
            (xdp_verdict::DROP, outcome::DROP)
        }
    };
    let decided = |reason: u8, stat_id: u32, (verdict, outcome): (u32, u32)| Expected {
        verdict,
        reason,
        counted: Counted::Stat { stat_id, outcome },
    };
    let pass = (xdp_verdict::PASS, outcome::PASS);

    // A first fragment is remembered even from a banned source, so the
    // ban also covers the datagram's later fragments.
    if let Fragment::First { id } = packet.fragment {
        state.datagrams.insert(key(id), packet.dport);
    }

    if is_banned(world.bans, &packet.src) {
        let stat_id = stat(StatOwner::Banned(port.key));
        return decided(reason::BANNED, stat_id, drop_unless(world.audit));
    }

    if let Fragment::Later { .. } = packet.fragment {
        let action = selected
            .iter()
            .find_map(|rule| rule.fragments)
            .unwrap_or(world.policy.fragments);
        let stat_id = stat(StatOwner::Fragments(port.key));
        let result = match action {
            FragmentAction::Drop => drop_unless(world.audit),
            FragmentAction::Pass => pass,
        };
        return decided(reason::FRAGMENT, stat_id, result);
    }

    let Some(rule) = selected
        .iter()
        .find(|rule| conditions_hold(rule, port, &packet, world.ifaces, ifindex))
    else {
        let stat_id = stat(StatOwner::Unmatched(port.key));
        return decided(reason::UNMATCHED, stat_id, pass);
    };
    let stat_id = stat(StatOwner::Rule(port.key, rule.name.clone()));
    let audit = rule.audit || world.audit;
    match rule.action {
        Action::Pass => decided(reason::RULE_PASS, stat_id, pass),
        Action::Drop => decided(reason::RULE_DROP, stat_id, drop_unless(audit)),
        Action::RateLimit(limit) => {
            if admit(state, stat_id, &limit, &packet.src) {
                decided(reason::RATE_LIMIT_PASS, stat_id, pass)
            } else {
                decided(reason::RATE_LIMIT_DROP, stat_id, drop_unless(audit))
            }
        }
    }
}

/// The binding a destination reaches: one on its exact address, else the
/// wildcard one.
fn published_port<'a>(
    ports: &'a [PublishedPort],
    packet: &ModelPacket,
    dport: u16,
) -> Option<&'a PublishedPort> {
    let proto = match packet.proto {
        6 => Proto::Tcp,
        17 => Proto::Udp,
        _ => return None,
    };
    let family = Family::of(&packet.dst);
    let mut seen = std::collections::BTreeSet::new();
    let candidates: Vec<&PublishedPort> = ports
        .iter()
        .filter(|port| seen.insert(port.key))
        .filter(|port| {
            port.key.family == family && port.key.proto == proto && port.key.port == dport
        })
        .collect();
    candidates
        .iter()
        .find(|port| port.key.addr == Some(packet.dst))
        .or_else(|| candidates.iter().find(|port| port.key.addr.is_none()))
        .copied()
}

/// Whether a rule can match traffic to `port` at all: its selector picks the
/// port, and TCP-only conditions rule out UDP ports.
fn can_match(rule: &Rule, port: &PublishedPort) -> bool {
    let tcp_only = rule.syn_only || rule.tcp_flags.is_some();
    rule.ports.selects(port) && !(tcp_only && port.key.proto == Proto::Udp)
}

fn inside(nets: &[IpNet], addr: &IpAddr) -> bool {
    nets.iter().any(|net| net.contains(addr))
}

fn conditions_hold(
    rule: &Rule,
    port: &PublishedPort,
    packet: &ModelPacket,
    ifaces: &BTreeMap<String, u32>,
    ifindex: u32,
) -> bool {
    let tcp = port.key.proto == Proto::Tcp;
    let flags = if tcp { packet.tcp_flags } else { 0 };
    let syn = tcp && flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    rule.sources
        .from
        .as_deref()
        .is_none_or(|nets| inside(nets, &packet.src))
        && !inside(&rule.sources.not_from, &packet.src)
        && (rule.ifaces.is_empty()
            || rule
                .ifaces
                .iter()
                .any(|name| ifaces.get(name) == Some(&ifindex)))
        && (!rule.syn_only || syn)
        && rule
            .source_ports
            .is_none_or(|(low, high)| (low..=high).contains(&packet.sport))
        && rule
            .tcp_flags
            .is_none_or(|(mask, value)| tcp && flags & mask == value & mask)
}

/// Banned when a ban in force covers the source; banning a prefix again
/// replaces its earlier ban (the last one of a prefix counts).
fn is_banned(bans: &[(IpNet, BanExpiry)], src: &IpAddr) -> bool {
    bans.iter().enumerate().any(|(index, (net, expiry))| {
        let replaced = bans[index + 1..]
            .iter()
            .any(|(later, _)| later.trunc() == net.trunc());
        !replaced && *expiry != BanExpiry::Past && net.contains(src)
    })
}

/// The per-source bucket key: IPv4 as `::ffff:a.b.c.d`, IPv6 by its /64.
fn source_key(src: &IpAddr) -> [u8; 16] {
    match src {
        IpAddr::V4(addr) => addr.to_ipv6_mapped().octets(),
        IpAddr::V6(addr) => {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&addr.octets()[..8]);
            key
        }
    }
}

/// One GCRA step on a bucket `ahead` ns ahead of now; `None` = over the
/// limit, else how far ahead the bucket is afterwards.
fn gcra(ahead: u64, interval_ns: u64, burst_ns: u64) -> Option<u64> {
    let fast = interval_ns <= FAST_INTERVAL_MAX_NS && burst_ns >= FAST_BURST_MIN_NS;
    assert!(
        fast || interval_ns >= SLOW_INTERVAL_MIN_NS,
        "model: a bucket of interval {interval_ns} ns, burst {burst_ns} ns is not predictable"
    );
    let next = ahead + interval_ns;
    // A fast bucket runs at most a tick's worth of packets ahead of now:
    // nothing next to a slow bucket's hours.
    (next <= burst_ns).then_some(if fast { 0 } else { next })
}

fn admit(state: &mut State, stat_id: u32, limit: &dockfw::model::RateLimit, src: &IpAddr) -> bool {
    let interval = limit.rate.interval_ns();
    let burst = interval.saturating_mul(u64::from(limit.burst.max(1)));
    let aggregate = match (limit.per, limit.total) {
        (Per::Port, _) => Some((interval, burst)),
        (Per::Source, Some((rate, total_burst))) => {
            let total_interval = rate.interval_ns();
            Some((
                total_interval,
                total_interval.saturating_mul(u64::from(total_burst.max(1))),
            ))
        }
        (Per::Source, None) => None,
    };
    let source_key = (stat_id, source_key(src));
    let mut source_next = None;
    if limit.per == Per::Source {
        let ahead = state.per_source.get(&source_key).copied().unwrap_or(0);
        match gcra(ahead, interval, burst) {
            Some(next) => source_next = Some(next),
            None => return false,
        }
    }
    let mut aggregate_next = None;
    if let Some((interval, burst)) = aggregate {
        let ahead = state.aggregate.get(&stat_id).copied().unwrap_or(0);
        match gcra(ahead, interval, burst) {
            Some(next) => aggregate_next = Some(next),
            None => return false,
        }
    }
    if let Some(next) = source_next {
        state.per_source.insert(source_key, next);
    }
    if let Some(next) = aggregate_next {
        state.aggregate.insert(stat_id, next);
    }
    true
}
