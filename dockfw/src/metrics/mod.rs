//! Prometheus metrics, read from the data plane's per-CPU counters at scrape
//! time and served on `--metrics-addr` (`GET /metrics`).
//!
//! - [`labels`]: what each statistic id is called (`reason`,
//!   `published_port`, `family`, `container`, `rule`); never a source
//!   address.
//! - [`percpu`]: reading every counter in a few `BPF_MAP_LOOKUP_BATCH`
//!   calls.
//! - [`snapshot`]: one scrape's numbers, read by the daemon's loop.
//! - [`exposition`]: the text (`prometheus-client`).
//! - [`server`]: the HTTP listener.

pub mod exposition;
pub mod labels;
pub mod percpu;
pub mod server;
pub mod snapshot;

pub use self::{
    exposition::{Format, encode},
    labels::{LabelTable, Reason, StatLabels},
    snapshot::Snapshot,
};
