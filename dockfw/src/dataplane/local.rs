//! The host's local addresses in the data plane ([`LOCAL_ADDRS_MAP`]): a port
//! published on the wildcard address matches only packets to one of them,
//! as Docker's DNAT does (invariant 1: traffic the host routes elsewhere is
//! not aimed at a published port and passes untouched).
//!
//! The set is double-buffered like the policies: the inactive element is
//! written whole, then one flag flip in the configuration activates it, so
//! a packet sees the old set or the new one, never half of each.

use std::time::Instant;

use aya::maps::MapError;
use dockfw_common::{
    LOCAL_ADDRS_MAP, LocalPrefixV4, LocalPrefixV6, LocalSet, MAX_LOCAL_V4, MAX_LOCAL_V6,
    config_flag, local_flag,
};
use ipnet::IpNet;

use super::{Maps, WriteError, writer::QUIESCE};

/// The set the data plane reads for `prefixes`. A family with more prefixes
/// than the set holds has every destination treated as local (what dockfw
/// did before it knew the host's addresses), flagged so it is reported.
pub fn local_set(prefixes: &[IpNet]) -> LocalSet {
    let mut set = LocalSet::default();
    for net in prefixes {
        match net {
            IpNet::V4(net) => {
                let index = set.count_v4 as usize;
                if index == MAX_LOCAL_V4 {
                    set.flags |= local_flag::ALL_V4;
                    continue;
                }
                set.v4[index] = LocalPrefixV4 {
                    prefix: u32::from_ne_bytes(net.network().octets()),
                    mask: u32::from_ne_bytes(net.netmask().octets()),
                };
                set.count_v4 += 1;
            }
            IpNet::V6(net) => {
                let index = set.count_v6 as usize;
                if index == MAX_LOCAL_V6 {
                    set.flags |= local_flag::ALL_V6;
                    continue;
                }
                set.v6[index] = LocalPrefixV6 {
                    prefix: words(net.network().octets()),
                    mask: words(net.netmask().octets()),
                };
                set.count_v6 += 1;
            }
        }
    }
    if set.flags & local_flag::ALL_V4 != 0 {
        set.count_v4 = 0;
    }
    if set.flags & local_flag::ALL_V6 != 0 {
        set.count_v6 = 0;
    }
    set
}

/// 16 address bytes as the data plane loads them: four words, bytes kept.
fn words(octets: [u8; 16]) -> [u32; 4] {
    std::array::from_fn(|i| {
        u32::from_ne_bytes([
            octets[4 * i],
            octets[4 * i + 1],
            octets[4 * i + 2],
            octets[4 * i + 3],
        ])
    })
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalUpdate {
    /// The active set already holds these prefixes.
    Unchanged,
    /// The other element was written and activated.
    Flipped,
}

/// Writes the local set, one flip per change.
#[derive(Debug, Default)]
pub struct LocalWriter {
    last_flip: Option<Instant>,
}

fn map_error(map: &'static str) -> impl FnOnce(MapError) -> WriteError {
    move |source| WriteError::Map { map, source }
}

impl LocalWriter {
    /// A writer that knows nothing of earlier flips (a fresh or re-adopted
    /// data plane): its first write waits out [`QUIESCE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `prefixes` the active local set unless it already is. On error
    /// the active set (or, before the first write, "every address is
    /// local") stays in force.
    pub fn write(
        &mut self,
        maps: &mut Maps,
        prefixes: &[IpNet],
    ) -> Result<LocalUpdate, WriteError> {
        let wanted = local_set(prefixes);
        let config = maps
            .config
            .get(&0, 0)
            .map_err(map_error(dockfw_common::CONFIG_MAP))?;
        let active = u32::from(config.flags & config_flag::LOCAL_SET_ONE != 0);
        if config.flags & config_flag::LOCAL_SET != 0
            && maps
                .local
                .get(&active, 0)
                .map_err(map_error(LOCAL_ADDRS_MAP))?
                == wanted
        {
            return Ok(LocalUpdate::Unchanged);
        }
        let next = if config.flags & config_flag::LOCAL_SET != 0 {
            active ^ 1
        } else {
            active
        };
        // A packet that read the flags before the last flip may still be
        // reading the element about to be rewritten.
        let wait = self
            .last_flip
            .map_or(QUIESCE, |last| QUIESCE.saturating_sub(last.elapsed()));
        std::thread::sleep(wait);
        maps.local
            .set(next, wanted, 0)
            .map_err(map_error(LOCAL_ADDRS_MAP))?;
        // Re-read: nothing else writes the configuration while this process
        // holds the writer lock, but the flags word is shared.
        let mut config = maps
            .config
            .get(&0, 0)
            .map_err(map_error(dockfw_common::CONFIG_MAP))?;
        config.flags &= !config_flag::LOCAL_SET_ONE;
        config.flags |= config_flag::LOCAL_SET;
        if next == 1 {
            config.flags |= config_flag::LOCAL_SET_ONE;
        }
        maps.config
            .set(0, config, 0)
            .map_err(map_error(dockfw_common::CONFIG_MAP))?;
        self.last_flip = Some(Instant::now());
        Ok(LocalUpdate::Flipped)
    }
}

/// The local set in force (`None`: none written, every address counts as
/// local).
pub fn read_local(maps: &Maps) -> Result<Option<LocalSet>, MapError> {
    let config = maps.config.get(&0, 0)?;
    if config.flags & config_flag::LOCAL_SET == 0 {
        return Ok(None);
    }
    let active = u32::from(config.flags & config_flag::LOCAL_SET_ONE != 0);
    maps.local.get(&active, 0).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    #[test]
    fn prefixes_become_masked_words_in_network_order() {
        let set = local_set(&nets(&["10.1.2.3/32", "127.0.0.0/8", "2001:db8::/64"]));
        assert_eq!((set.count_v4, set.count_v6, set.flags), (2, 1, 0));
        assert_eq!(set.v4[0].prefix.to_ne_bytes(), [10, 1, 2, 3]);
        assert_eq!(set.v4[0].mask, u32::MAX);
        assert_eq!(set.v4[1].prefix.to_ne_bytes(), [127, 0, 0, 0]);
        assert_eq!(set.v4[1].mask.to_ne_bytes(), [255, 0, 0, 0]);
        assert_eq!(set.v6[0].prefix[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(set.v6[0].mask, [u32::MAX, u32::MAX, 0, 0]);
        // An address with host bits set is matched by its prefix.
        let host = u32::from_ne_bytes([127, 9, 9, 9]);
        assert_eq!(host & set.v4[1].mask, set.v4[1].prefix);
    }

    #[test]
    fn a_family_beyond_the_capacity_counts_every_address_as_local() {
        let mut many: Vec<IpNet> = (0..=MAX_LOCAL_V4)
            .map(|i| format!("10.0.{}.{}/32", i / 256, i % 256).parse().unwrap())
            .collect();
        many.push("2001:db8::1/128".parse().unwrap());
        let set = local_set(&many);
        assert_eq!(set.flags, local_flag::ALL_V4);
        assert_eq!((set.count_v4, set.count_v6), (0, 1));
        let full = local_set(&many[..MAX_LOCAL_V4]);
        assert_eq!((full.flags, full.count_v4 as usize), (0, MAX_LOCAL_V4));
    }
}
