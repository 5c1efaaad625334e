//! The data movement a status needs: the containers of a request in each stage, the copies
//! a transitional status starts, the clean-up of a final one.

use super::outcome::{FunctionError, Outcome};
use super::record::{audit_once, fail};
use crate::app::Deps;
use crate::app::steps::Step;
use crate::domain::request::FileRecord;
use crate::domain::stages::{StageRole, data_role_for, movement_for};
use crate::domain::{AirlockRequest, Stage, Status, Workspace};
use crate::ports::{ContainerRef, CopyIf, CopyState, Destination, PortError};
use futures::StreamExt;
use std::collections::BTreeMap;

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
        .filter(|f| to_role != StageRole::Approved || f.released())
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
            "file(s) changed in the draft after submit, so what would be sealed is not what was submitted: {}; nothing was sealed: create a new request with the files as they should be",
            changed.join(", ")
        );
        let outcome = fail(deps, ws, request, message.clone()).await?;
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
        let outcome = fail(deps, ws, request, message.clone()).await?;
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
    // The destination can change between a look and a copy: the previous revision's copy
    // removed by its clean-up (which a resubmit can overtake), or this revision's copied by a
    // duplicated delivery. Each time it does, look again; a few looks settle it.
    for _ in 0..COPY_LOOKS {
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
        // It exists: this revision's copy (a duplicated delivery, or Reconcile) stands unless
        // it failed; an earlier revision's is replaced. Only over what was just seen: a
        // duplicated delivery that decided the same a moment earlier may have copied (and the
        // seal hashed) meanwhile, and a second copy would change the sealed blob's version
        // under its verdict.
        let Some(props) = deps.blobs.properties(&dest).await? else {
            // Gone since: copy it afresh.
            continue;
        };
        let theirs = props
            .metadata
            .get(REVISION_KEY)
            .and_then(|r| r.parse::<u32>().ok());
        if theirs.is_some_and(|r| r > request.revision) {
            // A later revision's copy: this movement read the request before it was sent back
            // and resubmitted (a late delivery). Replacing it would change a sealed blob's
            // version under its verdict.
            return Ok(false);
        }
        if props.metadata.get(REVISION_KEY) == metadata.get(REVISION_KEY)
            && !matches!(props.copy, Some(CopyState::Failed(_)))
        {
            return Ok(false);
        }
        let over = CopyIf {
            source_etag: version,
            destination: Destination::Version(&props.etag),
        };
        match deps.blobs.start_copy(&source, &dest, metadata, over).await {
            Ok(_) => return Ok(true),
            // Replaced or removed since the look (a resubmit racing the previous revision's
            // clean-up was one): look again rather than take it for this revision's copy.
            Err(PortError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PortError::Transient(format!(
        "the copy destination of {} kept changing: retry",
        file.name
    )))
}

/// How many times a copy looks at its destination again when it changed under it.
const COPY_LOOKS: usize = 3;
