//! The source dimension of a port's rules: one LPM lookup keyed by
//! (policy index, source) gives the bitmap of rules whose source condition
//! holds. A summary bitmap over every stored prefix of every port (one bit
//! per IPv4 /24, per hashed IPv6 /32) skips the lookup for the usual flood
//! source that no rule lists: those get the port's default bitmap.

use aya_ebpf::maps::lpm_trie::Key;
use dockfw_common::{
    SourceKeyV4, SourceKeyV6, config_flag, family, summary_bucket_v4, summary_bucket_v6,
};

use crate::{
    bans::bucket_set,
    classify::address_bytes,
    maps::{DFW_RSRC_V4, DFW_RSRC_V6, DFW_RSUM_V4, DFW_RSUM_V6},
    parse::Packet,
};

/// Prefix length of a whole IPv4 address.
const V4_BITS: u32 = 32;
/// Prefix length of a whole IPv6 address.
const V6_BITS: u32 = 128;
/// Source-trie keys start with the 32-bit policy index.
const SLOT_BITS: u32 = 32;

/// Whether some stored source prefix may cover the packet's source.
#[inline(always)]
fn summary_says_maybe(packet: &Packet, config_flags: u32) -> bool {
    let first = u32::from_be(packet.src[0]);
    if packet.family == family::V4 {
        config_flags & config_flag::SOURCE_LOOKUP_ALWAYS_V4 != 0
            || bucket_set(&DFW_RSUM_V4, summary_bucket_v4(first))
    } else {
        config_flags & config_flag::SOURCE_LOOKUP_ALWAYS_V6 != 0
            || bucket_set(&DFW_RSUM_V6, summary_bucket_v6(first))
    }
}

/// The rule bitmap of the longest stored source prefix covering the packet's
/// source, or `default` when none does. (A match on the lookup rather than
/// `Option::unwrap_or`: LLVM may otherwise read the undefined payload of
/// `None` from a register the helper call clobbered, which the verifier
/// rejects.)
#[inline(always)]
pub fn source_bits(packet: &Packet, slot: u32, default: u32, config_flags: u32) -> u32 {
    if !summary_says_maybe(packet, config_flags) {
        return default;
    }
    let slot_be = slot.to_be_bytes();
    let found = if packet.family == family::V4 {
        let data = SourceKeyV4 {
            slot_be,
            addr: packet.src[0].to_ne_bytes(),
        };
        DFW_RSRC_V4.get(Key::new(SLOT_BITS + V4_BITS, data))
    } else {
        let data = SourceKeyV6 {
            slot_be,
            addr: address_bytes(packet.src),
        };
        DFW_RSRC_V6.get(Key::new(SLOT_BITS + V6_BITS, data))
    };
    match found {
        Some(bits) => *bits,
        None => default,
    }
}
