//! Loading the data plane: the eBPF object, its maps (fresh, or re-adopted
//! from pins) and its two programs, into one typed [`Dataplane`].
//!
//! Every map is taken out of the object once, as its typed aya map, so a key
//! or value size that does not match the ABI fails here, at start-up, rather
//! than on the first write.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, IterableMap, LpmTrie, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, SchedClassifier, Xdp},
};
use dockfw_common::{
    BAN_REFINE_V6_MAP, BAN_STATES_V4_MAP, BAN_SUMMARY_V6_MAP, BAN24_INDEX_MAP, BAN24_MAP,
    BAN64_V6_MAP, BAN128_V6_MAP, BANS_V4_MAP, BANS_V6_MAP, Ban24, Ban64, BanValue, CONFIG_MAP,
    Config, Counter, EVENT_BUDGET_MAP, EVENTS_MAP, FRAGS_MAP, FragKey, FragValue, GLOBAL_STATS_MAP,
    IFACE_MASKS_MAP, IfaceMaskKey, LOCAL_ADDRS_MAP, LocalSet, OUTCOMES_PER_STAT, PINNED_MAPS,
    POLICIES_MAP, PORT_ADDRS_MAP, PORT_INDEX_MAP, PROG_TC, PROG_XDP, PortKey, PortPolicy,
    RATE_AGGREGATE_MAP, RATE_SOURCES_MAP, RULE_SOURCE_NODES_MAP, RULE_SOURCE_ROOTS_MAP,
    RULE_SOURCE_SUMMARY_V4_MAP, RULE_SOURCE_SUMMARY_V6_MAP, RULE_SOURCES_V4_MAP,
    RULE_SOURCES_V6_MAP, RULES_MAP, RateKey, RuleAction, SOURCE_NODE_FANOUT, STATS_MAP,
    SourceKeyV4, SourceKeyV6, TRACE_MAP, TRACE_MODE_GLOBAL, TraceRecord, capacity,
};

/// Map capacities (`max_entries`). They apply when a map is created; a
/// re-adopted pinned map keeps the capacity it was created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacities {
    /// Port policies over both generations.
    pub policies: u32,
    /// Rules over both generations.
    pub rules: u32,
    /// Port bindings on specific addresses over both generations.
    pub port_addrs: u32,
    /// Banned IPv4 prefixes.
    pub bans_v4: u32,
    /// Banned IPv6 prefixes (also the capacity of the exact /64 and /128
    /// entries in front of their trie).
    pub bans_v6: u32,
    /// Partially banned IPv4 /24s.
    pub ban24: u32,
    /// Rule source prefixes (IPv4) over both generations.
    pub rule_sources_v4: u32,
    /// Source-trie nodes over both generations.
    pub rule_source_nodes: u32,
    /// Source-trie roots (created with one per policy; a pin re-adopted
    /// next to policies of another capacity can differ: ports beyond it use
    /// the hash/LPM tables).
    pub rule_source_roots: u32,
    /// Rule source prefixes (IPv6) over both generations.
    pub rule_sources_v6: u32,
    /// Interface masks over both generations.
    pub iface_masks: u32,
    /// Per-source rate-limit buckets.
    pub rate_sources: u32,
    /// Statistic ids.
    pub stats: u32,
    /// Tracked fragmented datagrams.
    pub frags: u32,
}

impl Default for Capacities {
    fn default() -> Self {
        Self {
            policies: capacity::POLICIES,
            rules: capacity::RULES,
            port_addrs: capacity::PORT_ADDRS,
            bans_v4: capacity::BANS_V4,
            bans_v6: capacity::BANS_V6,
            ban24: capacity::BAN24,
            rule_sources_v4: capacity::RULE_SOURCES_V4,
            rule_source_nodes: capacity::RULE_SOURCE_NODES,
            rule_source_roots: capacity::POLICIES,
            rule_sources_v6: capacity::RULE_SOURCES_V6,
            iface_masks: capacity::IFACE_MASKS,
            rate_sources: capacity::RATE_SOURCES,
            stats: capacity::STATS,
            frags: capacity::FRAGS,
        }
    }
}

/// How to load the data plane.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Directory on a bpffs whose `maps/` holds the pinned maps: they are
    /// re-adopted when present and created and pinned otherwise. `None`
    /// keeps every map private to this process (tests, benchmarks).
    pub pin_dir: Option<PathBuf>,
    /// Capacities for maps that get created.
    pub capacities: Capacities,
    /// Load a side-effect-free trace instance (see
    /// [`dockfw_common::TRACE_MODE_GLOBAL`]). Requires the pins to exist.
    pub trace: bool,
}

/// Errors while loading the data plane.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object could not be loaded (map creation, BTF, relocation).
    #[error("loading the eBPF object failed: {0}")]
    Object(#[source] aya::EbpfError),
    /// A map the ABI names is missing from the object.
    #[error("the eBPF object has no map {name}")]
    MissingMap {
        /// Map name.
        name: &'static str,
    },
    /// A map has another type, key or value size than the ABI.
    #[error(
        "map {name} does not match this dockfw's ABI (a pin left by another version? \
         run `dockfw detach` or use another --pin-dir): {source}"
    )]
    MapType {
        /// Map name.
        name: &'static str,
        /// aya's error.
        #[source]
        source: MapError,
    },
    /// A program is missing or was rejected by the verifier.
    #[error("program {name} could not be loaded: {source}")]
    Program {
        /// Program name.
        name: &'static str,
        /// aya's error (carries the verifier log).
        #[source]
        source: ProgramError,
    },
    /// No BPF filesystem for the pins.
    #[error(transparent)]
    Bpffs(#[from] super::bpffs::BpffsError),
    /// The pin directory could not be created.
    #[error(
        "cannot create the pin directory {path}: {source} (is the BPF filesystem mounted at \
         /sys/fs/bpf?)"
    )]
    PinDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A pinned map has another layout than this build's (left by another
    /// dockfw version).
    #[error(
        "the pinned map {path} has key/value sizes {found:?} (or another map type), this dockfw \
         expects {expected:?} (pins left by another dockfw version); stop the other dockfw and run \
         `dockfw detach --pin-dir DIR` (bans and rate-limit state are lost), or use another \
         --pin-dir"
    )]
    IncompatiblePin {
        /// Map name.
        name: &'static str,
        /// Pin path.
        path: PathBuf,
        /// Key and value sizes of the pinned map.
        found: (usize, usize),
        /// Key and value sizes this build uses.
        expected: (usize, usize),
    },
    /// The pins were created by a dockfw of another ABI version.
    #[error(
        "the pinned maps under {path} were created by a dockfw of ABI version {found}, this one \
         is version {expected}: they cannot be re-adopted (run `dockfw detach` or use another \
         --pin-dir; see docs/upgrading.md)"
    )]
    AbiVersion {
        /// The pinned maps' directory.
        path: PathBuf,
        /// The version recorded there.
        found: u32,
        /// This build's version.
        expected: u32,
    },
    /// The ABI version could not be recorded with the pins.
    #[error("cannot pin the ABI version record {path}: {source}")]
    RecordAbi {
        /// The pin.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: aya::pin::PinError,
    },
    /// A pin of another layout that is rebuilt could not be removed.
    #[error("cannot remove the pin {path} to replace it with this version's layout: {source}")]
    ReplacePin {
        /// The pin.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A trace needs the daemon's pinned maps.
    #[error("no pinned dockfw maps under {0} (is `dockfw run` running with this --pin-dir?)")]
    NotPinned(PathBuf),
}

/// The data plane's maps, typed as the ABI says.
pub struct Maps {
    /// [`dockfw_common::CONFIG_MAP`].
    pub config: Array<MapData, Config>,
    /// [`dockfw_common::LOCAL_ADDRS_MAP`].
    pub local: Array<MapData, LocalSet>,
    /// [`dockfw_common::PORT_INDEX_MAP`].
    pub port_index: Array<MapData, u32>,
    /// [`dockfw_common::PORT_ADDRS_MAP`].
    pub port_addrs: HashMap<MapData, PortKey, u32>,
    /// [`dockfw_common::POLICIES_MAP`].
    pub policies: Array<MapData, PortPolicy>,
    /// [`dockfw_common::RULES_MAP`].
    pub rules: Array<MapData, RuleAction>,
    /// [`dockfw_common::BANS_V4_MAP`].
    pub bans_v4: LpmTrie<MapData, [u8; 4], BanValue>,
    /// [`dockfw_common::BANS_V6_MAP`].
    pub bans_v6: LpmTrie<MapData, [u8; 16], BanValue>,
    /// [`dockfw_common::BAN_STATES_V4_MAP`].
    pub ban_states_v4: Array<MapData, u64>,
    /// [`dockfw_common::BAN24_INDEX_MAP`].
    pub ban24_index: Array<MapData, u32>,
    /// [`dockfw_common::BAN24_MAP`].
    pub ban24: Array<MapData, Ban24>,
    /// Which slots of the two maps above are in use (`None` until the
    /// first ban update scans them).
    pub ban_slots: Option<super::bans::BanSlots>,
    /// [`dockfw_common::BAN_SUMMARY_V6_MAP`].
    pub ban_summary_v6: Array<MapData, u64>,
    /// [`dockfw_common::BAN_REFINE_V6_MAP`].
    pub ban_refine_v6: Array<MapData, u64>,
    /// [`dockfw_common::BAN64_V6_MAP`].
    pub ban64_v6: HashMap<MapData, [u8; 8], Ban64>,
    /// [`dockfw_common::BAN128_V6_MAP`].
    pub ban128_v6: HashMap<MapData, [u8; 16], u64>,
    /// [`dockfw_common::RULE_SOURCE_SUMMARY_V4_MAP`].
    pub rule_source_summary_v4: Array<MapData, u64>,
    /// [`dockfw_common::RULE_SOURCE_SUMMARY_V6_MAP`].
    pub rule_source_summary_v6: Array<MapData, u64>,
    /// [`dockfw_common::RULE_SOURCES_V4_MAP`].
    pub rule_sources_v4: HashMap<MapData, SourceKeyV4, u32>,
    /// [`dockfw_common::RULE_SOURCE_ROOTS_MAP`].
    pub rule_source_roots: Array<MapData, u32>,
    /// [`dockfw_common::RULE_SOURCE_NODES_MAP`].
    pub rule_source_nodes: Array<MapData, u64>,
    /// [`dockfw_common::RULE_SOURCES_V6_MAP`].
    pub rule_sources_v6: LpmTrie<MapData, SourceKeyV6, u32>,
    /// [`dockfw_common::IFACE_MASKS_MAP`].
    pub iface_masks: HashMap<MapData, IfaceMaskKey, u32>,
    /// [`dockfw_common::RATE_SOURCES_MAP`].
    pub rate_sources: HashMap<MapData, RateKey, u64>,
    /// [`dockfw_common::RATE_AGGREGATE_MAP`].
    pub rate_aggregate: Array<MapData, u64>,
    /// [`dockfw_common::STATS_MAP`].
    pub stats: PerCpuArray<MapData, Counter>,
    /// [`dockfw_common::GLOBAL_STATS_MAP`].
    pub global_stats: PerCpuArray<MapData, Counter>,
    /// [`dockfw_common::FRAGS_MAP`].
    pub frags: HashMap<MapData, FragKey, FragValue>,
    /// [`dockfw_common::EVENTS_MAP`], taken by whoever reads events.
    pub events: Option<RingBuf<MapData>>,
    /// [`dockfw_common::EVENT_BUDGET_MAP`].
    pub event_budget: Array<MapData, u64>,
    /// [`dockfw_common::TRACE_MAP`] (meaningful in a trace instance only).
    pub trace: Array<MapData, TraceRecord>,
}

/// A loaded data plane: both programs verified and loaded, maps typed.
pub struct Dataplane {
    ebpf: Ebpf,
    /// The maps.
    pub maps: Maps,
    /// Pins of [`dockfw_common::REBUILT_PINS`] that were in another layout
    /// and are new, empty maps now (the programs still attached keep the
    /// old ones until they are replaced).
    pub replaced: Vec<&'static str>,
}

/// Where the maps of a pin directory live.
pub fn maps_pin_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("maps")
}

impl Dataplane {
    /// Loads the embedded object.
    pub fn load(options: &LoadOptions) -> Result<Self, LoadError> {
        Self::load_object(crate::ebpf::OBJECT, options)
    }

    /// Loads an object (the embedded one, or another build of it).
    pub fn load_object(object: &[u8], options: &LoadOptions) -> Result<Self, LoadError> {
        let capacities = options.capacities;
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(POLICIES_MAP, capacities.policies)
            .map_max_entries(RULES_MAP, capacities.rules)
            .map_max_entries(PORT_ADDRS_MAP, capacities.port_addrs)
            .map_max_entries(BANS_V4_MAP, capacities.bans_v4)
            .map_max_entries(BANS_V6_MAP, capacities.bans_v6)
            .map_max_entries(BAN64_V6_MAP, capacities.bans_v6)
            .map_max_entries(BAN128_V6_MAP, capacities.bans_v6)
            .map_max_entries(BAN24_MAP, capacities.ban24)
            .map_max_entries(RULE_SOURCES_V4_MAP, capacities.rule_sources_v4)
            .map_max_entries(RULE_SOURCE_ROOTS_MAP, capacities.policies)
            .map_max_entries(
                RULE_SOURCE_NODES_MAP,
                capacities
                    .rule_source_nodes
                    .saturating_mul(SOURCE_NODE_FANOUT),
            )
            .map_max_entries(RULE_SOURCES_V6_MAP, capacities.rule_sources_v6)
            .map_max_entries(IFACE_MASKS_MAP, capacities.iface_masks)
            .map_max_entries(RATE_SOURCES_MAP, capacities.rate_sources)
            .map_max_entries(RATE_AGGREGATE_MAP, capacities.stats)
            .map_max_entries(EVENT_BUDGET_MAP, capacities.stats)
            .map_max_entries(
                STATS_MAP,
                capacities.stats.saturating_mul(OUTCOMES_PER_STAT),
            )
            .map_max_entries(FRAGS_MAP, capacities.frags);
        let trace_flag: u8 = u8::from(options.trace);
        loader.override_global(TRACE_MODE_GLOBAL, &trace_flag, true);
        let map_dir = options.pin_dir.as_deref().map(maps_pin_dir);
        let mut replaced = Vec::new();
        if let Some(map_dir) = &map_dir {
            if options.trace && !map_dir.join(CONFIG_MAP).exists() {
                return Err(LoadError::NotPinned(map_dir.clone()));
            }
            if let Some(pin_dir) = &options.pin_dir {
                super::bpffs::ensure_bpffs(pin_dir)?;
            }
            std::fs::create_dir_all(map_dir).map_err(|source| LoadError::PinDir {
                path: map_dir.clone(),
                source,
            })?;
            super::abi::check_abi(map_dir)?;
            let rebuilt = super::compat::check_pinned_maps(map_dir, !options.trace)?;
            if !options.trace {
                remove_obsolete_pins(map_dir);
                for name in rebuilt {
                    let path = map_dir.join(name);
                    std::fs::remove_file(&path).map_err(|source| LoadError::ReplacePin {
                        path: path.clone(),
                        source,
                    })?;
                    tracing::info!(path = %path.display(), "replacing the pin of a map another version laid out differently (its content is rebuilt)");
                    replaced.push(name);
                }
            }
            for name in PINNED_MAPS {
                loader.map_pin_path(name, map_dir.join(name));
            }
        }
        let mut ebpf = loader.load(object).map_err(LoadError::Object)?;
        let maps = Maps::take(&mut ebpf)?;
        let mut dataplane = Self {
            ebpf,
            maps,
            replaced,
        };
        dataplane
            .xdp_program_mut()?
            .load()
            .map_err(|source| LoadError::Program {
                name: PROG_XDP,
                source,
            })?;
        dataplane
            .tc_program_mut()?
            .load()
            .map_err(|source| LoadError::Program {
                name: PROG_TC,
                source,
            })?;
        if let Some(map_dir) = &map_dir
            && !options.trace
        {
            super::abi::record_abi(map_dir)?;
        }
        Ok(dataplane)
    }

    fn xdp_program_mut(&mut self) -> Result<&mut Xdp, LoadError> {
        let program = self.ebpf.program_mut(PROG_XDP).ok_or(LoadError::Program {
            name: PROG_XDP,
            source: ProgramError::NotLoaded,
        })?;
        program.try_into().map_err(|source| LoadError::Program {
            name: PROG_XDP,
            source,
        })
    }

    fn tc_program_mut(&mut self) -> Result<&mut SchedClassifier, LoadError> {
        let program = self.ebpf.program_mut(PROG_TC).ok_or(LoadError::Program {
            name: PROG_TC,
            source: ProgramError::NotLoaded,
        })?;
        program.try_into().map_err(|source| LoadError::Program {
            name: PROG_TC,
            source,
        })
    }

    /// The loaded XDP program.
    pub fn xdp(&mut self) -> Result<&mut Xdp, LoadError> {
        self.xdp_program_mut()
    }

    /// The loaded TC program.
    pub fn tc(&mut self) -> Result<&mut SchedClassifier, LoadError> {
        self.tc_program_mut()
    }
}

/// Unpins maps older versions created that this one no longer uses (a
/// program still attached keeps its own reference until it is replaced).
fn remove_obsolete_pins(map_dir: &Path) {
    for name in dockfw_common::OBSOLETE_PINS {
        let path = map_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed the pin of a map this version no longer uses")
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "could not remove an obsolete map pin")
            }
        }
    }
}

impl Maps {
    /// Opens the pinned maps of a running (or stopped but pinned) data plane
    /// without loading programs: for `dockfw ban` without a daemon, and for
    /// inspection. The trace record map is private to each instance and not
    /// available here (a fresh, unused one is created).
    pub fn from_pins(pin_dir: &Path) -> Result<Self, LoadError> {
        let dir = maps_pin_dir(pin_dir);
        if !dir.join(CONFIG_MAP).exists() {
            return Err(LoadError::NotPinned(dir));
        }
        super::abi::check_abi(&dir)?;
        super::compat::check_pinned_maps(&dir, false)?;
        // Loading the object with every map pinned re-opens the pins; the
        // programs are not loaded into the kernel.
        let mut loader = EbpfLoader::new();
        for name in PINNED_MAPS {
            loader.map_pin_path(name, dir.join(name));
        }
        let mut ebpf = loader
            .load(crate::ebpf::OBJECT)
            .map_err(LoadError::Object)?;
        Self::take(&mut ebpf)
    }

    /// The capacities the maps really have (a re-adopted pinned map keeps
    /// the capacity it was created with).
    pub fn capacities(&self) -> Result<Capacities, MapError> {
        fn entries<K: aya::Pod, V>(map: &impl IterableMap<K, V>) -> Result<u32, MapError> {
            Ok(map.map().info()?.max_entries())
        }
        Ok(Capacities {
            policies: entries(&self.policies)?,
            rules: entries(&self.rules)?,
            port_addrs: entries(&self.port_addrs)?,
            bans_v4: entries(&self.bans_v4)?,
            bans_v6: entries(&self.bans_v6)?,
            ban24: entries(&self.ban24)?,
            rule_sources_v4: entries(&self.rule_sources_v4)?,
            rule_source_nodes: entries(&self.rule_source_nodes)? / SOURCE_NODE_FANOUT,
            rule_source_roots: entries(&self.rule_source_roots)?,
            rule_sources_v6: entries(&self.rule_sources_v6)?,
            iface_masks: entries(&self.iface_masks)?,
            rate_sources: entries(&self.rate_sources)?,
            stats: entries(&self.rate_aggregate)?,
            frags: entries(&self.frags)?,
        })
    }

    fn take(ebpf: &mut Ebpf) -> Result<Self, LoadError> {
        fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
        where
            T: TryFrom<aya::maps::Map, Error = MapError>,
        {
            let map = ebpf.take_map(name).ok_or(LoadError::MissingMap { name })?;
            T::try_from(map).map_err(|source| LoadError::MapType { name, source })
        }
        Ok(Self {
            config: take(ebpf, CONFIG_MAP)?,
            local: take(ebpf, LOCAL_ADDRS_MAP)?,
            port_index: take(ebpf, PORT_INDEX_MAP)?,
            port_addrs: take(ebpf, PORT_ADDRS_MAP)?,
            policies: take(ebpf, POLICIES_MAP)?,
            rules: take(ebpf, RULES_MAP)?,
            bans_v4: take(ebpf, BANS_V4_MAP)?,
            bans_v6: take(ebpf, BANS_V6_MAP)?,
            ban_states_v4: take(ebpf, BAN_STATES_V4_MAP)?,
            ban24_index: take(ebpf, BAN24_INDEX_MAP)?,
            ban24: take(ebpf, BAN24_MAP)?,
            ban_slots: None,
            ban_summary_v6: take(ebpf, BAN_SUMMARY_V6_MAP)?,
            ban_refine_v6: take(ebpf, BAN_REFINE_V6_MAP)?,
            ban64_v6: take(ebpf, BAN64_V6_MAP)?,
            ban128_v6: take(ebpf, BAN128_V6_MAP)?,
            rule_source_summary_v4: take(ebpf, RULE_SOURCE_SUMMARY_V4_MAP)?,
            rule_source_summary_v6: take(ebpf, RULE_SOURCE_SUMMARY_V6_MAP)?,
            rule_sources_v4: take(ebpf, RULE_SOURCES_V4_MAP)?,
            rule_source_roots: take(ebpf, RULE_SOURCE_ROOTS_MAP)?,
            rule_source_nodes: take(ebpf, RULE_SOURCE_NODES_MAP)?,
            rule_sources_v6: take(ebpf, RULE_SOURCES_V6_MAP)?,
            iface_masks: take(ebpf, IFACE_MASKS_MAP)?,
            rate_sources: take(ebpf, RATE_SOURCES_MAP)?,
            rate_aggregate: take(ebpf, RATE_AGGREGATE_MAP)?,
            stats: take(ebpf, STATS_MAP)?,
            global_stats: take(ebpf, GLOBAL_STATS_MAP)?,
            frags: take(ebpf, FRAGS_MAP)?,
            events: Some(take(ebpf, EVENTS_MAP)?),
            event_budget: take(ebpf, EVENT_BUDGET_MAP)?,
            trace: take(ebpf, TRACE_MAP)?,
        })
    }
}
