//! Bans: source prefixes dropped at every published port, optionally until a
//! time. Pure bookkeeping; [`crate::dataplane::bans`] writes it to the maps.
//!
//! Two derived views keep the data plane's work flat:
//! - the *effective* expiry of each stored prefix is the latest expiry of the
//!   prefix and of every shorter ban covering it, so the trie's longest match
//!   alone decides (a /16 that expires does not unban a /8 around it);
//! - a *summary* bitmap with one bit per IPv4 /24 (IPv6: per hashed /32)
//!   that some ban intersects; a clear bit lets the data plane skip the trie.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use dockfw_common::{BAN_SUMMARY_WORDS, ban_summary_bit_v4, ban_summary_bit_v6};
use ipnet::IpNet;

/// "Never expires" in expiry fields.
pub const NEVER: u64 = u64::MAX;

/// IPv6 bans shorter than this are not represented in the summary (they
/// would need too many bits); their presence makes the data plane always
/// consult the trie.
const V6_SUMMARY_MIN_LEN: u8 = 24;
/// The IPv6 summary hashes the first 32 bits.
const V6_SUMMARY_BITS: u8 = 32;

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

/// The summary bitmaps and whether IPv6 needs the trie regardless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// IPv4: bit per /24.
    pub v4: Vec<u64>,
    /// IPv6: bit per hashed /32.
    pub v6: Vec<u64>,
    /// Some IPv4 ban cannot be summarised (never with /24 granularity; kept
    /// for symmetry with the data plane's flag).
    pub always_v4: bool,
    /// Some IPv6 ban is shorter than /24.
    pub always_v6: bool,
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

    /// The summary bitmaps.
    pub fn summary(&self) -> Summary {
        let words = BAN_SUMMARY_WORDS as usize;
        let mut summary = Summary {
            v4: vec![0; words],
            v6: vec![0; words],
            always_v4: false,
            always_v6: false,
        };
        for net in self.bans.keys() {
            match net {
                IpNet::V4(net) => {
                    let first = ban_summary_bit_v4(u32::from(net.network()));
                    let last = ban_summary_bit_v4(u32::from(net.broadcast()));
                    set_bits(&mut summary.v4, first, last);
                }
                IpNet::V6(net) if net.prefix_len() < V6_SUMMARY_MIN_LEN => summary.always_v6 = true,
                IpNet::V6(net) => {
                    let prefix = (u128::from(net.network()) >> 96) as u32;
                    let span = if net.prefix_len() >= V6_SUMMARY_BITS {
                        1
                    } else {
                        1u32 << (V6_SUMMARY_BITS - net.prefix_len())
                    };
                    for offset in 0..span {
                        let bit = ban_summary_bit_v6(prefix + offset);
                        set_bits(&mut summary.v6, bit, bit);
                    }
                }
            }
        }
        summary
    }
}

/// Sets bits `first..=last`.
fn set_bits(words: &mut [u64], first: u32, last: u32) {
    let (first, last) = (first as usize, last as usize);
    for word in first / 64..=last / 64 {
        let low = if word == first / 64 { first % 64 } else { 0 };
        let high = if word == last / 64 { last % 64 } else { 63 };
        let mask = if high - low == 63 {
            u64::MAX
        } else {
            ((1u64 << (high - low + 1)) - 1) << low
        };
        if let Some(slot) = words.get_mut(word) {
            *slot |= mask;
        }
    }
}

/// Whether a summary says "maybe banned" for `addr`, as the data plane reads
/// it.
pub fn summary_says_maybe(summary: &Summary, addr: &IpAddr) -> bool {
    let (words, bit, always) = match addr {
        IpAddr::V4(addr) => (
            &summary.v4,
            ban_summary_bit_v4(u32::from(*addr)),
            summary.always_v4,
        ),
        IpAddr::V6(addr) => (
            &summary.v6,
            ban_summary_bit_v6((u128::from(*addr) >> 96) as u32),
            summary.always_v6,
        ),
    };
    always
        || words
            .get(bit as usize / 64)
            .is_none_or(|word| word >> (bit % 64) & 1 != 0)
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
    fn summary_covers_every_banned_address() {
        let mut bans = BanSet::new();
        for prefix in [
            "10.0.0.0/8",
            "192.0.2.7/32",
            "198.51.100.0/22",
            "2001:db8:1::/48",
            "2001:db8::/28",
        ] {
            bans.insert(net(prefix), NEVER);
        }
        let summary = bans.summary();
        for addr in [
            "10.200.3.4",
            "192.0.2.7",
            "198.51.103.255",
            "2001:db8:1::9",
            "2001:db8:f::1",
        ] {
            assert!(
                summary_says_maybe(&summary, &addr.parse().unwrap()),
                "{addr}"
            );
        }
        for addr in ["11.0.0.1", "192.0.3.7", "198.51.104.1"] {
            assert!(
                !summary_says_maybe(&summary, &addr.parse().unwrap()),
                "{addr}"
            );
        }
        assert!(!summary.always_v6);
        bans.insert(net("2000::/16"), NEVER);
        assert!(bans.summary().always_v6);
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
