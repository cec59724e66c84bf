//! Map names and default capacities, used on both sides of the ABI.
//!
//! A name is at most 15 bytes (`BPF_OBJ_NAME_LEN - 1`); it is also the file
//! name of the map's pin under the pin directory.

/// `Array<Config>` with one element: the active generation and global knobs.
pub const CONFIG_MAP: &str = "DFW_CONFIG";
/// `Array<LocalSet>` with two elements, one active
/// ([`crate::config_flag::LOCAL_SET_ONE`]): the host's local addresses, which
/// a port published on the wildcard address is limited to.
pub const LOCAL_ADDRS_MAP: &str = "DFW_LOCAL";
/// `Array<u32>`: published ports by (generation, family, protocol, port),
/// see [`crate::port_index`]; the value is a policy index, with
/// [`crate::PORT_INDEX_SPECIFIC`] when some binding of the port is on a
/// specific address.
pub const PORT_INDEX_MAP: &str = "DFW_PORT_INDEX";
/// `HashMap<PortKey, u32>`: policy index of ports published on a specific
/// host address (0 = not published on that address).
pub const PORT_ADDRS_MAP: &str = "DFW_PORT_ADDRS";
/// `Array<PortPolicy>`: per-port policies; index 0 is "none". Each
/// generation uses its own half.
pub const POLICIES_MAP: &str = "DFW_POLICIES";
/// `Array<RuleAction>`: rules of all ports, each port a contiguous block.
/// Each generation uses its own half.
pub const RULES_MAP: &str = "DFW_RULES";
/// `LpmTrie<[u8; 4], BanValue>`: banned IPv4 sources.
pub const BANS_V4_MAP: &str = "DFW_BANS_V4";
/// `LpmTrie<[u8; 16], BanValue>`: banned IPv6 sources.
pub const BANS_V6_MAP: &str = "DFW_BANS_V6";
/// `Array<u64>`: the IPv4 ban state of every /24, two bits each
/// ([`crate::ban_state`]): most packets are decided here, in one inlined
/// array lookup whatever the number of bans.
pub const BAN_STATES_V4_MAP: &str = "DFW_BANSTATE_V4";
/// `Array<u32>`: per IPv4 /24 (address >> 8, 2^24 entries, 64 MiB), the
/// slot in [`BAN24_MAP`] of its banned addresses; read only for /24s in
/// state [`crate::ban_state::PARTIAL`] (0 = none: ask the ban trie).
pub const BAN24_INDEX_MAP: &str = "DFW_BAN24_IX";
/// `Array<Ban24>`: the banned addresses of /24s in state
/// [`crate::ban_state::PARTIAL`], found through [`BAN24_INDEX_MAP`]: two
/// inlined array lookups, no hashing. A changed entry is written to a fresh
/// slot and then swapped in with one index store; a released slot is reused
/// only once no packet can still hold it.
pub const BAN24_MAP: &str = "DFW_BAN24_ARR";
/// Pins older versions created that this one no longer uses; removed when
/// the data plane is loaded (a program still attached keeps its reference
/// until it is replaced).
pub const OBSOLETE_PINS: &[&str] = &["DFW_BAN24", "DFW_RSRC_V4"];
/// Pinned maps that hold nothing a restart would lose (the daemon rewrites
/// them whole from the host at start): a pin of another layout is replaced
/// by a new map instead of refusing the start.
pub const REBUILT_PINS: &[&str] = &[LOCAL_ADDRS_MAP];
/// `Array<u64>`: summary bitmap over hashed IPv6 /32s that some ban
/// intersects ([`crate::summary_bucket_v6`]); a clear bit skips the trie.
pub const BAN_SUMMARY_V6_MAP: &str = "DFW_BANSUM_V6";
/// `Array<u64>`, two bitmaps of [`crate::SUMMARY_WORDS`] words that refine
/// [`BAN_SUMMARY_V6_MAP`] where it is set: first, per hashed /32, "a ban
/// shorter than /64 intersects it"; then, per hashed /64
/// ([`crate::summary_bucket_v6_64`]), "a ban of /64 or longer lies in it".
/// Both clear: no ban covers the address, the trie is skipped.
pub const BAN_REFINE_V6_MAP: &str = "DFW_BANREF_V6";
/// `HashMap<[u8; 8], Ban64>`: per IPv6 /64 (its first 8 bytes, network
/// order) that holds a ban of /64 or longer and no ban between /65 and
/// /127: the verdict for its addresses without walking the trie. Looked up
/// only where [`BAN_REFINE_V6_MAP`]'s /64 bit is set; a /64 without an
/// entry asks the trie.
pub const BAN64_V6_MAP: &str = "DFW_BAN64_V6";
/// `HashMap<[u8; 16], u64>`: the banned /128s of the /64s that have a
/// [`BAN64_V6_MAP`] entry, with their effective expiry; looked up only for
/// addresses whose bit is set in that entry's host filter.
pub const BAN128_V6_MAP: &str = "DFW_BAN128_V6";
/// `Array<u64>`: per IPv4 /24, four bits: the source table levels at which
/// some port (of either generation) has an entry covering it
/// ([`crate::SOURCE_HINT_WORDS_V4`]). The data plane looks up only those
/// levels; none for the usual flood source that no rule lists.
pub const RULE_SOURCE_SUMMARY_V4_MAP: &str = "DFW_RSUM_V4";
/// `Array<u64>`: the same over hashed IPv6 /32s.
pub const RULE_SOURCE_SUMMARY_V6_MAP: &str = "DFW_RSUM_V6";
/// `HashMap<SourceKeyV4, u32>`: per-port rule bitmaps by IPv4 source,
/// prefixes expanded to /8, /16, /24 and /32 levels (see
/// [`crate::SourceKeyV4`]).
pub const RULE_SOURCES_V4_MAP: &str = "DFW_RSRC4_LVL";
/// `Array<u32>`: per policy index, the root node of the port's source trie
/// in [`RULE_SOURCE_NODES_MAP`] (0 = the port's table is in
/// [`RULE_SOURCES_V4_MAP`] or [`RULE_SOURCES_V6_MAP`] instead).
pub const RULE_SOURCE_ROOTS_MAP: &str = "DFW_RSRC_ROOT";
/// `Array<u64>`: the source tries' nodes, [`crate::SOURCE_NODE_FANOUT`]
/// entries each (see [`crate::source_node`]): per port, the longest-prefix
/// match over its rules' source prefixes in inlined array lookups, one per
/// byte of the address (at most 4 for IPv4, 16 for IPv6). Nodes are shared between ports
/// (identical subtrees are stored once) and split between the two
/// generations like the policies.
pub const RULE_SOURCE_NODES_MAP: &str = "DFW_RSRC_NODE";
/// `LpmTrie<SourceKeyV6, u32>`: per-slot rule bitmaps by IPv6 source prefix.
pub const RULE_SOURCES_V6_MAP: &str = "DFW_RSRC_V6";
/// `HashMap<IfaceMaskKey, u32>`: per-(policy, ingress ifindex) mask of rules
/// whose interface condition holds.
pub const IFACE_MASKS_MAP: &str = "DFW_IFMASK";
/// `LruHashMap<RateKey, u64>`: per-source token buckets (GCRA arrival time).
pub const RATE_SOURCES_MAP: &str = "DFW_RL_SRC";
/// `Array<u64>`: per-statistic aggregate token buckets (GCRA arrival time).
pub const RATE_AGGREGATE_MAP: &str = "DFW_RL_AGG";
/// `PerCpuArray<Counter>`: counters indexed by [`crate::stat_index`].
pub const STATS_MAP: &str = "DFW_STATS";
/// `PerCpuArray<Counter>`: counters of traffic that reaches no published port,
/// indexed by [`crate::reason`].
pub const GLOBAL_STATS_MAP: &str = "DFW_GSTATS";
/// `LruHashMap<FragKey, FragValue>`: datagrams whose first fragment went to a
/// published port, so their later fragments get that port's fragment action.
pub const FRAGS_MAP: &str = "DFW_FRAGS";
/// `RingBuf` of sampled [`crate::DropEvent`]s.
pub const EVENTS_MAP: &str = "DFW_EVENTS";
/// `Array<u64>`: per-statistic event budget (GCRA arrival time).
pub const EVENT_BUDGET_MAP: &str = "DFW_EVBUDGET";
/// `Array<TraceRecord>` with one element, written only by a trace instance.
/// Never pinned: each trace loads its own.
pub const TRACE_MAP: &str = "DFW_TRACE";

/// `Array<u32>` with one element, pinned next to the others but not in the
/// eBPF object: the [`crate::ABI_VERSION`] of the dockfw that created the
/// pins. A pin set of another version is not re-adopted (the layout check
/// compares sizes, which a change of meaning at equal sizes would pass); a
/// pin set without it (older versions) is checked by layout alone.
pub const ABI_MAP: &str = "DFW_ABI";

/// Global read-only flag (set at load time) that turns a program instance into
/// a side-effect-free tracer: no counter, bucket, fragment entry or event is
/// written, and the decision is recorded in [`TRACE_MAP`].
pub const TRACE_MODE_GLOBAL: &str = "DFW_TRACE_MODE";

/// Maps shared by every instance and pinned under the pin directory.
pub const PINNED_MAPS: &[&str] = &[
    CONFIG_MAP,
    LOCAL_ADDRS_MAP,
    PORT_INDEX_MAP,
    PORT_ADDRS_MAP,
    POLICIES_MAP,
    RULES_MAP,
    BANS_V4_MAP,
    BANS_V6_MAP,
    BAN_STATES_V4_MAP,
    BAN24_INDEX_MAP,
    BAN24_MAP,
    BAN_SUMMARY_V6_MAP,
    BAN_REFINE_V6_MAP,
    BAN64_V6_MAP,
    BAN128_V6_MAP,
    RULE_SOURCE_SUMMARY_V4_MAP,
    RULE_SOURCE_SUMMARY_V6_MAP,
    RULE_SOURCES_V4_MAP,
    RULE_SOURCE_ROOTS_MAP,
    RULE_SOURCE_NODES_MAP,
    RULE_SOURCES_V6_MAP,
    IFACE_MASKS_MAP,
    RATE_SOURCES_MAP,
    RATE_AGGREGATE_MAP,
    STATS_MAP,
    GLOBAL_STATS_MAP,
    FRAGS_MAP,
    EVENTS_MAP,
    EVENT_BUDGET_MAP,
];

/// Default capacities; each can be overridden at load time (they are the
/// `max_entries` the eBPF object declares).
pub mod capacity {
    /// Port policies, both generations together (a port range counts one
    /// per port; a port published on several addresses one per address).
    pub const POLICIES: u32 = 16_384;
    /// Rules over all ports, both generations together.
    pub const RULES: u32 = 131_072;
    /// Port bindings on specific host addresses, both generations together.
    pub const PORT_ADDRS: u32 = 8_192;
    /// Banned IPv4 prefixes.
    pub const BANS_V4: u32 = 1_048_576;
    /// Banned IPv6 prefixes.
    pub const BANS_V6: u32 = 262_144;
    /// IPv4 /24s with partially banned addresses (slots of 40 bytes; the
    /// per-/24 index in front of them takes 64 MiB whatever this is). /24s
    /// beyond it are decided by the ban trie (exact, slower).
    pub const BAN24: u32 = 1_048_576;
    /// Entries of the IPv4 source table (prefixes expanded to /8, /16, /24,
    /// /32 levels: up to 128 per prefix), both generations together.
    pub const RULE_SOURCES_V4: u32 = 1_048_576;
    /// Nodes of the source tries (2 KiB each), both generations together;
    /// ports whose tries do not fit use [`crate::RULE_SOURCES_V4_MAP`] or
    /// [`crate::RULE_SOURCES_V6_MAP`].
    pub const RULE_SOURCE_NODES: u32 = 4_096;
    /// Source prefixes of rules, both generations together, IPv6.
    pub const RULE_SOURCES_V6: u32 = 65_536;
    /// Interface masks, both generations together.
    pub const IFACE_MASKS: u32 = 16_384;
    /// Per-source rate-limit buckets (LRU: the least recently used is evicted).
    pub const RATE_SOURCES: u32 = 65_536;
    /// Statistic ids (each a port's unmatched/ban/fragment tally or a rule
    /// instance on a port); also sizes the aggregate buckets and event budgets.
    pub const STATS: u32 = 16_384;
    /// Tracked fragmented datagrams (LRU).
    pub const FRAGS: u32 = 8_192;
    /// Ring buffer for sampled drop events, in bytes (a power of two pages).
    pub const EVENTS_BYTES: u32 = 256 * 1024;
    /// Global reason counters.
    pub const GLOBAL_STATS: u32 = 16;
}
