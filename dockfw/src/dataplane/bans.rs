//! Bans in the maps: read the ban set from the tries, and move the maps from
//! one ban set to another.
//!
//! The tries are the truth; the IPv4 states, the per-/24 entries and the
//! IPv6 summary are shortcuts in front of them. During a change every /24
//! whose state changes is first set to "ask the trie" (EXACT) and the IPv6
//! summary to the union of old and new, so while prefixes come and go the
//! data plane follows the tries; then the final states are written.
//!
//! A partially banned /24's entry lives in a slot of an array, found through
//! a per-/24 index. A new or changed entry goes to a fresh slot, then one
//! index store swaps it in; the old slot is released and reused only after
//! [`super::slots::REUSE_AFTER`], so a packet that read the old index still
//! reads the old, whole entry. A /24 that finds no free slot stays in state
//! EXACT (the trie answers for it).
//!
//! The exact IPv6 entries (per /64, and its /128s) follow the same rule: a
//! /64 whose verdicts change loses its entry before the tries change (the
//! trie answers for it), and gets the new one, after its /128s, once they
//! have. A /64 entry is only ever present with all its /128s; one that does
//! not fit is left out (the trie answers).

use std::collections::{BTreeMap, HashMap};

use aya::maps::{Array, MapData, MapError, lpm_trie::Key};
use dockfw_common::{Ban24, BanValue, ban_state, config_flag};
use ipnet::IpNet;

use super::{
    Maps, WriteError,
    slots::Slots,
    writer::{ignore_missing, map_errno},
};
use crate::{
    bans::{BanSet, BanTables, ExactV6, set_state_v4},
    summary::{PrefixSummary, V6Refinement},
};

/// Which slot holds each partially banned /24's entry, and which slots are
/// free.
#[derive(Clone, Debug)]
pub struct BanSlots {
    slots: Slots,
    /// /24 bucket -> slot.
    slot_of: HashMap<u32, u32>,
}

impl BanSlots {
    /// The allocation the maps hold for the partially banned /24s of
    /// `tables` (what the maps hold): one index read per such /24. Slots
    /// referenced from other /24s are stale (their state is not PARTIAL, so
    /// no packet reads them) and count as free. A slot released by another
    /// process just before counts as free too: a process starts in far more
    /// than [`super::slots::REUSE_AFTER`].
    fn scan(maps: &Maps, tables: &BanTables) -> Result<Self, WriteError> {
        let capacity = maps.ban24.len();
        let mut this = Self {
            slots: Slots::new(capacity),
            slot_of: HashMap::with_capacity(tables.partial_v4.len()),
        };
        for bucket in tables.partial_v4.keys() {
            let slot = maps
                .ban24_index
                .get(bucket, 0)
                .map_err(map_error(dockfw_common::BAN24_INDEX_MAP))?;
            // A slot two /24s point at (left by a writer that died) is
            // kept by the first; the other gets a fresh one.
            if slot != 0 && this.slots.mark_used(slot) {
                this.slot_of.insert(*bucket, slot);
            }
        }
        Ok(this)
    }

    /// Slots in use (for tests and status).
    pub fn in_use(&self) -> usize {
        self.slot_of.len()
    }
}

/// Writes `entry` for `bucket` into a fresh slot and swaps it in; the slot
/// it replaces is released. `false` when no slot is free (the /24 must then
/// stay in state EXACT).
fn place(
    maps: &mut Maps,
    slots: &mut BanSlots,
    bucket: u32,
    entry: &Ban24,
) -> Result<bool, WriteError> {
    let Some(slot) = slots.slots.alloc() else {
        return Ok(false);
    };
    maps.ban24
        .set(slot, *entry, 0)
        .map_err(map_error(dockfw_common::BAN24_MAP))?;
    maps.ban24_index
        .set(bucket, slot, 0)
        .map_err(map_error(dockfw_common::BAN24_INDEX_MAP))?;
    if let Some(old) = slots.slot_of.insert(bucket, slot) {
        slots.slots.release(old);
    }
    Ok(true)
}

/// Unlinks `bucket`'s entry (its state no longer says PARTIAL).
fn unlink(maps: &mut Maps, slots: &mut BanSlots, bucket: u32) -> Result<(), WriteError> {
    if let Some(old) = slots.slot_of.remove(&bucket) {
        maps.ban24_index
            .set(bucket, 0, 0)
            .map_err(map_error(dockfw_common::BAN24_INDEX_MAP))?;
        slots.slots.release(old);
    }
    Ok(())
}

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
    // More partly banned /24s than slots is no error: those beyond stay in
    // state EXACT and the trie answers for them.

    // 1. Changing /24s ask the trie; IPv6 looks at the union.
    let union_v6 = old_tables.summary_v6.union(&new_tables.summary_v6);
    let union_refine = old_tables.refine_v6.union(&new_tables.refine_v6);
    write_flags(maps, union_v6.always_v6)?;
    write_summary_v6(maps, Some(&old_tables.summary_v6), &union_v6)?;
    write_refine_v6(maps, Some(&old_tables.refine_v6), &union_refine)?;
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
    write_states(maps, Some(&old_tables.states_v4), &transition)?;
    unlink_exact_v6(maps, &old_tables.exact_v6, &new_tables.exact_v6)?;

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
    let mut slots = match maps.ban_slots.take() {
        Some(slots) => slots,
        None => BanSlots::scan(maps, &old_tables)?,
    };
    let mut final_states = new_tables.states_v4.clone();
    let mut homeless = Vec::new();
    // Words written whatever `transition` says: a /24 placed now may have
    // been left EXACT by an earlier update that found no slot for it.
    let mut placed_words = std::collections::BTreeSet::new();
    for (bucket, entry) in &new_tables.partial_v4 {
        let unchanged =
            old_tables.partial_v4.get(bucket) == Some(entry) && slots.slot_of.contains_key(bucket);
        if unchanged {
            continue;
        }
        if place(maps, &mut slots, *bucket, entry)? {
            placed_words.insert(bucket / 32);
        } else {
            set_state_v4(&mut final_states, *bucket, ban_state::EXACT);
            homeless.push(*bucket);
        }
    }
    write_states(maps, Some(&transition), &final_states)?;
    for index in placed_words {
        maps.ban_states_v4
            .set(index, final_states[index as usize], 0)
            .map_err(map_error(dockfw_common::BAN_STATES_V4_MAP))?;
    }
    for bucket in old_tables.partial_v4.keys() {
        if !new_tables.partial_v4.contains_key(bucket) {
            unlink(maps, &mut slots, *bucket)?;
        }
    }
    // A /24 that lost its slot is EXACT by now: its old entry can go.
    for bucket in homeless {
        unlink(maps, &mut slots, bucket)?;
    }
    maps.ban_slots = Some(slots);
    link_exact_v6(maps, &old_tables.exact_v6, &new_tables.exact_v6)?;
    write_summary_v6(maps, Some(&union_v6), &new_tables.summary_v6)?;
    write_refine_v6(maps, Some(&union_refine), &new_tables.refine_v6)?;
    write_flags(maps, new_tables.summary_v6.always_v6)
}

/// Rewrites every shortcut from the tries' content: after re-adopting pins
/// whose previous writer may have died half-way through an update.
pub fn resync_bans(maps: &mut Maps, bans: &BanSet) -> Result<(), WriteError> {
    let tables = bans.tables();
    // What the maps hold is unknown: every state goes to its final value,
    // but partially banned /24s ask the trie while their entries are put
    // right; then they turn PARTIAL.
    let mut transition = tables.states_v4.clone();
    for bucket in tables.partial_v4.keys() {
        set_state_v4(&mut transition, *bucket, ban_state::EXACT);
    }
    write_states(maps, None, &transition)?;
    let mut slots = BanSlots::scan(maps, &tables)?;
    let mut final_states = tables.states_v4.clone();
    for (bucket, entry) in &tables.partial_v4 {
        let held = match slots.slot_of.get(bucket) {
            Some(slot) => Some(
                maps.ban24
                    .get(slot, 0)
                    .map_err(map_error(dockfw_common::BAN24_MAP))?,
            ),
            None => None,
        };
        if held.as_ref() != Some(entry) && !place(maps, &mut slots, *bucket, entry)? {
            set_state_v4(&mut final_states, *bucket, ban_state::EXACT);
            unlink(maps, &mut slots, *bucket)?;
        }
    }
    write_states(maps, Some(&transition), &final_states)?;
    maps.ban_slots = Some(slots);
    resync_exact_v6(maps, &tables.exact_v6)?;
    write_refine_v6(maps, None, &tables.refine_v6)?;
    write_summary_v6(maps, None, &tables.summary_v6)?;
    write_flags(maps, tables.summary_v6.always_v6)
}

/// Key of [`dockfw_common::BAN64_V6_MAP`] for the /64 `prefix64`.
fn key64(prefix64: u64) -> [u8; 8] {
    prefix64.to_be_bytes()
}

/// Key of [`dockfw_common::BAN128_V6_MAP`] for the address `low` of the /64
/// `prefix64`.
fn key128(prefix64: u64, low: u64) -> [u8; 16] {
    ((u128::from(prefix64) << 64) | u128::from(low)).to_be_bytes()
}

/// Removes the /64 entries `new` changes (before the tries change).
fn unlink_exact_v6(
    maps: &mut Maps,
    old: &BTreeMap<u64, ExactV6>,
    new: &BTreeMap<u64, ExactV6>,
) -> Result<(), WriteError> {
    for (prefix, exact) in old {
        if new.get(prefix) != Some(exact) {
            ignore_missing(maps.ban64_v6.remove(&key64(*prefix)), BAN64)?;
        }
    }
    Ok(())
}

/// After the tries changed: drops the /128s of changed /64s that `new` no
/// longer has, then writes each changed /64's /128s and its entry.
fn link_exact_v6(
    maps: &mut Maps,
    old: &BTreeMap<u64, ExactV6>,
    new: &BTreeMap<u64, ExactV6>,
) -> Result<(), WriteError> {
    for (prefix, exact) in old {
        let kept = new.get(prefix);
        if kept == Some(exact) {
            continue;
        }
        for low in exact.hosts.keys() {
            if kept.is_none_or(|kept| !kept.hosts.contains_key(low)) {
                ignore_missing(maps.ban128_v6.remove(&key128(*prefix, *low)), BAN128)?;
            }
        }
    }
    let mut left_out = 0;
    for (prefix, exact) in new {
        if old.get(prefix) != Some(exact) && !link_slash64(maps, *prefix, exact)? {
            left_out += 1;
        }
    }
    warn_left_out(left_out);
    Ok(())
}

fn warn_left_out(left_out: usize) {
    if left_out > 0 {
        tracing::warn!(
            slash64s = left_out,
            "exact IPv6 ban entries do not fit (raise --max-bans): the ban trie decides for these /64s"
        );
    }
}

/// Writes every /128 of one /64, then its entry. `false` when a map is
/// full: the entry is left out (the trie answers for the /64).
fn link_slash64(maps: &mut Maps, prefix: u64, exact: &ExactV6) -> Result<bool, WriteError> {
    for (low, expiry) in &exact.hosts {
        let inserted = maps.ban128_v6.insert(key128(prefix, *low), *expiry, 0);
        if !fits(inserted, BAN128)? {
            return Ok(false);
        }
    }
    let inserted = maps.ban64_v6.insert(key64(prefix), exact.entry(), 0);
    fits(inserted, BAN64)
}

/// Puts the exact IPv6 entries right whatever the maps hold: /64 entries
/// that are wrong, or whose /128s are, go first; then the /128s; then the
/// missing /64 entries.
fn resync_exact_v6(maps: &mut Maps, exact: &BTreeMap<u64, ExactV6>) -> Result<(), WriteError> {
    let mut held64 = BTreeMap::new();
    for entry in maps.ban64_v6.iter() {
        let (key, value) = entry.map_err(map_error(BAN64))?;
        held64.insert(u64::from_be_bytes(key), value);
    }
    let mut held128 = BTreeMap::new();
    for entry in maps.ban128_v6.iter() {
        let (key, value) = entry.map_err(map_error(BAN128))?;
        let bits = u128::from_be_bytes(key);
        held128.insert(((bits >> 64) as u64, bits as u64), value);
    }
    let mut wanted128 = BTreeMap::new();
    for (prefix, slash64) in exact {
        for (low, expiry) in &slash64.hosts {
            wanted128.insert((*prefix, *low), *expiry);
        }
    }
    let mut dirty: std::collections::BTreeSet<u64> = held64
        .iter()
        .filter(|(prefix, held)| exact.get(*prefix).map(ExactV6::entry) != Some(**held))
        .map(|(prefix, _)| *prefix)
        .collect();
    for (key, expiry) in &held128 {
        if wanted128.get(key) != Some(expiry) {
            dirty.insert(key.0);
        }
    }
    for key in wanted128.keys() {
        if !held128.contains_key(key) {
            dirty.insert(key.0);
        }
    }
    for prefix in &dirty {
        if held64.contains_key(prefix) {
            ignore_missing(maps.ban64_v6.remove(&key64(*prefix)), BAN64)?;
        }
    }
    for (prefix, low) in held128.keys() {
        if !wanted128.contains_key(&(*prefix, *low)) {
            ignore_missing(maps.ban128_v6.remove(&key128(*prefix, *low)), BAN128)?;
        }
    }
    let mut left_out = 0;
    for (prefix, slash64) in exact {
        if (dirty.contains(prefix) || !held64.contains_key(prefix))
            && !link_slash64(maps, *prefix, slash64)?
        {
            left_out += 1;
        }
    }
    warn_left_out(left_out);
    Ok(())
}

const BAN64: &str = dockfw_common::BAN64_V6_MAP;
const BAN128: &str = dockfw_common::BAN128_V6_MAP;

/// `false` when an insert failed because the map is full (`E2BIG`).
fn fits(result: Result<(), MapError>, name: &'static str) -> Result<bool, WriteError> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if map_errno(&error) == Some(libc::E2BIG) => Ok(false),
        Err(source) => Err(WriteError::Map { map: name, source }),
    }
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
    match net {
        IpNet::V4(net) => ignore_missing(
            maps.bans_v4.remove(&Key::new(
                u32::from(net.prefix_len()),
                net.network().octets(),
            )),
            dockfw_common::BANS_V4_MAP,
        ),
        IpNet::V6(net) => ignore_missing(
            maps.bans_v6.remove(&Key::new(
                u32::from(net.prefix_len()),
                net.network().octets(),
            )),
            dockfw_common::BANS_V6_MAP,
        ),
    }
}

/// Writes the words of `to` into `array` from index `base`, skipping those
/// equal to `from`'s (what the map holds; `None`: unknown, write them all).
fn write_words(
    array: &mut Array<MapData, u64>,
    map: &'static str,
    base: u32,
    from: Option<&[u64]>,
    to: &[u64],
) -> Result<(), WriteError> {
    for (index, new) in to.iter().enumerate() {
        if from.is_some_and(|from| from.get(index) == Some(new)) {
            continue;
        }
        array
            .set(base + index as u32, *new, 0)
            .map_err(map_error(map))?;
    }
    Ok(())
}

/// Writes the IPv4 state words that differ between `from` and `to`.
fn write_states(maps: &mut Maps, from: Option<&[u64]>, to: &[u64]) -> Result<(), WriteError> {
    let map = dockfw_common::BAN_STATES_V4_MAP;
    write_words(&mut maps.ban_states_v4, map, 0, from, to)
}

/// Writes the IPv6 summary words that differ between `from` and `to`.
fn write_summary_v6(
    maps: &mut Maps,
    from: Option<&PrefixSummary>,
    to: &PrefixSummary,
) -> Result<(), WriteError> {
    let map = dockfw_common::BAN_SUMMARY_V6_MAP;
    let from = from.map(|from| from.v6.as_slice());
    write_words(&mut maps.ban_summary_v6, map, 0, from, &to.v6)
}

/// Writes the IPv6 refinement words that differ between `from` and `to`:
/// the map holds `short`, then `long`.
fn write_refine_v6(
    maps: &mut Maps,
    from: Option<&V6Refinement>,
    to: &V6Refinement,
) -> Result<(), WriteError> {
    let map = dockfw_common::BAN_REFINE_V6_MAP;
    let short = from.map(|from| from.short.as_slice());
    let long = from.map(|from| from.long.as_slice());
    write_words(&mut maps.ban_refine_v6, map, 0, short, &to.short)?;
    write_words(
        &mut maps.ban_refine_v6,
        map,
        to.short.len() as u32,
        long,
        &to.long,
    )
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
