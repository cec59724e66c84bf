//! Rate limits: GCRA token buckets per source (an LRU map, so a spoofed
//! flood evicts old sources instead of growing) and per port or aggregate
//! (an array indexed by statistic id, so the cap holds whatever the LRU
//! does).

use dockfw_common::{RateKey, RuleAction, family, rule_flag};

use crate::{
    classify::address_bytes,
    clock::Clock,
    maps::{DFW_RL_AGG, DFW_RL_SRC},
    parse::Packet,
};

/// GCRA (a token bucket kept as one "theoretical arrival time"): admit when
/// the next arrival time stays within `burst_ns` of now.
#[inline(always)]
pub fn gcra_next(tat: u64, now: u64, interval_ns: u64, burst_ns: u64) -> Option<u64> {
    let start = if tat > now { tat } else { now };
    let next = start + interval_ns;
    if next - now > burst_ns {
        None
    } else {
        Some(next)
    }
}

/// The per-source bucket key: IPv4 as `::ffff:a.b.c.d`, IPv6 by its /64 (one
/// host's allocation, so an attacker cannot mint fresh buckets by rotating
/// the low bits).
#[inline(always)]
fn source_bucket_key(stat_id: u32, packet: &Packet) -> RateKey {
    let words = if packet.family == family::V4 {
        [0, 0, u32::from_ne_bytes([0, 0, 0xff, 0xff]), packet.src[0]]
    } else {
        [packet.src[0], packet.src[1], 0, 0]
    };
    RateKey {
        stat_id,
        addr: address_bytes(words),
    }
}

/// Both buckets (per source, then per port aggregate) must admit the packet;
/// only then are they spent. Concurrent CPUs may race on the same bucket and
/// admit a packet more than the rate; that errs towards passing.
#[inline(always)]
pub fn within_rate(rule: &RuleAction, packet: &Packet, commit: bool, clock: &mut Clock) -> bool {
    let now = clock.now();
    let per_source = rule.flags & rule_flag::PER_SOURCE != 0;
    let (aggregate_interval, aggregate_burst) = if per_source {
        (rule.aggregate_interval_ns, rule.aggregate_burst_ns)
    } else {
        (rule.interval_ns, rule.burst_ns)
    };

    let source_key = source_bucket_key(rule.stat_id, packet);
    let mut source_next = 0;
    let mut source_slot: Option<*mut u64> = None;
    if per_source {
        source_slot = DFW_RL_SRC.get_ptr_mut(source_key);
        let tat = match source_slot {
            // SAFETY: a pointer from a successful lookup; u64 read.
            Some(slot) => unsafe { *slot },
            None => 0,
        };
        match gcra_next(tat, now, rule.interval_ns, rule.burst_ns) {
            Some(next) => source_next = next,
            None => return false,
        }
    }

    let aggregate_slot = if aggregate_interval != 0 {
        DFW_RL_AGG.get_ptr_mut(rule.stat_id)
    } else {
        None
    };
    let mut aggregate_next = 0;
    if let Some(slot) = aggregate_slot {
        // SAFETY: a pointer into the array from a successful lookup.
        let tat = unsafe { *slot };
        match gcra_next(tat, now, aggregate_interval, aggregate_burst) {
            Some(next) => aggregate_next = next,
            None => return false,
        }
    }

    if commit {
        if per_source {
            match source_slot {
                // SAFETY: as above; a plain u64 store.
                Some(slot) => unsafe { *slot = source_next },
                None => {
                    let _ = DFW_RL_SRC.insert(source_key, source_next, 0);
                }
            }
        }
        if let Some(slot) = aggregate_slot {
            // SAFETY: as above.
            unsafe { *slot = aggregate_next };
        }
    }
    true
}
