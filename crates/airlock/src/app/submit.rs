//! Submitting a draft: the files in its container become the request's files, each at the
//! version that is there now. The rules (limits, context, the transition) are the domain's
//! (`AirlockRequest::submit_with_context`); this is the part that touches storage.

use super::Deps;
use super::movement::container;
use super::settle::airlock_headers;
use crate::domain::request::DraftFile;
use crate::domain::{AirlockRequest, StageRole, Workspace};
use crate::ports::PortError;

/// Why a draft's files could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The files break the workspace's rules (names, sizes, number): the caller must change
    /// them; a retry cannot help.
    #[error("{0}")]
    Refused(String),
    /// A file changed while it was being taken: submitting again takes the new version.
    #[error("{0:?} changed while the request was being submitted; submit again")]
    Changed(String),
    #[error(transparent)]
    Storage(#[from] PortError),
}

/// The draft's files, each frozen at its current version with the airlock's content headers
/// only, ready for `submit_with_context`.
///
/// Names, sizes and number are checked before anything is done with them: a name a client
/// put there without normalising (`../escape.csv`, `./x.csv`) would address another blob in a
/// URL built from it, and a draft of thousands of files over the limit is refused at once,
/// not after touching each. An uploader's headers (a Content-Disposition, a Cache-Control,
/// ~1 KB each) would ride along with every copy, uncovered by the sha256, so they are
/// replaced; the seal then copies exactly the version recorded here, and an overwrite after
/// submit fails the request instead.
pub async fn draft_files(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<Vec<DraftFile>, SubmitError> {
    let draft = container(deps, ws, request, StageRole::Draft);
    let listed = deps.blobs.list_blobs(&draft).await?;
    let named: Vec<(String, u64)> = listed.iter().map(|b| (b.name.clone(), b.size)).collect();
    crate::domain::policy::check_files(&named, &ws.policy).map_err(SubmitError::Refused)?;
    let mut files = Vec::with_capacity(listed.len());
    for blob in listed {
        let headers = airlock_headers(&blob.name);
        if blob.content == headers {
            // Already frozen by a submit of this draft that is racing this one (a retried
            // call, a double click): rewriting the headers would change the eTag under the
            // version that submit recorded, and its seal would fail the request as
            // overwritten. The listed version is the one to take.
            files.push(DraftFile {
                name: blob.name,
                size: blob.size,
                etag: Some(blob.etag),
            });
            continue;
        }
        let etag = deps
            .blobs
            .set_content_headers(&draft.blob(&blob.name), &headers, Some(&blob.etag))
            .await
            .map_err(|e| match e {
                PortError::PreconditionFailed(_) | PortError::NotFound(_) => {
                    SubmitError::Changed(blob.name.clone())
                }
                e => SubmitError::Storage(e),
            })?;
        files.push(DraftFile {
            name: blob.name,
            size: blob.size,
            etag: Some(etag),
        });
    }
    Ok(files)
}
