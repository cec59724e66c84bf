//! `dockfw-bench`: dockfw's benchmark harness, run by `cargo xtask bench`.
//!
//! - `micro`: BPF_PROG_TEST_RUN cost per packet of dockfw's XDP program
//!   against a drop-everything floor and xdp-filter, built and measured in
//!   one run (see [`bench::micro`]).
//! - `macro`: veth floods against netfilter baselines, xdp-filter and the
//!   floor, with a real dockerd and dockfw's daemon (see [`bench::macro_`]).
//! - `scrape`: the time of a `/metrics` scrape with 1,000 published ports
//!   and 32 rules each, against its 50 ms budget (see [`bench::scrape`]).
//!
//! Benchmarks report, they do not judge: a missed target prints `MISS` and
//! the exit code stays 0. Only a benchmark that cannot run (not root, a
//! setup step failing, a variant taking the wrong path) exits non-zero.

// The modules live under `tests/src/bench/`, outside the library: they are
// the benchmark binary's own code, not helpers for the test tiers.
#[path = "../bench/mod.rs"]
mod bench;

use std::process::ExitCode;

const USAGE: &str = "\
usage: dockfw-bench <micro|macro> [OPTIONS]

  micro  BPF_PROG_TEST_RUN micro benchmark (dockfw vs floor vs xdp-filter)
  macro  veth flood benchmark (dockfw vs DOCKER-USER, raw, nftables, xdp-filter, floor)
  scrape /metrics scrape time with 1,000 ports x 32 rules (50 ms budget)

`dockfw-bench micro --help` and `dockfw-bench macro --help` list their options.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("micro") => bench::micro::main(&rest),
        Some("macro") => bench::macro_::main(&rest),
        Some("scrape") => bench::scrape::main(&rest),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("dockfw-bench: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
