//! Gates: each gate's result with its evidence, and an external gate's answer.

use super::requests::{ApiResult, RequestPath, load, modify_as_user};
use super::types::{GateAnswerReceipt, GateAnswerRequest};
use super::{ApiError, InWorkspace, JsonBody};
use crate::app::Deps;
use crate::domain::access;
use crate::domain::request::Applied;
use crate::domain::request::GateReport;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Each gate's result on the current revision, with the evidence (anyone who may read the
/// request).
pub async fn gates(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<GateReport> {
    let request = load(&deps, &ws, &caller, &id).await?;
    Ok(Json(request.gate_report(&ws.policy, deps.clock.now())))
}

#[derive(Deserialize)]
pub struct GatePath {
    id: String,
    name: String,
}

/// An external gate's answer. Only a caller with the `AirlockGate` role (a service identity)
/// may give one; it cannot read the request otherwise.
pub async fn answer_gate(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(GatePath { id, name }): Path<GatePath>,
    JsonBody(body): JsonBody<GateAnswerRequest>,
) -> ApiResult<GateAnswerReceipt> {
    access::may_answer_gate(&caller).map_err(ApiError::forbidden)?;
    if !super::plausible_id(&id) {
        return Err(ApiError::not_found("request not found"));
    }
    tracing::Span::current().record("request_id", id.as_str());
    let m = modify_as_user(&deps, &ws, &id, |r, ctx| {
        Ok(r.answer_gate(&caller.user, &name, body.revision, body.files.clone(), ctx)?)
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::NOT_FOUND => {
            ApiError::not_found(format!("request {id} not found in workspace {}", ws.id))
        }
        _ => e,
    })?;
    Ok(Json(GateAnswerReceipt {
        request_id: m.request.id.clone(),
        gate: name,
        revision: body.revision,
        recorded: m.applied == Applied::Changed,
        status: m.request.status,
    }))
}
