//! Settling a file that arrived in a stage: hashed (and checked by the gates) as it is
//! sealed, verified as it is approved, recorded as it is rejected or blocked.

use super::movement::{REVISION_KEY, container, drive};
use super::outcome::{FunctionError, Outcome};
use super::record::{fail, modify};
use crate::app::Deps;
use crate::app::steps::Step;
use crate::domain::gates::{Checked, ContentReader, EarlierRelease, EarlierTable, GateRunner};
use crate::domain::policy::content_type_for;
use crate::domain::request::Applied;
use crate::domain::stages::StageRole;
use crate::domain::{AirlockRequest, Workspace};
use crate::ports::{BlobRef, ByteStream, ContentHeaders, CopyState, PortError, WorkItem};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

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

/// Releases compared with a new table: the workspace's latest this many released tables.
const TABLES_COMPARED: usize = 200;

/// Chunks of a file waiting for the gates' thread (besides the one it reads): what the seal
/// holds beyond the download's and the gates' own buffers when the gates read slower than
/// storage sends. A chunk can be a whole download range (2 MiB on Azure): one waiting is
/// enough to keep both sides busy.
const CHUNKS_AHEAD_OF_THE_GATES: usize = 1;

/// Hashes a blob and runs the workspace's gates over the same bytes as they stream past: one
/// read of the data whatever the number of gates.
pub async fn hash_and_check(
    deps: &Deps,
    blob: &BlobRef,
    gates: Option<GateRunner>,
) -> Result<Option<(Hashed, Checked)>, PortError> {
    let (props, stream) = match deps.blobs.read(blob).await {
        Ok(x) => x,
        Err(PortError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (sha256, size, checked) = hash_stream(stream, gates).await?;
    Ok(Some((
        Hashed {
            sha256,
            size,
            etag: props.etag,
            revision: props.metadata.get(REVISION_KEY).cloned(),
            copy: props.copy,
            content: props.content,
        },
        checked,
    )))
}

/// Reads a file's bytes to their end: their sha256 (hex), their size, and what the gates made
/// of them.
///
/// The gates read on threads of their own, handed each chunk as it arrives (a reference,
/// not a copy) through channels of [`CHUNKS_AHEAD_OF_THE_GATES`]: the download and the hash
/// go on while the gates read, instead of waiting for them chunk by chunk. The `identifiers`
/// and `secrets` gates, which share nothing with the others until the end, read on a second
/// thread. So a seal with gates takes about as long as the slowest of them rather than the
/// sum of all. When a reader is behind, its full channel holds the download back: memory
/// stays bounded.
pub async fn hash_stream(
    mut stream: ByteStream,
    mut gates: Option<GateRunner>,
) -> Result<(String, u64, Checked), PortError> {
    let content = gates.as_mut().and_then(GateRunner::take_content);
    let (content_findings, content_received) = tokio::sync::oneshot::channel();
    let content =
        content.map(|reader| reading_thread(reader, ContentReader::feed, ContentReader::finish));
    let gates = gates.map(|runner| {
        reading_thread(runner, GateRunner::feed, move |runner: GateRunner| {
            // The content gates' findings, once their thread is done (none if it had none).
            runner.finish_with(content_received.blocking_recv().ok().flatten())
        })
    });
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let stopped = |e: tokio::task::JoinError| {
        PortError::Permanent(format!("the gates stopped while reading the file: {e}"))
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
        let readers = content.iter().map(|(c, _)| c);
        for chunks in readers.chain(gates.iter().map(|(c, _)| c)) {
            // An error means the thread is gone: only a panic ends it early; its handle
            // says why, below.
            let _ = chunks.send(chunk.clone()).await;
        }
    }
    let content = match content {
        Some((chunks, thread)) => {
            drop(chunks);
            Some(thread.await.map_err(stopped)?)
        }
        None => None,
    };
    // Sent even when the gates' thread is gone (then nobody reads it).
    let _ = content_findings.send(content);
    let checked = match gates {
        Some((chunks, thread)) => {
            drop(chunks);
            thread.await.map_err(stopped)?
        }
        None => Checked::default(),
    };
    Ok((hex::encode(hasher.finalize()), size, checked))
}

/// A blocking thread that feeds `reader` every chunk sent on the returned channel and, when
/// the channel closes, returns what `finish` makes of it.
fn reading_thread<R: Send + 'static, T: Send + 'static>(
    mut reader: R,
    feed: fn(&mut R, &[u8]),
    finish: impl FnOnce(R) -> T + Send + 'static,
) -> (tokio::sync::mpsc::Sender<Bytes>, tokio::task::JoinHandle<T>) {
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_AHEAD_OF_THE_GATES);
    let span = tracing::Span::current();
    let thread = tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        while let Some(chunk) = received.blocking_recv() {
            feed(&mut reader, &chunk);
        }
        finish(reader)
    });
    (chunks, thread)
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
        .then(|| GateRunner::for_seal(&ws.policy.gates, name))
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
    if let Some(snapshot) = &checked.snapshot {
        // Kept by content, so that a resubmission's table can be compared with this one
        // cell by cell.
        deps.releases
            .remember_snapshot(&ws.id, &hashed.sha256, snapshot)
            .await?;
    }
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
                return fail(deps, ws, request, message).await;
            }
        }
    }
    let m = modify::<FunctionError>(deps, ws, &request.id, |r, ctx| {
        // The request read above may be older than the record now: sent back and resubmitted
        // while this file was read, a later revision's file is not this one (its copy may
        // not even be made yet). The check above saves the work; this one decides.
        if hashed.revision.as_deref() != Some(r.revision.to_string().as_str()) {
            return Ok(Applied::Unchanged(format!(
                "{name:?} in {role:?} belongs to revision {:?}; the request is now at revision {}",
                hashed.revision, r.revision
            )));
        }
        match role {
            StageRole::InProgress => r
                .record_sealed_checked(
                    name,
                    hashed.size,
                    hashed.sha256.clone(),
                    hashed.etag.clone(),
                    checked.clone(),
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
        }
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
