//! The binary's edge: parse the command line, set up logging, dispatch, and
//! turn errors into a message with their causes and exit code 1. Shared by
//! the `dockfw` binary and the test tiers' copy of it.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use crate::{
    cli::{Cli, Command, LogFormat},
    commands,
};

/// `main` of the `dockfw` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Run(args) => args.log_format,
        _ => LogFormat::Human,
    };
    init_logging(log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dockfw: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime
                .block_on(crate::daemon::run(*args))
                .context("the daemon stopped with an error")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ban(args) => commands::ban(&args),
        Command::Unban(args) => commands::unban(&args),
        Command::Bans(args) => commands::bans(&args),
        Command::Status(args) => commands::status(&args),
        Command::Check(args) => commands::check(&args),
        Command::Detach(args) => commands::detach(&args),
        Command::Events(args) => crate::events::command::run(&args),
        Command::Top(args) => crate::top::command::run(&args),
        Command::Trace(args) => crate::trace::command(&args),
        Command::Mirror(args) => crate::mirror::command::run(&args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKFW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
