//! What the API reads and writes: the bodies the handlers parse and the answers they build,
//! and the very types the OpenAPI document's schemas are generated from (`openapi.rs`), so
//! the document cannot drift from the code. The `airlock` command line reads and writes the
//! same types, so a client and the server cannot disagree about a field either.

use airlock_domain::{Decision, HistoryEntry, RequestType, UserAction};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::registry::{WorkspaceRecordList, WorkspaceRecordView, WorkspaceTrail};
pub use crate::view::{RequestView, epoch_seconds};

/// Body of `POST /api/workspaces/{workspaceId}/requests`. As AzureTRE's `AirlockRequestInCreate`
/// takes it: `title` and `businessJustification` may be left out (AzureTRE's defaults apply),
/// and `properties` (AzureTRE's request parameters, an object) is accepted and ignored.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type")]
    pub request_type: RequestType,
    /// 1 to 200 characters; `Airlock Request` when left out (AzureTRE's default).
    #[serde(default = "default_title")]
    pub title: String,
    /// 1 to 4000 characters; `Business Justifications` when left out (AzureTRE's default).
    #[serde(default = "default_justification")]
    pub business_justification: String,
    /// AzureTRE's request parameters: accepted for its clients' sake, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_title() -> String {
    "Airlock Request".into()
}

fn default_justification() -> String {
    "Business Justifications".into()
}

/// Body of `review`: `decision` (with `explanation`), or AzureTRE's `approval` (with
/// `decisionExplanation`). An explanation is required to reject or request changes.
/// `approval` is read as AzureTRE's model reads a boolean: `true`/`false`, `1`/`0`, or the
/// strings `true`, `false`, `yes`, `no`, `on`, `off`, `t`, `f`, `y`, `n`, `1`, `0` in any case
/// (AzureTRE's own test sends `"True"`).
///
/// Other fields are ignored, as AzureTRE's own clients send some.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lax_bool"
    )]
    #[schemars(with = "Option<LaxBool>")]
    pub approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_explanation: Option<String>,
    /// The revision the reviewer looked at (`airlockRequest.revision`). A review of anything
    /// but the current revision is refused with 409; it may be left out only while the
    /// request has had a single revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// A decision per file (`decision` then applies to the files not listed). In a
    /// consolidation, exactly the files the independent reviewers disagree about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<airlock_domain::request::FileDecision>>,
}

/// A boolean as AzureTRE's model (pydantic) accepts one.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum LaxBool {
    Bool(bool),
    Number(u8),
    Text(String),
}

fn lax_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed = match &value {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "approval must be a boolean (true/false, or \"true\"/\"false\"), not {value}"
        ))
    })
}

/// Body of `POST .../comments`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentRequest {
    /// Markdown, 1 to 8000 characters.
    pub text: String,
    /// The file it is about; leave out for the request as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `everyone` (default) or `reviewers` (reviewers only; reviewers may choose it).
    #[serde(default)]
    pub visibility: airlock_domain::request::Visibility,
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
    pub files: Vec<airlock_domain::gates::FileVerdict>,
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
    pub status: airlock_domain::Status,
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
    /// The request as the API shows it ([`RequestView`]).
    pub airlock_request: RequestView,
    pub allowed_user_actions: Vec<UserAction>,
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
    pub code: ErrorCode,
    pub message: String,
}

/// What went wrong, for a program to act on (the message is for people). Each code comes
/// with one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ErrorCode {
    /// 400: bad input, or the request's status does not allow this.
    BadRequest,
    /// 401: no token, or one that does not verify or is not for this workspace.
    Unauthorized,
    /// 403: the caller's role does not allow this.
    Forbidden,
    /// 404: unknown workspace, request or route.
    NotFound,
    /// 409: a conflict with the resource as it is now: its status does not allow this, it
    /// changed concurrently (read it again), or an `Idempotency-Key` named another change.
    Conflict,
    /// 412: the request changed since the version named in `If-Match`.
    PreconditionFailed,
    /// 428: a change to a versioned record needs `If-Match` with the version it was read at.
    PreconditionRequired,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 429: too many calls from this caller (or connections): wait `Retry-After` seconds.
    TooManyRequests,
    /// 503: a service the airlock depends on is unavailable: wait `Retry-After` seconds.
    ServiceUnavailable,
    /// 500: a fault of the airlock's own; the message carries a correlation id.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order above.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PreconditionFailed,
        ErrorCode::PreconditionRequired,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyRequests,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::PreconditionRequired => 428,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::InternalError => 500,
        }
    }

    /// The code's name as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::PreconditionFailed => "PreconditionFailed",
            ErrorCode::PreconditionRequired => "PreconditionRequired",
            ErrorCode::PayloadTooLarge => "PayloadTooLarge",
            ErrorCode::TooManyRequests => "TooManyRequests",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::InternalError => "InternalError",
        }
    }
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

/// A workspace whose airlock is on, and how to get a token for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSummary {
    pub id: String,
    pub display_name: String,
    /// The `aud` the workspace's API calls need.
    pub token_audience: String,
    /// The scope to ask the identity provider for (`{tokenAudience}/.default`).
    pub scope: String,
}

/// `GET /api/workspaces`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceSummary>,
}

/// How the web app signs people in (`/api/app/config.json`); `signIn` is absent when the
/// Function App has no web app registration (the page then says so).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<WebSignIn>,
}

/// The web app's OpenID Connect client: authorization code with PKCE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebSignIn {
    /// `https://login.microsoftonline.com/{tenant}`: the page uses
    /// `{authority}/oauth2/v2.0/authorize` and `/oauth2/v2.0/token`.
    pub authority: String,
    /// The web app's (single-page application) client id.
    pub client_id: String,
    /// The TRE-wide API's scope (lists the workspaces); each workspace's scope comes from
    /// `GET /api/workspaces`.
    pub api_scope: String,
}

/// `POST .../requests/{id}/preflight`: what the workspace's gates find in a draft's files now,
/// before anything is sealed or submitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreflightReport {
    pub request_id: String,
    /// Whether a submit now would be blocked (a `block` finding, or files the workspace's
    /// limits refuse).
    pub would_block: bool,
    /// What the workspace's limits refuse outright (names, sizes, number of files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    pub files: Vec<FilePreflight>,
    /// What was not checked here and why (the malware scan and external gates run after
    /// submit; the release ledger compares with earlier releases at the seal).
    pub not_checked: Vec<String>,
}

/// One draft file's findings, each with what to do about it (`remediation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilePreflight {
    pub name: String,
    pub size: u64,
    pub findings: Vec<airlock_domain::gates::Finding>,
}
