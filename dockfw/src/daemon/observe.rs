//! Observability owned by the daemon's loop: the statistic labels of the
//! policy in force, the metrics snapshot for each scrape, the `dockfw top`
//! snapshot, and the reader of sampled drop events.

use std::sync::{
    Arc, PoisonError, RwLock,
    atomic::{AtomicU64, Ordering},
};

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::engine::Engine;
use crate::{
    bans::monotonic_ns,
    dataplane::counters::read_globals,
    events::{
        EventHub,
        reader::{self, SharedLabels},
    },
    metrics::{
        LabelTable, Snapshot,
        labels::stat_labels,
        percpu::ReadMethod,
        snapshot::{Attached, MapUsage, read_stats},
    },
    model::Family,
    top::{SOURCE_WINDOW_SECONDS, TopSeries, TopSnapshot},
};

/// Data-plane reasons of traffic that reached no published port, as the
/// `reason` label of `dockfw_unpublished_packets_total`.
const UNPUBLISHED_REASONS: &[u8] = &[
    dockfw_common::reason::NOT_PUBLISHED,
    dockfw_common::reason::NOT_IP,
    dockfw_common::reason::MALFORMED,
    dockfw_common::reason::IPV6_EXT_LIMIT,
    dockfw_common::reason::FRAGMENT_UNTRACKED,
    dockfw_common::reason::NO_POLICY,
];

/// What the loop keeps for metrics, events and `top`.
pub struct Observer {
    labels: SharedLabels,
    /// The policy generation (`Engine::applies`) the labels were built for.
    built_for: Option<u64>,
    /// Sampled events.
    pub hub: EventHub,
    docker_sync_errors: Arc<AtomicU64>,
    reader: Option<JoinHandle<()>>,
    warned_fallback: bool,
}

impl Observer {
    /// Takes the event ring from the engine's maps and starts its reader.
    /// Without a ring (already taken) or when it cannot be polled, events
    /// are off and everything else works.
    pub fn start(engine: &mut Engine, docker_sync_errors: Arc<AtomicU64>) -> Self {
        let hub = EventHub::default();
        let labels: SharedLabels = Arc::new(RwLock::new(LabelTable::default()));
        let reader = match engine.dataplane.maps.events.take() {
            Some(ring) => match reader::spawn(ring, hub.clone(), Arc::clone(&labels)) {
                Ok(task) => Some(task),
                Err(error) => {
                    warn!(%error, "cannot poll the event ring buffer; sampled events are off");
                    None
                }
            },
            None => None,
        };
        if engine.config.events_per_second == 0 {
            info!("sampled drop events are off (--events-per-second 0)");
        }
        let mut observer = Self {
            labels,
            built_for: None,
            hub,
            docker_sync_errors,
            reader,
            warned_fallback: false,
        };
        observer.refresh(engine);
        observer
    }

    /// Rebuilds the labels when another policy generation is in force.
    pub fn refresh(&mut self, engine: &Engine) {
        if self.built_for == Some(engine.applies) {
            return;
        }
        let table = LabelTable::new(stat_labels(&engine.compiled, &engine.policy));
        *self.labels.write().unwrap_or_else(PoisonError::into_inner) = table;
        self.built_for = Some(engine.applies);
    }

    fn table(&self) -> LabelTable {
        self.labels
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stats(&mut self, engine: &Engine) -> Vec<crate::metrics::snapshot::StatSample> {
        self.refresh(engine);
        let table = self.table();
        match read_stats(&engine.dataplane.maps, &table) {
            Ok((samples, method)) => {
                if method == ReadMethod::PerElement && !self.warned_fallback {
                    self.warned_fallback = true;
                    warn!(
                        "this kernel has no batched lookups on per-CPU arrays; \
                         scrapes read counters one by one (slower)"
                    );
                }
                samples
            }
            Err(error) => {
                warn!(%error, "reading the counters failed");
                Vec::new()
            }
        }
    }

    /// The numbers for one scrape.
    pub fn scrape(&mut self, engine: &Engine) -> Snapshot {
        let stats = self.stats(engine);
        let unpublished = match read_globals(&engine.dataplane.maps) {
            Ok(globals) => globals
                .into_iter()
                .filter(|(code, _)| UNPUBLISHED_REASONS.contains(code))
                .map(|(code, totals)| (dockfw_common::reason::name(code), totals))
                .collect(),
            Err(error) => {
                warn!(%error, "reading the global counters failed");
                Vec::new()
            }
        };
        Snapshot {
            stats,
            unpublished,
            bans: engine.bans.len() as u64,
            published_ports: engine.compiled.ports.len() as u64,
            maps: map_usage(engine, self.table().len()),
            policy_generation: engine.applies,
            attached: engine
                .attachments
                .iter()
                .map(|attachment| Attached {
                    iface: attachment.iface.clone(),
                    mode: attachment.mode.name(),
                })
                .collect(),
            policy_reload_errors: engine.reload_errors,
            docker_sync_errors: self.docker_sync_errors.load(Ordering::Relaxed),
            events_sampled: self.hub.sampled(),
        }
    }

    /// The numbers for one `dockfw top` refresh.
    pub fn top(&mut self, engine: &Engine) -> TopSnapshot {
        let taken_ns = monotonic_ns();
        let series = self
            .stats(engine)
            .into_iter()
            .map(|sample| TopSeries {
                stat_id: sample.labels.stat_id,
                published_port: sample.labels.published_port.clone(),
                family: sample.labels.family.to_string(),
                container: sample.labels.container.clone(),
                rule: sample.labels.rule.clone(),
                reason: sample.labels.reason,
                counters: sample.counters,
            })
            .collect();
        let since = taken_ns.saturating_sub(SOURCE_WINDOW_SECONDS * 1_000_000_000);
        TopSnapshot {
            taken_ns,
            interfaces: engine
                .attachments
                .iter()
                .map(|attachment| format!("{} ({})", attachment.iface, attachment.mode))
                .collect(),
            policy_generation: engine.applies,
            bans: engine.bans.len() as u64,
            published_ports: engine.compiled.ports.len() as u64,
            audit: engine.config.audit,
            series,
            sources: self.hub.heaviest_sources(since, 10),
            events_sampled: self.hub.sampled(),
        }
    }

    /// Stops the event reader.
    pub fn stop(self) {
        if let Some(reader) = self.reader {
            reader.abort();
        }
    }
}

/// Occupancy of the maps user space can account for without walking them.
/// Generation-split arrays report the active generation against its half.
fn map_usage(engine: &Engine, stats_in_use: usize) -> Vec<MapUsage> {
    let capacities = match engine.dataplane.maps.capacities() {
        Ok(capacities) => capacities,
        Err(error) => {
            warn!(%error, "reading map capacities failed");
            return Vec::new();
        }
    };
    let compiled = &engine.compiled;
    let count = |family: Family| {
        engine
            .bans
            .iter()
            .filter(|(net, _)| match family {
                Family::V4 => matches!(net, ipnet::IpNet::V4(_)),
                Family::V6 => matches!(net, ipnet::IpNet::V6(_)),
            })
            .count() as u64
    };
    let sources = |family: Family| {
        compiled
            .ports
            .iter()
            .filter(|port| port.port.key.family == family)
            .map(|port| port.sources.prefixes.len() as u64)
            .sum::<u64>()
    };
    let half = |capacity: u32| u64::from((capacity / 2).saturating_sub(1));
    vec![
        MapUsage {
            map: "policies",
            entries: Some(compiled.ports.len() as u64),
            capacity: half(capacities.policies),
        },
        MapUsage {
            map: "rules",
            entries: Some(
                compiled
                    .ports
                    .iter()
                    .map(|port| port.rules.len() as u64)
                    .sum(),
            ),
            capacity: u64::from(capacities.rules / 2),
        },
        MapUsage {
            map: "port_addrs",
            entries: Some(
                compiled
                    .ports
                    .iter()
                    .filter(|port| port.port.key.addr.is_some())
                    .count() as u64,
            ),
            capacity: u64::from(capacities.port_addrs),
        },
        MapUsage {
            map: "rule_sources_v4",
            entries: Some(sources(Family::V4)),
            capacity: u64::from(capacities.rule_sources_v4),
        },
        MapUsage {
            map: "rule_sources_v6",
            entries: Some(sources(Family::V6)),
            capacity: u64::from(capacities.rule_sources_v6),
        },
        MapUsage {
            map: "source_trie_nodes",
            entries: Some(engine.tries.nodes as u64),
            capacity: half(capacities.rule_source_nodes),
        },
        MapUsage {
            map: "bans_v4",
            entries: Some(count(Family::V4)),
            capacity: u64::from(capacities.bans_v4),
        },
        MapUsage {
            map: "bans_v6",
            entries: Some(count(Family::V6)),
            capacity: u64::from(capacities.bans_v6),
        },
        MapUsage {
            map: "ban24_slots",
            entries: engine
                .dataplane
                .maps
                .ban_slots
                .as_ref()
                .map(|slots| slots.in_use() as u64),
            capacity: u64::from(capacities.ban24.saturating_sub(1)),
        },
        MapUsage {
            map: "stats",
            entries: Some(stats_in_use as u64),
            capacity: u64::from(capacities.stats),
        },
        MapUsage {
            map: "iface_masks",
            entries: Some(
                compiled
                    .ports
                    .iter()
                    .map(|port| port.iface_masks.len() as u64)
                    .sum(),
            ),
            capacity: u64::from(capacities.iface_masks),
        },
        MapUsage {
            map: "rate_sources",
            entries: None,
            capacity: u64::from(capacities.rate_sources),
        },
        MapUsage {
            map: "frags",
            entries: None,
            capacity: u64::from(capacities.frags),
        },
    ]
}
