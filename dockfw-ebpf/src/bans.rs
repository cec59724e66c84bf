//! Bans, checked for every packet to a published port. Flat in the number of
//! bans: for IPv4 the two-bit state of the source's /24 (one inlined array
//! lookup) decides most packets outright; a partially banned /24 costs two
//! more inlined array lookups (its slot, its bitmap); only
//! timed bans too wide for per-/24 entries, entries whose earliest expiry
//! has passed and /24s without a slot ask the LPM trie, which is exact. For
//! IPv6 one-bit summaries guard the trie: over hashed /32s, then (where that
//! is set) "a ban shorter than /64 in this /32" and "a ban in this /64".
//! Where the last is set, the /64's exact entry (if it has one) decides in
//! one or two hash lookups: the usual IPv6 bans, /64s and /128s, never walk
//! the trie.

use aya_ebpf::maps::{Array, lpm_trie::Key};
use dockfw_common::{
    BAN64_UNBANNED, Ban24, SUMMARY_WORDS, ban_state, ban64_host_bit, config_flag, family,
    summary_bucket_v4, summary_bucket_v6, summary_bucket_v6_64,
};

use crate::{
    clock::Clock,
    maps::{
        DFW_BAN24_ARR, DFW_BAN24_IX, DFW_BAN64_V6, DFW_BAN128_V6, DFW_BANREF_V6, DFW_BANS_V4,
        DFW_BANS_V6, DFW_BANSTATE_V4, DFW_BANSUM_V6,
    },
    parse::Packet,
};

/// Prefix length of a whole IPv4 address.
const V4_BITS: u32 = 32;
/// Prefix length of a whole IPv6 address.
const V6_BITS: u32 = 128;
/// /24 buckets per 64-bit word of the IPv4 state array (two bits each).
const STATES_PER_WORD: u32 = 32;

/// Whether bucket `bucket` of a one-bit summary is set (a missing word, which
/// cannot happen with the sizes user space creates, counts as set).
#[inline(always)]
pub fn bucket_set(summary: &Array<u64>, bucket: u32) -> bool {
    match summary.get(bucket >> 6) {
        Some(word) => (*word >> (bucket & 63)) & 1 != 0,
        None => true,
    }
}

/// Whether the packet's source is banned now.
#[inline(always)]
pub fn is_banned(packet: &Packet, config_flags: u32, clock: &mut Clock) -> bool {
    let first = u32::from_be(packet.src[0]);
    if packet.family == family::V4 {
        let bucket = summary_bucket_v4(first);
        let state = match DFW_BANSTATE_V4.get(bucket / STATES_PER_WORD) {
            Some(word) => (*word >> ((bucket % STATES_PER_WORD) * 2)) & 3,
            None => ban_state::EXACT,
        };
        match state {
            ban_state::NONE => false,
            ban_state::BANNED => true,
            ban_state::PARTIAL => match partial_entry(bucket) {
                Some(entry) => {
                    let host = (first & 0xff) as usize;
                    let (word, expires) = (entry.bits[(host >> 6) & 3], entry.expires_ns);
                    if (word >> (host & 63)) & 1 == 0 {
                        false
                    } else if expires == u64::MAX || clock.now() < expires {
                        true
                    } else {
                        trie_v4(packet, clock)
                    }
                }
                None => trie_v4(packet, clock),
            },
            _ => trie_v4(packet, clock),
        }
    } else {
        let always = config_flags & config_flag::BAN_LOOKUP_ALWAYS_V6 != 0;
        let bucket = summary_bucket_v6(first);
        if !always && !bucket_set(&DFW_BANSUM_V6, bucket) {
            return false;
        }
        let prefix64 = (u64::from(first) << 32) | u64::from(u32::from_be(packet.src[1]));
        let long = bucket_set(
            &DFW_BANREF_V6,
            SUMMARY_WORDS * 64 + summary_bucket_v6_64(prefix64),
        );
        if long {
            if let Some(expiry) = exact_v6(packet) {
                return expiry != BAN64_UNBANNED && unexpired(Some(expiry), clock);
            }
        } else if !always && !bucket_set(&DFW_BANREF_V6, bucket) {
            return false;
        }
        unexpired(
            DFW_BANS_V6
                .get(Key::new(V6_BITS, packet.src))
                .map(|ban| ban.expires_ns),
            clock,
        )
    }
}

/// The effective expiry of the source's IPv6 ban from its /64's exact entry
/// ([`BAN64_UNBANNED`]: none), or `None` when the /64 has none (then the
/// trie decides).
#[inline(always)]
fn exact_v6(packet: &Packet) -> Option<u64> {
    // SAFETY: the values are plain integers; an update from user space
    // replaces the element rather than writing it in place, and the old one
    // (not preallocated) is freed only after this program has run.
    let entry = unsafe { DFW_BAN64_V6.get([packet.src[0], packet.src[1]]) }?;
    if entry.hosts & ban64_host_bit(packet.src[2], packet.src[3]) != 0 {
        // SAFETY: as above.
        if let Some(expiry) = unsafe { DFW_BAN128_V6.get(packet.src) } {
            return Some(*expiry);
        }
    }
    Some(entry.expires_ns)
}

/// The banned-address bitmap of a partially banned /24, or `None` when it
/// has no slot (then the trie decides).
#[inline(always)]
fn partial_entry(bucket: u32) -> Option<&'static Ban24> {
    let slot = *DFW_BAN24_IX.get(bucket)?;
    if slot == 0 {
        return None;
    }
    DFW_BAN24_ARR.get(slot)
}

#[inline(always)]
fn trie_v4(packet: &Packet, clock: &mut Clock) -> bool {
    unexpired(
        DFW_BANS_V4
            .get(Key::new(V4_BITS, packet.src[0]))
            .map(|ban| ban.expires_ns),
        clock,
    )
}

#[inline(always)]
fn unexpired(expiry: Option<u64>, clock: &mut Clock) -> bool {
    match expiry {
        None => false,
        Some(u64::MAX) => true,
        Some(expiry) => clock.now() < expiry,
    }
}
