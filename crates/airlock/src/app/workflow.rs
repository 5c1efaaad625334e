//! The steps every function shares: a conditional read-modify-write with its outbox, the data
//! movement a status needs, and settling a file that arrived in a stage.

use crate::app::Deps;
use crate::app::steps::Step;
use crate::domain::gates::{EarlierRelease, EarlierTable, Finding, GateRunner, TableCells};
use crate::domain::policy::content_type_for;
use crate::domain::request::FileRecord;
use crate::domain::request::{Applied, Ctx};
use crate::domain::stages::{StageRole, data_role_for, movement_for};
use crate::domain::{AirlockRequest, Stage, Status, Topic, Workspace};
use crate::ports::{
    BlobRef, ContainerRef, ContentHeaders, CopyIf, CopyState, Destination, PortError, Versioned,
    WorkItem,
};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// What a function did with its event. Both answer 2xx: an ignored event is not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Ignored(String),
}

impl Outcome {
    pub fn message(&self) -> String {
        match self {
            Outcome::Done(m) => m.clone(),
            Outcome::Ignored(m) => format!("ignored: {m}"),
        }
    }
}

/// A function failed. `Retryable` answers non-2xx so the host and Event Grid try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    #[error("{0} (a retry may help)")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

impl FunctionError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, FunctionError::Retryable(_))
    }
}

/// A rule the domain refused is not going to change on a retry.
impl From<crate::domain::DomainError> for FunctionError {
    fn from(e: crate::domain::DomainError) -> Self {
        FunctionError::Permanent(e.to_string())
    }
}

impl From<PortError> for FunctionError {
    fn from(e: PortError) -> Self {
        if let PortError::Forbidden(m) = &e {
            tracing::error!(alert = "identity-forbidden", error = %m, "our identity was refused: check its role assignments (docs/operating.md); the host will retry");
        }
        if e.is_retryable() {
            FunctionError::Retryable(e.to_string())
        } else {
            FunctionError::Permanent(e.to_string())
        }
    }
}

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
        let link = deps.blobs.container_link(&sealed, &sas).await?;
        let base = reqwest::Url::parse(&link)
            .map_err(|e| PortError::Permanent(format!("the container link is not a URL: {e}")))?;
        for file in &mut data.files {
            let mut url = base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.extend(file.name.split('/'));
            }
            file.url = Some(url.to_string());
        }
        event.data = serde_json::to_value(&data)
            .map_err(|e| PortError::Permanent(format!("a gate request: {e}")))?;
    }
    Ok(events)
}

/// The request's container in the stage playing `role`.
pub fn container(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    role: StageRole,
) -> ContainerRef {
    ContainerRef {
        account: deps
            .names
            .account(Stage::of(request.request_type, role), &ws.short_id),
        container: request.id.clone(),
    }
}

pub const REVISION_KEY: &str = "airlockrevision";

pub use crate::domain::request::DATA_REMOVED;

fn revision_metadata(request: &AirlockRequest) -> BTreeMap<String, String> {
    BTreeMap::from([(REVISION_KEY.to_string(), request.revision.to_string())])
}

/// Performs what the request's current status needs of storage. Safe to repeat.
pub async fn drive(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<Outcome, FunctionError> {
    match request.status {
        Status::Draft => {
            let draft = container(deps, ws, request, StageRole::Draft);
            deps.blobs.create_container(&draft).await?;
            if request.revision > 1 {
                // Sealed copies of the previous revision must not be mistaken for this one's.
                // Each is deleted only as the version listed: a resubmission can seal the new
                // revision's copy in between, and that one must stay.
                let sealed = container(deps, ws, request, StageRole::InProgress);
                for blob in deps.blobs.list_blobs(&sealed).await? {
                    let at = sealed.blob(&blob.name);
                    let Some(props) = deps.blobs.properties(&at).await? else {
                        continue;
                    };
                    // A copy made for this revision (the draft resubmitted and sealed before
                    // this clean-up ran, a late delivery) is not the previous revision's.
                    let revision = props
                        .metadata
                        .get(REVISION_KEY)
                        .and_then(|r| r.parse::<u32>().ok());
                    if revision.is_some_and(|r| r >= request.revision) {
                        continue;
                    }
                    deps.blobs.delete_blob_if(&at, &props.etag).await?;
                }
            }
            Ok(Outcome::Done(format!(
                "draft container {} ready",
                draft.account
            )))
        }
        Status::Submitted
        | Status::ApprovalInProgress
        | Status::RejectionInProgress
        | Status::BlockingInProgress => match movement_for(request.status) {
            Some(movement) => start_movement(deps, ws, request, movement).await,
            None => Err(FunctionError::Permanent(format!(
                "the domain names no data movement for {}",
                request.status
            ))),
        },
        Status::InReview => Ok(Outcome::Done("awaiting review: nothing to move".into())),
        Status::Approved
        | Status::Rejected
        | Status::BlockedByScan
        | Status::Cancelled
        | Status::Failed
        | Status::Revoked => {
            let terminal = request.status;
            let keep = data_role_for(terminal);
            let mut deleted = Vec::new();
            for role in StageRole::ALL {
                if Some(role) != keep {
                    let c = container(deps, ws, request, role);
                    deps.blobs.delete_container(&c).await?;
                    deleted.push(c.account);
                }
            }
            let message = format!(
                "{terminal}: data kept in {}, removed from {}",
                keep.map(|r| format!("{r:?}"))
                    .unwrap_or_else(|| "nowhere".into()),
                deleted.join(", ")
            );
            audit_once(deps, ws, request, DATA_REMOVED, message.clone()).await?;
            Ok(Outcome::Done(message))
        }
    }
}

/// Starts the copies of a transitional status; files already copied (for this revision) are
/// left alone so a sealed copy is never overwritten.
async fn start_movement(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    (from_role, to_role): (StageRole, StageRole),
) -> Result<Outcome, FunctionError> {
    let mut step = Step::start();
    let from = container(deps, ws, request, from_role);
    let to = container(deps, ws, request, to_role);
    deps.blobs.create_container(&to).await?;
    step.done("container created");
    if to_role == StageRole::InProgress && request.revision > 1 {
        // A resubmit can overtake the clean-up of the previous revision's sealed copies:
        // reviewers must only ever see this revision's files. (At revision 1 only this
        // submit's copies can be there: nobody else writes to the stage.)
        for blob in deps.blobs.list_blobs(&to).await? {
            if !request.files.iter().any(|f| f.name == blob.name) {
                deps.blobs
                    .delete_blob_if(&to.blob(&blob.name), &blob.etag)
                    .await?;
            }
        }
        step.done("stale copies looked for");
    }
    let metadata = revision_metadata(request);
    // A partial release copies only the approved files; the withheld ones go nowhere and are
    // removed with the in-progress stage. The copies are independent: several at once.
    let moving: Vec<FileRecord> = request
        .files
        .iter()
        .filter(|f| !(to_role == StageRole::Approved && f.withheld()))
        .cloned()
        .collect();
    let (from_ref, to_ref, metadata_ref) = (&from, &to, &metadata);
    let copies = moving.into_iter().map(|file| async move {
        let copied = copy_file(
            deps,
            ws,
            request,
            from_role,
            from_ref,
            to_ref,
            metadata_ref,
            &file,
        )
        .await;
        (file.name, copied)
    });
    let results: Vec<(String, Result<bool, PortError>)> = futures::stream::iter(copies)
        .buffer_unordered(COPIES_AT_ONCE)
        .collect()
        .await;
    let mut started = 0;
    let mut missing = Vec::new();
    let mut changed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(true) => started += 1,
            // Copied (or written) meanwhile by someone else doing the same: theirs stands.
            Ok(false) | Err(PortError::Conflict(_)) => {}
            Err(PortError::NotFound(_)) => missing.push(name),
            Err(PortError::PreconditionFailed(_)) => changed.push(name),
            Err(e) => return Err(e.into()),
        }
    }
    missing.sort();
    changed.sort();
    step.done("copies started");
    if !changed.is_empty() {
        let message = format!(
            "file(s) changed in the draft after submit, so what would be sealed is not what was submitted: {}; submit again",
            changed.join(", ")
        );
        let outcome = fail(deps, ws, &request.id, message.clone()).await?;
        return Ok(Outcome::Done(format!("{message}; {}", outcome.message())));
    }
    if !missing.is_empty() {
        let message = if from_role == StageRole::Draft {
            format!(
                "file(s) removed from the draft before they could be sealed: {}",
                missing.join(", ")
            )
        } else {
            format!(
                "file(s) missing from the {from_role:?} stage, cannot move them: {}",
                missing.join(", ")
            )
        };
        let outcome = fail(deps, ws, &request.id, message.clone()).await?;
        return Ok(Outcome::Done(format!("{message}; {}", outcome.message())));
    }
    let message = format!(
        "{}: {started} cop(ies) started from {} to {}",
        request.status, from.account, to.account
    );
    if started > 0 {
        audit_once(deps, ws, request, "copies started", message.clone()).await?;
    }
    Ok(Outcome::Done(message))
}

/// How many of a request's copies are started at once.
const COPIES_AT_ONCE: usize = 8;

/// Starts the copy of one file of a movement: `Ok(true)` if started, `Ok(false)` if this
/// revision's copy is already there. The first try is conditional on the destination being
/// absent (the common case, one call); only if it exists is it looked at.
#[allow(clippy::too_many_arguments)]
async fn copy_file(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    from_role: StageRole,
    from: &ContainerRef,
    to: &ContainerRef,
    metadata: &BTreeMap<String, String>,
    file: &FileRecord,
) -> Result<bool, PortError> {
    let dest = to.blob(&file.name);
    let mut source = from.blob(&file.name);
    if request.status == Status::BlockingInProgress
        && deps.blobs.properties(&source).await?.is_none()
    {
        // A bad verdict can arrive before every file was sealed: block from the draft.
        source = container(deps, ws, request, StageRole::Draft).blob(&file.name);
    }
    // The seal copies exactly the version that was submitted.
    let version = if from_role == StageRole::Draft {
        file.submitted_etag.as_deref()
    } else {
        None
    };
    let absent = CopyIf {
        source_etag: version,
        destination: Destination::Absent,
    };
    match deps
        .blobs
        .start_copy(&source, &dest, metadata, absent)
        .await
    {
        Ok(_) => return Ok(true),
        Err(PortError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    // It exists: this revision's copy (a duplicated delivery, or Reconcile) stands unless it
    // failed; an earlier revision's is replaced. Only over what was just seen: a duplicated
    // delivery that decided the same a moment earlier may have copied (and the seal hashed)
    // meanwhile, and a second copy would change the sealed blob's version under its verdict.
    let Some(props) = deps.blobs.properties(&dest).await? else {
        return Err(PortError::Transient(format!(
            "copy destination {} existed and is gone: retry",
            file.name
        )));
    };
    if props.metadata.get(REVISION_KEY) == metadata.get(REVISION_KEY)
        && !matches!(props.copy, Some(CopyState::Failed(_)))
    {
        return Ok(false);
    }
    let over = CopyIf {
        source_etag: version,
        destination: Destination::Version(&props.etag),
    };
    deps.blobs
        .start_copy(&source, &dest, metadata, over)
        .await
        .map(|_| true)
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

/// Fails the request with `message` (a no-op when already terminal).
pub async fn fail(
    deps: &Deps,
    ws: &Workspace,
    id: &str,
    message: String,
) -> Result<Outcome, FunctionError> {
    let m =
        modify::<FunctionError>(deps, ws, id, |r, ctx| Ok(r.fail(message.clone(), ctx))).await?;
    if let Some(e) = m.publish_error {
        return Err(e.into());
    }
    Ok(match m.applied {
        Applied::Changed => Outcome::Done(format!("failed the request: {message}")),
        Applied::Unchanged(why) => Outcome::Ignored(why),
    })
}

/// The only content headers the airlock's copies carry: the type for the file's name.
pub fn airlock_headers(name: &str) -> ContentHeaders {
    ContentHeaders::only_type(content_type_for(name))
}

/// A blob's sha256 and the version it was computed on, streamed in bounded memory.
pub struct Hashed {
    pub sha256: String,
    pub size: u64,
    pub etag: String,
    pub revision: Option<String>,
    pub copy: Option<CopyState>,
    pub content: ContentHeaders,
}

/// What the gates made of a file as it was hashed: their findings, and a table's cells when a
/// release-ledger gate compares tables.
#[derive(Default)]
pub struct Checked {
    pub findings: Vec<Finding>,
    pub cells: Option<TableCells>,
}

/// Releases compared with a new table: the workspace's latest this many released tables.
const TABLES_COMPARED: usize = 200;

/// Hashes a blob and runs the workspace's gates over the same bytes as they stream past: one
/// read of the data whatever the number of gates.
pub async fn hash_and_check(
    deps: &Deps,
    blob: &BlobRef,
    mut gates: Option<GateRunner>,
) -> Result<Option<(Hashed, Checked)>, PortError> {
    let (props, mut stream) = match deps.blobs.read(blob).await {
        Ok(x) => x,
        Err(PortError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
        if let Some(gates) = &mut gates {
            gates.feed(&chunk);
        }
    }
    let (findings, cells) = gates.map(GateRunner::finish).unwrap_or_default();
    Ok(Some((
        Hashed {
            sha256: hex::encode(hasher.finalize()),
            size,
            etag: props.etag,
            revision: props.metadata.get(REVISION_KEY).cloned(),
            copy: props.copy,
            content: props.content,
        },
        Checked { findings, cells },
    )))
}

/// Queues the hashing of a file's copy. Whether the copy is there and complete is for the
/// `Work` function to see as it reads it ([`settle_file`]: a missing or pending copy raises
/// its own event later, a failed one is restarted); looking here too cost every file a
/// round trip to storage in the event delivery.
async fn queue_hashing(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    role: StageRole,
    name: &str,
) -> Result<Outcome, FunctionError> {
    let mut step = Step::start();
    deps.work
        .enqueue(&WorkItem::SettleFile {
            workspace_id: ws.id.clone(),
            request_id: request.id.clone(),
            stage: role,
            name: name.to_string(),
            queued_at: Some(deps.clock.now()),
        })
        .await?;
    step.done("work queued");
    info!(file = name, ?role, "hashing queued");
    Ok(Outcome::Done(format!(
        "hashing of {name:?} in {role:?} queued"
    )))
}

/// How [`settle_file`] treats work proportional to the file's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hashing {
    /// Queue it as a [`WorkItem`] and return at once (event deliveries and the timer),
    /// unless the file is small enough to hash at once ([`crate::app::limits::InlineHashes`]).
    Queue,
    /// Do it now (the `Work` function).
    Now,
}

/// Accounts for a file that arrived in a stage (from `BlobCreated`, or `Reconcile` checking a
/// copy): seals it in the in-progress stage, verifies it in the approved stage, records the
/// move in the rejected and blocked stages. Anything that does not match the record is
/// ignored.
/// The hashing itself runs in the `Work` function ([`Hashing::Queue`]), never inside an
/// event delivery, which Event Grid gives 30 seconds.
pub async fn settle_file(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    role: StageRole,
    name: &str,
    hashing: Hashing,
) -> Result<Outcome, FunctionError> {
    let Some(file) = request.files.iter().find(|f| f.name == name) else {
        return Ok(Outcome::Ignored(format!(
            "{name:?} is not a file of request {}",
            request.id
        )));
    };
    let Some(expected_status) = crate::domain::stages::status_moving_into(role) else {
        return Ok(Outcome::Ignored("uploads to a draft need no action".into()));
    };
    if request.status != expected_status {
        return Ok(Outcome::Ignored(format!(
            "request is {}, nothing to do for a file in {role:?}",
            request.status
        )));
    }
    let already = match role {
        StageRole::InProgress => file.sha256.is_some(),
        StageRole::Draft | StageRole::Approved | StageRole::Rejected | StageRole::Blocked => {
            file.arrived_in == Some(role)
        }
    };
    if already {
        return Ok(Outcome::Ignored(format!(
            "{name:?} already recorded in {role:?}"
        )));
    }
    let blob = container(deps, ws, request, role).blob(name);
    // Blocked files may never have been hashed (a bad verdict can beat the seal): hash the
    // quarantined copy so the record says exactly what was blocked, whatever the order.
    let needs_hash = match role {
        StageRole::InProgress | StageRole::Approved => true,
        StageRole::Blocked => file.sha256.is_none(),
        StageRole::Draft | StageRole::Rejected => false,
    };
    // A small file is hashed here and now while a slot is free (the size is the one
    // recorded at submit; the hash reads what is there): the queue's hop is for large ones.
    let _slot = match hashing {
        Hashing::Queue if needs_hash => match deps.inline_hashes.try_slot(file.size) {
            Some(slot) => Some(slot),
            None => return queue_hashing(deps, ws, request, role, name).await,
        },
        Hashing::Queue | Hashing::Now => None,
    };
    // The seal is also where the workspace's gates look at the data.
    let gates = (role == StageRole::InProgress)
        .then(|| GateRunner::new(&ws.policy.gates, name))
        .flatten();
    let mut checked = Checked::default();
    let mut step = Step::start();
    let hashed = if needs_hash {
        hash_and_check(deps, &blob, gates)
            .await?
            .map(|(hashed, found)| {
                checked = found;
                hashed
            })
    } else {
        deps.blobs.properties(&blob).await?.map(|p| Hashed {
            sha256: String::new(),
            size: p.size,
            etag: p.etag,
            revision: p.metadata.get(REVISION_KEY).cloned(),
            copy: p.copy,
            content: p.content,
        })
    };
    let Some(hashed) = hashed else {
        return Ok(Outcome::Ignored(format!(
            "{name:?} is not in {role:?} (yet)"
        )));
    };
    // The gates read the same stream as the hash: their time is in this step.
    step.done(if needs_hash {
        "hashed and checked"
    } else {
        "properties read"
    });
    if role == StageRole::InProgress && crate::domain::gates::consults_ledger(&ws.policy.gates) {
        let earlier: Vec<EarlierRelease> = deps
            .releases
            .released(&ws.id, &hashed.sha256)
            .await?
            .into_iter()
            .map(|r| EarlierRelease {
                request_id: r.request_id,
                file: r.file,
                released_at: r.released_at,
            })
            .collect();
        let mut tables = Vec::new();
        if let Some(cells) = &checked.cells {
            // Kept by content, so that once these bytes are released the next table can be
            // compared with them.
            deps.releases
                .remember_table(&ws.id, &hashed.sha256, cells)
                .await?;
            tables = deps
                .releases
                .released_tables(&ws.id, TABLES_COMPARED)
                .await?
                .into_iter()
                .map(|(r, cells)| EarlierTable {
                    release: EarlierRelease {
                        request_id: r.request_id,
                        file: r.file,
                        released_at: r.released_at,
                    },
                    cells,
                })
                .collect();
        }
        let found = crate::domain::gates::ledger_findings(
            &ws.policy.gates,
            &request.id,
            &earlier,
            checked.cells.as_ref(),
            &tables,
        );
        checked.findings.extend(found);
        step.done("release ledger consulted");
    }
    let findings = checked.findings;
    match &hashed.copy {
        Some(CopyState::Pending) => {
            return Ok(Outcome::Ignored(format!("copy of {name:?} still pending")));
        }
        Some(CopyState::Failed(why)) => {
            warn!(file = name, why, "copy failed; restarting it");
            let restarted = drive(deps, ws, request).await?;
            return Ok(Outcome::Done(format!(
                "copy of {name:?} failed ({why}); {}",
                restarted.message()
            )));
        }
        _ => {}
    }
    if hashed.revision.as_deref() != Some(request.revision.to_string().as_str()) {
        return Ok(Outcome::Ignored(format!(
            "{name:?} in {role:?} belongs to revision {:?}, the request is at {}",
            hashed.revision, request.revision
        )));
    }
    if role == StageRole::Approved {
        // Only reviewed bytes cross: the approved copy carries the airlock's headers and
        // nothing of the uploader's, or the request fails. Setting them also ends the
        // copy's record on the blob (`x-ms-copy-source`, which would show the downloader a
        // read link to the in-progress copy): the service shows a copy's details only until
        // the blob's properties are set. Conditional on the hashed version.
        let expected = airlock_headers(name);
        if hashed.content != expected || hashed.copy.is_some() {
            match deps
                .blobs
                .set_content_headers(&blob, &expected, Some(&hashed.etag))
                .await
            {
                Ok(_) => {}
                Err(PortError::PreconditionFailed(why)) => {
                    return Ok(Outcome::Ignored(format!(
                        "{name:?} changed while it was verified ({why}); its next event settles it"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            let now = deps.blobs.properties(&blob).await?.map(|p| p.content);
            if now.as_ref() != Some(&expected) {
                let message = format!(
                    "the approved copy of {name:?} carries content headers the airlock did not set"
                );
                return fail(deps, ws, &request.id, message).await;
            }
        }
    }
    let m = modify::<FunctionError>(deps, ws, &request.id, |r, ctx| match role {
        StageRole::InProgress => r
            .record_sealed_checked(
                name,
                hashed.size,
                hashed.sha256.clone(),
                hashed.etag.clone(),
                findings.clone(),
                ctx,
            )
            .map_err(FunctionError::from),
        StageRole::Draft | StageRole::Approved | StageRole::Rejected | StageRole::Blocked => r
            .record_arrival(
                name,
                role,
                needs_hash.then_some(hashed.sha256.as_str()),
                ctx,
            )
            .map_err(FunctionError::from),
    })
    .await?;
    if let Some(e) = m.publish_error {
        return Err(e.into());
    }
    info!(file = name, status = %m.request.status, "file settled");
    Ok(match m.applied {
        Applied::Changed => Outcome::Done(format!(
            "{name:?} recorded in {role:?}; request is {}",
            m.request.status
        )),
        Applied::Unchanged(why) => Outcome::Ignored(why),
    })
}
