//! Is the destination one of the host's addresses? Docker DNATs a port
//! published on the wildcard address only for local destinations
//! (`-m addrtype --dst-type LOCAL`); a packet the host merely routes to
//! another machine's port of the same number is not aimed at a published
//! port and must pass untouched (invariant 1).
//!
//! Read per wildcard hit, so the usual case costs one inlined array lookup,
//! a hash and one compare: the host's addresses sit in a direct-mapped table
//! at their hash. Only a destination not found there (routed traffic, the
//! loopback /8, AnyIP ranges, an address whose slot another took) walks the
//! prefix list, every prefix compared without an exit at the first match:
//! an exit per iteration made the compiler carry the caller's pending
//! decision into each one, which cost more than the compares it saved.

use dockfw_common::{
    MAX_LOCAL_V4, MAX_LOCAL_V6, config_flag, family, local_flag, local_slot_v4, local_slot_v6,
};

use crate::{maps::DFW_LOCAL, parse::Packet};

/// True when `packet`'s destination is local, or when no set has been
/// written yet (`config_flags` without [`config_flag::LOCAL_SET`]).
#[inline(always)]
pub fn is_local(packet: &Packet, config_flags: u32) -> bool {
    if config_flags & config_flag::LOCAL_SET == 0 {
        return true;
    }
    let index = u32::from(config_flags & config_flag::LOCAL_SET_ONE != 0);
    // Fail-open for invariant 1: without a set, nothing counts as local and
    // wildcard ports pass to netfilter.
    let Some(set) = DFW_LOCAL.get(index) else {
        return false;
    };
    if packet.family == family::V4 {
        if set.flags & local_flag::ALL_V4 != 0 {
            return true;
        }
        let dst = packet.dst[0];
        if set.exact_v4[local_slot_v4(dst)] == dst {
            return true;
        }
        let mut hit = 0;
        for i in 0..MAX_LOCAL_V4 {
            if i as u32 >= set.count_v4 {
                break;
            }
            let local = &set.v4[i];
            hit |= is_zero(u64::from((dst & local.mask) ^ local.prefix));
        }
        hit != 0
    } else {
        if set.flags & local_flag::ALL_V6 != 0 {
            return true;
        }
        let dst = packet.dst;
        let exact = &set.exact_v6[local_slot_v6(&dst)];
        if exact[0] == dst[0] && exact[1] == dst[1] && exact[2] == dst[2] && exact[3] == dst[3] {
            return true;
        }
        let mut hit = 0;
        for i in 0..MAX_LOCAL_V6 {
            if i as u32 >= set.count_v6 {
                break;
            }
            let local = &set.v6[i];
            let differs = ((dst[0] & local.mask[0]) ^ local.prefix[0])
                | ((dst[1] & local.mask[1]) ^ local.prefix[1])
                | ((dst[2] & local.mask[2]) ^ local.prefix[2])
                | ((dst[3] & local.mask[3]) ^ local.prefix[3]);
            hit |= is_zero(u64::from(differs));
        }
        hit != 0
    }
}

/// 1 when `x` (below 2^32) is 0, else 0, without a branch: a compare would
/// be a jump in BPF, and a jump per prefix doubles the paths the verifier
/// walks through the loop.
#[inline(always)]
fn is_zero(x: u64) -> u64 {
    // SAFETY: reading back a local just written; it hides the value from
    // LLVM, which would otherwise fold the arithmetic back into a compare.
    let x = unsafe { core::ptr::read_volatile(&x) };
    ((x + 0xffff_ffff) >> 32) ^ 1
}
