//! `ScanCompleted`: Defender for Storage's verdict on a sealed copy.

use super::blob_created::find_request;
use super::events::{Event, MalwareScanningResultData};
use crate::app::Deps;
use crate::app::outcome::{FunctionError, Outcome};
use crate::app::record::modify;
use crate::domain::ScanVerdict;
use crate::domain::StageRole;
use crate::domain::request::Applied;
use crate::ports::{DEFENDER_RESULT_TAG, PortError};

pub async fn handle(
    deps: &Deps,
    event: &Event<MalwareScanningResultData>,
) -> Result<Outcome, FunctionError> {
    let Some(blob) = event.blob() else {
        return Ok(Outcome::Ignored(
            "malformed scan result: no valid blobUri".into(),
        ));
    };
    let data = &event.data;
    let result = data.scan_result_type.clone();
    let verdict = ScanVerdict {
        result: result.clone(),
        malware_names: data.malware_names(),
        scanned_at: data
            .scan_finished_time_utc
            .unwrap_or_else(|| deps.clock.now()),
        etag: data.etag.clone(),
    };
    let Some((ws, request, parsed)) = find_request(deps, &blob).await? else {
        return Ok(Outcome::Ignored(format!(
            "{}/{} is not a request container",
            blob.account, blob.container
        )));
    };
    if parsed.stage.role() != StageRole::InProgress {
        return Ok(Outcome::Ignored(format!(
            "verdicts only count in the in-progress stage, not {:?}",
            parsed.stage
        )));
    }
    // Defender also writes its verdict into the blob's index tags, which only it (and the
    // storage account's owners) can write: an event that contradicts that record is not
    // Defender's, whoever could send to the topic.
    match deps.blobs.tags(&blob).await {
        Ok(tags) => {
            if let Some(recorded) = tags.get(DEFENDER_RESULT_TAG)
                && *recorded != result
            {
                tracing::warn!(file = %blob.name, %result, %recorded, "verdict contradicts the blob's index tag");
                return Ok(Outcome::Ignored(format!(
                    "verdict {result:?} for {:?} contradicts Defender's record on the blob ({recorded:?}): not accepted",
                    blob.name
                )));
            }
        }
        Err(PortError::NotFound(_)) => {
            return Ok(Outcome::Ignored(format!(
                "{:?} is no longer in the in-progress stage",
                blob.name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let m = modify::<FunctionError>(deps, &ws, &request.id, |r, ctx| {
        r.record_verdict(&blob.name, verdict.clone(), ctx)
            .map_err(FunctionError::from)
    })
    .await?;
    if let Some(e) = m.publish_error {
        return Err(e.into());
    }
    Ok(match m.applied {
        Applied::Changed => Outcome::Done(format!(
            "verdict {result:?} for {:?} recorded; request is {}",
            blob.name, m.request.status
        )),
        Applied::Unchanged(why) => Outcome::Ignored(why),
    })
}
