//! Placing a compiled policy in a generation: slots and rule blocks, the
//! capacity check that runs before anything is written, and the writes.

use std::collections::BTreeMap;

use aya::maps::lpm_trie::Key;
use dockfw_common::{
    IfaceMaskKey, PORT_INDEX_SPECIFIC, RuleAction, SOURCE_NODE_FANOUT, SourceKeyV4, SourceKeyV6,
    generation_base, port_flag, port_index,
};
use ipnet::IpNet;

use super::{Placement, TrieUsage, WriteError, contents::Contents, map_error, port_key, raw_port};
use crate::{
    compile::{
        CompiledPolicy,
        trie::{Node, NodePool},
    },
    dataplane::{Capacities, Maps},
};

/// The entries a compiled policy needs, placed in a generation.
pub(super) struct Plan {
    placements: Vec<Placement>,
    /// Per port, the root of its source trie (0: the port uses the hash or
    /// LPM tables, or has no source condition).
    roots: Vec<u32>,
    /// The generation's trie nodes.
    nodes: NodePool,
    /// Entries of the roots array.
    roots_capacity: u32,
    port_addrs: usize,
    sources_v4: usize,
    sources_v6: usize,
    iface_masks: usize,
    rules: usize,
}

impl Plan {
    pub(super) fn new(compiled: &CompiledPolicy, generation: u32, capacities: &Capacities) -> Self {
        // Generation 0 starts at index 1: index 0 means "none".
        let first_slot = generation_base(capacities.policies, generation).max(1);
        let mut rule_base = generation_base(capacities.rules, generation);
        let mut plan = Self {
            placements: Vec::with_capacity(compiled.ports.len()),
            roots: Vec::with_capacity(compiled.ports.len()),
            nodes: NodePool::for_generation(capacities.rule_source_nodes, generation),
            roots_capacity: capacities.rule_source_roots,
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
            // Source tables go into the trie while its nodes last; the IPv4
            // level table (hash) and the IPv6 LPM trie take the rest.
            let root = if port.policy.flags & port_flag::HAS_SOURCE_RULES != 0
                && slot < capacities.rule_source_roots
            {
                plan.nodes.add(&port.sources, port.port.key.family)
            } else {
                None
            };
            plan.roots.push(root.unwrap_or(0));
            if root.is_none() {
                plan.sources_v4 += port.levels_v4.len();
                plan.sources_v6 += port
                    .sources
                    .prefixes
                    .iter()
                    .filter(|(net, _)| matches!(net, IpNet::V6(_)))
                    .count();
            }
            plan.iface_masks += port.iface_masks.len();
        }
        plan
    }

    /// How the source tables were placed.
    pub(super) fn trie_usage(&self, compiled: &CompiledPolicy) -> TrieUsage {
        let mut usage = TrieUsage {
            nodes: self.nodes.nodes().len(),
            ..TrieUsage::default()
        };
        for (port, root) in compiled.ports.iter().zip(&self.roots) {
            if port.policy.flags & port_flag::HAS_SOURCE_RULES == 0 {
                continue;
            }
            if *root == 0 {
                usage.ports_in_levels += 1;
            } else {
                usage.ports_in_tries += 1;
            }
        }
        usage
    }

    pub(super) fn check(
        &self,
        capacities: &Capacities,
        active: &Contents,
    ) -> Result<(), WriteError> {
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
                "raise --max-source-trie-nodes or --max-rule-sources, or use bans for large block lists",
            ),
            (
                "IPv6 rule source prefixes",
                dockfw_common::RULE_SOURCES_V6_MAP,
                self.sources_v6,
                active.sources_v6.len(),
                capacities.rule_sources_v6 as usize,
                capacities.rule_sources_v6,
                "raise --max-source-trie-nodes or --max-rule-sources, or use bans for large block lists",
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

    /// Writes the trie nodes: every entry, or only those that differ from
    /// what the generation's nodes held before (`previous`, when known).
    fn write_nodes(&self, maps: &mut Maps, previous: Option<&[Node]>) -> Result<(), WriteError> {
        let first = self.nodes.first();
        for (offset, node) in self.nodes.nodes().iter().enumerate() {
            let old = previous.and_then(|nodes| nodes.get(offset));
            let base = (first + offset as u32) * SOURCE_NODE_FANOUT;
            for (entry, value) in node.iter().enumerate() {
                if old.is_some_and(|old| old[entry] == *value) {
                    continue;
                }
                maps.rule_source_nodes
                    .set(base + entry as u32, *value, 0)
                    .map_err(map_error(dockfw_common::RULE_SOURCE_NODES_MAP))?;
            }
        }
        Ok(())
    }

    /// Writes the generation; `previous_nodes` are the trie nodes it held
    /// (`None`: unknown).
    pub(super) fn write(
        &self,
        maps: &mut Maps,
        compiled: &CompiledPolicy,
        generation: u32,
        previous_nodes: Option<&[Node]>,
    ) -> Result<(Contents, Vec<Placement>), WriteError> {
        let mut contents = Contents::default();
        self.write_nodes(maps, previous_nodes)?;
        contents.nodes = Some(self.nodes.nodes().to_vec());
        // Port index values, computed first: a wildcard binding's slot plus
        // the "look up the specific address first" flag.
        let mut index_values: BTreeMap<u32, u32> = BTreeMap::new();
        for ((port, placement), root) in
            compiled.ports.iter().zip(&self.placements).zip(&self.roots)
        {
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
            // A root for every port placed (0 included): the slot may have
            // held another port's root before.
            if placement.slot < self.roots_capacity {
                maps.rule_source_roots
                    .set(placement.slot, *root, 0)
                    .map_err(map_error(dockfw_common::RULE_SOURCE_ROOTS_MAP))?;
            }
            // The level table and the IPv6 LPM trie only for ports without
            // a trie.
            let (levels, prefixes) = if *root == 0 {
                (port.levels_v4.as_slice(), port.sources.prefixes.as_slice())
            } else {
                (&[][..], &[][..])
            };
            for entry in levels {
                let level_key = SourceKeyV4 {
                    slot: placement.slot,
                    addr: entry.addr.octets(),
                    level: entry.level,
                    pad: [0; 3],
                };
                maps.rule_sources_v4
                    .insert(level_key, entry.bits, 0)
                    .map_err(map_error(dockfw_common::RULE_SOURCES_V4_MAP))?;
                contents.sources_v4.push(level_key);
            }
            let slot_be = placement.slot.to_be_bytes();
            for (net, bits) in prefixes {
                match net {
                    IpNet::V4(_) => {}
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
