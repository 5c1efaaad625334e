//! What the API reads and writes: the bodies the handlers parse and the answers they build,
//! and the very types the OpenAPI document's schemas are generated from (`openapi.rs`), so
//! the document cannot drift from the code. The `airlock` command line reads and writes the
//! same types, so a client and the server cannot disagree about a field either.

use crate::domain::{AirlockRequest, Decision, HistoryEntry, RequestType, UserAction};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// Body of `POST /api/workspaces/{workspaceId}/requests`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type")]
    pub request_type: RequestType,
    /// 1 to 200 characters.
    pub title: String,
    /// 1 to 4000 characters.
    pub business_justification: String,
}

/// Body of `review`: `decision` (with `explanation`), or AzureTRE's `approval` (with
/// `decisionExplanation`). An explanation is required to reject or request changes.
///
/// Other fields are ignored, as AzureTRE's own clients send some.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_explanation: Option<String>,
    /// The revision the reviewer looked at (`airlockRequest.revision`). A review of anything
    /// but the current revision is refused with 409; it may be left out only while the
    /// request has had a single revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

/// Body of `justify`: why a file's gate warnings are acceptable (the researcher, in review).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JustifyRequest {
    /// The file's name in the request.
    pub file: String,
    /// 1 to 4000 characters.
    pub justification: String,
}

/// Body of `POST .../requests/{id}/gates/{name}`: an external gate's verdict on every file
/// of the revision it was asked about.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateAnswerRequest {
    /// The `revision` of the `Airlock.GateRequested` event.
    pub revision: u32,
    /// One verdict per file of the request.
    pub files: Vec<crate::domain::gates::FileVerdict>,
}

/// Answer to a gate's verdict: taken, and where the request stands now.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateAnswerReceipt {
    pub request_id: String,
    pub gate: String,
    pub revision: u32,
    /// False when the same answer had been given before (nothing changed).
    pub recorded: bool,
    pub status: crate::domain::Status,
}

/// Body of `revoke`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why the approval is withdrawn (required).
    pub reason: String,
}

/// A request with what the caller may do to it now.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestEnvelope {
    // The record as the API shows it: without the internal outbox.
    #[serde(serialize_with = "without_outbox")]
    #[schemars(with = "AirlockRequest")]
    pub airlock_request: AirlockRequest,
    pub allowed_user_actions: Vec<UserAction>,
}

/// The outbox and the history's tail are the airlock's own bookkeeping (events not yet
/// published, entries not yet in the history store; the trail is at `.../history`), never
/// shown.
fn without_outbox<S: Serializer>(request: &AirlockRequest, s: S) -> Result<S::Ok, S::Error> {
    let mut value = serde_json::to_value(request).map_err(serde::ser::Error::custom)?;
    if let Some(fields) = value.as_object_mut() {
        for internal in ["outbox", "historyTail", "linksIssued", "auditedSinceChange"] {
            fields.remove(internal);
        }
    }
    value.serialize(s)
}

/// A page of requests.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestList {
    pub airlock_requests: Vec<RequestEnvelope>,
    /// Pass back as `continuationToken` for the next page; null on the last page.
    pub continuation_token: Option<String>,
}

/// A container link: HTTPS only, signed with a user-delegation key.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLink {
    pub container_url: String,
    pub expires_at: DateTime<Utc>,
    /// SAS permissions: `acwdl` to upload to a draft, `rl` to read.
    pub permissions: String,
}

/// The audit trail and whether its hash chain verifies.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTrail {
    pub request_id: String,
    pub history: Vec<HistoryEntry>,
    pub verified: bool,
    /// Index of the first entry that does not verify.
    pub broken_at: Option<u32>,
}

/// What a workspace's airlock accepts and how it treats a request: for clients to check files
/// before uploading them (the same limits are enforced at submit).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLimits {
    pub workspace_id: String,
    /// Independent airlock managers whose approval (in one revision) is needed.
    pub approvals_required: u32,
    pub max_files: u32,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// Minutes a download or review link lives.
    pub link_expiry_minutes: u32,
    /// Minutes an upload link lives (ask for a new one at any time while the draft is open).
    pub upload_link_expiry_minutes: u32,
    pub scan_required: bool,
    /// What happens to a file the scanner could not judge: `block`, `review` or `fail`.
    pub unscanned_files: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// `BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `Conflict`, `PayloadTooLarge`,
    /// `ServiceUnavailable` or `InternalError`.
    pub code: String,
    pub message: String,
}

/// Every error answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Error {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}
