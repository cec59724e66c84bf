//! `cargo xtask`: dockfw's developer entry point. Every command first runs
//! `setup` (unless `--no-setup`), which installs whatever is missing, so a
//! fresh Debian 12 machine needs nothing but rustup and this repository.

mod cmd;
mod setup;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// dockfw's developer tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    /// Do not run `setup` first (assume toolchains and packages are in place).
    #[arg(long, global = true)]
    no_setup: bool,
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what is missing (idempotent; apt-get needs root).
    ///
    /// Checks and installs only what is missing: nightly rust-src and clippy,
    /// stable rustfmt and clippy, the Debian packages (LLVM 22, iptables,
    /// docker.io, packet tools, ...), and bpf-linker 0.13 built against
    /// LLVM 22.
    Setup,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let workspace = cmd::Workspace::locate(false)?;
    match cli.command {
        Task::Setup => setup::run(&workspace)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
