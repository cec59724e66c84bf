//! The floor for benchmarks: an XDP program that drops every frame and does
//! nothing else. Built with the data plane so both are measured in one run.
//!
//! Beside it, the least a port filter can do (`dockfw_matcher`): read the
//! Ethernet, IPv4 and TCP/UDP headers and drop what goes to one port. It
//! separates what reading a frame at all costs (the floor never touches the
//! packet) from what a classifier adds.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::Array,
    programs::XdpContext,
};

/// Drops everything.
#[xdp]
pub fn dockfw_floor(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

/// The destination port `dockfw_matcher` drops, network byte order, as set
/// by user space (element 0).
#[map]
static MATCHER_PORT: Array<u16> = Array::with_max_entries(1, 0);

/// Ethernet header length, and the offset of its EtherType.
const ETH_LEN: usize = 14;
const ETH_TYPE: usize = 12;

/// Drops IPv4 TCP and UDP to the port in [`MATCHER_PORT`]; passes the rest.
#[xdp]
pub fn dockfw_matcher(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + ETH_LEN + 20 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY (all reads): inside `data..end`, checked before each read.
    let ether_type = unsafe { core::ptr::read_unaligned((data + ETH_TYPE) as *const u16) };
    if ether_type != 0x0800u16.to_be() {
        return xdp_action::XDP_PASS;
    }
    let ip = data + ETH_LEN;
    // SAFETY: the 20-byte IPv4 header is inside the frame (checked).
    let (ihl, proto) = unsafe { (*(ip as *const u8) & 0x0f, *((ip + 9) as *const u8)) };
    if proto != 6 && proto != 17 {
        return xdp_action::XDP_PASS;
    }
    let l4 = ip + usize::from(ihl) * 4;
    if l4 + 4 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: the L4 ports are inside the frame (checked).
    let dport = unsafe { core::ptr::read_unaligned((l4 + 2) as *const u16) };
    match MATCHER_PORT.get(0) {
        Some(port) if *port == dport => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
