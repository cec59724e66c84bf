//! Flood generation for benchmarks and the demo: drives the `dockfw_gen`
//! XDP program (see `dockfw-ebpf/src/trafficgen.rs`) with BPF_PROG_RUN in
//! live-frames mode on a veth in a namespace the caller created. Frames go
//! out as XDP_TX into the peer's ring, as a NIC would deliver them. Bounded
//! in packets and in time.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::Array,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use crate::frame::checksum;

/// Longest template the program copies (must match the program).
const TEMPLATE_LEN: usize = 128;
/// Frames per kernel batch in live mode, the most the kernel takes. It
/// also sizes the page_pool ring the receiver returns frames to: with 64, a
/// receiver on another CPU holding a ring's worth of frames overflowed it,
/// and every frame became a page freed there and allocated again here
/// (half the generator's and the receiver's time).
const BATCH: u32 = 256;
/// Most runs per BPF_PROG_RUN call (each call has a fixed cost of tens of ms).
const PER_CALL: u32 = 1 << 23;
/// Runs of the first call of a flood; later calls are sized from the
/// previous one's pace to last about [`CALL_TIME`].
const FIRST_CALL: u32 = 1 << 18;
/// Fewest runs per call.
const MIN_CALL: u32 = 1 << 14;
/// Target length of one call: the kernel does not look at the clock inside
/// a call, so a flood overshoots its time bound by up to this much.
const CALL_TIME: Duration = Duration::from_millis(250);

/// What to flood with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodKind {
    /// 64-byte UDP datagrams.
    Udp,
    /// TCP SYNs with valid checksums (conntrack would mark bad ones INVALID).
    TcpSyn,
}

/// A flood description.
#[derive(Clone, Debug)]
pub struct Flood {
    /// UDP or TCP SYN.
    pub kind: FloodKind,
    /// Source address (base when randomised).
    pub src: Ipv4Addr,
    /// Low bits of the source that are random (0 = fixed source; 16 = a /16
    /// of spoofed sources).
    pub random_src_bits: u8,
    /// Random source ports.
    pub random_sport: bool,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
    /// Destination MAC (the receiving interface's).
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Target rate (None = as fast as possible).
    pub rate_pps: Option<u64>,
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Frames transmitted.
    pub sent: u64,
    /// Runs held back by pacing.
    pub held_back: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl FloodStats {
    /// Offered packets per second.
    pub fn pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `GenConfig` of the program, byte for byte.
#[repr(C)]
#[derive(Clone, Copy)]
struct GenConfig {
    template: [u8; TEMPLATE_LEN],
    len: u32,
    l3_offset: u32,
    l4_offset: u32,
    l4_csum_offset: u32,
    src_random_mask: u32,
    randomize_sport: u32,
    interval_ns: u64,
    burst_ns: u64,
    limit: u64,
}

// SAFETY: repr(C), integers and a byte array, no padding (128 + 6*4 = 152,
// 8-aligned, then three u64).
unsafe impl aya::Pod for GenConfig {}

/// The frame of a flood (the template, before randomisation).
pub fn flood_frame(flood: &Flood) -> (Vec<u8>, usize, usize, usize) {
    let mut frame = Vec::with_capacity(64);
    frame.extend_from_slice(&flood.dst_mac);
    frame.extend_from_slice(&flood.src_mac);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    let l3 = frame.len();
    // 60-byte frames (64 on the wire with the FCS): UDP with 18 bytes of
    // payload; TCP SYN with an MSS option and 2 bytes of Ethernet padding.
    let (proto, l4_len) = match flood.kind {
        FloodKind::Udp => (17u8, 8 + 18),
        FloodKind::TcpSyn => (6u8, 24),
    };
    let total = (20 + l4_len) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    frame.extend_from_slice(&flood.src.octets());
    frame.extend_from_slice(&flood.dst.octets());
    let ip_sum = checksum(&frame[l3..l3 + 20]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let l4 = frame.len();
    let sport: u16 = 40000;
    let csum_offset = match flood.kind {
        FloodKind::Udp => {
            frame.extend_from_slice(&sport.to_be_bytes());
            frame.extend_from_slice(&flood.dport.to_be_bytes());
            frame.extend_from_slice(&(l4_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&[0x5a; 18]);
            // UDP over IPv4 may carry no checksum; random sources then need
            // no L4 fix-up.
            0
        }
        FloodKind::TcpSyn => {
            frame.extend_from_slice(&sport.to_be_bytes());
            frame.extend_from_slice(&flood.dport.to_be_bytes());
            frame.extend_from_slice(&0x0102_0304u32.to_be_bytes());
            frame.extend_from_slice(&0u32.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
            frame.extend_from_slice(&[2, 4, 0x05, 0xb4]);
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&flood.src.octets());
            pseudo.extend_from_slice(&flood.dst.octets());
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(l4_len as u16).to_be_bytes());
            pseudo.extend_from_slice(&frame[l4..]);
            let sum = checksum(&pseudo);
            frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            16
        }
    };
    (frame, l3, l4, csum_offset)
}

/// A loaded generator.
pub struct Generator {
    ebpf: Ebpf,
    config: Option<GenConfig>,
}

impl Generator {
    /// Loads the generator and configures it for `flood`.
    pub fn new(flood: &Flood) -> Self {
        crate::require_root("loading the traffic generator");
        let mut ebpf = Ebpf::load(dockfw::ebpf::TRAFFICGEN_OBJECT)
            .unwrap_or_else(|error| panic!("loading the generator: {}", crate::chain(&error)));
        let program: &mut Xdp = ebpf
            .program_mut(dockfw::ebpf::TRAFFICGEN_PROGRAM)
            .and_then(|program| program.try_into().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the generator object has no XDP program {}",
                    dockfw::ebpf::TRAFFICGEN_PROGRAM
                )
            });
        program
            .load()
            .unwrap_or_else(|error| panic!("verifying the generator: {}", crate::chain(&error)));
        let mut generator = Self { ebpf, config: None };
        generator.configure(flood);
        generator
    }

    /// Replaces the flood settings.
    pub fn configure(&mut self, flood: &Flood) {
        let (frame, l3, l4, csum) = flood_frame(flood);
        let mut template = [0u8; TEMPLATE_LEN];
        template[..frame.len()].copy_from_slice(&frame);
        let mask = if flood.random_src_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << flood.random_src_bits) - 1
        };
        let (interval_ns, burst_ns) = match flood.rate_pps {
            Some(rate) if rate > 0 => {
                let interval = (1_000_000_000 / rate).max(1);
                // A few ms of burst: pacing must not phase-lock with ticks.
                // 20 ms of burst: enough to ride over the gaps between
                // BPF_PROG_RUN calls without phase-locking to the tick.
                (interval, interval * (rate / 50).max(8))
            }
            _ => (0, 0),
        };
        let config = GenConfig {
            template,
            len: frame.len() as u32,
            l3_offset: l3 as u32,
            l4_offset: l4 as u32,
            l4_csum_offset: csum as u32,
            src_random_mask: if flood.random_src_bits == 0 { 0 } else { mask },
            randomize_sport: u32::from(flood.random_sport),
            interval_ns,
            burst_ns,
            limit: 0,
        };
        self.config = Some(config);
        self.write_config(0);
    }

    /// Caps the pacing's burst allowance at `frames` frames (the default is
    /// 20 ms of the rate): after the generator was preempted it then sends
    /// less rather than a burst that overflows a slow receiver's ring.
    pub fn limit_burst(&mut self, frames: u64) {
        if let Some(config) = self.config.as_mut()
            && config.interval_ns != 0
        {
            config.burst_ns = config.interval_ns * frames.max(1);
        }
        self.write_config(0);
    }

    fn write_config(&mut self, limit: u64) {
        let Some(mut config) = self.config else {
            panic!("the generator is not configured");
        };
        config.limit = limit;
        let map = self
            .ebpf
            .map_mut("GEN_CONFIG")
            .unwrap_or_else(|| panic!("no GEN_CONFIG map"));
        let mut array: Array<_, GenConfig> =
            Array::try_from(map).unwrap_or_else(|error| panic!("GEN_CONFIG: {error}"));
        array
            .set(0, config, 0)
            .unwrap_or_else(|error| panic!("writing GEN_CONFIG: {error}"));
    }

    fn counters(&self) -> (u64, u64) {
        let map = self
            .ebpf
            .map("GEN_STATE")
            .unwrap_or_else(|| panic!("no GEN_STATE map"));
        let array: Array<_, u64> =
            Array::try_from(map).unwrap_or_else(|error| panic!("GEN_STATE: {error}"));
        let read = |index: u32| array.get(&index, 0).unwrap_or(0);
        (read(1), read(2))
    }

    /// Floods out of `ifindex` (the generator's veth, in the calling
    /// thread's namespace) until `max_packets` were sent or `max_time`
    /// passed.
    pub fn run(&mut self, ifindex: u32, max_packets: u64, max_time: Duration) -> FloodStats {
        let (sent_before, held_before) = self.counters();
        self.write_config(sent_before.saturating_add(max_packets));
        let frame = [0u8; TEMPLATE_LEN];
        // struct xdp_md: data, data_end (must equal the frame size), data_meta,
        // ingress_ifindex, rx_queue_index, egress_ifindex.
        let md: [u32; 6] = [0, TEMPLATE_LEN as u32, 0, ifindex, 0, 0];
        // SAFETY: a [u32; 6] viewed as its 24 bytes (struct xdp_md).
        let ctx = unsafe { std::slice::from_raw_parts(md.as_ptr().cast::<u8>(), 24) };
        let program: &Xdp = self
            .ebpf
            .program(dockfw::ebpf::TRAFFICGEN_PROGRAM)
            .and_then(|program| program.try_into().ok())
            .unwrap_or_else(|| panic!("generator program missing"));
        let start = Instant::now();
        let mut repeat = FIRST_CALL;
        loop {
            let (sent, _) = self.counters();
            if sent - sent_before >= max_packets || start.elapsed() >= max_time {
                break;
            }
            let options = TestRunOptions {
                data_in: Some(&frame),
                ctx_in: Some(ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                ..TestRunOptions::default()
            };
            let call = Instant::now();
            match program.test_run(options) {
                Ok(_) => {}
                // A signal (Ctrl-C) ends the flood; the caller decides what
                // the signal means.
                Err(aya::programs::ProgramError::SyscallError(error))
                    if error.io_error.kind() == std::io::ErrorKind::Interrupted =>
                {
                    break;
                }
                Err(error) => panic!(
                    "BPF_PROG_RUN (live frames) failed: {}",
                    crate::chain(&error)
                ),
            }
            // A slow machine (or receiver) must not stretch a call, and so
            // the flood, to seconds: size the next call from this one.
            let runs_per_second = f64::from(repeat) / call.elapsed().as_secs_f64().max(1e-6);
            let left = max_time.saturating_sub(start.elapsed()).min(CALL_TIME);
            repeat = (runs_per_second * left.as_secs_f64())
                .clamp(f64::from(MIN_CALL), f64::from(PER_CALL)) as u32;
        }
        let (sent, held) = self.counters();
        FloodStats {
            sent: sent - sent_before,
            held_back: held - held_before,
            elapsed: start.elapsed(),
        }
    }
}

/// The MAC address of `ifname` inside `ns`.
pub fn mac_of(ns: &crate::netns::NetNs, ifname: &str) -> [u8; 6] {
    // (nsenter --net keeps the root namespace's /sys, so ask iproute2.)
    let output = ns.run_ok(
        "read a MAC address",
        "ip",
        &["-o", "link", "show", "dev", ifname],
    );
    let line = String::from_utf8_lossy(&output.stdout);
    let text = line
        .split_whitespace()
        .skip_while(|word| *word != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC address for {ifname}: {line}"));
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(text.split(':')) {
        *slot = u8::from_str_radix(part, 16)
            .unwrap_or_else(|error| panic!("bad MAC {text:?}: {error}"));
    }
    mac
}
