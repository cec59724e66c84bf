//! Source tries: a port's source table for one family (longest-prefix match
//! over its rules' prefixes, see [`super::sources`]) as 256-way nodes, one
//! per address byte, so the data plane answers with inlined array lookups
//! (at most 4 for IPv4, 16 for IPv6, and only as deep as the port's longest
//! prefix there) instead of hash or LPM-trie lookups.
//!
//! Each node has [`SOURCE_NODE_FANOUT`] entries; an entry is either a leaf
//! holding the rule bitmap of every address below it, or the index of the
//! node for the next byte ([`source_node`]). A prefix whose length is not a
//! multiple of 8 fills every entry it covers in the node of its last byte
//! (controlled prefix expansion); a longer prefix nested in it overwrites
//! the entries it covers. Identical nodes are stored once, across all ports
//! and both families of a generation, so ports with the same source sets
//! share one trie and a subtree that only repeats its parent's bitmap
//! collapses into a leaf.

use std::collections::HashMap;

use dockfw_common::{SOURCE_NODE_FANOUT, source_node};
use ipnet::IpNet;

use super::sources::SourceTable;
use crate::model::Family;

const FANOUT: usize = SOURCE_NODE_FANOUT as usize;

/// One node's entries.
pub type Node = [u64; FANOUT];

/// The nodes of one generation: indices `first..limit` of the node array.
#[derive(Clone, Debug)]
pub struct NodePool {
    first: u32,
    limit: u32,
    nodes: Vec<Node>,
    index: HashMap<Box<Node>, u32>,
}

/// A prefix as (address aligned to the left of 128 bits, length, bitmap).
type Prefix = (u128, u8, u32);

impl NodePool {
    /// A pool that hands out node indices from `first` (at least 1: node 0
    /// means "leaf") up to, not including, `limit`.
    pub fn new(first: u32, limit: u32) -> Self {
        Self {
            first: first.max(1),
            limit,
            nodes: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The pool of `generation` in a node array of `capacity` nodes: each
    /// generation owns one half.
    pub fn for_generation(capacity: u32, generation: u32) -> Self {
        let first = dockfw_common::generation_base(capacity, generation);
        Self::new(first, first + capacity / 2)
    }

    /// Index of the first node.
    pub fn first(&self) -> u32 {
        self.first
    }

    /// The nodes in index order, from [`Self::first`].
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Adds the trie of `table`'s prefixes of `family` and returns its root
    /// node, or `None` (and adds nothing) when its new nodes do not fit.
    pub fn add(&mut self, table: &SourceTable, family: Family) -> Option<u32> {
        let mut prefixes: Vec<Prefix> = table
            .prefixes
            .iter()
            .filter_map(|(net, bits)| match (net, family) {
                (IpNet::V4(net), Family::V4) => Some((
                    u128::from(u32::from(net.network())) << 96,
                    net.prefix_len(),
                    *bits,
                )),
                (IpNet::V6(net), Family::V6) => {
                    Some((u128::from(net.network()), net.prefix_len(), *bits))
                }
                _ => None,
            })
            .collect();
        // Shorter first: a nested longer prefix overwrites what it covers.
        prefixes.sort_by_key(|(addr, len, _)| (*len, *addr));
        let before = self.nodes.len();
        let root = self.node(&prefixes, 0, table.default_bits);
        if self.first as usize + self.nodes.len() > self.limit as usize {
            for node in self.nodes.drain(before..) {
                self.index.remove(&node);
            }
            return None;
        }
        Some(root)
    }

    /// The entries of the node for the byte at `depth` (0 = most
    /// significant) of an address range whose longest shorter match gives
    /// `inherited`; `prefixes` lie in that range, are longer than
    /// `8 * depth` and sorted by length.
    fn node(&mut self, prefixes: &[Prefix], depth: u32, inherited: u32) -> u32 {
        let entries = self.entries(prefixes, depth, inherited);
        self.intern(entries)
    }

    fn entries(&mut self, prefixes: &[Prefix], depth: u32, inherited: u32) -> Box<Node> {
        let mut entries: Box<Node> = Box::new([source_node::leaf(inherited); FANOUT]);
        let end = 8 * (depth + 1);
        let shift = 120 - 8 * depth;
        let byte = |addr: u128| ((addr >> shift) & 0xff) as usize;
        let mut deeper: Vec<Vec<Prefix>> = vec![Vec::new(); FANOUT];
        for &(addr, len, bits) in prefixes {
            if u32::from(len) <= end {
                let first = byte(addr);
                let count = 1usize << (end - u32::from(len));
                entries[first..first + count].fill(source_node::leaf(bits));
            } else {
                deeper[byte(addr)].push((addr, len, bits));
            }
        }
        for (slot, nested) in deeper.iter().enumerate() {
            if nested.is_empty() {
                continue;
            }
            let inherited = source_node::bits_of(entries[slot]);
            let child = self.entries(nested, depth + 1, inherited);
            // A child that is one leaf throughout is that leaf.
            entries[slot] = if source_node::child_of(child[0]) == 0
                && child.iter().all(|entry| *entry == child[0])
            {
                child[0]
            } else {
                source_node::child(self.intern(child))
            };
        }
        entries
    }

    fn intern(&mut self, entries: Box<Node>) -> u32 {
        if let Some(found) = self.index.get(&entries) {
            return *found;
        }
        let id = self.first + self.nodes.len() as u32;
        self.index.insert(entries.clone(), id);
        self.nodes.push(*entries);
        id
    }

    /// The bitmap the data plane's walk gives for `addr` from `root`.
    pub fn lookup(&self, root: u32, addr: std::net::IpAddr) -> Option<u32> {
        let bytes = match addr {
            std::net::IpAddr::V4(addr) => addr.octets().to_vec(),
            std::net::IpAddr::V6(addr) => addr.octets().to_vec(),
        };
        let mut node = root;
        for byte in bytes {
            let entries = self.nodes.get(node.checked_sub(self.first)? as usize)?;
            let entry = entries[usize::from(byte)];
            node = source_node::child_of(entry);
            if node == 0 {
                return Some(source_node::bits_of(entry));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::compile::sources::lookup;

    fn table(default_bits: u32, prefixes: &[(&str, u32)]) -> SourceTable {
        SourceTable {
            default_bits,
            prefixes: prefixes
                .iter()
                .map(|(net, bits)| (net.parse().unwrap(), *bits))
                .collect(),
        }
    }

    fn family(addr: &IpAddr) -> Family {
        Family::of(addr)
    }

    /// Every probe of `family` gets what the longest-prefix reference gives.
    fn agrees(pool: &NodePool, root: u32, table: &SourceTable, probes: &[IpAddr], of: Family) {
        for probe in probes.iter().filter(|probe| family(probe) == of) {
            assert_eq!(
                pool.lookup(root, *probe),
                Some(lookup(table, probe)),
                "source {probe}, table {table:?}"
            );
        }
    }

    /// Addresses at and around every prefix boundary of `table`.
    fn edges(table: &SourceTable) -> Vec<IpAddr> {
        let mut probes = vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        ];
        for (net, _) in &table.prefixes {
            match net {
                IpNet::V4(net) => {
                    let low = u32::from(net.network());
                    let high = u32::from(net.broadcast());
                    for addr in [low.wrapping_sub(1), low, low + 1, high - 1, high]
                        .into_iter()
                        .chain([high.wrapping_add(1)])
                    {
                        probes.push(IpAddr::V4(addr.into()));
                    }
                }
                IpNet::V6(net) => {
                    let low = u128::from(net.network());
                    let high = u128::from(net.broadcast());
                    for addr in [
                        low.wrapping_sub(1),
                        low,
                        low.wrapping_add(1),
                        high.wrapping_sub(1),
                        high,
                        high.wrapping_add(1),
                    ] {
                        probes.push(IpAddr::V6(addr.into()));
                    }
                }
            }
        }
        probes
    }

    fn both(pool: &mut NodePool, table: &SourceTable, probes: &[IpAddr]) {
        for of in [Family::V4, Family::V6] {
            let root = pool.add(table, of).unwrap();
            agrees(pool, root, table, probes, of);
        }
    }

    #[test]
    fn every_prefix_length_matches_the_longest_prefix() {
        let table = table(
            0b1,
            &[
                ("0.0.0.0/0", 0b10),
                ("10.0.0.0/7", 0b100),
                ("10.0.0.0/8", 0b1000),
                ("10.1.0.0/13", 0b1_0000),
                ("10.1.2.0/23", 0b10_0000),
                ("10.1.2.128/25", 0b100_0000),
                ("10.1.2.200/32", 0b1000_0000),
                ("10.1.3.7/31", 0),
                ("192.168.0.0/16", 0b1),
                ("2001:db8::/32", 0b10),
                ("2001:db8:1::/48", 0b100),
                ("2001:db8:1:2::/63", 0b1000),
                ("2001:db8:1:2::7/128", 0),
                ("2001:db8:1:2::/127", 0b1_0000),
                ("fe80::/10", 0b10_0000),
            ],
        );
        let mut pool = NodePool::new(1, 1000);
        both(&mut pool, &table, &edges(&table));
    }

    #[test]
    fn random_tables_agree_with_the_reference() {
        let mut next = crate::test_rng::xorshift(0x1234_5678_9abc_def0u64);
        for _ in 0..200 {
            let count = (next() % 40) as usize;
            let mut prefixes = Vec::new();
            // Prefixes clustered in a few /8s (IPv4) and /16s (IPv6) so
            // they nest.
            for _ in 0..count {
                let addr = ((next() % 4) as u32) << 24 | (next() as u32 & 0x00ff_ffff);
                let len = (next() % 33) as u8;
                let net = ipnet::Ipv4Net::new(addr.into(), len).unwrap().trunc();
                prefixes.push((IpNet::V4(net), next() as u32));
                let high = (0x2001u128 + u128::from(next() % 3)) << 112;
                let low = (u128::from(next()) << 64 | u128::from(next())) >> 16;
                let len = (next() % 129) as u8;
                let net = ipnet::Ipv6Net::new((high | low).into(), len)
                    .unwrap()
                    .trunc();
                prefixes.push((IpNet::V6(net), next() as u32));
            }
            prefixes.sort();
            prefixes.dedup_by_key(|(net, _)| *net);
            let table = SourceTable {
                default_bits: next() as u32,
                prefixes,
            };
            let mut probes = edges(&table);
            for _ in 0..200 {
                let v4 = ((next() % 5) as u32) << 24 | (next() as u32 & 0x00ff_ffff);
                probes.push(IpAddr::V4(v4.into()));
                let high = (0x2001u128 + u128::from(next() % 4)) << 112;
                let low = (u128::from(next()) << 64 | u128::from(next())) >> 16;
                probes.push(IpAddr::V6((high | low).into()));
            }
            let mut pool = NodePool::new(1, 100_000);
            both(&mut pool, &table, &probes);
        }
    }

    #[test]
    fn identical_tables_share_their_nodes() {
        let shared = table(0, &[("10.1.2.3/32", 1), ("172.16.0.0/12", 2)]);
        let mut pool = NodePool::new(1, 100);
        let first = pool.add(&shared, Family::V4).unwrap();
        let used = pool.nodes().len();
        assert_eq!(pool.add(&shared, Family::V4), Some(first));
        assert_eq!(
            pool.nodes().len(),
            used,
            "a second identical port adds no node"
        );
        // root, 10/8, 10.1/16, 10.1.2/24, and 172/8 (the /12 fills 16 of
        // its entries).
        assert_eq!(used, 5);
        // Equal subtrees under different bytes are stored once too.
        let twins = table(0, &[("10.1.2.3/32", 1), ("11.1.2.3/32", 1)]);
        let root = pool.add(&twins, Family::V4).unwrap();
        assert_eq!(pool.nodes().len(), used + 1, "only the new root");
        agrees(&pool, root, &twins, &edges(&twins), Family::V4);
    }

    #[test]
    fn a_table_that_does_not_fit_adds_nothing_and_later_ones_still_can() {
        let big = table(0, &[("10.1.2.3/32", 1), ("11.1.2.3/32", 2)]);
        let small = table(0, &[("10.0.0.0/8", 1)]);
        // Room for four nodes: the big table needs seven.
        let mut pool = NodePool::new(1, 5);
        assert_eq!(pool.add(&big, Family::V4), None);
        assert!(pool.nodes().is_empty());
        let root = pool.add(&small, Family::V4).unwrap();
        assert_eq!(pool.nodes().len(), 1);
        agrees(&pool, root, &small, &edges(&small), Family::V4);
        // An IPv6 /64 needs a node per byte: eight.
        let v6 = table(0, &[("2001:db8:1:2::/64", 1)]);
        assert_eq!(pool.add(&v6, Family::V6), None);
        assert_eq!(pool.nodes().len(), 1);
    }

    #[test]
    fn generations_use_disjoint_halves_and_never_node_zero() {
        let table = table(0, &[("10.0.0.0/8", 1)]);
        let mut low = NodePool::for_generation(64, 0);
        let mut high = NodePool::for_generation(64, 1);
        assert_eq!(low.add(&table, Family::V4), Some(1));
        assert_eq!(high.add(&table, Family::V4), Some(32));
        // Generation 0 holds nodes 1..32: 31 of them.
        let mut full = NodePool::for_generation(64, 0);
        for index in 0..31u32 {
            let one = SourceTable {
                default_bits: 0,
                prefixes: vec![(
                    IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(index << 24), 8).unwrap()),
                    index + 1,
                )],
            };
            assert!(full.add(&one, Family::V4).is_some(), "node {index}");
        }
        assert_eq!(full.add(&table, Family::V4), None);
    }
}
