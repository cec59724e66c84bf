//! The benchmark harness behind `dockfw-bench`. Each subcommand is a module
//! with a `main(&[String]) -> ExitCode`; shared pieces (timing, statistics,
//! a seeded generator) sit beside them.

pub mod macro_;
pub mod measure;
pub mod micro;
pub mod rng;
pub mod scrape;
