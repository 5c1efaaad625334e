//! The REST API (DESIGN §7), served by the `Api` function through forwarded HTTP.

pub mod error;
mod openapi;
pub use openapi::document as openapi_document;
mod requests;

use crate::app::Deps;
use crate::domain::{AirlockRequest, Caller, Workspace};
use crate::ports::{AuthError, Identity};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
pub use error::ApiError;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn router() -> Router<Arc<Deps>> {
    Router::new()
        .route(
            "/api/workspaces/{ws}/requests",
            post(requests::create).get(requests::list),
        )
        .route("/api/workspaces/{ws}/requests/{id}", get(requests::read))
        .route(
            "/api/workspaces/{ws}/requests/{id}/link",
            get(requests::link),
        )
        .route(
            "/api/workspaces/{ws}/requests/{id}/history",
            get(requests::history),
        )
        .route(
            "/api/workspaces/{ws}/requests/{id}/submit",
            post(requests::submit),
        )
        .route(
            "/api/workspaces/{ws}/requests/{id}/cancel",
            post(requests::cancel),
        )
        .route(
            "/api/workspaces/{ws}/requests/{id}/review",
            post(requests::review),
        )
        .route(
            "/api/workspaces/{ws}/requests/{id}/revoke",
            post(requests::revoke),
        )
        .route("/api/requests", get(requests::mine))
        .route(
            "/api/health",
            get(|| async { axum::Json(json!({"status": "healthy"})) }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// Reads a JSON body of at most `limit` bytes; 413 above, 400 with serde's words if malformed.
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, headers, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large =
        || ApiError::too_large(format!("the request body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if format!("{e:?}").contains("LengthLimit") {
            too_large()
        } else {
            ApiError::bad_request(format!("could not read the body: {e}"))
        }
    })
}

/// Verifies the bearer token (signature, issuer, expiry) without looking at the audience.
pub async fn identify(deps: &Deps, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    Ok(deps.tokens.verify(token).await?)
}

/// Workspace and request ids are short and plain (Cosmos DB ids, container names): anything
/// else cannot exist, and never reaches a store.
pub fn plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !id.starts_with('.')
}

/// Authenticates the caller for one workspace: a token for that workspace's audience.
pub async fn caller_in(
    deps: &Deps,
    headers: &HeaderMap,
    workspace_id: &str,
) -> Result<(Workspace, Caller), ApiError> {
    let identity = identify(deps, headers).await?;
    if !plausible_id(workspace_id) {
        return Err(ApiError::not_found("workspace not found"));
    }
    let ws = deps
        .workspaces
        .get(workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("workspace {workspace_id} not found")))?;
    if !identity.audiences.contains(&ws.token_audience) {
        return Err(ApiError::unauthorized(format!(
            "the token is not for workspace {workspace_id} (audience {})",
            ws.token_audience
        )));
    }
    if !ws.airlock_enabled {
        return Err(ApiError::bad_request(format!(
            "the airlock is disabled for workspace {workspace_id}"
        )));
    }
    Ok((
        ws,
        Caller {
            user: identity.user,
            roles: identity.roles,
        },
    ))
}

/// The record as the API shows it: without the internal outbox.
pub fn view(request: &AirlockRequest) -> Value {
    let mut v = serde_json::to_value(request).expect("records serialise");
    if let Some(o) = v.as_object_mut() {
        o.remove("outbox");
    }
    v
}

pub fn envelope(caller: &Caller, request: &AirlockRequest) -> Value {
    json!({
        "airlockRequest": view(request),
        "allowedUserActions": crate::domain::access::allowed_user_actions(caller, request),
    })
}
