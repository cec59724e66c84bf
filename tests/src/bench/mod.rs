//! The benchmark harness behind `dockfw-bench`. Each subcommand is a module
//! with a `main(&[String]) -> ExitCode`; shared pieces (timing, statistics,
//! a seeded generator) sit beside them.

pub mod measure;
pub mod micro;
pub mod rng;
pub mod scrape;

use std::process::ExitCode;

/// Exit code of a subcommand that does not exist yet.
const NOT_IMPLEMENTED: u8 = 2;

/// `dockfw-bench macro`: the veth flood benchmark. Placeholder until it is
/// written; add `pub mod r#macro;` here and call its `main` instead.
pub fn macro_not_implemented() -> ExitCode {
    eprintln!("dockfw-bench macro: not implemented yet");
    ExitCode::from(NOT_IMPLEMENTED)
}
