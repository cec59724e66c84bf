//! Running external programs: every command is printed before it runs, and a
//! failure names the command and its exit status so the operator can rerun it
//! by hand.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, Result, anyhow, bail};

/// Where the workspace is, and how child processes are run.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root (the directory holding the top-level `Cargo.toml`).
    pub root: PathBuf,
    /// Strict, non-interactive mode (`--ci` or env `CI`): children get no
    /// standard input and cargo runs with `--locked`.
    pub ci: bool,
}

impl Workspace {
    /// The workspace this xtask binary was built from (xtask sits one level
    /// below the root).
    pub fn locate(ci: bool) -> Result<Self> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .ok_or_else(|| {
                anyhow!(
                    "xtask's manifest dir {} has no parent",
                    manifest_dir.display()
                )
            })?
            .to_path_buf();
        Ok(Self { root, ci })
    }

    /// A `cargo` command run from the workspace root.
    ///
    /// This is the `cargo` found on `PATH` (rustup's proxy), not `$CARGO`,
    /// so that `cargo +nightly ...` selects a toolchain.
    pub fn cargo<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("cargo");
        command.args(args).current_dir(&self.root);
        if self.ci {
            command.stdin(Stdio::null());
        }
        command
    }

    /// `--locked` in CI mode: a clean clone must build with the committed
    /// Cargo.lock, never with whatever the resolver picks that day (aya's
    /// newer releases need a newer rustc than ours).
    pub fn locked(&self) -> &'static [&'static str] {
        if self.ci { &["--locked"] } else { &[] }
    }
}

/// Whether the environment variable `CI` asks for a CI run (`CI=1`,
/// `CI=true`, ...; empty, `0` and `false` do not).
pub fn ci_from_env(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") => false,
        Some(value) => !(value == "0" || value.eq_ignore_ascii_case("false")),
    }
}

/// The command line as a shell would take it back (arguments with spaces or
/// shell metacharacters single-quoted), prefixed by the environment variables
/// the command sets explicitly.
pub fn render(command: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    words.push(quote(&command.get_program().to_string_lossy()));
    words.extend(command.get_args().map(|arg| quote(&arg.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+^@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Prints the command, runs it with inherited output, and fails with the
/// command line and exit status if it does not succeed.
pub fn run(command: &mut Command) -> Result<()> {
    let line = render(command);
    println!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{line}` (is it installed and on PATH?)"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a probe quietly and returns its output, whatever its exit status;
/// fails only if the program cannot be started.
pub fn probe(command: &mut Command) -> Result<Output> {
    let line = render(command);
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))
}

/// The effective user id of this process, from `/proc/self/status`.
pub fn effective_uid() -> Result<u32> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    euid_from_status(&status).ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> Result<bool> {
    Ok(effective_uid()? == 0)
}

/// The effective uid from the text of `/proc/PID/status` (`Uid:` lists the
/// real, effective, saved and filesystem ids).
pub fn euid_from_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}

/// The first executable file called `name` on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_only_what_a_shell_would_split() {
        let mut command = Command::new("cargo");
        command
            .args([
                "install",
                "bpf-linker",
                "--version",
                "^0.13",
                "it's here",
                "",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22");
        assert_eq!(
            render(&command),
            r"LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version ^0.13 'it'\''s here' ''"
        );
    }

    #[test]
    fn euid_is_the_second_uid_field() {
        let status = "Name:\tcat\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(euid_from_status(status), Some(0));
        assert_eq!(euid_from_status("Name:\tcat\n"), None);
    }

    #[test]
    fn ci_env_values() {
        assert!(!ci_from_env(None));
        assert!(!ci_from_env(Some("")));
        assert!(!ci_from_env(Some("0")));
        assert!(!ci_from_env(Some("False")));
        assert!(ci_from_env(Some("1")));
        assert!(ci_from_env(Some("true")));
        assert!(ci_from_env(Some("yes")));
    }
}
