//! The commands that move a request: submit, cancel, review, justify, revoke.

use super::requests::{
    ApiResult, RequestPath, act, http_etag, is_entity_tag, load, load_versioned,
};
use super::types::{JustifyRequest, RequestEnvelope, ReviewRequest, RevokeRequest};
use super::{ApiError, InWorkspace, JsonBody, OptionalJsonBody};
use crate::app::Deps;
use crate::app::submit::{SubmitError, draft_files};
use crate::domain::access::{self, UserAction};
use crate::domain::request::MAX_JUSTIFICATION_CHARS;
use crate::domain::{Decision, Status};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use std::sync::Arc;

/// Body (optional): the request's purpose and what each file is (`SubmitContext`).
pub async fn submit(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    OptionalJsonBody(context): OptionalJsonBody<crate::domain::request::SubmitContext>,
) -> ApiResult<RequestEnvelope> {
    let request = load(&deps, &ws, &caller, &id).await?;
    access::may(&caller, UserAction::Submit, &request).map_err(ApiError::forbidden)?;
    if request.status != Status::Draft {
        return Err(crate::domain::DomainError::IllegalTransition {
            action: "submit",
            status: request.status,
        }
        .into());
    }
    let files = draft_files(&deps, &ws, &request)
        .await
        .map_err(|e| match e {
            SubmitError::Refused(m) => ApiError::conflict(m),
            e @ SubmitError::Changed(_) => ApiError::conflict(e.to_string()),
            SubmitError::Storage(e) => e.into(),
        })?;
    act(&deps, &ws, &caller, &id, UserAction::Submit, |r, ctx| {
        r.submit_with_context(&caller.user, files.clone(), &context, ctx)
    })
    .await
}

pub async fn cancel(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<RequestEnvelope> {
    act(&deps, &ws, &caller, &id, UserAction::Cancel, |r, ctx| {
        r.cancel(&caller.user, ctx)
    })
    .await
}

/// Accepts ours (`decision`, `explanation`) and AzureTRE's (`approval`, `decisionExplanation`).
fn parse_review(body: &ReviewRequest) -> Result<(Option<Decision>, String), ApiError> {
    let decision = match (body.decision, body.approval) {
        (Some(d), _) => Some(d),
        (None, Some(true)) => Some(Decision::Approved),
        (None, Some(false)) => Some(Decision::Rejected),
        (None, None) if body.files.is_some() => None,
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing field `decision` (or `files`, a decision per file)",
            ));
        }
    };
    let explanation = body
        .explanation
        .clone()
        .or_else(|| body.decision_explanation.clone())
        .unwrap_or_default();
    if explanation.chars().count() > MAX_JUSTIFICATION_CHARS {
        return Err(ApiError::bad_request(format!(
            "explanation is longer than {MAX_JUSTIFICATION_CHARS} characters"
        )));
    }
    Ok((decision, explanation))
}

/// `If-Match` (optional): the `ETag` of the version the reviewer read; a review of a request
/// that has changed since is 412. (Any write changes it, a link issued too: `revision` in
/// the body is the precondition about the files.)
pub async fn review(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ReviewRequest>,
) -> ApiResult<RequestEnvelope> {
    let (decision, explanation) = parse_review(&body)?;
    // An empty If-Match lists no version: as good as none.
    let wanted = headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
        .filter(|v| !v.is_empty());
    if let Some(wanted) = wanted {
        if wanted != "*" && !is_entity_tag(wanted) {
            return Err(ApiError::bad_request(format!(
                "If-Match must be the ETag a GET answered (in quotes), or *; not {wanted:?}"
            )));
        }
        let (_, current) = load_versioned(&deps, &ws, &caller, &id).await?;
        if wanted != "*" && wanted != http_etag(&current) {
            return Err(ApiError::precondition_failed(format!(
                "the request changed since you read it (it is now {}): read it again before reviewing",
                http_etag(&current)
            )));
        }
    }
    act(&deps, &ws, &caller, &id, UserAction::Review, |r, ctx| {
        r.review_files(
            &caller.user,
            decision,
            body.files.clone().unwrap_or_default(),
            explanation.clone(),
            body.revision,
            ctx,
        )
    })
    .await
}

pub async fn justify(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    JsonBody(body): JsonBody<JustifyRequest>,
) -> ApiResult<RequestEnvelope> {
    act(&deps, &ws, &caller, &id, UserAction::Justify, |r, ctx| {
        r.justify(&caller.user, &body.file, body.justification.clone(), ctx)
    })
    .await
}

pub async fn revoke(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    JsonBody(body): JsonBody<RevokeRequest>,
) -> ApiResult<RequestEnvelope> {
    act(&deps, &ws, &caller, &id, UserAction::Revoke, |r, ctx| {
        r.revoke(&caller.user, body.reason.clone(), ctx)
    })
    .await
}
