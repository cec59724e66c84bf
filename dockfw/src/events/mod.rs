//! Sampled drop events: the data plane writes at most a budgeted number per
//! statistic id (rule on a port) into a ring buffer; the daemon reads them,
//! names them (port, container, rule, reason) and keeps the latest in a
//! bounded buffer that `dockfw events` and `dockfw top` read through the
//! control socket.

pub mod client;
pub mod command;
pub mod hub;
pub mod reader;
pub mod render;
pub mod stream;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use self::hub::{EventHub, SourceCount};

/// One sampled drop (or audit would-drop), named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledEvent {
    /// Wall-clock time of the decision, RFC 3339 with milliseconds (UTC).
    pub time: String,
    /// `CLOCK_MONOTONIC` time of the decision in ns (the kernel's clock).
    pub monotonic_ns: u64,
    /// `drop`, or `audit` for a would-drop that was passed.
    pub outcome: String,
    /// The reason label (`rule`, `ban`, `rate_limit`, `fragment`,
    /// `malformed`, `mirror`).
    pub reason: String,
    /// Source address.
    pub source: IpAddr,
    /// Source port (0 for non-first fragments).
    pub source_port: u16,
    /// Destination address (before DNAT).
    pub destination: IpAddr,
    /// Destination port (before DNAT).
    pub destination_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The published port the packet was aimed at (`8080/tcp`), when the
    /// statistic id is known.
    pub published_port: Option<String>,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Container behind the port, when known.
    pub container: Option<String>,
    /// Rule name, for rule verdicts.
    pub rule: Option<String>,
    /// TCP flags as letters (`S`, `SA`, ...); empty for UDP.
    pub tcp_flags: String,
    /// Frame length in bytes.
    pub length: u32,
    /// Ingress interface name (or its index when it has none any more).
    pub iface: String,
    /// Statistic id (port and rule) the event was budgeted under.
    pub stat_id: u32,
}

/// One line of an event stream on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamItem {
    /// An event.
    Event(Box<SampledEvent>),
    /// Events this subscriber missed because it read too slowly.
    Lost(u64),
    /// The request failed.
    Error(String),
}
