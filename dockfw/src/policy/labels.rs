//! Container labels -> rules: a container declares its own protection in
//! its compose file.
//!
//! # Grammar
//!
//! Labels are `dockfw.KEY=VALUE` (the container's default rule) or
//! `dockfw.N.KEY=VALUE` (rule number `N`, a decimal without leading zeros).
//! Numbered rules are evaluated in ascending `N`, then the unnumbered rule
//! last: it is the container's fallback, so
//! `dockfw.0.action=pass`, `dockfw.0.from=@office`, `dockfw.action=drop`
//! reads "office passes, everyone else is dropped". Keys do not carry over
//! between rules; each rule needs its own `action`.
//!
//! | key | value |
//! |---|---|
//! | `action` | `drop`, `pass` or `rate-limit` (required) |
//! | `rate`, `burst`, `per`, `total_rate`, `total_burst` | as in the policy file: `200/s`, `400`, `source`/`port`, ... |
//! | `from`, `not_from` | comma-separated CIDRs, addresses, or `@set` of the policy file |
//! | `ports` | comma-separated `8080/tcp`, `9000-9002/udp`: some of the container's published host ports (default: all of them) |
//! | `iface` | comma-separated interface names |
//! | `syn_only`, `audit` | `true`/`false` (also `yes`/`no`, `1`/`0`) |
//! | `source_ports` | `1024-65535` or `53` |
//! | `tcp_flags` | `SYN,ACK/SYN` |
//! | `fragments` | `pass` or `drop` |
//!
//! A rule selects the container by its full id, so it follows the container
//! across restarts and never selects another container's ports. It is named
//! `label:NAME` (`label:NAME.N` for rule `N`). See the
//! [module documentation](super#precedence) for where label rules stand
//! relative to the policy file.

use std::{collections::BTreeMap, fmt};

use ipnet::IpNet;

use super::{
    file::LABEL_RULE_PREFIX,
    file_errors::did_you_mean,
    sets::{SetTable, expand_source},
    values::{self, ActionFields, FieldProblem},
};
use crate::model::{Action, ContainerRef, FragmentAction, PortSpec, Rule, RuleOrigin};

/// Prefix of the labels dockfw reads.
pub const LABEL_PREFIX: &str = "dockfw.";

/// The keys after `dockfw.` or `dockfw.N.`.
const LABEL_KEYS: [&str; 15] = [
    "action",
    "rate",
    "burst",
    "per",
    "total_rate",
    "total_burst",
    "from",
    "not_from",
    "ports",
    "iface",
    "syn_only",
    "audit",
    "source_ports",
    "tcp_flags",
    "fragments",
];

/// One invalid label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelProblem {
    /// The full label key, e.g. `dockfw.1.rate`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LabelProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "label {}: {}", self.key, self.message)
    }
}

/// A container's `dockfw.*` labels are invalid; none of its label rules are
/// used (the rest of the policy is).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("container {container}: {}", join_problems(problems))]
pub struct LabelError {
    /// The container's name.
    pub container: String,
    /// Every invalid label found.
    pub problems: Vec<LabelProblem>,
}

/// `a; b; c` (one log line).
fn join_problems(problems: &[LabelProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rules a container's labels declare, in evaluation order; `@set`
/// references are refused (see [`rules_from_labels_with_sets`]).
///
/// # Errors
///
/// As [`rules_from_labels_with_sets`].
pub fn rules_from_labels(container: &ContainerRef) -> Result<Vec<Rule>, LabelError> {
    rules_from_labels_with_sets(container, &SetTable::new())
}

/// The rules a container's labels declare, in evaluation order, with `@set`
/// references resolved against the policy file's sets
/// ([`LoadedPolicy::sets`](super::LoadedPolicy::sets)). A container without
/// `dockfw.*` labels declares none.
///
/// # Errors
///
/// A [`LabelError`] naming the container and every invalid label; the
/// caller ignores that container's labels and keeps the rest of the policy.
pub fn rules_from_labels_with_sets(
    container: &ContainerRef,
    sets: &SetTable,
) -> Result<Vec<Rule>, LabelError> {
    let mut problems = Vec::new();
    // Rule index (None = the unnumbered rule) -> key -> (label key, value).
    let mut groups: BTreeMap<Option<u32>, BTreeMap<&str, (&str, &str)>> = BTreeMap::new();
    for (label, value) in &container.labels {
        let Some(rest) = label.strip_prefix(LABEL_PREFIX) else {
            continue;
        };
        match split_key(rest) {
            Ok((index, key)) => {
                groups
                    .entry(index)
                    .or_default()
                    .insert(key, (label.as_str(), value.as_str()));
            }
            Err(message) => problems.push(LabelProblem {
                key: label.clone(),
                message,
            }),
        }
    }
    if container.id.is_empty() && !groups.is_empty() {
        problems.push(LabelProblem {
            key: LABEL_PREFIX.to_owned(),
            message: "the container has no id to select it by".to_owned(),
        });
    }
    let display_name = if container.name.is_empty() {
        short_id(&container.id)
    } else {
        container.name.as_str()
    };
    // Numbered rules in ascending order, then the unnumbered fallback.
    let fallback = groups.remove(&None);
    let ordered = groups
        .into_iter()
        .chain(fallback.map(|labels| (None, labels)));
    let mut rules = Vec::new();
    for (index, labels) in ordered {
        let name = match index {
            Some(index) => format!("{LABEL_RULE_PREFIX}{display_name}.{index}"),
            None => format!("{LABEL_RULE_PREFIX}{display_name}"),
        };
        let origin = RuleOrigin::Label {
            container: display_name.to_owned(),
        };
        let mut rule = Rule::new(name, origin, Action::Drop);
        rule.ports.container = Some(container.id.clone());
        let label_key = |field: &str| match index {
            Some(index) => format!("{LABEL_PREFIX}{index}.{field}"),
            None => format!("{LABEL_PREFIX}{field}"),
        };
        let before = problems.len();
        let mut found = Vec::new();
        fill_rule(&mut rule, &labels, sets, &mut found);
        problems.extend(found.into_iter().map(|problem| LabelProblem {
            key: label_key(problem.field),
            message: problem.message,
        }));
        if problems.len() == before {
            rules.push(rule);
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(LabelError {
            container: display_name.to_owned(),
            problems,
        })
    }
}

/// `N.KEY` or `KEY` -> (index, key), with the key checked.
fn split_key(rest: &str) -> Result<(Option<u32>, &str), String> {
    let (index, key) = match rest.split_once('.') {
        Some((number, key)) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            match number.parse::<u32>() {
                Ok(index) if index.to_string() == number => (Some(index), key),
                _ => {
                    return Err(format!(
                        "rule number {number:?} must be a decimal without leading zeros"
                    ));
                }
            }
        }
        _ => (None, rest),
    };
    match LABEL_KEYS.iter().find(|known| **known == key) {
        Some(known) => Ok((index, known)),
        None => {
            let hint = did_you_mean(key, LABEL_KEYS.iter().copied(), ("dockfw.", ""));
            let listing = if hint.is_empty() {
                format!(
                    " (expected dockfw.KEY or dockfw.N.KEY with KEY one of: {})",
                    LABEL_KEYS.join(", ")
                )
            } else {
                hint
            };
            Err(format!("unknown dockfw label{listing}"))
        }
    }
}

/// The first 12 characters of an id, as `docker ps` shows it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The labels of one rule: key (without the prefix) -> (label key, value).
type RuleLabels<'a> = BTreeMap<&'a str, (&'a str, &'a str)>;

/// Fills one rule from its labels.
fn fill_rule(
    rule: &mut Rule,
    labels: &RuleLabels<'_>,
    sets: &SetTable,
    problems: &mut Vec<FieldProblem>,
) {
    let mut take = |field, parse: &dyn Fn(&str) -> Result<Parsed, String>| {
        parse_field(labels, field, problems, parse)
    };
    if let Some(Parsed::Ports(ports)) = take("ports", &|value| {
        let specs = list(value)?
            .into_iter()
            .map(str::parse::<PortSpec>)
            .collect::<Result<_, _>>()?;
        Ok(Parsed::Ports(specs))
    }) {
        rule.ports.ports = ports;
    }
    if let Some(Parsed::Nets(nets)) = take("from", &|value| sources(value, sets).map(Parsed::Nets))
    {
        rule.sources.from = Some(nets);
    }
    if let Some(Parsed::Nets(nets)) =
        take("not_from", &|value| sources(value, sets).map(Parsed::Nets))
    {
        rule.sources.not_from = nets;
    }
    if let Some(Parsed::Ifaces(ifaces)) = take("iface", &|value| {
        let names = list(value)?
            .into_iter()
            .map(values::parse_iface)
            .collect::<Result<_, _>>()?;
        Ok(Parsed::Ifaces(names))
    }) {
        rule.ifaces = ifaces;
    }
    if let Some(Parsed::Flag(flag)) = take("syn_only", &|value| boolean(value).map(Parsed::Flag)) {
        rule.syn_only = flag;
    }
    if let Some(Parsed::Flag(flag)) = take("audit", &|value| boolean(value).map(Parsed::Flag)) {
        rule.audit = flag;
    }
    if let Some(Parsed::Range(range)) = take("source_ports", &|value| {
        values::parse_source_ports(value).map(Parsed::Range)
    }) {
        rule.source_ports = Some(range);
    }
    if let Some(Parsed::TcpFlags(flags)) = take("tcp_flags", &|value| {
        values::parse_tcp_flags(value).map(Parsed::TcpFlags)
    }) {
        rule.tcp_flags = Some(flags);
    }
    if let Some(Parsed::Fragments(fragments)) = take("fragments", &|value| {
        values::parse_fragments(value).map(Parsed::Fragments)
    }) {
        rule.fragments = Some(fragments);
    }
    let burst = take("burst", &|value| count("burst", value).map(Parsed::Count));
    let total_burst = take("total_burst", &|value| {
        count("total_burst", value).map(Parsed::Count)
    });
    if !problems.is_empty() {
        return;
    }
    let as_count = |parsed: Option<Parsed>| match parsed {
        Some(Parsed::Count(count)) => Some(count),
        _ => None,
    };
    let get = |field: &str| labels.get(field).map(|(_, value)| value.trim());
    let fields = ActionFields {
        action: get("action"),
        rate: get("rate"),
        burst: as_count(burst),
        per: get("per"),
        total_rate: get("total_rate"),
        total_burst: as_count(total_burst),
    };
    match values::build_action(&fields) {
        Ok(action) => rule.action = action,
        Err(found) => return problems.extend(found),
    }
    problems.extend(values::check_rule(rule));
}

/// A parsed label value (one type, so that one helper parses them all).
enum Parsed {
    Ports(Vec<PortSpec>),
    Nets(Vec<IpNet>),
    Ifaces(Vec<String>),
    Flag(bool),
    Range((u16, u16)),
    TcpFlags((u8, u8)),
    Fragments(FragmentAction),
    Count(u64),
}

/// Parses the label of `field` if present, recording a problem under the
/// field when it is invalid.
fn parse_field(
    labels: &RuleLabels<'_>,
    field: &'static str,
    problems: &mut Vec<FieldProblem>,
    parse: &dyn Fn(&str) -> Result<Parsed, String>,
) -> Option<Parsed> {
    let (_, value) = labels.get(field)?;
    parse(value.trim())
        .map_err(|message| problems.push(FieldProblem { field, message }))
        .ok()
}

/// Comma-separated items, blanks skipped; an empty list is an error.
fn list(value: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return Err("empty value; remove the label or give a comma-separated list".to_owned());
    }
    Ok(items)
}

/// A comma-separated source list, `@set` references expanded.
fn sources(value: &str, sets: &SetTable) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for item in list(value)? {
        nets.extend(expand_source(item, sets)?);
    }
    Ok(nets)
}

/// `true`/`false`, `yes`/`no`, `1`/`0`, any case.
fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

/// A non-negative integer (a bucket size).
fn count(field: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{field} {value:?} is not a whole number of packets"))
}
