//! dockfw: an XDP/TC fast path in front of Docker's iptables.
//!
//! The pure core (policy model, compiler) needs neither root nor a kernel;
//! the adapters around it (data plane, Docker) are thin.

pub mod bans;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod docker;
pub mod ebpf;
pub mod entry;
pub mod events;
pub mod host;
pub mod metrics;
pub mod mirror;
pub mod model;
pub mod policy;
pub mod status;
pub mod summary;
#[cfg(test)]
mod test_rng;
pub mod top;
pub mod trace;
