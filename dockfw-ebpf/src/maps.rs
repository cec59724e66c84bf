//! The maps, named exactly as the constants in `dockfw_common::maps` (the
//! `#[map]` macro takes the static's name). Capacities are defaults; user
//! space overrides them at load time and pins every map but the trace record.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use dockfw_common::{
    BAN_STATE_WORDS_V4, BAN24_INDEX_ENTRIES, Ban24, Ban64, BanValue, Config, Counter, FragKey,
    FragValue, IfaceMaskKey, LocalSet, OUTCOMES_PER_STAT, PORT_INDEX_ENTRIES, PortKey, PortPolicy,
    RateKey, RuleAction, SOURCE_HINT_WORDS_V4, SOURCE_NODE_FANOUT, SUMMARY_WORDS, SourceKeyV4,
    SourceKeyV6, TraceRecord, capacity,
};

/// `BPF_F_NO_PREALLOC`.
const NO_PREALLOC: u32 = 1;

#[map]
pub static DFW_CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
pub static DFW_LOCAL: Array<LocalSet> = Array::with_max_entries(2, 0);

#[map]
pub static DFW_PORT_INDEX: Array<u32> = Array::with_max_entries(PORT_INDEX_ENTRIES, 0);

#[map]
pub static DFW_PORT_ADDRS: HashMap<PortKey, u32> =
    HashMap::with_max_entries(capacity::PORT_ADDRS, 0);

#[map]
pub static DFW_POLICIES: Array<PortPolicy> = Array::with_max_entries(capacity::POLICIES, 0);

#[map]
pub static DFW_RULES: Array<RuleAction> = Array::with_max_entries(capacity::RULES, 0);

#[map]
pub static DFW_BANSTATE_V4: Array<u64> = Array::with_max_entries(BAN_STATE_WORDS_V4, 0);

#[map]
pub static DFW_BAN24_IX: Array<u32> = Array::with_max_entries(BAN24_INDEX_ENTRIES, 0);

#[map]
pub static DFW_BAN24_ARR: Array<Ban24> = Array::with_max_entries(capacity::BAN24, 0);

#[map]
pub static DFW_BANSUM_V6: Array<u64> = Array::with_max_entries(SUMMARY_WORDS, 0);

#[map]
pub static DFW_BANREF_V6: Array<u64> = Array::with_max_entries(2 * SUMMARY_WORDS, 0);

#[map]
pub static DFW_RSUM_V4: Array<u64> = Array::with_max_entries(SOURCE_HINT_WORDS_V4, 0);

#[map]
pub static DFW_RSUM_V6: Array<u64> = Array::with_max_entries(SUMMARY_WORDS, 0);

// Ban tries are keyed by the address words as loaded from the packet: the
// same bytes as user space's `[u8; 4]` / `[u8; 16]` keys.
#[map]
pub static DFW_BANS_V4: LpmTrie<u32, BanValue> = LpmTrie::with_max_entries(capacity::BANS_V4, 0);

#[map]
pub static DFW_BANS_V6: LpmTrie<[u32; 4], BanValue> =
    LpmTrie::with_max_entries(capacity::BANS_V6, 0);

/// Exact IPv6 bans in front of the trie, keyed like it by the address words
/// as loaded; allocated as entries come (most hosts have few IPv6 bans).
#[map]
pub static DFW_BAN64_V6: HashMap<[u32; 2], Ban64> =
    HashMap::with_max_entries(capacity::BANS_V6, NO_PREALLOC);

#[map]
pub static DFW_BAN128_V6: HashMap<[u32; 4], u64> =
    HashMap::with_max_entries(capacity::BANS_V6, NO_PREALLOC);

/// Allocated as entries come (`BPF_F_NO_PREALLOC`): the expansion can be
/// large on some hosts and empty on most.
#[map]
pub static DFW_RSRC4_LVL: HashMap<SourceKeyV4, u32> =
    HashMap::with_max_entries(capacity::RULE_SOURCES_V4, NO_PREALLOC);

#[map]
pub static DFW_RSRC_ROOT: Array<u32> = Array::with_max_entries(capacity::POLICIES, 0);

#[map]
pub static DFW_RSRC_NODE: Array<u64> =
    Array::with_max_entries(capacity::RULE_SOURCE_NODES * SOURCE_NODE_FANOUT, 0);

#[map]
pub static DFW_RSRC_V6: LpmTrie<SourceKeyV6, u32> =
    LpmTrie::with_max_entries(capacity::RULE_SOURCES_V6, 0);

#[map]
pub static DFW_IFMASK: HashMap<IfaceMaskKey, u32> =
    HashMap::with_max_entries(capacity::IFACE_MASKS, 0);

#[map]
pub static DFW_RL_SRC: LruHashMap<RateKey, u64> =
    LruHashMap::with_max_entries(capacity::RATE_SOURCES, 0);

#[map]
pub static DFW_RL_AGG: Array<u64> = Array::with_max_entries(capacity::STATS, 0);

#[map]
pub static DFW_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(capacity::STATS * OUTCOMES_PER_STAT, 0);

#[map]
pub static DFW_GSTATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(capacity::GLOBAL_STATS, 0);

#[map]
pub static DFW_FRAGS: LruHashMap<FragKey, FragValue> =
    LruHashMap::with_max_entries(capacity::FRAGS, 0);

#[map]
pub static DFW_EVENTS: RingBuf = RingBuf::with_byte_size(capacity::EVENTS_BYTES, 0);

#[map]
pub static DFW_EVBUDGET: Array<u64> = Array::with_max_entries(capacity::STATS, 0);

#[map]
pub static DFW_TRACE: Array<TraceRecord> = Array::with_max_entries(1, 0);
