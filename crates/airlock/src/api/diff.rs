//! `GET .../requests/{id}/diff`: what changed in this revision, against the previous one and
//! against the caller's last decisions (which of them carry over). For whoever may read the
//! request; it names files, hashes and, for a changed small table, the cells that changed
//! (kept at each seal), never anyone else's decisions.

use super::requests::{RequestPath, load};
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::domain::gates::is_table;
use crate::domain::gates::table::TableSnapshot;
use crate::domain::request::RevisionDiff;
use crate::domain::request::table_diff::table_diff;
use axum::Json;
use axum::extract::{Path, State};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn diff(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
) -> Result<Json<RevisionDiff>, ApiError> {
    let request = load(&deps, &ws, &caller, &id).await?;
    let mut diff = request.revision_diff(&caller.user.id);
    let mut kept: HashMap<String, Option<TableSnapshot>> = HashMap::new();
    for file in diff.changed_files_mut() {
        let (Some(now), Some(before)) = (file.sha256.clone(), file.previous_sha256.clone()) else {
            continue;
        };
        if is_table(&file.name).is_none() {
            continue;
        }
        for sha in [&now, &before] {
            if !kept.contains_key(sha) {
                let snapshot = deps.releases.snapshot(&ws.id, sha).await?;
                kept.insert(sha.clone(), snapshot);
            }
        }
        if let (Some(Some(after)), Some(Some(earlier))) = (kept.get(&now), kept.get(&before)) {
            file.table = Some(table_diff(earlier, after));
        }
    }
    Ok(Json(diff))
}
