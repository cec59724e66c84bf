//! Bans in the maps: read the ban set from the tries, and move the maps from
//! one ban set to another.
//!
//! The tries are the truth; the IPv4 states, the per-/24 entries and the
//! IPv6 summary are shortcuts in front of them. During a change every /24
//! whose state changes is first set to "ask the trie" (EXACT) and the IPv6
//! summary to the union of old and new, so while prefixes come and go the
//! data plane follows the tries; then the final states are written.

use std::collections::BTreeMap;

use aya::maps::{MapError, lpm_trie::Key};
use dockfw_common::{BanValue, ban_state, config_flag};
use ipnet::IpNet;

use super::{Maps, WriteError};
use crate::{bans::BanSet, summary::PrefixSummary};

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
    let old_tables = old.tables();
    let new_tables = new.tables();
    let capacity = maps.capacities().map_err(map_error("map info"))?.ban24;
    if new_tables.partial_v4.len() > capacity as usize {
        return Err(WriteError::Capacity {
            what: "partially banned IPv4 /24s",
            map: dockfw_common::BAN24_MAP,
            needed: new_tables.partial_v4.len(),
            active: 0,
            capacity,
            hint: "raise --max-bans (takes effect when the maps are created: `dockfw detach` first)",
        });
    }

    // 1. Changing /24s ask the trie; IPv6 looks at the union.
    let union_v6 = old_tables.summary_v6.union(&new_tables.summary_v6);
    write_flags(maps, union_v6.always_v6)?;
    write_summary_v6(maps, &old_tables.summary_v6, &union_v6)?;
    let mut transition = old_tables.states_v4.clone();
    for (index, (old_word, new_word)) in old_tables
        .states_v4
        .iter()
        .zip(&new_tables.states_v4)
        .enumerate()
    {
        if old_word != new_word {
            let mut word = *old_word;
            for slot in 0..32 {
                let shift = slot * 2;
                if (old_word >> shift) & 3 != (new_word >> shift) & 3 {
                    word |= ban_state::EXACT << shift;
                }
            }
            transition[index] = word;
        }
    }
    write_states(maps, &old_tables.states_v4, &transition)?;

    // 2. The tries.
    let old_values: BTreeMap<IpNet, (u64, u64)> = old_effective
        .iter()
        .map(|(net, effective, own)| (*net, (*effective, *own)))
        .collect();
    for (net, effective, own) in &new_effective {
        if old_values.get(net) != Some(&(*effective, *own)) {
            let value = BanValue {
                expires_ns: *effective,
                own_expires_ns: *own,
            };
            insert(maps, net, value)?;
        }
    }
    let kept: std::collections::BTreeSet<&IpNet> = new.iter().map(|(net, _)| net).collect();
    for (net, ..) in &old_effective {
        if !kept.contains(net) {
            remove(maps, net)?;
        }
    }

    // 3. Per-/24 entries, then the final states and summary.
    for (bucket, entry) in &new_tables.partial_v4 {
        if old_tables.partial_v4.get(bucket) != Some(entry) {
            maps.ban24
                .insert(bucket, entry, 0)
                .map_err(map_error(dockfw_common::BAN24_MAP))?;
        }
    }
    write_states(maps, &transition, &new_tables.states_v4)?;
    for bucket in old_tables.partial_v4.keys() {
        if !new_tables.partial_v4.contains_key(bucket) {
            match maps.ban24.remove(bucket) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => {
                    return Err(WriteError::Map {
                        map: dockfw_common::BAN24_MAP,
                        source,
                    });
                }
            }
        }
    }
    write_summary_v6(maps, &union_v6, &new_tables.summary_v6)?;
    write_flags(maps, new_tables.summary_v6.always_v6)
}

/// Rewrites every shortcut from the tries' content: after re-adopting pins
/// whose previous writer may have died half-way through an update.
pub fn resync_bans(maps: &mut Maps, bans: &BanSet) -> Result<(), WriteError> {
    let tables = bans.tables();
    for (index, word) in tables.states_v4.iter().enumerate() {
        maps.ban_states_v4
            .set(index as u32, *word, 0)
            .map_err(map_error(dockfw_common::BAN_STATES_V4_MAP))?;
    }
    let stale: Vec<u32> = maps
        .ban24
        .keys()
        .filter_map(Result::ok)
        .filter(|bucket| !tables.partial_v4.contains_key(bucket))
        .collect();
    for bucket in stale {
        let _ = maps.ban24.remove(&bucket);
    }
    for (bucket, entry) in &tables.partial_v4 {
        maps.ban24
            .insert(bucket, entry, 0)
            .map_err(map_error(dockfw_common::BAN24_MAP))?;
    }
    for (index, word) in tables.summary_v6.v6.iter().enumerate() {
        maps.ban_summary_v6
            .set(index as u32, *word, 0)
            .map_err(map_error(dockfw_common::BAN_SUMMARY_V6_MAP))?;
    }
    write_flags(maps, tables.summary_v6.always_v6)
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

/// Writes the IPv4 state words that differ between `from` and `to`.
fn write_states(maps: &mut Maps, from: &[u64], to: &[u64]) -> Result<(), WriteError> {
    for (index, (old, new)) in from.iter().zip(to).enumerate() {
        if old != new {
            maps.ban_states_v4
                .set(index as u32, *new, 0)
                .map_err(map_error(dockfw_common::BAN_STATES_V4_MAP))?;
        }
    }
    Ok(())
}

/// Writes the IPv6 summary words that differ between `from` and `to`.
fn write_summary_v6(
    maps: &mut Maps,
    from: &PrefixSummary,
    to: &PrefixSummary,
) -> Result<(), WriteError> {
    for (index, (old, new)) in from.v6.iter().zip(&to.v6).enumerate() {
        if old != new {
            maps.ban_summary_v6
                .set(index as u32, *new, 0)
                .map_err(map_error(dockfw_common::BAN_SUMMARY_V6_MAP))?;
        }
    }
    Ok(())
}

fn write_flags(maps: &mut Maps, always_v6: bool) -> Result<(), WriteError> {
    let mut config = maps
        .config
        .get(&0, 0)
        .map_err(map_error(dockfw_common::CONFIG_MAP))?;
    let mut flags = config.flags & !config_flag::BAN_LOOKUP_ALWAYS_V6;
    if always_v6 {
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
