//! `BlobCreated`: a blob was committed in a stage account (a copy finished or a user upload).

use super::events::{BlobCreatedData, Event};
use crate::app::Deps;
use crate::app::outcome::{FunctionError, Outcome};
use crate::app::settle::{Hashing, settle_file};
use crate::domain::stages::ParsedAccount;
use crate::domain::{AirlockRequest, Workspace};
use crate::ports::BlobRef;

pub async fn handle(deps: &Deps, event: &Event<BlobCreatedData>) -> Result<Outcome, FunctionError> {
    let Some(blob) = event.blob() else {
        return Ok(Outcome::Ignored(
            "malformed BlobCreated: no blob in its subject, topic or url".into(),
        ));
    };
    let Some((ws, request, parsed)) = find_request(deps, &blob).await? else {
        return Ok(Outcome::Ignored(format!(
            "{}/{} is not a request container in a stage account",
            blob.account, blob.container
        )));
    };
    settle_file(
        deps,
        &ws,
        &request,
        parsed.stage.role(),
        &blob.name,
        Hashing::Queue,
    )
    .await
}

/// The workspace and request a stage blob belongs to; `None` for anything that is not ours.
pub async fn find_request(
    deps: &Deps,
    blob: &BlobRef,
) -> Result<Option<(Workspace, AirlockRequest, ParsedAccount)>, FunctionError> {
    let Some(parsed) = deps.names.parse(&blob.account) else {
        return Ok(None);
    };
    let ws = match &parsed.workspace_short_id {
        Some(short) => deps.workspaces.get_by_short_id(short).await?,
        None => match deps.requests.locate(&blob.container).await? {
            Some(ws_id) => deps.workspaces.get(&ws_id).await?,
            None => None,
        },
    };
    let Some(ws) = ws else { return Ok(None) };
    let Some(request) = deps.requests.get(&ws.id, &blob.container).await? else {
        return Ok(None);
    };
    tracing::Span::current().record("request_id", request.value.id.as_str());
    if parsed.stage.request_type() != request.value.request_type {
        return Ok(None);
    }
    Ok(Some((ws, request.value, parsed)))
}
