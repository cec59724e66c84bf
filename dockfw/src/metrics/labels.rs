//! What each statistic id is called in metrics, events and `dockfw top`:
//! its `reason`, `published_port`, `family`, `container` and `rule` labels,
//! derived once per policy generation from the compiled policy.
//!
//! Labels never name a source address: a flood from random sources would
//! otherwise create one series per address (unbounded cardinality).

use std::{collections::HashMap, sync::Arc};

use dockfw_common::{action, outcome, port_flag, reason, rule_flag};
use serde::{Deserialize, Serialize};

use crate::{
    compile::CompiledPolicy,
    model::{Action, Family, Policy, RuleOrigin},
};

/// Why traffic to a published port was dropped (or passed): the `reason`
/// label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A rule of the policy file or of container labels (drop or pass).
    Rule,
    /// A banned source.
    Ban,
    /// A rate-limit rule (drops beyond the rate, passes within it).
    RateLimit,
    /// A non-first fragment.
    Fragment,
    /// A rule mirrored from Docker's DOCKER-USER chain.
    Mirror,
    /// No rule matched; netfilter decides. Only ever a pass.
    Unmatched,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Self; 6] = [
        Self::Rule,
        Self::Ban,
        Self::RateLimit,
        Self::Fragment,
        Self::Mirror,
        Self::Unmatched,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Ban => "ban",
            Self::RateLimit => "rate_limit",
            Self::Fragment => "fragment",
            Self::Mirror => "mirror",
            Self::Unmatched => "unmatched",
        }
    }

    /// The reason of a rule's verdicts: DOCKER-USER rules are `mirror`
    /// whatever they do, rate-limit rules `rate_limit`, others `rule`.
    pub fn of_rule(origin: &RuleOrigin, action: &Action) -> Self {
        match (origin, action) {
            (RuleOrigin::DockerUser { .. }, _) => Self::Mirror,
            (_, Action::RateLimit(_)) => Self::RateLimit,
            _ => Self::Rule,
        }
    }

    /// The reason for a data-plane [`reason`] code of a counted decision, if
    /// it is one of a published port (the statistic's own labels say whether
    /// a rule verdict is `mirror`).
    pub const fn of_code(code: u8) -> Option<Self> {
        match code {
            reason::RULE_DROP | reason::RULE_PASS => Some(Self::Rule),
            reason::BANNED => Some(Self::Ban),
            reason::RATE_LIMIT_DROP | reason::RATE_LIMIT_PASS => Some(Self::RateLimit),
            reason::FRAGMENT => Some(Self::Fragment),
            reason::UNMATCHED => Some(Self::Unmatched),
            _ => None,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bit set of [`outcome`]s: bit `1 << outcome`.
pub type Outcomes = u8;

const fn bit(code: u32) -> Outcomes {
    1 << code
}

/// The labels of one statistic id, and which of its outcomes are exposed
/// even while zero (so `rate()` has a starting point).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatLabels {
    /// Statistic id.
    pub stat_id: u32,
    /// `reason` label.
    pub reason: Reason,
    /// `published_port` label: `8080/tcp`, or `ADDR:8080/tcp` for a port
    /// published on one host address.
    pub published_port: String,
    /// `family` label: `ipv4` or `ipv6` (Docker publishes a port on both
    /// wildcards, which would otherwise share every other label).
    pub family: &'static str,
    /// `container` label: the container's name.
    pub container: String,
    /// `rule` label: the rule's name, empty for port-level tallies.
    pub rule: String,
    /// Outcomes this statistic can count ([`outcome`] bits).
    pub outcomes: Outcomes,
    /// The label set as exposed, rendered once per policy generation rather
    /// than at every scrape: everything up to the last label's value,
    /// `reason="rule",published_port="8080/tcp",...,rule` (values escaped).
    /// Empty until [`StatLabels::render`]; the exposition then encodes the
    /// labels one by one, with the same result.
    #[serde(skip)]
    pub rendered: String,
}

/// Escapes a label value for the text formats (`\`, `"`, newline).
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out
}

impl StatLabels {
    /// The label names in exposition order; the last one's value is
    /// written by the encoder.
    pub const NAMES: [&'static str; 5] =
        ["reason", "published_port", "family", "container", "rule"];

    /// Label values in [`Self::NAMES`] order.
    pub fn values(&self) -> [&str; 5] {
        [
            self.reason.as_str(),
            &self.published_port,
            self.family,
            &self.container,
            &self.rule,
        ]
    }

    /// Fills [`Self::rendered`].
    pub fn render(&mut self) {
        let values = self.values();
        let mut text = String::new();
        for (name, value) in Self::NAMES.iter().zip(values).take(Self::NAMES.len() - 1) {
            text.push_str(name);
            text.push_str("=\"");
            text.push_str(&escape_label_value(value));
            text.push_str("\",");
        }
        text.push_str(Self::NAMES[Self::NAMES.len() - 1]);
        self.rendered = text;
    }

    /// Whether `outcome` is exposed even while its counter is zero.
    pub const fn expects(&self, code: u32) -> bool {
        self.outcomes & bit(code) != 0
    }
}

/// The `family` label of a family.
pub const fn family_label(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// Every statistic id of a compiled policy with its labels, in port order
/// (per port: unmatched, banned, fragments, then its rules in evaluation
/// order).
pub fn stat_labels(compiled: &CompiledPolicy, policy: &Policy) -> Vec<StatLabels> {
    let mut out = Vec::new();
    for port in &compiled.ports {
        let key = port.port.key;
        let published_port = key.label();
        let family = family_label(key.family);
        let container = port.port.container.name.clone();
        let port_audit = port.policy.flags & port_flag::AUDIT != 0;
        let drop_or_audit = if port_audit {
            bit(outcome::AUDIT)
        } else {
            bit(outcome::DROP)
        };
        let mut push = |stat_id: u32, reason: Reason, rule: String, outcomes: Outcomes| {
            if stat_id != dockfw_common::STAT_NONE {
                let mut labels = StatLabels {
                    stat_id,
                    reason,
                    published_port: published_port.clone(),
                    family,
                    container: container.clone(),
                    rule,
                    outcomes,
                    rendered: String::new(),
                };
                labels.render();
                out.push(labels);
            }
        };
        push(
            port.policy.stat_unmatched,
            Reason::Unmatched,
            String::new(),
            bit(outcome::PASS),
        );
        push(
            port.policy.stat_banned,
            Reason::Ban,
            String::new(),
            drop_or_audit,
        );
        let fragments = if port.policy.flags & port_flag::FRAGMENTS_DROP != 0 {
            drop_or_audit
        } else {
            bit(outcome::PASS)
        };
        push(
            port.policy.stat_fragments,
            Reason::Fragment,
            String::new(),
            fragments,
        );
        for rule in &port.rules {
            let reason = policy.rules.get(rule.rule).map_or(Reason::Rule, |source| {
                Reason::of_rule(&source.origin, &source.action)
            });
            let drops = if rule.action.flags & rule_flag::AUDIT != 0 {
                bit(outcome::AUDIT)
            } else {
                bit(outcome::DROP)
            };
            let outcomes = match rule.action.action {
                action::DROP => drops,
                action::RATE_LIMIT => drops | bit(outcome::PASS),
                _ => bit(outcome::PASS),
            };
            push(rule.action.stat_id, reason, rule.name.clone(), outcomes);
        }
    }
    out
}

/// Labels by statistic id, shared between the daemon's loop (which rebuilds
/// it when a policy generation is activated) and the event reader.
#[derive(Clone, Debug, Default)]
pub struct LabelTable {
    by_id: HashMap<u32, Arc<StatLabels>>,
    ordered: Vec<Arc<StatLabels>>,
    /// Highest statistic id in the table.
    pub max_stat_id: u32,
}

impl LabelTable {
    /// A table over `labels` (in the order they are exposed).
    pub fn new(labels: Vec<StatLabels>) -> Self {
        let ordered: Vec<Arc<StatLabels>> = labels.into_iter().map(Arc::new).collect();
        let by_id = ordered
            .iter()
            .map(|labels| (labels.stat_id, Arc::clone(labels)))
            .collect();
        let max_stat_id = ordered
            .iter()
            .map(|labels| labels.stat_id)
            .max()
            .unwrap_or(0);
        Self {
            by_id,
            ordered,
            max_stat_id,
        }
    }

    /// The labels of a statistic id.
    pub fn get(&self, stat_id: u32) -> Option<&Arc<StatLabels>> {
        self.by_id.get(&stat_id)
    }

    /// Every statistic in exposition order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<StatLabels>> {
        self.ordered.iter()
    }

    /// Number of statistics.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether the table is empty (no policy activated yet).
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }
}

#[cfg(test)]
mod tests;
