//! The commands that build and start things: `build`, `run`, and the thin
//! launchers `bench`, `demo`, `fuzz` and `docs` over targets of the test
//! crate and the `dockfw` crate.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use crate::cmd::{self, Workspace};

/// `cargo xtask build`: the workspace's default members.
pub fn build(workspace: &Workspace, release: bool) -> Result<()> {
    let mut args = vec!["build"];
    if release {
        args.push("--release");
    }
    args.extend(workspace.locked());
    cmd::run(&mut workspace.cargo(&args)).context("building the workspace failed")
}

/// Builds the `dockfw` binary and returns the path of the executable, as
/// cargo reports it (so `CARGO_TARGET_DIR` and profiles are honoured).
pub fn build_daemon(workspace: &Workspace, release: bool) -> Result<PathBuf> {
    let mut args = vec![
        "build",
        "-p",
        "dockfw",
        "--bin",
        "dockfw",
        "--message-format=json-render-diagnostics",
    ];
    if release {
        args.push("--release");
    }
    args.extend(workspace.locked());
    let mut command = workspace.cargo(&args);
    println!("$ {}", cmd::render(&command));
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("could not start cargo")?;
    if !output.status.success() {
        bail!("building the dockfw binary failed ({})", output.status);
    }
    executable_from_messages(&String::from_utf8_lossy(&output.stdout), "dockfw")
        .ok_or_else(|| anyhow!("cargo built dockfw but reported no executable for it"))
}

/// The executable of the bin target `name` in cargo's JSON messages.
pub fn executable_from_messages(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == name)
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next()
}

/// `cargo xtask run`: replaces this process with the freshly built daemon,
/// so signals (Ctrl-C, SIGTERM from systemd) reach dockfw itself.
pub fn run_daemon(workspace: &Workspace, release: bool, args: &[OsString]) -> Result<()> {
    let executable = build_daemon(workspace, release)?;
    let mut daemon = std::process::Command::new(&executable);
    daemon.args(args);
    println!("$ {}", cmd::render(&daemon));
    let error = daemon.exec();
    Err(error).with_context(|| format!("could not execute {}", executable.display()))
}

/// What kind of cargo target a launcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `[[bin]]`
    Bin,
    /// `[[test]]` (an integration test)
    Test,
    /// `[[example]]`
    Example,
}

impl TargetKind {
    fn cargo_name(self) -> &'static str {
        match self {
            TargetKind::Bin => "bin",
            TargetKind::Test => "test",
            TargetKind::Example => "example",
        }
    }
}

/// Whether `cargo metadata` output has a target `name` of `kind` in `package`.
pub fn has_target(metadata: &Value, package: &str, kind: TargetKind, name: &str) -> bool {
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|candidate| candidate["name"] == package)
        .filter_map(|candidate| candidate["targets"].as_array())
        .flatten()
        .any(|target| {
            target["name"] == name
                && target["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == kind.cargo_name()))
        })
}

/// The workspace's `cargo metadata` (no dependencies).
fn metadata(workspace: &Workspace) -> Result<Value> {
    let output =
        cmd::probe(&mut workspace.cargo(["metadata", "--format-version", "1", "--no-deps"]))?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")
}

/// Fails with a clear message if the target a launcher runs is not written yet.
fn require_target(
    metadata: &Value,
    package: &str,
    kind: TargetKind,
    name: &str,
    what: &str,
) -> Result<()> {
    if has_target(metadata, package, kind, name) {
        return Ok(());
    }
    bail!(
        "{what} is not there yet: package `{package}` has no {} target `{name}`; \
         this launcher runs it once it exists",
        kind.cargo_name()
    )
}

/// `cargo xtask bench`: the benchmark harness, micro (BPF_PROG_TEST_RUN)
/// or macro (veth floods against netfilter baselines).
pub fn bench(workspace: &Workspace, micro: bool, args: &[OsString]) -> Result<()> {
    bench_command(workspace, if micro { "micro" } else { "macro" }, args)
}

/// `cargo xtask bench` with the harness subcommand named (`micro`, `macro`,
/// `scrape`).
pub fn bench_command(workspace: &Workspace, subcommand: &str, args: &[OsString]) -> Result<()> {
    require_target(
        &metadata(workspace)?,
        "dockfw-tests",
        TargetKind::Bin,
        "dockfw-bench",
        "the benchmark harness",
    )?;
    let mut command = workspace.cargo([
        "run",
        "--release",
        "-p",
        "dockfw-tests",
        "--bin",
        "dockfw-bench",
    ]);
    command.args(workspace.locked());
    if subcommand == "macro" {
        // The macro benchmark runs the daemon as operators do, from the
        // same profile as the harness.
        command.env("DOCKFW_BIN", build_daemon(workspace, true)?);
    }
    command.args(["--", subcommand]);
    command.args(args);
    cmd::run(&mut command).context("the benchmark failed")
}

/// `cargo xtask demo`: the scripted demonstration.
pub fn demo(workspace: &Workspace, args: &[OsString]) -> Result<()> {
    require_target(
        &metadata(workspace)?,
        "dockfw-tests",
        TargetKind::Bin,
        "dockfw-demo",
        "the demo",
    )?;
    let mut command = workspace.cargo([
        "run",
        "--release",
        "-p",
        "dockfw-tests",
        "--bin",
        "dockfw-demo",
    ]);
    command.args(workspace.locked());
    command.arg("--").args(args);
    // Replaces this process (and cargo replaces itself with the demo), so
    // a Ctrl-C reaches the demo, which cleans up before the shell prompt
    // comes back.
    println!("$ {}", cmd::render(&command));
    let error = command.exec();
    Err(error).context("could not start cargo for the demo")
}

/// `cargo xtask fuzz`: the fuzz test for `minutes` minutes.
pub fn fuzz(workspace: &Workspace, minutes: u32) -> Result<()> {
    require_target(
        &metadata(workspace)?,
        "dockfw-tests",
        TargetKind::Test,
        "fuzz",
        "the fuzz test",
    )?;
    let mut command =
        workspace.cargo(["test", "--release", "-p", "dockfw-tests", "--test", "fuzz"]);
    command.args(workspace.locked());
    command.args(["--", "--test-threads=1"]);
    command.env("DOCKFW_FUZZ_MINUTES", minutes.to_string());
    command.env("DOCKFW_TEST_STRICT", "1");
    cmd::run(&mut command).context("the fuzz test failed")
}

/// `cargo xtask docs`: generated reference docs into `<target dir>/docs`.
pub fn docs(workspace: &Workspace) -> Result<()> {
    let metadata = metadata(workspace)?;
    require_target(
        &metadata,
        "dockfw",
        TargetKind::Example,
        "gen-docs",
        "the docs generator",
    )?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.root.join("target"));
    let out_dir = target_dir.join("docs");
    let mut command = workspace.cargo(["run", "-p", "dockfw", "--example", "gen-docs"]);
    command.args(workspace.locked());
    command.arg("--").arg(&out_dir);
    cmd::run(&mut command).context("generating the docs failed")?;
    println!("docs written to {}", out_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bin_executable_among_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"dockfw","kind":["lib"]},"executable":null}"#,
            "\n",
            "not json\n",
            r#"{"reason":"compiler-artifact","target":{"name":"dockfw","kind":["bin"]},"executable":"/t/release/dockfw"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n",
        );
        assert_eq!(
            executable_from_messages(messages, "dockfw"),
            Some(PathBuf::from("/t/release/dockfw"))
        );
        assert_eq!(executable_from_messages(messages, "other"), None);
    }

    #[test]
    fn target_lookup_by_package_kind_and_name() {
        let metadata = serde_json::json!({
            "packages": [
                {"name": "dockfw-tests", "targets": [
                    {"name": "dockfw-bench", "kind": ["bin"]},
                    {"name": "fuzz", "kind": ["test"]}
                ]},
                {"name": "dockfw", "targets": [{"name": "gen-docs", "kind": ["example"]}]}
            ]
        });
        assert!(has_target(
            &metadata,
            "dockfw-tests",
            TargetKind::Bin,
            "dockfw-bench"
        ));
        assert!(has_target(
            &metadata,
            "dockfw-tests",
            TargetKind::Test,
            "fuzz"
        ));
        assert!(has_target(
            &metadata,
            "dockfw",
            TargetKind::Example,
            "gen-docs"
        ));
        assert!(!has_target(
            &metadata,
            "dockfw-tests",
            TargetKind::Bin,
            "dockfw-demo"
        ));
        assert!(!has_target(
            &metadata,
            "dockfw",
            TargetKind::Bin,
            "gen-docs"
        ));
        assert!(!has_target(
            &serde_json::json!({}),
            "dockfw",
            TargetKind::Bin,
            "dockfw"
        ));
    }
}
