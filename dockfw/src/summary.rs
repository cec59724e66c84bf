//! One-bit-per-bucket summaries over sets of prefixes, as the data plane
//! reads them to skip a trie lookup: bucket = IPv4 /24, or a hash of the
//! first 32 bits of an IPv6 address. A bucket is set when some prefix of
//! the set intersects it, so a clear bucket proves "no prefix covers this
//! address".

use std::net::IpAddr;

use dockfw_common::{SUMMARY_WORDS, summary_bucket_v4, summary_bucket_v6, summary_bucket_v6_64};
use ipnet::IpNet;

/// IPv6 prefixes shorter than this are not summarised (they would set up
/// to 2^8 buckets each at /24 already); their presence makes the data plane
/// always do the lookup.
const V6_MIN_LEN: u8 = 24;
/// The IPv6 bucket hashes the first 32 bits.
const V6_BUCKET_BITS: u8 = 32;

/// Summary bitmaps for both families.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixSummary {
    /// IPv4: one bit per /24.
    pub v4: Vec<u64>,
    /// IPv6: one bit per hashed /32.
    pub v6: Vec<u64>,
    /// Some IPv6 prefix is too short to summarise.
    pub always_v6: bool,
}

impl Default for PrefixSummary {
    fn default() -> Self {
        Self {
            v4: vec![0; SUMMARY_WORDS as usize],
            v6: vec![0; SUMMARY_WORDS as usize],
            always_v6: false,
        }
    }
}

impl PrefixSummary {
    /// The summary of `prefixes`.
    pub fn build<'a>(prefixes: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut summary = Self::default();
        for net in prefixes {
            summary.add(net);
        }
        summary
    }

    /// Adds one prefix.
    pub fn add(&mut self, net: &IpNet) {
        match net {
            IpNet::V4(net) => {
                let first = summary_bucket_v4(u32::from(net.network()));
                let last = summary_bucket_v4(u32::from(net.broadcast()));
                set_range(&mut self.v4, first, last);
            }
            IpNet::V6(net) if net.prefix_len() < V6_MIN_LEN => self.always_v6 = true,
            IpNet::V6(net) => set_slash32s(&mut self.v6, net),
        }
    }

    /// Whether the data plane would do the lookup for `addr`.
    pub fn maybe(&self, addr: &IpAddr) -> bool {
        let (words, bucket) = match addr {
            IpAddr::V4(addr) => (&self.v4, summary_bucket_v4(u32::from(*addr))),
            IpAddr::V6(addr) => {
                if self.always_v6 {
                    return true;
                }
                (
                    &self.v6,
                    summary_bucket_v6((u128::from(*addr) >> 96) as u32),
                )
            }
        };
        bucket_set(words, bucket)
    }

    /// Bucket-wise union.
    pub fn union(&self, other: &Self) -> Self {
        Self {
            v4: union(&self.v4, &other.v4),
            v6: union(&self.v6, &other.v6),
            always_v6: self.always_v6 || other.always_v6,
        }
    }
}

/// Where [`PrefixSummary`]'s IPv6 bit is set, two more bits tell whether the
/// ban trie can hold a match: "a prefix shorter than /64 intersects this
/// hashed /32" and "a prefix of /64 or longer lies in this hashed /64"
/// ([`dockfw_common::summary_bucket_v6_64`]). An address in a /32 that only
/// holds long bans elsewhere then skips the trie. Prefixes shorter than the
/// summary's minimum make the data plane look up always and are left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V6Refinement {
    /// Per hashed /32: some prefix shorter than /64 intersects it.
    pub short: Vec<u64>,
    /// Per hashed /64: some prefix of /64 or longer lies in it.
    pub long: Vec<u64>,
}

impl Default for V6Refinement {
    fn default() -> Self {
        Self {
            short: vec![0; SUMMARY_WORDS as usize],
            long: vec![0; SUMMARY_WORDS as usize],
        }
    }
}

/// Prefixes of this length and longer go to [`V6Refinement::long`].
const V6_LONG_LEN: u8 = 64;

impl V6Refinement {
    /// Adds one prefix (IPv4 ones are ignored).
    pub fn add(&mut self, net: &IpNet) {
        let IpNet::V6(net) = net else {
            return;
        };
        if net.prefix_len() >= V6_LONG_LEN {
            let bucket = summary_bucket_v6_64((u128::from(net.network()) >> 64) as u64);
            set_range(&mut self.long, bucket, bucket);
        } else if net.prefix_len() >= V6_MIN_LEN {
            set_slash32s(&mut self.short, net);
        }
    }

    /// Whether the data plane, past the /32 summary, would look up `addr`.
    pub fn maybe(&self, addr: &std::net::Ipv6Addr) -> bool {
        let bits = u128::from(*addr);
        self.short_set((bits >> 96) as u32) || self.long_set((bits >> 64) as u64)
    }

    /// Whether the /32 `prefix32` (an address's first 32 bits) may meet a
    /// ban shorter than /64.
    pub fn short_set(&self, prefix32: u32) -> bool {
        bucket_set(&self.short, summary_bucket_v6(prefix32))
    }

    /// Whether the /64 `prefix64` (an address's first 64 bits) may hold a
    /// ban of /64 or longer.
    pub fn long_set(&self, prefix64: u64) -> bool {
        bucket_set(&self.long, summary_bucket_v6_64(prefix64))
    }

    /// Bucket-wise union.
    pub fn union(&self, other: &Self) -> Self {
        Self {
            short: union(&self.short, &other.short),
            long: union(&self.long, &other.long),
        }
    }
}

/// Sets the buckets of the hashed /32s an IPv6 prefix of at least
/// [`V6_MIN_LEN`] bits intersects.
fn set_slash32s(words: &mut [u64], net: &ipnet::Ipv6Net) {
    let prefix = (u128::from(net.network()) >> 96) as u32;
    let span = 1u32 << V6_BUCKET_BITS.saturating_sub(net.prefix_len());
    for offset in 0..span {
        let bucket = summary_bucket_v6(prefix.wrapping_add(offset));
        set_range(words, bucket, bucket);
    }
}

/// Whether bucket `bucket` is set (a missing word counts as set, as in the
/// data plane).
fn bucket_set(words: &[u64], bucket: u32) -> bool {
    words
        .get(bucket as usize / 64)
        .is_none_or(|word| word >> (bucket % 64) & 1 != 0)
}

/// Word-wise union of two bitmaps of equal length.
fn union(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(a, b)| a | b).collect()
}

/// IPv4 source-level hints: per /24, four bits telling at which levels
/// ([`dockfw_common::source_level`]) some port's source table has an entry
/// covering that /24. The data plane looks up only those levels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelHints {
    /// Four bits per /24 bucket, sixteen buckets per word.
    pub words: Vec<u64>,
}

impl Default for LevelHints {
    fn default() -> Self {
        Self {
            words: vec![0; dockfw_common::SOURCE_HINT_WORDS_V4 as usize],
        }
    }
}

impl LevelHints {
    /// Marks the /24s that the level-`level` entry at `addr` covers.
    pub fn add(&mut self, level: u8, addr: std::net::Ipv4Addr) {
        let bit = 1u64 << (level / 8 - 1);
        let first = summary_bucket_v4(u32::from(addr));
        let span: u32 = match level {
            8 => 1 << 16,
            16 => 1 << 8,
            _ => 1,
        };
        for bucket in first..first.saturating_add(span) {
            if let Some(word) = self.words.get_mut((bucket / 16) as usize) {
                *word |= bit << ((bucket % 16) * 4);
            }
        }
    }

    /// The levels worth looking up for `addr`.
    pub fn get(&self, addr: std::net::Ipv4Addr) -> u32 {
        let bucket = summary_bucket_v4(u32::from(addr));
        self.words
            .get((bucket / 16) as usize)
            .map_or(0xf, |word| ((word >> ((bucket % 16) * 4)) & 0xf) as u32)
    }
}

/// Sets bits `first..=last` of a bitmap.
pub fn set_range(words: &mut [u64], first: u32, last: u32) {
    let (first, last) = (first as usize, last as usize);
    for index in first / 64..=last / 64 {
        let low = if index == first / 64 { first % 64 } else { 0 };
        let high = if index == last / 64 { last % 64 } else { 63 };
        let mask = if high - low == 63 {
            u64::MAX
        } else {
            ((1u64 << (high - low + 1)) - 1) << low
        };
        if let Some(word) = words.get_mut(index) {
            *word |= mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_hints_cover_what_each_level_covers() {
        let mut hints = LevelHints::default();
        hints.add(8, "10.0.0.0".parse().unwrap());
        hints.add(24, "10.1.2.0".parse().unwrap());
        hints.add(32, "192.0.2.7".parse().unwrap());
        hints.add(16, "198.51.0.0".parse().unwrap());
        assert_eq!(hints.get("10.200.1.1".parse().unwrap()), 0b0001);
        assert_eq!(hints.get("10.1.2.200".parse().unwrap()), 0b0101);
        assert_eq!(
            hints.get("192.0.2.8".parse().unwrap()),
            0b1000,
            "the whole /24 of a /32"
        );
        assert_eq!(hints.get("198.51.255.1".parse().unwrap()), 0b0010);
        assert_eq!(hints.get("11.0.0.1".parse().unwrap()), 0);
    }

    #[test]
    fn summaries_cover_their_prefixes_and_little_else() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/8",
            "192.0.2.7/32",
            "198.51.100.0/22",
            "2001:db8:1::/48",
            "2001:db8::/28",
        ]
        .iter()
        .map(|net| net.parse().unwrap())
        .collect();
        let summary = PrefixSummary::build(&nets);
        for addr in [
            "10.200.3.4",
            "192.0.2.7",
            "198.51.103.255",
            "2001:db8:1::9",
            "2001:db8:f::1",
        ] {
            assert!(summary.maybe(&addr.parse().unwrap()), "{addr}");
        }
        for addr in ["11.0.0.1", "192.0.3.7", "198.51.104.1"] {
            assert!(!summary.maybe(&addr.parse().unwrap()), "{addr}");
        }
        assert!(!summary.always_v6);
        let wide = PrefixSummary::build(&["2000::/16".parse().unwrap()]);
        assert!(wide.always_v6 && wide.maybe(&"3000::1".parse().unwrap()));
        let union = summary.union(&PrefixSummary::build(&["11.0.0.0/24".parse().unwrap()]));
        assert!(
            union.maybe(&"11.0.0.1".parse().unwrap()) && union.maybe(&"10.0.0.1".parse().unwrap())
        );
    }
}
