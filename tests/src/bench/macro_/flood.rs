//! One flood against one installed variant, and what the receiver paid for
//! it: offered and dropped packets per second, and the NAPI kthread's CPU
//! time per dropped packet. The generator runs on its own CPU, the kthread
//! on the other; every flood is bounded in packets and in seconds.

use std::time::Duration;

use dockfw_tests::trafficgen::{Flood, FloodKind, FloodStats, Generator};

use super::{
    netfilter::{Chain, IptablesRules},
    receiver::{self, GENERATOR_CPU},
    topology::{ATTACK_BASE, ATTACK_FIXED, ATTACK_RANDOM_BITS, HOST_ADDR, Topology, WEB_PORT},
    variants::Installed,
};

/// Upper bound on the generator's rate, for packet bounds (TESTING.md:
/// 10-12 Mpps from one vCPU).
const MAX_GENERATOR_PPS: u64 = 40_000_000;
/// Real-time priority of the generator thread during a measured flood.
const GENERATOR_PRIORITY: i32 = 40;
/// Time the ring needs to drain after the generator stops.
const DRAIN: Duration = Duration::from_millis(100);
/// The probe flood: paced well under every variant's capacity.
const PROBE_PPS: u64 = 100_000;
/// Packets of the probe flood.
const PROBE_PACKETS: u64 = 100_000;
/// Largest burst of a paced flood, in frames: one live-frames batch. (The
/// generator's default, 20 ms of the rate, lets a generator that was
/// preempted catch up in bursts that overflow the receiver's 256-frame ring
/// at rates far below its capacity.)
const PACED_BURST: u64 = 64;
/// A variant must drop at least this share of the probe flood.
const PROBE_MIN_DROPPED: f64 = 0.95;

/// The four floods, all 64-byte frames to the published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UDP from one source address and port.
    UdpFixed,
    /// UDP from random sources (a /17) and ports.
    UdpRandom,
    /// TCP SYN from one source address and port.
    SynFixed,
    /// TCP SYN from random sources (a /17) and ports.
    SynRandom,
}

/// In run order.
pub const KINDS: [Kind; 4] = [
    Kind::UdpFixed,
    Kind::UdpRandom,
    Kind::SynFixed,
    Kind::SynRandom,
];

impl Kind {
    /// Short name.
    pub fn key(self) -> &'static str {
        match self {
            Self::UdpFixed => "udp-fixed",
            Self::UdpRandom => "udp-random",
            Self::SynFixed => "syn-fixed",
            Self::SynRandom => "syn-random",
        }
    }

    /// Column heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::UdpFixed => "UDP, fixed source",
            Self::UdpRandom => "UDP, random sources",
            Self::SynFixed => "SYN, fixed source",
            Self::SynRandom => "SYN, random sources",
        }
    }

    fn flood(self, topology: &Topology, rate_pps: Option<u64>) -> Flood {
        let random = matches!(self, Self::UdpRandom | Self::SynRandom);
        Flood {
            kind: match self {
                Self::UdpFixed | Self::UdpRandom => FloodKind::Udp,
                Self::SynFixed | Self::SynRandom => FloodKind::TcpSyn,
            },
            src: if random { ATTACK_BASE } else { ATTACK_FIXED },
            random_src_bits: if random { ATTACK_RANDOM_BITS } else { 0 },
            random_sport: random,
            dst: HOST_ADDR,
            dport: WEB_PORT,
            dst_mac: topology.rx_mac,
            src_mac: topology.gen_mac,
            rate_pps,
        }
    }
}

/// What one flood cost the receiver.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Frames the generator sent per second.
    pub offered_pps: f64,
    /// Frames the variant dropped per second.
    pub dropped_pps: f64,
    /// Receiver (NAPI kthread) CPU ns per dropped frame.
    pub ns_per_drop: f64,
    /// Share of its CPU the kthread used.
    pub receiver_busy: f64,
    /// Frames per second lost because the receiver's ring was full.
    pub ring_lost_pps: f64,
    /// Share of the time the kthread was runnable but waited for its CPU
    /// (something else ran there: noise).
    pub receiver_waiting: f64,
    /// Share of its CPU the generator thread used.
    pub generator_busy: f64,
}

/// What the probe flood showed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe {
    /// Frames sent.
    pub sent: u64,
    /// Frames the variant dropped.
    pub dropped: u64,
    /// Conntrack entries the flood made (packets in state NEW after
    /// conntrack, counted in mangle PREROUTING).
    pub conntrack_new: u64,
    /// Growth of the conntrack table over the flood.
    pub conntrack_left: i64,
}

/// The generator, loaded once.
pub struct Flooder {
    generator: Generator,
    /// CPU time of the last flood's generator thread.
    generator_cpu_ns: u64,
}

impl Flooder {
    /// Loads the generator.
    pub fn new(topology: &Topology) -> Self {
        Self {
            generator: Generator::new(&Kind::UdpFixed.flood(topology, None)),
            generator_cpu_ns: 0,
        }
    }

    /// Sends `kind` at `rate_pps` (None: as fast as it goes) for at most
    /// `seconds`, from this thread pinned to the generator CPU inside the
    /// generator namespace. A paced flood bursts at most [`PACED_BURST`]
    /// frames: the rate is the rate at every scale the receiver sees.
    /// `realtime` makes the thread SCHED_FIFO for the flood: whatever else
    /// runs on the machine then cannot gate the generator (a generator that
    /// only runs a third of the time sends bursts and pauses, and the
    /// receiver idles through the pauses).
    pub fn send(
        &mut self,
        topology: &Topology,
        kind: Kind,
        rate_pps: Option<u64>,
        max_packets: u64,
        seconds: f64,
        realtime: bool,
    ) -> Result<FloodStats, String> {
        self.generator.configure(&kind.flood(topology, rate_pps));
        if rate_pps.is_some() {
            self.generator.limit_burst(PACED_BURST);
        }
        receiver::set_affinity(0, GENERATOR_CPU)?;
        if realtime {
            receiver::set_realtime(0, Some(GENERATOR_PRIORITY))?;
        }
        let cpu_before = crate::bench::measure::thread_cpu_ns();
        let stats = {
            let _inside = topology.gen_ns.enter();
            self.generator.run(
                topology.gen_ifindex,
                max_packets,
                Duration::from_secs_f64(seconds),
            )
        };
        self.generator_cpu_ns = crate::bench::measure::thread_cpu_ns().saturating_sub(cpu_before);
        // Children spawned later (daemons, commands) must not inherit these.
        if realtime {
            receiver::set_realtime(0, None)?;
        }
        receiver::clear_affinity(0)?;
        Ok(stats)
    }

    /// Floods at `rate_pps` (None: as fast as the generator goes) for
    /// `seconds` and measures.
    pub fn measure(
        &mut self,
        topology: &Topology,
        installed: &Installed,
        napi: u32,
        kind: Kind,
        rate_pps: Option<u64>,
        seconds: f64,
    ) -> Result<Sample, String> {
        let drops_before = installed.drops(topology)?;
        let (cpu_before, wait_before) = receiver::sched_times(napi)?;
        let lost_before = ring_overflows(topology)?;
        let max_packets = (MAX_GENERATOR_PPS as f64 * seconds) as u64;
        let stats = self.send(topology, kind, rate_pps, max_packets, seconds, true)?;
        std::thread::sleep(DRAIN);
        let (cpu_after, wait_after) = receiver::sched_times(napi)?;
        let cpu = cpu_after.saturating_sub(cpu_before);
        let wait = wait_after.saturating_sub(wait_before);
        let dropped = installed.drops(topology)?.saturating_sub(drops_before);
        let lost = ring_overflows(topology)?.saturating_sub(lost_before);
        let elapsed = stats.elapsed.as_secs_f64().max(1e-9);
        if dropped == 0 {
            return Err(format!(
                "{}: nothing dropped out of {} frames sent; the variant is not on the flood's path",
                kind.key(),
                stats.sent
            ));
        }
        Ok(Sample {
            offered_pps: stats.pps(),
            dropped_pps: dropped as f64 / elapsed,
            ns_per_drop: cpu as f64 / dropped as f64,
            receiver_busy: cpu as f64 / (elapsed + DRAIN.as_secs_f64()) / 1e9,
            ring_lost_pps: lost as f64 / elapsed,
            receiver_waiting: wait as f64 / (elapsed + DRAIN.as_secs_f64()) / 1e9,
            generator_busy: self.generator_cpu_ns as f64 / elapsed / 1e9,
        })
    }

    /// A paced SYN flood from random sources that every variant can keep up
    /// with: checks the variant drops (nearly) all of it, and counts the
    /// conntrack entries it made. Also warms the variant up.
    pub fn probe(&mut self, topology: &Topology, installed: &Installed) -> Result<Probe, String> {
        let counter = IptablesRules::install(&topology.host, Chain::ConntrackProbe)?;
        let table_before = receiver::conntrack_entries(&topology.host)?;
        let drops_before = installed.drops(topology)?;
        let lost_before = ring_overflows(topology)?;
        let stats = self.send(
            topology,
            Kind::SynRandom,
            Some(PROBE_PPS),
            PROBE_PACKETS,
            10.0,
            false,
        )?;
        std::thread::sleep(DRAIN * 2);
        let dropped = installed.drops(topology)?.saturating_sub(drops_before);
        let table_after = receiver::conntrack_entries(&topology.host)?;
        let probe = Probe {
            sent: stats.sent,
            dropped,
            conntrack_new: counter.packets(&topology.host)?,
            conntrack_left: table_after as i64 - table_before as i64,
        };
        if (probe.dropped as f64) < PROBE_MIN_DROPPED * probe.sent as f64 {
            return Err(format!(
                "a paced probe flood ({PROBE_PPS} pps): {} of {} frames dropped ({} lost before the receiver); the variant does not drop the flood ({})",
                probe.dropped,
                probe.sent,
                ring_overflows(topology)? - lost_before,
                installed.counters(topology)
            ));
        }
        Ok(probe)
    }
}

/// Frames the generator's veth could not put in the receiver's ring (full).
pub fn ring_overflows(topology: &Topology) -> Result<u64, String> {
    receiver::ethtool_stat(
        &topology.gen_ns,
        &topology.gen_dev,
        "tx_queue_0_xdp_xmit_errors",
    )
}
