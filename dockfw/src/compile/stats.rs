//! Statistic ids: stable numbers for "this port's unmatched traffic" or "rule
//! R on port P", so counters, rate-limit buckets and event budgets survive
//! policy reloads and daemon restarts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::BindingKey;

/// What a statistic id counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StatOwner {
    /// Packets to the port that no rule matched.
    Unmatched(BindingKey),
    /// Packets to the port from banned sources.
    Banned(BindingKey),
    /// Non-first fragments to the port.
    Fragments(BindingKey),
    /// A rule (by name) on a port.
    Rule(BindingKey, String),
}

impl StatOwner {
    /// The port the statistic belongs to.
    pub fn key(&self) -> &BindingKey {
        match self {
            Self::Unmatched(key)
            | Self::Banned(key)
            | Self::Fragments(key)
            | Self::Rule(key, _) => key,
        }
    }
}

/// The statistic-id space is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "statistic ids exhausted: the policy needs more than {capacity} (one per port for unmatched, \
     banned and fragment traffic, one per rule per port); raise --max-stats"
)]
pub struct StatsExhausted {
    /// Capacity in ids.
    pub capacity: u32,
}

/// Allocates statistic ids. Id 0 is never used ([`dockfw_common::STAT_NONE`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRegistry {
    #[serde(with = "pairs")]
    ids: BTreeMap<StatOwner, u32>,
    free: BTreeSet<u32>,
    next: u32,
    /// Ids handed out since the last [`StatRegistry::take_fresh`]: their
    /// counters and buckets must be zeroed before the policy using them is
    /// activated (the id may have counted something else before).
    #[serde(skip)]
    fresh: Vec<u32>,
}

impl StatRegistry {
    /// The id of `owner`, allocating one if needed.
    pub fn assign(&mut self, owner: StatOwner, capacity: u32) -> Result<u32, StatsExhausted> {
        if let Some(id) = self.ids.get(&owner) {
            return Ok(*id);
        }
        let id = match self.free.pop_first() {
            Some(id) => id,
            None => {
                let id = self.next.max(1);
                if id >= capacity {
                    return Err(StatsExhausted { capacity });
                }
                self.next = id + 1;
                id
            }
        };
        self.ids.insert(owner, id);
        self.fresh.push(id);
        Ok(id)
    }

    /// Releases every id whose owner is not in `keep`.
    pub fn retain(&mut self, keep: &BTreeSet<StatOwner>) {
        let gone: Vec<StatOwner> = self
            .ids
            .keys()
            .filter(|owner| !keep.contains(*owner))
            .cloned()
            .collect();
        for owner in gone {
            if let Some(id) = self.ids.remove(&owner) {
                self.free.insert(id);
            }
        }
    }

    /// Ids allocated since the last call.
    pub fn take_fresh(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.fresh)
    }

    /// The owner of an id.
    pub fn owner(&self, id: u32) -> Option<&StatOwner> {
        self.ids
            .iter()
            .find_map(|(owner, found)| (*found == id).then_some(owner))
    }

    /// Every (owner, id) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&StatOwner, u32)> {
        self.ids.iter().map(|(owner, id)| (owner, *id))
    }

    /// The id of an owner, if allocated.
    pub fn get(&self, owner: &StatOwner) -> Option<u32> {
        self.ids.get(owner).copied()
    }
}

/// A map with structured keys as a list of pairs (JSON keys must be
/// strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::StatOwner;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<StatOwner, u32>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<StatOwner, u32>, D::Error> {
        Ok(Vec::<(StatOwner, u32)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Proto};

    fn key(port: u16) -> BindingKey {
        BindingKey {
            family: Family::V4,
            proto: Proto::Tcp,
            addr: None,
            port,
        }
    }

    #[test]
    fn ids_are_stable_recycled_and_never_zero() {
        let mut registry = StatRegistry::default();
        let a = registry.assign(StatOwner::Unmatched(key(80)), 10).unwrap();
        let b = registry.assign(StatOwner::Banned(key(80)), 10).unwrap();
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(
            registry.assign(StatOwner::Unmatched(key(80)), 10).unwrap(),
            a
        );
        assert_eq!(registry.take_fresh(), vec![a, b]);

        let keep = BTreeSet::from([StatOwner::Banned(key(80))]);
        registry.retain(&keep);
        let c = registry
            .assign(StatOwner::Rule(key(81), "r".into()), 10)
            .unwrap();
        assert_eq!(c, a, "a released id is reused");
        assert_eq!(registry.take_fresh(), vec![c], "and reported fresh");
    }

    #[test]
    fn the_registry_round_trips_through_json() {
        let mut registry = StatRegistry::default();
        registry
            .assign(StatOwner::Rule(key(80), "r".into()), 10)
            .unwrap();
        registry.assign(StatOwner::Banned(key(81)), 10).unwrap();
        registry.take_fresh();
        let json = serde_json::to_string(&registry).unwrap();
        assert_eq!(
            serde_json::from_str::<StatRegistry>(&json).unwrap(),
            registry
        );
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut registry = StatRegistry::default();
        for port in 1..3 {
            registry.assign(StatOwner::Unmatched(key(port)), 3).unwrap();
        }
        assert_eq!(
            registry.assign(StatOwner::Unmatched(key(9)), 3),
            Err(StatsExhausted { capacity: 3 })
        );
    }
}
