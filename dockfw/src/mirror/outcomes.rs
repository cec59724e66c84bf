//! What the walk records for each rule: the XDP rule it emits (a pass
//! over what a rule may match, a drop over what it surely matches, a rate
//! limit) and the report line that says why.

use super::{
    class::{Approx, Dnf},
    keys::keys_of,
    report::{Outcome, RuleReport},
    rule::ParsedRule,
    save::SavedRule,
    walk::{Emission, Mode, Walker},
};
use crate::model::{Action, RuleOrigin};

impl Walker<'_> {
    pub(super) fn labels(&self, dnf: &Dnf) -> Vec<String> {
        keys_of(dnf, self.keys)
            .iter()
            .map(|key| key.label())
            .collect()
    }

    pub(super) fn note_inexact(&mut self, hit: &Approx) {
        if !hit.is_exact() {
            self.note_all(hit);
        }
    }

    pub(super) fn note_all(&mut self, hit: &Approx) {
        self.inexact = self.inexact.or(&hit.over).cut_over(self.ctx.space);
    }

    pub(super) fn no_effect(&mut self, saved: &SavedRule, path: &str, reason: &str) {
        self.report(
            saved,
            path.to_owned(),
            Outcome::NoEffect {
                reason: reason.to_owned(),
            },
        );
    }

    pub(super) fn report(&mut self, saved: &SavedRule, path: String, outcome: Outcome) -> usize {
        self.reports.push(RuleReport {
            family: self.family.to_owned(),
            chain: saved.chain.clone(),
            position: saved.position,
            path: if path.is_empty() {
                format!("{}#{}", saved.chain, saved.position)
            } else {
                path
            },
            text: saved.text.clone(),
            outcome,
            notes: Vec::new(),
        });
        self.reports.len() - 1
    }

    pub(super) fn emit(
        &mut self,
        saved: &SavedRule,
        path: &str,
        action: Action,
        dnf: Dnf,
        report: usize,
    ) {
        self.emissions.push(Emission {
            name: path.to_owned(),
            origin: RuleOrigin::DockerUser {
                chain: saved.chain.clone(),
                position: saved.position,
                text: saved.text.clone(),
            },
            action,
            dnf,
            report,
        });
    }

    /// A rule that may let packets through: pass everything it may match.
    /// `understood`: its target is known to accept or leave DOCKER-USER.
    pub(super) fn may_pass(
        &mut self,
        saved: &SavedRule,
        hit: &Approx,
        notes: Vec<String>,
        path: &str,
        understood: bool,
    ) {
        if understood {
            self.note_inexact(hit);
        } else {
            self.note_all(hit);
        }
        if hit.over.is_empty() {
            self.no_effect(saved, path, "matches no traffic to a published port");
            return;
        }
        let ports = self.labels(&hit.over);
        let outcome = if hit.is_exact() && understood {
            Outcome::Mirrored {
                action: "pass".into(),
                ports,
            }
        } else {
            Outcome::Shadow {
                ports,
                reasons: notes,
            }
        };
        let report = self.report(saved, path.to_owned(), outcome);
        self.emit(saved, path, Action::Pass, hit.over.clone(), report);
    }

    /// A DROP: drop what it surely matches.
    pub(super) fn drop(&mut self, saved: &SavedRule, hit: &Approx, notes: Vec<String>, path: &str) {
        self.note_inexact(hit);
        if hit.over.is_empty() {
            self.no_effect(saved, path, "matches no traffic to a published port");
            return;
        }
        if hit.under.is_empty() {
            let reasons = if notes.is_empty() {
                vec!["an earlier rule of a chain it is in may return this traffic".into()]
            } else {
                notes
            };
            self.report(saved, path.to_owned(), Outcome::NetfilterOnly { reasons });
            return;
        }
        let ports = self.labels(&hit.under);
        let outcome = if hit.is_exact() {
            Outcome::Mirrored {
                action: "drop".into(),
                ports,
            }
        } else {
            Outcome::Partial {
                action: "drop".into(),
                ports,
                reasons: notes,
            }
        };
        let report = self.report(saved, path.to_owned(), outcome);
        self.shadow_notes(report, &hit.under);
        self.emit(saved, path, Action::Drop, hit.under.clone(), report);
    }

    /// Notes the earlier inexact passes that take traffic from a drop.
    pub(super) fn shadow_notes(&mut self, report: usize, under: &Dnf) {
        let space = self.ctx.space;
        let mut notes = Vec::new();
        for emission in &self.emissions {
            let inexact = matches!(
                self.reports.get(emission.report).map(|r| &r.outcome),
                Some(Outcome::Shadow { .. })
            );
            if emission.action == Action::Pass && inexact && emission.dnf.overlaps(under, space) {
                notes.push(format!(
                    "traffic {} may accept stays netfilter-only",
                    emission.name
                ));
            }
        }
        if let Some(entry) = self.reports.get_mut(report) {
            entry.notes.extend(notes);
        }
    }

    /// A supported rate-limit pattern (only with `--mirror-rate-limits`):
    /// emitted as an XDP rate limit; false when the rule is not one.
    pub(super) fn rate_limit(
        &mut self,
        saved: &SavedRule,
        rule: &ParsedRule,
        guard: &Approx,
        path: &str,
        rest: Option<&[SavedRule]>,
        mode: Mode,
    ) -> bool {
        let space = self.ctx.space;
        let leaves = mode == Mode::Top;
        let Some(plan) = super::limits::plan(&self.ctx, rule, guard, rest, leaves) else {
            return false;
        };
        // The bucket must see what netfilter's sees: no earlier verdict may
        // be mirrored inexactly for this traffic.
        if !plan.class.is_exact() || plan.class.over.overlaps(&self.inexact, space) {
            return false;
        }
        if plan.class.under.is_empty() {
            return false;
        }
        let ports = self.labels(&plan.class.under);
        let report = self.report(
            saved,
            path.to_owned(),
            Outcome::Mirrored {
                action: "rate-limit".into(),
                ports,
            },
        );
        if let Some(entry) = self.reports.get_mut(report) {
            entry.notes.extend(plan.note);
        }
        self.emit(
            saved,
            path,
            Action::RateLimit(plan.limit),
            plan.class.under,
            report,
        );
        true
    }
}
