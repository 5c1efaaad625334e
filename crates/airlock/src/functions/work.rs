//! `Work` (queue trigger): does what an event handler queued because it takes time
//! proportional to data size — hashing a file's copy in a stage. Idempotent: a repeated or
//! stale item finds the record already settled, or moved on, and does nothing.

use crate::app::Deps;
use crate::app::outcome::{FunctionError, Outcome};
use crate::app::settle::{Hashing, settle_file};
use crate::ports::WorkItem;

pub async fn handle(deps: &Deps, item: &WorkItem) -> Result<Outcome, FunctionError> {
    match item {
        WorkItem::SettleFile {
            workspace_id,
            request_id,
            stage,
            name,
            ..
        } => {
            tracing::Span::current().record("request_id", request_id.as_str());
            let Some(ws) = deps.workspaces.get(workspace_id).await? else {
                return Ok(Outcome::Ignored(format!(
                    "workspace {workspace_id} no longer exists"
                )));
            };
            let Some(request) = deps.requests.get(&ws.id, request_id).await? else {
                return Ok(Outcome::Ignored(format!(
                    "request {request_id} no longer exists"
                )));
            };
            settle_file(deps, &ws, &request.value, *stage, name, Hashing::Now).await
        }
    }
}
