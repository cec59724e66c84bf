//! Mirroring DOCKER-USER into the fast path, soundly.
//!
//! Operators keep their policy in iptables' DOCKER-USER chain. This module
//! reads it (`iptables-save`, `ip6tables-save`), the sets it names
//! (`ipset save`), Docker's DNAT rules (nat `DOCKER`) and the published
//! ports (Docker API), and translates what it can into model [`Rule`]s on
//! *pre-DNAT* keys: DOCKER-USER sees container address and port, XDP sees
//! host address and published port, so `--dport 80` of a container
//! published as 8080->80 becomes a rule on 8080, while
//! `--ctorigdst`/`--ctorigdstport` name the published side directly.
//!
//! # The contract: soundness
//!
//! The fast path drops a packet only when DOCKER-USER would drop it.
//! Everything else is handed to netfilter, where the chain keeps running
//! unchanged as the fallback. The translation is built for that:
//!
//! - every condition becomes an [`Approx`](class::Approx): the packets it
//!   surely matches and those it may match ([`matcher`]);
//! - rules that may let a packet through (ACCEPT, RETURN out of
//!   DOCKER-USER, targets not understood, anything in FORWARD before the
//!   jump to DOCKER-USER) become XDP passes over everything they may match;
//!   drops use only what they surely match ([`walk`] has the argument);
//! - mirrored rules are placed only on keys whose traffic is known to reach
//!   DOCKER-USER through Docker's DNAT, one per local address of a
//!   wildcard binding ([`keys`] explains why a wildcard is not enough).
//!
//! What is assumed and not checked, and so documented here: a TCP SYN with
//! no other of FIN/RST/ACK set is conntrack NEW (it is not when it reuses
//! the 4-tuple of a live established connection, which conntrack then
//! ignores; and it may be RELATED where a conntrack helper is assigned,
//! which is checked for in the raw table); a packet to a published port
//! belongs to a connection *into* the container (not to a reply of one the
//! container opened from that very port, nor to a conntrack entry created
//! before Docker's DNAT rule existed); packets conntrack marks INVALID
//! (bad checksum, impossible flags, a FIN or RST outside any connection)
//! are never DNATed, never reach DOCKER-USER and go to the host's own
//! stack, and the fast path may drop those when a rule's conditions cover
//! them. Conntrack helpers are looked for only in the raw table (`-j CT`);
//! kernels before 6.0 could also assign them automatically
//! (`net.netfilter.nf_conntrack_helper=1`, off by default since 4.7). The
//! rules are read through whatever backend `iptables-save` uses; a host
//! with rules in both iptables-legacy and iptables-nft is not detected.
//! Changes are picked up within two seconds; during that window the
//! previous translation is in force.
//!
//! Rate limits (`-m limit`, `-m hashlimit`) are translated only with
//! `--mirror-rate-limits`; see [`limits`] for why that is opt-in.
//!
//! The translation ([`translate`]) is a pure function; [`source`] runs the
//! commands and [`daemon`] keeps the daemon's copy current.

pub mod addrs;
pub mod class;
pub mod command;
pub mod daemon;
pub mod emit;
pub mod ipset;
pub mod keys;
pub mod limits;
pub mod matcher;
pub mod options;
pub mod outcomes;
pub mod report;
pub mod rule;
pub mod save;
pub mod source;
pub mod walk;

#[cfg(test)]
mod tests;

use std::{collections::BTreeSet, net::IpAddr};

use self::{
    addrs::AddrSet,
    ipset::IpSets,
    keys::{KeyBuilder, KeyView},
    matcher::{Ctx, View},
    report::{ChainState, FamilyReport, MirrorReport},
    rule::{Target, parse_rule},
    walk::Walker,
};
use crate::model::{BindingKey, Family, PublishedPort, Rule};

/// Everything the translation reads.
#[derive(Clone, Copy, Debug)]
pub struct MirrorInput<'a> {
    /// `iptables-save` output (`None`: could not be read).
    pub v4_save: Option<&'a str>,
    /// `ip6tables-save` output.
    pub v6_save: Option<&'a str>,
    /// `ipset save` output.
    pub ipsets: &'a str,
    /// Published ports from the Docker API.
    pub ports: &'a [PublishedPort],
    /// The host's addresses (both families).
    pub local_addrs: &'a [IpAddr],
    /// Attached interfaces, each with the names netfilter may see its
    /// traffic under (itself, VLAN devices on it, its bridge or bond).
    pub ifaces: &'a [(String, BTreeSet<String>)],
    /// Translate the supported rate-limit patterns.
    pub rate_limits: bool,
    /// Docker's nftables firewall backend was detected.
    pub nftables_backend: bool,
    /// Problems the adapters met.
    pub errors: &'a [String],
}

/// The result: rules to append to the policy, the extra port entries they
/// need (local addresses of wildcard bindings), and the explanation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Mirrored rules in evaluation order (evaluated after file and label
    /// rules).
    pub rules: Vec<Rule>,
    /// Keys the rules are placed on, with their published port (the
    /// entries to add for expanded wildcard bindings are those with
    /// `expanded`).
    pub keys: Vec<KeyView>,
    /// What became of each DOCKER-USER rule.
    pub report: MirrorReport,
}

impl Translation {
    /// `ports` plus the specific-address entries the mirrored rules use.
    pub fn ports_with(&self, ports: &[PublishedPort]) -> Vec<PublishedPort> {
        let used: BTreeSet<BindingKey> = self
            .rules
            .iter()
            .flat_map(|rule| rule.ports.bindings.iter().flatten().copied())
            .collect();
        let mut out = ports.to_vec();
        let existing: BTreeSet<BindingKey> = ports.iter().map(|port| port.key).collect();
        for view in &self.keys {
            if view.expanded && used.contains(&view.key) && !existing.contains(&view.key) {
                out.push(view.port.clone());
            }
        }
        out
    }

    /// Enforces the per-port rule budget: `reserved(port)` rules of other
    /// sources already apply to each port.
    pub fn fit_budget(&mut self, reserved: impl Fn(&PublishedPort) -> usize) {
        let keys = self.keys.clone();
        let budget = |key: &BindingKey| {
            let taken = keys
                .iter()
                .find(|view| view.key == *key)
                .map_or(dockfw_common::MAX_RULES_PER_PORT, |view| {
                    reserved(&view.port)
                });
            dockfw_common::MAX_RULES_PER_PORT.saturating_sub(taken)
        };
        let cut = emit::fit_budget(&mut self.rules, budget);
        self.report.budget.extend(cut);
    }
}

/// Translates DOCKER-USER of both families. Pure.
pub fn translate(input: &MirrorInput<'_>) -> Translation {
    let sets = IpSets::parse(input.ipsets);
    let mut translation = Translation {
        report: MirrorReport {
            nftables_backend: input.nftables_backend,
            errors: input.errors.to_vec(),
            ..MirrorReport::default()
        },
        ..Translation::default()
    };
    for (family, save) in [(Family::V4, input.v4_save), (Family::V6, input.v6_save)] {
        let (report, rules, keys) = translate_family(input, &sets, family, save);
        translation.report.families.push(report);
        translation.rules.extend(rules);
        translation.keys.extend(keys);
    }
    translation
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn translate_family(
    input: &MirrorInput<'_>,
    sets: &IpSets,
    family: Family,
    save: Option<&str>,
) -> (FamilyReport, Vec<Rule>, Vec<KeyView>) {
    let mut report = FamilyReport {
        family: family_name(family).into(),
        state: ChainState::Unreadable,
        message: None,
        keys: Vec::new(),
        untrusted: Vec::new(),
        rules: Vec::new(),
    };
    let Some(text) = save else {
        report.message = Some("the rules could not be read; nothing is mirrored".into());
        return (report, Vec::new(), Vec::new());
    };
    let ruleset = match save::parse(text) {
        Ok(ruleset) => ruleset,
        Err(error) => {
            report.message = Some(format!("{error}; nothing is mirrored"));
            return (report, Vec::new(), Vec::new());
        }
    };
    let local_addrs: Vec<IpAddr> = input
        .local_addrs
        .iter()
        .filter(|addr| Family::of(addr) == family)
        .copied()
        .collect();
    let local = local_addrs
        .iter()
        .fold(AddrSet::empty(family), |set, addr| {
            set.union(&AddrSet::from_range(family, addr, addr))
        });
    // A conntrack helper makes some SYNs RELATED instead of NEW.
    let helpers = ruleset.tables.get("raw").is_some_and(|raw| {
        raw.chains
            .values()
            .flat_map(|chain| &chain.rules)
            .any(|saved| parse_rule(saved.args.as_deref()).target == Target::Named("CT".into()))
    });
    let parsed = keys::Parsed::new(&ruleset);
    let builder = KeyBuilder {
        family,
        ruleset: &ruleset,
        in_names: input.ifaces,
        sets,
        local: &local,
        helpers,
        parsed: &parsed,
    };
    let (views, untrusted) = builder.build(input.ports, &local_addrs);
    report.untrusted = untrusted;
    report.keys = views
        .iter()
        .map(|view| {
            format!(
                "{} -> {} ({})",
                view.key.label(),
                std::net::SocketAddr::new(view.post_dst, view.post_port),
                view.port.container.name
            )
        })
        .collect();
    let space = keys::space(family, &views, input.ifaces);
    let ctx = Ctx {
        space: &space,
        keys: &views,
        view: View::Post,
        in_names: input.ifaces,
        sets,
        local: &local,
        helpers,
        dynamic_sets: false,
    };
    let mut walker = Walker::new(
        ctx,
        &ruleset,
        &views,
        input.rate_limits,
        family_name(family),
    );
    report.state = walker.walk();
    report.message = match report.state {
        ChainState::Missing if input.nftables_backend => Some(
            "Docker uses its nftables firewall backend: there is no DOCKER-USER chain; \
             only the policy file is enforced"
                .into(),
        ),
        ChainState::Missing => Some(
            "no DOCKER-USER chain (Docker's iptables integration is off for this family, or \
             an engine before 27 without one for IPv6); nothing is mirrored"
                .into(),
        ),
        ChainState::NotReached => {
            Some("DOCKER-USER exists but FORWARD does not jump to it; nothing is mirrored".into())
        }
        _ => None,
    };
    let rules = emit::rules(&walker.emissions, &views, input.ifaces.len());
    report.rules = walker.reports;
    (report, rules, views)
}
