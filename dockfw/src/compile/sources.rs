//! Source conditions of a port's rules as one longest-prefix-match table.
//!
//! Every prefix named by any rule of the port is stored; the value of a
//! prefix P is the bitmap of rules whose source condition holds for the
//! addresses whose longest stored match is P ("leaf pushing"). That value is
//! well defined: such an address is inside a listed prefix Q exactly when Q
//! contains P (Q is stored too, and cannot be longer than P), so membership
//! is the same for all of them. Addresses that match no stored prefix get the
//! default bitmap. One longest-prefix lookup then answers every rule at
//! once: in the data plane a walk down the port's array trie
//! ([`super::trie`]), or for ports beyond the trie nodes the IPv4 level
//! table ([`expand_v4`]) or the IPv6 LPM trie.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::model::{Family, SourceMatch};

/// The compiled source dimension of one port, for one family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceTable {
    /// Rules that match a source covered by no stored prefix.
    pub default_bits: u32,
    /// Stored prefixes and their rule bitmaps (prefixes whose bitmap equals
    /// what the next shorter stored prefix already gives are left out).
    pub prefixes: Vec<(IpNet, u32)>,
}

/// A prefix as (network bits as u128 aligned to the left, length, family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    bits: u128,
    len: u8,
}

impl Key {
    fn of(net: &IpNet) -> Self {
        match net {
            IpNet::V4(net) => Self {
                bits: u128::from(u32::from(net.network())) << 96,
                len: net.prefix_len(),
            },
            IpNet::V6(net) => Self {
                bits: u128::from(net.network()),
                len: net.prefix_len(),
            },
        }
    }

    fn contains(&self, other: &Self) -> bool {
        if other.len < self.len {
            return false;
        }
        let mask = if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.len))
        };
        other.bits & mask == self.bits
    }
}

/// Builds the table for `family` from the rules' conditions; `rules[i]` is
/// bit `i`.
pub fn build(family: Family, rules: &[&SourceMatch]) -> SourceTable {
    let in_family = |net: &&IpNet| Family::of(&net.addr()) == family;
    let all_rules = if rules.len() >= 32 {
        u32::MAX
    } else {
        (1u32 << rules.len()) - 1
    };
    // Rules without a positive set match unless excluded.
    let mut from_free = 0u32;
    // Per stored prefix: rules listing it in `from` / in `not_from`.
    let mut own: BTreeMap<Key, (IpNet, u32, u32)> = BTreeMap::new();
    for (bit, source) in rules.iter().enumerate() {
        let mask = 1u32 << bit;
        match &source.from {
            None => from_free |= mask,
            Some(nets) => {
                for net in nets.iter().filter(in_family) {
                    own.entry(Key::of(net)).or_insert((net.trunc(), 0, 0)).1 |= mask;
                }
            }
        }
        for net in source.not_from.iter().filter(in_family) {
            own.entry(Key::of(net)).or_insert((net.trunc(), 0, 0)).2 |= mask;
        }
    }
    let default_bits = from_free & all_rules;

    // Sorted by (address, length): every prefix comes after the prefixes
    // that contain it, so a stack holds the chain of enclosing prefixes.
    let mut stack: Vec<(Key, u32, u32, u32)> = Vec::new();
    let mut prefixes = Vec::new();
    for (key, (net, own_from, own_not)) in own {
        while stack.last().is_some_and(|(top, ..)| !top.contains(&key)) {
            stack.pop();
        }
        let (inherited_from, inherited_not, parent_bits) = stack
            .last()
            .map_or((0, 0, default_bits), |(_, from, not, bits)| {
                (*from, *not, *bits)
            });
        let in_from = inherited_from | own_from;
        let in_not = inherited_not | own_not;
        let bits = (from_free | in_from) & !in_not & all_rules;
        if bits != parent_bits {
            prefixes.push((net, bits));
        }
        stack.push((key, in_from, in_not, bits));
    }
    SourceTable {
        default_bits,
        prefixes,
    }
}

/// One entry of the IPv4 level table: `addr/level` -> bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LevelEntry {
    /// 8, 16, 24 or 32.
    pub level: u8,
    /// The address masked to `level` bits.
    pub addr: std::net::Ipv4Addr,
    /// Rules whose condition holds there.
    pub bits: u32,
}

/// The expansion levels, longest first (the data plane's lookup order).
pub const LEVELS: [u8; 4] = [32, 24, 16, 8];

/// A prefix's level: its length rounded up to a multiple of 8 (/0../8 -> 8).
fn level_of(len: u8) -> u8 {
    len.div_ceil(8).max(1) * 8
}

/// Expands the IPv4 prefixes of `table` to the /8, /16, /24 and /32 levels
/// (controlled prefix expansion): each prefix becomes the level-length
/// prefixes it covers at its own level, each carrying the bitmap of the
/// longest stored prefix (of at most that length) that covers it. Looking up
/// /32, /24, /16, /8 in that order and taking the first hit then gives what
/// the longest match over the original prefixes gives. Returns the entries
/// and the [`dockfw_common::source_level`] mask of levels in use.
pub fn expand_v4(table: &SourceTable) -> (Vec<LevelEntry>, u32) {
    let prefixes: Vec<(ipnet::Ipv4Net, u32)> = table
        .prefixes
        .iter()
        .filter_map(|(net, bits)| match net {
            IpNet::V4(net) => Some((*net, *bits)),
            IpNet::V6(_) => None,
        })
        .collect();
    // At each level, prefixes in ascending length: a longer prefix nested in
    // a shorter one of the same level overwrites the entries it covers. (An
    // entry only exists because a prefix of its own level covers it, and
    // that one is longer than any prefix of a lower level covering it.)
    let mut ordered = prefixes.clone();
    ordered.sort_by_key(|(net, _)| {
        (
            level_of(net.prefix_len()),
            net.prefix_len(),
            u32::from(net.network()),
        )
    });
    let mut entries: BTreeMap<(u8, u32), u32> = BTreeMap::new();
    for (net, bits) in &ordered {
        let level = level_of(net.prefix_len());
        let count = 1u64 << (level - net.prefix_len());
        let base = u64::from(u32::from(net.network()));
        let step = 1u64 << (32 - level);
        for index in 0..count {
            entries.insert((level, (base + index * step) as u32), *bits);
        }
    }
    let mut mask = 0;
    let list = entries
        .into_iter()
        .map(|((level, addr), bits)| {
            mask |= 1u32 << (level / 8 - 1);
            LevelEntry {
                level,
                addr: addr.into(),
                bits,
            }
        })
        .collect();
    (list, mask)
}

/// The bitmap the data plane's IPv4 level lookup gives for `addr`.
pub fn lookup_levels(entries: &[LevelEntry], default: u32, addr: std::net::Ipv4Addr) -> u32 {
    for level in LEVELS {
        let masked = u32::from(addr) & (u32::MAX << (32 - u32::from(level)));
        if let Some(entry) = entries
            .iter()
            .find(|entry| entry.level == level && u32::from(entry.addr) == masked)
        {
            return entry.bits;
        }
    }
    default
}

/// The bitmap the data plane would compute for `addr` from `table`
/// (longest stored prefix, else the default): the reference the tests and
/// `dockfw trace` explanations use.
pub fn lookup(table: &SourceTable, addr: &std::net::IpAddr) -> u32 {
    table
        .prefixes
        .iter()
        .filter(|(net, _)| net.contains(addr))
        .max_by_key(|(net, _)| net.prefix_len())
        .map_or(table.default_bits, |(_, bits)| *bits)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn matcher(from: Option<&[&str]>, not_from: &[&str]) -> SourceMatch {
        SourceMatch {
            from: from.map(nets),
            not_from: nets(not_from),
        }
    }

    /// The table must agree with evaluating every rule's condition directly.
    fn check(rules: &[SourceMatch], probes: &[&str]) {
        let refs: Vec<&SourceMatch> = rules.iter().collect();
        for family in [Family::V4, Family::V6] {
            let table = build(family, &refs);
            for probe in probes {
                let addr: IpAddr = probe.parse().unwrap();
                if Family::of(&addr) != family {
                    continue;
                }
                let expected = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| rule.matches(&addr))
                    .fold(0u32, |bits, (bit, _)| bits | 1 << bit);
                assert_eq!(
                    lookup(&table, &addr),
                    expected,
                    "source {probe}, table {table:?}"
                );
            }
        }
    }

    #[test]
    fn positive_negative_and_combined_sets() {
        let rules = vec![
            matcher(Some(&["10.0.0.0/8"]), &["10.1.0.0/16"]),
            matcher(None, &["10.0.0.0/8", "2001:db8::/32"]),
            matcher(Some(&["10.1.2.0/24", "192.0.2.1/32"]), &[]),
            matcher(None, &[]),
            matcher(Some(&[]), &[]),
            matcher(Some(&["0.0.0.0/0"]), &["10.1.2.3/32"]),
            matcher(Some(&["2001:db8:1::/48"]), &["2001:db8:1:2::/64"]),
        ];
        check(
            &rules,
            &[
                "10.0.0.1",
                "10.1.0.1",
                "10.1.2.3",
                "10.1.2.4",
                "11.0.0.1",
                "192.0.2.1",
                "192.0.2.2",
                "0.0.0.0",
                "255.255.255.255",
                "2001:db8::1",
                "2001:db8:1::1",
                "2001:db8:1:2::1",
                "2001:db9::1",
                "::",
            ],
        );
    }

    #[test]
    fn level_expansion_answers_like_the_longest_match() {
        let mut next = crate::test_rng::xorshift(0x51ed_2701_u64);
        for _ in 0..100 {
            let rules: Vec<SourceMatch> = (0..(next() % 6 + 1))
                .map(|_| {
                    let nets: Vec<IpNet> = (0..(next() % 4))
                        .map(|_| {
                            let addr = std::net::Ipv4Addr::from(
                                0x0a00_0000 | (next() as u32 & 0x00ff_ffff),
                            );
                            IpNet::new(IpAddr::V4(addr), (1 + next() % 32) as u8)
                                .unwrap()
                                .trunc()
                        })
                        .collect();
                    SourceMatch {
                        from: (!next().is_multiple_of(3)).then_some(nets.clone()),
                        not_from: if next().is_multiple_of(2) {
                            nets.into_iter().take(1).collect()
                        } else {
                            vec![]
                        },
                    }
                })
                .collect();
            let refs: Vec<&SourceMatch> = rules.iter().collect();
            let table = build(Family::V4, &refs);
            let (entries, mask) = expand_v4(&table);
            for entry in &entries {
                assert_ne!(mask & (1 << (entry.level / 8 - 1)), 0);
            }
            let mut probes: Vec<std::net::Ipv4Addr> = (0..100)
                .map(|_| std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x00ff_ffff)))
                .collect();
            for (net, _) in &table.prefixes {
                if let IpNet::V4(net) = net {
                    probes.extend([net.network(), net.broadcast()]);
                }
            }
            for probe in probes {
                assert_eq!(
                    lookup_levels(&entries, table.default_bits, probe),
                    lookup(&table, &IpAddr::V4(probe)),
                    "{probe} in {table:?}"
                );
            }
        }
    }

    #[test]
    fn redundant_prefixes_are_not_stored() {
        let rules = [matcher(Some(&["10.0.0.0/8", "10.1.0.0/16"]), &[])];
        let table = build(Family::V4, &[&rules[0]]);
        assert_eq!(table.prefixes, vec![("10.0.0.0/8".parse().unwrap(), 1)]);
        assert_eq!(table.default_bits, 0);
    }

    #[test]
    fn randomised_against_direct_evaluation() {
        // A small deterministic generator (no extra dependency).
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1du64);
        for _ in 0..200 {
            let mut rules = Vec::new();
            for _ in 0..(next() % 8 + 1) {
                let mut pick = |count: u64| -> Vec<String> {
                    (0..next() % count)
                        .map(|_| {
                            let addr = std::net::Ipv4Addr::from(
                                0x0a00_0000 | (next() as u32 & 0x00ff_ffff),
                            );
                            let len = 8 + next() % 25;
                            IpNet::new(IpAddr::V4(addr), len as u8)
                                .unwrap()
                                .trunc()
                                .to_string()
                        })
                        .collect()
                };
                let from = pick(4);
                let not_from = pick(3);
                let from_refs: Vec<&str> = from.iter().map(String::as_str).collect();
                let not_refs: Vec<&str> = not_from.iter().map(String::as_str).collect();
                let positive = !next().is_multiple_of(3);
                rules.push(matcher(positive.then_some(&from_refs[..]), &not_refs));
            }
            let mut probes: Vec<String> = (0..50)
                .map(|_| {
                    std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x00ff_ffff))
                        .to_string()
                })
                .collect();
            // The edges of every listed prefix, where mistakes would show.
            for rule in &rules {
                for net in rule.from.iter().flatten().chain(&rule.not_from) {
                    probes.push(net.network().to_string());
                    probes.push(net.broadcast().to_string());
                }
            }
            let probe_refs: Vec<&str> = probes.iter().map(String::as_str).collect();
            check(&rules, &probe_refs);
        }
    }
}
