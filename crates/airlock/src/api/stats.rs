//! Service statistics: per workspace for those who oversee it, TRE-wide for TRE admins and
//! auditors with a token for the TRE-wide API. `from`/`to` (RFC 3339) bound when the requests
//! counted were created; the last 30 days by default.

use super::{ApiError, Authenticated, InWorkspace};
use crate::app::Deps;
use crate::domain::access;
use crate::domain::stats::Stats;
use crate::domain::{Role, Workspace};
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// The range asked for: `[from, to)`, `from` before `to`, of any span: what one call costs
/// is bounded by the requests it takes in (`stats::MAX_REQUESTS`, reported as `truncated`;
/// a narrower range takes fewer), not by the years it covers.
fn range(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>), ApiError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["from", "to"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}: the statistics take from and to"
        )));
    }
    let at = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        params
            .get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "{name} must be an RFC 3339 time (2026-11-01T00:00:00Z), not {v:?}"
                        ))
                    })
            })
            .transpose()
    };
    // Without `to`, up to now and including it (a request created this instant counts).
    let given_to = at("to")?;
    let to = given_to.unwrap_or(now);
    let from = at("from")?.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    Ok((from, given_to))
}

pub async fn workspace(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Stats>, ApiError> {
    access::may_read_stats(&caller).map_err(ApiError::forbidden)?;
    let (from, to) = range(&params, deps.clock.now())?;
    Ok(Json(
        crate::app::stats::gather(&deps, &[ws], from, to).await?,
    ))
}

/// Every workspace's, added up: TRE admins and auditors with a token for the TRE-wide API.
pub async fn tre(
    State(deps): State<Arc<Deps>>,
    Authenticated(identity): Authenticated,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Stats>, ApiError> {
    let tre_token = deps
        .settings
        .api_audience
        .as_ref()
        .is_some_and(|a| identity.audiences.contains(a));
    if !tre_token {
        return Err(ApiError::unauthorized(
            "TRE-wide statistics take a token for the TRE-wide API",
        ));
    }
    if !(identity.roles.contains(&Role::TreAdmin) || identity.roles.contains(&Role::AirlockAuditor))
    {
        return Err(ApiError::forbidden(
            "only TRE admins and auditors read the TRE-wide statistics",
        ));
    }
    let (from, to) = range(&params, deps.clock.now())?;
    let workspaces: Vec<Workspace> = deps.workspaces.list().await?;
    Ok(Json(
        crate::app::stats::gather(&deps, &workspaces, from, to).await?,
    ))
}
