//! The control path: `dockfw ban/unban/bans/status` talk to the running
//! daemon over a Unix socket that only root can use (the directory is 0700,
//! the socket 0600). One JSON request per line, one JSON response per line.
//! There is no network listener besides metrics.

pub mod client;
pub mod server;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::status::Status;

/// File name of the socket in the run directory.
pub const SOCKET_NAME: &str = "dockfw.sock";

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Ban a prefix, for `seconds` or forever.
    Ban {
        /// The prefix.
        cidr: IpNet,
        /// Duration in seconds (`None` = never expires).
        seconds: Option<u64>,
    },
    /// Lift a ban.
    Unban {
        /// The prefix, exactly as banned.
        cidr: IpNet,
    },
    /// List bans.
    Bans,
    /// Full status.
    Status,
    /// Re-read the policy (like SIGHUP).
    Reload,
    /// Stream sampled drop events (`dockfw events`), one JSON line each,
    /// until the client hangs up; with `replay`, the buffered ones first.
    Events {
        /// Send the buffered events first.
        #[serde(default)]
        replay: bool,
    },
    /// Counters and heavy sources for one `dockfw top` refresh.
    Top,
    /// What `dockfw trace` needs to name a decision: ports, containers and
    /// rules by statistic id.
    TraceContext,
}

/// One ban as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    /// The prefix.
    pub cidr: IpNet,
    /// Seconds until it expires (`None` = never).
    pub remaining_seconds: Option<u64>,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok {
        /// What was done.
        message: String,
    },
    /// The bans.
    Bans {
        /// Bans in prefix order.
        bans: Vec<BanEntry>,
    },
    /// The status.
    Status {
        /// The status.
        status: Box<Status>,
    },
    /// The names behind statistic ids, for `dockfw trace`.
    TraceContext {
        /// Ports, containers and rules.
        context: Box<crate::trace::TraceContext>,
    },
    /// One `dockfw top` refresh.
    Top {
        /// Cumulative counters and the heaviest sampled sources.
        top: Box<crate::top::TopSnapshot>,
    },
    /// The request failed; nothing changed.
    Error {
        /// Why.
        message: String,
    },
}
