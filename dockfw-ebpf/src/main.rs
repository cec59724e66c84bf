//! dockfw's data plane: one XDP program and one TC ingress classifier over one
//! core, parse -> classify -> act -> count.
//!
//! Both entry points are thin: they hand the packet bounds to [`run`] and
//! return the verdict it computed. Fail-open is the rule: anything the core
//! cannot parse or find policy for is passed to netfilter (and counted), so
//! dockfw never blocks traffic it does not understand.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod act;
mod bans;
mod classify;
mod clock;
mod fragments;
mod local;
mod maps;
mod parse;
mod ratelimit;
mod sources;

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use dockfw_common::xdp_verdict;

use crate::parse::Parsed;

/// Bytes of headers the TC program wants in the linear part of the skb:
/// Ethernet + 2 VLAN tags + IPv6 + 6 extension headers of the common sizes +
/// TCP.
const TC_PULL_LEN: u32 = 256;

/// The shared core. Returns an [`xdp_verdict`].
#[inline(always)]
fn run(data: usize, data_end: usize, ifindex: u32, bytes: u64) -> u32 {
    match parse::parse(data, data_end) {
        Parsed::Skip(reason) => {
            act::count_global(reason, bytes);
            act::trace_skip(reason, ifindex);
            xdp_verdict::PASS
        }
        Parsed::Packet(packet) => {
            let mut clock = clock::Clock::new();
            let decision = classify::classify(&packet, ifindex, !act::trace_mode(), &mut clock);
            act::record(&decision, &packet, ifindex, bytes, &mut clock);
            decision.verdict
        }
    }
}

/// XDP entry point.
#[xdp]
pub fn dockfw_xdp(ctx: XdpContext) -> u32 {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    run(
        data,
        data_end,
        ctx.ingress_ifindex() as u32,
        (data_end - data) as u64,
    )
}

/// TC (clsact ingress) entry point.
#[classifier]
pub fn dockfw_tc(ctx: TcContext) -> i32 {
    let len = ctx.len();
    // Headers may sit in paged fragments of the skb; pull them into the
    // linear part so direct packet access sees them. Failure only means the
    // parser finds a shorter frame and passes it as malformed.
    if ((ctx.data_end() - ctx.data()) as u32) < len.min(TC_PULL_LEN) {
        let _ = ctx.pull_data(len.min(TC_PULL_LEN));
    }
    // SAFETY: reading a field of the context the kernel passed us.
    let ifindex = unsafe { (*ctx.skb.skb).ingress_ifindex };
    match run(ctx.data(), ctx.data_end(), ifindex, u64::from(len)) {
        xdp_verdict::DROP => TC_ACT_SHOT,
        _ => TC_ACT_OK,
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
