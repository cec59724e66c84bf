//! `ipset save` output: the members of the address sets DOCKER-USER rules
//! name with `-m set --match-set NAME src|dst`.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use super::addrs::AddrSet;
use crate::model::Family;

/// One element of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The addresses (a network, an address or a range).
    addrs: AddrSet,
    /// Prefix length, for the longest-match order of `nomatch` entries.
    prefix: u8,
    /// `nomatch`: an exception inside a larger entry.
    nomatch: bool,
    /// Seconds left before the entry expires.
    timeout: Option<u64>,
}

/// A set of addresses (`hash:ip`, `hash:net`, `bitmap:ip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSet {
    /// The set type (`hash:net`, ...).
    pub kind: String,
    /// Address family (`family inet6`; default `inet`).
    pub family: Family,
    /// `netmask N` of `hash:ip`/`bitmap:ip`: entries stand for networks.
    netmask: Option<u8>,
    entries: Vec<Entry>,
}

/// Why a set's members cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetProblem {
    /// No such set in `ipset save`.
    #[error("set {0} does not exist (or `ipset save` could not be read)")]
    Missing(String),
    /// A type that is not a plain address set.
    #[error("set {name} is of type {kind}; only hash:ip, hash:net and bitmap:ip are mirrored")]
    Kind {
        /// Set.
        name: String,
        /// Its type.
        kind: String,
    },
    /// An element could not be read.
    #[error("set {name} has an element {element:?} that could not be read")]
    Element {
        /// Set.
        name: String,
        /// The element.
        element: String,
    },
}

/// Every set of an `ipset save` output, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpSets {
    sets: BTreeMap<String, Result<IpSet, SetProblem>>,
}

/// Address set types whose elements are addresses or networks.
const ADDRESS_KINDS: &[&str] = &["hash:ip", "hash:net", "bitmap:ip"];

impl IpSets {
    /// Parses `ipset save` output. Lines that are not `create`/`add` are
    /// ignored.
    pub fn parse(text: &str) -> Self {
        let mut sets = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["create", name, kind, options @ ..] => {
                    let set = if ADDRESS_KINDS.contains(kind) {
                        Ok(IpSet {
                            kind: (*kind).to_owned(),
                            family: if option(options, "family") == Some("inet6") {
                                Family::V6
                            } else {
                                Family::V4
                            },
                            netmask: option(options, "netmask").and_then(|mask| mask.parse().ok()),
                            entries: Vec::new(),
                        })
                    } else {
                        Err(SetProblem::Kind {
                            name: (*name).to_owned(),
                            kind: (*kind).to_owned(),
                        })
                    };
                    sets.insert((*name).to_owned(), set);
                }
                ["add", name, element, options @ ..] => {
                    let Some(Ok(set)) = sets.get_mut(*name) else {
                        continue;
                    };
                    let parsed = parse_element(set.family, set.netmask, element);
                    match parsed {
                        Some((addrs, prefix)) => set.entries.push(Entry {
                            addrs,
                            prefix,
                            nomatch: options.contains(&"nomatch"),
                            timeout: option(options, "timeout").and_then(|t| t.parse().ok()),
                        }),
                        None => {
                            let problem = SetProblem::Element {
                                name: (*name).to_owned(),
                                element: (*element).to_owned(),
                            };
                            sets.insert((*name).to_owned(), Err(problem));
                        }
                    }
                }
                _ => {}
            }
        }
        Self { sets }
    }

    /// The set called `name`.
    pub fn get(&self, name: &str) -> Result<&IpSet, SetProblem> {
        match self.sets.get(name) {
            Some(Ok(set)) => Ok(set),
            Some(Err(problem)) => Err(problem.clone()),
            None => Err(SetProblem::Missing(name.to_owned())),
        }
    }
}

fn option<'a>(options: &[&'a str], key: &str) -> Option<&'a str> {
    options
        .iter()
        .position(|word| *word == key)
        .and_then(|at| options.get(at + 1).copied())
}

/// An element (`10.0.0.0/8`, `10.0.0.1`, `10.0.0.1-10.0.0.9`) as addresses
/// and a prefix length; a `netmask` widens single addresses.
fn parse_element(family: Family, netmask: Option<u8>, text: &str) -> Option<(AddrSet, u8)> {
    let full = match family {
        Family::V4 => 32,
        Family::V6 => 128,
    };
    if let Some((low, high)) = text.split_once('-') {
        let (low, high): (IpAddr, IpAddr) = (low.parse().ok()?, high.parse().ok()?);
        return Some((AddrSet::from_range(family, &low, &high), full));
    }
    let net: IpNet = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => {
            let addr: IpAddr = text.parse().ok()?;
            IpNet::new(addr, netmask.unwrap_or(full)).ok()?
        }
    };
    if Family::of(&net.addr()) != family {
        return None;
    }
    Some((AddrSet::from_net(family, &net), net.prefix_len()))
}

impl IpSet {
    /// The members as the kernel matches them: the longest matching entry
    /// decides, and a `nomatch` entry excludes. With `min_timeout`, entries
    /// that expire sooner are left out (for a set whose members get
    /// dropped: a member that may be gone before the next read must not be
    /// dropped in XDP).
    pub fn members(&self, min_timeout: Option<u64>) -> AddrSet {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        // Shorter prefixes first: a longer entry overrides what it is in.
        entries.sort_by_key(|entry| entry.prefix);
        entries
            .into_iter()
            .fold(AddrSet::empty(self.family), |members, entry| {
                let expiring = match (min_timeout, entry.timeout) {
                    (Some(min), Some(left)) => left < min,
                    _ => false,
                };
                if entry.nomatch {
                    members.difference(&entry.addrs)
                } else if expiring {
                    members
                } else {
                    members.union(&entry.addrs)
                }
            })
    }

    /// Whether any entry expires by itself.
    pub fn has_timeouts(&self) -> bool {
        self.entries.iter().any(|entry| entry.timeout.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "\
create blocklist hash:net family inet hashsize 1024 maxelem 65536 timeout 0
add blocklist 198.51.100.0/24
add blocklist 198.51.100.128/25 nomatch
add blocklist 198.51.100.200/32
add blocklist 203.0.113.7 timeout 2
create v6 hash:ip family inet6 hashsize 1024 maxelem 65536
add v6 2001:db8::1
create masked hash:ip family inet netmask 24
add masked 192.0.2.0
create pairs hash:ip,port family inet
add pairs 192.0.2.1,tcp:80
create named list:set size 8
";

    fn has(set: &AddrSet, addr: &str) -> bool {
        set.contains(&addr.parse().unwrap())
    }

    #[test]
    fn nomatch_and_longest_match() {
        let sets = IpSets::parse(SAVE);
        let members = sets.get("blocklist").unwrap().members(None);
        assert!(has(&members, "198.51.100.1"));
        assert!(!has(&members, "198.51.100.129"));
        assert!(has(&members, "198.51.100.200"));
        assert!(has(&members, "203.0.113.7"));
    }

    #[test]
    fn expiring_entries_are_left_out_on_request() {
        let sets = IpSets::parse(SAVE);
        let set = sets.get("blocklist").unwrap();
        assert!(set.has_timeouts());
        assert!(!has(&set.members(Some(5)), "203.0.113.7"));
        assert!(has(&set.members(Some(1)), "203.0.113.7"));
    }

    #[test]
    fn families_netmasks_and_unsupported_types() {
        let sets = IpSets::parse(SAVE);
        let v6 = sets.get("v6").unwrap();
        assert_eq!(v6.family, Family::V6);
        assert!(has(&v6.members(None), "2001:db8::1"));
        assert!(has(
            &sets.get("masked").unwrap().members(None),
            "192.0.2.77"
        ));
        assert!(matches!(sets.get("pairs"), Err(SetProblem::Kind { .. })));
        assert!(matches!(sets.get("named"), Err(SetProblem::Kind { .. })));
        assert!(matches!(sets.get("nope"), Err(SetProblem::Missing(_))));
    }
}
