//! Events in the exact shapes Azure sends them, typed with the production event structs
//! (`airlock::functions::events`), for the local stack and the tests.

use airlock::domain::EventGridEvent;
use airlock::functions::events::{
    BLOB_CREATED, BLOB_DELETED, BlobCreatedData, MALWARE_SCANNING_RESULT,
    MalwareScanningResultData, ScanResultDetails,
};
use airlock::ports::BlobRef;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The EICAR test string: scanners report it as malware by convention.
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A scanner's verdict on some bytes: `(scanResultType, malware names)`.
pub type Verdict = (String, Vec<String>);

/// Flags the EICAR test file, passes everything else (stands in for Defender).
pub fn eicar_scanner(bytes: &[u8]) -> Verdict {
    let needle = EICAR.as_bytes();
    if bytes.windows(needle.len()).any(|w| w == needle) {
        ("Malicious".into(), vec!["EICAR-Test-File".into()])
    } else {
        ("No threats found".into(), vec![])
    }
}

/// The system topic of a storage account (`.../storageAccounts/{account}`).
pub fn storage_topic(account: &str) -> String {
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-airlock/providers/Microsoft.Storage/storageAccounts/{account}"
    )
}

/// The public Azure URL of a blob (the host style Event Grid reports).
pub fn azure_blob_url(blob: &BlobRef) -> String {
    format!(
        "https://{}.blob.core.windows.net/{}/{}",
        blob.account,
        blob.container,
        airlock::domain::url::encode_path(&blob.name)
    )
}

/// `Microsoft.Storage.BlobCreated` (or `BlobDeleted`) as a storage system topic sends it.
pub fn blob_event(
    blob: &BlobRef,
    blob_url: &str,
    etag: &str,
    size: u64,
    deleted: bool,
    now: DateTime<Utc>,
) -> EventGridEvent {
    let (event_type, api) = if deleted {
        (BLOB_DELETED, "DeleteBlob")
    } else {
        (BLOB_CREATED, "PutBlob")
    };
    let data = BlobCreatedData {
        api: api.to_string(),
        client_request_id: Some(uuid::Uuid::new_v4().to_string()),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        etag: Some(etag.to_string()),
        content_type: Some("application/octet-stream".into()),
        content_length: Some(size),
        blob_type: Some("BlockBlob".into()),
        url: Some(blob_url.to_string()),
        sequencer: Some(format!(
            "{:032x}",
            now.timestamp_nanos_opt().unwrap_or_default()
        )),
        storage_diagnostics: Some(json!({"batchId": uuid::Uuid::new_v4().to_string()})),
    };
    EventGridEvent {
        id: uuid::Uuid::new_v4().to_string(),
        topic: Some(storage_topic(&blob.account)),
        subject: format!(
            "/blobServices/default/containers/{}/blobs/{}",
            blob.container, blob.name
        ),
        event_type: event_type.to_string(),
        event_time: now,
        data: serde_json::to_value(data).expect("event data serialises"),
        data_version: String::new(),
        metadata_version: Some("1".into()),
    }
}

/// `Microsoft.Security.MalwareScanningResult` as Defender for Storage sends it.
pub fn scan_result_event(
    blob: &BlobRef,
    blob_url: &str,
    etag: &str,
    verdict: &Verdict,
    sha256: Option<&str>,
    now: DateTime<Utc>,
) -> EventGridEvent {
    let data = MalwareScanningResultData {
        correlation_id: Some(uuid::Uuid::new_v4().to_string()),
        blob_uri: blob_url.to_string(),
        etag: Some(etag.to_string()),
        scan_finished_time_utc: Some(now),
        scan_result_type: verdict.0.clone(),
        scan_result_details: Some(ScanResultDetails {
            malware_names_found: Some(verdict.1.clone()),
            sha256: sha256.map(str::to_string),
            error: None,
        }),
    };
    EventGridEvent {
        id: uuid::Uuid::new_v4().to_string(),
        topic: Some(storage_topic(&blob.account)),
        subject: format!(
            "storageAccounts/{}/containers/{}/blobs/{}",
            blob.account, blob.container, blob.name
        ),
        event_type: MALWARE_SCANNING_RESULT.to_string(),
        event_time: now,
        data: serde_json::to_value(data).expect("event data serialises"),
        data_version: "1.0".into(),
        metadata_version: Some("1".into()),
    }
}
