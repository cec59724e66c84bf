//! Packet classes the data plane can tell apart, and the two-sided
//! approximation every iptables condition is translated into.
//!
//! A [`Class`] is a conjunction over the fields an XDP rule can test: which
//! published-port keys (each with its pre- and post-DNAT view), source
//! addresses, a source-port range, one TCP-flags test and the ingress
//! interfaces. A [`Dnf`] is a union of classes. An [`Approx`] brackets the
//! packets a netfilter condition matches: `under` only holds packets it
//! surely matches, `over` holds every packet it may match. Drops use
//! `under` and passes use `over`, so every approximation errs towards
//! handing the packet to netfilter.

use std::collections::BTreeSet;

use super::addrs::AddrSet;
use crate::model::Family;

/// Past this many classes a union is cut down: `under` loses classes (it
/// only shrinks, which stays sound) and `over` becomes one hull class.
pub const MAX_CLASSES: usize = 16;

/// What the classes range over: the published-port keys (by index), and
/// the interfaces dockfw is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    /// The family of every key.
    pub family: Family,
    /// All key indexes.
    pub keys: BTreeSet<usize>,
    /// The TCP ones.
    pub tcp_keys: BTreeSet<usize>,
    /// Attached interface names.
    pub ifaces: BTreeSet<String>,
}

/// One conjunction of field conditions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Class {
    /// Keys (published port and destination) the packet is sent to.
    pub keys: BTreeSet<usize>,
    /// Source addresses.
    pub src: AddrSet,
    /// Source ports, inclusive.
    pub sport: (u16, u16),
    /// TCP flags test `(mask, value)`; only TCP packets satisfy one.
    pub flags: Option<(u8, u8)>,
    /// Ingress interfaces (`None`: any).
    pub ifaces: Option<BTreeSet<String>>,
}

impl Class {
    /// Every packet of the space.
    pub fn top(space: &Space) -> Self {
        Self {
            keys: space.keys.clone(),
            src: AddrSet::full(space.family),
            sport: (0, u16::MAX),
            flags: None,
            ifaces: None,
        }
    }

    /// Whether no packet is in the class.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            || self.src.is_empty()
            || self.sport.0 > self.sport.1
            || self.ifaces.as_ref().is_some_and(BTreeSet::is_empty)
    }

    /// Whether it is every packet of the space.
    pub fn is_top(&self, space: &Space) -> bool {
        self.keys == space.keys
            && self.src.is_full()
            && self.sport == (0, u16::MAX)
            && self.flags.is_none()
            && self.ifaces.as_ref().is_none_or(|set| *set == space.ifaces)
    }

    /// Packets in both classes, or `None`.
    pub fn intersect(&self, other: &Self, space: &Space) -> Option<Self> {
        let flags = match (self.flags, other.flags) {
            (None, flags) | (flags, None) => flags,
            (Some((m1, v1)), Some((m2, v2))) => {
                if (v1 ^ v2) & m1 & m2 != 0 {
                    return None;
                }
                Some((m1 | m2, (v1 & m1) | (v2 & m2)))
            }
        };
        let mut keys: BTreeSet<usize> = self.keys.intersection(&other.keys).copied().collect();
        if flags.is_some() {
            keys.retain(|key| space.tcp_keys.contains(key));
        }
        let ifaces = match (&self.ifaces, &other.ifaces) {
            (None, ifaces) | (ifaces, None) => ifaces.clone(),
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        };
        let class = Self {
            keys,
            src: self.src.intersect(&other.src),
            sport: (
                self.sport.0.max(other.sport.0),
                self.sport.1.min(other.sport.1),
            ),
            flags,
            ifaces,
        };
        (!class.is_empty()).then_some(class)
    }

    /// Packets of the space not in the class, as a union.
    pub fn complement(&self, space: &Space) -> Dnf {
        let top = Self::top(space);
        let mut out = Vec::new();
        let other_keys: BTreeSet<usize> = space.keys.difference(&self.keys).copied().collect();
        out.push(Self {
            keys: other_keys,
            ..top.clone()
        });
        out.push(Self {
            keys: self.keys.clone(),
            src: self.src.complement(),
            ..top.clone()
        });
        if self.sport.0 > 0 {
            out.push(Self {
                keys: self.keys.clone(),
                sport: (0, self.sport.0 - 1),
                ..top.clone()
            });
        }
        if self.sport.1 < u16::MAX {
            out.push(Self {
                keys: self.keys.clone(),
                sport: (self.sport.1 + 1, u16::MAX),
                ..top.clone()
            });
        }
        if let Some((mask, value)) = self.flags {
            // Not TCP, or one examined flag differs.
            out.push(Self {
                keys: self.keys.difference(&space.tcp_keys).copied().collect(),
                ..top.clone()
            });
            for bit in (0..8).map(|bit| 1u8 << bit).filter(|bit| mask & bit != 0) {
                out.push(Self {
                    keys: self.keys.clone(),
                    flags: Some((bit, !value & bit)),
                    ..top.clone()
                });
            }
        }
        if let Some(ifaces) = &self.ifaces {
            out.push(Self {
                keys: self.keys.clone(),
                ifaces: Some(space.ifaces.difference(ifaces).cloned().collect()),
                ..top
            });
        }
        Dnf::of(out)
    }
}

/// A union of classes (empty: no packet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dnf(pub Vec<Class>);

impl Dnf {
    /// No packet.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Every packet.
    pub fn all(space: &Space) -> Self {
        Self::of(vec![Class::top(space)])
    }

    /// The union of `classes`, without empty or repeated ones.
    pub fn of(classes: Vec<Class>) -> Self {
        let mut out: Vec<Class> = Vec::with_capacity(classes.len());
        for class in classes {
            if !class.is_empty() && !out.contains(&class) {
                out.push(class);
            }
        }
        Self(out)
    }

    /// Whether no packet is in it.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some class is the whole space.
    pub fn has_top(&self, space: &Space) -> bool {
        self.0.iter().any(|class| class.is_top(space))
    }

    /// Union.
    pub fn or(&self, other: &Self) -> Self {
        let mut classes = self.0.clone();
        classes.extend(other.0.iter().cloned());
        Self::of(classes)
    }

    /// Intersection, unbounded (callers cut it with [`Self::cut_under`] or
    /// [`Self::cut_over`]).
    pub fn and(&self, other: &Self, space: &Space) -> Self {
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                if let Some(class) = a.intersect(b, space) {
                    out.push(class);
                }
            }
        }
        Self::of(out)
    }

    /// Whether the two unions share a packet.
    pub fn overlaps(&self, other: &Self, space: &Space) -> bool {
        self.0
            .iter()
            .any(|a| other.0.iter().any(|b| a.intersect(b, space).is_some()))
    }

    /// At most [`MAX_CLASSES`], by leaving classes out (a subset).
    pub fn cut_under(mut self) -> Self {
        self.0.truncate(MAX_CLASSES);
        self
    }

    /// At most [`MAX_CLASSES`], by merging into one hull (a superset).
    pub fn cut_over(self, space: &Space) -> Self {
        if self.0.len() <= MAX_CLASSES {
            return self;
        }
        Self::of(vec![self.hull(space)])
    }

    /// The smallest single class containing every class.
    pub fn hull(&self, space: &Space) -> Class {
        let mut hull = Class {
            keys: BTreeSet::new(),
            src: AddrSet::empty(space.family),
            sport: (u16::MAX, 0),
            flags: None,
            ifaces: Some(BTreeSet::new()),
        };
        let mut flags: Option<Option<(u8, u8)>> = None;
        for class in &self.0 {
            hull.keys.extend(class.keys.iter().copied());
            hull.src = hull.src.union(&class.src);
            hull.sport = (
                hull.sport.0.min(class.sport.0),
                hull.sport.1.max(class.sport.1),
            );
            hull.ifaces = match (&hull.ifaces, &class.ifaces) {
                (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
                _ => None,
            };
            flags = Some(match (flags, class.flags) {
                (None, this) => this,
                (Some(Some((m1, v1))), Some((m2, v2))) => {
                    let mask = m1 & m2 & !(v1 ^ v2);
                    (mask != 0).then_some((mask, v1 & mask))
                }
                _ => None,
            });
        }
        hull.flags = flags.flatten();
        hull
    }

    /// Packets of the space in none of the classes.
    pub fn complement(&self, space: &Space, over: bool) -> Self {
        self.0.iter().fold(Self::all(space), |acc, class| {
            let next = acc.and(&class.complement(space), space);
            if over {
                next.cut_over(space)
            } else {
                next.cut_under()
            }
        })
    }
}

/// What a condition (or a whole rule) matches, bracketed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approx {
    /// Packets it surely matches.
    pub under: Dnf,
    /// Packets it may match.
    pub over: Dnf,
}

impl Approx {
    /// Exactly these packets.
    pub fn exact(dnf: Dnf) -> Self {
        Self {
            under: dnf.clone(),
            over: dnf,
        }
    }

    /// Every packet, exactly.
    pub fn always(space: &Space) -> Self {
        Self::exact(Dnf::all(space))
    }

    /// No packet, exactly.
    pub fn never() -> Self {
        Self::exact(Dnf::none())
    }

    /// Not known for any packet.
    pub fn unknown(space: &Space) -> Self {
        Self {
            under: Dnf::none(),
            over: Dnf::all(space),
        }
    }

    /// Whether both sides agree (they are built the same way, so equal
    /// unions mean an exact translation).
    pub fn is_exact(&self) -> bool {
        self.under == self.over
    }

    /// Both conditions.
    pub fn and(&self, other: &Self, space: &Space) -> Self {
        Self {
            under: self.under.and(&other.under, space).cut_under(),
            over: self.over.and(&other.over, space).cut_over(space),
        }
    }

    /// Either condition.
    pub fn or(&self, other: &Self, space: &Space) -> Self {
        Self {
            under: self.under.or(&other.under).cut_under(),
            over: self.over.or(&other.over).cut_over(space),
        }
    }

    /// The negation: what surely does not match is what surely matches the
    /// negation, and the other way round.
    pub fn not(&self, space: &Space) -> Self {
        Self {
            under: self.over.complement(space, false),
            over: self.under.complement(space, true),
        }
    }
}
