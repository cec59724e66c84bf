//! Writes a compiled policy into the inactive generation and activates it
//! with one flip of `Config::active_generation` (invariant 3: a packet sees
//! the old policy or the new one, never a mix).
//!
//! Order of operations:
//! 1. check every capacity against what the new generation needs while the
//!    active one stays in place; fail before writing anything if it does not
//!    fit;
//! 2. wait until the last flip is at least [`QUIESCE`] old, so no packet that
//!    started under the inactive generation is still running (XDP and TC
//!    programs run for microseconds);
//! 3. clear what the inactive generation held, write the new entries;
//! 4. flip. The old generation's entries stay until the next update.
//!
//! A failure in step 3 leaves the active generation untouched: the policy in
//! force stays in force.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use aya::maps::{MapError, PerCpuValues, lpm_trie::Key};
use dockfw_common::{
    Config, Counter, IfaceMaskKey, OUTCOMES_PER_STAT, PORT_INDEX_SPECIFIC, PortKey, RuleAction,
    SourceKeyV4, SourceKeyV6, config_flag, generation_base, port_index, stat_index,
};
use ipnet::IpNet;

use super::{Capacities, Maps};
use crate::{compile::CompiledPolicy, model::BindingKey, summary::PrefixSummary};

/// How long a generation must have been inactive before it is rewritten.
pub const QUIESCE: Duration = Duration::from_millis(10);

/// Errors while writing a generation. The active generation is untouched.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The new policy needs more entries than a map holds.
    #[error(
        "the policy needs {needed} entries in {what} ({map}), which holds {capacity} \
         (with the active generation's {active} still in place); {hint}"
    )]
    Capacity {
        /// What the entries are.
        what: &'static str,
        /// Map name.
        map: &'static str,
        /// Entries the new generation needs.
        needed: usize,
        /// Entries the active generation holds.
        active: usize,
        /// Capacity.
        capacity: u32,
        /// What to do about it.
        hint: &'static str,
    },
    /// A map operation failed.
    #[error("writing {map} failed: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// aya's error.
        #[source]
        source: MapError,
    },
}

fn map_error(map: &'static str) -> impl FnOnce(MapError) -> WriteError {
    move |source| WriteError::Map { map, source }
}

/// What a generation holds, so it can be cleared without scanning.
#[derive(Clone, Default)]
struct Contents {
    port_index: Vec<u32>,
    port_addrs: Vec<PortKey>,
    sources_v4: Vec<Key<SourceKeyV4>>,
    sources_v6: Vec<Key<SourceKeyV6>>,
    iface_masks: Vec<IfaceMaskKey>,
}

/// Where one port landed in the generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The port.
    pub key: BindingKey,
    /// Its policy index.
    pub slot: u32,
    /// Index of its rule 0 in the rules array.
    pub rule_base: u32,
}

impl Contents {
    /// The source prefixes the generation's tries hold.
    fn prefixes(&self) -> Vec<IpNet> {
        let v4 = self.sources_v4.iter().filter_map(|key| {
            let len = key.prefix_len().checked_sub(32)?;
            ipnet::Ipv4Net::new(key.data().addr.into(), len as u8)
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

/// The result of an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The generation now active.
    pub generation: u32,
    /// Where each port went, in compiled order.
    pub placements: Vec<Placement>,
}

/// Writes generations. One per data plane; the daemon is the only writer.
#[derive(Default)]
pub struct GenerationWriter {
    last_flip: Option<Instant>,
    /// What the rule-source summary maps hold (`None` = unknown).
    source_summary: Option<PrefixSummary>,
    /// Per generation: what it holds (`None` = unknown, e.g. after
    /// re-adopting pinned maps; then it is found by scanning).
    contents: [Option<Contents>; 2],
}

impl GenerationWriter {
    /// A writer for maps whose generation contents are unknown (fresh or
    /// re-adopted).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `compiled` into the inactive generation, zeroes the state of
    /// the fresh statistic ids and flips.
    pub fn apply(
        &mut self,
        maps: &mut Maps,
        compiled: &CompiledPolicy,
        fresh_stats: &[u32],
    ) -> Result<Applied, WriteError> {
        let capacities = maps.capacities().map_err(map_error("map info"))?;
        let config = maps.config.get(&0, 0).map_err(map_error("DFW_CONFIG"))?;
        let active = config.active_generation & 1;
        let next = active ^ 1;
        if self.contents[next as usize].is_none() {
            self.contents[next as usize] = Some(scan(maps, next, &capacities)?);
        }
        if self.contents[active as usize].is_none() {
            self.contents[active as usize] = Some(scan(maps, active, &capacities)?);
        }
        let active_contents = self.contents[active as usize].clone().unwrap_or_default();
        let plan = Plan::new(compiled, next, &capacities);
        plan.check(&capacities, &active_contents)?;

        if let Some(last) = self.last_flip {
            let age = last.elapsed();
            if age < QUIESCE {
                std::thread::sleep(QUIESCE - age);
            }
        } else {
            std::thread::sleep(QUIESCE);
        }

        let old = self.contents[next as usize].take().unwrap_or_default();
        clear(maps, &old)?;
        zero_stats(maps, fresh_stats)?;
        let (contents, placements) = plan.write(maps, compiled, next)?;
        self.contents[next as usize] = Some(contents);

        // The source summary covers both generations' prefixes while either
        // may be in use.
        let summary = PrefixSummary::build(
            compiled
                .ports
                .iter()
                .flat_map(|port| port.sources.prefixes.iter().map(|(net, _)| net))
                .chain(active_contents.prefixes().iter()),
        );
        self.write_source_summary(maps, summary.clone())?;
        let mut flags = config.flags & !config_flag::SOURCE_LOOKUP_ALWAYS_V6;
        if summary.always_v6 {
            flags |= config_flag::SOURCE_LOOKUP_ALWAYS_V6;
        }
        let flipped = Config {
            active_generation: next,
            flags,
            ..config
        };
        maps.config
            .set(0, flipped, 0)
            .map_err(map_error("DFW_CONFIG"))?;
        self.last_flip = Some(Instant::now());
        Ok(Applied {
            generation: next,
            placements,
        })
    }
}

/// The entries a compiled policy needs, placed in a generation.
struct Plan {
    placements: Vec<Placement>,
    port_addrs: usize,
    sources_v4: usize,
    sources_v6: usize,
    iface_masks: usize,
    rules: usize,
}

impl Plan {
    fn new(compiled: &CompiledPolicy, generation: u32, capacities: &Capacities) -> Self {
        // Generation 0 starts at index 1: index 0 means "none".
        let first_slot = generation_base(capacities.policies, generation).max(1);
        let mut rule_base = generation_base(capacities.rules, generation);
        let mut plan = Self {
            placements: Vec::with_capacity(compiled.ports.len()),
            port_addrs: 0,
            sources_v4: 0,
            sources_v6: 0,
            iface_masks: 0,
            rules: 0,
        };
        for (slot, port) in (first_slot..).zip(&compiled.ports) {
            plan.placements.push(Placement {
                key: port.port.key,
                slot,
                rule_base,
            });
            rule_base += port.rules.len() as u32;
            plan.rules += port.rules.len();
            plan.port_addrs += usize::from(port.port.key.addr.is_some());
            for (net, _) in &port.sources.prefixes {
                match net {
                    IpNet::V4(_) => plan.sources_v4 += 1,
                    IpNet::V6(_) => plan.sources_v6 += 1,
                }
            }
            plan.iface_masks += port.iface_masks.len();
        }
        plan
    }

    fn check(&self, capacities: &Capacities, active: &Contents) -> Result<(), WriteError> {
        let half = |capacity: u32| (capacity / 2).saturating_sub(1) as usize;
        let checks = [
            (
                "port policies",
                dockfw_common::POLICIES_MAP,
                self.placements.len(),
                0,
                half(capacities.policies),
                capacities.policies,
                "raise --max-ports",
            ),
            (
                "rules over all ports",
                dockfw_common::RULES_MAP,
                self.rules,
                0,
                half(capacities.rules) + 1,
                capacities.rules,
                "raise --max-rules",
            ),
            (
                "bindings on specific addresses",
                dockfw_common::PORT_ADDRS_MAP,
                self.port_addrs,
                active.port_addrs.len(),
                capacities.port_addrs as usize,
                capacities.port_addrs,
                "raise --max-ports",
            ),
            (
                "IPv4 rule source prefixes",
                dockfw_common::RULE_SOURCES_V4_MAP,
                self.sources_v4,
                active.sources_v4.len(),
                capacities.rule_sources_v4 as usize,
                capacities.rule_sources_v4,
                "raise --max-rule-sources, or use bans for large block lists",
            ),
            (
                "IPv6 rule source prefixes",
                dockfw_common::RULE_SOURCES_V6_MAP,
                self.sources_v6,
                active.sources_v6.len(),
                capacities.rule_sources_v6 as usize,
                capacities.rule_sources_v6,
                "raise --max-rule-sources, or use bans for large block lists",
            ),
            (
                "interface masks",
                dockfw_common::IFACE_MASKS_MAP,
                self.iface_masks,
                active.iface_masks.len(),
                capacities.iface_masks as usize,
                capacities.iface_masks,
                "attach to fewer interfaces or use fewer interface conditions",
            ),
        ];
        for (what, map, needed, active, limit, capacity, hint) in checks {
            // Generation-split arrays compare against their half; shared maps
            // must hold both generations at once during the switch.
            if needed + active > limit {
                return Err(WriteError::Capacity {
                    what,
                    map,
                    needed,
                    active,
                    capacity,
                    hint,
                });
            }
        }
        Ok(())
    }

    fn write(
        &self,
        maps: &mut Maps,
        compiled: &CompiledPolicy,
        generation: u32,
    ) -> Result<(Contents, Vec<Placement>), WriteError> {
        let mut contents = Contents::default();
        // Port index values, computed first: a wildcard binding's slot plus
        // the "look up the specific address first" flag.
        let mut index_values: BTreeMap<u32, u32> = BTreeMap::new();
        for (port, placement) in compiled.ports.iter().zip(&self.placements) {
            let key = port.port.key;
            let mut policy = port.policy;
            policy.rule_base = placement.rule_base;
            maps.policies
                .set(placement.slot, policy, 0)
                .map_err(map_error(dockfw_common::POLICIES_MAP))?;
            for (offset, rule) in port.rules.iter().enumerate() {
                let action: RuleAction = rule.action;
                maps.rules
                    .set(placement.rule_base + offset as u32, action, 0)
                    .map_err(map_error(dockfw_common::RULES_MAP))?;
            }
            let index = port_index(
                generation,
                key.family.code(),
                key.proto.number(),
                raw_port(key.port),
            );
            let value = index_values.entry(index).or_insert(0);
            match key.addr {
                None => *value |= placement.slot,
                Some(addr) => {
                    *value |= PORT_INDEX_SPECIFIC;
                    let port_key = port_key(&key, addr, generation);
                    maps.port_addrs
                        .insert(port_key, placement.slot, 0)
                        .map_err(map_error(dockfw_common::PORT_ADDRS_MAP))?;
                    contents.port_addrs.push(port_key);
                }
            }
            let slot_be = placement.slot.to_be_bytes();
            for (net, bits) in &port.sources.prefixes {
                match net {
                    IpNet::V4(net) => {
                        let data = SourceKeyV4 {
                            slot_be,
                            addr: net.network().octets(),
                        };
                        let trie_key = Key::new(32 + u32::from(net.prefix_len()), data);
                        maps.rule_sources_v4
                            .insert(&trie_key, *bits, 0)
                            .map_err(map_error(dockfw_common::RULE_SOURCES_V4_MAP))?;
                        contents.sources_v4.push(trie_key);
                    }
                    IpNet::V6(net) => {
                        let data = SourceKeyV6 {
                            slot_be,
                            addr: net.network().octets(),
                        };
                        let trie_key = Key::new(32 + u32::from(net.prefix_len()), data);
                        maps.rule_sources_v6
                            .insert(&trie_key, *bits, 0)
                            .map_err(map_error(dockfw_common::RULE_SOURCES_V6_MAP))?;
                        contents.sources_v6.push(trie_key);
                    }
                }
            }
            for (ifindex, mask) in &port.iface_masks {
                let mask_key = IfaceMaskKey {
                    slot: placement.slot,
                    ifindex: *ifindex,
                };
                maps.iface_masks
                    .insert(mask_key, *mask, 0)
                    .map_err(map_error(dockfw_common::IFACE_MASKS_MAP))?;
                contents.iface_masks.push(mask_key);
            }
        }
        // The index last: the entries it points to are all in place.
        for (index, value) in index_values {
            maps.port_index
                .set(index, value, 0)
                .map_err(map_error(dockfw_common::PORT_INDEX_MAP))?;
            contents.port_index.push(index);
        }
        Ok((contents, self.placements.clone()))
    }
}

impl GenerationWriter {
    /// Writes the rule-source summary words that changed (all of them when
    /// the maps' content is unknown).
    fn write_source_summary(
        &mut self,
        maps: &mut Maps,
        summary: PrefixSummary,
    ) -> Result<(), WriteError> {
        let previous = self.source_summary.take();
        let words = [
            (
                &summary.v4,
                previous.as_ref().map(|old| &old.v4),
                dockfw_common::RULE_SOURCE_SUMMARY_V4_MAP,
            ),
            (
                &summary.v6,
                previous.as_ref().map(|old| &old.v6),
                dockfw_common::RULE_SOURCE_SUMMARY_V6_MAP,
            ),
        ];
        for (family, (new, old, name)) in words.into_iter().enumerate() {
            let map = if family == 0 {
                &mut maps.rule_source_summary_v4
            } else {
                &mut maps.rule_source_summary_v6
            };
            for (index, word) in new.iter().enumerate() {
                if old.is_none_or(|old| old.get(index) != Some(word)) {
                    map.set(index as u32, *word, 0).map_err(map_error(name))?;
                }
            }
        }
        self.source_summary = Some(summary);
        Ok(())
    }
}

/// The port as the data plane sees it: the packet's two bytes loaded
/// natively.
pub fn raw_port(port: u16) -> u16 {
    u16::from_ne_bytes(port.to_be_bytes())
}

/// The key of a binding on a specific address.
pub fn port_key(key: &BindingKey, addr: std::net::IpAddr, generation: u32) -> PortKey {
    let mut bytes = [0u8; 16];
    match addr {
        std::net::IpAddr::V4(addr) => bytes[..4].copy_from_slice(&addr.octets()),
        std::net::IpAddr::V6(addr) => bytes = addr.octets(),
    }
    PortKey {
        addr: bytes,
        port_be: raw_port(key.port),
        proto: key.proto.number(),
        family: key.family.code(),
        generation: generation as u8,
        pad: [0; 3],
    }
}

/// Removes what a generation held.
fn clear(maps: &mut Maps, contents: &Contents) -> Result<(), WriteError> {
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

fn ignore_missing(result: Result<(), MapError>, map: &'static str) -> Result<(), WriteError> {
    match result {
        Err(MapError::KeyNotFound) | Ok(()) => Ok(()),
        Err(source) => Err(WriteError::Map { map, source }),
    }
}

/// Finds what a generation holds by scanning the maps (after re-adopting
/// pins, when this process did not write it).
fn scan(maps: &Maps, generation: u32, capacities: &Capacities) -> Result<Contents, WriteError> {
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
        if in_generation(u32::from_be_bytes(key.data().slot_be)) {
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
fn zero_stats(maps: &mut Maps, ids: &[u32]) -> Result<(), WriteError> {
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
