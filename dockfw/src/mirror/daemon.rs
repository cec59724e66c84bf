//! The daemon's side: a task that re-reads the sources every second and
//! reports a new [`Snapshot`] only when its content changed, and the state
//! the engine keeps to put mirrored rules into each compile.
//!
//! Mirrored rules are evaluated after the policy file's rules and the
//! labels' rules. A file or label rule that matches first either drops
//! (the operator's own intent) or passes, which only hands the packet to
//! netfilter, where DOCKER-USER still runs: neither can make a mirrored drop
//! unsound, and mirroring never changes what a file rule means.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    Translation,
    report::{MirrorReport, Outcome},
    source::Snapshot,
    translate,
};
use crate::model::{Policy, Proto, PublishedPort, Rule};

/// How often the sources are read.
pub const MIRROR_POLL: Duration = Duration::from_secs(1);

/// How the daemon mirrors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Translate the supported rate-limit patterns too.
    pub rate_limits: bool,
}

/// What `dockfw status` shows about mirroring.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// Docker's nftables backend was detected (nothing to mirror).
    pub nftables_backend: bool,
    /// Per family: `ipv4 mirrored`, `ipv6 missing`, ...
    pub chains: Vec<String>,
    /// Netfilter rules enforced (fully or partly) in XDP.
    pub enforced: usize,
    /// Netfilter rules that stay netfilter-only (or hand traffic back).
    pub netfilter_only: usize,
    /// Data-plane rules the mirror added.
    pub rules: usize,
    /// Problems reading the sources.
    pub errors: Vec<String>,
    /// Content hash of the readings in force (hex), to tell which reading
    /// of DOCKER-USER the policy in force comes from.
    #[serde(default)]
    pub digest: String,
}

impl MirrorStatus {
    /// The line `dockfw status` prints.
    pub fn render(&self) -> String {
        if self.nftables_backend {
            return "mirror: Docker uses its nftables firewall backend; there is no DOCKER-USER \
                    to mirror (the policy file is enforced)"
                .into();
        }
        let mut line = format!(
            "mirror: DOCKER-USER {}; {} rule(s) enforced in XDP as {} data-plane rule(s), {} \
             netfilter-only (see `dockfw mirror --explain`)",
            self.chains.join(", "),
            self.enforced,
            self.rules,
            self.netfilter_only
        );
        for error in &self.errors {
            line.push_str(&format!("\nmirror: {error}"));
        }
        line
    }
}

/// The engine's mirror: the latest readings and the last translation.
#[derive(Debug, Default)]
pub struct MirrorState {
    options: MirrorOptions,
    snapshot: Option<Arc<Snapshot>>,
    last: Option<Translation>,
}

/// Whether a rule of another source applies to a port (as the compiler
/// decides it).
fn applies(rule: &Rule, port: &PublishedPort) -> bool {
    let tcp_only = rule.syn_only || rule.tcp_flags.is_some();
    rule.ports.selects(port) && !(tcp_only && port.key.proto == Proto::Udp)
}

impl MirrorState {
    /// Nothing read yet: nothing mirrored.
    pub fn new(options: MirrorOptions) -> Self {
        Self {
            options,
            snapshot: None,
            last: None,
        }
    }

    /// Takes new readings; false when they equal the current ones.
    pub fn set_snapshot(&mut self, snapshot: Arc<Snapshot>) -> bool {
        if self.snapshot.as_deref() == Some(&snapshot) {
            return false;
        }
        for error in &snapshot.errors {
            warn!(%error, "mirror: reading DOCKER-USER's sources");
        }
        if snapshot.nftables_backend {
            warn!(
                "mirror: Docker uses its nftables firewall backend: there is no DOCKER-USER \
                 chain to mirror; only the policy file is enforced"
            );
        }
        self.snapshot = Some(snapshot);
        true
    }

    /// Appends the mirrored rules to `policy` (after every other rule,
    /// within each port's rule budget) and returns the ports to compile:
    /// `ports` plus the specific-address entries the rules are placed on.
    pub fn apply(&mut self, policy: &mut Policy, ports: &[PublishedPort]) -> Vec<PublishedPort> {
        let Some(snapshot) = &self.snapshot else {
            return ports.to_vec();
        };
        let mut translation = translate(&snapshot.input(ports, self.options.rate_limits));
        translation.fit_budget(|port| {
            policy
                .rules
                .iter()
                .filter(|rule| applies(rule, port))
                .count()
        });
        let all_ports = translation.ports_with(ports);
        let changed = self
            .last
            .as_ref()
            .is_none_or(|last| last.rules != translation.rules);
        if changed {
            info!(
                rules = translation.rules.len(),
                enforced = translation.report.enforced(),
                netfilter_only = translation.report.netfilter_only(),
                "mirror: DOCKER-USER translated"
            );
        }
        policy.rules.extend(translation.rules.iter().cloned());
        self.last = Some(translation);
        all_ports
    }

    /// The last explanation.
    pub fn report(&self) -> Option<&MirrorReport> {
        self.last.as_ref().map(|translation| &translation.report)
    }

    /// The status summary.
    pub fn status(&self) -> MirrorStatus {
        let digest = self
            .snapshot
            .as_ref()
            .map(|snapshot| format!("{:016x}", snapshot.digest()))
            .unwrap_or_default();
        let Some(last) = &self.last else {
            return MirrorStatus {
                chains: vec!["not read yet".into()],
                digest,
                ..MirrorStatus::default()
            };
        };
        let report = &last.report;
        MirrorStatus {
            nftables_backend: report.nftables_backend,
            chains: report
                .families
                .iter()
                .map(|family| {
                    let state = serde_json::to_value(&family.state)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{} {state}", family.family)
                })
                .collect(),
            enforced: report.enforced(),
            netfilter_only: report.netfilter_only(),
            rules: last.rules.len(),
            errors: report.errors.clone(),
            digest,
        }
    }

    /// The netfilter-only rules, for `dockfw trace` (what netfilter may
    /// still do to a packet XDP passed).
    pub fn trace_context(&self) -> crate::trace::context::MirrorContext {
        let rules = self
            .report()
            .into_iter()
            .flat_map(|report| &report.families)
            .flat_map(|family| &family.rules);
        let netfilter_only = rules
            .filter_map(|rule| {
                let (reasons, ports) = match &rule.outcome {
                    Outcome::NetfilterOnly { reasons } | Outcome::Partial { reasons, .. } => {
                        (reasons, None)
                    }
                    Outcome::Shadow { reasons, ports } => (reasons, Some(ports.clone())),
                    _ => return None,
                };
                Some(crate::trace::context::NetfilterOnlyRule {
                    family: rule.family.clone(),
                    chain: rule.chain.clone(),
                    position: rule.position,
                    text: rule.text.clone(),
                    reason: reasons.join("; "),
                    ports,
                })
            })
            .collect();
        crate::trace::context::MirrorContext { netfilter_only }
    }
}

/// Reads the sources every [`MIRROR_POLL`] and sends a snapshot whenever
/// its content hash changes, until `shutdown`.
pub async fn watch_sources(
    ifaces: Vec<String>,
    tx: watch::Sender<Option<Arc<Snapshot>>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(MIRROR_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let ifaces = ifaces.clone();
                let Ok(snapshot) = tokio::task::spawn_blocking(move || Snapshot::read(&ifaces)).await else {
                    continue;
                };
                let digest = snapshot.digest();
                if last != Some(digest) {
                    last = Some(digest);
                    if tx.send(Some(Arc::new(snapshot))).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
