//! Helpers for dockfw's root-only test tiers: frame builders, a loaded data
//! plane with a verdict runner, and RAII guards for everything a test creates
//! in the kernel (namespaces, veths, processes, containers).

pub mod frame;
