//! The workspace registry's bodies and answers (`/api/admin/workspaces/...`, the `TREAdmin`
//! role with a token for the TRE-wide API).

use airlock_domain::HistoryEntry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workspace record as a TRE admin wrote it, and what is in force.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRecordView {
    /// The record as written: `id`, `displayName`, `shortId`, `airlockEnabled`,
    /// `tokenAudience`, `policy` (only the fields it sets), `contacts`. `PUT` it back,
    /// changed, with `If-Match: <etag>`.
    pub record: Value,
    /// The policy the airlock enforces: the record's fields, the operator's defaults
    /// (`AIRLOCK_POLICY_DEFAULTS`) for the rest, built-in defaults for what neither sets.
    pub policy_in_force: Value,
    /// The version of the policy in force (recorded where the gates read a file).
    pub policy_version: String,
    /// The record's version, for `If-Match` (also the answer's `ETag` header).
    pub etag: String,
    /// Entries in the workspace's audit trail.
    pub changes: u64,
}

/// `GET /api/admin/workspaces`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRecordList {
    pub workspaces: Vec<WorkspaceRecordView>,
}

/// A workspace's audit trail (registrations and changes, each with its diff and the policy
/// as set), and whether its hash chain verifies from `workspace:{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceTrail {
    pub workspace_id: String,
    pub history: Vec<HistoryEntry>,
    pub verified: bool,
    /// Index of the first entry that does not verify.
    pub broken_at: Option<u32>,
}
