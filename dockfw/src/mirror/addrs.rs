//! Sets of addresses of one family as sorted, disjoint, inclusive intervals:
//! exact union, intersection and complement, so that `-s`, `-m iprange`,
//! `-m set` (with `nomatch` entries) and their negations combine without
//! approximation, and convert back to the CIDR lists a
//! [`SourceMatch`](crate::model::SourceMatch) holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::Family;

/// A set of addresses of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddrSet {
    family: Family,
    /// Sorted, disjoint, non-adjacent inclusive intervals.
    ranges: Vec<(u128, u128)>,
}

/// The highest address of a family, as a number.
const fn max_of(family: Family) -> u128 {
    match family {
        Family::V4 => u32::MAX as u128,
        Family::V6 => u128::MAX,
    }
}

/// An address as a number (IPv4 in the low 32 bits).
pub fn to_num(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(addr) => u128::from(u32::from(*addr)),
        IpAddr::V6(addr) => u128::from(*addr),
    }
}

fn from_num(family: Family, value: u128) -> IpAddr {
    match family {
        // Only called with values up to `max_of(V4)`.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

impl AddrSet {
    /// No address.
    pub fn empty(family: Family) -> Self {
        Self {
            family,
            ranges: Vec::new(),
        }
    }

    /// Every address of the family.
    pub fn full(family: Family) -> Self {
        Self {
            family,
            ranges: vec![(0, max_of(family))],
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The addresses of `net` (empty when `net` is of the other family).
    pub fn from_net(family: Family, net: &IpNet) -> Self {
        if Family::of(&net.addr()) != family {
            return Self::empty(family);
        }
        let net = net.trunc();
        Self::from_range(family, &net.network(), &net.broadcast())
    }

    /// The addresses `low..=high` (empty when backwards or of the other
    /// family).
    pub fn from_range(family: Family, low: &IpAddr, high: &IpAddr) -> Self {
        if Family::of(low) != family || Family::of(high) != family {
            return Self::empty(family);
        }
        let (low, high) = (to_num(low), to_num(high));
        if low > high {
            return Self::empty(family);
        }
        Self {
            family,
            ranges: vec![(low, high)],
        }
    }

    /// The union of several networks.
    pub fn from_nets<'a>(family: Family, nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        nets.into_iter().fold(Self::empty(family), |set, net| {
            set.union(&Self::from_net(family, net))
        })
    }

    /// Whether no address is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether every address of the family is in the set.
    pub fn is_full(&self) -> bool {
        self.ranges == [(0, max_of(self.family))]
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        if Family::of(addr) != self.family {
            return false;
        }
        let value = to_num(addr);
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&value))
    }

    /// Whether every address of `other` is in `self`.
    pub fn is_superset(&self, other: &Self) -> bool {
        other.difference(self).is_empty()
    }

    fn normalized(family: Family, mut ranges: Vec<(u128, u128)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (low, high) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        Self {
            family,
            ranges: merged,
        }
    }

    /// Addresses in either set.
    pub fn union(&self, other: &Self) -> Self {
        let mut ranges = self.ranges.clone();
        ranges.extend_from_slice(&other.ranges);
        Self::normalized(self.family, ranges)
    }

    /// Addresses in both sets.
    pub fn intersect(&self, other: &Self) -> Self {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a_low, a_high) = self.ranges[i];
            let (b_low, b_high) = other.ranges[j];
            let low = a_low.max(b_low);
            let high = a_high.min(b_high);
            if low <= high {
                out.push((low, high));
            }
            if a_high < b_high {
                i += 1;
            } else {
                j += 1;
            }
        }
        Self {
            family: self.family,
            ranges: out,
        }
    }

    /// Addresses of the family not in the set.
    pub fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = 0u128;
        let mut open = true;
        for (low, high) in &self.ranges {
            if *low > next {
                out.push((next, low - 1));
            }
            if *high == max_of(self.family) {
                open = false;
                break;
            }
            next = high + 1;
        }
        if open {
            out.push((next, max_of(self.family)));
        }
        Self {
            family: self.family,
            ranges: out,
        }
    }

    /// Addresses in `self` and not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        self.intersect(&other.complement())
    }

    /// The set as the fewest CIDR prefixes that cover it exactly.
    pub fn to_cidrs(&self) -> Vec<IpNet> {
        let bits: u32 = match self.family {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        let mut out = Vec::new();
        for (low, high) in &self.ranges {
            let mut start = *low;
            loop {
                // The largest aligned block starting at `start` within `high`.
                let mut size = if start == 0 {
                    bits
                } else {
                    start.trailing_zeros().min(bits)
                };
                while size > 0 && block_last(start, size) > *high {
                    size -= 1;
                }
                out.push(net_of(self.family, start, (bits - size) as u8));
                let last = block_last(start, size);
                if last >= *high {
                    break;
                }
                start = last + 1;
            }
        }
        out
    }

    /// The first address of the set, if any (test and report helper).
    pub fn first(&self) -> Option<IpAddr> {
        self.ranges
            .first()
            .map(|(low, _)| from_num(self.family, *low))
    }
}

/// The last address of the block of `2^size` addresses at `start` (aligned).
fn block_last(start: u128, size: u32) -> u128 {
    if size >= 128 {
        u128::MAX
    } else {
        start + ((1u128 << size) - 1)
    }
}

fn net_of(family: Family, start: u128, prefix: u8) -> IpNet {
    match from_num(family, start) {
        IpAddr::V4(addr) => IpNet::V4(Ipv4Net::new_assert(addr, prefix)),
        IpAddr::V6(addr) => IpNet::V6(Ipv6Net::new_assert(addr, prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(family: Family, nets: &[&str]) -> AddrSet {
        let nets: Vec<IpNet> = nets.iter().map(|net| net.parse().unwrap()).collect();
        AddrSet::from_nets(family, &nets)
    }

    fn texts(nets: Vec<IpNet>) -> Vec<String> {
        nets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn cidrs_round_trip_and_merge() {
        let s = set(Family::V4, &["10.0.0.0/25", "10.0.0.128/25", "10.0.1.5/32"]);
        assert_eq!(texts(s.to_cidrs()), ["10.0.0.0/24", "10.0.1.5/32"]);
        assert_eq!(texts(AddrSet::full(Family::V4).to_cidrs()), ["0.0.0.0/0"]);
        assert_eq!(texts(AddrSet::full(Family::V6).to_cidrs()), ["::/0"]);
        assert!(AddrSet::empty(Family::V4).to_cidrs().is_empty());
    }

    #[test]
    fn ranges_become_prefixes() {
        let s = AddrSet::from_range(
            Family::V4,
            &"10.0.0.3".parse().unwrap(),
            &"10.0.0.10".parse().unwrap(),
        );
        assert_eq!(
            texts(s.to_cidrs()),
            ["10.0.0.3/32", "10.0.0.4/30", "10.0.0.8/31", "10.0.0.10/32"]
        );
    }

    #[test]
    fn complement_and_difference() {
        let s = set(Family::V4, &["0.0.0.0/1"]);
        assert_eq!(texts(s.complement().to_cidrs()), ["128.0.0.0/1"]);
        let a = set(Family::V6, &["2001:db8::/32"]);
        let b = set(Family::V6, &["2001:db8:1::/48"]);
        let d = a.difference(&b);
        assert!(d.contains(&"2001:db8::1".parse().unwrap()));
        assert!(!d.contains(&"2001:db8:1::1".parse().unwrap()));
        assert_eq!(d.union(&b), a);
        assert!(a.is_superset(&b));
        assert!(!b.is_superset(&a));
        assert!(AddrSet::full(Family::V6).complement().is_empty());
        assert!(AddrSet::empty(Family::V4).complement().is_full());
    }

    #[test]
    fn other_family_is_empty() {
        assert!(set(Family::V4, &["2001:db8::/32"]).is_empty());
        assert!(!set(Family::V4, &["10.0.0.0/8"]).contains(&"::1".parse().unwrap()));
    }

    #[test]
    fn randomised_against_membership() {
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..300 {
            let mut pick = || {
                let count = next() % 4;
                let nets: Vec<IpNet> = (0..count)
                    .map(|_| {
                        let addr = Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0xffff));
                        IpNet::new(IpAddr::V4(addr), (16 + next() % 17) as u8)
                            .unwrap()
                            .trunc()
                    })
                    .collect();
                (AddrSet::from_nets(Family::V4, &nets), nets)
            };
            let (a, a_nets) = pick();
            let (b, b_nets) = pick();
            let inside = |nets: &[IpNet], addr: &IpAddr| nets.iter().any(|n| n.contains(addr));
            for _ in 0..40 {
                let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0xffff)));
                let (in_a, in_b) = (inside(&a_nets, &addr), inside(&b_nets, &addr));
                assert_eq!(a.union(&b).contains(&addr), in_a || in_b);
                assert_eq!(a.intersect(&b).contains(&addr), in_a && in_b);
                assert_eq!(a.complement().contains(&addr), !in_a);
                let back = AddrSet::from_nets(Family::V4, &a.to_cidrs());
                assert_eq!(back, a);
            }
        }
    }
}
