//! The request lifecycle of DESIGN §2 as data: one table that the domain, the tests and the
//! docs' state diagram all read.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A request's status; the serialised strings are part of the public API.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    InReview,
    ApprovalInProgress,
    Approved,
    RejectionInProgress,
    Rejected,
    BlockingInProgress,
    BlockedByScan,
    Cancelled,
    Failed,
    Revoked,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Draft,
        Status::Submitted,
        Status::InReview,
        Status::ApprovalInProgress,
        Status::Approved,
        Status::RejectionInProgress,
        Status::Rejected,
        Status::BlockingInProgress,
        Status::BlockedByScan,
        Status::Cancelled,
        Status::Failed,
        Status::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::InReview => "in_review",
            Status::ApprovalInProgress => "approval_in_progress",
            Status::Approved => "approved",
            Status::RejectionInProgress => "rejection_in_progress",
            Status::Rejected => "rejected",
            Status::BlockingInProgress => "blocking_in_progress",
            Status::BlockedByScan => "blocked_by_scan",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Terminal statuses are never left by the system. `approved` is terminal although an
    /// airlock manager may still revoke it.
    pub fn is_terminal(self) -> bool {
        // Every status is named: a new one must be placed here deliberately.
        match self {
            Status::Approved
            | Status::Rejected
            | Status::BlockedByScan
            | Status::Cancelled
            | Status::Failed
            | Status::Revoked => true,
            Status::Draft
            | Status::Submitted
            | Status::InReview
            | Status::ApprovalInProgress
            | Status::RejectionInProgress
            | Status::BlockingInProgress => false,
        }
    }

    /// Statuses the system (not a person) must leave; `Reconcile` watches these for deadlines.
    pub fn is_transitional(self) -> bool {
        match self {
            Status::Submitted
            | Status::ApprovalInProgress
            | Status::RejectionInProgress
            | Status::BlockingInProgress => true,
            Status::Draft
            | Status::InReview
            | Status::Approved
            | Status::Rejected
            | Status::BlockedByScan
            | Status::Cancelled
            | Status::Failed
            | Status::Revoked => false,
        }
    }

    /// The statuses `Reconcile` watches: the transitional ones, in table order.
    pub fn transitional() -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|s| s.is_transitional())
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may cause a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The creator of the request or a workspace owner.
    Requester,
    /// An airlock manager through `review` (never the creator).
    Reviewer,
    /// An airlock manager through `revoke`.
    Manager,
    /// The airlock itself, reacting to events.
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub by: By,
    /// What makes it happen, for humans (docs, history).
    pub when: &'static str,
}

const fn t(from: Status, to: Status, by: By, when: &'static str) -> Transition {
    Transition { from, to, by, when }
}

use Status::*;

/// Every legal transition. Anything not listed is illegal.
pub const TRANSITIONS: &[Transition] = &[
    t(
        Draft,
        Submitted,
        By::Requester,
        "submit: the draft holds 1..maxFiles files within the workspace's limits",
    ),
    t(Draft, Cancelled, By::Requester, "cancel"),
    t(
        Submitted,
        InReview,
        By::System,
        "every file sealed in the in-progress stage, hashed, clean when scanning is on, through the policy's gates, and every external gate answered",
    ),
    t(
        Submitted,
        BlockingInProgress,
        By::System,
        "a scan verdict other than `No threats found`, or a finding of a gate in block mode",
    ),
    t(
        InReview,
        ApprovalInProgress,
        By::Reviewer,
        "the files' final decisions (one review, or the quorum of blinded independent reviews and a consolidation of the files they disagree about) approve every file, or some with the rest withheld where partial release is allowed",
    ),
    t(
        InReview,
        RejectionInProgress,
        By::Reviewer,
        "the files' final decisions reject every file, or some where partial release is not allowed",
    ),
    t(
        InReview,
        BlockingInProgress,
        By::System,
        "a later scan verdict other than `No threats found` for a sealed copy",
    ),
    t(
        InReview,
        Draft,
        By::Reviewer,
        "a file's final decision is changes requested: revision += 1",
    ),
    t(InReview, Cancelled, By::Requester, "cancel"),
    t(
        ApprovalInProgress,
        Approved,
        By::System,
        "every file arrived in the approved stage with its sha256 verified",
    ),
    t(
        RejectionInProgress,
        Rejected,
        By::System,
        "every file moved to the rejected stage",
    ),
    t(
        BlockingInProgress,
        BlockedByScan,
        By::System,
        "every file moved to the blocked stage",
    ),
    t(
        Approved,
        Revoked,
        By::Manager,
        "revoke, with a reason: approved data is deleted",
    ),
    t(Draft, Failed, By::System, "an unrecoverable error"),
    t(
        Submitted,
        Failed,
        By::System,
        "an unrecoverable error, no scan verdict or no external gate answer by its deadline",
    ),
    t(InReview, Failed, By::System, "an unrecoverable error"),
    t(
        ApprovalInProgress,
        Failed,
        By::System,
        "an unrecoverable error",
    ),
    t(
        RejectionInProgress,
        Failed,
        By::System,
        "an unrecoverable error",
    ),
    t(
        BlockingInProgress,
        Failed,
        By::System,
        "an unrecoverable error",
    ),
];

/// The transition from `from` to `to`, if the table allows it.
pub fn transition(from: Status, to: Status) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == from && t.to == to)
}

/// The state diagram in Mermaid, generated from the table (for the docs).
pub fn mermaid() -> String {
    let mut out = String::from("stateDiagram-v2\n    [*] --> draft\n");
    for t in TRANSITIONS {
        let by = match t.by {
            By::Requester => "requester",
            By::Reviewer => "reviewer",
            By::Manager => "manager",
            By::System => "system",
        };
        out.push_str(&format!("    {} --> {}: {}\n", t.from, t.to, by));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected table written out independently of `TRANSITIONS`: every (from, to) pair
    /// that is legal. All other 144 - n pairs must be refused.
    const LEGAL: &[(Status, Status)] = &[
        (Draft, Submitted),
        (Draft, Cancelled),
        (Draft, Failed),
        (Submitted, InReview),
        (Submitted, BlockingInProgress),
        (Submitted, Failed),
        (InReview, ApprovalInProgress),
        (InReview, RejectionInProgress),
        (InReview, BlockingInProgress),
        (InReview, Draft),
        (InReview, Cancelled),
        (InReview, Failed),
        (ApprovalInProgress, Approved),
        (ApprovalInProgress, Failed),
        (RejectionInProgress, Rejected),
        (RejectionInProgress, Failed),
        (BlockingInProgress, BlockedByScan),
        (BlockingInProgress, Failed),
        (Approved, Revoked),
    ];

    #[test]
    fn every_pair_is_allowed_exactly_when_listed() {
        let mut checked = 0;
        for from in Status::ALL {
            for to in Status::ALL {
                let expected = LEGAL.contains(&(from, to));
                assert_eq!(
                    transition(from, to).is_some(),
                    expected,
                    "{from} -> {to} should be {}",
                    if expected { "allowed" } else { "forbidden" }
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 144);
        assert_eq!(
            TRANSITIONS.len(),
            LEGAL.len(),
            "no duplicate rows in the table"
        );
    }

    #[test]
    fn terminal_states_are_never_left_except_approved_by_revoke() {
        for t in TRANSITIONS {
            if t.from.is_terminal() {
                assert_eq!((t.from, t.to, t.by), (Approved, Revoked, By::Manager));
            }
        }
    }

    #[test]
    fn every_non_terminal_status_can_fail() {
        for s in Status::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(transition(s, Failed).is_some(), "{s} must be able to fail");
        }
    }

    #[test]
    fn transitional_statuses_are_left_only_by_the_system() {
        for t in TRANSITIONS.iter().filter(|t| t.from.is_transitional()) {
            assert_eq!(t.by, By::System, "{} -> {}", t.from, t.to);
        }
    }

    #[test]
    fn status_strings_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Status::parse("Approved"), None);
    }

    #[test]
    fn mermaid_lists_every_transition() {
        let m = mermaid();
        assert_eq!(m.lines().count(), TRANSITIONS.len() + 2);
        assert!(m.contains("in_review --> draft: reviewer"));
    }
}
