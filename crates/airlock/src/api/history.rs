//! The audit trail, and the workspace's limits (what its airlock accepts).

use super::requests::{ApiResult, RequestPath, load};
use super::types::{AuditTrail, WorkspaceLimits};
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::domain::access;
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

/// The audit trail, with the result of checking its hash chain.
pub async fn history(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<AuditTrail> {
    let request = load(&deps, &ws, &caller, &id).await?;
    let (request, history) = crate::app::record::committed_history(&deps, &ws.id, request).await?;
    let check =
        crate::domain::request::verify_history(&request.id, &history, &request.history_head);
    Ok(Json(AuditTrail {
        verified: check.is_ok(),
        broken_at: check.err().map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
        request_id: request.id,
        history,
    }))
}

/// The workspace's limits, for anyone with an airlock role in it.
pub async fn limits(InWorkspace { ws, caller }: InWorkspace) -> ApiResult<WorkspaceLimits> {
    access::may_read_limits(&caller).map_err(ApiError::forbidden)?;
    let p = &ws.policy;
    Ok(Json(WorkspaceLimits {
        workspace_id: ws.id.clone(),
        approvals_required: p.approvals_required,
        max_files: p.max_files,
        max_file_bytes: p.max_file_bytes,
        max_total_bytes: p.max_total_bytes,
        link_expiry_minutes: p.link_minutes(false),
        upload_link_expiry_minutes: p.link_minutes(true),
        scan_required: p.scan_required,
        unscanned_files: match p.unscanned_files {
            crate::domain::policy::UnscannedFiles::Block => "block",
            crate::domain::policy::UnscannedFiles::Review => "review",
            crate::domain::policy::UnscannedFiles::Fail => "fail",
        }
        .into(),
    }))
}
