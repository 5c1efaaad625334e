//! The request endpoints. Each is a free async function of typed extractors; what it
//! answers is one of the types in `super::types`.

use super::types::{
    AuditTrail, CommentRequest, ContainerLink, CreateRequest, GateAnswerReceipt, GateAnswerRequest,
    JustifyRequest, RequestEnvelope, RequestList, ReviewRequest, RevokeRequest, WorkspaceLimits,
};
use super::{ApiError, Authenticated, InWorkspace, JsonBody, OptionalJsonBody, envelope};
use crate::app::Deps;
use crate::app::workflow::{container, flush_outbox, modify};
use crate::domain::access::{self, LinkRefusal, UserAction};
use crate::domain::request::GateReport;
use crate::domain::request::{Applied, Ctx, DraftFile};
use crate::domain::{AirlockRequest, Caller, Decision, RequestType, Role, Status, Workspace};
use crate::ports::{OrderBy, RequestQuery, SasRequest};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The request named in the path (`{id}`; the workspace is [`InWorkspace`]'s).
#[derive(Deserialize)]
pub struct RequestPath {
    id: String,
}

pub async fn create(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<RequestEnvelope>), ApiError> {
    access::may_create(&caller).map_err(ApiError::forbidden)?;
    let ctx = Ctx {
        now: deps.clock.now(),
        workspace: &ws,
    };
    let request = AirlockRequest::create(
        uuid::Uuid::new_v4().to_string(),
        body.request_type,
        body.title,
        body.business_justification,
        caller.user.clone(),
        &ctx,
    )?;
    let saved = deps.requests.create(&request).await?;
    tracing::Span::current().record("request_id", saved.value.id.as_str());
    let (request, _) = flush_outbox(&deps, saved).await;
    Ok((StatusCode::CREATED, Json(envelope(&caller, &request))))
}

async fn load(
    deps: &Deps,
    ws: &Workspace,
    caller: &Caller,
    id: &str,
) -> Result<AirlockRequest, ApiError> {
    Ok(load_versioned(deps, ws, caller, id).await?.0)
}

/// The request and the store's ETag of this version of it.
async fn load_versioned(
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
    Ok((versioned.value, versioned.etag))
}

/// An entity tag as HTTP writes it (quoted).
fn http_etag(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

/// The audit trail, with the result of checking its hash chain.
pub async fn history(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<AuditTrail> {
    let request = load(&deps, &ws, &caller, &id).await?;
    let (request, history) =
        crate::app::workflow::committed_history(&deps, &ws.id, request).await?;
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
async fn modify_as_user(
    deps: &Deps,
    ws: &Workspace,
    id: &str,
    mut change: impl FnMut(&mut AirlockRequest, &Ctx) -> Result<Applied, ApiError>,
) -> Result<crate::app::workflow::Modified, ApiError> {
    modify::<ApiError>(deps, ws, id, |r, ctx| {
        let applied = change(r, ctx)?;
        if matches!(applied, Applied::Changed) {
            r.check_size(crate::domain::request::USER_RECORD_BYTES)?;
        }
        Ok(applied)
    })
    .await
}

async fn act(
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
        return Err(ApiError::bad_request(format!(
            "cannot submit a request that is {}",
            request.status
        )));
    }
    let draft = container(&deps, &ws, &request, crate::domain::StageRole::Draft);
    let listed = deps.blobs.list_blobs(&draft).await?;
    // The files' names, sizes and number are checked before anything is done with them: a
    // name a client put there without normalising (`../escape.csv`, `./x.csv`) would address
    // another blob in a URL built from it, and a draft of thousands of files over the limit
    // is refused at once, not after touching each.
    let named: Vec<(String, u64)> = listed.iter().map(|b| (b.name.clone(), b.size)).collect();
    crate::domain::policy::check_files(&named, &ws.policy).map_err(ApiError::bad_request)?;
    let mut files = Vec::with_capacity(listed.len());
    for blob in listed {
        // What is submitted is this version of each file, with the airlock's content headers
        // only: an uploader's (a Content-Disposition, a Cache-Control, ~1 KB each) would ride
        // along with every copy, uncovered by the sha256. The seal then copies exactly the
        // version recorded here; an overwrite after submit fails the request instead.
        let headers = crate::app::workflow::airlock_headers(&blob.name);
        let etag = deps
            .blobs
            .set_content_headers(&draft.blob(&blob.name), &headers, Some(&blob.etag))
            .await
            .map_err(|e| match e {
                crate::ports::PortError::PreconditionFailed(_)
                | crate::ports::PortError::NotFound(_) => ApiError::conflict(format!(
                    "{:?} changed while the request was being submitted; submit again",
                    blob.name
                )),
                e => e.into(),
            })?;
        files.push(DraftFile {
            name: blob.name,
            size: blob.size,
            etag: Some(etag),
        });
    }
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
    if explanation.len() > 4000 {
        return Err(ApiError::bad_request(
            "explanation is longer than 4000 bytes",
        ));
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
    if let Some(wanted) = headers.get(header::IF_MATCH) {
        let wanted = wanted.to_str().unwrap_or_default().trim();
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

/// A comment on the request or one of its files (201 with the comment).
pub async fn comment(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    JsonBody(body): JsonBody<CommentRequest>,
) -> Result<(StatusCode, Json<crate::domain::request::Comment>), ApiError> {
    load(&deps, &ws, &caller, &id).await?;
    let mut made = None;
    modify_as_user(&deps, &ws, &id, |r, ctx| {
        access::may(&caller, UserAction::Comment, r).map_err(ApiError::forbidden)?;
        made = Some(r.comment(
            &caller.user,
            caller.reviews(r),
            body.file.clone(),
            body.text.clone(),
            body.visibility,
            ctx,
        )?);
        Ok(Applied::Changed)
    })
    .await?;
    let comment = made.ok_or_else(|| ApiError::internal("the comment was not made"))?;
    Ok((StatusCode::CREATED, Json(comment)))
}

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

/// Links expire on a 5-minute boundary at least `lifetime` from now: the same link asked
/// for again within those minutes is the same grant, already on the record (so a caller in a
/// loop adds at most 12 entries an hour, and the rate limit bounds the calls).
fn link_expiry(
    now: chrono::DateTime<chrono::Utc>,
    lifetime: chrono::Duration,
) -> chrono::DateTime<chrono::Utc> {
    const STEP: i64 = 5 * 60;
    let at = (now + lifetime).timestamp();
    let rounded = at.div_euclid(STEP) * STEP + if at.rem_euclid(STEP) == 0 { 0 } else { STEP };
    chrono::DateTime::from_timestamp(rounded, 0).unwrap_or(now + lifetime)
}

pub async fn link(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<ContainerLink> {
    let request = load(&deps, &ws, &caller, &id).await?;
    let grant = access::link_grant(&caller, &request).map_err(|e| match e {
        LinkRefusal::Forbidden(m) => ApiError::forbidden(m),
        LinkRefusal::Unavailable(m) => ApiError::bad_request(m),
    })?;
    let upload = grant.permissions.write;
    let expires_at = link_expiry(
        deps.clock.now(),
        chrono::Duration::minutes(ws.policy.link_minutes(upload).into()),
    );
    let sas = SasRequest {
        permissions: grant.permissions,
        expires_at,
        // A policy no link can honour is refused plainly (it is the workspace's, not the
        // caller's, to fix), never answered with a link that ignores it.
        ip_range: ws.policy.link_ip_range().map_err(ApiError::bad_request)?,
    };
    let target = container(&deps, &ws, &request, grant.stage);
    if grant.stage == crate::domain::StageRole::Draft {
        // The link may be asked for before StatusChanged made the container: an upload link
        // must never point at nothing.
        deps.blobs.create_container(&target).await?;
    }
    let url = deps.blobs.container_link(&target, &sas).await?;
    let permissions = grant.permissions.as_sas();
    // Every link issued is on the record: who, what, until when.
    let note = format!(
        "{} link ({permissions}) to the {:?} stage until {}",
        caller.user.id,
        grant.stage,
        expires_at.to_rfc3339()
    );
    let status = request.status;
    // Not counted against the budget: one entry per person, replaced on each link.
    modify::<ApiError>(&deps, &ws, &id, |r, ctx| {
        if r.status != status {
            return Err(ApiError::conflict(
                "the request changed while the link was issued; ask again",
            ));
        }
        let can_write = grant.permissions.write || grant.permissions.add;
        Ok(r.record_link_issued(ctx, &caller.user, can_write, note.clone()))
    })
    .await?;
    Ok(Json(ContainerLink {
        container_url: url,
        expires_at,
        permissions,
    }))
}

fn parse_query(params: &HashMap<String, String>, known: &[&str]) -> Result<RequestQuery, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?}"
        )));
    }
    // Lists show summaries (no outbox, history tail, comments): GET .../requests/{id} has
    // the rest.
    let mut q = RequestQuery {
        page_size: 20,
        summary: true,
        ..Default::default()
    };
    if let Some(c) = params
        .get("creator")
        .or_else(|| params.get("creator_user_id"))
    {
        q.creator = Some(c.clone());
    }
    if let Some(t) = params.get("type") {
        q.request_type = Some(RequestType::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!("type must be import or export, not {t:?}"))
        })?);
    }
    if let Some(s) = params.get("status") {
        for part in s.split(',') {
            q.statuses.push(
                Status::parse(part)
                    .ok_or_else(|| ApiError::bad_request(format!("unknown status {part:?}")))?,
            );
        }
    }
    if let Some(o) = params.get("orderBy") {
        q.order_by = OrderBy::parse(o).ok_or_else(|| {
            ApiError::bad_request(format!(
                "orderBy must be createdWhen or updatedWhen (optionally with asc/desc), not {o:?}"
            ))
        })?;
    }
    // AzureTRE's: `order_by` names a field, `order_ascending` (default true) its direction.
    if let Some(field) = params.get("order_by") {
        let ascending = match params
            .get("order_ascending")
            .map(|v| v.to_ascii_lowercase())
        {
            None => true,
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "order_ascending must be true or false, not {v:?}"
                )));
            }
        };
        q.order_by = match (field.as_str(), ascending) {
            ("createdWhen", true) => OrderBy::CreatedAsc,
            ("createdWhen", false) => OrderBy::CreatedDesc,
            ("updatedWhen", true) => OrderBy::UpdatedAsc,
            ("updatedWhen", false) => OrderBy::UpdatedDesc,
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "order_by must be createdWhen or updatedWhen (the orders the store keeps an index for), not {other:?}"
                )));
            }
        };
    } else if params.contains_key("order_ascending") {
        return Err(ApiError::bad_request("order_ascending needs order_by"));
    }
    if let Some(p) = params.get("pageSize") {
        q.page_size = p
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_request("pageSize must be a number from 1 to 100"))?;
    }
    q.continuation = params.get("continuationToken").cloned();
    Ok(q)
}

pub async fn list(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<RequestList> {
    let mut q = parse_query(
        &params,
        &[
            "creator",
            "creator_user_id",
            "type",
            "status",
            "orderBy",
            "order_by",
            "order_ascending",
            "pageSize",
            "continuationToken",
        ],
    )?;
    if access::list_scope(&caller).map_err(ApiError::forbidden)? == access::ListScope::Own {
        q.creator = Some(caller.user.id.clone());
    }
    let page = deps.requests.query(&ws.id, &q).await?;
    Ok(Json(RequestList {
        airlock_requests: page.items.iter().map(|r| envelope(&caller, r)).collect(),
        continuation_token: page.continuation,
    }))
}

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The caller's requests across the workspaces their token is for (all workspaces for a
/// `TREAdmin` token with the API audience); `awaitingMyReview=true` lists what a manager can
/// review now.
/// Our own parameters of `GET /api/requests`: with any of them the answer is our paged
/// [`RequestList`]; without, it is AzureTRE's bare array (its UI calls `/api/requests` and
/// `/api/requests?airlock_manager=true` and reads an array).
const PAGED_PARAMS: [&str; 4] = [
    "pageSize",
    "continuationToken",
    "awaitingMyReview",
    "orderBy",
];

/// Most requests in AzureTRE's unpaged answer (newest first when no order is asked for).
pub const MAX_UNPAGED: usize = 1000;

pub async fn requests(
    State(deps): State<Arc<Deps>>,
    Authenticated(identity): Authenticated,
    Query(params): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if PAGED_PARAMS.iter().any(|p| params.contains_key(*p)) {
        return Ok(mine(&deps, identity, params).await?.into_response());
    }
    Ok(azure_tre_requests(&deps, identity, params)
        .await?
        .into_response())
}

/// AzureTRE's `GET /api/requests`: the caller's own requests, or with `airlock_manager=true`
/// every request in the workspaces where the token makes them an airlock manager; a bare
/// array of request documents, at most [`MAX_UNPAGED`].
async fn azure_tre_requests(
    deps: &Deps,
    identity: crate::ports::Identity,
    params: HashMap<String, String>,
) -> Result<Json<Vec<super::view::RequestView>>, ApiError> {
    let mut q = parse_query(
        &params,
        &[
            "type",
            "status",
            "order_by",
            "order_ascending",
            "airlock_manager",
        ],
    )?;
    let manager = match params
        .get("airlock_manager")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false" | "0" | "no" | "off") => false,
        Some("true" | "1" | "yes" | "on") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "airlock_manager must be true or false, not {other:?}"
            )));
        }
    };
    if manager && !identity.roles.contains(&Role::AirlockManager) {
        return Ok(Json(Vec::new()));
    }
    if !manager {
        q.creator = Some(identity.user.id.clone());
    }
    q.page_size = 100;
    let mut workspaces: Vec<Workspace> = deps
        .workspaces
        .list()
        .await?
        .into_iter()
        .filter(|w| identity.audiences.contains(&w.token_audience))
        .collect();
    workspaces.sort_by(|a, b| a.id.cmp(&b.id));
    let mut items: Vec<AirlockRequest> = Vec::new();
    'workspaces: for ws in &workspaces {
        let mut wq = q.clone();
        loop {
            let page = deps.requests.query(&ws.id, &wq).await?;
            items.extend(page.items);
            if items.len() >= MAX_UNPAGED {
                items.truncate(MAX_UNPAGED);
                break 'workspaces;
            }
            match page.continuation {
                Some(t) => wq.continuation = Some(t),
                None => break,
            }
        }
    }
    // One order across workspaces, as asked (or newest first).
    match q.order_by {
        OrderBy::CreatedAsc => items.sort_by_key(|r| r.created_when),
        OrderBy::CreatedDesc => items.sort_by_key(|r| std::cmp::Reverse(r.created_when)),
        OrderBy::UpdatedAsc => items.sort_by_key(|r| r.updated_when),
        OrderBy::UpdatedDesc => items.sort_by_key(|r| std::cmp::Reverse(r.updated_when)),
        OrderBy::Unordered => {}
    }
    let caller = Caller {
        user: identity.user.clone(),
        roles: identity.roles.clone(),
    };
    let documents: Vec<super::view::RequestView> = items
        .iter()
        .map(|r| super::view::RequestView::from(&r.visible_to(&caller.user.id, caller.reviews(r))))
        .collect();
    Ok(Json(documents))
}

async fn mine(
    deps: &Deps,
    identity: crate::ports::Identity,
    params: HashMap<String, String>,
) -> ApiResult<RequestList> {
    let mut q = parse_query(
        &params,
        &[
            "type",
            "status",
            "orderBy",
            "pageSize",
            "continuationToken",
            "awaitingMyReview",
        ],
    )?;
    let awaiting = match params.get("awaitingMyReview").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "awaitingMyReview must be true or false, not {other:?}"
            )));
        }
    };
    let admin = identity.roles.contains(&Role::TreAdmin)
        && deps
            .settings
            .api_audience
            .as_ref()
            .is_some_and(|a| identity.audiences.contains(a));
    let mut workspaces: Vec<Workspace> = deps
        .workspaces
        .list()
        .await?
        .into_iter()
        .filter(|w| admin || identity.audiences.contains(&w.token_audience))
        .collect();
    workspaces.sort_by(|a, b| a.id.cmp(&b.id));
    if awaiting {
        access::may_list_awaiting_review(&identity.roles).map_err(ApiError::forbidden)?;
        q.statuses = vec![Status::InReview];
    } else if !admin {
        q.creator = Some(identity.user.id.clone());
    }
    // The continuation token carries which workspace we were in and its own token.
    let (mut index, inner) = match q.continuation.take() {
        None => (0usize, None),
        Some(t) => {
            let v: Value = TOKEN
                .decode(&t)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ApiError::bad_request("invalid continuationToken"))?;
            let index = v["w"]
                .as_u64()
                .ok_or_else(|| ApiError::bad_request("invalid continuationToken"))?
                as usize;
            (index, v["t"].as_str().map(str::to_string))
        }
    };
    q.continuation = inner;
    let caller = crate::domain::Caller {
        user: identity.user.clone(),
        roles: identity.roles.clone(),
    };
    let mut items = Vec::new();
    let mut next = None;
    while index < workspaces.len() && items.len() < q.page_size as usize {
        let ws = &workspaces[index];
        let mut wq = q.clone();
        wq.page_size = q.page_size - items.len() as u32;
        let page = deps.requests.query(&ws.id, &wq).await?;
        for r in &page.items {
            // Awaiting the caller: not theirs, and not reviewed by them yet, or reviewed and
            // now waiting for a consolidation they may give.
            if awaiting
                && (r.is_contributor(&caller.user.id) || !r.may_still_review(&caller.user.id))
            {
                continue;
            }
            items.push(envelope(&caller, r));
        }
        match page.continuation {
            Some(t) => {
                q.continuation = Some(t.clone());
                next = Some(json!({"w": index, "t": t}));
                if items.len() >= q.page_size as usize {
                    break;
                }
            }
            None => {
                q.continuation = None;
                index += 1;
                next = (index < workspaces.len()).then(|| json!({"w": index}));
            }
        }
    }
    Ok(Json(RequestList {
        airlock_requests: items,
        continuation_token: next.map(|v| TOKEN.encode(v.to_string())),
    }))
}
