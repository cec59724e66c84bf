//! The rate-limit patterns that become XDP token buckets (only with
//! `--mirror-rate-limits`):
//!
//! - `... -m limit|hashlimit --...-upto R -j ACCEPT` (or a RETURN out of
//!   DOCKER-USER) followed, after LOG rules only, by a DROP with the same
//!   other conditions: pass within the bucket, drop beyond it;
//! - `... -m hashlimit --hashlimit-above R -j DROP`: the same bucket.
//!
//! This is opt-in because it is not exactly sound: two token buckets with
//! the same rate and burst fed the same packets agree, but xt_limit and
//! xt_hashlimit count time in jiffies and credits while the data plane
//! counts nanoseconds, so near the limit XDP can drop a packet netfilter
//! would have let through. The data plane's per-source buckets are per
//! address (IPv4) or per /64 (IPv6): a hashlimit keyed more finely (source
//! port, an IPv6 source mask longer than 64) is not translated.

use super::{
    class::Approx,
    matcher::{Ctx, conditions},
    rule::{ClauseKind, HashLimitSpec, ParsedRule, Target, parse_rule},
    save::SavedRule,
    walk::plain_clauses,
};
use crate::model::{Family, Per, Rate, RateLimit};

/// A rate limit to emit.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The packets it applies to (the rule without its limit condition).
    pub class: Approx,
    /// The bucket.
    pub limit: RateLimit,
    /// A remark for the report.
    pub note: Option<String>,
}

/// Targets between a limited ACCEPT and its DROP that give no verdict.
const SKIPPABLE: &[&str] = &["LOG", "NFLOG", "ULOG"];

/// The plan for `rule` when it is one of the patterns.
pub fn plan(
    ctx: &Ctx<'_>,
    rule: &ParsedRule,
    guard: &Approx,
    rest: Option<&[SavedRule]>,
    leaves_chain: bool,
) -> Option<Plan> {
    let mut limits = rule.clauses.iter().filter(|clause| {
        matches!(
            clause.kind,
            ClauseKind::Limit { .. } | ClauseKind::HashLimit(_)
        )
    });
    let limit = limits.next()?;
    if limits.next().is_some() || limit.negated {
        return None;
    }
    let plain = plain_clauses(&rule.clauses);
    let (rest_match, _) = conditions(ctx, &plain);
    let class = guard.and(&rest_match, ctx.space);
    let family = ctx.space.family;
    let (bucket, note) = match (&rule.target, &limit.kind) {
        (Target::Accept, kind) | (Target::Return, kind)
            if rule.target == Target::Accept || leaves_chain =>
        {
            let drop = next_verdict(rest?)?;
            let drop_rule = parse_rule(drop.args.as_deref());
            if drop_rule.target != Target::Drop || plain_clauses(&drop_rule.clauses) != plain {
                return None;
            }
            let bucket = match kind {
                ClauseKind::Limit { rate, burst } => {
                    bucket(rate.count, rate.per_ns, *burst, Per::Port)
                }
                ClauseKind::HashLimit(spec) if !spec.above => hash_bucket(spec, family)?,
                _ => return None,
            };
            let note = format!(
                "with the DROP at {} rule {}: within the bucket XDP passes, beyond it XDP drops",
                drop.chain, drop.position
            );
            (bucket, Some(note))
        }
        (Target::Drop, ClauseKind::HashLimit(spec)) if spec.above => {
            (hash_bucket(spec, family)?, None)
        }
        _ => return None,
    };
    Some(Plan {
        class,
        limit: bucket,
        note,
    })
}

fn bucket(count: u64, per_ns: u64, burst: u32, per: Per) -> RateLimit {
    RateLimit {
        rate: Rate { count, per_ns },
        burst: burst.max(1),
        per,
        total: None,
    }
}

/// The data plane's bucket for a hashlimit, when it is not coarser than
/// netfilter's.
fn hash_bucket(spec: &HashLimitSpec, family: Family) -> Option<RateLimit> {
    let rate = spec.rate?;
    let has = |word: &str| spec.mode.iter().any(|mode| mode == word);
    if has("srcport") {
        return None;
    }
    let per = if has("srcip") {
        let (full, finest) = match family {
            Family::V4 => (32, 32),
            Family::V6 => (128, 64),
        };
        if spec.srcmask.unwrap_or(full) > finest {
            return None;
        }
        Per::Source
    } else {
        Per::Port
    };
    Some(bucket(rate.count, rate.per_ns, spec.burst, per))
}

/// The next rule after `rest`'s LOG rules.
fn next_verdict(rest: &[SavedRule]) -> Option<&SavedRule> {
    rest.iter().find(|saved| {
        let rule = parse_rule(saved.args.as_deref());
        !matches!(&rule.target, Target::Named(name) if SKIPPABLE.contains(&name.as_str()))
            && rule.target != Target::None
    })
}
