//! A request: create it and read it, and what every endpoint about a request shares
//! (loading it, applying a person's command in one conditional write). Each endpoint is a
//! free async function of typed extractors; what it answers is one of the types in
//! `super::types`. The other endpoints are in a file per resource: `actions`, `comments`,
//! `gates`, `links`, `history`, `lists`.

use super::types::{CreateRequest, RequestEnvelope};
use super::{ApiError, InWorkspace, JsonBody, envelope};
use crate::app::Deps;
use crate::app::record::{flush_outbox, modify};
use crate::domain::access::{self, UserAction};
use crate::domain::request::{Applied, Ctx, IdempotencyKey};
use crate::domain::{AirlockRequest, Caller, Workspace};
use crate::ports::{PortError, Versioned};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use std::sync::Arc;

pub(super) type ApiResult<T> = Result<Json<T>, ApiError>;

/// The request named in the path (`{id}`; the workspace is [`InWorkspace`]'s).
#[derive(Deserialize)]
pub struct RequestPath {
    pub(super) id: String,
}

/// Creates a draft. With an `Idempotency-Key` header the create can be retried safely: the
/// key decides the request's id ([`IdempotencyKey::request_id`]), so a retry after a lost
/// answer is answered with the request the first attempt made (201 again, in its present
/// state), and the same key sent with a different body is refused (409).
pub async fn create(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<RequestEnvelope>), ApiError> {
    access::may_create(&caller).map_err(ApiError::forbidden)?;
    let key = idempotency_key(&headers)?;
    let id = key.as_ref().map_or_else(
        || uuid::Uuid::new_v4().to_string(),
        |k| k.request_id(&ws.id, &caller.user.id),
    );
    tracing::Span::current().record("request_id", id.as_str());
    if key.is_some()
        && let Some(earlier) = deps.requests.get(&ws.id, &id).await?
    {
        return replay(&deps, &caller, &body, earlier).await;
    }
    let ctx = Ctx {
        now: deps.clock.now(),
        workspace: &ws,
    };
    let request = AirlockRequest::create(
        id.clone(),
        body.request_type,
        body.title.clone(),
        body.business_justification.clone(),
        caller.user.clone(),
        &ctx,
    )?;
    let saved = match deps.requests.create(&request).await {
        Ok(saved) => saved,
        // A retry that raced the first attempt to the store: one of them wrote the record.
        Err(PortError::Conflict(_)) if key.is_some() => {
            let earlier = deps.requests.get(&ws.id, &id).await?.ok_or_else(|| {
                ApiError::conflict("the request being created changed concurrently; try again")
            })?;
            return replay(&deps, &caller, &body, earlier).await;
        }
        Err(e) => return Err(e.into()),
    };
    let (request, _) = flush_outbox(&deps, saved).await;
    Ok((StatusCode::CREATED, Json(envelope(&caller, &request))))
}

/// The `Idempotency-Key` a client named its change with, if any; a malformed one is 400.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    match headers.get("idempotency-key") {
        Some(value) => Ok(Some(IdempotencyKey::parse(value.to_str().map_err(
            |_| {
                ApiError::bad_request("Idempotency-Key holds a character that is not visible ASCII")
            },
        )?)?)),
        None => Ok(None),
    }
}

/// Answers a create whose key already made `earlier`: with it, if the body is the one that
/// made it (its events published on the way, in case the first attempt stopped before
/// that), else 409.
async fn replay(
    deps: &Deps,
    caller: &Caller,
    body: &CreateRequest,
    earlier: Versioned<AirlockRequest>,
) -> Result<(StatusCode, Json<RequestEnvelope>), ApiError> {
    if !earlier.value.made_by_create(
        body.request_type,
        &body.title,
        &body.business_justification,
        &caller.user.id,
    ) {
        return Err(ApiError::conflict(
            "this Idempotency-Key was already used to create a different request: send a new key for a new request",
        ));
    }
    tracing::info!("create retried with its Idempotency-Key: answered with the request it made");
    let (request, _) = flush_outbox(deps, earlier).await;
    Ok((StatusCode::CREATED, Json(envelope(caller, &request))))
}

pub(super) async fn load(
    deps: &Deps,
    ws: &Workspace,
    caller: &Caller,
    id: &str,
) -> Result<AirlockRequest, ApiError> {
    Ok(load_versioned(deps, ws, caller, id).await?.0)
}

/// The request and the store's ETag of this version of it.
pub(super) async fn load_versioned(
    deps: &Deps,
    ws: &Workspace,
    caller: &Caller,
    id: &str,
) -> Result<(AirlockRequest, String), ApiError> {
    if !super::plausible_id(id) {
        return Err(ApiError::not_found("request not found"));
    }
    tracing::Span::current().record("request_id", id);
    let versioned = deps.requests.get(&ws.id, id).await?.ok_or_else(|| {
        ApiError::not_found(format!("request {id} not found in workspace {}", ws.id))
    })?;
    access::may_read(caller, &versioned.value).map_err(ApiError::forbidden)?;
    if caller.audits() {
        // Oversight is itself overseen: every read in the log, the first per status on the
        // request's record.
        tracing::info!(auditor = %caller.user.id, request = id, workspace = %ws.id, "auditor read");
        let m = crate::app::record::modify::<ApiError>(deps, ws, id, |r, ctx| {
            Ok(r.record_auditor_read(ctx, &caller.user))
        })
        .await?;
        if matches!(m.applied, crate::domain::request::Applied::Changed) {
            return Ok(deps
                .requests
                .get(&ws.id, id)
                .await?
                .map(|v| (v.value, v.etag))
                .unwrap_or((m.request, versioned.etag)));
        }
    }
    Ok((versioned.value, versioned.etag))
}

/// An entity tag as HTTP writes it (quoted).
/// Whether `value` is one entity-tag (`"..."` or `W/"..."`, RFC 9110 8.8.3), as the OpenAPI
/// document says `If-Match` is: anything else there is bad input (400), not a version that
/// does not match (412).
pub(super) fn is_entity_tag(value: &str) -> bool {
    let quoted = value.strip_prefix("W/").unwrap_or(value);
    quoted.len() >= 2
        && quoted.starts_with('"')
        && quoted.ends_with('"')
        && quoted[1..quoted.len() - 1]
            .bytes()
            .all(|b| b == b'!' || (b'#'..=b'~').contains(&b))
}

pub(super) fn http_etag(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

/// The request, with its version as `ETag` (a reviewer may send it back as `If-Match`).
pub async fn read(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<([(header::HeaderName, String); 1], Json<RequestEnvelope>), ApiError> {
    let (request, etag) = load_versioned(&deps, &ws, &caller, &id).await?;
    Ok((
        [(header::ETAG, http_etag(&etag))],
        Json(envelope(&caller, &request)),
    ))
}

/// Applies a caller's command: role check, then the domain, in one conditional write.
/// [`modify`] for a person's action: the record it leaves must fit the budget a person's
/// writing may use ([`USER_RECORD_BYTES`]), so the airlock's own later writes always fit Cosmos
/// DB's item limit.
pub(super) async fn modify_as_user(
    deps: &Deps,
    ws: &Workspace,
    id: &str,
    mut change: impl FnMut(&mut AirlockRequest, &Ctx) -> Result<Applied, ApiError>,
) -> Result<crate::app::record::Modified, ApiError> {
    modify::<ApiError>(deps, ws, id, |r, ctx| {
        let applied = change(r, ctx)?;
        if matches!(applied, Applied::Changed) {
            r.check_size(crate::domain::request::USER_RECORD_BYTES)?;
        }
        Ok(applied)
    })
    .await
}

pub(super) async fn act(
    deps: &Deps,
    ws: &Workspace,
    caller: &Caller,
    id: &str,
    action: UserAction,
    command: impl Fn(&mut AirlockRequest, &Ctx) -> Result<(), crate::domain::DomainError>,
) -> ApiResult<RequestEnvelope> {
    load(deps, ws, caller, id).await?;
    let m = modify_as_user(deps, ws, id, |r, ctx| {
        access::may(caller, action, r).map_err(ApiError::forbidden)?;
        command(r, ctx)?;
        Ok(Applied::Changed)
    })
    .await?;
    Ok(Json(envelope(caller, &m.request)))
}
