//! The `dockfw top` loop: ask the daemon, render, sleep, repeat.

use std::{
    io::{IsTerminal as _, Write as _},
    process::ExitCode,
    thread,
    time::{Duration, SystemTime},
};

use anyhow::bail;

use super::{
    TopSnapshot,
    rates::rates,
    render::{Size, frame},
};
use crate::{
    cli::TopArgs,
    control::{Request, Response, client::request},
};

/// Clear the screen and home the cursor (ANSI, understood by every
/// terminal emulator and over ssh).
const CLEAR: &str = "\x1b[H\x1b[2J";

fn fetch(args: &TopArgs) -> anyhow::Result<TopSnapshot> {
    match request(&args.client.run_dir, &Request::Top)? {
        Response::Top { top } => Ok(*top),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// The terminal's size, or 24x80 when stdout is not a terminal.
fn terminal_size() -> Size {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass.
    let result = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    if result == 0 && size.ws_row > 0 && size.ws_col > 0 {
        Size {
            rows: usize::from(size.ws_row),
            cols: usize::from(size.ws_col),
        }
    } else {
        Size::default()
    }
}

/// `dockfw top`.
pub fn run(args: &TopArgs) -> anyhow::Result<ExitCode> {
    let interactive = !args.batch && !args.client.json && std::io::stdout().is_terminal();
    let mut previous = fetch(args)?;
    let mut shown = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        thread::sleep(args.interval);
        let now = fetch(args)?;
        let result = if args.client.json {
            writeln!(stdout, "{}", serde_json::to_string(&now)?)
        } else {
            let clock = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let size = if interactive {
                terminal_size()
            } else {
                Size::default()
            };
            let text = frame(&now, Some(&rates(&previous, &now)), &clock, size);
            if interactive {
                write!(stdout, "{CLEAR}{text}")
            } else {
                writeln!(stdout, "{text}")
            }
        };
        if let Err(error) = result.and_then(|()| stdout.flush()) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(error.into());
        }
        shown += 1;
        if args.iterations.is_some_and(|limit| shown >= limit) {
            return Ok(ExitCode::SUCCESS);
        }
        previous = now;
    }
}

/// Parses `--interval` (`1s`, `500ms`, `2`: plain numbers are seconds).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Duration::from_secs_f64(seconds),
        _ => humantime::parse_duration(text)
            .map_err(|error| format!("{text:?} is not an interval like 1s or 500ms: {error}"))?,
    };
    if duration < Duration::from_millis(100) {
        return Err("the interval must be at least 100ms".into());
    }
    Ok(duration)
}
