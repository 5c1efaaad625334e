//! The request record and every change that may happen to it. Each change checks the
//! lifecycle table, appends to the audit history and, when the status changes, queues the
//! events in the record's outbox, so that the caller can persist all of it in one
//! conditional write.

mod commands;
mod comments;
mod context;
mod deadlines;
mod diff;
mod external_gates;
mod gate_report;
mod history;
mod idempotency;
mod outbox;
mod review;
mod sealing;
mod shown;
pub mod table_diff;

use super::events::PendingEvent;
use super::lifecycle::{self, Status};
use super::policy::check_files;
pub use super::request_type::RequestType;
use super::stages::StageRole;
use super::workspace::Workspace;
use chrono::{DateTime, Utc};
pub use commands::{PREFLIGHT, PREFLIGHT_INTERVAL};
pub use comments::{Comment, MAX_COMMENT_CHARS, MAX_COMMENTS, NewComment, Visibility};
pub use context::{FileContext, MAX_CONTEXT_CHARS, SubmitContext};
pub use deadlines::{Overdue, REVIEW_ESCALATED, REVIEW_REMINDED};
pub use diff::{FileChange, FileDiff, RevisionDiff, SinceYourVote};
pub use external_gates::{GateAnswer, GateRun, MAX_GATE_MESSAGE_CHARS};
pub use gate_report::{GateFileResult, GateReport, GateState, GateStatus};
pub use history::{HistoryEntry, HistoryHead, IssuedLink, merge_tail, verify_history};
pub use idempotency::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_CHARS};
pub use outbox::{
    CommentedRequest, GateFile, GateRequestedData, GateWarning, NotificationData, NotifiedRequest,
    NotifiedWorkspace, OverrideNote, Recipients, recipients, status_change_events,
};
pub use review::{FileDecision, OVERRIDE, Override, VOTES_CARRIED};
use serde::{Deserialize, Serialize};
pub use shown::FileView;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct User {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl User {
    /// The id of the airlock itself in history entries and reviews; no person may have it.
    pub const SYSTEM_ID: &'static str = "system";

    /// The actor for changes the airlock makes by itself.
    pub fn system() -> User {
        User {
            id: Self::SYSTEM_ID.into(),
            name: "Airlock".into(),
            email: None,
        }
    }
}

/// A malware scan verdict for one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanVerdict {
    /// The scanner's words: `No threats found`, `Malicious`, or an error text.
    pub result: String,
    #[serde(default)]
    pub malware_names: Vec<String>,
    pub scanned_at: DateTime<Utc>,
    /// ETag of the blob the verdict is about, when the scanner says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

pub const CLEAN_VERDICT: &str = "No threats found";

/// What a verdict says about the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    Clean,
    Malicious,
    /// The scanner could not judge the file (error, too large, encrypted, throttled, ...).
    Unscanned,
}

impl ScanVerdict {
    pub fn is_clean(&self) -> bool {
        self.result == CLEAN_VERDICT
    }

    pub fn kind(&self) -> VerdictKind {
        if self.is_clean() {
            VerdictKind::Clean
        } else if !self.malware_names.is_empty()
            || self.result.to_ascii_lowercase().contains("malicious")
        {
            VerdictKind::Malicious
        } else {
            VerdictKind::Unscanned
        }
    }

    /// Whether this verdict fails the request (the scanner could not judge the file, and
    /// the workspace fails such requests rather than blocking or reviewing them).
    pub fn fails_request(&self, policy: &super::policy::WorkspacePolicy) -> bool {
        self.kind() == VerdictKind::Unscanned
            && policy.scan_required
            && policy.unscanned_files == super::policy::UnscannedFiles::Fail
    }

    /// Whether this verdict lets a file go to review under `policy`.
    pub fn passes(&self, policy: &super::policy::WorkspacePolicy) -> bool {
        match self.kind() {
            VerdictKind::Clean => true,
            VerdictKind::Malicious => false,
            // A workspace that does not require scanning does not require a verdict on
            // the content either; one that does decides by `unscannedFiles`.
            VerdictKind::Unscanned => {
                !policy.scan_required
                    || policy.unscanned_files == super::policy::UnscannedFiles::Review
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    /// ETag of the draft blob when it was submitted: the seal copies exactly this version,
    /// so an overwrite after submit (the upload link is still valid) fails the request
    /// instead of changing what is reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_etag: Option<String>,
    /// sha256 (hex) of the sealed copy in the in-progress stage.
    #[serde(default)]
    pub sha256: Option<String>,
    /// ETag of the sealed copy that was hashed; scan verdicts must be about this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// When the sealed copy was hashed; the scan deadline runs from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scan: Option<ScanVerdict>,
    /// The stage the file was last confirmed in by the data movement under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived_in: Option<StageRole>,
    /// What the workspace's gates found in the sealed copy (checked as it was hashed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<super::gates::Finding>,
    /// The researcher's reason why this file's warnings are acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<Justification>,
    /// What the file is, in the researcher's words (given at submit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The disclosure controls applied to it (given at submit; outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_controls: Option<String>,
    /// Shown to the reviewers, never released (said at submit, or found to be part of an
    /// ACRO record once sealed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supporting: bool,
    /// Which gates read the sealed copy, under which version of the workspace's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates_read: Option<GatesRead>,
    /// The label columns of a table (lower case), read at the seal: tables of one request
    /// that share some are shown to the reviewer as linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_labels: Option<Vec<String>>,
    /// What the file says as part of an ACRO record (read at the seal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<super::gates::Evidence>,
    /// The ACRO output this file belongs to, from the request's ACRO record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acro: Option<super::gates::AcroOutput>,
    /// The review's final decision on this file; in an approved request a `rejected` file is
    /// withheld (a partial release) and never reaches the approved stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The gates that read a sealed copy, and the policy version they ran under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatesRead {
    pub policy_version: String,
    pub gates: Vec<String>,
}

/// Why a file's gate warnings are acceptable, in the researcher's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Justification {
    pub by: String,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// Longest justification accepted, in characters.
pub const MAX_JUSTIFICATION_CHARS: usize = 4000;

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// What a person writes is taken when it has something besides white space and at most
/// `max` characters as sent (the API's published schema counts so); it is kept trimmed.
pub(crate) fn is_written(text: &str, max: usize) -> bool {
    text.chars().count() <= max && !text.trim().is_empty()
}

/// Cosmos DB refuses an item whose JSON is over 2 MB; so does the in-memory store.
pub const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;
/// What a person's action may leave a request's record at (comments, justifications, file
/// context, review explanations, gate messages all count): the rest of
/// [`MAX_RECORD_BYTES`] is kept for the airlock's own entries (verdicts, hashes, history,
/// data moves), so its later writes (a review, a revoke, `Reconcile`) always fit.
pub const USER_RECORD_BYTES: usize = 1536 * 1024;

impl FileRecord {
    /// Whether a verdict about the sealed version is on record (one about an earlier copy,
    /// overwritten before the seal, does not count: that version is not what is reviewed).
    pub fn has_verdict_for_seal(&self) -> bool {
        self.scan
            .as_ref()
            .is_some_and(|v| v.etag.is_none() || self.etag.is_none() || v.etag == self.etag)
    }

    /// Left out of a partial release: the review rejected this file.
    pub fn withheld(&self) -> bool {
        self.decision == Some(Decision::Rejected)
    }

    /// Whether an approval copies this file out: neither withheld nor a supporting file.
    pub fn released(&self) -> bool {
        !self.withheld() && !self.supporting
    }

    /// What the researcher said about the file.
    pub fn context(&self) -> FileContext {
        FileContext {
            name: self.name.clone(),
            description: self.description.clone(),
            disclosure_controls: self.disclosure_controls.clone(),
            supporting: self.supporting,
        }
    }

    /// Warnings the workspace wants justified, without a justification yet.
    pub fn awaits_justification(&self) -> bool {
        self.justification.is_none() && self.findings.iter().any(|f| f.needs_justification)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    ChangesRequested,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    pub reviewer: User,
    /// The review as a whole: `approved` when every file it decided is approved,
    /// `changes_requested` when any file needs changes, else `rejected`.
    pub decision: Decision,
    pub explanation: String,
    pub revision: u32,
    pub created_when: DateTime<Utc>,
    /// The decision on each file (every file of the revision; in a consolidation, the
    /// conflicted ones). Empty in records made before per-file decisions: `decision` is then
    /// every file's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDecision>,
    /// A final decision on the files independent reviewers disagreed about.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consolidation: bool,
    /// The workspace policy the review was made under ([`crate::policy::WorkspacePolicy::version`]): the
    /// rules it met (approvals, overrides, carry-over) are those of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The status message of a request failed for files its scanner could not judge.
fn unscanned_failure(files: &[String]) -> String {
    format!(
        "not scanned, and this workspace fails requests with files the scanner cannot judge: {}",
        files.join("; ")
    )
}

/// The airlock request record (DESIGN §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AirlockRequest {
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
    #[serde(default)]
    pub status_message: Option<String>,
    /// When the request entered its status (how long a review has waited; the reviewer
    /// deadline counts from here). Records from before it was kept use `updatedWhen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    pub revision: u32,
    pub created_by: User,
    pub created_when: DateTime<Utc>,
    pub updated_by: User,
    pub updated_when: DateTime<Utc>,
    #[serde(default)]
    pub files: Vec<FileRecord>,
    #[serde(default)]
    pub reviews: Vec<Review>,
    /// External gates asked about each revision, and their answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_runs: Vec<GateRun>,
    /// The files' context from the revision sent back for changes, carried over to the
    /// resubmission for files of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(skip)]
    pub carried_context: Vec<FileContext>,
    /// Independent reviews this revision needs (the workspace's `approvalsRequired` when it
    /// was submitted: a policy change does not move the goalposts of a review under way).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub review_quorum: u32,
    /// The conversation about the request and its files, across revisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
    /// Where the audit trail ends; the trail itself is in its own store (see `history`).
    #[serde(default)]
    pub history_head: HistoryHead,
    /// Entries written with the latest change that the history store may not hold yet: the
    /// workflow appends them after the write and drops them at the next change.
    #[serde(default)]
    #[schemars(skip)]
    pub history_tail: Vec<HistoryEntry>,
    /// The latest link each person was issued since the last status change, so the same link
    /// asked for again is not recorded again.
    #[serde(default)]
    #[schemars(skip)]
    pub links_issued: Vec<IssuedLink>,
    /// Actions audited since the last status change (work done for the current status is
    /// recorded once, whatever the number of deliveries).
    #[serde(default)]
    #[schemars(skip)]
    pub audited_since_change: Vec<String>,
    /// When `Reconcile` asked the malware scanner to scan this status's files again because
    /// a verdict was overdue (cleared by a status change): a verdict is given up on only a
    /// further scan timeout after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub rescan_requested_at: Option<DateTime<Utc>>,
    /// When the researcher last ran a pre-flight check of the draft (they are rate-limited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight_at: Option<DateTime<Utc>>,
    /// Who wrote, or could have written, the request's data: its creator, everyone issued an
    /// upload link for it, and whoever submitted it. None of them may review it.
    #[serde(default)]
    pub contributors: Vec<String>,
    #[serde(default)]
    #[schemars(skip)]
    pub outbox: Vec<PendingEvent>,
}

/// A blob in the draft at submit: what is submitted is exactly this version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftFile {
    pub name: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// The history action of an issued link.
pub const LINK_ISSUED: &str = "link issued";
/// The history action of a preview of a file's content through the API.
pub const FILE_PREVIEWED: &str = "file previewed";
/// The history action of an auditor reading a request.
pub const AUDITOR_READ: &str = "read by auditor";

/// The history action written once a final status's clean-up has run (`Reconcile` re-drives
/// final requests without it).
pub const DATA_REMOVED: &str = "data removed";

/// The history action of asking the malware scanner for overdue verdicts again.
pub const RESCAN_REQUESTED: &str = "rescan requested";

/// Where a submitted request's malware scan verdicts stand (see [`AirlockRequest::verdict_wait`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerdictWait {
    /// Every verdict is in, or still within its time.
    OnTime,
    /// These files' verdicts are overdue and no rescan was asked for yet: ask for one.
    AskRescan(Vec<String>),
    /// Still no verdict for these files a further timeout after the rescan was asked for.
    Overdue(Vec<String>),
}

/// Why a contributor may not review (separation of duties).
pub const NOT_INDEPENDENT: &str =
    "you created, submitted or were given an upload link for this request, so you cannot review it";

/// Why a change was refused. Each maps to one HTTP status in the API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The lifecycle forbids it in the current status (409: a conflict with the request's
    /// state, not bad input).
    #[error("cannot {action} a request that is {status}")]
    IllegalTransition {
        action: &'static str,
        status: Status,
    },
    /// The input is not acceptable (400).
    #[error("{0}")]
    Invalid(String),
    /// Separation of duties (403).
    #[error("{0}")]
    Forbidden(String),
    /// The caller acted on a version of the request that is no longer current (409).
    #[error("{0}")]
    Stale(String),
    /// The caller already did this to the request as it is (a second vote on one revision):
    /// a conflict with its state (409), not bad input.
    #[error("{0}")]
    AlreadyDone(String),
    /// An `Idempotency-Key` already named a different change (409).
    #[error("{0}")]
    KeyReused(String),
}

impl AirlockRequest {
    /// The record's size as stored (its JSON).
    pub fn stored_bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// Refuses a record over `budget` bytes, saying what fills it.
    pub fn check_size(&self, budget: usize) -> Result<(), DomainError> {
        let size = self.stored_bytes();
        if size <= budget {
            return Ok(());
        }
        let comments: usize = self.comments.iter().map(|c| c.text.len()).sum();
        Err(DomainError::Invalid(format!(
            "this request's record would hold {size} bytes, more than the {budget} a request may ({} comment(s) take {comments} bytes): shorten what you write, or start a new request",
            self.comments.len()
        )))
    }
}

/// What a system step did, so handlers can log it and skip needless writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The record changed and must be saved.
    Changed,
    /// The event was already accounted for or no longer applies; nothing to save.
    Unchanged(String),
}

/// Everything a change needs besides the record: the time and the workspace (for
/// notifications and policy).
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub workspace: &'a Workspace,
}

impl AirlockRequest {
    /// A new draft, with its creation queued for the `StatusChanged` function (which creates
    /// the draft container).
    pub fn create(
        id: String,
        request_type: RequestType,
        title: String,
        business_justification: String,
        creator: User,
        ctx: &Ctx,
    ) -> Result<Self, DomainError> {
        if !is_written(&title, MAX_TITLE_CHARS) {
            return Err(DomainError::Invalid(format!(
                "title must be 1 to {MAX_TITLE_CHARS} characters"
            )));
        }
        if !is_written(&business_justification, MAX_JUSTIFICATION_CHARS) {
            return Err(DomainError::Invalid(
                "businessJustification must be 1 to 4000 characters".into(),
            ));
        }
        let title = title.trim().to_string();
        let business_justification = business_justification.trim().to_string();
        let mut req = AirlockRequest {
            id,
            workspace_id: ctx.workspace.id.clone(),
            request_type,
            title,
            business_justification,
            purpose: None,
            status: Status::Draft,
            status_message: None,
            status_since: Some(ctx.now),
            revision: 1,
            created_by: creator.clone(),
            created_when: ctx.now,
            updated_by: creator.clone(),
            updated_when: ctx.now,
            files: vec![],
            reviews: vec![],
            history_head: HistoryHead::default(),
            history_tail: vec![],
            links_issued: vec![],
            audited_since_change: vec![],
            rescan_requested_at: None,
            preflight_at: None,
            contributors: vec![creator.id.clone()],
            gate_runs: vec![],
            carried_context: vec![],
            review_quorum: 0,
            comments: vec![],
            outbox: vec![],
        };
        req.log(ctx, &creator, "created", None, Some(Status::Draft), None);
        req.outbox = status_change_events(&req, None, ctx.workspace, ctx.now);
        Ok(req)
    }

    fn log(
        &mut self,
        ctx: &Ctx,
        by: &User,
        action: &str,
        from: Option<Status>,
        to: Option<Status>,
        message: Option<String>,
    ) {
        let mut entry = HistoryEntry {
            seq: self.history_head.length,
            at: ctx.now,
            by: by.id.clone(),
            action: action.to_string(),
            from,
            to,
            message,
            details: None,
            hash: String::new(),
        };
        let previous = if self.history_head.length == 0 {
            self.id.as_str()
        } else {
            self.history_head.hash.as_str()
        };
        entry.hash = entry.chain_hash(previous);
        self.history_head = HistoryHead {
            length: entry.seq + 1,
            hash: entry.hash.clone(),
        };
        if to.is_some() {
            self.links_issued.clear();
            self.audited_since_change.clear();
            self.rescan_requested_at = None;
        } else if !self.audited_since_change.iter().any(|a| a == action) {
            self.audited_since_change.push(action.to_string());
        }
        self.history_tail.push(entry);
    }

    /// The fields a list shows and acts on (what the request is, its status, files, reviews,
    /// who contributed): without the outbox, the history's tail, issued links, gate runs and
    /// comments, which can be most of a record and are read with the request itself.
    pub const SUMMARY_FIELDS: [&'static str; 19] = [
        "id",
        "workspaceId",
        "type",
        "title",
        "businessJustification",
        "purpose",
        "status",
        "statusMessage",
        "statusSince",
        "revision",
        "createdBy",
        "createdWhen",
        "updatedBy",
        "updatedWhen",
        "files",
        "reviews",
        "historyHead",
        "contributors",
        "reviewQuorum",
    ];

    /// This record as a list shows it ([`Self::SUMMARY_FIELDS`]).
    pub fn summary(&self) -> AirlockRequest {
        AirlockRequest {
            gate_runs: Vec::new(),
            history_tail: Vec::new(),
            links_issued: Vec::new(),
            audited_since_change: Vec::new(),
            rescan_requested_at: None,
            preflight_at: None,
            carried_context: Vec::new(),
            comments: Vec::new(),
            outbox: Vec::new(),
            ..self.clone()
        }
    }

    /// In a final status whose clean-up (the other stages' copies removed) is not on the
    /// record yet.
    pub fn awaits_clean_up(&self) -> bool {
        self.status.is_terminal() && !self.audited_since_change(DATA_REMOVED)
    }

    /// Whether `action` was audited since the last status change.
    pub fn audited_since_change(&self, action: &str) -> bool {
        self.audited_since_change.iter().any(|a| a == action)
    }

    /// Drops tail entries the history store is known to hold (those before `seq`).
    pub fn history_stored_before(&mut self, seq: u64) {
        self.history_tail.retain(|e| e.seq >= seq);
    }

    /// Records an audit entry that is not a status change (e.g. a link issued).
    pub fn audit(&mut self, ctx: &Ctx, by: &User, action: &str, message: String) {
        self.log(ctx, by, action, None, None, Some(message));
    }

    /// Whether `user_id` wrote, or could have written, this request's data (see
    /// [`AirlockRequest::contributors`]); records from before that field count the creator.
    pub fn is_contributor(&self, user_id: &str) -> bool {
        self.created_by.id == user_id || self.contributors.iter().any(|c| c == user_id)
    }

    fn add_contributor(&mut self, user_id: &str) {
        if !self.is_contributor(user_id) {
            self.contributors.push(user_id.to_string());
        }
    }

    /// A link was issued (who, what, until when goes on the record). A link that can write
    /// makes its holder a contributor, who may then not review the request. The same link
    /// asked for again (same person, stage, rights and expiry, since the last status change)
    /// is already on the record and is not written twice: a caller in a loop cannot grow the
    /// record.
    pub fn record_link_issued(
        &mut self,
        ctx: &Ctx,
        by: &User,
        can_write: bool,
        note: String,
    ) -> Applied {
        let on_record = self
            .links_issued
            .iter()
            .any(|l| l.by == by.id && l.note == note);
        if on_record {
            return Applied::Unchanged("this link is already on the record".into());
        }
        self.links_issued.retain(|l| l.by != by.id);
        self.links_issued.push(IssuedLink {
            by: by.id.clone(),
            note: note.clone(),
        });
        if can_write {
            self.add_contributor(&by.id);
        }
        self.audit(ctx, by, LINK_ISSUED, note);
        Applied::Changed
    }

    /// `by` was shown the content of `file` (a preview through the API). On the record once per
    /// person and file until the status changes, like a link: looking again is not news, and a
    /// page that re-renders cannot grow the record (at most one entry per file per person).
    pub fn record_preview(&mut self, ctx: &Ctx, by: &User, file: &str) -> Applied {
        let note = format!("preview of {file:?}");
        if self
            .links_issued
            .iter()
            .any(|l| l.by == by.id && l.note == note)
        {
            return Applied::Unchanged("this preview is already on the record".into());
        }
        self.links_issued.push(IssuedLink {
            by: by.id.clone(),
            note: note.clone(),
        });
        self.audit(ctx, by, FILE_PREVIEWED, format!("{} saw a {note}", by.id));
        Applied::Changed
    }

    /// An auditor read the request (`what`: the request, its trail, its gate report...). On the
    /// record once per auditor until the status changes, as a preview is: the reads in between
    /// are in the log, and a page that polls cannot grow the record.
    pub fn record_auditor_read(&mut self, ctx: &Ctx, by: &User) -> Applied {
        let note = "audit read".to_string();
        if self
            .links_issued
            .iter()
            .any(|l| l.by == by.id && l.note == note)
        {
            return Applied::Unchanged("this auditor's read is already on the record".into());
        }
        self.links_issued.push(IssuedLink {
            by: by.id.clone(),
            note,
        });
        self.audit(
            ctx,
            by,
            AUDITOR_READ,
            format!(
                "{} (auditor) read the request in status {}",
                by.id, self.status
            ),
        );
        Applied::Changed
    }

    /// Moves to `to` if the lifecycle table allows it, with history and outbox events.
    fn transition(
        &mut self,
        to: Status,
        by: &User,
        action: &'static str,
        message: Option<String>,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        let from = self.status;
        if lifecycle::transition(from, to).is_none() {
            return Err(DomainError::IllegalTransition {
                action,
                status: from,
            });
        }
        self.status = to;
        self.status_since = Some(ctx.now);
        self.status_message = message.clone();
        self.updated_by = by.clone();
        self.updated_when = ctx.now;
        self.log(ctx, by, action, Some(from), Some(to), message);
        self.outbox.extend(status_change_events(
            self,
            Some(from),
            ctx.workspace,
            ctx.now,
        ));
        Ok(())
    }

    /// Takes the outbox's events for publishing; the caller clears them after publishing.
    pub fn pending_event_ids(&self) -> Vec<String> {
        self.outbox.iter().map(|p| p.event.id.clone()).collect()
    }

    /// Drops the events that were published.
    pub fn clear_published(&mut self, ids: &[String]) -> bool {
        let before = self.outbox.len();
        self.outbox.retain(|p| !ids.contains(&p.event.id));
        self.outbox.len() != before
    }
}

#[cfg(test)]
mod tests;
