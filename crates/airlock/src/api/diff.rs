//! `GET .../requests/{id}/diff`: what changed in this revision, against the previous one and
//! against the caller's last decisions (which of them carry over). For whoever may read the
//! request; it names files and hashes only, never anyone else's decisions.

use super::requests::{RequestPath, load};
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::domain::request::RevisionDiff;
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

pub async fn diff(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<Json<RevisionDiff>, ApiError> {
    let request = load(&deps, &ws, &caller, &id).await?;
    Ok(Json(request.revision_diff(&caller.user.id)))
}
