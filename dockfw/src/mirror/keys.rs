//! The keys mirrored rules can be placed on, and what DNAT makes of each.
//!
//! The data plane matches a wildcard binding (`-p 8080:80`) for any
//! destination address, but Docker DNATs only traffic to the host's own
//! addresses (`-m addrtype --dst-type LOCAL`); traffic to another address on
//! that port is forwarded untouched (or not at all), so a DOCKER-USER rule on
//! the container port says nothing about it. Mirrored rules are therefore
//! placed on one key per *local* address of a wildcard binding (those that
//! traffic from the attached interfaces can reach: not `::1`, not the IPv6
//! link-local addresses of other interfaces), added next to the wildcard
//! entry (the data plane looks a specific address up first); traffic to
//! other addresses keeps hitting the wildcard entry, which carries no
//! mirrored rule.
//!
//! A key is *trusted* only when walking nat PREROUTING for its traffic
//! (from every attached interface, any source) reaches Docker's DNAT rule
//! for it with no rule before that could apply to part of the traffic, when
//! that DNAT agrees with what the Docker API says, and when no rule in raw
//! or mangle PREROUTING could divert the traffic (NOTRACK, CT, TPROXY,
//! marks, ...). Untrusted keys get no mirrored rule at all.

use std::{collections::BTreeSet, net::IpAddr};

use super::{
    addrs::AddrSet,
    class::{Class, Dnf, Space},
    ipset::IpSets,
    matcher::{Ctx, View, conditions},
    rule::{ClauseKind, Dir, ParsedRule, Target, parse_rule},
    save::{Ruleset, SavedRule},
};
use crate::model::{BindingKey, Family, Proto, PublishedPort};

/// One key and both views of its traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyView {
    /// The data-plane key (always a specific address).
    pub key: BindingKey,
    /// The published port it belongs to (with `key` as its key).
    pub port: PublishedPort,
    /// Whether it is a local address of a wildcard binding (an entry that
    /// must be added to the compiled ports).
    pub expanded: bool,
    /// Destination before DNAT.
    pub orig_dst: IpAddr,
    /// Published port.
    pub orig_port: u16,
    /// Destination after DNAT (the container).
    pub post_dst: IpAddr,
    /// Port after DNAT.
    pub post_port: u16,
}

/// A key that gets no mirrored rule, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UntrustedKey {
    /// `ADDR:PORT/PROTO`.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// Chains are followed this deep, in every table.
pub const MAX_DEPTH: usize = 8;

/// Targets that never let a packet bypass DNAT or reach another place.
const BENIGN_TARGETS: &[&str] = &["LOG", "NFLOG", "ULOG", "TRACE"];

/// What the walk of nat PREROUTING found.
enum NatFlow {
    /// The chain ended (a user chain returns to its caller).
    Continue,
    /// Docker's DNAT applies to all the key's traffic.
    Dnat(String),
    /// Something else may happen.
    Stop(String),
}

/// The rules of the raw, mangle and nat chains, parsed once.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    chains: std::collections::BTreeMap<(String, String), Vec<(&'a SavedRule, ParsedRule)>>,
}

impl<'a> Parsed<'a> {
    /// Parses the chains of the tables a key's traffic meets before
    /// DOCKER-USER.
    pub fn new(ruleset: &'a Ruleset) -> Self {
        let mut chains = std::collections::BTreeMap::new();
        for table in ["raw", "mangle", "nat"] {
            let Some(found) = ruleset.tables.get(table) else {
                continue;
            };
            for (name, chain) in &found.chains {
                let rules = chain
                    .rules
                    .iter()
                    .map(|saved| (saved, parse_rule(saved.args.as_deref())))
                    .collect();
                chains.insert((table.to_owned(), name.clone()), rules);
            }
        }
        Self { chains }
    }

    fn rules(&self, table: &str, chain: &str) -> &[(&'a SavedRule, ParsedRule)] {
        self.chains
            .get(&(table.to_owned(), chain.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

/// Whether a rule's plain `--dport` (or `-p`) already rules the key out, so
/// that Docker's many per-port DNAT rules cost no evaluation.
fn surely_misses(rule: &ParsedRule, port: u16, proto: Proto) -> bool {
    rule.clauses.iter().any(|clause| {
        !clause.negated
            && match &clause.kind {
                ClauseKind::Port {
                    dir: Dir::Dst,
                    low,
                    high,
                    ..
                } => !(*low..=*high).contains(&port),
                ClauseKind::Proto(super::rule::ProtoMatch::Tcp) => proto != Proto::Tcp,
                ClauseKind::Proto(super::rule::ProtoMatch::Udp) => proto != Proto::Udp,
                _ => false,
            }
    })
}

/// Builds the trusted keys of one family.
pub struct KeyBuilder<'a> {
    /// Family.
    pub family: Family,
    /// Ruleset of the family.
    pub ruleset: &'a Ruleset,
    /// Attached interfaces and their `-i` names.
    pub in_names: &'a [(String, BTreeSet<String>)],
    /// ipsets.
    pub sets: &'a IpSets,
    /// Host addresses of the family.
    pub local: &'a AddrSet,
    /// Whether conntrack helpers are assigned.
    pub helpers: bool,
    /// The parsed raw, mangle and nat chains.
    pub parsed: &'a Parsed<'a>,
}

impl KeyBuilder<'_> {
    /// The candidate keys of `ports` (local addresses of wildcard bindings,
    /// specific bindings), split into trusted views and untrusted keys.
    pub fn build(
        &self,
        ports: &[PublishedPort],
        local_addrs: &[IpAddr],
    ) -> (Vec<KeyView>, Vec<UntrustedKey>) {
        let mut trusted = Vec::new();
        let mut untrusted = Vec::new();
        let mut seen = BTreeSet::new();
        for port in ports.iter().filter(|port| port.key.family == self.family) {
            let addrs: Vec<(IpAddr, bool)> = match port.key.addr {
                Some(addr) => vec![(addr, false)],
                None => local_addrs
                    .iter()
                    .filter(|addr| Family::of(addr) == self.family)
                    .map(|addr| (*addr, true))
                    .collect(),
            };
            for (addr, expanded) in addrs {
                let key = BindingKey {
                    addr: Some(addr),
                    ..port.key
                };
                if !seen.insert(key) {
                    continue;
                }
                match self.view(port, key, expanded) {
                    Ok(view) => trusted.push(view),
                    Err(reason) => untrusted.push(UntrustedKey {
                        key: key.label(),
                        reason,
                    }),
                }
            }
        }
        (trusted, untrusted)
    }

    fn view(
        &self,
        port: &PublishedPort,
        key: BindingKey,
        expanded: bool,
    ) -> Result<KeyView, String> {
        let addr = key.addr.ok_or("no address")?;
        let mut port = port.clone();
        port.key = key;
        // Placeholder post view until the DNAT is known.
        let mut view = KeyView {
            key,
            port,
            expanded,
            orig_dst: addr,
            orig_port: key.port,
            post_dst: addr,
            post_port: key.port,
        };
        let single = [view.clone()];
        let space = Space {
            family: self.family,
            keys: BTreeSet::from([0]),
            tcp_keys: if key.proto == Proto::Tcp {
                BTreeSet::from([0])
            } else {
                BTreeSet::new()
            },
            ifaces: self.in_names.iter().map(|(name, _)| name.clone()).collect(),
        };
        let ctx = Ctx {
            space: &space,
            keys: &single,
            view: View::Pre,
            in_names: self.in_names,
            sets: self.sets,
            local: self.local,
            helpers: self.helpers,
            dynamic_sets: false,
        };
        for table in ["raw", "mangle"] {
            self.check_benign(&ctx, table, "PREROUTING", 0)?;
        }
        let to = match self.nat(&ctx, "PREROUTING", 0) {
            NatFlow::Dnat(to) => to,
            NatFlow::Continue => return Err("no DNAT rule in nat PREROUTING applies".into()),
            NatFlow::Stop(reason) => return Err(reason),
        };
        let (post_dst, post_port) = parse_to(&to, key.port)
            .ok_or_else(|| format!("DNAT to {to:?} is not one address and port"))?;
        if post_port != view.port.container_port
            || view
                .port
                .container_addr
                .is_some_and(|addr| addr != post_dst)
        {
            return Err(format!(
                "nat DOCKER sends it to {to} but the Docker API says {}:{} (changing?)",
                view.port
                    .container_addr
                    .map_or("?".to_string(), |addr| addr.to_string()),
                view.port.container_port
            ));
        }
        view.post_dst = post_dst;
        view.post_port = post_port;
        Ok(view)
    }

    /// Every rule in `chain` that may apply must have a harmless target.
    fn check_benign(
        &self,
        ctx: &Ctx<'_>,
        table: &str,
        chain: &str,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{table} {chain}: chains nested deeper than {MAX_DEPTH}"
            ));
        }
        for (saved, rule) in self.parsed.rules(table, chain) {
            if ctx
                .keys
                .first()
                .is_some_and(|key| surely_misses(rule, key.orig_port, key.key.proto))
            {
                continue;
            }
            let (approx, _) = conditions(ctx, &rule.clauses);
            if approx.over.is_empty() {
                continue;
            }
            match &rule.target {
                Target::None | Target::Accept | Target::Drop | Target::Return | Target::Reject => {}
                Target::Named(name) if BENIGN_TARGETS.contains(&name.as_str()) => {}
                Target::Named(name) if self.ruleset.chain(table, name).is_some() => {
                    self.check_benign(ctx, table, name, depth + 1)?;
                }
                _ => {
                    return Err(format!(
                        "{table} rule `{}` may divert the traffic before Docker's DNAT",
                        saved.text
                    ));
                }
            }
        }
        Ok(())
    }

    fn nat(&self, ctx: &Ctx<'_>, chain: &str, depth: usize) -> NatFlow {
        if depth > MAX_DEPTH {
            return NatFlow::Stop(format!("nat chains nested deeper than {MAX_DEPTH}"));
        }
        for (saved, rule) in self.parsed.rules("nat", chain) {
            if ctx
                .keys
                .first()
                .is_some_and(|key| surely_misses(rule, key.orig_port, key.key.proto))
            {
                continue;
            }
            let (approx, _) = conditions(ctx, &rule.clauses);
            if approx.over.is_empty() {
                continue;
            }
            let whole = approx.under.has_top(ctx.space);
            let partial = || {
                NatFlow::Stop(format!(
                    "nat rule `{}` applies to part of the traffic only",
                    saved.text
                ))
            };
            match &rule.target {
                Target::None => {}
                Target::Named(name) if BENIGN_TARGETS.contains(&name.as_str()) => {}
                Target::Named(name) if self.ruleset.chain("nat", name).is_some() => {
                    if !whole {
                        return partial();
                    }
                    match self.nat(ctx, name, depth + 1) {
                        NatFlow::Continue => {}
                        other => return other,
                    }
                }
                Target::Return if whole && depth > 0 => return NatFlow::Continue,
                Target::Dnat(Some(to)) if whole => return NatFlow::Dnat(to.clone()),
                _ if !whole => return partial(),
                _ => {
                    return NatFlow::Stop(format!(
                        "nat rule `{}` decides before Docker's DNAT",
                        saved.text
                    ));
                }
            }
        }
        if depth == 0 {
            NatFlow::Stop("no DNAT rule in nat PREROUTING applies".into())
        } else {
            NatFlow::Continue
        }
    }
}

/// `10.0.0.2:80`, `[fd00::2]:80` or a bare address (same port).
fn parse_to(text: &str, port: u16) -> Option<(IpAddr, u16)> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some((addr, port));
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some((socket.ip(), socket.port()));
    }
    None
}

/// The space over trusted keys.
pub fn space(family: Family, keys: &[KeyView], ifaces: &[(String, BTreeSet<String>)]) -> Space {
    Space {
        family,
        keys: (0..keys.len()).collect(),
        tcp_keys: keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.key.proto == Proto::Tcp)
            .map(|(index, _)| index)
            .collect(),
        ifaces: ifaces.iter().map(|(name, _)| name.clone()).collect(),
    }
}

/// The keys of a union of classes, as binding keys.
pub fn keys_of(dnf: &Dnf, keys: &[KeyView]) -> BTreeSet<BindingKey> {
    dnf.0
        .iter()
        .flat_map(|class: &Class| class.keys.iter())
        .filter_map(|index| keys.get(*index).map(|view| view.key))
        .collect()
}
