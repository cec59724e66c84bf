//! `dockfw top`: a live view of drop and pass rates per published port,
//! reason and rule, and the heaviest sampled sources, refreshed like `top`.
//!
//! The daemon answers [`crate::control::Request::Top`] with cumulative
//! counters ([`TopSnapshot`]); the client turns two consecutive snapshots
//! into rates. Plain ANSI (clear screen, home cursor), so it works in any
//! terminal and over ssh; `--batch` prints frames one after another without
//! escape sequences.

pub mod command;
pub mod rates;
pub mod render;

use serde::{Deserialize, Serialize};

use crate::{dataplane::counters::StatCounters, events::SourceCount, metrics::labels::Reason};

/// How far back `dockfw top` looks for heavy sources among sampled events.
pub const SOURCE_WINDOW_SECONDS: u64 = 10;

/// Cumulative counters of one statistic id with its labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopSeries {
    /// Statistic id (rates pair series of two snapshots by it).
    pub stat_id: u32,
    /// Published port label.
    pub published_port: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Container name.
    pub container: String,
    /// Rule name (empty for port-level tallies).
    pub rule: String,
    /// Reason label.
    pub reason: Reason,
    /// Counters.
    pub counters: StatCounters,
}

/// What the daemon reports for one `top` refresh.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopSnapshot {
    /// `CLOCK_MONOTONIC` when the counters were read, in ns.
    pub taken_ns: u64,
    /// Attached interfaces as `name (mode)`.
    pub interfaces: Vec<String>,
    /// Policy generation.
    pub policy_generation: u64,
    /// Bans in force.
    pub bans: u64,
    /// Published ports.
    pub published_ports: u64,
    /// Global audit mode.
    pub audit: bool,
    /// Every statistic.
    pub series: Vec<TopSeries>,
    /// Heaviest sources among the sampled events of the last
    /// [`SOURCE_WINDOW_SECONDS`].
    pub sources: Vec<SourceCount>,
    /// Events sampled since the daemon started.
    pub events_sampled: u64,
}
