//! `BlobCreated`: a blob was committed in a stage account (a copy finished or a user upload).

use super::inbound::{InboundEvent, account_from_topic, parse_blob_subject, parse_blob_url};
use super::workflow::{FunctionError, Outcome, settle_file};
use crate::adapters::BlobRef;
use crate::app::Deps;
use crate::domain::stages::ParsedAccount;
use crate::domain::{AirlockRequest, Workspace};

pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";

pub async fn handle(deps: &Deps, event: &InboundEvent) -> Result<Outcome, FunctionError> {
    if event.event_type != BLOB_CREATED {
        return Ok(Outcome::Ignored(format!(
            "event type {:?} is not handled here",
            event.event_type
        )));
    }
    let from_url = event
        .data
        .get("url")
        .and_then(|u| u.as_str())
        .and_then(parse_blob_url);
    let blob = match (
        parse_blob_subject(&event.subject),
        account_from_topic(&event.source),
    ) {
        (Some((container, name)), Some(account)) => BlobRef {
            account: account.to_string(),
            container,
            name,
        },
        _ => match from_url {
            Some(b) => b,
            None => {
                return Ok(Outcome::Ignored(
                    "malformed BlobCreated: no blob in its subject, topic or url".into(),
                ));
            }
        },
    };
    let Some((ws, request, parsed)) = find_request(deps, &blob).await? else {
        return Ok(Outcome::Ignored(format!(
            "{}/{} is not a request container in a stage account",
            blob.account, blob.container
        )));
    };
    settle_file(deps, &ws, &request, parsed.stage.role(), &blob.name).await
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
