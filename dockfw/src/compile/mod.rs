//! The compiler: policy x published ports -> what each port's map entries
//! must hold. Pure: no kernel, no Docker; the writer in
//! [`crate::dataplane`] puts the result into the inactive generation.

pub mod sources;
pub mod stats;
pub mod trie;

use std::collections::{BTreeMap, BTreeSet};

use dockfw_common::{MAX_RULES_PER_PORT, PortPolicy, RuleAction, action, port_flag, rule_flag};

pub use self::{
    sources::SourceTable,
    stats::{StatOwner, StatRegistry, StatsExhausted},
};
use crate::model::{Action, FragmentAction, Per, Policy, Proto, PublishedPort, Rule};

/// TCP flag bits as in the header.
const TCP_SYN: u8 = 0x02;
/// TCP ACK.
const TCP_ACK: u8 = 0x10;

/// What the compiler works from.
#[derive(Clone, Copy, Debug)]
pub struct CompileInput<'a> {
    /// The policy in rule order.
    pub policy: &'a Policy,
    /// Every published port.
    pub ports: &'a [PublishedPort],
    /// Interfaces dockfw is attached to, by name.
    pub ifaces: &'a BTreeMap<String, u32>,
    /// Global audit mode: every drop becomes a counted would-drop.
    pub audit: bool,
    /// Statistic-id capacity.
    pub stats_capacity: u32,
}

/// One rule as placed on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledRule {
    /// Index of the rule in [`Policy::rules`].
    pub rule: usize,
    /// The rule's name.
    pub name: String,
    /// What the data plane applies.
    pub action: RuleAction,
}

/// Everything one published port needs in the maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPort {
    /// The port.
    pub port: PublishedPort,
    /// Its policy entry (`rule_base` is set by the writer).
    pub policy: PortPolicy,
    /// Its rules; bit `i` of every bitmap is `rules[i]`.
    pub rules: Vec<CompiledRule>,
    /// The source dimension for the port's family.
    pub sources: SourceTable,
    /// IPv4: `sources` expanded to the /8, /16, /24 and /32 levels the data
    /// plane looks up.
    pub levels_v4: Vec<sources::LevelEntry>,
    /// Per attached interface index: the rules whose interface condition
    /// holds there (only when some rule of the port has one).
    pub iface_masks: Vec<(u32, u32)>,
}

/// A compiled policy, ready to be written into a generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledPolicy {
    /// One entry per published port.
    pub ports: Vec<CompiledPort>,
    /// Things the operator should know that do not stop the policy.
    pub warnings: Vec<String>,
}

/// Why a policy cannot be compiled. Nothing is applied when this happens.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// More rules select one port than the data plane evaluates.
    #[error(
        "{count} rules apply to published port {port}, more than the {max} a port can hold \
         (first ones: {first}); narrow the rules' `ports`, `container` or `label`"
    )]
    TooManyRules {
        /// The port.
        port: String,
        /// Rules selecting it.
        count: usize,
        /// The limit.
        max: usize,
        /// Names of the first rules, for the message.
        first: String,
    },
    /// Statistic ids ran out.
    #[error(transparent)]
    Stats(#[from] StatsExhausted),
}

/// Compiles `input`, allocating statistic ids from `registry` (ids of ports
/// and rules that no longer exist are released).
pub fn compile(
    input: &CompileInput<'_>,
    registry: &mut StatRegistry,
) -> Result<CompiledPolicy, CompileError> {
    let mut compiled = CompiledPolicy::default();
    let mut owners = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for port in input.ports {
        if !seen.insert(port.key) {
            compiled.warnings.push(format!(
                "published port {} is reported twice (container {}); the first one is used",
                port.key, port.container.name
            ));
            continue;
        }
        compiled
            .ports
            .push(compile_port(input, port, registry, &mut owners)?);
    }
    for rule in &input.policy.rules {
        for iface in rule
            .ifaces
            .iter()
            .filter(|iface| !input.ifaces.contains_key(*iface))
        {
            compiled.warnings.push(format!(
                "rule {} names interface {iface}, which dockfw is not attached to; \
                 that condition never matches",
                rule.name
            ));
        }
    }
    registry.retain(&owners);
    Ok(compiled)
}

/// Whether a rule can match traffic to this port at all.
fn applies(rule: &Rule, port: &PublishedPort) -> bool {
    // TCP-only conditions never hold for UDP.
    let tcp_only = rule.syn_only || rule.tcp_flags.is_some();
    rule.ports.selects(port) && !(tcp_only && port.key.proto == Proto::Udp)
}

fn compile_port(
    input: &CompileInput<'_>,
    port: &PublishedPort,
    registry: &mut StatRegistry,
    owners: &mut BTreeSet<StatOwner>,
) -> Result<CompiledPort, CompileError> {
    let key = port.key;
    let mut assign = |owner: StatOwner| {
        owners.insert(owner.clone());
        registry.assign(owner, input.stats_capacity)
    };
    let mut policy = PortPolicy {
        stat_unmatched: assign(StatOwner::Unmatched(key))?,
        stat_banned: assign(StatOwner::Banned(key))?,
        stat_fragments: assign(StatOwner::Fragments(key))?,
        ..PortPolicy::default()
    };
    if input.audit {
        policy.flags |= port_flag::AUDIT;
    }

    let selected: Vec<(usize, &Rule)> = input
        .policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| applies(rule, port))
        .collect();
    if selected.len() > MAX_RULES_PER_PORT {
        let first: Vec<&str> = selected
            .iter()
            .take(5)
            .map(|(_, rule)| rule.name.as_str())
            .collect();
        return Err(CompileError::TooManyRules {
            port: key.to_string(),
            count: selected.len(),
            max: MAX_RULES_PER_PORT,
            first: first.join(", "),
        });
    }

    let fragments = selected
        .iter()
        .find_map(|(_, rule)| rule.fragments)
        .unwrap_or(input.policy.fragments);
    if fragments == FragmentAction::Drop {
        policy.flags |= port_flag::FRAGMENTS_DROP;
    }

    let mut rules = Vec::with_capacity(selected.len());
    let mut iface_rules = 0u32;
    for (bit, (index, rule)) in selected.iter().enumerate() {
        let mask = 1u32 << bit;
        let stat_id = assign(StatOwner::Rule(key, rule.name.clone()))?;
        let rule_action = rule_action(rule, stat_id, input.audit);
        if rule.syn_only {
            policy.syn_only_mask |= mask;
        }
        if rule_action.flags & rule_flag::RESIDUAL != 0 {
            policy.residual_mask |= mask;
        }
        if !rule.ifaces.is_empty() {
            iface_rules |= mask;
        }
        rules.push(CompiledRule {
            rule: *index,
            name: rule.name.clone(),
            action: rule_action,
        });
    }
    policy.rule_count = rules.len() as u32;

    let conditions: Vec<&_> = selected.iter().map(|(_, rule)| &rule.sources).collect();
    let sources = sources::build(key.family, &conditions);
    policy.default_bits = sources.default_bits;
    if !sources.prefixes.is_empty() {
        policy.flags |= port_flag::HAS_SOURCE_RULES;
    }
    let (levels_v4, level_mask) = sources::expand_v4(&sources);
    policy.source_levels_v4 = level_mask;

    let all_rules = if rules.len() >= 32 {
        u32::MAX
    } else {
        (1u32 << rules.len()) - 1
    };
    policy.iface_default_mask = all_rules & !iface_rules;
    let mut iface_masks = Vec::new();
    if iface_rules != 0 {
        policy.flags |= port_flag::HAS_IFACE_RULES;
        for (name, ifindex) in input.ifaces {
            let mut mask = policy.iface_default_mask;
            for (bit, (_, rule)) in selected.iter().enumerate() {
                if rule.ifaces.iter().any(|iface| iface == name) {
                    mask |= 1 << bit;
                }
            }
            iface_masks.push((*ifindex, mask));
        }
    }

    Ok(CompiledPort {
        port: port.clone(),
        policy,
        rules,
        sources,
        levels_v4,
        iface_masks,
    })
}

/// The data-plane form of one rule.
fn rule_action(rule: &Rule, stat_id: u32, global_audit: bool) -> RuleAction {
    let mut out = RuleAction {
        stat_id,
        sport_lo: 0,
        sport_hi: u16::MAX,
        ..RuleAction::default()
    };
    if rule.audit || global_audit {
        out.flags |= rule_flag::AUDIT;
    }
    if let Some((low, high)) = rule.source_ports {
        out.sport_lo = low;
        out.sport_hi = high;
        out.flags |= rule_flag::RESIDUAL;
    }
    if let Some((mask, value)) = rule.tcp_flags {
        out.tcp_flags_mask = mask;
        out.tcp_flags_value = value & mask;
        out.flags |= rule_flag::RESIDUAL;
    }
    match rule.action {
        Action::Pass => out.action = action::PASS,
        Action::Drop => out.action = action::DROP,
        Action::RateLimit(limit) => {
            out.action = action::RATE_LIMIT;
            out.interval_ns = limit.rate.interval_ns();
            out.burst_ns = out
                .interval_ns
                .saturating_mul(u64::from(limit.burst.max(1)));
            if limit.per == Per::Source {
                out.flags |= rule_flag::PER_SOURCE;
                if let Some((rate, burst)) = limit.total {
                    out.aggregate_interval_ns = rate.interval_ns();
                    out.aggregate_burst_ns = out
                        .aggregate_interval_ns
                        .saturating_mul(u64::from(burst.max(1)));
                }
            }
        }
    }
    out
}

/// Whether a TCP flags byte is a connection attempt (SYN without ACK), as
/// the data plane's `syn_only` test.
pub const fn is_syn(flags: u8) -> bool {
    flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

#[cfg(test)]
mod tests;
