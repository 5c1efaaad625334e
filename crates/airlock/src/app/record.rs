//! A request's record: the conditional read-modify-write every change goes through, the
//! audit trail's store, and the outbox published after each write.

use super::movement::container;
use super::outcome::{FunctionError, Outcome};
use crate::app::Deps;
use crate::app::steps::Step;
use crate::domain::request::{Applied, Ctx};
use crate::domain::stages::StageRole;
use crate::domain::{AirlockRequest, Topic, Workspace};
use crate::ports::{PortError, Versioned};
use tracing::warn;

/// Lost races are retried from a fresh read this many times before giving up.
const MAX_ATTEMPTS: usize = 8;

/// The result of [`modify`].
pub struct Modified {
    pub applied: Applied,
    pub request: AirlockRequest,
    /// Publishing the outbox failed; the events stay in the record for a retry or `Reconcile`.
    pub publish_error: Option<PortError>,
}

/// Reads the request, applies `change`, and writes it back only if nobody wrote in between
/// (`If-Match`); a lost race starts again from a fresh read. Then publishes and clears the
/// outbox, including events a crashed earlier invocation left behind.
pub async fn modify<E: From<PortError>>(
    deps: &Deps,
    workspace: &Workspace,
    id: &str,
    mut change: impl FnMut(&mut AirlockRequest, &Ctx) -> Result<Applied, E>,
) -> Result<Modified, E> {
    let mut step = Step::start();
    for _ in 0..MAX_ATTEMPTS {
        let current = deps
            .requests
            .get(&workspace.id, id)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("request {id}")))?;
        step.done("record read");
        let mut request = current.value.clone();
        let ctx = Ctx {
            now: deps.clock.now(),
            workspace,
        };
        let applied = change(&mut request, &ctx)?;
        let saved = match applied {
            Applied::Unchanged(_) => current,
            Applied::Changed => {
                // The entries an earlier write left in the record stop being carried once
                // the history store is known to hold them.
                if history_stored(deps, &current.value).await {
                    request.history_stored_before(current.value.history_head.length);
                }
                step.done("history checked");
                match deps.requests.replace(&request, &current.etag).await {
                    Ok(saved) => {
                        step.done("record written");
                        saved
                    }
                    Err(PortError::Conflict(_)) => {
                        step.done("record write lost a race");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let (request, publish_error) = flush_outbox(deps, saved).await;
        return Ok(Modified {
            applied,
            request,
            publish_error,
        });
    }
    Err(PortError::Conflict(format!(
        "request {id} kept changing under us ({MAX_ATTEMPTS} attempts)"
    ))
    .into())
}

/// Whether the history store holds every entry in the record's tail (true for an empty
/// tail). Appends them if not; a failure leaves them in the record, where they stay part of
/// the trail until a later change stores them.
async fn history_stored(deps: &Deps, request: &AirlockRequest) -> bool {
    let Some(last) = request.history_tail.last() else {
        return true;
    };
    // Entries are appended in order, so the last one stored means all are.
    if let Ok(Some(stored)) = deps.history.get(&request.id, last.seq).await
        && stored.hash == last.hash
    {
        return true;
    }
    append_history(deps, request).await
}

/// Appends the record's tail to the history store; false (logged) if that failed.
async fn append_history(deps: &Deps, request: &AirlockRequest) -> bool {
    if request.history_tail.is_empty() {
        return true;
    }
    match deps
        .history
        .append(&request.workspace_id, &request.id, &request.history_tail)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            warn!(request_id = %request.id, error = %e, "appending to the history store failed; the entries stay in the record");
            false
        }
    }
}

/// The whole audit trail of `request`: the history store's entries and the record's tail.
pub async fn full_history(
    deps: &Deps,
    request: &AirlockRequest,
) -> Result<Vec<crate::domain::HistoryEntry>, PortError> {
    let stored = deps.history.list(&request.id).await?;
    Ok(crate::domain::request::merge_tail(
        stored,
        &request.history_tail,
    ))
}

/// The trail as committed: the entries up to the head of a record read no earlier than the
/// store, with that head. A step being written meanwhile appends to the store before its
/// record is read here, so the store may run ahead of the record first read: the record is
/// read again (a few times) until its head covers what the store holds, and entries beyond
/// the head are not part of the committed trail yet (the next read shows them). Never a
/// false break from reading mid-write.
pub async fn committed_history(
    deps: &Deps,
    workspace_id: &str,
    mut request: AirlockRequest,
) -> Result<(AirlockRequest, Vec<crate::domain::HistoryEntry>), PortError> {
    let mut history = full_history(deps, &request).await?;
    for _ in 0..3 {
        if history.len() as u64 <= request.history_head.length {
            break;
        }
        match deps.requests.get(workspace_id, &request.id).await? {
            Some(newer) => request = newer.value,
            None => break,
        }
        history = full_history(deps, &request).await?;
    }
    history.truncate(request.history_head.length as usize);
    Ok((request, history))
}

/// After a write: appends the new history entries to their store, then publishes the
/// record's pending events and removes exactly those from the outbox. Publishing is
/// at-least-once: a crash between publish and clear republishes later.
pub async fn flush_outbox(
    deps: &Deps,
    saved: Versioned<AirlockRequest>,
) -> (AirlockRequest, Option<PortError>) {
    let mut step = Step::start();
    if saved.value.outbox.is_empty() {
        append_history(deps, &saved.value).await;
        step.done("history appended");
        return (saved.value, None);
    }
    // The history store and Event Grid are independent: both at once, each topic too.
    let (appended, published) = tokio::join!(
        append_history(deps, &saved.value),
        publish_outbox(deps, &saved.value)
    );
    step.done("history appended, events published");
    if let Err(e) = published {
        return (saved.value, Some(e));
    }
    // What the store now holds need not be carried in the record: dropped with the outbox,
    // in the same write, so the next change has nothing to check.
    let stored_through = appended
        .then(|| saved.value.history_tail.last().map(|e| e.seq))
        .flatten();
    let ids = saved.value.pending_event_ids();
    let mut current = saved;
    for _ in 0..MAX_ATTEMPTS {
        let mut cleared = current.value.clone();
        if !cleared.clear_published(&ids) {
            return (current.value, None);
        }
        if let Some(seq) = stored_through {
            cleared.history_stored_before(seq + 1);
        }
        match deps.requests.replace(&cleared, &current.etag).await {
            Ok(saved) => {
                step.done("outbox cleared");
                return (saved.value, None);
            }
            Err(PortError::Conflict(_)) => {
                match deps
                    .requests
                    .get(&current.value.workspace_id, &current.value.id)
                    .await
                {
                    Ok(Some(fresh)) => current = fresh,
                    _ => break,
                }
            }
            Err(e) => {
                // Published but not cleared: republished later, which consumers tolerate.
                warn!(error = %e, "clearing the outbox failed");
                break;
            }
        }
    }
    (current.value, None)
}

/// Publishes the record's pending events, each topic's at once; the first failure is
/// returned (logged), and the outbox stays pending.
async fn publish_outbox(deps: &Deps, request: &AirlockRequest) -> Result<(), PortError> {
    let publish = |topic: Topic| async move {
        let events: Vec<_> = request
            .outbox
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.event.clone())
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let events = with_gate_links(deps, request, events).await.inspect_err(|e| {
            warn!(request_id = %request.id, error = %e, "signing a gate's read links failed; the outbox stays pending");
        })?;
        deps.publisher.publish(topic, &events).await.inspect_err(|e| {
            warn!(request_id = %request.id, error = %e, "publishing the outbox failed; it stays pending");
        })
    };
    let (status, notification) =
        tokio::join!(publish(Topic::StatusChanged), publish(Topic::Notification));
    status.and(notification)
}

/// `Airlock.GateRequested` events with a read link per file, valid until the gate's deadline
/// (signed at each publish: a link is a credential, never kept in the record).
async fn with_gate_links(
    deps: &Deps,
    request: &AirlockRequest,
    mut events: Vec<crate::domain::EventGridEvent>,
) -> Result<Vec<crate::domain::EventGridEvent>, PortError> {
    if !events
        .iter()
        .any(|e| e.event_type == crate::domain::events::GATE_REQUESTED)
    {
        return Ok(events);
    }
    let ws = deps
        .workspaces
        .get(&request.workspace_id)
        .await?
        .ok_or_else(|| PortError::NotFound(format!("workspace {}", request.workspace_id)))?;
    let sealed = container(deps, &ws, request, StageRole::InProgress);
    for event in events
        .iter_mut()
        .filter(|e| e.event_type == crate::domain::events::GATE_REQUESTED)
    {
        let mut data: crate::domain::request::GateRequestedData =
            serde_json::from_value(event.data.clone()).map_err(|e| {
                PortError::Permanent(format!("a gate request in the outbox is not one: {e}"))
            })?;
        // The workspace's first allowed range restricts these links too, as every link.
        let sas = crate::ports::SasRequest {
            permissions: crate::domain::access::SasPermissions::READ_ONLY,
            expires_at: data.deadline,
            ip_range: ws.policy.link_ip_range().map_err(PortError::Permanent)?,
        };
        // One link per file, signed for that blob: it reads that file and no other.
        for file in &mut data.files {
            file.url = Some(deps.blobs.blob_link(&sealed.blob(&file.name), &sas).await?);
        }
        event.data = serde_json::to_value(&data)
            .map_err(|e| PortError::Permanent(format!("a gate request: {e}")))?;
    }
    Ok(events)
}

/// Adds an audit entry about work done for `request`'s status, unless the request has moved
/// on since or the entry was already written since the last status change (duplicate
/// deliveries must not repeat the trail).
pub async fn audit_once(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    action: &str,
    message: String,
) -> Result<(), FunctionError> {
    modify::<FunctionError>(deps, ws, &request.id, |r, ctx| {
        if r.status != request.status || r.audited_since_change(action) {
            return Ok(Applied::Unchanged("already on the record".into()));
        }
        r.audit(ctx, &crate::domain::User::system(), action, message.clone());
        Ok(Applied::Changed)
    })
    .await?;
    Ok(())
}

/// Fails the request with `message`, found while acting on it as `seen`: a no-op when it is
/// terminal or has moved on since (another status or revision; see
/// [`AirlockRequest::fail_as_seen`]).
pub async fn fail(
    deps: &Deps,
    ws: &Workspace,
    seen: &AirlockRequest,
    message: String,
) -> Result<Outcome, FunctionError> {
    let at = (seen.status, seen.revision);
    let m = modify::<FunctionError>(deps, ws, &seen.id, |r, ctx| {
        Ok(r.fail_as_seen(at, message.clone(), ctx))
    })
    .await?;
    if let Some(e) = m.publish_error {
        return Err(e.into());
    }
    Ok(match m.applied {
        Applied::Changed => Outcome::Done(format!("failed the request: {message}")),
        Applied::Unchanged(why) => Outcome::Ignored(why),
    })
}
