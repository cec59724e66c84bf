//! What a generation holds in the maps: remembered after writing it, found
//! by scanning after re-adopting pins, cleared before rewriting it; and the
//! state of statistic ids that are reused.

use aya::maps::{MapError, PerCpuValues, lpm_trie::Key};
use dockfw_common::{
    Counter, IfaceMaskKey, OUTCOMES_PER_STAT, PortKey, SourceKeyV4, SourceKeyV6, generation_base,
    port_index, stat_index,
};
use ipnet::IpNet;

use super::{WriteError, map_error};
use crate::{
    compile::trie::Node,
    dataplane::{Capacities, Maps},
};

/// What a generation holds, so it can be cleared without scanning.
#[derive(Clone, Default)]
pub(super) struct Contents {
    pub(super) port_index: Vec<u32>,
    pub(super) port_addrs: Vec<PortKey>,
    pub(super) sources_v4: Vec<SourceKeyV4>,
    pub(super) sources_v6: Vec<Key<SourceKeyV6>>,
    pub(super) iface_masks: Vec<IfaceMaskKey>,
    /// The source-trie nodes written (`None`: unknown, e.g. after
    /// re-adopting pins; an array holds no "absent", so nothing is cleared).
    pub(super) nodes: Option<Vec<Node>>,
}

impl Contents {
    /// The source prefixes the generation holds (IPv4 as expanded).
    pub(super) fn prefixes(&self) -> Vec<IpNet> {
        let v4 = self.sources_v4.iter().filter_map(|key| {
            ipnet::Ipv4Net::new(key.addr.into(), key.level)
                .ok()
                .map(IpNet::V4)
        });
        let v6 = self.sources_v6.iter().filter_map(|key| {
            let len = key.prefix_len().checked_sub(32)?;
            ipnet::Ipv6Net::new(key.data().addr.into(), len as u8)
                .ok()
                .map(IpNet::V6)
        });
        v4.chain(v6).collect()
    }
}

/// Removes what a generation held.
pub(super) fn clear(maps: &mut Maps, contents: &Contents) -> Result<(), WriteError> {
    for index in &contents.port_index {
        maps.port_index
            .set(*index, 0, 0)
            .map_err(map_error(dockfw_common::PORT_INDEX_MAP))?;
    }
    for key in &contents.port_addrs {
        ignore_missing(maps.port_addrs.remove(key), dockfw_common::PORT_ADDRS_MAP)?;
    }
    for key in &contents.sources_v4 {
        ignore_missing(
            maps.rule_sources_v4.remove(key),
            dockfw_common::RULE_SOURCES_V4_MAP,
        )?;
    }
    for key in &contents.sources_v6 {
        ignore_missing(
            maps.rule_sources_v6.remove(key),
            dockfw_common::RULE_SOURCES_V6_MAP,
        )?;
    }
    for key in &contents.iface_masks {
        ignore_missing(maps.iface_masks.remove(key), dockfw_common::IFACE_MASKS_MAP)?;
    }
    Ok(())
}

/// The result of removing a key from `map`, a key that was not there
/// being no error (aya reports it as the syscall's `ENOENT`).
pub(crate) fn ignore_missing(
    result: Result<(), MapError>,
    map: &'static str,
) -> Result<(), WriteError> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(error) if map_errno(&error) == Some(libc::ENOENT) => Ok(()),
        Err(source) => Err(WriteError::Map { map, source }),
    }
}

/// The errno of a map syscall that failed.
pub(crate) fn map_errno(error: &MapError) -> Option<i32> {
    match error {
        MapError::SyscallError(error) => error.io_error.raw_os_error(),
        _ => None,
    }
}

/// Finds what a generation holds by scanning the maps (after re-adopting
/// pins, when this process did not write it).
pub(super) fn scan(
    maps: &Maps,
    generation: u32,
    capacities: &Capacities,
) -> Result<Contents, WriteError> {
    let mut contents = Contents::default();
    let first = port_index(
        generation,
        dockfw_common::family::V4,
        dockfw_common::proto::TCP,
        0,
    );
    let count = dockfw_common::PORT_INDEX_ENTRIES / 2;
    for index in first..first + count {
        let value = maps
            .port_index
            .get(&index, 0)
            .map_err(map_error(dockfw_common::PORT_INDEX_MAP))?;
        if value != 0 {
            contents.port_index.push(index);
        }
    }
    for key in maps.port_addrs.keys() {
        let key = key.map_err(map_error(dockfw_common::PORT_ADDRS_MAP))?;
        if u32::from(key.generation) == generation {
            contents.port_addrs.push(key);
        }
    }
    let low = generation_base(capacities.policies, generation);
    let high = low + capacities.policies / 2;
    let in_generation = |slot: u32| (low..high).contains(&slot);
    for key in maps.rule_sources_v4.keys() {
        let key = key.map_err(map_error(dockfw_common::RULE_SOURCES_V4_MAP))?;
        if in_generation(key.slot) {
            contents.sources_v4.push(key);
        }
    }
    for key in maps.rule_sources_v6.keys() {
        let key = key.map_err(map_error(dockfw_common::RULE_SOURCES_V6_MAP))?;
        if in_generation(u32::from_be_bytes(key.data().slot_be)) {
            contents.sources_v6.push(key);
        }
    }
    for key in maps.iface_masks.keys() {
        let key = key.map_err(map_error(dockfw_common::IFACE_MASKS_MAP))?;
        if in_generation(key.slot) {
            contents.iface_masks.push(key);
        }
    }
    Ok(contents)
}

/// Zeroes counters, buckets and event budgets of ids that may have counted
/// something else before.
pub(super) fn zero_stats(maps: &mut Maps, ids: &[u32]) -> Result<(), WriteError> {
    if ids.is_empty() {
        return Ok(());
    }
    let cpus = aya::util::nr_cpus().map_err(|(_, io_error)| WriteError::Map {
        map: dockfw_common::STATS_MAP,
        source: MapError::IoError(io_error),
    })?;
    for id in ids {
        for outcome in 0..OUTCOMES_PER_STAT {
            let zeros =
                PerCpuValues::try_from(vec![Counter::default(); cpus]).map_err(|io_error| {
                    WriteError::Map {
                        map: dockfw_common::STATS_MAP,
                        source: MapError::IoError(io_error),
                    }
                })?;
            maps.stats
                .set(stat_index(*id, outcome), zeros, 0)
                .map_err(map_error(dockfw_common::STATS_MAP))?;
        }
        maps.rate_aggregate
            .set(*id, 0, 0)
            .map_err(map_error(dockfw_common::RATE_AGGREGATE_MAP))?;
        maps.event_budget
            .set(*id, 0, 0)
            .map_err(map_error(dockfw_common::EVENT_BUDGET_MAP))?;
    }
    // Per-source buckets are keyed by statistic id too: a recycled id must
    // not inherit the spent buckets of the rule that held it before (they
    // would drop sources the new rule never saw, for up to its burst time).
    let ids: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
    let mut stale = Vec::new();
    for key in maps.rate_sources.keys() {
        let key = key.map_err(map_error(dockfw_common::RATE_SOURCES_MAP))?;
        if ids.contains(&key.stat_id) {
            stale.push(key);
        }
    }
    for key in stale {
        ignore_missing(
            maps.rate_sources.remove(&key),
            dockfw_common::RATE_SOURCES_MAP,
        )?;
    }
    Ok(())
}
