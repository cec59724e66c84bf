//! `cargo xtask setup`: install what building and testing dockfw needs, and
//! only what is missing, so every other command can run it first.
//!
//! Three steps, each checked before it acts:
//! 1. rustup components: nightly `rust-src` (the eBPF crate is built with
//!    `-Z build-std=core`) and `clippy` (the eBPF lint pass), stable
//!    `rustfmt` and `clippy` (the lint tier);
//! 2. Debian packages (LLVM 22 for bpf-linker, the tools the test tiers and
//!    benchmarks drive);
//! 3. bpf-linker 0.13, built against LLVM 22 (what rustc 1.95/1.97 emit).

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cmd::{self, Workspace};

/// Debian packages the workspace needs: LLVM 22 development files for
/// bpf-linker, and the programs the root tier, the demo and the benchmarks
/// run (dockerd, iptables/nftables, namespaces, packet tools, Prometheus).
pub const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libclang-22-dev",
    "iptables",
    "iproute2",
    "docker.io",
    "busybox-static",
    "netsniff-ng",
    "xdp-tools",
    "python3-scapy",
    "prometheus",
    "ethtool",
    "ipset",
    "nftables",
    "bpftool",
    "linux-perf",
    "tcpdump",
    "curl",
    // The macro benchmark's charts (Debian's, so the system python3 has it).
    "python3-matplotlib",
];

/// rustup components, per toolchain.
const RUST_COMPONENTS: &[(&str, &[&str])] = &[
    ("nightly", &["rust-src", "clippy"]),
    ("stable", &["rustfmt", "clippy"]),
];

/// The bpf-linker release line that matches aya 0.14 and LLVM 22.
const BPF_LINKER_LINE: &str = "0.13.";

/// Runs every setup step; each failure names the step and what to try.
pub fn run(workspace: &Workspace) -> Result<()> {
    println!("==> setup: checking toolchains, system packages and bpf-linker");
    rust_components()
        .context("setup step `rustup components` failed; try `rustup update` and rerun")?;
    apt_packages().context(
        "setup step `apt packages` failed; try `apt-get update` by hand, check that Debian's \
         mirrors are reachable, then rerun `cargo xtask setup`",
    )?;
    bpf_linker(workspace).context(
        "setup step `bpf-linker` failed; check that llvm-22-dev is installed and that \
         /usr/lib/llvm-22/bin/llvm-config exists, then rerun `cargo xtask setup`",
    )?;
    println!("==> setup: done");
    Ok(())
}

fn rust_components() -> Result<()> {
    let rustc = cmd::probe(Command::new("rustc").arg("-vV"))
        .context("rustc is not on PATH: install rustup and add $HOME/.cargo/bin to PATH")?;
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let host = host_triple(&rustc).context("`rustc -vV` printed no host triple")?;
    for &(toolchain, components) in RUST_COMPONENTS {
        let listed = cmd::probe(Command::new("rustup").args([
            "component",
            "list",
            "--toolchain",
            toolchain,
            "--installed",
        ]))
        .context("rustup is not on PATH: install rustup and add $HOME/.cargo/bin to PATH")?;
        if !listed.status.success() {
            // The toolchain itself is missing.
            let mut install = Command::new("rustup");
            install.args(["toolchain", "install", toolchain, "--profile", "minimal"]);
            for component in components {
                install.args(["--component", component]);
            }
            println!("setup: toolchain {toolchain} is not installed");
            cmd::run(&mut install)?;
            continue;
        }
        let installed = String::from_utf8_lossy(&listed.stdout);
        for component in components {
            if component_installed(&installed, component, host) {
                println!("setup: {component} ({toolchain}): already installed");
            } else {
                cmd::run(Command::new("rustup").args([
                    "component",
                    "add",
                    component,
                    "--toolchain",
                    toolchain,
                ]))?;
            }
        }
    }
    Ok(())
}

/// Whether `rustup component list --installed` output names `component`,
/// either bare (`rust-src`) or for the host (`clippy-x86_64-unknown-linux-gnu`).
pub fn component_installed(listing: &str, component: &str, host: &str) -> bool {
    let for_host = format!("{component}-{host}");
    listing
        .lines()
        .map(str::trim)
        .any(|line| line == component || line == for_host)
}

/// The host triple from `rustc -vV` output (`host: x86_64-unknown-linux-gnu`).
pub fn host_triple(rustc_version: &str) -> Option<&str> {
    rustc_version
        .lines()
        .find_map(|line| line.strip_prefix("host:"))
        .map(str::trim)
}

/// Whether a `dpkg-query -W -f='${Status}'` answer means "installed".
pub fn dpkg_installed(status: &str) -> bool {
    // "install ok installed" (or "hold ok installed"); "deinstall ok
    // config-files" and "unknown ok not-installed" are not.
    let mut words = status.split_whitespace();
    matches!(
        (words.next(), words.nth(1)),
        (Some("install" | "hold"), Some("installed"))
    )
}

fn apt_packages() -> Result<()> {
    let mut missing = Vec::new();
    for &package in APT_PACKAGES {
        let answer = cmd::probe(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
            .context("dpkg-query is not on PATH: this setup expects Debian 12")?;
        if answer.status.success() && dpkg_installed(&String::from_utf8_lossy(&answer.stdout)) {
            continue;
        }
        missing.push(package);
    }
    let present = APT_PACKAGES.len() - missing.len();
    println!(
        "setup: {present} of {} apt packages already installed",
        APT_PACKAGES.len()
    );
    if missing.is_empty() {
        return Ok(());
    }
    println!("setup: missing apt packages: {}", missing.join(" "));
    if !cmd::is_root()? {
        bail!(
            "installing {} needs root (apt-get): rerun as root, e.g. `sudo -E env PATH=\"$PATH\" \
             cargo xtask setup`, or install them yourself",
            missing.join(" ")
        );
    }
    cmd::run(Command::new("apt-get").arg("update"))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            // needrestart (an apt hook) would otherwise list or restart host
            // services after the install; setup must not touch them.
            .env("NEEDRESTART_SUSPEND", "1")
            .args(["install", "-y"])
            .args(&missing),
    )
}

/// The version from `bpf-linker --version` output (`bpf-linker 0.13.0`).
pub fn bpf_linker_version(output: &str) -> Option<&str> {
    output
        .split_whitespace()
        .skip_while(|word| *word != "bpf-linker")
        .nth(1)
}

fn bpf_linker(workspace: &Workspace) -> Result<()> {
    let found = cmd::probe(Command::new("bpf-linker").arg("--version")).ok();
    let version = found
        .as_ref()
        .filter(|output| output.status.success())
        .and_then(|output| {
            bpf_linker_version(&String::from_utf8_lossy(&output.stdout)).map(str::to_owned)
        });
    match version.as_deref() {
        Some(version) if version.starts_with(BPF_LINKER_LINE) => {
            println!("setup: bpf-linker {version}: already installed");
            return Ok(());
        }
        Some(version) => println!("setup: bpf-linker {version} is not 0.13.x; replacing it"),
        None => println!("setup: bpf-linker is not installed"),
    }
    // Without LLVM_PREFIX its build script finds Debian's default llvm-config
    // (LLVM 14) and fails to link.
    let mut install = workspace.cargo([
        "+stable",
        "install",
        "bpf-linker",
        "--version",
        "^0.13",
        "--no-default-features",
        "--features",
        "llvm-22",
    ]);
    install.env("LLVM_PREFIX", "/usr/lib/llvm-22");
    if version.is_some() {
        install.arg("--force");
    }
    cmd::run(&mut install)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIGHTLY_LISTING: &str = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
        rust-docs-x86_64-unknown-linux-gnu\nrust-src\nrust-std-x86_64-unknown-linux-gnu\n";

    #[test]
    fn components_bare_or_for_the_host() {
        let host = "x86_64-unknown-linux-gnu";
        assert!(component_installed(NIGHTLY_LISTING, "rust-src", host));
        assert!(component_installed(NIGHTLY_LISTING, "clippy", host));
        assert!(!component_installed(NIGHTLY_LISTING, "rustfmt", host));
        // `rust` must not match `rust-std-x86_64-unknown-linux-gnu`.
        assert!(!component_installed(NIGHTLY_LISTING, "rust", host));
        assert!(!component_installed(
            NIGHTLY_LISTING,
            "clippy",
            "aarch64-unknown-linux-gnu"
        ));
    }

    #[test]
    fn host_from_rustc_version() {
        let output =
            "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\n";
        assert_eq!(host_triple(output), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(host_triple("rustc 1.95.0\n"), None);
    }

    #[test]
    fn dpkg_status_words() {
        assert!(dpkg_installed("install ok installed"));
        assert!(dpkg_installed("hold ok installed"));
        assert!(!dpkg_installed("unknown ok not-installed"));
        assert!(!dpkg_installed("deinstall ok config-files"));
        assert!(!dpkg_installed(""));
    }

    #[test]
    fn bpf_linker_version_line() {
        assert_eq!(bpf_linker_version("bpf-linker 0.13.0\n"), Some("0.13.0"));
        assert_eq!(bpf_linker_version("something else"), None);
    }
}
