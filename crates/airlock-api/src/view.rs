//! What the API says about a request: its own types, built from the stored record, declared
//! field by field. The record keeps bookkeeping the API never shows (the outbox, the history's
//! tail, issued links, which copy arrived where, the submitted version); a field added to the
//! record reaches a client only once it is added here, and a test (below) makes every stored
//! field a decision: shown here, or named internal.
//!
//! The shape is AzureTRE's where AzureTRE has one, so its clients read it too:
//! `createdWhen`/`updatedWhen` are epoch seconds (numbers), the same instants as RFC 3339 are
//! `createdAt`/`updatedAt`; each review also carries `reviewDecision`, `decisionExplanation`
//! and `dateCreated`; `resourceVersion` counts the changes.

pub use airlock_domain::request::FileView;
use airlock_domain::request::{Comment, FileDecision, GateRun, HistoryHead, RequestType};
use airlock_domain::{AirlockRequest, Decision, Review, Status, User};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Seconds since the epoch, as AzureTRE writes its timestamps (`createdWhen`, `updatedWhen`,
/// `dateCreated`).
pub fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// A request as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub workspace_id: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub title: String,
    pub business_justification: String,
    /// What the request is for (given at submit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub status: Status,
    /// Why the request failed or was blocked, in words for people.
    #[serde(default)]
    pub status_message: Option<String>,
    /// When the request entered its status (RFC 3339): how long it has waited for review;
    /// the workspace's review deadline counts from it. Absent on requests older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    /// 1 at the first submit, one more at each resubmission after changes were requested.
    pub revision: u32,
    pub created_by: User,
    /// When the request was created (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// When the request was created, seconds since 1970-01-01T00:00:00Z (AzureTRE's form).
    pub created_when: f64,
    pub updated_by: User,
    /// When the request last changed (RFC 3339).
    pub updated_at: DateTime<Utc>,
    /// When the request last changed, seconds since 1970-01-01T00:00:00Z (AzureTRE's form).
    pub updated_when: f64,
    #[serde(default)]
    pub files: Vec<FileView>,
    #[serde(default)]
    pub reviews: Vec<ReviewView>,
    /// External gates asked about each revision, and their answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_runs: Vec<GateRun>,
    /// Independent reviews this revision needs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub review_quorum: u32,
    /// The conversation about the request and its files, across revisions (as the caller
    /// may see it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
    /// Where the audit trail ends (its length and last hash); the trail is at `.../history`.
    #[serde(default)]
    pub history_head: HistoryHead,
    /// Who wrote, or could have written, the request's data; none of them may review it.
    #[serde(default)]
    pub contributors: Vec<String>,
    /// How many changes the request has had (AzureTRE's `resourceVersion`).
    pub resource_version: u64,
}

/// AzureTRE's decision word for a review: a request for changes shows as `rejected`, which is
/// the nearest AzureTRE has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AzureTreDecision {
    Approved,
    Rejected,
}

/// A review as the API shows it (as the caller may see it: blinded reviews are hidden from
/// other reviewers until the review ends).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    pub id: String,
    pub reviewer: User,
    /// The review as a whole: `approved` when every file it decided is approved,
    /// `changes_requested` when any file needs changes, else `rejected`.
    pub decision: Decision,
    pub explanation: String,
    pub revision: u32,
    /// When the review was made (RFC 3339).
    pub created_when: DateTime<Utc>,
    /// The decision on each file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDecision>,
    /// A final decision on the files independent reviewers disagreed about.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consolidation: bool,
    /// The version of the workspace policy the review was made under (the registry's
    /// `policyVersion`; none for reviews made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// AzureTRE's decision: changes requested show as rejected.
    pub review_decision: AzureTreDecision,
    /// AzureTRE's name for `explanation`.
    pub decision_explanation: String,
    /// When the review was made, seconds since 1970-01-01T00:00:00Z (AzureTRE's form).
    pub date_created: f64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        ReviewView {
            id: r.id.clone(),
            reviewer: r.reviewer.clone(),
            decision: r.decision,
            explanation: r.explanation.clone(),
            revision: r.revision,
            created_when: r.created_when,
            files: r.files.clone(),
            consolidation: r.consolidation,
            policy_version: r.policy_version.clone(),
            review_decision: match r.decision {
                Decision::Approved => AzureTreDecision::Approved,
                Decision::Rejected | Decision::ChangesRequested => AzureTreDecision::Rejected,
            },
            decision_explanation: r.explanation.clone(),
            date_created: epoch_seconds(r.created_when),
        }
    }
}

/// The record as stored, shown: call it on the record as the caller may see it
/// ([`AirlockRequest::visible_to`]).
impl From<&AirlockRequest> for RequestView {
    fn from(r: &AirlockRequest) -> Self {
        RequestView {
            id: r.id.clone(),
            workspace_id: r.workspace_id.clone(),
            request_type: r.request_type,
            title: r.title.clone(),
            business_justification: r.business_justification.clone(),
            purpose: r.purpose.clone(),
            status: r.status,
            status_message: r.status_message.clone(),
            status_since: r.status_since,
            revision: r.revision,
            created_by: r.created_by.clone(),
            created_at: r.created_when,
            created_when: epoch_seconds(r.created_when),
            updated_by: r.updated_by.clone(),
            updated_at: r.updated_when,
            updated_when: epoch_seconds(r.updated_when),
            files: r.files.iter().map(FileView::from).collect(),
            reviews: r.reviews.iter().map(ReviewView::from).collect(),
            gate_runs: r.gate_runs.clone(),
            review_quorum: r.review_quorum,
            comments: r.comments.clone(),
            history_head: r.history_head.clone(),
            contributors: r.contributors.clone(),
            resource_version: r.history_head.length,
        }
    }
}

/// Stored fields the API never shows, with why: bookkeeping of the workflow.
pub const INTERNAL_REQUEST_FIELDS: [&str; 7] = [
    // events not yet published
    "outbox",
    // entries the history store may not hold yet; the trail is at `.../history`
    "historyTail",
    // links issued since the last status change (they are in the trail)
    "linksIssued",
    // work recorded for the current status
    "auditedSinceChange",
    // context carried to a resubmission, shown once the files are submitted again
    "carriedContext",
    // when Reconcile asked for a rescan
    "rescanRequestedAt",
    // when the last pre-flight check ran (they are spaced out; each is in the trail)
    "preflightAt",
];

/// Stored file fields the API never shows.
pub const INTERNAL_FILE_FIELDS: [&str; 5] = [
    // which gates read the sealed copy, under which policy version: in the gate report
    "gatesRead",
    // a table's label columns, for the linked-tables check: shown as that check's findings
    "tableLabels",
    // the draft version submitted (the seal copies it; `etag` is the sealed one)
    "submittedEtag",
    // what the seal read from a file of an ACRO record; shown as `acro` on the output's files
    "evidence",
    // which stage the movement under way last confirmed
    "arrivedIn",
];

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_domain::FileRecord;
    use std::collections::BTreeSet;

    /// Every field of `T` as its JSON schema declares it (fields skipped in the schema too).
    fn declared<T: JsonSchema>() -> BTreeSet<String> {
        let schema = schemars::schema_for!(T);
        let value = schema.as_value();
        value["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every stored field is a decision: shown in the view or named internal; and the view
    /// shows nothing that is not stored or derived from what is.
    #[test]
    fn every_stored_field_is_shown_or_named_internal() {
        for (stored, view, internal, derived) in [
            (
                declared::<AirlockRequest>(),
                declared::<RequestView>(),
                INTERNAL_REQUEST_FIELDS.to_vec(),
                vec!["createdAt", "updatedAt", "resourceVersion"],
            ),
            (
                declared::<FileRecord>(),
                declared::<FileView>(),
                INTERNAL_FILE_FIELDS.to_vec(),
                vec![],
            ),
            (
                declared::<Review>(),
                declared::<ReviewView>(),
                vec![],
                vec!["reviewDecision", "decisionExplanation", "dateCreated"],
            ),
        ] {
            for field in &stored {
                assert!(
                    view.contains(field) || internal.contains(&field.as_str()),
                    "stored field {field:?} is neither in the API's view nor named internal"
                );
            }
            for field in &view {
                assert!(
                    stored.contains(field) || derived.contains(&field.as_str()),
                    "the view shows {field:?}, which is neither stored nor derived"
                );
                assert!(!internal.contains(&field.as_str()), "{field:?} is internal");
            }
        }
    }
}
