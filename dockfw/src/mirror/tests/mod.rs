//! Tests of the translation: rule shapes one by one (every untranslatable
//! class with its reason), and the captured/handwritten `iptables-save`
//! fixtures of both Docker layouts.

mod chains;
mod fixtures;
mod shapes;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::{MirrorInput, Translation, report::Outcome, translate};
use crate::model::{Action, BindingKey, ContainerRef, Family, Proto, PublishedPort, Rule};

/// A published port: `host` `None` = wildcard.
pub fn port(
    family: Family,
    proto: Proto,
    host: Option<&str>,
    host_port: u16,
    container: &str,
    addr: &str,
    container_port: u16,
) -> PublishedPort {
    PublishedPort {
        key: BindingKey {
            family,
            proto,
            addr: host.map(|host| host.parse().unwrap()),
            port: host_port,
        },
        container: ContainerRef {
            id: format!("{container}-0123456789abcdef"),
            name: container.into(),
            labels: BTreeMap::new(),
        },
        container_addr: Some(addr.parse().unwrap()),
        container_port,
    }
}

/// Attached interfaces without stacked devices.
pub fn plain_ifaces(names: &[&str]) -> Vec<(String, BTreeSet<String>)> {
    names
        .iter()
        .map(|name| ((*name).to_owned(), BTreeSet::from([(*name).to_owned()])))
        .collect()
}

/// A test input.
pub struct Setup {
    pub v4: Option<String>,
    pub v6: Option<String>,
    pub ipsets: String,
    pub ports: Vec<PublishedPort>,
    pub local: Vec<IpAddr>,
    pub ifaces: Vec<(String, BTreeSet<String>)>,
    pub rate_limits: bool,
    pub nftables: bool,
}

impl Setup {
    pub fn run(&self) -> Translation {
        translate(&MirrorInput {
            v4_save: self.v4.as_deref(),
            v6_save: self.v6.as_deref(),
            ipsets: &self.ipsets,
            ports: &self.ports,
            local_addrs: &self.local,
            ifaces: &self.ifaces,
            rate_limits: self.rate_limits,
            nftables_backend: self.nftables,
            errors: &[],
        })
    }
}

/// A concrete packet as the data plane sees it.
#[derive(Clone, Debug)]
pub struct Packet {
    pub key: BindingKey,
    pub src: IpAddr,
    pub sport: u16,
    /// TCP flags; `None` for UDP.
    pub flags: Option<u8>,
    pub iface: String,
}

/// What the mirrored rules alone do with a packet: the first matching
/// rule's action and name.
pub fn xdp(rules: &[Rule], packet: &Packet) -> Option<(Action, String)> {
    rules
        .iter()
        .find(|rule| {
            rule.ports
                .bindings
                .as_ref()
                .is_none_or(|keys| keys.contains(&packet.key))
                && rule.sources.matches(&packet.src)
                && rule
                    .source_ports
                    .is_none_or(|(low, high)| (low..=high).contains(&packet.sport))
                && match (rule.tcp_flags, packet.flags) {
                    (None, _) => !rule.syn_only || packet.flags.is_some_and(|f| f & 0x12 == 0x02),
                    (Some((mask, value)), Some(flags)) => flags & mask == value & mask,
                    (Some(_), None) => false,
                }
                && (rule.ifaces.is_empty() || rule.ifaces.contains(&packet.iface))
        })
        .map(|rule| (rule.action, rule.name.clone()))
}

/// The outcome reported for the rule at `path`.
pub fn outcome<'a>(translation: &'a Translation, path: &str) -> &'a Outcome {
    translation
        .report
        .families
        .iter()
        .flat_map(|family| &family.rules)
        .find(|rule| rule.path == path)
        .map(|rule| &rule.outcome)
        .unwrap_or_else(|| panic!("no report for {path}: {:#?}", translation.report))
}

/// The reasons of a netfilter-only, partial or shadow outcome, joined.
pub fn reasons(outcome: &Outcome) -> String {
    match outcome {
        Outcome::NetfilterOnly { reasons }
        | Outcome::Partial { reasons, .. }
        | Outcome::Shadow { reasons, .. } => reasons.join("; "),
        Outcome::NoEffect { reason } => reason.clone(),
        other => panic!("expected reasons, got {other:?}"),
    }
}
