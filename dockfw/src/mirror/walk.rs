//! The walk: FORWARD up to its jump to DOCKER-USER, then DOCKER-USER with
//! the chains it jumps to inlined (bounded depth), turned into an ordered
//! list of XDP actions over packet classes.
//!
//! # Why the result is sound
//!
//! The data plane takes the first matching rule. The walk emits, in chain
//! order:
//!
//! - for a rule that may let a packet go on to Docker's chains (ACCEPT, a
//!   RETURN out of DOCKER-USER, a target that is not understood, a rule in
//!   FORWARD before DOCKER-USER): a *pass* over every packet the rule might
//!   match (`over`);
//! - for a DROP in DOCKER-USER or a chain it jumps to: a *drop* over the
//!   packets it surely matches (`under`), which also excludes, inside a
//!   user chain, every packet an earlier RETURN of that chain might match;
//! - nothing for a rule that cannot deliver a packet (DROP that is not
//!   translated, REJECT) or gives no verdict (LOG).
//!
//! So when XDP drops a packet with the rule emitted for DROP rule k, no
//! earlier rule could have accepted or returned it (each of those would have
//! matched it first as a pass); earlier rules it did match can only have
//! dropped or rejected it; and it surely matches rule k. Either way
//! DOCKER-USER does not let it through.

use super::{
    class::{Approx, Dnf},
    keys::{KeyView, MAX_DEPTH},
    matcher::{Ctx, conditions},
    report::{ChainState, Outcome, RuleReport},
    rule::{Clause, ClauseKind, ParsedRule, Target, parse_rule},
    save::{Ruleset, SavedRule},
};
use crate::model::{Action, RuleOrigin};

/// Targets that give no verdict: the packet goes on to the next rule.
const NO_VERDICT: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "TRACE",
    "MARK",
    "CONNMARK",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TCPMSS",
    "AUDIT",
    "CHECKSUM",
    "IDLETIMER",
    "LED",
    "SECMARK",
    "CONNSECMARK",
];

/// One XDP rule, over a union of classes (one data-plane rule per class).
#[derive(Clone, Debug, PartialEq)]
pub struct Emission {
    /// Rule name (`DOCKER-USER#3`, `DOCKER-USER#3>BLOCK#2`).
    pub name: String,
    /// Where it comes from.
    pub origin: RuleOrigin,
    /// What XDP does.
    pub action: Action,
    /// The packets it applies to.
    pub dnf: Dnf,
    /// Index of its report.
    pub report: usize,
}

/// Where a chain sits in the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// FORWARD before the jump to DOCKER-USER: only passes are emitted.
    Prefix,
    /// DOCKER-USER itself: RETURN leaves it for Docker's chains.
    Top,
    /// A chain DOCKER-USER jumps to: RETURN goes back to the caller.
    Sub,
}

/// The walk of one family.
pub struct Walker<'a> {
    /// Evaluation context (post-DNAT view).
    pub ctx: Ctx<'a>,
    /// The family's ruleset.
    pub ruleset: &'a Ruleset,
    /// Keys, for report labels.
    pub keys: &'a [KeyView],
    /// Whether limit/hashlimit patterns become rate limits.
    pub rate_limits: bool,
    /// `ipv4` / `ipv6`.
    pub family: &'static str,
    /// XDP rules in order.
    pub emissions: Vec<Emission>,
    /// One report per rule visited.
    pub reports: Vec<RuleReport>,
    /// Packets for which some earlier verdict is not mirrored exactly: a
    /// rate limit over them would see other traffic than netfilter's.
    pub(super) inexact: Dnf,
    /// Chains being walked (loop guard).
    pub(super) stack: Vec<String>,
}

impl<'a> Walker<'a> {
    /// A walker with nothing emitted yet.
    pub fn new(
        ctx: Ctx<'a>,
        ruleset: &'a Ruleset,
        keys: &'a [KeyView],
        rate_limits: bool,
        family: &'static str,
    ) -> Self {
        Self {
            ctx,
            ruleset,
            keys,
            rate_limits,
            family,
            emissions: Vec::new(),
            reports: Vec::new(),
            inexact: Dnf::none(),
            stack: Vec::new(),
        }
    }

    /// Walks FORWARD into DOCKER-USER.
    pub fn walk(&mut self) -> ChainState {
        if self.ruleset.chain("filter", "DOCKER-USER").is_none() {
            return ChainState::Missing;
        }
        let space = self.ctx.space;
        for saved in self.ruleset.rules("filter", "FORWARD") {
            let rule = parse_rule(saved.args.as_deref());
            let (matched, notes) = conditions(&self.ctx, &rule.clauses);
            if rule.target == Target::Named("DOCKER-USER".into()) {
                self.report(
                    saved,
                    String::new(),
                    Outcome::Jump {
                        chain: "DOCKER-USER".into(),
                    },
                );
                self.chain("DOCKER-USER", &matched, notes, "", Mode::Top);
                return ChainState::Mirrored;
            }
            let path = format!("FORWARD#{}", saved.position);
            let guard = Approx::always(space);
            self.rule(
                saved,
                &rule,
                &guard,
                &matched,
                notes,
                &path,
                Mode::Prefix,
                None,
            );
        }
        ChainState::NotReached
    }

    /// Walks a chain entered by the packets of `entry`; `entry_notes` say
    /// why `entry` is not exact.
    fn chain(
        &mut self,
        name: &str,
        entry: &Approx,
        entry_notes: Vec<String>,
        path: &str,
        mode: Mode,
    ) {
        self.stack.push(name.to_owned());
        let space = self.ctx.space;
        let mut guard = entry.clone();
        let mut guard_notes = entry_notes;
        let rules = self.ruleset.rules("filter", name);
        for (index, saved) in rules.iter().enumerate() {
            let rule = parse_rule(saved.args.as_deref());
            let (matched, own) = conditions(&self.ctx, &rule.clauses);
            let mut notes = guard_notes.clone();
            notes.extend(own.iter().cloned());
            let here = format!("{path}{name}#{}", saved.position);
            let rest = rules.get(index + 1..);
            let returns = self.rule(saved, &rule, &guard, &matched, notes, &here, mode, rest);
            if returns {
                // Inside a user chain: what may have returned skips the rest.
                guard = guard.and(&matched.not(space), space);
                if !matched.is_exact() {
                    guard_notes.push(format!(
                        "after {here}, which may return traffic ({})",
                        own.join("; ")
                    ));
                }
            }
        }
        self.stack.pop();
    }

    /// Handles one rule reached by the packets of `guard`; true when it
    /// returns from a user chain.
    #[expect(clippy::too_many_arguments, reason = "one rule's whole context")]
    fn rule(
        &mut self,
        saved: &SavedRule,
        rule: &ParsedRule,
        guard: &Approx,
        matched: &Approx,
        notes: Vec<String>,
        path: &str,
        mode: Mode,
        rest: Option<&[SavedRule]>,
    ) -> bool {
        let hit = &guard.and(matched, self.ctx.space);
        if self.rate_limits
            && mode != Mode::Prefix
            && self.rate_limit(saved, rule, guard, path, rest, mode)
        {
            return false;
        }
        match &rule.target {
            Target::None => self.no_effect(saved, path, "no verdict"),
            Target::Named(name) if NO_VERDICT.contains(&name.as_str()) => {
                self.no_effect(saved, path, &format!("{name} gives no verdict"));
            }
            Target::Named(name) if name == "SET" => {
                self.ctx.dynamic_sets = true;
                self.no_effect(
                    saved,
                    path,
                    "SET gives no verdict (later set matches are not mirrored)",
                );
            }
            Target::Accept => self.may_pass(saved, hit, notes, path, true),
            Target::Return if mode != Mode::Sub => self.may_pass(saved, hit, notes, path, true),
            Target::Return => {
                self.note_inexact(hit);
                let outcome = if hit.over.is_empty() {
                    Outcome::NoEffect {
                        reason: "matches no traffic to a published port".into(),
                    }
                } else if hit.is_exact() {
                    Outcome::NoEffect {
                        reason:
                            "returns to the calling chain; later rules here exclude its traffic"
                                .into(),
                    }
                } else {
                    Outcome::Shadow {
                        ports: self.labels(&hit.over),
                        reasons: notes,
                    }
                };
                self.report(saved, path.to_owned(), outcome);
                return true;
            }
            Target::Drop if mode == Mode::Prefix => {
                self.note_all(hit);
                self.report(
                    saved,
                    path.to_owned(),
                    Outcome::NetfilterOnly {
                        reasons: vec![
                            "a FORWARD rule before DOCKER-USER; only DOCKER-USER is mirrored"
                                .into(),
                        ],
                    },
                );
            }
            Target::Drop => self.drop(saved, hit, notes, path),
            Target::Reject => {
                self.note_all(hit);
                self.report(
                    saved,
                    path.to_owned(),
                    Outcome::NetfilterOnly {
                        reasons: vec!["REJECT answers the sender; the fast path only drops".into()],
                    },
                );
            }
            Target::Named(chain) | Target::Goto(chain)
                if mode != Mode::Prefix && self.ruleset.chain("filter", chain).is_some() =>
            {
                if self.stack.len() >= MAX_DEPTH || self.stack.contains(chain) {
                    let why = format!("jump to {chain} nested deeper than {MAX_DEPTH} or looping");
                    self.may_pass(saved, hit, vec![why], path, false);
                    return false;
                }
                self.report(
                    saved,
                    path.to_owned(),
                    Outcome::Jump {
                        chain: chain.clone(),
                    },
                );
                let prefix = format!("{path}>");
                self.chain(chain, hit, notes.clone(), &prefix, Mode::Sub);
                if matches!(rule.target, Target::Goto(_)) {
                    // Packets that leave a goto'd chain do not come back here.
                    if mode == Mode::Sub {
                        return true;
                    }
                    self.may_pass(saved, hit, notes, path, true);
                }
            }
            other => {
                let what = match other {
                    Target::Named(name) | Target::Goto(name) => name.clone(),
                    _ => format!("{other:?}"),
                };
                let why = format!("target {what} is not mirrored and may let packets through");
                self.may_pass(saved, hit, vec![why], path, false);
            }
        }
        false
    }
}

/// The clauses of a rule without `-m comment` and rate limits (to compare
/// a limited ACCEPT with the DROP after it).
pub fn plain_clauses(clauses: &[Clause]) -> Vec<Clause> {
    clauses
        .iter()
        .filter(|clause| {
            !matches!(
                clause.kind,
                ClauseKind::Always | ClauseKind::Limit { .. } | ClauseKind::HashLimit(_)
            )
        })
        .cloned()
        .collect()
}
