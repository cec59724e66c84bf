//! `dockfw-demo`: dockfw stopping a flood in front of a real Docker
//! container, against the DOCKER-USER rule operators use today (see
//! [`demo`]). Run by `cargo xtask demo`; `--help` lists the knobs.
//!
//! Started under the name `dockfw` (the demo links itself so in its state
//! directory), it is dockfw itself: the demo runs the daemon and prints
//! `dockfw top` commands that use the dockfw it was built with.

// The modules live under `tests/src/demo/`, outside the library: they are
// the demo's own code, not helpers for the test tiers.
#[path = "../demo/mod.rs"]
mod demo;

use std::{path::Path, process::ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let called = args.next().unwrap_or_default();
    if Path::new(&called)
        .file_name()
        .is_some_and(|name| name == "dockfw")
    {
        return dockfw::entry::main();
    }
    let args: Vec<String> = args.map(|arg| arg.to_string_lossy().into_owned()).collect();
    demo::main(&args)
}
