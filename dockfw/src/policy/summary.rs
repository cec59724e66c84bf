//! What `dockfw check --policy FILE` prints: the rules as understood, in
//! evaluation order, one line each.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::model::{Action, FragmentAction, Per, Policy, Rule};

/// Prefixes listed in a description before the rest is only counted.
const LISTED_PREFIXES: usize = 3;

/// TCP flag names in bit order (bit 0 = FIN).
const FLAG_NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

/// A multi-line summary of a policy: a header, then one numbered line per
/// rule in evaluation order (`N. name (origin): description`); ends with a
/// newline.
#[must_use]
pub fn check_summary(policy: &Policy) -> String {
    let count = policy.rules.len();
    let plural = if count == 1 { "" } else { "s" };
    let mut out = format!(
        "{count} rule{plural}, in evaluation order (first match wins; no match = hand to netfilter); \
         non-first fragments: {}",
        fragment_name(policy.fragments)
    );
    if policy.rules.iter().any(|rule| rule.fragments.is_some()) {
        out.push_str(" unless a rule says otherwise");
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let _ = write!(
            out,
            "\n  {}. {} ({}): {}",
            index + 1,
            rule.name,
            rule.origin,
            describe_rule(rule)
        );
    }
    out.push('\n');
    out
}

/// One line describing a rule: the ports it selects, its conditions and
/// its action, e.g. `3306/tcp, not from 203.0.113.0/24 -> drop`.
#[must_use]
pub fn describe_rule(rule: &Rule) -> String {
    let selector = &rule.ports;
    let mut out = if selector.ports.is_empty() {
        "every published port".to_owned()
    } else {
        join(selector.ports.iter())
    };
    if let Some(container) = &selector.container {
        let _ = write!(out, " of container {container}");
    }
    match &selector.label {
        Some((key, Some(value))) => {
            let _ = write!(out, " of containers labelled {key}={value}");
        }
        Some((key, None)) => {
            let _ = write!(out, " of containers with label {key}");
        }
        None => {}
    }
    if let Some(bindings) = &selector.bindings {
        let _ = write!(
            out,
            " on {}",
            join(bindings.iter().map(crate::model::BindingKey::label))
        );
    }
    match &rule.sources.from {
        Some(from) if from.is_empty() => {
            out.push_str(", from no source (empty set: never matches)");
        }
        Some(from) => {
            let _ = write!(out, ", from {}", prefixes(from));
        }
        None => {}
    }
    if !rule.sources.not_from.is_empty() {
        let _ = write!(out, ", not from {}", prefixes(&rule.sources.not_from));
    }
    if !rule.ifaces.is_empty() {
        let _ = write!(out, ", arriving on {}", rule.ifaces.join(", "));
    }
    if rule.syn_only {
        out.push_str(", TCP SYN only");
    }
    if let Some((mask, value)) = rule.tcp_flags {
        let _ = write!(
            out,
            ", TCP flags {}/{}",
            flag_names(mask),
            flag_names(value)
        );
    }
    match rule.source_ports {
        Some((low, high)) if low == high => {
            let _ = write!(out, ", source port {low}");
        }
        Some((low, high)) => {
            let _ = write!(out, ", source ports {low}-{high}");
        }
        None => {}
    }
    if let Some(fragments) = rule.fragments {
        let _ = write!(out, ", fragments: {}", fragment_name(fragments));
    }
    let _ = write!(out, " -> {}", describe_action(&rule.action));
    if rule.audit {
        out.push_str(" [audit: count would-be drops, drop nothing]");
    }
    out
}

/// `drop`, `pass to netfilter`, `rate-limit 200/s burst 400 per source, ...`.
fn describe_action(action: &Action) -> String {
    match action {
        Action::Pass => "pass (to netfilter, stop evaluating)".to_owned(),
        Action::Drop => "drop".to_owned(),
        Action::RateLimit(limit) => {
            let per = match limit.per {
                Per::Source => "per source",
                Per::Port => "per port",
            };
            let mut out = format!("rate-limit {} burst {} {per}", limit.rate, limit.burst);
            if let Some((rate, burst)) = limit.total {
                let _ = write!(out, ", all sources together {rate} burst {burst}");
            }
            out
        }
    }
}

/// A short list of prefixes, or a count with the first few.
fn prefixes(nets: &[IpNet]) -> String {
    if nets.len() <= LISTED_PREFIXES {
        return join(nets.iter());
    }
    format!(
        "{} prefixes ({}, ...)",
        nets.len(),
        join(nets.iter().take(LISTED_PREFIXES))
    )
}

/// `SYN,ACK`, `ALL` or `NONE`.
fn flag_names(bits: u8) -> String {
    match bits {
        0 => "NONE".to_owned(),
        u8::MAX => "ALL".to_owned(),
        _ => FLAG_NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| bits & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// `pass` or `drop`.
const fn fragment_name(action: FragmentAction) -> &'static str {
    match action {
        FragmentAction::Pass => "pass",
        FragmentAction::Drop => "drop",
    }
}

/// Items joined with `, `.
fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
