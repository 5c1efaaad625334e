//! Inbound event shapes: Event Grid schema or CloudEvents 1.0, and the blob URLs inside them.
//! Also builds events in the exact shapes Azure sends, for the local stack and the tests.

use crate::adapters::BlobRef;
use crate::domain::EventGridEvent;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// An event, whichever schema it arrived in.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    pub id: String,
    pub event_type: String,
    pub subject: String,
    /// Event Grid `topic` or CloudEvents `source`.
    pub source: String,
    pub data: Value,
}

/// Reads an Event Grid or CloudEvents event; `Err` says what is missing.
pub fn parse_event(v: &Value) -> Result<InboundEvent, String> {
    let obj = v.as_object().ok_or("the event is not a JSON object")?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let cloud = obj.contains_key("specversion");
    let (type_key, source_key) = if cloud {
        ("type", "source")
    } else {
        ("eventType", "topic")
    };
    Ok(InboundEvent {
        id: text("id").ok_or("the event has no id")?,
        event_type: text(type_key).ok_or_else(|| format!("the event has no {type_key}"))?,
        subject: text("subject").unwrap_or_default(),
        source: text(source_key).unwrap_or_default(),
        data: obj.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// Splits a blob URL into account, container and blob name. Accepts Azure's host style
/// (`https://acct.blob.core.windows.net/c/b`) and the emulator's path style
/// (`https://127.0.0.1:10000/acct/c/b`).
pub fn parse_blob_url(url: &str) -> Option<BlobRef> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.split(['?', '#']).next()?;
    let (host, path) = rest.split_once('/')?;
    let hostname = host.split(':').next()?;
    let path_style = hostname == "localhost"
        || hostname.parse::<std::net::IpAddr>().is_ok()
        || !hostname.contains('.');
    let (account, path) = if path_style {
        path.split_once('/')?
    } else {
        (hostname.split('.').next()?, path)
    };
    let (container, name) = path.split_once('/')?;
    let name = percent_decode(name)?;
    if account.is_empty() || container.is_empty() || name.is_empty() {
        return None;
    }
    Some(BlobRef {
        account: account.to_string(),
        container: container.to_string(),
        name,
    })
}

/// The account named by a storage system topic (`.../storageAccounts/{account}`).
pub fn account_from_topic(topic: &str) -> Option<&str> {
    let (_, account) = topic.rsplit_once("/storageAccounts/")?;
    (!account.is_empty() && !account.contains('/')).then_some(account)
}

/// Container and blob name from a `BlobCreated` subject
/// (`/blobServices/default/containers/{c}/blobs/{path}`).
pub fn parse_blob_subject(subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix("/blobServices/default/containers/")?;
    let (container, name) = rest.split_once("/blobs/")?;
    (!container.is_empty() && !name.is_empty()).then(|| (container.to_string(), name.to_string()))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a blob name for a URL path, keeping `/`.
pub fn percent_encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn storage_topic(account: &str) -> String {
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-airlock/providers/Microsoft.Storage/storageAccounts/{account}"
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
        ("Microsoft.Storage.BlobDeleted", "DeleteBlob")
    } else {
        ("Microsoft.Storage.BlobCreated", "PutBlob")
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
        data: json!({
            "api": api,
            "clientRequestId": uuid::Uuid::new_v4().to_string(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "eTag": etag,
            "contentType": "application/octet-stream",
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": blob_url,
            "sequencer": format!("{:032x}", now.timestamp_nanos_opt().unwrap_or_default()),
            "storageDiagnostics": {"batchId": uuid::Uuid::new_v4().to_string()},
        }),
        data_version: String::new(),
        metadata_version: Some("1".into()),
    }
}

/// `Microsoft.Security.MalwareScanningResult` as Defender for Storage sends it.
pub fn scan_result_event(
    blob: &BlobRef,
    blob_url: &str,
    etag: &str,
    result: &str,
    malware_names: &[String],
    sha256: Option<&str>,
    now: DateTime<Utc>,
) -> EventGridEvent {
    EventGridEvent {
        id: uuid::Uuid::new_v4().to_string(),
        topic: Some(storage_topic(&blob.account)),
        subject: format!(
            "storageAccounts/{}/containers/{}/blobs/{}",
            blob.account, blob.container, blob.name
        ),
        event_type: "Microsoft.Security.MalwareScanningResult".to_string(),
        event_time: now,
        data: json!({
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "blobUri": blob_url,
            "eTag": etag,
            "scanFinishedTimeUtc": now,
            "scanResultType": result,
            "scanResultDetails": {"malwareNamesFound": malware_names, "sha256": sha256},
        }),
        data_version: "1.0".into(),
        metadata_version: Some("1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls() {
        let table = [
            (
                "https://stalimipmytre.blob.core.windows.net/req1/data.csv",
                Some(("stalimipmytre", "req1", "data.csv")),
            ),
            (
                "https://127.0.0.1:10000/stalexipwsab/req1/dir/a%20b.csv",
                Some(("stalexipwsab", "req1", "dir/a b.csv")),
            ),
            (
                "https://localhost:10000/acct/c/b?sv=1",
                Some(("acct", "c", "b")),
            ),
            ("https://acct.blob.core.windows.net/c", None),
            ("https://acct.blob.core.windows.net/c/", None),
            ("ftp://acct/c/b", None),
            ("https://acct.blob.core.windows.net/c/b%zz", None),
        ];
        for (url, expected) in table {
            let got = parse_blob_url(url);
            let expected = expected.map(|(a, c, n)| BlobRef {
                account: a.into(),
                container: c.into(),
                name: n.into(),
            });
            assert_eq!(got, expected, "{url}");
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        for name in ["a b/c%d.csv", "ünï/x", "plain.txt"] {
            assert_eq!(percent_decode(&percent_encode_path(name)).unwrap(), name);
        }
    }

    #[test]
    fn subjects_and_topics() {
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/c1/blobs/dir/f.csv"),
            Some(("c1".into(), "dir/f.csv".into()))
        );
        assert_eq!(
            parse_blob_subject("/blobServices/default/containers/c1"),
            None
        );
        assert_eq!(
            account_from_topic(
                "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/acct"
            ),
            Some("acct")
        );
        assert_eq!(account_from_topic("/subscriptions/x"), None);
    }

    #[test]
    fn both_schemas_parse() {
        let eg =
            json!({"id": "1", "eventType": "T", "subject": "s", "topic": "t", "data": {"a": 1}});
        let ce = json!({"specversion": "1.0", "id": "1", "type": "T", "subject": "s", "source": "t", "data": {"a": 1}});
        assert_eq!(parse_event(&eg).unwrap(), parse_event(&ce).unwrap());
        assert!(
            parse_event(&json!({"eventType": "T"}))
                .unwrap_err()
                .contains("id")
        );
        assert!(parse_event(&json!("x")).is_err());
    }
}
