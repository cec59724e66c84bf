//! One scrape's worth of numbers, read from the maps by the daemon's loop
//! (which owns them) and encoded elsewhere, so the loop is busy only for the
//! map reads.

use std::sync::Arc;

use dockfw_common::{OUTCOMES_PER_STAT, outcome};

use super::{
    labels::{LabelTable, StatLabels},
    percpu::{ReadError, ReadMethod, read_counters},
};
use crate::dataplane::{
    Maps,
    counters::{StatCounters, Totals},
};

/// The counters of one statistic id with its labels.
#[derive(Clone, Debug)]
pub struct StatSample {
    /// Labels.
    pub labels: Arc<StatLabels>,
    /// Counters, summed over CPUs.
    pub counters: StatCounters,
}

/// Occupancy of one map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapUsage {
    /// The `map` label.
    pub map: &'static str,
    /// Entries in use, when known without walking the map.
    pub entries: Option<u64>,
    /// Entries the map holds at most.
    pub capacity: u64,
}

/// An interface dockfw is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// Interface name.
    pub iface: String,
    /// Attach mode (`xdp-native`, `xdp-generic`, `tc`).
    pub mode: &'static str,
}

/// Everything one scrape exposes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Per statistic id: traffic to published ports.
    pub stats: Vec<StatSample>,
    /// Traffic that reached no published port, by data-plane reason name.
    pub unpublished: Vec<(&'static str, Totals)>,
    /// Bans in force.
    pub bans: u64,
    /// Published ports the policy covers.
    pub published_ports: u64,
    /// Map occupancy.
    pub maps: Vec<MapUsage>,
    /// Policies activated (persisted across restarts).
    pub policy_generation: u64,
    /// Attached interfaces.
    pub attached: Vec<Attached>,
    /// Policy reloads that failed (the previous policy stayed in force).
    pub policy_reload_errors: u64,
    /// Docker sessions that ended in an error (reconnected with backoff).
    pub docker_sync_errors: u64,
    /// Drop events read from the ring buffer.
    pub events_sampled: u64,
}

/// Reads the counters of every statistic in `table` with as few syscalls
/// as the kernel allows.
pub fn read_stats(
    maps: &Maps,
    table: &LabelTable,
) -> Result<(Vec<StatSample>, ReadMethod), ReadError> {
    if table.is_empty() {
        return Ok((Vec::new(), ReadMethod::Batch));
    }
    let count = table
        .max_stat_id
        .saturating_add(1)
        .saturating_mul(OUTCOMES_PER_STAT);
    let (totals, method) = read_counters(&maps.stats, count)?;
    let at = |stat_id: u32, code: u32| -> Totals {
        totals
            .get(dockfw_common::stat_index(stat_id, code) as usize)
            .copied()
            .unwrap_or_default()
    };
    let samples = table
        .iter()
        .map(|labels| StatSample {
            labels: Arc::clone(labels),
            counters: StatCounters {
                passed: at(labels.stat_id, outcome::PASS),
                dropped: at(labels.stat_id, outcome::DROP),
                audited: at(labels.stat_id, outcome::AUDIT),
            },
        })
        .collect();
    Ok((samples, method))
}
