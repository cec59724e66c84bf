//! Running helper commands and stopping the long-lived ones the benchmark
//! and the demo start (dockfw daemons), shared by both.

use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::netns::NetNs;

/// Runs a command to completion; its stdout, or an error naming `step`.
/// (`output()` gives the child no stdin.)
pub fn run(step: &str, command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|error| format!("{step}: cannot run {command:?}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{step}: {command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `program args` in `ns` (`nsenter --net`: the root's /sys stays).
pub fn run_in(ns: &NetNs, step: &str, program: &str, args: &[&str]) -> Result<String, String> {
    run(step, ns.command(program).args(args))
}

/// SIGTERM, then up to `grace` for `child` to exit, then SIGKILL (saying
/// so, naming `what`). For cleanup paths: never fails.
pub fn terminate(child: &mut Child, what: &str, grace: Duration) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                eprintln!("cleanup: {what} ignored SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}
