//! `POST .../requests/{id}/preflight`: the researcher checks a draft before submitting it.
//! Who may is who may submit it; at most one check per request every
//! [`PREFLIGHT_INTERVAL`] (each reads every file), and each is on the request's record.

use super::requests::{RequestPath, load};
use super::types::PreflightReport;
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::app::preflight::check_draft;
use crate::app::record::modify;
use crate::domain::Status;
use crate::domain::access::{self, UserAction};
use crate::domain::request::{Applied, PREFLIGHT_INTERVAL};
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

pub async fn preflight(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<Json<PreflightReport>, ApiError> {
    let request = load(&deps, &ws, &caller, &id).await?;
    access::may(&caller, UserAction::Submit, &request).map_err(ApiError::forbidden)?;
    if request.status != Status::Draft {
        return Err(ApiError::conflict(format!(
            "a pre-flight check is for a draft; this request is {}",
            request.status
        )));
    }
    let now = deps.clock.now();
    if let Some(wait) = request.preflight_wait(now) {
        let mut refused = ApiError::too_many(wait.num_seconds().max(1) as u64);
        refused.message = format!(
            "this request was checked less than {} s ago: try again in {} s",
            PREFLIGHT_INTERVAL.num_seconds(),
            wait.num_seconds().max(1)
        );
        return Err(refused);
    }
    let report = check_draft(&deps, &ws, &request).await?;
    let findings_of = |r: &PreflightReport| r.files.iter().map(|f| f.findings.len()).sum::<usize>();
    let summary = format!(
        "{} file(s), {} finding(s){}{}",
        report.files.len(),
        findings_of(&report),
        if report.problems.is_empty() {
            String::new()
        } else {
            format!(
                ", refused by the workspace's limits: {}",
                report.problems.join("; ")
            )
        },
        if report.would_block {
            "; a submit now would be blocked"
        } else {
            ""
        }
    );
    tracing::info!(%summary, "pre-flight check");
    // On the record (who checked, what was found), and the time kept for the interval.
    modify::<ApiError>(&deps, &ws, &id, |r, ctx| {
        r.record_preflight(ctx, &caller.user, summary.clone())?;
        Ok(Applied::Changed)
    })
    .await?;
    Ok(Json(report))
}
