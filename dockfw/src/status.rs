//! What `dockfw status` shows, as data (JSON) and as text.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::dataplane::{
    AttachMode,
    counters::{StatCounters, Totals},
};

/// An attached interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    /// Name.
    pub name: String,
    /// Index.
    pub ifindex: u32,
    /// Effective attach mode.
    pub mode: AttachMode,
    /// Whether the link was re-adopted from a pin at start-up.
    pub adopted: bool,
}

/// A rule on a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// Position on the port (0 = evaluated first).
    pub index: usize,
    /// Name.
    pub name: String,
    /// Action (`pass`, `drop`, `rate-limit`).
    pub action: String,
    /// Where the rule comes from (file:line, container labels, DOCKER-USER
    /// position).
    pub origin: String,
    /// Whether it only counts (audit).
    pub audit: bool,
    /// Counters.
    pub counters: StatCounters,
}

/// A published port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    /// `8080/tcp` or `ADDR:8080/tcp`.
    pub port: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Container name.
    pub container: String,
    /// Container id (short).
    pub container_id: String,
    /// The port behind DNAT.
    pub container_port: u16,
    /// Traffic no rule matched (handed to netfilter).
    pub unmatched: StatCounters,
    /// Traffic from banned sources.
    pub banned: StatCounters,
    /// Non-first fragments.
    pub fragments: StatCounters,
    /// Rules in evaluation order.
    pub rules: Vec<RuleStatus>,
}

/// The daemon's view of Docker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerStatus {
    /// Engine URL.
    pub host: String,
    /// Reachable now.
    pub connected: bool,
    /// At least one full sync happened.
    pub synced: bool,
}

/// The policy sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// Policy file in use, if any.
    pub file: Option<String>,
    /// Rules in force (file, labels, mirrored).
    pub rules: usize,
    /// The last reload error; the previous policy stays in force meanwhile.
    pub last_error: Option<String>,
}

/// Everything `dockfw status` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// dockfw version.
    pub version: String,
    /// Daemon process id.
    pub pid: u32,
    /// Attached interfaces.
    pub interfaces: Vec<InterfaceStatus>,
    /// Policy generation: number of policies activated by this daemon and
    /// its predecessors (persisted across restarts).
    pub policy_generation: u64,
    /// Data-plane generation slot in use (0 or 1).
    pub active_slot: u32,
    /// Global audit mode.
    pub audit: bool,
    /// Docker.
    pub docker: DockerStatus,
    /// Policy.
    pub policy: PolicyStatus,
    /// Number of bans.
    pub bans: usize,
    /// Published ports.
    pub ports: Vec<PortStatus>,
    /// Counters of traffic that reached no published port, by reason.
    pub global: Vec<(String, Totals)>,
    /// Warnings from the last compile.
    pub warnings: Vec<String>,
    /// The DOCKER-USER mirror (`None`: not enabled).
    #[serde(default)]
    pub mirror: Option<crate::mirror::daemon::MirrorStatus>,
    /// The host's local prefixes that ports published on the wildcard
    /// address match (empty: not read yet, every destination matches).
    #[serde(default)]
    pub local_addresses: Vec<String>,
}

fn counts(counters: &StatCounters) -> String {
    format!(
        "passed {} dropped {} audited {}",
        counters.passed.packets, counters.dropped.packets, counters.audited.packets
    )
}

impl Status {
    /// The text form of `dockfw status`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "dockfw {} (pid {})", self.version, self.pid);
        for iface in &self.interfaces {
            let adopted = if iface.adopted { ", re-adopted" } else { "" };
            let _ = writeln!(
                out,
                "interface {} (ifindex {}): {}{adopted}",
                iface.name, iface.ifindex, iface.mode
            );
        }
        let _ = writeln!(
            out,
            "policy generation {} (slot {}){}; {} rules from {}",
            self.policy_generation,
            self.active_slot,
            if self.audit {
                ", AUDIT MODE: nothing is dropped"
            } else {
                ""
            },
            self.policy.rules,
            self.policy.file.as_deref().unwrap_or("no policy file"),
        );
        if let Some(error) = &self.policy.last_error {
            let _ = writeln!(
                out,
                "last policy reload FAILED (previous policy in force): {error}"
            );
        }
        let _ = writeln!(
            out,
            "docker {}: {}{}",
            self.docker.host,
            if self.docker.connected {
                "connected"
            } else {
                "UNREACHABLE (last known ports in force)"
            },
            if self.docker.synced {
                ""
            } else {
                ", not synced yet"
            },
        );
        let _ = writeln!(out, "bans: {}", self.bans);
        let _ = writeln!(
            out,
            "local addresses (wildcard ports): {}",
            if self.local_addresses.is_empty() {
                "not known yet (every destination)".to_string()
            } else {
                self.local_addresses.join(" ")
            }
        );
        if let Some(mirror) = &self.mirror {
            let _ = writeln!(out, "{}", mirror.render());
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        for port in &self.ports {
            let _ = writeln!(
                out,
                "\n{} ({}) -> {}:{} [{}]",
                port.port, port.family, port.container, port.container_port, port.container_id
            );
            let _ = writeln!(out, "  unmatched: {}", counts(&port.unmatched));
            let _ = writeln!(out, "  banned:    {}", counts(&port.banned));
            let _ = writeln!(out, "  fragments: {}", counts(&port.fragments));
            for rule in &port.rules {
                let _ = writeln!(
                    out,
                    "  #{} {} ({}{}; {}): {}",
                    rule.index,
                    rule.name,
                    rule.action,
                    if rule.audit { ", audit" } else { "" },
                    rule.origin,
                    counts(&rule.counters)
                );
            }
        }
        if !self.global.is_empty() {
            let _ = writeln!(out, "\nnot classified (passed):");
            for (reason, totals) in &self.global {
                let _ = writeln!(out, "  {reason}: {} packets", totals.packets);
            }
        }
        out
    }
}
