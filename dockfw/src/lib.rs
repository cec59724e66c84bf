//! dockfw: an XDP/TC fast path in front of Docker's iptables.
//!
//! The pure core (policy model, compiler) needs neither root nor a kernel;
//! the adapters around it (data plane, Docker) are thin.

pub mod bans;
pub mod compile;
pub mod dataplane;
pub mod docker;
pub mod ebpf;
pub mod model;
pub mod policy;
