//! Keys, values and codes that cross the kernel/user boundary.

use core::mem::size_of;

/// Address families, as stored in keys.
pub mod family {
    /// IPv4.
    pub const V4: u8 = 4;
    /// IPv6.
    pub const V6: u8 = 6;
}

/// IP protocol numbers used in keys.
pub mod proto {
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// What a rule does with a packet it matches.
pub mod action {
    /// Hand the packet to netfilter (Docker's chains decide).
    pub const PASS: u8 = 0;
    /// Drop it here.
    pub const DROP: u8 = 1;
    /// Pass while within the token bucket, drop beyond it.
    pub const RATE_LIMIT: u8 = 2;
}

/// Per-rule flags ([`RuleAction::flags`]).
pub mod rule_flag {
    /// Count a would-be drop and pass instead.
    pub const AUDIT: u8 = 1 << 0;
    /// The token bucket is per source address (else one per port).
    pub const PER_SOURCE: u8 = 1 << 1;
    /// The rule has conditions checked after the bitmap (source port range,
    /// TCP flags).
    pub const RESIDUAL: u8 = 1 << 2;
}

/// Per-port flags ([`PortPolicy::flags`]).
pub mod port_flag {
    /// Some rule has a source condition: consult the source trie.
    pub const HAS_SOURCE_RULES: u32 = 1 << 0;
    /// Some rule has an interface condition: consult the interface masks.
    pub const HAS_IFACE_RULES: u32 = 1 << 1;
    /// Drop non-first fragments of datagrams whose first fragment came here.
    pub const FRAGMENTS_DROP: u32 = 1 << 2;
    /// Port-level drops (bans, fragments) only count as would-drop.
    pub const AUDIT: u32 = 1 << 3;
}

/// Global flags ([`Config::flags`]).
pub mod config_flag {
    /// Some IPv6 ban is shorter than /24 (too wide for the hashed summary):
    /// always consult the ban trie.
    pub const BAN_LOOKUP_ALWAYS_V6: u32 = 1 << 1;
    /// Some IPv6 rule source prefix is shorter than /24: always consult the
    /// source trie.
    pub const SOURCE_LOOKUP_ALWAYS_V6: u32 = 1 << 3;
    /// The host's local addresses are in [`crate::LOCAL_ADDRS_MAP`]: a port
    /// published on the wildcard address matches only packets to one of
    /// them, as Docker's DNAT (`-m addrtype --dst-type LOCAL`) does. Unset
    /// (nothing written yet): every destination counts as local.
    pub const LOCAL_SET: u32 = 1 << 4;
    /// With [`LOCAL_SET`]: the active [`crate::LocalSet`] is element 1 of the
    /// map, else element 0 (the set is double-buffered like the policies).
    pub const LOCAL_SET_ONE: u32 = 1 << 5;
}

/// Flags of a [`LocalSet`].
pub mod local_flag {
    /// The host has more local IPv4 prefixes than the set holds (every slot
    /// collision beyond [`crate::MAX_LOCAL_V4`] other prefixes): every IPv4
    /// destination counts as local.
    pub const ALL_V4: u32 = 1 << 0;
    /// Likewise for IPv6 and [`crate::MAX_LOCAL_V6`].
    pub const ALL_V6: u32 = 1 << 1;
}

/// Outcome of a counted decision; the counter is
/// [`crate::stat_index`]`(stat_id, outcome)`.
pub mod outcome {
    /// Handed to netfilter.
    pub const PASS: u32 = 0;
    /// Dropped.
    pub const DROP: u32 = 1;
    /// Would have been dropped; passed because of audit.
    pub const AUDIT: u32 = 2;
}

/// Why the data plane took a verdict. Global reasons (the packet reached no
/// published port) index [`crate::GLOBAL_STATS_MAP`]; the others appear in
/// traces and events.
pub mod reason {
    /// Not addressed to a published port (includes non-TCP/UDP IP traffic).
    pub const NOT_PUBLISHED: u8 = 0;
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    pub const NOT_IP: u8 = 1;
    /// A truncated or malformed header.
    pub const MALFORMED: u8 = 2;
    /// More IPv6 extension headers than the parser walks.
    pub const IPV6_EXT_LIMIT: u8 = 3;
    /// A non-first fragment of a datagram not seen going to a published port.
    pub const FRAGMENT_UNTRACKED: u8 = 4;
    /// A published port, no rule matched: netfilter decides.
    pub const UNMATCHED: u8 = 5;
    /// A rule with action pass matched.
    pub const RULE_PASS: u8 = 6;
    /// A rule with action drop matched.
    pub const RULE_DROP: u8 = 7;
    /// The source is banned.
    pub const BANNED: u8 = 8;
    /// A rate-limit rule matched and the packet was within its rate.
    pub const RATE_LIMIT_PASS: u8 = 9;
    /// A rate-limit rule matched and the packet exceeded its rate.
    pub const RATE_LIMIT_DROP: u8 = 10;
    /// A non-first fragment of a datagram that went to a published port.
    pub const FRAGMENT: u8 = 11;
    /// A published port without policy for the active generation (should not
    /// happen; fail-open).
    pub const NO_POLICY: u8 = 12;
    /// Number of reason codes.
    pub const COUNT: u8 = 13;

    /// The reason's name as used in logs, traces and metrics.
    pub const fn name(code: u8) -> &'static str {
        match code {
            NOT_PUBLISHED => "not_published",
            NOT_IP => "not_ip",
            MALFORMED => "malformed",
            IPV6_EXT_LIMIT => "ipv6_ext_limit",
            FRAGMENT_UNTRACKED => "fragment_untracked",
            UNMATCHED => "unmatched",
            RULE_PASS => "rule_pass",
            RULE_DROP => "rule",
            BANNED => "ban",
            RATE_LIMIT_PASS => "rate_limit_pass",
            RATE_LIMIT_DROP => "rate_limit",
            FRAGMENT => "fragment",
            NO_POLICY => "no_policy",
            _ => "unknown",
        }
    }
}

/// XDP verdicts (`enum xdp_action`) as plain numbers.
pub mod xdp_verdict {
    /// Error in the program; never returned by dockfw.
    pub const ABORTED: u32 = 0;
    /// Drop.
    pub const DROP: u32 = 1;
    /// Continue to the stack.
    pub const PASS: u32 = 2;
}

/// The single element of [`crate::CONFIG_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Generation whose ports and policies packets use (0 or 1).
    pub active_generation: u32,
    /// [`config_flag`]s.
    pub flags: u32,
    /// Sampled events: at most one per this many ns per statistic id, on
    /// average (0 disables events).
    pub event_interval_ns: u64,
    /// Sampled events: burst allowance per statistic id, in ns of interval.
    pub event_burst_ns: u64,
}

/// An IPv4 prefix the host treats as local: an address `a` (its 4 bytes as
/// loaded, network order) is in it when `a & mask == prefix`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalPrefixV4 {
    /// The prefix, masked, network order.
    pub prefix: u32,
    /// The netmask, network order.
    pub mask: u32,
}

/// An IPv6 prefix the host treats as local, word by word as
/// [`LocalPrefixV4`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalPrefixV6 {
    /// The prefix, masked, network order.
    pub prefix: [u32; 4],
    /// The netmask, network order.
    pub mask: [u32; 4],
}

/// An element of [`crate::LOCAL_ADDRS_MAP`]: the destinations Docker's
/// `addrtype LOCAL` match accepts (the host's local routing table entries of
/// type `local`), for ports published on the wildcard address.
///
/// Host addresses sit in direct-mapped tables at their hash
/// ([`crate::local_slot_v4`], [`crate::local_slot_v6`]); everything else is
/// in the prefix lists. A slot without an address holds a value whose own
/// hash is another slot, so no destination ever equals it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSet {
    /// Prefixes used in [`Self::v4`].
    pub count_v4: u32,
    /// Prefixes used in [`Self::v6`].
    pub count_v6: u32,
    /// [`local_flag`]s.
    pub flags: u32,
    /// Zero.
    pub pad: u32,
    /// IPv4 host addresses, network order, each at its slot.
    pub exact_v4: [u32; crate::LOCAL_SLOTS_V4],
    /// IPv6 host addresses, four words each, at their slots.
    pub exact_v6: [[u32; 4]; crate::LOCAL_SLOTS_V6],
    /// Other IPv4 local prefixes.
    pub v4: [LocalPrefixV4; crate::MAX_LOCAL_V4],
    /// Other IPv6 local prefixes.
    pub v6: [LocalPrefixV6; crate::MAX_LOCAL_V6],
}

impl LocalSet {
    /// A set with no local address: empty slots, no prefixes.
    pub fn empty() -> Self {
        // 1.0.0.0 and 2001:db8:: fill every slot but their own, which gets
        // the next address that hashes elsewhere.
        let filler_v4 = u32::from_ne_bytes([1, 0, 0, 0]);
        let mut other_v4 = filler_v4;
        while crate::local_slot_v4(other_v4) == crate::local_slot_v4(filler_v4) {
            other_v4 = u32::from_be(other_v4).wrapping_add(1).to_be();
        }
        let filler_v6 = [u32::from_ne_bytes([0x20, 0x01, 0x0d, 0xb8]), 0, 0, 0];
        let mut other_v6 = filler_v6;
        while crate::local_slot_v6(&other_v6) == crate::local_slot_v6(&filler_v6) {
            other_v6[3] = u32::from_be(other_v6[3]).wrapping_add(1).to_be();
        }
        let mut exact_v4 = [filler_v4; crate::LOCAL_SLOTS_V4];
        exact_v4[crate::local_slot_v4(filler_v4)] = other_v4;
        let mut exact_v6 = [filler_v6; crate::LOCAL_SLOTS_V6];
        exact_v6[crate::local_slot_v6(&filler_v6)] = other_v6;
        Self {
            count_v4: 0,
            count_v6: 0,
            flags: 0,
            pad: 0,
            exact_v4,
            exact_v6,
            v4: [LocalPrefixV4 { prefix: 0, mask: 0 }; crate::MAX_LOCAL_V4],
            v6: [LocalPrefixV6 {
                prefix: [0; 4],
                mask: [0; 4],
            }; crate::MAX_LOCAL_V6],
        }
    }

    /// True when IPv4 slot `slot` holds an address.
    pub fn v4_slot_used(&self, slot: usize) -> bool {
        crate::local_slot_v4(self.exact_v4[slot]) == slot
    }

    /// True when IPv6 slot `slot` holds an address.
    pub fn v6_slot_used(&self, slot: usize) -> bool {
        crate::local_slot_v6(&self.exact_v6[slot]) == slot
    }
}

impl Default for LocalSet {
    fn default() -> Self {
        Self::empty()
    }
}

/// Value of the ban tries ([`crate::BANS_V4_MAP`], [`crate::BANS_V6_MAP`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanValue {
    /// When the ban stops applying to addresses whose longest ban is this
    /// prefix, in `CLOCK_MONOTONIC` ns (`bpf_ktime_get_ns`); `u64::MAX` =
    /// never. It is the latest expiry of this ban and every shorter ban that
    /// covers it, so the longest match alone decides.
    pub expires_ns: u64,
    /// This ban's own expiry (user space bookkeeping; `u64::MAX` = never).
    pub own_expires_ns: u64,
}

/// Value of [`crate::BAN64_V6_MAP`]: what the bans say of every address of
/// one IPv6 /64 that holds a ban of /64 or longer, where every ban in it
/// longer than /64 is a /128 (others have no entry: the trie decides).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ban64 {
    /// Effective expiry (as in [`BanValue::expires_ns`]) of the longest ban
    /// covering the whole /64; [`BAN64_UNBANNED`] = no ban covers it.
    pub expires_ns: u64,
    /// Filter of the banned /128s in this /64: the bit
    /// [`crate::ban64_host_bit`] of each is set. An address whose bit is set
    /// is looked up in [`crate::BAN128_V6_MAP`] and, when found, takes that
    /// entry's expiry instead. Zero: no /128s.
    pub hosts: u64,
}

/// [`Ban64::expires_ns`] of a /64 no ban covers as a whole.
pub const BAN64_UNBANNED: u64 = 0;

/// Value of [`crate::BAN24_MAP`]: the banned addresses of one IPv4 /24.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ban24 {
    /// Bit `host` (the address's last byte) set = banned.
    pub bits: [u64; 4],
    /// The earliest expiry among the bans that set bits here (`u64::MAX` =
    /// none expire). Past it, the data plane asks the ban trie, which is
    /// exact, until user space rewrites the entry.
    pub expires_ns: u64,
}

/// Key of [`crate::PORT_ADDRS_MAP`]: a host port published on a specific
/// address, as the packet sees it before DNAT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    /// Destination address, network order; IPv4 in the first 4 bytes, rest
    /// zero.
    pub addr: [u8; 16],
    /// Destination port, network order (the bytes as in the packet).
    pub port_be: u16,
    /// [`proto`] number.
    pub proto: u8,
    /// [`family`].
    pub family: u8,
    /// Policy generation this entry belongs to.
    pub generation: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// One rule of a port, as the data plane applies it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleAction {
    /// [`action`] code.
    pub action: u8,
    /// [`rule_flag`]s.
    pub flags: u8,
    /// Residual TCP flag condition: `(flags & mask) == value`. Zero mask = none.
    pub tcp_flags_mask: u8,
    /// See `tcp_flags_mask`.
    pub tcp_flags_value: u8,
    /// Statistic id of this rule on this port (counters, buckets, events).
    pub stat_id: u32,
    /// Residual source port condition, host order, inclusive. `0..=65535` =
    /// any.
    pub sport_lo: u16,
    /// See `sport_lo`.
    pub sport_hi: u16,
    /// Zero.
    pub pad: u32,
    /// Token bucket: ns between admitted packets at the sustained rate.
    pub interval_ns: u64,
    /// Token bucket: how far ahead of now the bucket may run, in ns
    /// (`burst * interval_ns`).
    pub burst_ns: u64,
    /// Per-source rules: aggregate cap over all sources (0 = none).
    pub aggregate_interval_ns: u64,
    /// See `aggregate_interval_ns`.
    pub aggregate_burst_ns: u64,
}

/// Element of [`crate::POLICIES_MAP`]: what the data plane needs to decide
/// for one published port in one generation. Its index is also the "slot"
/// that prefixes the source-trie and interface-mask keys.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPolicy {
    /// [`port_flag`]s.
    pub flags: u32,
    /// Rules that match a source address that no stored prefix covers (and
    /// all rules when the port has no source conditions).
    pub default_bits: u32,
    /// Rules that only match TCP SYN (without ACK).
    pub syn_only_mask: u32,
    /// Rules that match on an interface without an interface-mask entry (the
    /// rules without an interface condition).
    pub iface_default_mask: u32,
    /// Rules with residual conditions ([`rule_flag::RESIDUAL`]).
    pub residual_mask: u32,
    /// Number of rules in use (at most [`crate::MAX_RULES_PER_PORT`]).
    pub rule_count: u32,
    /// Index in [`crate::RULES_MAP`] of rule 0; bit `i` is rule
    /// `rule_base + i`.
    pub rule_base: u32,
    /// Statistic id: packets no rule matched.
    pub stat_unmatched: u32,
    /// Statistic id: packets from banned sources.
    pub stat_banned: u32,
    /// Statistic id: non-first fragments.
    pub stat_fragments: u32,
    /// [`source_level`] bits: the IPv4 source table levels this port uses.
    pub source_levels_v4: u32,
}

impl Default for PortPolicy {
    fn default() -> Self {
        Self {
            flags: 0,
            default_bits: 0,
            syn_only_mask: 0,
            iface_default_mask: u32::MAX,
            residual_mask: 0,
            rule_count: 0,
            rule_base: 0,
            stat_unmatched: crate::STAT_NONE,
            stat_banned: crate::STAT_NONE,
            stat_fragments: crate::STAT_NONE,
            source_levels_v4: 0,
        }
    }
}

/// Key of the IPv4 source table ([`crate::RULE_SOURCES_V4_MAP`]): a port's
/// source prefixes expanded to the next multiple of 8 bits (/8, /16, /24,
/// /32), each entry holding the rule bitmap of the longest prefix of at most
/// that length covering it. The data plane looks up /32, /24, /16, /8 in
/// that order (only the levels the port has, see
/// [`PortPolicy::source_levels_v4`]) and takes the first hit: at most four
/// hash lookups, however many prefixes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceKeyV4 {
    /// Policy index.
    pub slot: u32,
    /// Source address masked to `level` bits, network order.
    pub addr: [u8; 4],
    /// 8, 16, 24 or 32.
    pub level: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// Bits of [`PortPolicy::source_levels_v4`]: which expansion levels of the
/// IPv4 source table a port has entries at (bit `i` = level `8 * (i + 1)`).
pub mod source_level {
    /// Entries at /8.
    pub const L8: u32 = 1 << 0;
    /// Entries at /16.
    pub const L16: u32 = 1 << 1;
    /// Entries at /24.
    pub const L24: u32 = 1 << 2;
    /// Entries at /32.
    pub const L32: u32 = 1 << 3;
}

/// Data of an IPv6 source-trie key; prefix length = 32 + source prefix length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceKeyV6 {
    /// Policy index, big endian.
    pub slot_be: [u8; 4],
    /// Source address, network order.
    pub addr: [u8; 16],
}

/// Key of [`crate::IFACE_MASKS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IfaceMaskKey {
    /// Policy index.
    pub slot: u32,
    /// Ingress interface index.
    pub ifindex: u32,
}

/// Key of [`crate::RATE_SOURCES_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// Statistic id of the rule instance.
    pub stat_id: u32,
    /// Source address: IPv4 as `::ffff:a.b.c.d`, IPv6 masked to its /64.
    pub addr: [u8; 16],
}

/// Key of [`crate::FRAGS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// [`family`].
    pub family: u8,
    /// [`proto`] of the datagram.
    pub proto: u8,
    /// Zero.
    pub pad: u16,
    /// IP identification (IPv4: 16 bits, zero extended), network order.
    pub id: u32,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

/// Value of [`crate::FRAGS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragValue {
    /// Destination port of the first fragment, network order.
    pub port_be: u16,
    /// Zero.
    pub pad: u16,
}

/// A per-CPU packet and byte count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (whole frame as received).
    pub bytes: u64,
}

/// A sampled drop (or would-drop) sent through [`crate::EVENTS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    /// `bpf_ktime_get_ns()` at the decision.
    pub timestamp_ns: u64,
    /// Statistic id (port and rule).
    pub stat_id: u32,
    /// Ingress interface.
    pub ifindex: u32,
    /// Frame length.
    pub packet_len: u32,
    /// [`outcome`] (drop or audit).
    pub outcome: u8,
    /// [`reason`] code.
    pub reason: u8,
    /// [`family`].
    pub family: u8,
    /// [`proto`].
    pub proto: u8,
    /// Destination port, network order.
    pub dst_port_be: u16,
    /// Source port, network order.
    pub src_port_be: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// Zero.
    pub pad: [u8; 3],
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// Destination address (IPv4 in the first 4 bytes).
    pub dst: [u8; 16],
}

/// Trace flags ([`TraceRecord::flags`]).
pub mod trace_flag {
    /// The destination matched a published port.
    pub const PUBLISHED: u32 = 1 << 0;
    /// The source matched a ban.
    pub const BANNED: u32 = 1 << 1;
    /// The packet is a TCP SYN without ACK.
    pub const SYN: u32 = 1 << 2;
    /// A rule matched (`rule_index` is valid).
    pub const RULE_MATCHED: u32 = 1 << 3;
    /// The packet is a non-first fragment.
    pub const FRAGMENT: u32 = 1 << 4;
    /// The port was found under its specific address (not the wildcard).
    pub const SPECIFIC_ADDRESS: u32 = 1 << 5;
}

/// What a trace instance records about the one packet it ran on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceRecord {
    /// Set to 1 when the program wrote this record.
    pub written: u32,
    /// [`xdp_verdict`] (the TC program records its XDP equivalent).
    pub verdict: u32,
    /// [`reason`] code.
    pub reason: u32,
    /// [`outcome`].
    pub outcome: u32,
    /// Statistic id the packet was (or would have been) counted under.
    pub stat_id: u32,
    /// Index of the matching rule on the port, if [`trace_flag::RULE_MATCHED`].
    pub rule_index: u32,
    /// Policy index of the port.
    pub slot: u32,
    /// Active generation.
    pub generation: u32,
    /// [`trace_flag`]s.
    pub flags: u32,
    /// Rule bitmap after all conditions (before first-match).
    pub candidate_bits: u32,
    /// Ingress ifindex the program saw.
    pub ifindex: u32,
    /// Zero.
    pub pad: u32,
}

macro_rules! assert_size {
    ($t:ty, $n:expr) => {
        const _: () = assert!(
            size_of::<$t>() == $n,
            concat!("ABI size of ", stringify!($t))
        );
    };
}

assert_size!(Config, 24);
assert_size!(LocalPrefixV4, 8);
assert_size!(LocalPrefixV6, 32);
assert_size!(
    LocalSet,
    16 + 4 * crate::LOCAL_SLOTS_V4
        + 16 * crate::LOCAL_SLOTS_V6
        + 8 * crate::MAX_LOCAL_V4
        + 32 * crate::MAX_LOCAL_V6
);
assert_size!(BanValue, 16);
assert_size!(Ban24, 40);
assert_size!(Ban64, 16);
assert_size!(PortKey, 24);
assert_size!(RuleAction, 48);
assert_size!(PortPolicy, 44);
assert_size!(SourceKeyV4, 12);
assert_size!(SourceKeyV6, 20);
assert_size!(IfaceMaskKey, 8);
assert_size!(RateKey, 20);
assert_size!(FragKey, 40);
assert_size!(FragValue, 4);
assert_size!(Counter, 16);
assert_size!(DropEvent, 64);
assert_size!(TraceRecord, 48);

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY (all impls): `#[repr(C)]`, integer and byte-array fields only,
    // no implicit padding (sizes asserted above equal the sum of the fields).
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for LocalSet {}
    unsafe impl aya::Pod for BanValue {}
    unsafe impl aya::Pod for Ban24 {}
    unsafe impl aya::Pod for Ban64 {}
    unsafe impl aya::Pod for PortKey {}
    unsafe impl aya::Pod for RuleAction {}
    unsafe impl aya::Pod for PortPolicy {}
    unsafe impl aya::Pod for SourceKeyV4 {}
    unsafe impl aya::Pod for SourceKeyV6 {}
    unsafe impl aya::Pod for IfaceMaskKey {}
    unsafe impl aya::Pod for RateKey {}
    unsafe impl aya::Pod for FragKey {}
    unsafe impl aya::Pod for FragValue {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for DropEvent {}
    unsafe impl aya::Pod for TraceRecord {}
}
