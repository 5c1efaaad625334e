//! `ScanCompleted`: Defender for Storage's verdict on a sealed copy.

use super::blob_created::find_request;
use super::inbound::{InboundEvent, parse_blob_url};
use super::workflow::{FunctionError, Outcome, modify};
use crate::app::Deps;
use crate::domain::ScanVerdict;
use crate::domain::StageRole;
use crate::domain::request::Applied;
use serde_json::Value;

pub const SCAN_RESULT: &str = "Microsoft.Security.MalwareScanningResult";

pub async fn handle(deps: &Deps, event: &InboundEvent) -> Result<Outcome, FunctionError> {
    if event.event_type != SCAN_RESULT {
        return Ok(Outcome::Ignored(format!(
            "event type {:?} is not handled here",
            event.event_type
        )));
    }
    let data = &event.data;
    let Some(blob) = data
        .get("blobUri")
        .and_then(Value::as_str)
        .and_then(parse_blob_url)
    else {
        return Ok(Outcome::Ignored(
            "malformed scan result: no valid blobUri".into(),
        ));
    };
    let Some(result) = data.get("scanResultType").and_then(Value::as_str) else {
        return Ok(Outcome::Ignored(
            "malformed scan result: no scanResultType".into(),
        ));
    };
    let malware_names = data
        .pointer("/scanResultDetails/malwareNamesFound")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let scanned_at = data
        .get("scanFinishedTimeUtc")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_else(|| deps.clock.now());
    let verdict = ScanVerdict {
        result: result.to_string(),
        malware_names,
        scanned_at,
        etag: data.get("eTag").and_then(Value::as_str).map(str::to_string),
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
    let m = modify::<FunctionError>(deps, &ws, &request.id, |r, ctx| {
        Ok(r.record_verdict(&blob.name, verdict.clone(), ctx))
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
