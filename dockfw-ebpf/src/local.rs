//! Is the destination one of the host's addresses? Docker DNATs a port
//! published on the wildcard address only for local destinations
//! (`-m addrtype --dst-type LOCAL`); a packet the host merely routes to
//! another machine's port of the same number is not aimed at a published
//! port and must pass untouched (invariant 1).
//!
//! The set is small and read per wildcard hit: one inlined array lookup and
//! a masked compare per local prefix, stopping at the first match (hosts
//! have a handful; the local address of the external interface comes early
//! because user space writes interface addresses before bridges).

use dockfw_common::{MAX_LOCAL_V4, MAX_LOCAL_V6, config_flag, family, local_flag};

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
        for i in 0..MAX_LOCAL_V4 {
            if i as u32 >= set.count_v4 {
                break;
            }
            let local = &set.v4[i];
            if dst & local.mask == local.prefix {
                return true;
            }
        }
        false
    } else {
        if set.flags & local_flag::ALL_V6 != 0 {
            return true;
        }
        let dst = packet.dst;
        for i in 0..MAX_LOCAL_V6 {
            if i as u32 >= set.count_v6 {
                break;
            }
            let local = &set.v6[i];
            if dst[0] & local.mask[0] == local.prefix[0]
                && dst[1] & local.mask[1] == local.prefix[1]
                && dst[2] & local.mask[2] == local.prefix[2]
                && dst[3] & local.mask[3] == local.prefix[3]
            {
                return true;
            }
        }
        false
    }
}
