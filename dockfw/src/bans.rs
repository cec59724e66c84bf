//! Bans: source prefixes dropped at every published port, optionally until a
//! time. Pure bookkeeping; [`crate::dataplane::bans`] writes it to the maps.
//!
//! Derived views keep the data plane's work flat in the number of bans:
//! - the *effective* expiry of each stored prefix is the latest expiry of the
//!   prefix and of every shorter ban covering it, so the trie's longest match
//!   alone decides (a /16 that expires does not unban a /8 around it);
//! - [`BanTables`]: a two-bit state per IPv4 /24 (none, all banned for good,
//!   partially banned, ask the trie) and, for partially banned /24s, a
//!   256-bit entry of banned addresses; for IPv6 a one-bit summary over
//!   hashed /32s and, for /64s holding /64 and /128 bans, exact entries
//!   ([`ExactV6`]). Most packets are decided by one array lookup.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use dockfw_common::{
    BAN_STATE_WORDS_V4, BAN64_UNBANNED, Ban24, Ban64, ban_state, summary_bucket_v4,
};
use ipnet::IpNet;

use crate::summary::{PrefixSummary, V6Refinement};

/// "Never expires" in expiry fields.
pub const NEVER: u64 = u64::MAX;

/// Timed bans at least this long get per-/24 entries in the data plane (up
/// to 256 each); shorter timed bans are checked in the trie.
const TIMED_ENTRY_MIN_LEN: u8 = 16;

/// `CLOCK_MONOTONIC` in ns: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass; CLOCK_MONOTONIC is
    // always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// The expiry `duration` from now (None = never).
pub fn expiry_after(duration: Option<Duration>) -> u64 {
    match duration {
        None => NEVER,
        Some(duration) => {
            monotonic_ns().saturating_add(duration.as_nanos().min(u128::from(u64::MAX)) as u64)
        }
    }
}

/// Bans by prefix with their own expiry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BanSet {
    bans: BTreeMap<IpNet, u64>,
}

/// What the data plane reads before (or instead of) the ban tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanTables {
    /// IPv4: two bits per /24 ([`ban_state`]).
    pub states_v4: Vec<u64>,
    /// IPv4: banned addresses of /24s in state PARTIAL, by /24 bucket.
    pub partial_v4: BTreeMap<u32, Ban24>,
    /// IPv6: summary over hashed /32s.
    pub summary_v6: PrefixSummary,
    /// IPv6: the refinement behind the summary.
    pub refine_v6: V6Refinement,
    /// IPv6: by /64 (the address's first 64 bits), the /64s that hold a ban
    /// of /64 or longer and none between /65 and /127: their verdicts
    /// without the trie ([`dockfw_common::BAN64_V6_MAP`]).
    pub exact_v6: BTreeMap<u64, ExactV6>,
}

/// What the bans decide for one IPv6 /64 (see [`BanTables::exact_v6`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactV6 {
    /// Effective expiry of the longest ban covering the whole /64
    /// ([`BAN64_UNBANNED`]: none).
    pub expires_ns: u64,
    /// Its banned /128s by their last 64 bits, with their effective expiry.
    pub hosts: BTreeMap<u64, u64>,
}

impl ExactV6 {
    /// The entry of [`dockfw_common::BAN64_V6_MAP`].
    pub fn entry(&self) -> Ban64 {
        Ban64 {
            expires_ns: self.expires_ns,
            hosts: self.hosts.keys().fold(0, |bits, low| bits | host_bit(*low)),
        }
    }

    /// The effective expiry for the address whose last 64 bits are `low`
    /// ([`BAN64_UNBANNED`]: not banned), as the data plane finds it.
    pub fn expiry(&self, low: u64) -> u64 {
        if self.entry().hosts & host_bit(low) == 0 {
            return self.expires_ns;
        }
        self.hosts.get(&low).copied().unwrap_or(self.expires_ns)
    }
}

/// [`dockfw_common::ban64_host_bit`] of the address whose last 64 bits are
/// `low`.
fn host_bit(low: u64) -> u64 {
    let bytes = low.to_be_bytes();
    let word =
        |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    dockfw_common::ban64_host_bit(word(0), word(4))
}

/// Sets the two-bit IPv4 state of `bucket` in the state words `states`.
pub(crate) fn set_state_v4(states: &mut [u64], bucket: u32, state: u64) {
    if let Some(word) = states.get_mut((bucket / 32) as usize) {
        let shift = (bucket % 32) * 2;
        *word = (*word & !(3 << shift)) | (state << shift);
    }
}

impl BanTables {
    /// The state of the /24 bucket `bucket`.
    pub fn state_v4(&self, bucket: u32) -> u64 {
        let word = self
            .states_v4
            .get((bucket / 32) as usize)
            .copied()
            .unwrap_or(ban_state::EXACT);
        (word >> ((bucket % 32) * 2)) & 3
    }

    fn set_state_v4(&mut self, bucket: u32, state: u64) {
        set_state_v4(&mut self.states_v4, bucket, state);
    }

    /// Sets every /24 in `first..=last` to `state` (whole words at a time).
    fn fill_v4(&mut self, first: u32, last: u32, state: u64) {
        let pattern = (0..32).fold(0u64, |word, slot| word | state << (slot * 2));
        let mut bucket = u64::from(first);
        let last = u64::from(last);
        while bucket <= last {
            if bucket % 32 == 0 && last - bucket >= 31 {
                if let Some(word) = self.states_v4.get_mut((bucket / 32) as usize) {
                    *word = pattern;
                }
                bucket += 32;
            } else {
                self.set_state_v4(bucket as u32, state);
                bucket += 1;
            }
        }
    }

    /// Whether `addr` is banned at `now_ns`, evaluated as the data plane
    /// does (falling back to `set`'s longest-match expiry where it would ask
    /// the trie). The reference the tests compare against.
    pub fn decide(&self, set: &BanSet, addr: &IpAddr, now_ns: u64) -> bool {
        let trie = || set.longest_match_banned(addr, now_ns);
        match addr {
            IpAddr::V4(v4) => {
                let value = u32::from(*v4);
                let bucket = summary_bucket_v4(value);
                match self.state_v4(bucket) {
                    ban_state::NONE => false,
                    ban_state::BANNED => true,
                    ban_state::PARTIAL => match self.partial_v4.get(&bucket) {
                        Some(entry) => {
                            let host = (value & 0xff) as usize;
                            if entry.bits[host >> 6] >> (host & 63) & 1 == 0 {
                                false
                            } else if entry.expires_ns == NEVER || now_ns < entry.expires_ns {
                                true
                            } else {
                                trie()
                            }
                        }
                        None => trie(),
                    },
                    _ => trie(),
                }
            }
            IpAddr::V6(v6) => {
                let always = self.summary_v6.always_v6;
                if !self.summary_v6.maybe(addr) {
                    return false;
                }
                let bits = u128::from(*v6);
                if self.refine_v6.long_set((bits >> 64) as u64) {
                    if let Some(exact) = self.exact_v6.get(&((bits >> 64) as u64)) {
                        let expiry = exact.expiry(bits as u64);
                        return expiry != BAN64_UNBANNED && (expiry == NEVER || now_ns < expiry);
                    }
                } else if !always && !self.refine_v6.short_set((bits >> 96) as u32) {
                    return false;
                }
                trie()
            }
        }
    }
}

impl BanSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bans `net` (host bits are cleared) until `expires_ns` ([`NEVER`] =
    /// forever); replaces an existing ban of the same prefix.
    pub fn insert(&mut self, net: IpNet, expires_ns: u64) {
        self.bans.insert(net.trunc(), expires_ns);
    }

    /// Lifts the ban of exactly `net`. Returns whether there was one.
    pub fn remove(&mut self, net: &IpNet) -> bool {
        self.bans.remove(&net.trunc()).is_some()
    }

    /// Number of bans.
    pub fn len(&self) -> usize {
        self.bans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }

    /// Bans with their own expiry, in prefix order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, u64)> {
        self.bans.iter().map(|(net, expiry)| (net, *expiry))
    }

    /// Prefixes whose own ban has expired at `now_ns`.
    pub fn expired(&self, now_ns: u64) -> Vec<IpNet> {
        self.bans
            .iter()
            .filter(|(_, expiry)| **expiry != NEVER && **expiry <= now_ns)
            .map(|(net, _)| *net)
            .collect()
    }

    /// Whether `addr` is banned at `now_ns` (the reference for tests).
    pub fn is_banned(&self, addr: &IpAddr, now_ns: u64) -> bool {
        self.bans
            .iter()
            .any(|(net, expiry)| net.contains(addr) && (*expiry == NEVER || now_ns < *expiry))
    }

    /// Every prefix with (effective, own) expiry: what the tries hold.
    pub fn effective(&self) -> Vec<(IpNet, u64, u64)> {
        // BTreeMap order on IpNet is by family, then address, then length:
        // a prefix comes after every prefix that contains it, so a stack
        // holds the chain of covering bans.
        let mut out = Vec::with_capacity(self.bans.len());
        let mut stack: Vec<(IpNet, u64)> = Vec::new();
        for (net, own) in &self.bans {
            while stack.last().is_some_and(|(top, _)| !top.contains(net)) {
                stack.pop();
            }
            let inherited = stack.last().map_or(0, |(_, effective)| *effective);
            let effective = (*own).max(inherited);
            out.push((*net, effective, *own));
            stack.push((*net, effective));
        }
        out
    }

    /// Whether the trie's longest match for `addr` is an unexpired ban
    /// (what the data plane's trie lookup answers, with effective expiries).
    pub fn longest_match_banned(&self, addr: &IpAddr, now_ns: u64) -> bool {
        self.effective()
            .iter()
            .filter(|(net, ..)| net.contains(addr))
            .max_by_key(|(net, ..)| net.prefix_len())
            .is_some_and(|(_, effective, _)| *effective == NEVER || now_ns < *effective)
    }

    /// The data plane's tables for this set.
    pub fn tables(&self) -> BanTables {
        let mut tables = BanTables {
            states_v4: vec![0; BAN_STATE_WORDS_V4 as usize],
            partial_v4: BTreeMap::new(),
            summary_v6: PrefixSummary::default(),
            refine_v6: V6Refinement::default(),
            exact_v6: BTreeMap::new(),
        };
        let mut permanent: Vec<(u32, u32)> = Vec::new();
        let mut exact_v6 = ExactBuilder::default();
        for (net, effective, _) in self.effective() {
            let net = match net {
                IpNet::V4(net) => net,
                IpNet::V6(v6) => {
                    tables.summary_v6.add(&net);
                    tables.refine_v6.add(&net);
                    exact_v6.add(v6, effective);
                    continue;
                }
            };
            let first = summary_bucket_v4(u32::from(net.network()));
            let last = summary_bucket_v4(u32::from(net.broadcast()));
            if net.prefix_len() <= 24 {
                if effective == NEVER {
                    permanent.push((first, last));
                } else if net.prefix_len() >= TIMED_ENTRY_MIN_LEN {
                    for bucket in first..=last {
                        let entry = tables.partial_v4.entry(bucket).or_insert_with(empty_entry);
                        entry.bits = [u64::MAX; 4];
                        entry.expires_ns = entry.expires_ns.min(effective);
                    }
                } else {
                    tables.fill_v4(first, last, ban_state::EXACT);
                }
            } else {
                let entry = tables.partial_v4.entry(first).or_insert_with(empty_entry);
                let low = u32::from(net.network()) & 0xff;
                let high = u32::from(net.broadcast()) & 0xff;
                crate::summary::set_range(&mut entry.bits, low, high);
                entry.expires_ns = entry.expires_ns.min(effective);
            }
        }
        let buckets: Vec<u32> = tables.partial_v4.keys().copied().collect();
        for bucket in buckets {
            if tables.state_v4(bucket) == ban_state::NONE {
                tables.set_state_v4(bucket, ban_state::PARTIAL);
            }
        }
        for (first, last) in permanent {
            tables.fill_v4(first, last, ban_state::BANNED);
        }
        // Entries only matter where the state sends the data plane to them.
        let states = tables.states_v4.clone();
        tables.partial_v4.retain(|bucket, _| {
            let word = states.get((bucket / 32) as usize).copied().unwrap_or(0);
            (word >> ((bucket % 32) * 2)) & 3 == ban_state::PARTIAL
        });
        tables.exact_v6 = exact_v6.finish();
        tables
    }
}

/// Builds [`BanTables::exact_v6`] from the IPv6 bans in prefix order (a
/// prefix after every prefix that contains it).
#[derive(Default)]
struct ExactBuilder {
    /// The chain of bans shorter than /64 covering the current prefix, with
    /// their effective expiry.
    covering: Vec<(ipnet::Ipv6Net, u64)>,
    /// /64s so far; `None`: a ban between /65 and /127 lies in it.
    slash64s: BTreeMap<u64, Option<ExactV6>>,
}

impl ExactBuilder {
    fn add(&mut self, net: ipnet::Ipv6Net, effective: u64) {
        while self
            .covering
            .last()
            .is_some_and(|(top, _)| !top.contains(&net))
        {
            self.covering.pop();
        }
        let len = net.prefix_len();
        if len < 64 {
            self.covering.push((net, effective));
            return;
        }
        let bits = u128::from(net.network());
        let key = (bits >> 64) as u64;
        let covering = self
            .covering
            .last()
            .map_or(BAN64_UNBANNED, |(_, effective)| *effective);
        let slot = self.slash64s.entry(key).or_insert_with(|| {
            Some(ExactV6 {
                expires_ns: covering,
                hosts: BTreeMap::new(),
            })
        });
        match (len, slot) {
            (64, Some(exact)) => exact.expires_ns = effective,
            (128, Some(exact)) => {
                exact.hosts.insert(bits as u64, effective);
            }
            (_, slot) => *slot = None,
        }
    }

    fn finish(self) -> BTreeMap<u64, ExactV6> {
        self.slash64s
            .into_iter()
            .filter_map(|(key, exact)| Some((key, exact?)))
            .collect()
    }
}

fn empty_entry() -> Ban24 {
    Ban24 {
        bits: [0; 4],
        expires_ns: NEVER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn longest<'a>(
        effective: &'a [(IpNet, u64, u64)],
        addr: &IpAddr,
    ) -> Option<&'a (IpNet, u64, u64)> {
        effective
            .iter()
            .filter(|(net, ..)| net.contains(addr))
            .max_by_key(|(net, ..)| net.prefix_len())
    }

    #[test]
    fn longest_match_alone_decides_with_effective_expiry() {
        let mut bans = BanSet::new();
        bans.insert(net("10.0.0.0/8"), NEVER);
        bans.insert(net("10.1.0.0/16"), 100);
        bans.insert(net("10.1.2.0/24"), 50);
        bans.insert(net("192.0.2.0/24"), 100);
        bans.insert(net("192.0.2.128/25"), 300);
        bans.insert(net("2001:db8::/32"), 10);
        let effective = bans.effective();
        for now in [0, 20, 60, 120, 400] {
            for addr in [
                "10.1.2.3",
                "10.1.9.9",
                "10.9.9.9",
                "192.0.2.1",
                "192.0.2.200",
                "2001:db8::1",
                "11.0.0.1",
            ] {
                let addr: IpAddr = addr.parse().unwrap();
                let kernel = longest(&effective, &addr)
                    .is_some_and(|(_, expiry, _)| *expiry == NEVER || now < *expiry);
                assert_eq!(kernel, bans.is_banned(&addr, now), "{addr} at {now}");
            }
        }
    }

    #[test]
    fn tables_decide_like_the_ban_set() {
        let mut next = crate::test_rng::xorshift(0x1234_5678_9abc_def1u64);
        for round in 0..60 {
            let mut bans = BanSet::new();
            for _ in 0..(next() % 40) {
                let addr = std::net::Ipv4Addr::from(0x0a00_0000 | (next() as u32 & 0x000f_ffff));
                let len = [8, 12, 16, 20, 23, 24, 25, 28, 30, 32][(next() % 10) as usize];
                let expiry = [NEVER, 100, 200, 300][(next() % 4) as usize];
                bans.insert(IpNet::new(IpAddr::V4(addr), len).unwrap(), expiry);
            }
            if round % 3 == 0 {
                bans.insert(net("2001:db8::/32"), 150);
                bans.insert(net("2000::/16"), NEVER);
            }
            let tables = bans.tables();
            let mut probes: Vec<IpAddr> = (0..200)
                .map(|_| {
                    IpAddr::V4(std::net::Ipv4Addr::from(
                        0x0a00_0000 | (next() as u32 & 0x000f_ffff),
                    ))
                })
                .collect();
            for (ban, _) in bans.iter() {
                probes.push(ban.network());
                probes.push(ban.broadcast());
            }
            probes.extend(
                ["2001:db8::1", "2000:1::1", "3000::1"].map(|addr| addr.parse::<IpAddr>().unwrap()),
            );
            for now in [0, 150, 250, 400] {
                for addr in &probes {
                    assert_eq!(
                        tables.decide(&bans, addr, now),
                        bans.is_banned(addr, now),
                        "{addr} at {now}, bans {bans:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn ipv6_summaries_skip_the_trie_only_where_no_ban_can_match() {
        let mut next = crate::test_rng::xorshift(0x0ddb_a115_eed5_u64);
        // Addresses in four /32s, so bans and probes share /32s and /64s
        // (2001:db8::/32 to 2001:dbb::/32), three /64s each.
        let addr = |next: &mut dyn FnMut() -> u64| {
            let slash32 = (0x2001_0db8u128 + u128::from(next() % 4)) << 96;
            let slash64 = u128::from(next() % 3) << 64;
            IpAddr::V6(std::net::Ipv6Addr::from(
                slash32 | slash64 | u128::from(next() % 512),
            ))
        };
        for _ in 0..200 {
            let mut bans = BanSet::new();
            for _ in 0..(next() % 12) {
                let len = [24, 32, 40, 48, 56, 63, 64, 80, 96, 127, 128][(next() % 11) as usize];
                let expiry = [NEVER, 100, 300][(next() % 3) as usize];
                bans.insert(IpNet::new(addr(&mut next), len).unwrap().trunc(), expiry);
            }
            let tables = bans.tables();
            let mut probes: Vec<IpAddr> = (0..200).map(|_| addr(&mut next)).collect();
            for (ban, _) in bans.iter() {
                probes.extend([ban.network(), ban.broadcast()]);
            }
            for now in [0, 200, 400] {
                for probe in &probes {
                    assert_eq!(
                        tables.decide(&bans, probe, now),
                        bans.is_banned(probe, now),
                        "{probe} at {now}, bans {bans:?}"
                    );
                }
            }
        }
        // A /64 ban: its /32 is marked, but another /64 of it skips the trie.
        let mut bans = BanSet::new();
        bans.insert(net("2001:db8:1:1::/64"), NEVER);
        let tables = bans.tables();
        let near: IpAddr = "2001:db8:1::7".parse().unwrap();
        let IpAddr::V6(near_v6) = near else {
            unreachable!()
        };
        assert!(tables.summary_v6.maybe(&near));
        assert!(!tables.refine_v6.maybe(&near_v6));
        let inside: std::net::Ipv6Addr = "2001:db8:1:1::9".parse().unwrap();
        assert!(tables.refine_v6.maybe(&inside));
        // A /48 ban marks its whole /32 as "shorter than /64".
        bans.insert(net("2001:db8:2::/48"), NEVER);
        assert!(bans.tables().refine_v6.maybe(&near_v6));
    }

    #[test]
    fn slash64_and_slash128_bans_are_decided_without_the_trie() {
        let mut bans = BanSet::new();
        bans.insert(net("2001:db8:1:1::/64"), NEVER);
        bans.insert(net("2001:db8:1:2::5/128"), 300);
        bans.insert(net("2001:db8:1:2::6/128"), NEVER);
        bans.insert(net("2001:db8:7::/48"), 200);
        bans.insert(net("2001:db8:7:1::/64"), 100);
        bans.insert(net("2001:db8:7:2::9/128"), 100);
        bans.insert(net("2001:db8:1:3::/64"), NEVER);
        bans.insert(net("2001:db8:1:3::/96"), NEVER);
        let tables = bans.tables();
        let prefix =
            |text: &str| (u128::from(text.parse::<std::net::Ipv6Addr>().unwrap()) >> 64) as u64;
        assert_eq!(
            tables.exact_v6.keys().copied().collect::<Vec<_>>(),
            [
                "2001:db8:1:1::",
                "2001:db8:1:2::",
                "2001:db8:7:1::",
                "2001:db8:7:2::"
            ]
            .map(prefix),
            "a /64 holding a /96 has no entry"
        );
        let covered = &tables.exact_v6[&prefix("2001:db8:7:2::")];
        assert_eq!(covered.expires_ns, 200, "the /48 around it");
        assert_eq!(
            covered.hosts.get(&9),
            Some(&200),
            "effective: the /48 outlives it"
        );
        assert_eq!(tables.exact_v6[&prefix("2001:db8:7:1::")].expires_ns, 200);
        let alone = &tables.exact_v6[&prefix("2001:db8:1:2::")];
        assert_eq!(alone.expires_ns, BAN64_UNBANNED);
        assert_eq!(
            alone.entry().hosts,
            host_bit(5) | host_bit(6),
            "the filter has the bits of its /128s"
        );
        // Decided by the entries: the same verdicts with an empty set
        // standing in for the trie.
        let no_trie = BanSet::new();
        for (addr, now, banned) in [
            ("2001:db8:1:1::1", 0, true),
            ("2001:db8:1:1:ffff::1", 0, true),
            ("2001:db8:1:2::5", 299, true),
            ("2001:db8:1:2::5", 300, false),
            ("2001:db8:1:2::6", 1000, true),
            ("2001:db8:1:2::7", 0, false),
            ("2001:db8:7:1::1", 150, true),
            ("2001:db8:7:1::1", 200, false),
            ("2001:db8:7:2::9", 150, true),
            ("2001:db8:7:2::8", 150, true),
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(
                tables.decide(&no_trie, &addr, now),
                banned,
                "{addr} at {now}"
            );
            assert_eq!(bans.is_banned(&addr, now), banned, "{addr} at {now}");
        }
        // The /64 with a /96 in it asks the trie.
        let mixed: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(!tables.decide(&no_trie, &mixed, 0));
        assert!(tables.decide(&bans, &mixed, 0));
    }

    #[test]
    fn permanent_wide_bans_need_no_lookup_and_partial_ones_an_entry() {
        let mut bans = BanSet::new();
        bans.insert(net("10.0.0.0/16"), NEVER);
        bans.insert(net("192.0.2.7/32"), NEVER);
        bans.insert(net("198.51.0.0/12"), 500);
        let tables = bans.tables();
        assert_eq!(
            tables.state_v4(summary_bucket_v4(0x0a00_0500)),
            ban_state::BANNED
        );
        assert_eq!(
            tables.state_v4(summary_bucket_v4(0xc000_0207)),
            ban_state::PARTIAL
        );
        assert_eq!(
            tables.state_v4(summary_bucket_v4(0xc633_0000)),
            ban_state::EXACT,
            "timed /12: the trie"
        );
        assert_eq!(
            tables.state_v4(summary_bucket_v4(0x0b00_0000)),
            ban_state::NONE
        );
        assert_eq!(tables.partial_v4.len(), 1);
    }

    #[test]
    fn expired_lists_only_timed_out_bans() {
        let mut bans = BanSet::new();
        bans.insert(net("10.0.0.0/8"), NEVER);
        bans.insert(net("10.1.0.0/16"), 100);
        assert!(bans.expired(99).is_empty());
        assert_eq!(bans.expired(100), vec![net("10.1.0.0/16")]);
        assert!(bans.remove(&net("10.1.0.0/16")));
        assert!(!bans.remove(&net("10.1.0.0/16")));
    }
}
