//! `dockfw events`: the running daemon's sampled drop events, one per line.

use std::{
    io::{self, Write as _},
    process::ExitCode,
};

use super::{
    StreamItem,
    client::{Flow, stream},
    render::line,
};
use crate::{cli::EventsArgs, control::Request};

/// `dockfw events`.
pub fn run(args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let mut seen = 0u64;
    let mut failure = None;
    let stdout = io::stdout();
    stream(
        &args.client.run_dir,
        &Request::Events {
            replay: args.replay,
        },
        |item| {
            let mut out = stdout.lock();
            match item {
                StreamItem::Event(event) => {
                    if args.client.json {
                        let text = serde_json::to_string(&event).map_err(io::Error::other)?;
                        writeln!(out, "{text}")?;
                    } else {
                        writeln!(out, "{}", line(&event))?;
                    }
                    out.flush()?;
                    seen += 1;
                }
                StreamItem::Lost(count) => {
                    eprintln!("dockfw events: {count} events skipped (this reader fell behind)");
                }
                StreamItem::Error(message) => {
                    failure = Some(message);
                    return Ok(Flow::Stop);
                }
            }
            Ok(if args.count.is_some_and(|count| seen >= count) {
                Flow::Stop
            } else {
                Flow::Continue
            })
        },
    )?;
    match failure {
        Some(message) => anyhow::bail!("{message}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
