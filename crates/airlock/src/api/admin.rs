//! The workspace registry (`/api/admin/workspaces/...`): TRE admins register workspaces and
//! change their records and policies here, instead of editing the database by hand. Every
//! change is validated by the parser the airlock reads records with, conditional on the
//! version the admin read (`If-Match`), and kept in the workspace's audit trail with what it
//! changed and the policy versions before and after (`app::registry`).

use super::types::{WorkspaceRecordList, WorkspaceRecordView, WorkspaceTrail};
use super::{ApiError, JsonBody, identify, plausible_id};
use crate::app::Deps;
use crate::app::registry::{self, RegistryFailure};
use crate::domain::Role;
use crate::domain::registry::{as_written, policy_in_force, trail_of, with_policy};
use crate::ports::Versioned;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// A TRE admin: the `TREAdmin` role in a token for the TRE-wide API (`AIRLOCK_API_AUDIENCE`).
/// A workspace's token never reaches the registry, whatever its roles: a workspace's owner
/// must not change their own workspace's review rules.
pub struct TreAdmin {
    pub user_id: String,
}

impl FromRequestParts<Arc<Deps>> for TreAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        let identity = identify(deps, &parts.headers).await?;
        let Some(audience) = deps.settings.api_audience.as_ref() else {
            return Err(ApiError::forbidden(
                "the workspace registry takes tokens for the TRE-wide API, and this airlock has none configured (AIRLOCK_API_AUDIENCE)",
            ));
        };
        if !identity.audiences.contains(audience) {
            return Err(ApiError::unauthorized(format!(
                "the workspace registry takes tokens for the TRE-wide API (audience {audience})"
            )));
        }
        if !identity.roles.contains(&Role::TreAdmin) {
            return Err(ApiError::forbidden(
                "only a TRE admin (role TREAdmin) may read or change the workspace registry",
            ));
        }
        Ok(TreAdmin {
            user_id: identity.user.id,
        })
    }
}

#[derive(Deserialize)]
pub struct WorkspacePath {
    ws: String,
}

impl From<RegistryFailure> for ApiError {
    fn from(e: RegistryFailure) -> Self {
        match e {
            RegistryFailure::Invalid(m) => ApiError::bad_request(m),
            RegistryFailure::Exists(_) | RegistryFailure::ShortIdTaken { .. } => {
                ApiError::conflict(e.to_string())
            }
            RegistryFailure::NotFound(_) => ApiError::not_found(e.to_string()),
            RegistryFailure::Stale { .. } => ApiError::precondition_failed(e.to_string()),
            RegistryFailure::Store(p) => p.into(),
        }
    }
}

/// A record's view, answered with its version in `ETag`.
fn answer(deps: &Deps, status: StatusCode, stored: Versioned<Value>) -> Response {
    let view = view(deps, stored);
    let mut response = (status, Json(&view)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&view.etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn view(deps: &Deps, stored: Versioned<Value>) -> WorkspaceRecordView {
    let record = as_written(&stored.value);
    let (head, _) = trail_of(&stored.value);
    let policy = policy_in_force(&record, &deps.settings.policy_defaults);
    WorkspaceRecordView {
        policy_in_force: policy
            .as_ref()
            .ok()
            .and_then(|p| serde_json::to_value(p).ok())
            .unwrap_or(Value::Null),
        policy_version: policy.map(|p| p.version()).unwrap_or_default(),
        record,
        etag: stored.etag,
        changes: head.length,
    }
}

fn if_match(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|v| !v.is_empty() && v != "*")
        .ok_or_else(|| {
            ApiError::precondition_required(
                "a change needs If-Match with the etag of the record it changes (GET it first): two admins must not overwrite each other",
            )
        })
}

async fn load(deps: &Deps, id: &str) -> Result<Versioned<Value>, ApiError> {
    let missing = || ApiError::not_found(format!("workspace {id} is not registered"));
    if !plausible_id(id) {
        return Err(missing());
    }
    deps.workspaces.get_record(id).await?.ok_or_else(missing)
}

pub async fn list(
    State(deps): State<Arc<Deps>>,
    _admin: TreAdmin,
) -> Result<Json<WorkspaceRecordList>, ApiError> {
    let mut ids: Vec<String> = deps
        .workspaces
        .list()
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    ids.sort();
    let mut workspaces = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(stored) = deps.workspaces.get_record(&id).await? {
            workspaces.push(view(&deps, stored));
        }
    }
    Ok(Json(WorkspaceRecordList { workspaces }))
}

pub async fn register(
    State(deps): State<Arc<Deps>>,
    admin: TreAdmin,
    JsonBody(record): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let stored = registry::register(&deps, &record, &admin.user_id).await?;
    Ok(answer(&deps, StatusCode::CREATED, stored))
}

pub async fn get(
    State(deps): State<Arc<Deps>>,
    _admin: TreAdmin,
    Path(WorkspacePath { ws }): Path<WorkspacePath>,
) -> Result<Response, ApiError> {
    let stored = load(&deps, &ws).await?;
    Ok(answer(&deps, StatusCode::OK, stored))
}

/// Replaces the record as written (`id` may be left out: it is the path's).
pub async fn replace(
    State(deps): State<Arc<Deps>>,
    admin: TreAdmin,
    Path(WorkspacePath { ws }): Path<WorkspacePath>,
    headers: HeaderMap,
    JsonBody(mut record): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let version = if_match(&headers)?;
    let stored = load(&deps, &ws).await?;
    if let Some(obj) = record.as_object_mut() {
        let id = obj.entry("id").or_insert_with(|| Value::String(ws.clone()));
        if id.as_str() != Some(ws.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the record's id {id} is not the workspace in the path ({ws}); an id cannot change"
            )));
        }
    }
    save(&deps, stored, &ws, &record, &version, &admin).await
}

/// Replaces the policy the record sets (the fields left out come from the operator's
/// defaults), leaving the rest of the record as it is.
pub async fn set_policy(
    State(deps): State<Arc<Deps>>,
    admin: TreAdmin,
    Path(WorkspacePath { ws }): Path<WorkspacePath>,
    headers: HeaderMap,
    JsonBody(policy): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let version = if_match(&headers)?;
    let stored = load(&deps, &ws).await?;
    if !policy.is_object() {
        return Err(ApiError::bad_request(
            "a policy is a JSON object of policy fields",
        ));
    }
    let record = with_policy(&stored.value, &policy);
    save(&deps, stored, &ws, &record, &version, &admin).await
}

async fn save(
    deps: &Deps,
    stored: Versioned<Value>,
    ws: &str,
    record: &Value,
    version: &str,
    admin: &TreAdmin,
) -> Result<Response, ApiError> {
    match registry::change(deps, ws, &stored, record, version, &admin.user_id).await? {
        Some(saved) => Ok(answer(deps, StatusCode::OK, saved)),
        // Nothing to change: the record as it is, and no entry in the trail.
        None => Ok(answer(deps, StatusCode::OK, stored)),
    }
}

pub async fn history(
    State(deps): State<Arc<Deps>>,
    _admin: TreAdmin,
    Path(WorkspacePath { ws }): Path<WorkspacePath>,
) -> Result<Json<WorkspaceTrail>, ApiError> {
    load(&deps, &ws).await?;
    let (history, head) = registry::trail(&deps, &ws).await?;
    let check = registry::verify(&ws, &history, &head);
    Ok(Json(WorkspaceTrail {
        workspace_id: ws,
        verified: check.is_ok(),
        broken_at: check.err().map(|i| i as u32),
        history,
    }))
}
