//! Pinned maps left by another dockfw version: re-adopting a map whose key
//! or value layout differs would make the new programs misread it (or the
//! verifier reject them with an obscure message). Each existing pin is
//! checked against this build's ABI before anything is loaded.

use std::{mem::size_of, path::Path};

use aya::maps::{MapInfo, MapType};
use dockfw_common::{
    BAN_REFINE_V6_MAP, BAN_STATES_V4_MAP, BAN_SUMMARY_V6_MAP, BAN24_INDEX_MAP, BAN24_MAP,
    BAN64_V6_MAP, BAN128_V6_MAP, BANS_V4_MAP, BANS_V6_MAP, Ban24, Ban64, BanValue, CONFIG_MAP,
    Config, Counter, EVENT_BUDGET_MAP, EVENTS_MAP, FRAGS_MAP, FragKey, FragValue, GLOBAL_STATS_MAP,
    IFACE_MASKS_MAP, IfaceMaskKey, LOCAL_ADDRS_MAP, LocalSet, POLICIES_MAP, PORT_ADDRS_MAP,
    PORT_INDEX_MAP, PortKey, PortPolicy, RATE_AGGREGATE_MAP, RATE_SOURCES_MAP,
    RULE_SOURCE_NODES_MAP, RULE_SOURCE_ROOTS_MAP, RULE_SOURCE_SUMMARY_V4_MAP,
    RULE_SOURCE_SUMMARY_V6_MAP, RULE_SOURCES_V4_MAP, RULE_SOURCES_V6_MAP, RULES_MAP, RateKey,
    RuleAction, STATS_MAP, SourceKeyV4, SourceKeyV6,
};

use super::LoadError;

/// LPM trie keys carry a 32-bit prefix length before the data.
const LPM_PREFIX: usize = 4;

/// (key size, value size, map type) as this build's programs use them.
fn expected_layout(name: &str) -> Option<(usize, usize, MapType)> {
    let u32_key = size_of::<u32>();
    let (key, value) = match name {
        CONFIG_MAP => (u32_key, size_of::<Config>()),
        LOCAL_ADDRS_MAP => (u32_key, size_of::<LocalSet>()),
        PORT_INDEX_MAP | RULE_SOURCE_ROOTS_MAP | BAN24_INDEX_MAP => (u32_key, size_of::<u32>()),
        PORT_ADDRS_MAP => (size_of::<PortKey>(), size_of::<u32>()),
        POLICIES_MAP => (u32_key, size_of::<PortPolicy>()),
        RULES_MAP => (u32_key, size_of::<RuleAction>()),
        BANS_V4_MAP => (LPM_PREFIX + 4, size_of::<BanValue>()),
        BANS_V6_MAP => (LPM_PREFIX + 16, size_of::<BanValue>()),
        BAN64_V6_MAP => (8, size_of::<Ban64>()),
        BAN128_V6_MAP => (16, size_of::<u64>()),
        BAN_STATES_V4_MAP
        | BAN_SUMMARY_V6_MAP
        | BAN_REFINE_V6_MAP
        | RULE_SOURCE_SUMMARY_V4_MAP
        | RULE_SOURCE_SUMMARY_V6_MAP
        | RULE_SOURCE_NODES_MAP
        | RATE_AGGREGATE_MAP
        | EVENT_BUDGET_MAP => (u32_key, size_of::<u64>()),
        BAN24_MAP => (u32_key, size_of::<Ban24>()),
        RULE_SOURCES_V4_MAP => (size_of::<SourceKeyV4>(), size_of::<u32>()),
        RULE_SOURCES_V6_MAP => (LPM_PREFIX + size_of::<SourceKeyV6>(), size_of::<u32>()),
        IFACE_MASKS_MAP => (size_of::<IfaceMaskKey>(), size_of::<u32>()),
        RATE_SOURCES_MAP => (size_of::<RateKey>(), size_of::<u64>()),
        STATS_MAP | GLOBAL_STATS_MAP => (u32_key, size_of::<Counter>()),
        FRAGS_MAP => (size_of::<FragKey>(), size_of::<FragValue>()),
        EVENTS_MAP => (0, 0),
        _ => return None,
    };
    let map_type = match name {
        BANS_V4_MAP | BANS_V6_MAP | RULE_SOURCES_V6_MAP => MapType::LpmTrie,
        PORT_ADDRS_MAP | RULE_SOURCES_V4_MAP | IFACE_MASKS_MAP | BAN64_V6_MAP | BAN128_V6_MAP => {
            MapType::Hash
        }
        RATE_SOURCES_MAP | FRAGS_MAP => MapType::LruHash,
        STATS_MAP | GLOBAL_STATS_MAP => MapType::PerCpuArray,
        EVENTS_MAP => MapType::RingBuf,
        _ => MapType::Array,
    };
    Some((key, value, map_type))
}

/// Checks every pinned map under `map_dir` that this build would re-adopt.
/// With `replace`, pins of [`dockfw_common::REBUILT_PINS`] in another layout
/// are returned for the caller to replace (once every other pin passed);
/// without, they are refused like the rest.
pub fn check_pinned_maps(map_dir: &Path, replace: bool) -> Result<Vec<&'static str>, LoadError> {
    let mut rebuilt = Vec::new();
    for name in dockfw_common::PINNED_MAPS {
        let path = map_dir.join(name);
        if !path.exists() {
            continue;
        }
        let Some((key, value, map_type)) = expected_layout(name) else {
            continue;
        };
        let info =
            MapInfo::from_pin(&path).map_err(|source| LoadError::MapType { name, source })?;
        let found = (info.key_size() as usize, info.value_size() as usize);
        let same_type = info.map_type().is_ok_and(|found| found == map_type);
        if found != (key, value) || !same_type {
            if replace && dockfw_common::REBUILT_PINS.contains(name) {
                rebuilt.push(*name);
                continue;
            }
            return Err(LoadError::IncompatiblePin {
                name,
                path,
                found,
                expected: (key, value),
            });
        }
    }
    Ok(rebuilt)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pinned_map_has_an_expected_layout() {
        for name in dockfw_common::PINNED_MAPS {
            assert!(
                super::expected_layout(name).is_some(),
                "{name} has no expected layout"
            );
        }
    }
}
