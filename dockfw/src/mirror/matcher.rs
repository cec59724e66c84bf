//! One iptables condition as an [`Approx`] over the packets the data plane
//! classifies to published ports, with the reason whenever it is not exact.
//!
//! Conditions on the destination (`-d`, `--dport`, `-m set ... dst`) look at
//! the post-DNAT view of each key (container address and port) in the
//! filter table, and at the pre-DNAT view (host address and published
//! port) in the nat and raw tables; `--ctorigdst`/`--ctorigdstport` always
//! look at the pre-DNAT view.

use std::{collections::BTreeSet, net::IpAddr};

use super::{
    addrs::AddrSet,
    class::{Approx, Class, Dnf, Space},
    ipset::IpSets,
    keys::KeyView,
    rule::{Clause, ClauseKind, Dir, ProtoMatch, SYN_FLAGS},
};
use crate::model::Proto;

/// Which destination a table's rules see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Host address and published port (raw, mangle, nat PREROUTING).
    Pre,
    /// Container address and port (filter FORWARD and DOCKER-USER).
    Post,
}

/// Entries of an ipset that expire sooner than this are not dropped in XDP:
/// they may be gone before the next read of the sets.
pub const SET_EXPIRY_MARGIN_SECONDS: u64 = 5;

/// Everything a condition is evaluated against.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The space of keys and interfaces.
    pub space: &'a Space,
    /// The keys, indexed as in the space.
    pub keys: &'a [KeyView],
    /// Which destination the table sees.
    pub view: View,
    /// Per attached interface: the names netfilter may give its traffic as
    /// `-i` (itself, VLAN devices on it, the bridge or bond it is in).
    pub in_names: &'a [(String, BTreeSet<String>)],
    /// The ipsets.
    pub sets: &'a IpSets,
    /// Addresses of the host (`addrtype LOCAL`).
    pub local: &'a AddrSet,
    /// Whether conntrack helpers are assigned (then a SYN may be RELATED).
    pub helpers: bool,
    /// Whether a `-j SET` target earlier in the walk may change sets.
    pub dynamic_sets: bool,
}

impl Ctx<'_> {
    fn keys_where(&self, keep: impl Fn(&KeyView) -> bool) -> Approx {
        let keys: BTreeSet<usize> = self
            .space
            .keys
            .iter()
            .copied()
            .filter(|index| self.keys.get(*index).is_some_and(&keep))
            .collect();
        Approx::exact(Dnf::of(vec![Class {
            keys,
            ..Class::top(self.space)
        }]))
    }

    fn dst(&self, key: &KeyView) -> IpAddr {
        match self.view {
            View::Pre => key.orig_dst,
            View::Post => key.post_dst,
        }
    }

    fn dport(&self, key: &KeyView) -> u16 {
        match self.view {
            View::Pre => key.orig_port,
            View::Post => key.post_port,
        }
    }

    fn class(&self, edit: impl FnOnce(&mut Class)) -> Approx {
        let mut class = Class::top(self.space);
        edit(&mut class);
        Approx::exact(Dnf::of(vec![class]))
    }

    fn sources(&self, set: AddrSet) -> Approx {
        self.class(|class| class.src = set)
    }

    fn proto(&self, proto: &ProtoMatch) -> Approx {
        match proto {
            ProtoMatch::Tcp => self.keys_where(|key| key.key.proto == Proto::Tcp),
            ProtoMatch::Udp => self.keys_where(|key| key.key.proto == Proto::Udp),
            ProtoMatch::All => Approx::always(self.space),
            ProtoMatch::Other(_) => Approx::never(),
        }
    }

    fn sports(&self, ranges: &[(u16, u16)]) -> Approx {
        Approx::exact(Dnf::of(
            ranges
                .iter()
                .map(|range| Class {
                    sport: *range,
                    ..Class::top(self.space)
                })
                .collect(),
        ))
    }

    /// A clean SYN: the packet that opens a connection (conntrack NEW).
    fn clean_syn(&self) -> Dnf {
        Dnf::of(vec![Class {
            flags: Some(SYN_FLAGS),
            keys: self.space.tcp_keys.clone(),
            ..Class::top(self.space)
        }])
    }

    fn in_iface(&self, pattern: &str) -> Approx {
        let matches = |name: &String| match pattern.strip_suffix('+') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        let mut all = BTreeSet::new();
        let mut some = BTreeSet::new();
        for (iface, names) in self.in_names {
            if names.iter().all(matches) {
                all.insert(iface.clone());
            }
            if names.iter().any(matches) {
                some.insert(iface.clone());
            }
        }
        let with = |ifaces| {
            Dnf::of(vec![Class {
                ifaces: Some(ifaces),
                ..Class::top(self.space)
            }])
        };
        Approx {
            under: with(all),
            over: with(some),
        }
    }

    fn set(&self, name: &str, dirs: &[Dir]) -> Result<Approx, String> {
        if self.dynamic_sets {
            return Err(format!(
                "set {name} may be changed by a -j SET rule before this one"
            ));
        }
        let [dir] = dirs else {
            return Err(format!("set {name} is matched on several dimensions"));
        };
        let set = self.sets.get(name).map_err(|problem| problem.to_string())?;
        if set.family != self.space.family {
            return Err(format!("set {name} is of the other address family"));
        }
        let lasting = set.members(Some(SET_EXPIRY_MARGIN_SECONDS));
        let all = set.members(None);
        Ok(match dir {
            Dir::Src => Approx {
                under: self.sources(lasting).under,
                over: self.sources(all).over,
            },
            Dir::Dst => Approx {
                under: self
                    .keys_where(|key| lasting.contains(&self.dst(key)))
                    .under,
                over: self.keys_where(|key| all.contains(&self.dst(key))).over,
            },
        })
    }

    fn ct_state(&self, states: &[String]) -> Approx {
        let clean_syn = self.clean_syn();
        let not_syn = clean_syn.complement(self.space, false);
        let one = |state: &str| match state {
            "NEW" if !self.helpers => Approx {
                under: clean_syn.clone(),
                over: Dnf::all(self.space),
            },
            "ESTABLISHED" => Approx {
                under: Dnf::none(),
                over: not_syn.clone(),
            },
            "RELATED" if !self.helpers => Approx {
                under: Dnf::none(),
                over: not_syn.clone(),
            },
            "DNAT" if self.view == View::Post => Approx::always(self.space),
            _ => Approx::unknown(self.space),
        };
        states.iter().fold(Approx::never(), |acc, state| {
            acc.or(&one(state), self.space)
        })
    }
}

/// What a clause matches, and why it is not exact when it is not.
pub fn clause(ctx: &Ctx<'_>, clause: &Clause) -> (Approx, Option<String>) {
    let space = ctx.space;
    let family = space.family;
    let (approx, why): (Approx, Option<String>) = match &clause.kind {
        ClauseKind::Source(net) | ClauseKind::CtOrigAddr(Dir::Src, net) => {
            (ctx.sources(AddrSet::from_net(family, net)), None)
        }
        ClauseKind::Dest(net) => (ctx.keys_where(|key| net.contains(&ctx.dst(key))), None),
        ClauseKind::CtOrigAddr(Dir::Dst, net) => {
            (ctx.keys_where(|key| net.contains(&key.orig_dst)), None)
        }
        ClauseKind::InIface(pattern) => {
            let approx = ctx.in_iface(pattern);
            let why = (!approx.is_exact()).then(|| {
                format!(
                    "-i {pattern}: traffic on an attached interface may reach netfilter \
                     under another name (VLAN, bridge or bond device)"
                )
            });
            (approx, why)
        }
        ClauseKind::OutIface(name) => (
            Approx::unknown(space),
            Some(format!(
                "-o {name}: the output interface is decided by routing after DNAT"
            )),
        ),
        ClauseKind::Proto(proto) | ClauseKind::CtProto(proto) => (ctx.proto(proto), None),
        // Conntrack reassembles datagrams before DOCKER-USER sees them.
        ClauseKind::Fragment => (Approx::never(), None),
        ClauseKind::Port {
            dir: Dir::Dst,
            proto,
            low,
            high,
        } => (
            ctx.proto(proto).and(
                &ctx.keys_where(|key| (*low..=*high).contains(&ctx.dport(key))),
                space,
            ),
            None,
        ),
        ClauseKind::Port {
            dir: Dir::Src,
            proto,
            low,
            high,
        } => (ctx.proto(proto).and(&ctx.sports(&[(*low, *high)]), space), None),
        ClauseKind::CtOrigPort(Dir::Src, low, high) => (ctx.sports(&[(*low, *high)]), None),
        ClauseKind::CtOrigPort(Dir::Dst, low, high) => (
            ctx.keys_where(|key| (*low..=*high).contains(&key.orig_port)),
            None,
        ),
        ClauseKind::TcpFlags { mask, value } => (
            ctx.class(|class| {
                class.flags = Some((*mask, *value & *mask));
                class.keys = space.tcp_keys.clone();
            }),
            None,
        ),
        ClauseKind::MultiPort { dir, ranges } => {
            let in_list = |port: u16| ranges.iter().any(|(low, high)| (*low..=*high).contains(&port));
            let dst = ctx.keys_where(|key| in_list(ctx.dport(key)));
            let src = ctx.sports(ranges);
            let approx = match dir {
                Some(Dir::Dst) => dst,
                Some(Dir::Src) => src,
                None => dst.or(&src, space),
            };
            (approx, None)
        }
        ClauseKind::AddrRange {
            dir: Dir::Src,
            low,
            high,
        } => (ctx.sources(AddrSet::from_range(family, low, high)), None),
        ClauseKind::AddrRange {
            dir: Dir::Dst,
            low,
            high,
        } => {
            let range = AddrSet::from_range(family, low, high);
            (ctx.keys_where(|key| range.contains(&ctx.dst(key))), None)
        }
        ClauseKind::Set { name, dirs } => match ctx.set(name, dirs) {
            Ok(approx) => {
                let why = (!approx.is_exact()).then(|| {
                    format!(
                        "set {name}: entries expiring within \
                         {SET_EXPIRY_MARGIN_SECONDS}s stay netfilter-only"
                    )
                });
                (approx, why)
            }
            Err(why) => (Approx::unknown(space), Some(why)),
        },
        ClauseKind::CtState(states) => {
            let approx = ctx.ct_state(states);
            let why = (!approx.is_exact()).then(|| {
                format!(
                    "--ctstate {}: the conntrack state is known from the packet only for \
                     a TCP SYN (NEW)",
                    states.join(",")
                )
            });
            (approx, why)
        }
        ClauseKind::CtDirOriginal(true) => (Approx::always(space), None),
        ClauseKind::CtDirOriginal(false) => (
            Approx::unknown(space),
            Some("--ctdir REPLY: never mirrored".into()),
        ),
        ClauseKind::DstAddrType(types) if types.iter().all(|kind| kind == "LOCAL") => {
            (ctx.keys_where(|key| ctx.local.contains(&ctx.dst(key))), None)
        }
        ClauseKind::DstAddrType(types) => (
            Approx::unknown(space),
            Some(format!("-m addrtype --dst-type {}", types.join(","))),
        ),
        ClauseKind::Limit { .. } | ClauseKind::HashLimit(_) => (
            Approx::unknown(space),
            Some("a rate limit (mirrored only with --mirror-rate-limits, in the pattern it supports)".into()),
        ),
        ClauseKind::Always => (Approx::always(space), None),
        ClauseKind::Unknown(what) => (
            Approx::unknown(space),
            Some(format!("{what}: not translatable")),
        ),
    };
    if clause.negated {
        (approx.not(space), why.map(|why| format!("! {why}")))
    } else {
        (approx, why)
    }
}

/// All conditions of a rule (they must all hold), and the reasons of the
/// inexact ones.
pub fn conditions(ctx: &Ctx<'_>, clauses: &[Clause]) -> (Approx, Vec<String>) {
    let mut notes = Vec::new();
    let approx = clauses.iter().fold(Approx::always(ctx.space), |acc, item| {
        let (approx, why) = clause(ctx, item);
        notes.extend(why);
        acc.and(&approx, ctx.space)
    });
    (approx, notes)
}
