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
    config_flag, local_flag, local_slot_v4, local_slot_v6,
};
use ipnet::IpNet;

use super::{Maps, WriteError, writer::QUIESCE};

/// The set the data plane reads for `prefixes`. Host addresses take their
/// slot in the direct-mapped tables, the rest (and addresses whose slot is
/// taken) go to the prefix lists. A family with more than those hold has
/// every destination treated as local (what dockfw did before it knew the
/// host's addresses), flagged so it is reported.
pub fn local_set(prefixes: &[IpNet]) -> LocalSet {
    let mut set = LocalSet::empty();
    for net in prefixes {
        match net {
            IpNet::V4(net) => {
                let prefix = u32::from_ne_bytes(net.network().octets());
                let slot = local_slot_v4(prefix);
                if net.prefix_len() == 32 && !set.v4_slot_used(slot) {
                    set.exact_v4[slot] = prefix;
                    continue;
                }
                let index = set.count_v4 as usize;
                if index == MAX_LOCAL_V4 {
                    set.flags |= local_flag::ALL_V4;
                    continue;
                }
                set.v4[index] = LocalPrefixV4 {
                    prefix,
                    mask: u32::from_ne_bytes(net.netmask().octets()),
                };
                set.count_v4 += 1;
            }
            IpNet::V6(net) => {
                let prefix = words(net.network().octets());
                let slot = local_slot_v6(&prefix);
                if net.prefix_len() == 128 && !set.v6_slot_used(slot) {
                    set.exact_v6[slot] = prefix;
                    continue;
                }
                let index = set.count_v6 as usize;
                if index == MAX_LOCAL_V6 {
                    set.flags |= local_flag::ALL_V6;
                    continue;
                }
                set.v6[index] = LocalPrefixV6 {
                    prefix,
                    mask: words(net.netmask().octets()),
                };
                set.count_v6 += 1;
            }
        }
    }
    // Empty lists make the flagged family's lookups as short as they get;
    // the flag alone decides.
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use dockfw_common::{LOCAL_SLOTS_V4, LOCAL_SLOTS_V6};

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn v4(addr: [u8; 4]) -> u32 {
        u32::from_ne_bytes(addr)
    }

    #[test]
    fn host_addresses_take_their_slot_and_other_prefixes_the_list() {
        let set = local_set(&nets(&[
            "10.1.2.3/32",
            "127.0.0.0/8",
            "2001:db8::/64",
            "2001:db8::1/128",
        ]));
        assert_eq!((set.count_v4, set.count_v6, set.flags), (1, 1, 0));
        let host = v4([10, 1, 2, 3]);
        assert_eq!(set.exact_v4[local_slot_v4(host)], host);
        assert!(set.v4_slot_used(local_slot_v4(host)));
        let v6_host = words(
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert_eq!(set.exact_v6[local_slot_v6(&v6_host)], v6_host);
        assert_eq!(set.v4[0].prefix.to_ne_bytes(), [127, 0, 0, 0]);
        assert_eq!(set.v4[0].mask.to_ne_bytes(), [255, 0, 0, 0]);
        assert_eq!(set.v6[0].prefix[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(set.v6[0].mask, [u32::MAX, u32::MAX, 0, 0]);
        // An address with host bits set is matched by its prefix.
        let loopback = v4([127, 9, 9, 9]);
        assert_eq!(loopback & set.v4[0].mask, set.v4[0].prefix);
        let used_v4 = (0..LOCAL_SLOTS_V4).filter(|&slot| set.v4_slot_used(slot));
        let used_v6 = (0..LOCAL_SLOTS_V6).filter(|&slot| set.v6_slot_used(slot));
        assert_eq!((used_v4.count(), used_v6.count()), (1, 1));
    }

    #[test]
    fn an_address_whose_slot_is_taken_goes_to_the_list() {
        let first = Ipv4Addr::new(10, 0, 0, 1);
        let second = (2..u32::MAX)
            .map(|i| Ipv4Addr::from(u32::from(first) + i))
            .find(|addr| local_slot_v4(v4(addr.octets())) == local_slot_v4(v4(first.octets())))
            .unwrap();
        let set = local_set(&nets(&[&format!("{first}/32"), &format!("{second}/32")]));
        let slot = local_slot_v4(v4(first.octets()));
        assert_eq!(set.exact_v4[slot], v4(first.octets()));
        assert_eq!(set.count_v4, 1);
        assert_eq!(
            set.v4[0],
            LocalPrefixV4 {
                prefix: v4(second.octets()),
                mask: u32::MAX
            }
        );
    }

    #[test]
    fn an_empty_set_has_no_address_in_any_slot() {
        let set = LocalSet::empty();
        assert!((0..LOCAL_SLOTS_V4).all(|slot| !set.v4_slot_used(slot)));
        assert!((0..LOCAL_SLOTS_V6).all(|slot| !set.v6_slot_used(slot)));
        assert_eq!((set.count_v4, set.count_v6, set.flags), (0, 0, 0));
        assert_eq!(local_set(&[]), set);
    }

    #[test]
    fn a_family_beyond_the_capacity_counts_every_address_as_local() {
        let mut many: Vec<IpNet> = (0..=MAX_LOCAL_V4)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap())
            .collect();
        many.push("2001:db8::1/128".parse().unwrap());
        let set = local_set(&many);
        assert_eq!(set.flags, local_flag::ALL_V4);
        assert_eq!(set.count_v4, 0);
        let full = local_set(&many[..MAX_LOCAL_V4]);
        assert_eq!((full.flags, full.count_v4 as usize), (0, MAX_LOCAL_V4));
        // Host addresses fill the slots before the list: far more than the
        // list holds still fit.
        let hosts: Vec<IpNet> = (0..128)
            .map(|i| format!("10.0.{}.{}/32", i / 256, i % 256).parse().unwrap())
            .collect();
        assert_eq!(local_set(&hosts).flags, 0);
    }
}
