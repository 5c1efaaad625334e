//! Container links: upload to a draft, read in review and once approved.

use super::requests::{ApiResult, RequestPath, load};
use super::types::ContainerLink;
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::app::movement::container;
use crate::app::record::modify;
use crate::domain::access::{self, LinkRefusal};
use crate::ports::SasRequest;
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

/// Links expire on a 5-minute boundary at least `lifetime` from now: the same link asked
/// for again within those minutes is the same grant, already on the record (so a caller in a
/// loop adds at most 12 entries an hour, and the rate limit bounds the calls).
fn link_expiry(
    now: chrono::DateTime<chrono::Utc>,
    lifetime: chrono::Duration,
) -> chrono::DateTime<chrono::Utc> {
    const STEP: i64 = 5 * 60;
    let end = now + lifetime;
    let at = end.timestamp();
    // A whole second on the boundary is the boundary; a fraction past it is not (rounding
    // the fraction away gave a link up to a second shorter than the policy's lifetime).
    let on_boundary = at.rem_euclid(STEP) == 0 && end.timestamp_subsec_nanos() == 0;
    let rounded = at.div_euclid(STEP) * STEP + if on_boundary { 0 } else { STEP };
    chrono::DateTime::from_timestamp(rounded, 0).unwrap_or(end)
}

pub async fn link(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> ApiResult<ContainerLink> {
    let request = load(&deps, &ws, &caller, &id).await?;
    let grant = access::link_grant(&caller, &request).map_err(|e| match e {
        LinkRefusal::Forbidden(m) => ApiError::forbidden(m),
        LinkRefusal::Unavailable(m) => ApiError::conflict(m),
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

#[cfg(test)]
mod tests {
    use super::link_expiry;
    use chrono::{DateTime, Duration, Utc};

    #[test]
    fn a_link_lives_at_least_its_lifetime_and_ends_on_a_five_minute_boundary() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let ten = Duration::minutes(10);
        for (now, expected) in [
            ("2026-12-05T12:00:00Z", "2026-12-05T12:10:00Z"),
            ("2026-12-05T12:00:00.000000001Z", "2026-12-05T12:15:00Z"),
            ("2026-12-05T12:00:00.5Z", "2026-12-05T12:15:00Z"),
            ("2026-12-05T12:00:01Z", "2026-12-05T12:15:00Z"),
            ("2026-12-05T12:04:59.999Z", "2026-12-05T12:15:00Z"),
            ("2026-12-05T12:05:00Z", "2026-12-05T12:15:00Z"),
        ] {
            let expires = link_expiry(at(now), ten);
            assert_eq!(expires, at(expected), "from {now}");
            assert!(expires >= at(now) + ten, "from {now}");
        }
    }
}
