//! The REST API (DESIGN §7), served by the `Api` function through forwarded HTTP.
//!
//! Handlers take typed extractors: [`InWorkspace`] (the caller, authenticated for the
//! workspace in the path), [`JsonBody`] (a size-limited JSON body whose errors name the
//! field), and answer with the types in [`types`], which the OpenAPI document is made from.

pub mod error;
mod openapi;
pub use openapi::document as openapi_document;
mod actions;
mod admin;
mod comments;
mod diff;
mod gates;
mod history;
mod links;
mod lists;
mod preflight;
mod preview;
mod record;
mod requests;
mod stats;
mod web;
mod workspaces;
pub use airlock_api::{types, view};

use crate::app::Deps;
use crate::domain::{AirlockRequest, Caller, Workspace};
use crate::ports::{AuthError, Identity};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
pub use error::ApiError;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use types::RequestEnvelope;

/// The API's routes: every endpoint declared once in [`openapi::operations`], which the
/// OpenAPI document is made from too; anything else under `/api` is a 404 in the API's shape.
pub fn router() -> Router<Arc<Deps>> {
    let mut router = Router::new();
    for op in openapi::operations() {
        router = router.route(&handler_path(op.path), op.handler);
    }
    router
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
}

/// The router's form of a documented path: the handlers' extractors name the parameters
/// `ws`, `id` and `name`.
fn handler_path(documented: &str) -> String {
    documented
        .replace("{workspaceId}", "{ws}")
        .replace("{requestId}", "{id}")
        .replace("{gateName}", "{name}")
        .replace("{asset}", "{name}")
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// A JSON body of at most `Settings::max_body_bytes`: 413 above (declared or streamed), 400
/// with the offending field's path when it does not parse.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Deps>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, &parts.headers, deps.settings.max_body_bytes).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// One JSON value and nothing after it; a 400 naming the offending field's path otherwise.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let invalid =
        |e: &dyn std::fmt::Display| ApiError::bad_request(format!("invalid JSON body: {e}"));
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| invalid(&e))?;
    json.end().map_err(|e| invalid(&e))?;
    Ok(value)
}

/// Like [`JsonBody`], but an empty body (or `null`) is `T::default()`: for endpoints whose body
/// is optional (AzureTRE's clients submit with none).
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<Arc<Deps>> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, &parts.headers, deps.settings.max_body_bytes).await?;
        let text = std::str::from_utf8(&bytes).unwrap_or("x").trim();
        if text.is_empty() || text == "null" {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// Reads a body of at most `limit` bytes, counting as it streams (a body without
/// `Content-Length` is limited too).
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::too_large(format!("the request body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut read = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
        if read.len() + chunk.len() > limit {
            return Err(too_large());
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.freeze())
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
    let identity = deps.tokens.verify(token).await?;
    if let Err(wait) = deps.limiter.take(&identity.user.id, deps.clock.now()) {
        return Err(ApiError::too_many(wait));
    }
    if identity.user.id == crate::domain::User::SYSTEM_ID {
        // The airlock's own actor id: a person with it would pass for the airlock in the trail.
        return Err(AuthError::Invalid(format!(
            "the user id {:?} is reserved for the airlock itself",
            crate::domain::User::SYSTEM_ID
        ))
        .into());
    }
    Ok(identity)
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

/// The caller, authenticated for the workspace named in the path (`{ws}`): a verified token
/// whose audience is that workspace's, for a workspace whose airlock is enabled.
pub struct InWorkspace {
    pub ws: Workspace,
    pub caller: Caller,
}

impl FromRequestParts<Arc<Deps>> for InWorkspace {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        // Who first: an anonymous caller learns nothing about which workspaces exist.
        let identity = identify(deps, &parts.headers).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, deps)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let workspace_id = params
            .get("ws")
            .ok_or_else(|| ApiError::internal("this route names no workspace"))?;
        if !plausible_id(workspace_id) {
            return Err(ApiError::not_found("workspace not found"));
        }
        let ws =
            deps.workspaces.get(workspace_id).await?.ok_or_else(|| {
                ApiError::not_found(format!("workspace {workspace_id} not found"))
            })?;
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
        Ok(InWorkspace {
            ws,
            caller: Caller {
                user: identity.user,
                roles: identity.roles,
            },
        })
    }
}

/// The caller, whoever it is: a verified token, audience not yet checked.
pub struct Authenticated(pub Identity);

impl FromRequestParts<Arc<Deps>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<Deps>) -> Result<Self, ApiError> {
        identify(deps, &parts.headers).await.map(Authenticated)
    }
}

/// A request with what the caller may do to it now.
pub fn envelope(caller: &Caller, request: &AirlockRequest) -> RequestEnvelope {
    RequestEnvelope {
        airlock_request: view::RequestView::from(
            &request.visible_to(&caller.user.id, caller.sees_reviewer_comments(request)),
        ),
        allowed_user_actions: crate::domain::access::allowed_user_actions(caller, request),
    }
}
