//! What a trace needs besides the data plane's decision: the names behind
//! statistic ids (published port, container, rule and where the rule comes
//! from). The running daemon answers it over the control socket
//! ([`crate::control::Request::TraceContext`]); without a daemon the ids are
//! resolved from the state file it left (`<run-dir>/state.json`), which
//! knows ports and rule names but not containers or rule origins.

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};

use crate::{
    compile::{CompiledPolicy, StatOwner, StatRegistry},
    model::{BindingKey, Policy},
};

/// Where the names of a trace come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextSource {
    /// The running daemon.
    Daemon,
    /// The state file of a daemon that is not running.
    StateFile,
    /// Nothing: only numbers can be shown.
    #[default]
    None,
}

/// A rule as placed on a published port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleContext {
    /// Position on the port (0 = evaluated first); `None` when unknown.
    pub index: Option<u32>,
    /// Name.
    pub name: String,
    /// `pass`, `drop`, `rate-limit`; empty when unknown.
    pub action: String,
    /// Where the rule comes from (`policy.toml:12`, `labels of container
    /// web`, `DOCKER-USER rule 3`); empty when unknown.
    pub origin: String,
    /// Statistic id of the rule on this port.
    pub stat_id: u32,
    /// It only counts would-be drops.
    pub audit: bool,
}

/// A published port with its container and rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortContext {
    /// The pre-DNAT binding the data plane matches.
    pub key: BindingKey,
    /// Container name (empty when unknown).
    pub container: String,
    /// Container id, short (empty when unknown).
    pub container_id: String,
    /// Where Docker's DNAT sends the packet, if known.
    pub container_addr: Option<IpAddr>,
    /// The port behind DNAT (0 when unknown).
    pub container_port: u16,
    /// Statistic id of traffic no rule matched.
    pub stat_unmatched: Option<u32>,
    /// Statistic id of traffic from banned sources.
    pub stat_banned: Option<u32>,
    /// Statistic id of non-first fragments.
    pub stat_fragments: Option<u32>,
    /// Rules in evaluation order.
    pub rules: Vec<RuleContext>,
}

/// A `DOCKER-USER` rule that stays in netfilter (dockfw cannot enforce it
/// exactly, or only part of it), as `dockfw mirror --explain` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetfilterOnlyRule {
    /// `ipv4` or `ipv6` (the iptables or ip6tables rule).
    pub family: String,
    /// Chain holding the rule.
    pub chain: String,
    /// 1-based position in that chain.
    pub position: usize,
    /// The rule as `iptables-save` prints it.
    pub text: String,
    /// Why it is not (fully) enforced in the fast path.
    pub reason: String,
    /// The published ports it can apply to, as binding labels
    /// ([`BindingKey::label`]: `8080/tcp`, `192.0.2.1:8080/tcp`); `None` =
    /// it may apply to any.
    pub ports: Option<Vec<String>>,
}

/// `ipv4` or `ipv6`, as metrics and the mirror report name families.
fn family_name(key: &BindingKey) -> &'static str {
    match key.family {
        crate::model::Family::V4 => "ipv4",
        crate::model::Family::V6 => "ipv6",
    }
}

/// The DOCKER-USER mirror's view, when the daemon mirrors the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorContext {
    /// Rules that stay netfilter-only, in chain order.
    pub netfilter_only: Vec<NetfilterOnlyRule>,
}

impl MirrorContext {
    /// The netfilter-only rules that can apply to traffic for `key`.
    pub fn rules_for<'a>(
        &'a self,
        key: &'a BindingKey,
    ) -> impl Iterator<Item = &'a NetfilterOnlyRule> + 'a {
        let label = key.label();
        self.netfilter_only.iter().filter(move |rule| {
            rule.family == family_name(key)
                && rule
                    .ports
                    .as_ref()
                    .is_none_or(|ports| ports.contains(&label))
        })
    }
}

/// Everything that turns a trace record into names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// Where it comes from.
    pub source: ContextSource,
    /// Policies activated so far (as `dockfw status` shows it).
    pub policy_generation: Option<u64>,
    /// The data-plane generation slot the daemon last activated.
    pub active_slot: Option<u32>,
    /// Global audit mode.
    pub audit: bool,
    /// Interfaces dockfw is attached to, with their index.
    pub interfaces: Vec<(String, u32)>,
    /// Published ports.
    pub ports: Vec<PortContext>,
    /// The DOCKER-USER mirror; `None` when the daemon does not mirror it
    /// (then every DOCKER-USER rule runs in netfilter).
    pub mirror: Option<MirrorContext>,
}

/// What a statistic id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatMeaning<'a> {
    /// Unmatched traffic of a port.
    Unmatched(&'a PortContext),
    /// Banned sources at a port.
    Banned(&'a PortContext),
    /// Non-first fragments at a port.
    Fragments(&'a PortContext),
    /// A rule on a port.
    Rule(&'a PortContext, &'a RuleContext),
}

impl<'a> StatMeaning<'a> {
    /// The port.
    pub fn port(&self) -> &'a PortContext {
        match self {
            Self::Unmatched(port)
            | Self::Banned(port)
            | Self::Fragments(port)
            | Self::Rule(port, _) => port,
        }
    }
}

impl TraceContext {
    /// The context of a daemon's compiled policy.
    pub fn from_compiled(compiled: &CompiledPolicy, policy: &Policy) -> Self {
        let ports = compiled
            .ports
            .iter()
            .map(|port| PortContext {
                key: port.port.key,
                container: port.port.container.name.clone(),
                container_id: port.port.container.id.chars().take(12).collect(),
                container_addr: port.port.container_addr,
                container_port: port.port.container_port,
                stat_unmatched: Some(port.policy.stat_unmatched),
                stat_banned: Some(port.policy.stat_banned),
                stat_fragments: Some(port.policy.stat_fragments),
                rules: port
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(index, rule)| {
                        let source = policy.rules.get(rule.rule);
                        RuleContext {
                            index: u32::try_from(index).ok(),
                            name: rule.name.clone(),
                            action: source.map_or("", |rule| rule.action.name()).to_owned(),
                            origin: source
                                .map(|rule| rule.origin.to_string())
                                .unwrap_or_default(),
                            stat_id: rule.action.stat_id,
                            audit: rule.action.flags & dockfw_common::rule_flag::AUDIT != 0,
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            source: ContextSource::Daemon,
            ports,
            ..Self::default()
        }
    }

    /// The context a state file gives: ports and rule names by statistic id.
    pub fn from_registry(registry: &StatRegistry) -> Self {
        let mut ports: BTreeMap<BindingKey, PortContext> = BTreeMap::new();
        for (owner, id) in registry.iter() {
            let port = ports.entry(*owner.key()).or_insert_with(|| PortContext {
                key: *owner.key(),
                container: String::new(),
                container_id: String::new(),
                container_addr: None,
                container_port: 0,
                stat_unmatched: None,
                stat_banned: None,
                stat_fragments: None,
                rules: Vec::new(),
            });
            match owner {
                StatOwner::Unmatched(_) => port.stat_unmatched = Some(id),
                StatOwner::Banned(_) => port.stat_banned = Some(id),
                StatOwner::Fragments(_) => port.stat_fragments = Some(id),
                StatOwner::Rule(_, name) => port.rules.push(RuleContext {
                    index: None,
                    name: name.clone(),
                    action: String::new(),
                    origin: String::new(),
                    stat_id: id,
                    audit: false,
                }),
            }
        }
        Self {
            source: ContextSource::StateFile,
            ports: ports.into_values().collect(),
            ..Self::default()
        }
    }

    /// What statistic id `id` counts.
    pub fn meaning(&self, id: u32) -> Option<StatMeaning<'_>> {
        if id == dockfw_common::STAT_NONE {
            return None;
        }
        self.ports.iter().find_map(|port| {
            if port.stat_unmatched == Some(id) {
                Some(StatMeaning::Unmatched(port))
            } else if port.stat_banned == Some(id) {
                Some(StatMeaning::Banned(port))
            } else if port.stat_fragments == Some(id) {
                Some(StatMeaning::Fragments(port))
            } else {
                port.rules
                    .iter()
                    .find(|rule| rule.stat_id == id)
                    .map(|rule| StatMeaning::Rule(port, rule))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Proto};

    fn key(port: u16) -> BindingKey {
        BindingKey {
            family: Family::V4,
            proto: Proto::Tcp,
            addr: None,
            port,
        }
    }

    #[test]
    fn a_state_file_names_ports_and_rules_by_id() {
        let mut registry = StatRegistry::default();
        let unmatched = registry.assign(StatOwner::Unmatched(key(80)), 100).unwrap();
        let rule = registry
            .assign(StatOwner::Rule(key(80), "drop-bad".into()), 100)
            .unwrap();
        let banned = registry.assign(StatOwner::Banned(key(81)), 100).unwrap();
        let context = TraceContext::from_registry(&registry);
        assert_eq!(context.source, ContextSource::StateFile);
        match context.meaning(rule) {
            Some(StatMeaning::Rule(port, found)) => {
                assert_eq!(port.key, key(80));
                assert_eq!(found.name, "drop-bad");
            }
            other => panic!("rule id resolved to {other:?}"),
        }
        assert!(matches!(
            context.meaning(unmatched),
            Some(StatMeaning::Unmatched(port)) if port.key == key(80)
        ));
        assert!(matches!(
            context.meaning(banned),
            Some(StatMeaning::Banned(port)) if port.key == key(81)
        ));
        assert_eq!(context.meaning(dockfw_common::STAT_NONE), None);
        assert_eq!(context.meaning(99), None);
    }

    #[test]
    fn mirror_rules_are_filtered_by_port() {
        let rule = |position, ports: Option<Vec<&str>>| NetfilterOnlyRule {
            family: "ipv4".into(),
            chain: "DOCKER-USER".into(),
            position,
            text: "-A DOCKER-USER -j REJECT".into(),
            reason: "REJECT is not translated".into(),
            ports: ports.map(|ports| ports.into_iter().map(String::from).collect()),
        };
        let mirror = MirrorContext {
            netfilter_only: vec![
                rule(1, None),
                rule(2, Some(vec!["80/tcp"])),
                rule(3, Some(vec!["81/tcp"])),
                NetfilterOnlyRule {
                    family: "ipv6".into(),
                    ..rule(4, None)
                },
            ],
        };
        let positions: Vec<usize> = mirror.rules_for(&key(80)).map(|r| r.position).collect();
        assert_eq!(
            positions,
            [1, 2],
            "the port's and any port's, of its family"
        );
    }

    #[test]
    fn the_context_round_trips_through_json() {
        let mut registry = StatRegistry::default();
        registry
            .assign(StatOwner::Rule(key(80), "r".into()), 100)
            .unwrap();
        let mut context = TraceContext::from_registry(&registry);
        context.mirror = Some(MirrorContext::default());
        let json = serde_json::to_string(&context).unwrap();
        assert_eq!(
            serde_json::from_str::<TraceContext>(&json).unwrap(),
            context
        );
    }
}
