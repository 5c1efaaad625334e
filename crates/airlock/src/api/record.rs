//! `GET .../requests/{id}/record`: the governance record of a finished request
//! (`airlock_api::governance`), as JSON, a print-ready HTML page or a Five Safes RO-Crate's
//! metadata. For whoever may read the request, showing what they may see.

use super::requests::{RequestPath, load};
use super::{ApiError, InWorkspace, envelope};
use crate::app::Deps;
use airlock_api::governance::{GovernanceRecord, RecordWorkspace};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn record(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "format") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}: the record takes format (json, html or ro-crate)"
        )));
    }
    let format = params.get("format").map_or("json", String::as_str);
    if !["json", "html", "ro-crate"].contains(&format) {
        return Err(ApiError::bad_request(format!(
            "format must be json, html or ro-crate, not {format:?}"
        )));
    }
    let request = load(&deps, &ws, &caller, &id).await?;
    if !request.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "the governance record is made once the request is finished; it is {}",
            request.status
        )));
    }
    let (request, history) = crate::app::record::committed_history(&deps, &ws.id, request).await?;
    let now = deps.clock.now();
    let gates = request.gate_report(&ws.policy, now);
    let record = GovernanceRecord::new(
        envelope(&caller, &request).airlock_request,
        RecordWorkspace {
            id: ws.id.clone(),
            display_name: ws.display_name.clone(),
        },
        gates,
        history,
        &caller.user.id,
        now,
    );
    let attachment = |ext: &str| format!("attachment; filename=\"record-{id}.{ext}\"");
    Ok(match format {
        "html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                // Nothing in the page may run or load: its only style is its own.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'".to_string(),
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                (header::CONTENT_DISPOSITION, attachment("html")),
            ],
            record.html(),
        )
            .into_response(),
        "ro-crate" => (
            [
                (header::CONTENT_TYPE, "application/ld+json".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"ro-crate-metadata.json\"".to_string(),
                ),
            ],
            Json(record.ro_crate()),
        )
            .into_response(),
        _ => Json(record).into_response(),
    })
}
