//! Review as output checkers do it: a decision per file; when the workspace needs more than
//! one approval, independent reviews that nobody sees until all are in (blinded), then a
//! consolidation of the files they disagree about; and an outcome that follows from the files'
//! final decisions (all approved: approval; any changes requested: back to the researcher;
//! approved and rejected files: a partial release where the workspace allows it, else a
//! rejection).

use super::{AirlockRequest, Ctx, Decision, DomainError, NOT_INDEPENDENT, Review, User};
use crate::lifecycle::Status;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One file's decision in a review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDecision {
    pub name: String,
    pub decision: Decision,
    /// Why, for this file (enough on its own for a rejection or changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Why the file is approved although a gate warned about it: one reason per kind of
    /// finding (`rule`), required to approve a file with `warn` findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
    /// The sha256 of the sealed file this decision is about (set by the airlock, not the
    /// reviewer): what a later revision is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Carried over from the reviewer's decision on the same, unchanged file in an earlier
    /// revision (`carryOverVotes`), not given again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
}

impl FileDecision {
    /// `decision` on `name`, with nothing else said.
    pub fn new(name: impl Into<String>, decision: Decision) -> Self {
        FileDecision {
            name: name.into(),
            decision,
            comment: None,
            overrides: vec![],
            sha256: None,
            carried: false,
        }
    }
}

/// A reviewer's reason to release a file over one kind of a gate's warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    /// The finding's rule (`small_count`, `unrounded`, `type_mismatch`, ...).
    pub rule: String,
    pub rationale: String,
}

/// The history action of an approval over a gate's warning (with one reviewer; with several
/// the overrides are in the votes revealed).
pub const OVERRIDE: &str = "override";
/// The history action of decisions carried over to a resubmission (with one reviewer; with
/// several they are in the votes revealed, marked as carried).
pub const VOTES_CARRIED: &str = "votes carried over";
/// The history action when a file approved over a disclosure warning waits for another
/// reviewer's override (`disclosureOverrideReviewers`).
pub const SECOND_OVERRIDE_NEEDED: &str = "another override needed";

/// Longest explanation or per-file comment in a review, in bytes.
const MAX_EXPLANATION_BYTES: usize = 4000;

impl AirlockRequest {
    /// Independent reviews this revision needs.
    pub fn quorum(&self, ctx: &Ctx) -> usize {
        if self.review_quorum > 0 {
            self.review_quorum as usize
        } else {
            ctx.workspace.policy.approvals_required.max(1) as usize
        }
    }

    /// The independent (not consolidating) reviews of the current revision.
    fn independent_reviews(&self) -> Vec<&Review> {
        self.reviews
            .iter()
            .filter(|r| r.revision == self.revision && !r.consolidation)
            .collect()
    }

    /// Whether the current revision's reviews are still hidden from each other (more than one
    /// is needed and not all are in).
    pub fn reviews_blinded(&self) -> bool {
        self.status == Status::InReview
            && self.review_quorum > 1
            && self.independent_reviews().len() < self.review_quorum as usize
    }

    /// Whether the current revision's independent reviews are incomplete: more than one is
    /// needed and not all came in (nor did a consolidation settle them). While in review that
    /// blinds them ([`Self::reviews_blinded`]); when the request ends without them (cancelled,
    /// failed, revoked) they stay hidden for good: each was written on the promise that
    /// nobody sees it before the others are in, and they never all came.
    pub fn reviews_incomplete(&self) -> bool {
        self.review_quorum > 1
            && self.independent_reviews().len() < self.review_quorum as usize
            && !self
                .reviews
                .iter()
                .any(|r| r.revision == self.revision && r.consolidation)
    }

    /// The reviews `viewer` may see (`None`: nobody in particular, as in a notification):
    /// all of them, except another reviewer's independent review of the current revision
    /// while those are incomplete.
    pub fn shown_reviews(&self, viewer: Option<&str>) -> Vec<Review> {
        let incomplete = self.reviews_incomplete();
        self.reviews
            .iter()
            .filter(|x| {
                !incomplete || x.revision != self.revision || viewer == Some(x.reviewer.id.as_str())
            })
            .cloned()
            .collect()
    }

    /// The files independent reviewers disagree about, once all their reviews are in and no
    /// consolidation has settled them yet.
    pub fn conflicted_files(&self) -> Vec<String> {
        if self.status != Status::InReview || self.review_quorum <= 1 {
            return Vec::new();
        }
        let reviews = self.independent_reviews();
        if reviews.len() < self.review_quorum as usize {
            return Vec::new();
        }
        let settled = self
            .reviews
            .iter()
            .any(|r| r.revision == self.revision && r.consolidation);
        if settled {
            return Vec::new();
        }
        self.files
            .iter()
            .filter(|f| {
                let mut seen: Vec<Decision> =
                    reviews.iter().map(|r| decision_for(r, &f.name)).collect();
                seen.dedup();
                seen.len() > 1
            })
            .map(|f| f.name.clone())
            .collect()
    }

    /// Whether `user_id` has a review still to give on this revision: none given yet, or the
    /// independent reviews disagree and wait for a consolidation.
    pub fn may_still_review(&self, user_id: &str) -> bool {
        !self.has_reviewed_this_revision(user_id) || !self.conflicted_files().is_empty()
    }

    /// A reviewer's decision on the whole request: every file gets it.
    pub fn review(
        &mut self,
        by: &User,
        decision: Decision,
        explanation: String,
        revision: Option<u32>,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        self.review_files(by, Some(decision), Vec::new(), explanation, revision, ctx)
    }

    /// A reviewer's decisions, per file (`files`) with `overall` for the files not listed.
    ///
    /// `revision` is the revision the reviewer looked at: a review counts only for what was
    /// seen. It may be left out (AzureTRE's clients do) only while the request has had a
    /// single revision. Once every independent review is in and they disagree about some
    /// files, the next review (by any independent reviewer) is the consolidation: it decides
    /// exactly those files.
    pub fn review_files(
        &mut self,
        by: &User,
        overall: Option<Decision>,
        files: Vec<FileDecision>,
        explanation: String,
        revision: Option<u32>,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        if self.status != Status::InReview {
            return Err(DomainError::IllegalTransition {
                action: "review",
                status: self.status,
            });
        }
        match revision {
            Some(seen) if seen != self.revision => {
                return Err(DomainError::Stale(format!(
                    "this review is for revision {seen}, but the request is at revision {}: look at its files again and review revision {}",
                    self.revision, self.revision
                )));
            }
            None if self.revision > 1 => {
                return Err(DomainError::Stale(format!(
                    "the request has been resubmitted (it is at revision {}): say which revision you reviewed (\"revision\": {})",
                    self.revision, self.revision
                )));
            }
            Some(_) | None => {}
        }
        if self.is_contributor(&by.id) {
            return Err(DomainError::Forbidden(NOT_INDEPENDENT.into()));
        }
        let quorum = self.quorum(ctx);
        // A request submitted before the quorum was kept on the record takes the policy's now,
        // once, so that blinding and consolidation count the same number from here on.
        self.review_quorum = quorum as u32;
        let conflicted = self.conflicted_files();
        let consolidation = !conflicted.is_empty();
        if !self.may_still_review(&by.id) {
            return Err(DomainError::AlreadyDone(format!(
                "you have already reviewed revision {} of this request",
                self.revision
            )));
        }
        // The files this review decides, and each one's decision.
        let scope: Vec<String> = if consolidation {
            conflicted.clone()
        } else {
            self.files.iter().map(|f| f.name.clone()).collect()
        };
        let mut decided: BTreeMap<String, FileDecision> = BTreeMap::new();
        for d in files {
            if !scope.contains(&d.name) {
                return Err(DomainError::Invalid(if consolidation {
                    format!(
                        "{:?} is not one of the files the reviewers disagree about ({})",
                        d.name,
                        conflicted.join(", ")
                    )
                } else {
                    format!("{:?} is not a file of this request", d.name)
                }));
            }
            if let Some(c) = &d.comment
                && c.len() > MAX_EXPLANATION_BYTES
            {
                return Err(DomainError::Invalid(format!(
                    "a file's comment is longer than {MAX_EXPLANATION_BYTES} bytes"
                )));
            }
            let name = d.name.clone();
            let d = FileDecision {
                comment: d
                    .comment
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
                overrides: d
                    .overrides
                    .into_iter()
                    .map(|o| Override {
                        rule: o.rule.trim().to_string(),
                        rationale: o.rationale.trim().to_string(),
                    })
                    .collect(),
                // What the airlock sets, never what a client says.
                sha256: None,
                carried: false,
                ..d
            };
            if decided.insert(name.clone(), d).is_some() {
                return Err(DomainError::Invalid(format!(
                    "{name:?} has more than one decision"
                )));
            }
        }
        // Carried only where this review decides file by file: a decision for the whole
        // request (`decision` for the files not listed) is the reviewer's word on all of them.
        if ctx.workspace.policy.carry_over_votes && !consolidation && overall.is_none() {
            for (name, carried) in self.carried_decisions(&by.id) {
                if scope.contains(&name) && !decided.contains_key(&name) {
                    decided.insert(name, carried);
                }
            }
        }
        for name in &scope {
            if !decided.contains_key(name) {
                let Some(decision) = overall else {
                    return Err(DomainError::Invalid(format!(
                        "no decision for {name:?}: give one per file, or `decision` for the rest"
                    )));
                };
                decided.insert(name.clone(), FileDecision::new(name.clone(), decision));
            }
        }
        let unjustified: Vec<&str> = self
            .files
            .iter()
            .filter(|f| {
                f.awaits_justification()
                    && decided
                        .get(&f.name)
                        .is_some_and(|d| d.decision == Decision::Approved)
            })
            .map(|f| f.name.as_str())
            .collect();
        if !unjustified.is_empty() {
            return Err(DomainError::Invalid(format!(
                "cannot approve yet: the workspace requires the researcher to justify the gate warnings on {}",
                unjustified.join(", ")
            )));
        }
        self.check_overrides(&mut decided)?;
        for d in decided.values_mut() {
            d.sha256 = self
                .files
                .iter()
                .find(|f| f.name == d.name)
                .and_then(|f| f.sha256.clone());
        }
        let explanation = explanation.trim().to_string();
        let unexplained = decided
            .values()
            .any(|d| d.decision != Decision::Approved && d.comment.is_none());
        if unexplained && explanation.is_empty() {
            return Err(DomainError::Invalid(
                "an explanation is required to reject or request changes".into(),
            ));
        }
        let decisions: Vec<FileDecision> = decided.into_values().collect();
        let summary = summarise(decisions.iter().map(|d| d.decision));
        self.reviews.push(Review {
            id: uuid::Uuid::new_v4().to_string(),
            reviewer: by.clone(),
            decision: summary,
            explanation: explanation.clone(),
            revision: self.revision,
            created_when: ctx.now,
            files: decisions.clone(),
            consolidation,
            policy_version: Some(ctx.workspace.policy.version()),
        });
        self.updated_by = by.clone();
        self.updated_when = ctx.now;

        // The final decision of each file, once it is known.
        let finals: BTreeMap<String, Decision> = if consolidation {
            let agreed = self.agreed_decisions();
            self.log(
                ctx,
                by,
                "review: consolidated",
                None,
                None,
                Some(describe(&decisions)),
            );
            let overridden: Vec<FileDecision> = decisions
                .iter()
                .filter(|d| !d.overrides.is_empty())
                .cloned()
                .collect();
            if !overridden.is_empty() {
                self.log(ctx, by, OVERRIDE, None, None, Some(describe(&overridden)));
            }
            agreed
                .into_iter()
                .chain(decisions.iter().map(|d| (d.name.clone(), d.decision)))
                .collect()
        } else if quorum <= 1 {
            // An override is a decision of its own in the trail (with several reviewers it is
            // in the votes revealed, so blinding holds).
            let overridden: Vec<FileDecision> = decisions
                .iter()
                .filter(|d| !d.overrides.is_empty())
                .cloned()
                .collect();
            let carried: Vec<FileDecision> =
                decisions.iter().filter(|d| d.carried).cloned().collect();
            if !carried.is_empty() {
                self.log(ctx, by, VOTES_CARRIED, None, None, Some(describe(&carried)));
            }
            if !overridden.is_empty() {
                self.log(ctx, by, OVERRIDE, None, None, Some(describe(&overridden)));
            }
            decisions
                .iter()
                .map(|d| (d.name.clone(), d.decision))
                .collect()
        } else {
            let reviews = self.independent_reviews().len();
            if reviews < quorum {
                // Blinded: the trail says a review came in, not what it said.
                self.log(
                    ctx,
                    by,
                    "review: recorded",
                    None,
                    None,
                    Some(format!(
                        "independent review {reviews} of {quorum}; decisions stay hidden until all are in"
                    )),
                );
                return Ok(());
            }
            let votes: Vec<String> = self
                .independent_reviews()
                .iter()
                .map(|r| {
                    let files = if r.files.is_empty() {
                        format!("{:?}", r.decision)
                    } else {
                        describe(&r.files)
                    };
                    format!("{}: {files}", r.reviewer.id)
                })
                .collect();
            self.log(
                ctx,
                by,
                "reviews revealed",
                None,
                None,
                Some(votes.join("; ")),
            );
            // Each reviewer's overrides, now that they may be seen: one `override` entry,
            // as with a single reviewer, so the trail counts them the same way.
            let overrides: Vec<String> = self
                .independent_reviews()
                .iter()
                .filter_map(|r| {
                    let overridden: Vec<FileDecision> = r
                        .files
                        .iter()
                        .filter(|d| !d.overrides.is_empty())
                        .cloned()
                        .collect();
                    (!overridden.is_empty())
                        .then(|| format!("{}: {}", r.reviewer.id, describe(&overridden)))
                })
                .collect();
            if !overrides.is_empty() {
                self.log(ctx, by, OVERRIDE, None, None, Some(overrides.join("; ")));
            }
            let conflicted = self.conflicted_files();
            if !conflicted.is_empty() {
                let message = format!(
                    "independent reviewers disagree about {}: a consolidating review decides them",
                    conflicted.join(", ")
                );
                self.status_message = Some(message.clone());
                self.log(
                    ctx,
                    &User::system(),
                    "consolidation needed",
                    None,
                    None,
                    Some(message),
                );
                return Ok(());
            }
            self.agreed_decisions()
        };
        let short = self.overrides_short_of_reviewers(&finals, ctx);
        if !short.is_empty() {
            let needed = ctx.workspace.policy.disclosure_override_reviewers;
            let message = format!(
                "releasing {} over disclosure warnings needs overrides from {needed} different reviewers ({}): another airlock manager reviews it",
                short
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                short
                    .iter()
                    .map(|(name, n)| format!("{name}: {n} so far"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.status_message = Some(message.clone());
            self.log(
                ctx,
                &User::system(),
                SECOND_OVERRIDE_NEEDED,
                None,
                None,
                Some(message),
            );
            return Ok(());
        }
        self.conclude(by, finals, explanation, ctx)
    }

    /// The files about to be approved over a disclosure warning (a `disclosure` gate's or
    /// ACRO's `acro_fail`) by fewer different reviewers' overrides than the workspace needs,
    /// each with how many it has: an override is counted once per reviewer, from any review
    /// of this revision (independent, consolidating, or carried over).
    fn overrides_short_of_reviewers(
        &self,
        finals: &BTreeMap<String, Decision>,
        ctx: &Ctx,
    ) -> Vec<(String, usize)> {
        let needed = ctx.workspace.policy.disclosure_override_reviewers as usize;
        if needed <= 1 {
            return Vec::new();
        }
        let gates = &ctx.workspace.policy.gates;
        let is_disclosure = |f: &crate::gates::Finding| {
            f.mode == crate::gates::GateMode::Warn
                && (f.rule == "acro_fail"
                    || gates.iter().any(|g| {
                        g.name == f.gate && matches!(g.kind, crate::gates::GateKind::Disclosure(_))
                    }))
        };
        self.files
            .iter()
            .filter(|f| finals.get(&f.name) == Some(&Decision::Approved))
            .filter_map(|f| {
                let rules: BTreeSet<&str> = f
                    .findings
                    .iter()
                    .filter(|x| is_disclosure(x))
                    .map(|x| x.rule.as_str())
                    .collect();
                if rules.is_empty() {
                    return None;
                }
                let reviewers: BTreeSet<&str> = self
                    .reviews
                    .iter()
                    .filter(|r| r.revision == self.revision)
                    .filter(|r| {
                        r.files.iter().any(|d| {
                            d.name == f.name
                                && d.decision == Decision::Approved
                                && rules
                                    .iter()
                                    .all(|rule| d.overrides.iter().any(|o| o.rule == *rule))
                        })
                    })
                    .map(|r| r.reviewer.id.as_str())
                    .collect();
                (reviewers.len() < needed).then(|| (f.name.clone(), reviewers.len()))
            })
            .collect()
    }

    /// Per file, the decision every independent review of this revision agrees on (files they
    /// disagree about are left out).
    fn agreed_decisions(&self) -> BTreeMap<String, Decision> {
        let reviews = self.independent_reviews();
        self.files
            .iter()
            .filter_map(|f| {
                let mut seen: Vec<Decision> =
                    reviews.iter().map(|r| decision_for(r, &f.name)).collect();
                seen.dedup();
                (seen.len() == 1).then(|| (f.name.clone(), seen[0]))
            })
            .collect()
    }

    /// The request's outcome from its files' final decisions.
    fn conclude(
        &mut self,
        by: &User,
        finals: BTreeMap<String, Decision>,
        explanation: String,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        for file in &mut self.files {
            file.decision = finals.get(&file.name).copied();
        }
        let message = (!explanation.is_empty()).then(|| explanation.clone());
        let count = |d: Decision| finals.values().filter(|x| **x == d).count();
        let (approved, rejected, changes) = (
            count(Decision::Approved),
            count(Decision::Rejected),
            count(Decision::ChangesRequested),
        );
        if changes > 0 {
            // What to change opens (or continues) the request's thread, for the
            // researcher's answer and the resubmission to follow.
            let mut text = explanation.clone();
            for (name, comment) in self.file_comments() {
                text.push_str(&format!("\n\n**{name}**: {comment}"));
            }
            self.comment(by, true, super::NewComment::on_request(text.trim()), ctx)?;
            // The draft the researcher gets back is the next revision: its StatusChanged
            // event and notification must say so, and the old files' seals no longer apply.
            self.revision += 1;
            // What the researcher said about each file stays for the resubmission.
            self.carried_context = self.files.iter().map(super::FileRecord::context).collect();
            self.files.clear();
            return self.transition(Status::Draft, by, "review: changes requested", message, ctx);
        }
        if rejected == 0 {
            return self.transition(
                Status::ApprovalInProgress,
                by,
                "review: approved",
                message,
                ctx,
            );
        }
        if approved > 0 && ctx.workspace.policy.partial_release {
            let withheld: Vec<&str> = self
                .files
                .iter()
                .filter(|f| f.withheld())
                .map(|f| f.name.as_str())
                .collect();
            let message = format!(
                "partial release: {approved} of {} file(s) approved; withheld: {}{}",
                approved + rejected,
                withheld.join(", "),
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            );
            return self.transition(
                Status::ApprovalInProgress,
                by,
                "review: approved in part",
                Some(message),
                ctx,
            );
        }
        let message = if approved > 0 {
            Some(format!(
                "rejected: some files were rejected and this workspace does not release part of a request{}",
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            ))
        } else {
            message
        };
        self.transition(
            Status::RejectionInProgress,
            by,
            "review: rejected",
            message,
            ctx,
        )
    }

    /// Each per-file comment of this revision's reviews, `(file, comment)`.
    fn file_comments(&self) -> Vec<(String, String)> {
        self.reviews
            .iter()
            .filter(|r| r.revision == self.revision)
            .flat_map(|r| {
                r.files
                    .iter()
                    .filter_map(|d| Some((d.name.clone(), d.comment.clone()?)))
            })
            .collect()
    }
}

/// A review's decision on `file` (its overall decision for a review without per-file ones).
fn decision_for(review: &Review, file: &str) -> Decision {
    review
        .files
        .iter()
        .find(|d| d.name == file)
        .map(|d| d.decision)
        .unwrap_or(review.decision)
}

/// A review as a whole, from its files' decisions.
fn summarise(decisions: impl Iterator<Item = Decision>) -> Decision {
    let all: Vec<Decision> = decisions.collect();
    if all.contains(&Decision::ChangesRequested) {
        Decision::ChangesRequested
    } else if all.iter().all(|d| *d == Decision::Approved) {
        Decision::Approved
    } else {
        Decision::Rejected
    }
}

fn describe(decisions: &[FileDecision]) -> String {
    decisions
        .iter()
        .map(|d| {
            let word = match d.decision {
                Decision::Approved => "approved",
                Decision::Rejected => "rejected",
                Decision::ChangesRequested => "changes requested",
            };
            let overrides: String = d
                .overrides
                .iter()
                .map(|o| format!(" over {} ({:?})", o.rule, o.rationale))
                .collect();
            let carried = if d.carried { " (carried over)" } else { "" };
            format!("{} {word}{overrides}{carried}", d.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl AirlockRequest {
    /// `reviewer`'s decisions that carry over to the current revision: for each file whose
    /// name and sealed bytes are what they decided on in their latest earlier review of it.
    pub fn carried_decisions(&self, reviewer: &str) -> Vec<(String, FileDecision)> {
        self.files
            .iter()
            .filter_map(|file| {
                let sha = file.sha256.as_deref()?;
                let earlier = self
                    .reviews
                    .iter()
                    .rev()
                    .filter(|r| r.reviewer.id == reviewer && r.revision < self.revision)
                    .find_map(|r| r.files.iter().find(|d| d.name == file.name))?;
                (earlier.sha256.as_deref() == Some(sha)).then(|| {
                    (
                        file.name.clone(),
                        FileDecision {
                            carried: true,
                            comment: None,
                            ..earlier.clone()
                        },
                    )
                })
            })
            .collect()
    }

    /// A file approved over its gates' warnings carries a reason for each kind of warning (and
    /// only for kinds the file has): an override is a decision of its own, not a side effect of
    /// approving. Overrides on a file not approved mean nothing and are dropped; a supporting
    /// file, never released, needs none.
    fn check_overrides(
        &self,
        decided: &mut BTreeMap<String, FileDecision>,
    ) -> Result<(), DomainError> {
        for file in &self.files {
            let Some(d) = decided.get_mut(&file.name) else {
                continue;
            };
            if d.decision != Decision::Approved {
                d.overrides.clear();
                continue;
            }
            let warned: std::collections::BTreeSet<&str> = file
                .findings
                .iter()
                .filter(|f| f.mode == crate::gates::GateMode::Warn)
                .map(|f| f.rule.as_str())
                .collect();
            let mut seen = std::collections::BTreeSet::new();
            for o in &d.overrides {
                if !warned.contains(o.rule.as_str()) {
                    return Err(DomainError::Invalid(format!(
                        "{:?} has no {:?} warning to override",
                        file.name, o.rule
                    )));
                }
                if o.rationale.is_empty() || o.rationale.len() > MAX_EXPLANATION_BYTES {
                    return Err(DomainError::Invalid(format!(
                        "the reason to approve {:?} over {} must be 1 to {MAX_EXPLANATION_BYTES} bytes",
                        file.name, o.rule
                    )));
                }
                if !seen.insert(o.rule.as_str()) {
                    return Err(DomainError::Invalid(format!(
                        "{:?} has more than one override of {}",
                        file.name, o.rule
                    )));
                }
            }
            // A supporting file is never released (ACRO's session summary, code, logs):
            // approving it releases nothing, so its warnings need no reason (one given is
            // still checked and recorded).
            let missing: Vec<&str> = warned
                .iter()
                .filter(|r| !seen.contains(*r) && !file.supporting)
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err(DomainError::Invalid(format!(
                    "approving {:?} over its gates' warnings needs a reason for each kind: {} (give the file's decision with overrides: [{{\"rule\": ..., \"rationale\": ...}}])",
                    file.name,
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{DraftFile, RequestType};
    use crate::workspace::Workspace;

    fn workspace(policy: serde_json::Value) -> Workspace {
        let mut policy = policy;
        policy["scanRequired"] = false.into();
        serde_json::from_value(serde_json::json!({
            "id": "ws1", "displayName": "One", "shortId": "ws1", "tokenAudience": "api://ws1",
            "policy": policy,
        }))
        .unwrap()
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            email: None,
        }
    }

    fn ctx(ws: &Workspace) -> Ctx<'_> {
        Ctx {
            now: chrono::Utc::now(),
            workspace: ws,
        }
    }

    /// Two files (a.csv, b.csv), sealed and in review.
    fn in_review(ws: &Workspace) -> AirlockRequest {
        sealed(ws, |_| crate::gates::Checked::default())
    }

    /// Two files (a.csv, b.csv), sealed with what `checked` says the gates found in each, and
    /// in review.
    fn sealed(ws: &Workspace, checked: impl Fn(&str) -> crate::gates::Checked) -> AirlockRequest {
        let mut r = AirlockRequest::create(
            "r1".into(),
            RequestType::Export,
            "t".into(),
            "j".into(),
            user("alice"),
            &ctx(ws),
        )
        .unwrap();
        let files = ["a.csv", "b.csv"]
            .map(|n| DraftFile {
                name: n.into(),
                size: 1,
                etag: None,
            })
            .to_vec();
        r.submit(&user("alice"), files, &ctx(ws)).unwrap();
        for n in ["a.csv", "b.csv"] {
            r.record_sealed_checked(
                n,
                1,
                format!("sha-{n}"),
                format!("e-{n}"),
                checked(n),
                &ctx(ws),
            )
            .unwrap();
        }
        assert_eq!(r.status, Status::InReview);
        r
    }

    fn per_file(a: Decision, b: Decision) -> Vec<FileDecision> {
        vec![
            FileDecision::new("a.csv", a),
            FileDecision {
                comment: Some("row 2 is a small count".into()),
                ..FileDecision::new("b.csv", b)
            },
        ]
    }

    use Decision::{Approved as A, ChangesRequested as C, Rejected as R};

    /// In review, with a warning on a.csv from the gate named `gate` (`rule`).
    fn warned(ws: &Workspace, gate: &str, rule: &str) -> AirlockRequest {
        sealed(ws, |n| crate::gates::Checked {
            findings: (n == "a.csv")
                .then(|| crate::gates::Finding {
                    gate: gate.into(),
                    mode: crate::gates::GateMode::Warn,
                    rule: rule.into(),
                    message: "count 3 is below the threshold of 10".into(),
                    location: None,
                    cell: None,
                    remediation: None,
                    needs_justification: false,
                })
                .into_iter()
                .collect(),
            ..Default::default()
        })
    }

    /// `decision` on a.csv (with an override when approved) and approval of b.csv.
    fn overriding(decision: Decision, rule: &str) -> Vec<FileDecision> {
        let overrides = if decision == Decision::Approved {
            vec![Override {
                rule: rule.into(),
                rationale: "a synthetic group".into(),
            }]
        } else {
            vec![]
        };
        vec![
            FileDecision {
                overrides,
                ..FileDecision::new("a.csv", decision)
            },
            FileDecision::new("b.csv", Decision::Approved),
        ]
    }

    #[test]
    fn a_disclosure_override_can_need_a_second_reviewer() {
        let gates = serde_json::json!([
            {"name": "sdc", "kind": "disclosure", "mode": "warn"},
            {"name": "types", "kind": "filePolicy", "mode": "warn"}
        ]);
        // (reviewers needed, quorum, gate, rule, [(reviewer, decision on a.csv)], status after each)
        type Case<'a> = (u32, u32, &'a str, &'a str, Vec<(&'a str, Decision, Status)>);
        let cases: Vec<Case> = vec![
            // One reviewer's override is enough by default.
            (
                1,
                1,
                "sdc",
                "small_count",
                vec![("mike", A, Status::ApprovalInProgress)],
            ),
            // Two needed: the first override waits for a second reviewer's.
            (
                2,
                1,
                "sdc",
                "small_count",
                vec![
                    ("mike", A, Status::InReview),
                    ("nina", A, Status::ApprovalInProgress),
                ],
            ),
            // The second reviewer may say no: the file is not released.
            (
                2,
                1,
                "sdc",
                "small_count",
                vec![
                    ("mike", A, Status::InReview),
                    ("nina", R, Status::RejectionInProgress),
                ],
            ),
            // ACRO's failed disclosure check counts as a disclosure warning.
            (
                2,
                1,
                "acro",
                "acro_fail",
                vec![
                    ("mike", A, Status::InReview),
                    ("nina", A, Status::ApprovalInProgress),
                ],
            ),
            // Other gates' warnings need one reviewer's override.
            (
                2,
                1,
                "types",
                "type_mismatch",
                vec![("mike", A, Status::ApprovalInProgress)],
            ),
            // Two blinded reviewers who both override meet the rule together.
            (
                2,
                2,
                "sdc",
                "small_count",
                vec![
                    ("mike", A, Status::InReview),
                    ("nina", A, Status::ApprovalInProgress),
                ],
            ),
        ];
        for (needed, quorum, gate, rule, steps) in cases {
            let ws = workspace(serde_json::json!({
                "gates": gates, "disclosureOverrideReviewers": needed, "approvalsRequired": quorum
            }));
            let mut r = warned(&ws, gate, rule);
            for (i, (who, decision, status)) in steps.iter().enumerate() {
                r.review_files(
                    &user(who),
                    None,
                    overriding(*decision, rule),
                    "see a.csv".into(),
                    Some(1),
                    &ctx(&ws),
                )
                .unwrap();
                assert_eq!(r.status, *status, "{needed} {quorum} {rule} step {i}");
            }
            let held = r
                .history_tail
                .iter()
                .any(|e| e.action == SECOND_OVERRIDE_NEEDED);
            assert_eq!(
                held,
                needed == 2 && quorum == 1 && gate != "types",
                "{needed} {quorum} {rule}"
            );
        }

        // Held: it says what it waits for, and the same reviewer cannot be the second.
        let ws = workspace(serde_json::json!({"gates": gates, "disclosureOverrideReviewers": 2}));
        let mut r = warned(&ws, "sdc", "small_count");
        r.review_files(
            &user("mike"),
            None,
            overriding(A, "small_count"),
            "ok".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        assert_eq!(
            r.status_message.as_deref(),
            Some(
                "releasing a.csv over disclosure warnings needs overrides from 2 different reviewers (a.csv: 1 so far): another airlock manager reviews it"
            )
        );
        assert!(
            r.review_files(
                &user("mike"),
                None,
                overriding(A, "small_count"),
                "ok".into(),
                Some(1),
                &ctx(&ws)
            )
            .is_err()
        );
        assert!(
            r.files.iter().all(|f| f.decision.is_none()),
            "nothing decided yet"
        );
    }

    #[test]
    fn one_review_decides_each_file_and_the_outcome_follows() {
        // (partial release allowed, a, b) -> status, withheld files
        let cases = [
            (false, A, A, Status::ApprovalInProgress, vec![]),
            (false, A, R, Status::RejectionInProgress, vec!["b.csv"]),
            (true, A, R, Status::ApprovalInProgress, vec!["b.csv"]),
            (
                true,
                R,
                R,
                Status::RejectionInProgress,
                vec!["a.csv", "b.csv"],
            ),
            (true, A, C, Status::Draft, vec![]),
        ];
        for (partial, a, b, status, withheld) in cases {
            let ws = workspace(serde_json::json!({"partialRelease": partial}));
            let mut r = in_review(&ws);
            r.review_files(
                &user("mike"),
                None,
                per_file(a, b),
                "see the files".into(),
                Some(1),
                &ctx(&ws),
            )
            .unwrap();
            assert_eq!(r.status, status, "{partial} {a:?} {b:?}");
            let out: Vec<&str> = r
                .files
                .iter()
                .filter(|f| f.withheld())
                .map(|f| f.name.as_str())
                .collect();
            assert_eq!(out, withheld, "{partial} {a:?} {b:?}");
            if partial && status == Status::ApprovalInProgress && !withheld.is_empty() {
                assert_eq!(
                    r.status_message.as_deref(),
                    Some(
                        "partial release: 1 of 2 file(s) approved; withheld: b.csv (see the files)"
                    )
                );
            }
            if status == Status::Draft {
                assert_eq!(r.revision, 2);
                let last = r.comments.last().unwrap();
                assert!(
                    last.text.contains("**b.csv**: row 2 is a small count"),
                    "{}",
                    last.text
                );
            }
        }
    }

    #[test]
    fn a_per_file_review_must_be_whole_and_explained() {
        let ws = workspace(serde_json::json!({}));
        let r = in_review(&ws);
        let mike = user("mike");
        let refuse = |overall: Option<Decision>, files: Vec<FileDecision>, why: &str| {
            let e = r
                .clone()
                .review_files(&mike, overall, files, String::new(), Some(1), &ctx(&ws))
                .unwrap_err();
            assert!(e.to_string().contains(why), "{e} (wanted {why})");
        };
        let mut one = per_file(A, A);
        one.pop();
        refuse(None, one.clone(), "no decision for \"b.csv\"");
        let mut stray = per_file(A, A);
        stray[0].name = "../x.csv".into();
        refuse(None, stray, "not a file of this request");
        let mut twice = per_file(A, A);
        twice[1].name = "a.csv".into();
        refuse(None, twice, "more than one decision");
        let mut bare = per_file(A, R);
        bare[1].comment = None;
        refuse(None, bare, "an explanation is required");
        // The rest from the overall decision.
        let mut r = r.clone();
        r.review_files(&mike, Some(A), one, String::new(), Some(1), &ctx(&ws))
            .unwrap();
        assert_eq!(r.status, Status::ApprovalInProgress);
    }

    /// Attack: a researcher cancelled while one of two blinded votes was in, and saw the
    /// vote, who cast it and why, in the request and in the cancel notification.
    #[test]
    fn a_blinded_vote_stays_hidden_when_the_request_ends_without_the_others() {
        let ws = workspace(serde_json::json!({"approvalsRequired": 2}));
        let mut r = in_review(&ws);
        r.review_files(
            &user("m1"),
            Some(R),
            vec![],
            "the secret reason".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        r.outbox.clear();
        r.cancel(&r.created_by.clone(), &ctx(&ws)).unwrap();
        assert_eq!(r.status, Status::Cancelled);
        assert!(r.visible_to("alice", false).reviews.is_empty());
        assert!(r.visible_to("m2", true).reviews.is_empty());
        assert_eq!(
            r.visible_to("m1", true).reviews.len(),
            1,
            "its author still sees it"
        );
        for event in &r.outbox {
            let text = event.event.data.to_string();
            assert!(
                !text.contains("the secret reason") && !text.contains("\"m1\""),
                "{text}"
            );
        }
        assert!(!r.outbox.is_empty(), "the cancel was notified");
    }

    #[test]
    fn blinded_reviews_then_a_consolidation_of_the_conflicted_file() {
        let ws = workspace(serde_json::json!({"approvalsRequired": 2, "partialRelease": true}));
        let mut r = in_review(&ws);
        r.review_files(
            &user("m1"),
            None,
            per_file(A, R),
            String::new(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        assert_eq!(r.status, Status::InReview, "one rejection does not end it");
        assert!(r.reviews_blinded());
        // m2 does not see m1's review; m1 does; nor does the trail say what it was.
        assert!(r.visible_to("m2", true).reviews.is_empty());
        assert_eq!(r.visible_to("m1", true).reviews.len(), 1);
        assert!(r.visible_to("alice", false).reviews.is_empty());
        let last = r.history_tail.last().unwrap();
        assert_eq!(last.action, "review: recorded");
        assert!(!last.message.as_deref().unwrap().contains("rejected"));
        // m1 may not review again while blinded.
        assert!(
            r.clone()
                .review_files(
                    &user("m1"),
                    Some(A),
                    vec![],
                    String::new(),
                    Some(1),
                    &ctx(&ws)
                )
                .is_err()
        );
        r.review_files(
            &user("m2"),
            Some(A),
            vec![],
            String::new(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        // Both in: revealed, and they disagree about b.csv.
        assert!(!r.reviews_blinded());
        assert_eq!(r.visible_to("alice", false).reviews.len(), 2);
        assert_eq!(r.status, Status::InReview);
        assert_eq!(r.conflicted_files(), vec!["b.csv"]);
        let actions: Vec<&str> = r.history_tail.iter().map(|h| h.action.as_str()).collect();
        assert!(
            actions.ends_with(&["reviews revealed", "consolidation needed"]),
            "{actions:?}"
        );
        let revealed = r
            .history_tail
            .iter()
            .find(|h| h.action == "reviews revealed")
            .unwrap();
        assert_eq!(
            revealed.message.as_deref(),
            Some("m1: a.csv approved, b.csv rejected; m2: a.csv approved, b.csv approved")
        );
        // Consolidation decides exactly the conflicted file (m1, who reviewed, may do it).
        let e = r
            .clone()
            .review_files(
                &user("m1"),
                None,
                per_file(A, R),
                String::new(),
                Some(1),
                &ctx(&ws),
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("not one of the files the reviewers disagree about"),
            "{e}"
        );
        assert!(
            r.clone()
                .review_files(
                    &user("alice"),
                    Some(R),
                    vec![],
                    "x".into(),
                    Some(1),
                    &ctx(&ws)
                )
                .is_err(),
            "the creator never reviews, consolidation included"
        );
        r.review_files(
            &user("m1"),
            Some(R),
            vec![],
            "the count in row 2 is too small".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        assert_eq!(r.status, Status::ApprovalInProgress);
        assert!(r.files[1].withheld() && !r.files[0].withheld());
        assert!(r.reviews.last().unwrap().consolidation);
    }

    #[test]
    fn independent_reviews_that_agree_need_no_consolidation() {
        let ws = workspace(serde_json::json!({"approvalsRequired": 2}));
        let mut r = in_review(&ws);
        for m in ["m1", "m2"] {
            r.review_files(
                &user(m),
                None,
                per_file(A, R),
                String::new(),
                Some(1),
                &ctx(&ws),
            )
            .unwrap();
        }
        assert_eq!(
            r.status,
            Status::RejectionInProgress,
            "no partial release here"
        );
        assert!(r
            .status_message
            .as_deref()
            .unwrap()
            .starts_with("rejected: some files were rejected and this workspace does not release part of a request"));
    }
}

#[cfg(test)]
mod legacy {
    use super::*;

    /// A request submitted before the quorum was kept on the record (review_quorum 0) is
    /// reviewed with the policy's quorum, blinded and consolidated like any other.
    #[test]
    fn a_request_without_a_recorded_quorum_takes_the_policys() {
        let ws: crate::workspace::Workspace = serde_json::from_value(serde_json::json!({
            "id": "ws1", "displayName": "One", "shortId": "ws1", "tokenAudience": "api://ws1",
            "policy": {"approvalsRequired": 2, "scanRequired": false},
        }))
        .unwrap();
        let ctx = Ctx {
            now: chrono::Utc::now(),
            workspace: &ws,
        };
        let user = |id: &str| User {
            id: id.into(),
            name: id.into(),
            email: None,
        };
        let mut r = AirlockRequest::create(
            "r1".into(),
            crate::request::RequestType::Export,
            "t".into(),
            "j".into(),
            user("alice"),
            &ctx,
        )
        .unwrap();
        let files = ["a.csv", "b.csv"]
            .map(|n| crate::request::DraftFile {
                name: n.into(),
                size: 1,
                etag: None,
            })
            .to_vec();
        r.submit(&user("alice"), files, &ctx).unwrap();
        for n in ["a.csv", "b.csv"] {
            r.record_sealed(n, 1, format!("sha-{n}"), format!("e-{n}"), &ctx)
                .unwrap();
        }
        r.review_quorum = 0;
        let decide = |b: Decision| {
            vec![
                FileDecision::new("a.csv", Decision::Approved),
                FileDecision {
                    comment: Some("why".into()),
                    ..FileDecision::new("b.csv", b)
                },
            ]
        };
        r.review_files(
            &user("m1"),
            None,
            decide(Decision::Rejected),
            String::new(),
            None,
            &ctx,
        )
        .unwrap();
        assert!(r.reviews_blinded());
        r.review_files(
            &user("m2"),
            None,
            decide(Decision::Approved),
            String::new(),
            None,
            &ctx,
        )
        .unwrap();
        assert_eq!(r.status, Status::InReview);
        assert_eq!(r.conflicted_files(), vec!["b.csv"]);
    }
}
