//! A traffic generator for benchmarks and the demo, in the way of
//! `xdp-trafficgen`: user space runs this program with `BPF_PROG_RUN` in
//! live-frames mode on the generator's veth; every `XDP_TX` puts a frame in
//! the peer veth's ring, where its NAPI poll consumes it as a NIC driver
//! would.
//!
//! Each run rewrites the frame from a template (live-frame pages are recycled
//! and may come back modified by the receiver), optionally randomises the
//! IPv4 source (within a prefix) and source port with checksums updated
//! incrementally (RFC 1624), and paces itself with a token bucket over
//! `bpf_ktime_get_ns` (a `BPF_PROG_RUN` call has tens of ms of fixed cost, so
//! pacing happens here, per frame; frames over the budget are not sent).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::Array,
    programs::XdpContext,
};

/// Longest template frame.
const TEMPLATE_LEN: usize = 128;
/// Offset of the IPv4 header (untagged Ethernet).
const L3: usize = 14;
/// Offset of the L4 header (IPv4 without options).
const L4: usize = L3 + 20;
/// Offset of the TCP checksum in the TCP header.
const TCP_CSUM: usize = 16;

/// Generator settings, written by user space before each run.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GenConfig {
    /// Template frame; `len` bytes are used.
    pub template: [u8; TEMPLATE_LEN],
    /// Frame length.
    pub len: u32,
    /// Offset of the IPv4 header in the template (must be 14).
    pub l3_offset: u32,
    /// Offset of the L4 header in the template (must be 34).
    pub l4_offset: u32,
    /// Non-zero for TCP: the L4 checksum (at 16) follows the changes; UDP
    /// frames carry no checksum.
    pub l4_csum_offset: u32,
    /// Randomise the source address: bits set here are random.
    pub src_random_mask: u32,
    /// Randomise the source port.
    pub randomize_sport: u32,
    /// Nanoseconds between frames at the target rate (0 = unpaced).
    pub interval_ns: u64,
    /// Burst allowance in ns of interval.
    pub burst_ns: u64,
    /// Stop sending once this many frames were sent in total (the counter
    /// in `GEN_STATE[1]`): runs beyond it return XDP_DROP at once, so a large
    /// `repeat` per BPF_PROG_RUN call (each has a fixed cost) cannot
    /// overshoot.
    pub limit: u64,
}

/// Settings (one element).
#[map]
static GEN_CONFIG: Array<GenConfig> = Array::with_max_entries(1, 0);

/// Pacing state and counters: [0] = theoretical arrival time, [1] = frames
/// sent, [2] = runs held back by pacing. Shared, not per CPU: one user
/// thread drives the generator, and BPF_PROG_RUN runs its repeats on one
/// CPU at a time.
#[map]
static GEN_STATE: Array<u64> = Array::with_max_entries(3, 0);

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// RFC 1624: the checksum after one 16-bit word changed from `old` to
/// `new` (all values as stored, i.e. network order loaded natively; the sum
/// is byte-order independent).
#[inline(always)]
fn csum_replace(check: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!check) + u32::from(!old) + u32::from(new))
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(counter) = GEN_STATE.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot from a successful lookup.
        unsafe { *counter += 1 };
    }
}

/// The generator.
#[xdp]
pub fn dockfw_gen(ctx: XdpContext) -> u32 {
    let Some(config) = GEN_CONFIG.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    if let Some(sent) = GEN_STATE.get(1)
        && *sent >= config.limit
    {
        return xdp_action::XDP_DROP;
    }
    if config.interval_ns != 0 {
        let Some(tat) = GEN_STATE.get_ptr_mut(0) else {
            return xdp_action::XDP_ABORTED;
        };
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: a per-CPU slot from a successful lookup.
        let start = unsafe { *tat }.max(now);
        let next = start + config.interval_ns;
        if next - now > config.burst_ns {
            bump(2);
            return xdp_action::XDP_DROP;
        }
        // SAFETY: as above.
        unsafe { *tat = next };
    }

    let data = ctx.data();
    let end = ctx.data_end();
    let len = (config.len as usize).min(TEMPLATE_LEN);
    if data + TEMPLATE_LEN > end || len < 14 {
        return xdp_action::XDP_ABORTED;
    }
    // Only the frame's bytes, a word at a time: the BPF backend lowers a
    // memcpy to a byte-aligned destination into a load and a store per
    // byte, which made the copy the generator's largest cost.
    let words = config.template.as_ptr() as *const u64;
    for word in 0..TEMPLATE_LEN / 8 {
        if word * 8 >= len {
            break;
        }
        // SAFETY: `word * 8 + 8 <= TEMPLATE_LEN`: inside the template and,
        // `data..data + TEMPLATE_LEN` being checked, inside the frame.
        unsafe {
            core::ptr::write_unaligned(
                (data as *mut u64).add(word),
                core::ptr::read_unaligned(words.add(word)),
            );
        }
    }

    // Flood frames are untagged IPv4 with a 20-byte header: fixed offsets,
    // all inside the TEMPLATE_LEN bytes checked above.
    let csum = if config.l4_csum_offset != 0 {
        TCP_CSUM
    } else {
        0
    };
    let base = data as *mut u8;
    // SAFETY: the offsets are constants below TEMPLATE_LEN.
    let (ip_check, src, sport, l4_check) = unsafe {
        (
            base.add(L3 + 10) as *mut u16,
            base.add(L3 + 12) as *mut u16,
            base.add(L4) as *mut u16,
            base.add(L4 + TCP_CSUM) as *mut u16,
        )
    };
    // SAFETY (all accesses below): constant offsets inside the checked
    // TEMPLATE_LEN bytes; u16 accesses go through read/write_unaligned.
    unsafe {
        if config.src_random_mask != 0 {
            let random = bpf_get_prandom_u32() & config.src_random_mask;
            for half in 0..2 {
                let word = src.add(half);
                let old = core::ptr::read_unaligned(word);
                let flip = (random >> (16 * (1 - half))) as u16;
                let new = old ^ u16::from_be(flip);
                core::ptr::write_unaligned(word, new);
                let check = core::ptr::read_unaligned(ip_check);
                core::ptr::write_unaligned(ip_check, csum_replace(check, old, new));
                if csum != 0 {
                    let check = core::ptr::read_unaligned(l4_check);
                    core::ptr::write_unaligned(l4_check, csum_replace(check, old, new));
                }
            }
        }
        if config.randomize_sport != 0 {
            let old = core::ptr::read_unaligned(sport);
            let new = (bpf_get_prandom_u32() as u16) | 0x0400;
            core::ptr::write_unaligned(sport, new);
            if csum != 0 {
                let check = core::ptr::read_unaligned(l4_check);
                core::ptr::write_unaligned(l4_check, csum_replace(check, old, new));
            }
        }
    }
    // Trim to the template's length.
    if len < TEMPLATE_LEN {
        let shrink = (TEMPLATE_LEN - len) as i32;
        // SAFETY: shrinking the frame's tail by a bounded amount.
        if unsafe { aya_ebpf::helpers::bpf_xdp_adjust_tail(ctx.ctx, -shrink) } != 0 {
            return xdp_action::XDP_ABORTED;
        }
    }
    bump(1);
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
