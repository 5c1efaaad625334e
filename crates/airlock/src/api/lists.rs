//! Lists: a workspace's requests, and the caller's across workspaces (ours, paged, and
//! AzureTRE's bare array).

use super::types::RequestList;
use super::{ApiError, Authenticated, InWorkspace, envelope};
use crate::app::Deps;
use crate::domain::access;
use crate::domain::{AirlockRequest, Caller, RequestType, Role, Status, Workspace};
use crate::ports::{OrderBy, RequestQuery};
use axum::Json;
use axum::extract::{Query, State};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

use super::requests::ApiResult;

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
        // `status=` (nothing asked for) filters nothing, as an absent parameter.
        for part in s.split(',').filter(|p| !p.is_empty()) {
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

/// A true-or-false query parameter (absent is false), in the spellings AzureTRE's clients
/// and a schema-driven client send.
fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
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
    let manager = flag(&params, "airlock_manager")?;
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
            "order_by",
            "order_ascending",
            "pageSize",
            "continuationToken",
            "awaitingMyReview",
            "airlock_manager",
        ],
    )?;
    let awaiting = flag(&params, "awaitingMyReview")?;
    // AzureTRE's `airlock_manager=true`, paged as ours: every request of the workspaces
    // where the token makes the caller an airlock manager (none if it does not).
    let manager = flag(&params, "airlock_manager")?;
    if manager && !identity.roles.contains(&Role::AirlockManager) {
        return Ok(Json(RequestList {
            airlock_requests: Vec::new(),
            continuation_token: None,
        }));
    }
    // TRE admins and TRE-wide auditors list every workspace's requests.
    let admin = (identity.roles.contains(&Role::TreAdmin)
        || identity.roles.contains(&Role::AirlockAuditor))
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
    } else if !admin && !manager {
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
