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

mod contents;

pub(crate) use self::contents::{ignore_missing, map_errno};
mod plan;

use std::time::{Duration, Instant};

use aya::maps::MapError;
use dockfw_common::{Config, PortKey, config_flag};

use self::{
    contents::{Contents, clear, scan, zero_stats},
    plan::Plan,
};
use super::Maps;
use crate::{
    compile::CompiledPolicy,
    model::BindingKey,
    summary::{LevelHints, PrefixSummary},
};

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

/// Where the ports' source tables went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrieUsage {
    /// Ports whose table is a trie of array nodes (array lookups only).
    pub ports_in_tries: usize,
    /// Ports whose table did not fit the node array and went to the older
    /// tables: IPv4 level table (one to four hash lookups per packet from a
    /// listed source), IPv6 LPM trie.
    pub ports_in_levels: usize,
    /// Nodes the generation uses.
    pub nodes: usize,
}

/// The result of an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The generation now active.
    pub generation: u32,
    /// Where each port went, in compiled order.
    pub placements: Vec<Placement>,
    /// Where the source tables went.
    pub tries: TrieUsage,
}

/// Writes generations. One per data plane; the daemon is the only writer.
#[derive(Default)]
pub struct GenerationWriter {
    last_flip: Option<Instant>,
    /// What the rule-source summary maps hold (`None` = unknown).
    source_summary: Option<SourceSummary>,
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
        let (contents, placements) = plan.write(maps, compiled, next, old.nodes.as_deref())?;

        // The source hints and summary cover both generations' level-table
        // and LPM entries (ports with a trie need neither) while either
        // generation may be in use.
        let mut hints = LevelHints::default();
        let mut v6 = PrefixSummary::default();
        for written in [&contents, &active_contents] {
            for key in &written.sources_v4 {
                hints.add(key.level, key.addr.into());
            }
            for net in written.prefixes() {
                if matches!(net, ipnet::IpNet::V6(_)) {
                    v6.add(&net);
                }
            }
        }
        self.contents[next as usize] = Some(contents);
        let always_v6 = v6.always_v6;
        self.write_source_summary(maps, SourceSummary { hints, v6 })?;
        let mut flags = config.flags & !config_flag::SOURCE_LOOKUP_ALWAYS_V6;
        if always_v6 {
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
            tries: plan.trie_usage(compiled),
        })
    }
}

impl GenerationWriter {
    /// Writes the rule-source hint and summary words that changed (all of
    /// them when the maps' content is unknown).
    fn write_source_summary(
        &mut self,
        maps: &mut Maps,
        summary: SourceSummary,
    ) -> Result<(), WriteError> {
        let previous = self.source_summary.take();
        for (index, word) in summary.hints.words.iter().enumerate() {
            if previous
                .as_ref()
                .is_none_or(|old| old.hints.words.get(index) != Some(word))
            {
                maps.rule_source_summary_v4
                    .set(index as u32, *word, 0)
                    .map_err(map_error(dockfw_common::RULE_SOURCE_SUMMARY_V4_MAP))?;
            }
        }
        for (index, word) in summary.v6.v6.iter().enumerate() {
            if previous
                .as_ref()
                .is_none_or(|old| old.v6.v6.get(index) != Some(word))
            {
                maps.rule_source_summary_v6
                    .set(index as u32, *word, 0)
                    .map_err(map_error(dockfw_common::RULE_SOURCE_SUMMARY_V6_MAP))?;
            }
        }
        self.source_summary = Some(summary);
        Ok(())
    }
}

/// What the rule-source hint (IPv4) and summary (IPv6) maps hold.
struct SourceSummary {
    hints: LevelHints,
    v6: PrefixSummary,
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
