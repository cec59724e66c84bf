//! The source dimension of a port's rules: the bitmap of rules whose source
//! condition holds. Usually the port's trie of 256-way array nodes: one
//! inlined array lookup per address byte down to the first leaf (at most 4
//! for IPv4, 16 for IPv6; no call; flat in the number of prefixes and
//! ports). Ports whose trie did not fit the node array use the older
//! tables. IPv4: at most four hash lookups, /32, /24, /16, /8, in a table
//! where each port's prefixes are expanded to those levels (first hit wins;
//! only the levels the port has are looked at). IPv6: one LPM lookup keyed
//! by (policy index, source). For those, a summary bitmap over every stored
//! prefix of every such port (one bit per IPv4 /24, per hashed IPv6 /32)
//! skips all of it for the usual flood source that no rule lists: those get
//! the port's default bitmap.

use aya_ebpf::maps::lpm_trie::Key;
use dockfw_common::{
    PortPolicy, SOURCE_NODE_FANOUT, SourceKeyV4, SourceKeyV6, config_flag, family, source_level,
    source_node, summary_bucket_v4, summary_bucket_v6,
};

use crate::{
    bans::bucket_set,
    classify::address_bytes,
    maps::{DFW_RSRC_NODE, DFW_RSRC_ROOT, DFW_RSRC_V6, DFW_RSRC4_LVL, DFW_RSUM_V4, DFW_RSUM_V6},
    parse::Packet,
};

/// Prefix length of a whole IPv6 address.
const V6_BITS: u32 = 128;
/// Source-trie keys start with the 32-bit policy index.
const SLOT_BITS: u32 = 32;

/// /24 buckets per word of the IPv4 hints (four bits each).
const HINTS_PER_WORD: u32 = 16;

/// The IPv4 source-table levels some port has entries at for this source's
/// /24 (a missing word, which cannot happen with the sizes user space
/// creates, counts as "all levels").
#[inline(always)]
fn level_hint_v4(source: u32) -> u32 {
    let bucket = summary_bucket_v4(source);
    match DFW_RSUM_V4.get(bucket / HINTS_PER_WORD) {
        Some(word) => ((*word >> ((bucket % HINTS_PER_WORD) * 4)) & 0xf) as u32,
        None => 0xf,
    }
}

/// The leaf of the port's source trie rooted at `root` for the address
/// `bytes` (network order), of which the first `depth` count (4 for IPv4,
/// 16 for IPv6). A missing node, which cannot happen with what user space
/// writes, gives `default`.
#[inline(always)]
fn trie(root: u32, bytes: &[u8; 16], depth: usize, default: u32) -> u32 {
    let mut node = root;
    for (level, byte) in bytes.iter().enumerate() {
        if level == depth {
            break;
        }
        let index = node
            .wrapping_mul(SOURCE_NODE_FANOUT)
            .wrapping_add(u32::from(*byte));
        let Some(entry) = DFW_RSRC_NODE.get(index) else {
            return default;
        };
        let entry = *entry;
        node = source_node::child_of(entry);
        if node == 0 {
            return source_node::bits_of(entry);
        }
    }
    default
}

/// The rule bitmap of the longest stored source prefix covering the packet's
/// source on this port, or the port's default bitmap when none does.
#[inline(always)]
pub fn source_bits(packet: &Packet, policy: &PortPolicy, slot: u32, config_flags: u32) -> u32 {
    let default = policy.default_bits;
    let v4 = packet.family == family::V4;
    let root = match DFW_RSRC_ROOT.get(slot) {
        Some(root) => *root,
        None => 0,
    };
    if root != 0 {
        let depth = if v4 { 4 } else { 16 };
        return trie(root, &address_bytes(packet.src), depth, default);
    }
    if v4 {
        let source = u32::from_be(packet.src[0]);
        let levels = policy.source_levels_v4 & level_hint_v4(source);
        // Longest level first; each is one hash lookup.
        for (bit, level) in [
            (source_level::L32, 32u8),
            (source_level::L24, 24),
            (source_level::L16, 16),
            (source_level::L8, 8),
        ] {
            if levels & bit == 0 {
                continue;
            }
            let key = SourceKeyV4 {
                slot,
                addr: (source & (u32::MAX << (32 - u32::from(level)))).to_be_bytes(),
                level,
                pad: [0; 3],
            };
            if let Some(bits) = DFW_RSRC4_LVL.get_ptr(key) {
                // SAFETY: a pointer from a successful lookup, read once.
                return unsafe { *bits };
            }
        }
        return default;
    }
    if config_flags & config_flag::SOURCE_LOOKUP_ALWAYS_V6 == 0
        && !bucket_set(&DFW_RSUM_V6, summary_bucket_v6(u32::from_be(packet.src[0])))
    {
        return default;
    }
    let data = SourceKeyV6 {
        slot_be: slot.to_be_bytes(),
        addr: address_bytes(packet.src),
    };
    match DFW_RSRC_V6.get(Key::new(SLOT_BITS + V6_BITS, data)) {
        Some(bits) => *bits,
        None => default,
    }
}
