//! Reading the per-CPU counters: summed over CPUs at read time (the data
//! plane never shares a counter between CPUs).

use aya::maps::MapError;
use dockfw_common::{Counter, OUTCOMES_PER_STAT, reason, stat_index};

use super::Maps;

/// Packets and bytes, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Packet and byte totals of one statistic id, per outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatCounters {
    /// Passed to netfilter.
    pub passed: Totals,
    /// Dropped.
    pub dropped: Totals,
    /// Would have been dropped (audit).
    pub audited: Totals,
}

fn sum(values: impl IntoIterator<Item = Counter>) -> Totals {
    values
        .into_iter()
        .fold(Totals::default(), |total, value| Totals {
            packets: total.packets.wrapping_add(value.packets),
            bytes: total.bytes.wrapping_add(value.bytes),
        })
}

/// One counter of a statistic id, summed over CPUs.
pub fn read_counter(maps: &Maps, stat_id: u32, outcome: u32) -> Result<Totals, MapError> {
    let values = maps.stats.get(&stat_index(stat_id, outcome), 0)?;
    Ok(sum(values.iter().copied()))
}

/// All outcomes of a statistic id.
pub fn read_stat(maps: &Maps, stat_id: u32) -> Result<StatCounters, MapError> {
    const { assert!(OUTCOMES_PER_STAT > dockfw_common::outcome::AUDIT) };
    Ok(StatCounters {
        passed: read_counter(maps, stat_id, dockfw_common::outcome::PASS)?,
        dropped: read_counter(maps, stat_id, dockfw_common::outcome::DROP)?,
        audited: read_counter(maps, stat_id, dockfw_common::outcome::AUDIT)?,
    })
}

/// The counter of a global reason ([`reason`]), summed over CPUs.
pub fn read_global(maps: &Maps, code: u8) -> Result<Totals, MapError> {
    let values = maps.global_stats.get(&u32::from(code), 0)?;
    Ok(sum(values.iter().copied()))
}

/// Every global reason with its counter.
pub fn read_globals(maps: &Maps) -> Result<Vec<(u8, Totals)>, MapError> {
    (0..reason::COUNT)
        .map(|code| Ok((code, read_global(maps, code)?)))
        .collect()
}
