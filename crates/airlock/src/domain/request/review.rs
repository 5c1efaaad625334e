//! Review as output checkers do it: a decision per file; when the workspace needs more than
//! one approval, independent reviews that nobody sees until all are in (blinded), then a
//! consolidation of the files they disagree about; and an outcome that follows from the files'
//! final decisions (all approved: approval; any changes requested: back to the researcher;
//! approved and rejected files: a partial release where the workspace allows it, else a
//! rejection).

use super::{AirlockRequest, Ctx, Decision, DomainError, NOT_INDEPENDENT, Review, User};
use crate::domain::lifecycle::Status;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One file's decision in a review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDecision {
    pub name: String,
    pub decision: Decision,
    /// Why, for this file (enough on its own for a rejection or changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

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
        let conflicted = self.conflicted_files();
        let consolidation = !conflicted.is_empty();
        if !consolidation && self.has_reviewed_this_revision(&by.id) {
            return Err(DomainError::Invalid(format!(
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
                ..d
            };
            if decided.insert(name.clone(), d).is_some() {
                return Err(DomainError::Invalid(format!(
                    "{name:?} has more than one decision"
                )));
            }
        }
        for name in &scope {
            if !decided.contains_key(name) {
                let Some(decision) = overall else {
                    return Err(DomainError::Invalid(format!(
                        "no decision for {name:?}: give one per file, or `decision` for the rest"
                    )));
                };
                decided.insert(
                    name.clone(),
                    FileDecision {
                        name: name.clone(),
                        decision,
                        comment: None,
                    },
                );
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
            agreed
                .into_iter()
                .chain(decisions.iter().map(|d| (d.name.clone(), d.decision)))
                .collect()
        } else if quorum <= 1 {
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
        self.conclude(by, finals, explanation, ctx)
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
            self.comment(
                by,
                true,
                None,
                text.trim().to_string(),
                super::Visibility::Everyone,
                ctx,
            )?;
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
            format!("{} {word}", d.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
