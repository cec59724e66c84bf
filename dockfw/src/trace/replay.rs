//! Rate limits when replaying a capture.
//!
//! A trace never spends a token, so against the live buckets every packet of
//! a replayed flood would look like the first one. For a capture the
//! buckets are therefore replayed in user space, at the capture's own
//! timestamps, with the rule's parameters read from the live maps and the
//! data plane's arithmetic (GCRA, per source then per port aggregate), all
//! buckets starting full.

use std::{collections::HashMap, net::IpAddr};

use dockfw_common::{RuleAction, rule_flag};

/// The buckets of a replay.
#[derive(Debug, Default)]
pub struct RateReplay {
    /// Theoretical arrival time per (statistic id, source key).
    sources: HashMap<(u32, [u8; 16]), u64>,
    /// Theoretical arrival time per statistic id.
    aggregate: HashMap<u32, u64>,
}

/// The data plane's GCRA step: the next arrival time if the packet is
/// admitted.
fn gcra_next(tat: u64, now: u64, interval_ns: u64, burst_ns: u64) -> Option<u64> {
    let next = tat.max(now).saturating_add(interval_ns);
    (next - now <= burst_ns).then_some(next)
}

/// The per-source bucket key, as the data plane forms it: IPv4 mapped into
/// IPv6, IPv6 by its /64.
fn source_key(src: IpAddr) -> [u8; 16] {
    match src {
        IpAddr::V4(addr) => addr.to_ipv6_mapped().octets(),
        IpAddr::V6(addr) => {
            let mut octets = addr.octets();
            octets[8..].fill(0);
            octets
        }
    }
}

impl RateReplay {
    /// Whether `rule` admits a packet from `src` at `now_ns`; spends the
    /// tokens when it does, like the data plane.
    pub fn admit(&mut self, rule: &RuleAction, src: IpAddr, now_ns: u64) -> bool {
        let per_source = rule.flags & rule_flag::PER_SOURCE != 0;
        let (aggregate_interval, aggregate_burst) = if per_source {
            (rule.aggregate_interval_ns, rule.aggregate_burst_ns)
        } else {
            (rule.interval_ns, rule.burst_ns)
        };
        let key = (rule.stat_id, source_key(src));
        let mut source_next = None;
        if per_source {
            let tat = self.sources.get(&key).copied().unwrap_or(0);
            match gcra_next(tat, now_ns, rule.interval_ns, rule.burst_ns) {
                Some(next) => source_next = Some(next),
                None => return false,
            }
        }
        let mut aggregate_next = None;
        if aggregate_interval != 0 {
            let tat = self.aggregate.get(&rule.stat_id).copied().unwrap_or(0);
            match gcra_next(tat, now_ns, aggregate_interval, aggregate_burst) {
                Some(next) => aggregate_next = Some(next),
                None => return false,
            }
        }
        if let Some(next) = source_next {
            self.sources.insert(key, next);
        }
        if let Some(next) = aggregate_next {
            self.aggregate.insert(rule.stat_id, next);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn rule(per_source: bool, per_second: u64, burst: u64) -> RuleAction {
        let interval_ns = SECOND / per_second;
        RuleAction {
            stat_id: 9,
            flags: if per_source { rule_flag::PER_SOURCE } else { 0 },
            interval_ns,
            burst_ns: interval_ns * burst,
            ..RuleAction::default()
        }
    }

    #[test]
    fn a_burst_then_the_rate_per_source() {
        let rule = rule(true, 10, 3);
        let mut replay = RateReplay::default();
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let start = 1_000 * SECOND;
        let first: Vec<bool> = (0..4).map(|_| replay.admit(&rule, a, start)).collect();
        assert_eq!(first, [true, true, true, false]);
        assert!(
            replay.admit(&rule, b, start),
            "another source, another bucket"
        );
        assert!(replay.admit(&rule, a, start + SECOND / 10), "refilled");
    }

    #[test]
    fn per_port_buckets_are_shared_and_ipv6_counts_per_64() {
        let rule = rule(false, 1, 2);
        let mut replay = RateReplay::default();
        let now = 5 * SECOND;
        assert!(replay.admit(&rule, "2001:db8::1".parse().unwrap(), now));
        assert!(replay.admit(&rule, "2001:db8::2".parse().unwrap(), now));
        assert!(!replay.admit(&rule, "192.0.2.9".parse().unwrap(), now));
        assert_eq!(
            source_key("2001:db8:0:1::5".parse().unwrap()),
            source_key("2001:db8:0:1:ffff::".parse().unwrap())
        );
    }
}
