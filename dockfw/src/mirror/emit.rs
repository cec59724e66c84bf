//! From the walk's XDP actions to model [`Rule`]s: one rule per class,
//! passes that no later drop needs left out, and the per-port rule budget
//! enforced by cutting a suffix (a prefix of the list stays sound).

use std::collections::{BTreeMap, BTreeSet};

use super::{addrs::AddrSet, class::Class, keys::KeyView, walk::Emission};
use crate::model::{Action, BindingKey, Rule, SourceMatch};

/// The data-plane rules of one class.
fn rule_of(
    emission: &Emission,
    index: usize,
    class: &Class,
    keys: &[KeyView],
    attached: usize,
) -> Rule {
    let name = if index == 0 {
        emission.name.clone()
    } else {
        format!("{}/{}", emission.name, index + 1)
    };
    let mut rule = Rule::new(name, emission.origin.clone(), emission.action);
    rule.ports.bindings = Some(
        class
            .keys
            .iter()
            .filter_map(|index| keys.get(*index).map(|view| view.key))
            .collect(),
    );
    rule.sources = source_match(&class.src);
    rule.source_ports = (class.sport != (0, u16::MAX)).then_some(class.sport);
    rule.tcp_flags = class.flags;
    rule.ifaces = match &class.ifaces {
        // Every attached interface is no condition at all.
        Some(ifaces) if ifaces.len() < attached => ifaces.iter().cloned().collect(),
        _ => Vec::new(),
    };
    rule
}

/// The smaller of "in these prefixes" and "not in those".
pub fn source_match(set: &AddrSet) -> SourceMatch {
    if set.is_full() {
        return SourceMatch::default();
    }
    let inside = set.to_cidrs();
    let outside = set.complement().to_cidrs();
    if outside.len() < inside.len() {
        SourceMatch {
            from: None,
            not_from: outside,
        }
    } else {
        SourceMatch {
            from: Some(inside),
            not_from: Vec::new(),
        }
    }
}

/// Rules for the emissions of one family, in order, without passes that
/// precede no drop or rate limit on their keys.
pub fn rules(emissions: &[Emission], keys: &[KeyView], attached: usize) -> Vec<Rule> {
    let mut rules: Vec<Rule> = emissions
        .iter()
        .flat_map(|emission| {
            emission
                .dnf
                .0
                .iter()
                .enumerate()
                .map(move |(index, class)| rule_of(emission, index, class, keys, attached))
        })
        .collect();
    let mut needed: BTreeSet<BindingKey> = BTreeSet::new();
    for rule in rules.iter_mut().rev() {
        let bindings = rule.ports.bindings.get_or_insert_with(Vec::new);
        if rule.action == Action::Pass {
            bindings.retain(|key| needed.contains(key));
        } else {
            needed.extend(bindings.iter().copied());
        }
    }
    rules.retain(|rule| rule.ports.bindings.as_ref().is_some_and(|b| !b.is_empty()));
    rules
}

/// Keeps at most `budget(key)` mirrored rules per key: from the first rule
/// over the budget on, the key is taken out of every rule. Returns what was
/// cut, for the report.
pub fn fit_budget(rules: &mut Vec<Rule>, budget: impl Fn(&BindingKey) -> usize) -> Vec<String> {
    let mut used: BTreeMap<BindingKey, usize> = BTreeMap::new();
    let mut cut: BTreeMap<BindingKey, String> = BTreeMap::new();
    for rule in rules.iter_mut() {
        let Some(bindings) = rule.ports.bindings.as_mut() else {
            continue;
        };
        bindings.retain(|key| {
            if cut.contains_key(key) {
                return false;
            }
            let count = used.entry(*key).or_default();
            if *count >= budget(key) {
                cut.insert(*key, rule.name.clone());
                return false;
            }
            *count += 1;
            true
        });
    }
    rules.retain(|rule| rule.ports.bindings.as_ref().is_some_and(|b| !b.is_empty()));
    cut.into_iter()
        .map(|(key, from)| {
            format!(
                "{}: the port's 32-rule budget is used up; mirrored rules from {from} on stay \
                 netfilter-only there",
                key.label()
            )
        })
        .collect()
}
