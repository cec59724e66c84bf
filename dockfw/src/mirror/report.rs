//! What `dockfw mirror --explain` prints: for each rule of DOCKER-USER (and
//! the chains it jumps to, and any FORWARD rule before it), what the fast
//! path does with it and why.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::keys::UntrustedKey;

/// The fate of one netfilter rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// Enforced in XDP, exactly.
    Mirrored {
        /// `drop`, `pass` or `rate-limit`.
        action: String,
        /// The keys it is placed on.
        ports: Vec<String>,
    },
    /// Enforced in XDP for part of the traffic it matches; the rest stays
    /// netfilter-only.
    Partial {
        /// `drop` or `rate-limit`.
        action: String,
        /// The keys it is placed on.
        ports: Vec<String>,
        /// Why not all of it.
        reasons: Vec<String>,
    },
    /// Not enforced in XDP at all.
    NetfilterOnly {
        /// Why.
        reasons: Vec<String>,
    },
    /// A rule that may accept (or leave DOCKER-USER) without an exact
    /// translation: XDP passes every packet it might match to netfilter, so
    /// that no later drop applies to them in XDP.
    Shadow {
        /// The keys the pass is placed on.
        ports: Vec<String>,
        /// Why it is not exact.
        reasons: Vec<String>,
    },
    /// No verdict (LOG) or no published-port traffic can match it.
    NoEffect {
        /// Why.
        reason: String,
    },
    /// A jump: the chain's rules follow, inlined.
    Jump {
        /// The chain.
        chain: String,
    },
}

/// One netfilter rule and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleReport {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Chain holding the rule.
    pub chain: String,
    /// 1-based position in it.
    pub position: usize,
    /// How the walk got there: `DOCKER-USER#3 > BLOCK#2`.
    pub path: String,
    /// The rule as iptables-save prints it.
    pub text: String,
    /// What the fast path does with it.
    pub outcome: Outcome,
    /// Remarks (e.g. earlier rules whose traffic it does not cover in XDP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The state of one family's DOCKER-USER.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainState {
    /// DOCKER-USER exists and FORWARD jumps to it.
    Mirrored,
    /// No DOCKER-USER chain (Docker's iptables integration is off for this
    /// family, or another firewall backend is in use).
    Missing,
    /// DOCKER-USER exists but FORWARD does not jump to it.
    NotReached,
    /// The rules could not be read.
    Unreadable,
}

/// One family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyReport {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// DOCKER-USER's state.
    pub state: ChainState,
    /// What to know about it.
    pub message: Option<String>,
    /// Keys mirrored rules can be placed on.
    pub keys: Vec<String>,
    /// Keys that get no mirrored rule, and why.
    pub untrusted: Vec<UntrustedKey>,
    /// The rules in evaluation order.
    pub rules: Vec<RuleReport>,
}

/// The whole explanation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorReport {
    /// Whether Docker uses its nftables firewall backend (no DOCKER-USER).
    pub nftables_backend: bool,
    /// Per family.
    pub families: Vec<FamilyReport>,
    /// Problems reading the sources.
    pub errors: Vec<String>,
    /// Keys whose rule budget ran out, and from which rule on.
    pub budget: Vec<String>,
}

impl MirrorReport {
    /// Rules translated (fully or partly) into drops or rate limits.
    pub fn enforced(&self) -> usize {
        self.rules()
            .filter(|rule| {
                matches!(
                    &rule.outcome,
                    Outcome::Mirrored { action, .. } | Outcome::Partial { action, .. }
                        if action != "pass"
                )
            })
            .count()
    }

    /// Rules that stay netfilter-only or shadow later ones.
    pub fn netfilter_only(&self) -> usize {
        self.rules()
            .filter(|rule| {
                matches!(
                    rule.outcome,
                    Outcome::NetfilterOnly { .. } | Outcome::Shadow { .. }
                )
            })
            .count()
    }

    fn rules(&self) -> impl Iterator<Item = &RuleReport> {
        self.families.iter().flat_map(|family| &family.rules)
    }

    /// The text form.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.nftables_backend {
            let _ = writeln!(
                out,
                "Docker uses its nftables firewall backend (table ip docker-bridges): there is \
                 no DOCKER-USER chain to mirror; dockfw keeps enforcing its policy file."
            );
        }
        for error in &self.errors {
            let _ = writeln!(out, "error: {error}");
        }
        for family in &self.families {
            let _ = writeln!(out, "\n{} DOCKER-USER: {:?}", family.family, family.state);
            if let Some(message) = &family.message {
                let _ = writeln!(out, "  {message}");
            }
            if !family.keys.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} key(s) can carry mirrored rules (`--json` lists them)",
                    family.keys.len()
                );
            }
            for key in &family.untrusted {
                let _ = writeln!(out, "  not mirrored on {}: {}", key.key, key.reason);
            }
            for rule in &family.rules {
                let _ = writeln!(out, "  {} [{}]", rule.path, rule.text);
                let _ = writeln!(out, "    -> {}", outcome_text(&rule.outcome));
                for note in &rule.notes {
                    let _ = writeln!(out, "       note: {note}");
                }
            }
        }
        for line in &self.budget {
            let _ = writeln!(out, "budget: {line}");
        }
        out
    }
}

/// Keys grouped by published port: `8080/tcp (6 addresses)`, or the one
/// key when there is one.
fn compact(ports: &[String]) -> String {
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for label in ports {
        let (addr, port) = label.rsplit_once(':').unwrap_or(("", label.as_str()));
        groups.entry(port).or_default().push(addr);
    }
    groups
        .into_iter()
        .map(|(port, addrs)| match addrs.as_slice() {
            [addr] => format!("{addr}:{port}"),
            _ => format!("{port} ({} addresses)", addrs.len()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Mirrored { action, ports } => {
            format!("{action} in XDP on {}", compact(ports))
        }
        Outcome::Partial {
            action,
            ports,
            reasons,
        } => format!(
            "{action} in XDP on {} for part of its traffic; the rest stays netfilter-only: {}",
            compact(ports),
            reasons.join("; ")
        ),
        Outcome::NetfilterOnly { reasons } => {
            format!("netfilter-only: {}", reasons.join("; "))
        }
        Outcome::Shadow { ports, reasons } => format!(
            "may accept traffic it cannot be decided for in XDP ({}); XDP hands what it might \
             match on {} to netfilter, so later drops do not apply to it",
            reasons.join("; "),
            compact(ports)
        ),
        Outcome::NoEffect { reason } => format!("no effect in XDP: {reason}"),
        Outcome::Jump { chain } => format!("jumps to {chain} (inlined below)"),
    }
}
