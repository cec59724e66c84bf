//! Bans in the maps: read the ban set from the tries, and move the maps from
//! one ban set to another without a moment where a stored ban is invisible.
//!
//! The order keeps one invariant: while a trie holds a prefix, the summary
//! bits for it are set (a clear summary bit makes the data plane skip the
//! trie). So: write new and changed prefixes, set the union of old and new
//! summary bits, remove gone prefixes, then clear the bits no longer needed.

use aya::maps::{MapError, lpm_trie::Key};
use dockfw_common::{BanValue, config_flag};
use ipnet::IpNet;

use super::{Maps, WriteError};
use crate::bans::{BanSet, Summary};

fn map_error(map: &'static str) -> impl FnOnce(MapError) -> WriteError {
    move |source| WriteError::Map { map, source }
}

/// Reads the bans the maps hold (with their own expiries).
pub fn read_bans(maps: &Maps) -> Result<BanSet, WriteError> {
    let mut bans = BanSet::new();
    for entry in maps.bans_v4.iter() {
        let (key, value) = entry.map_err(map_error(dockfw_common::BANS_V4_MAP))?;
        let addr = std::net::Ipv4Addr::from(key.data());
        if let Ok(net) = ipnet::Ipv4Net::new(addr, key.prefix_len() as u8) {
            bans.insert(IpNet::V4(net), value.own_expires_ns);
        }
    }
    for entry in maps.bans_v6.iter() {
        let (key, value) = entry.map_err(map_error(dockfw_common::BANS_V6_MAP))?;
        let addr = std::net::Ipv6Addr::from(key.data());
        if let Ok(net) = ipnet::Ipv6Net::new(addr, key.prefix_len() as u8) {
            bans.insert(IpNet::V6(net), value.own_expires_ns);
        }
    }
    Ok(bans)
}

/// Checks that `bans` fits the tries.
pub fn check_capacity(maps: &Maps, bans: &BanSet) -> Result<(), WriteError> {
    let capacities = maps.capacities().map_err(map_error("map info"))?;
    let v4 = bans
        .iter()
        .filter(|(net, _)| matches!(net, IpNet::V4(_)))
        .count();
    let v6 = bans.len() - v4;
    for (what, map, needed, capacity) in [
        (
            "IPv4 bans",
            dockfw_common::BANS_V4_MAP,
            v4,
            capacities.bans_v4,
        ),
        (
            "IPv6 bans",
            dockfw_common::BANS_V6_MAP,
            v6,
            capacities.bans_v6,
        ),
    ] {
        if needed > capacity as usize {
            return Err(WriteError::Capacity {
                what,
                map,
                needed,
                active: 0,
                capacity,
                hint: "raise --max-bans (takes effect when the maps are created: `dockfw detach` first)",
            });
        }
    }
    Ok(())
}

/// Moves the maps from `old` (what they hold) to `new`.
pub fn write_bans(maps: &mut Maps, old: &BanSet, new: &BanSet) -> Result<(), WriteError> {
    check_capacity(maps, new)?;
    let old_effective = old.effective();
    let new_effective = new.effective();
    let old_summary = old.summary();
    let new_summary = new.summary();

    // 1. Flags that make the data plane consult the trie regardless.
    let mut union = new_summary.clone();
    union.always_v4 |= old_summary.always_v4;
    union.always_v6 |= old_summary.always_v6;
    write_flags(maps, &union)?;

    // 2. New and changed prefixes.
    let old_values: std::collections::BTreeMap<IpNet, (u64, u64)> = old_effective
        .iter()
        .map(|(net, effective, own)| (*net, (*effective, *own)))
        .collect();
    for (net, effective, own) in &new_effective {
        if old_values.get(net) == Some(&(*effective, *own)) {
            continue;
        }
        let value = BanValue {
            expires_ns: *effective,
            own_expires_ns: *own,
        };
        insert(maps, net, value)?;
    }

    // 3. Summary bits of both sets.
    for (index, word) in union.v4.iter_mut().enumerate() {
        *word |= old_summary.v4[index];
    }
    for (index, word) in union.v6.iter_mut().enumerate() {
        *word |= old_summary.v6[index];
    }
    write_words(maps, &old_summary, &union)?;

    // 4. Gone prefixes.
    let new_nets: std::collections::BTreeSet<IpNet> =
        new_effective.iter().map(|(net, ..)| *net).collect();
    for (net, ..) in &old_effective {
        if !new_nets.contains(net) {
            remove(maps, net)?;
        }
    }

    // 5. Only the new summary.
    write_words(maps, &union, &new_summary)?;
    write_flags(maps, &new_summary)
}

fn insert(maps: &mut Maps, net: &IpNet, value: BanValue) -> Result<(), WriteError> {
    match net {
        IpNet::V4(net) => maps
            .bans_v4
            .insert(
                &Key::new(u32::from(net.prefix_len()), net.network().octets()),
                value,
                0,
            )
            .map_err(map_error(dockfw_common::BANS_V4_MAP)),
        IpNet::V6(net) => maps
            .bans_v6
            .insert(
                &Key::new(u32::from(net.prefix_len()), net.network().octets()),
                value,
                0,
            )
            .map_err(map_error(dockfw_common::BANS_V6_MAP)),
    }
}

fn remove(maps: &mut Maps, net: &IpNet) -> Result<(), WriteError> {
    let result = match net {
        IpNet::V4(net) => maps.bans_v4.remove(&Key::new(
            u32::from(net.prefix_len()),
            net.network().octets(),
        )),
        IpNet::V6(net) => maps.bans_v6.remove(&Key::new(
            u32::from(net.prefix_len()),
            net.network().octets(),
        )),
    };
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(source) => Err(WriteError::Map {
            map: dockfw_common::BANS_V4_MAP,
            source,
        }),
    }
}

/// Writes the summary words that differ between `from` and `to`.
fn write_words(maps: &mut Maps, from: &Summary, to: &Summary) -> Result<(), WriteError> {
    for (index, (old, new)) in from.v4.iter().zip(&to.v4).enumerate() {
        if old != new {
            maps.ban_summary_v4
                .set(index as u32, *new, 0)
                .map_err(map_error(dockfw_common::BAN_SUMMARY_V4_MAP))?;
        }
    }
    for (index, (old, new)) in from.v6.iter().zip(&to.v6).enumerate() {
        if old != new {
            maps.ban_summary_v6
                .set(index as u32, *new, 0)
                .map_err(map_error(dockfw_common::BAN_SUMMARY_V6_MAP))?;
        }
    }
    Ok(())
}

fn write_flags(maps: &mut Maps, summary: &Summary) -> Result<(), WriteError> {
    let mut config = maps
        .config
        .get(&0, 0)
        .map_err(map_error(dockfw_common::CONFIG_MAP))?;
    let mut flags =
        config.flags & !(config_flag::BAN_LOOKUP_ALWAYS_V4 | config_flag::BAN_LOOKUP_ALWAYS_V6);
    if summary.always_v4 {
        flags |= config_flag::BAN_LOOKUP_ALWAYS_V4;
    }
    if summary.always_v6 {
        flags |= config_flag::BAN_LOOKUP_ALWAYS_V6;
    }
    if flags != config.flags {
        config.flags = flags;
        maps.config
            .set(0, config, 0)
            .map_err(map_error(dockfw_common::CONFIG_MAP))?;
    }
    Ok(())
}
