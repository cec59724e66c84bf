//! The ABI shared by dockfw's kernel programs and its user space.
//!
//! Everything here is `#[repr(C)]`, free of implicit padding (every pad byte
//! is a named field) and size-asserted at compile time, so that a key or value
//! written by user space is byte-for-byte what the data plane reads. No `bool`,
//! enum or `Option` crosses the boundary: codes are plain integers with named
//! constants.
//!
//! Byte order: every address and port that is part of a map key is kept in
//! network byte order (as it sits in the packet), so the hot path converts
//! nothing. Counts, rates and times are host order.
#![no_std]

pub mod maps;
pub mod types;

pub use maps::*;
pub use types::*;

/// Name of the XDP program in the eBPF object.
pub const PROG_XDP: &str = "dockfw_xdp";
/// Name of the TC (clsact ingress) program in the eBPF object.
pub const PROG_TC: &str = "dockfw_tc";

/// Version of the map layout, recorded in [`ABI_MAP`] with the pins. Pinned
/// maps created by a dockfw with another ABI version are not re-adopted.
/// Raise it when a pinned map's key or value changes meaning; a changed
/// size is caught by the layout check too, and a map added or no longer
/// used needs no new version (it is created next to the pins, or unpinned).
pub const ABI_VERSION: u32 = 1;

/// Rules per published port. A port's rule set is a `u32` bitmap, the first
/// matching rule is its lowest set bit.
pub const MAX_RULES_PER_PORT: usize = 32;

/// Policy generations kept side by side: the active one and the one being
/// written. One index flip activates the other.
pub const GENERATIONS: u32 = 2;

/// Slots of [`LocalSet::exact_v4`], the direct-mapped table of local IPv4
/// host addresses (/32): one load and one compare find the destination.
pub const LOCAL_SLOTS_V4: usize = 256;

/// Slots of [`LocalSet::exact_v6`] (local IPv6 /128s).
pub const LOCAL_SLOTS_V6: usize = 64;

/// Other local IPv4 prefixes a [`LocalSet`] holds, compared one by one: the
/// loopback /8, AnyIP routes, and host addresses whose slot was taken. A
/// host with more has every IPv4 destination treated as local
/// ([`local_flag::ALL_V4`]).
pub const MAX_LOCAL_V4: usize = 64;

/// Other local IPv6 prefixes a [`LocalSet`] holds ([`local_flag::ALL_V6`]
/// beyond).
pub const MAX_LOCAL_V6: usize = 32;

/// The [`LocalSet::exact_v4`] slot of an IPv4 address (its 4 bytes as
/// loaded, network order): a multiplicative hash, one multiply and a shift.
#[inline(always)]
pub const fn local_slot_v4(addr: u32) -> usize {
    (addr.wrapping_mul(0x9e37_79b1) >> 24) as usize
}

/// The [`LocalSet::exact_v6`] slot of an IPv6 address (four words as
/// loaded).
#[inline(always)]
pub const fn local_slot_v6(addr: &[u32; 4]) -> usize {
    ((addr[0] ^ addr[1] ^ addr[2] ^ addr[3]).wrapping_mul(0x9e37_79b1) >> 26) as usize
}

/// The bit of an IPv6 address in its /64's [`Ban64::hosts`] filter, from
/// its last two words as loaded (network order bytes).
#[inline(always)]
pub const fn ban64_host_bit(word2: u32, word3: u32) -> u64 {
    1 << ((word2 ^ word3).wrapping_mul(0x9e37_79b1) >> 26)
}

/// VLAN tags (802.1Q / 802.1ad) the parser steps over.
pub const MAX_VLAN_TAGS: usize = 2;

/// IPv6 extension headers the parser walks before giving up (counted as
/// [`Reason::Ipv6ExtLimit`] and passed to netfilter).
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

/// Entries of [`PORT_INDEX_MAP`]: generation x family x protocol x port.
pub const PORT_INDEX_ENTRIES: u32 = 1 << 19;

/// Flag in a [`PORT_INDEX_MAP`] value: some binding of this port is on a
/// specific host address; look the destination up in [`PORT_ADDRS_MAP`]
/// first. The other bits are the wildcard binding's policy index (0 = none).
pub const PORT_INDEX_SPECIFIC: u32 = 1 << 31;

/// Index in [`PORT_INDEX_MAP`]. `port_raw` is the port as the packet's two
/// bytes loaded in native order (network order kept, nothing converted).
#[inline(always)]
pub const fn port_index(generation: u32, family: u8, proto: u8, port_raw: u16) -> u32 {
    let family_bit = (family == types::family::V6) as u32;
    let proto_bit = (proto == types::proto::UDP) as u32;
    ((generation & 1) << 18) | (family_bit << 17) | (proto_bit << 16) | port_raw as u32
}

/// The first index of `generation`'s half of an array of `capacity` entries
/// (policies, rules). Index 0 of generation 0 is reserved for "none".
#[inline(always)]
pub const fn generation_base(capacity: u32, generation: u32) -> u32 {
    (generation & 1) * (capacity / 2)
}

/// Words of a one-bit-per-bucket summary bitmap (2^24 buckets: an IPv4 /24,
/// or a hashed IPv6 /32). A clear bit means "no stored prefix intersects this
/// bucket": the lookup it guards can be skipped.
pub const SUMMARY_WORDS: u32 = 1 << 18;

/// Words of the IPv4 source-level hints: four bits per /24, the
/// [`source_level`](types::source_level)s at which some port has an entry
/// covering that /24 (zero: no rule lists this source).
pub const SOURCE_HINT_WORDS_V4: u32 = 1 << 20;

/// Entries per source-trie node: one per value of an address byte.
pub const SOURCE_NODE_FANOUT: u32 = 256;

/// Entries of the source-trie nodes ([`crate::RULE_SOURCE_NODES_MAP`]):
/// a leaf holds the rule bitmap of the addresses below it, an inner entry
/// the index of the node for the next address byte. Node 0 is never used
/// (generation 0's half starts at 1), so a zero child means "leaf".
pub mod source_node {
    /// A leaf: `bits` is the rule bitmap.
    #[inline(always)]
    pub const fn leaf(bits: u32) -> u64 {
        bits as u64
    }

    /// An inner entry pointing at node `node` (non-zero).
    #[inline(always)]
    pub const fn child(node: u32) -> u64 {
        (node as u64) << 32
    }

    /// The node an entry points at, 0 for a leaf.
    #[inline(always)]
    pub const fn child_of(entry: u64) -> u32 {
        (entry >> 32) as u32
    }

    /// The rule bitmap of a leaf.
    #[inline(always)]
    pub const fn bits_of(entry: u64) -> u32 {
        entry as u32
    }
}

/// IPv4 /24s: entries of [`crate::BAN24_INDEX_MAP`].
pub const BAN24_INDEX_ENTRIES: u32 = 1 << 24;

/// Words of the IPv4 ban states: two bits per /24 ([`ban_state`]).
pub const BAN_STATE_WORDS_V4: u32 = 1 << 19;

/// What the IPv4 ban state of a /24 says.
pub mod ban_state {
    /// No ban touches this /24.
    pub const NONE: u64 = 0;
    /// Every address of the /24 is banned for good.
    pub const BANNED: u64 = 1;
    /// Some addresses are banned: see the /24's [`crate::Ban24`] entry.
    pub const PARTIAL: u64 = 2;
    /// Ask the ban trie (timed bans too wide for per-/24 entries).
    pub const EXACT: u64 = 3;
}

/// Summary bucket of an IPv4 address (host order value): its /24.
#[inline(always)]
pub const fn summary_bucket_v4(addr: u32) -> u32 {
    addr >> 8
}

/// Summary bucket of an IPv6 address from its first 32 bits (host order
/// value): a multiplicative hash to 24 bits.
#[inline(always)]
pub const fn summary_bucket_v6(prefix32: u32) -> u32 {
    prefix32.wrapping_mul(0x9e37_79b1) >> 8
}

/// Summary bucket of an IPv6 /64 from its first 64 bits (host order value):
/// a multiplicative hash to 24 bits.
#[inline(always)]
pub const fn summary_bucket_v6_64(prefix64: u64) -> u32 {
    (prefix64.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as u32
}

/// Counters per statistic id: one per [`outcome`](types::outcome).
pub const OUTCOMES_PER_STAT: u32 = 4;

/// A statistic id that is never allocated; a rule with this id counts nothing.
pub const STAT_NONE: u32 = 0;

/// Returns the index in [`STATS_MAP`] of the counter for `stat_id` and
/// `outcome`.
#[inline(always)]
pub const fn stat_index(stat_id: u32, outcome: u32) -> u32 {
    stat_id * OUTCOMES_PER_STAT + outcome
}
