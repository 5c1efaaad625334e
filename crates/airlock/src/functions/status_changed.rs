//! `StatusChanged`: performs the data movement a request's new status needs.

use super::events::Event;
use crate::app::Deps;
use crate::app::movement::drive;
use crate::app::outcome::{FunctionError, Outcome};
use crate::app::record::flush_outbox;
use crate::domain::events::StatusChangedData;
use crate::domain::{RequestType, Status};
use crate::ports::Release;

pub async fn handle(
    deps: &Deps,
    event: &Event<StatusChangedData>,
) -> Result<Outcome, FunctionError> {
    let data = &event.data;
    tracing::Span::current().record("request_id", data.request_id.as_str());
    let Some(ws) = deps.workspaces.get(&data.workspace_id).await? else {
        return Ok(Outcome::Ignored(format!(
            "unknown workspace {}",
            data.workspace_id
        )));
    };
    let Some(current) = deps.requests.get(&ws.id, &data.request_id).await? else {
        return Ok(Outcome::Ignored(format!(
            "unknown request {}",
            data.request_id
        )));
    };
    let request = &current.value;
    if request.status != data.new_status || request.revision != data.revision {
        let stale = format!(
            "stale: event says {} (revision {}), request is {} (revision {})",
            data.new_status, data.revision, request.status, request.revision
        );
        // A leftover outbox (an earlier crash) is published on the way.
        if let (_, Some(e)) = flush_outbox(deps, current).await {
            return Err(e.into());
        }
        return Ok(Outcome::Ignored(stale));
    }
    if request.status == Status::Approved && request.request_type == RequestType::Export {
        // What left the workspace, for the release-ledger gate of later requests. Before the
        // data movement, and retried with this delivery if the ledger is down.
        let releases: Vec<Release> = request
            .files
            .iter()
            .filter(|f| f.released())
            .filter_map(|f| {
                Some(Release {
                    workspace_id: ws.id.clone(),
                    sha256: f.sha256.clone()?,
                    request_id: request.id.clone(),
                    file: f.name.clone(),
                    released_at: request.updated_when,
                })
            })
            .collect();
        deps.releases.record(&releases).await?;
    }
    drive(deps, &ws, request).await
}
