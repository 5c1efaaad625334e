//! The events the functions receive, typed. Event Grid delivers in two schemas (its own and
//! CloudEvents 1.0); both are read into one [`Event`], whose `data` is the typed payload of
//! the event type the function subscribes to:
//! - `Microsoft.Storage.BlobCreated` from a storage account's system topic ([`BlobCreatedData`]);
//! - `Microsoft.Security.MalwareScanningResult` from Defender for Storage
//!   ([`MalwareScanningResultData`]);
//! - `Airlock.StatusChanged`, our own ([`StatusChangedData`]).
//!
//! Parsing happens once, in [`Trigger::parse`]; a function never sees JSON.

use super::FunctionName;
use crate::domain::events::{STATUS_CHANGED, StatusChangedData};
use crate::ports::BlobRef;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";
pub const BLOB_DELETED: &str = "Microsoft.Storage.BlobDeleted";
pub const MALWARE_SCANNING_RESULT: &str = "Microsoft.Security.MalwareScanningResult";

/// An event as delivered, whichever schema it came in, with its data typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Event<D> {
    pub id: String,
    pub event_type: String,
    pub subject: String,
    /// Event Grid `topic` or CloudEvents `source`.
    pub source: String,
    /// Event Grid `eventTime` or CloudEvents `time`, when it is there and readable: only
    /// for the latency budget (how long the event took to arrive), never for a decision.
    pub time: Option<DateTime<Utc>>,
    pub data: D,
}

/// `Microsoft.Storage.BlobCreated` (and `BlobDeleted`) data, as a storage system topic sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobCreatedData {
    /// The operation that committed the blob: `PutBlob`, `PutBlockList`, `CopyBlob`, ...
    #[serde(default)]
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_diagnostics: Option<Value>,
}

/// `Microsoft.Security.MalwareScanningResult` data, as Defender for Storage sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MalwareScanningResultData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub blob_uri: String,
    /// The version of the blob that was scanned.
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_finished_time_utc: Option<DateTime<Utc>>,
    /// `"No threats found"`, `"Malicious"`, or an error text: anything else is not clean.
    pub scan_result_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_result_details: Option<ScanResultDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanResultDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware_names_found: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MalwareScanningResultData {
    pub fn malware_names(&self) -> Vec<String> {
        self.scan_result_details
            .as_ref()
            .and_then(|d| d.malware_names_found.clone())
            .unwrap_or_default()
    }
}

impl Event<BlobCreatedData> {
    /// The blob the event is about: from the subject and the system topic, or else the URL.
    pub fn blob(&self) -> Option<BlobRef> {
        match (
            parse_blob_subject(&self.subject),
            account_from_topic(&self.source),
        ) {
            (Some((container, name)), Some(account)) => Some(BlobRef {
                account: account.to_string(),
                container,
                name,
            }),
            _ => self.data.url.as_deref().and_then(parse_blob_url),
        }
    }
}

impl Event<MalwareScanningResultData> {
    /// The scanned blob, from `blobUri`.
    pub fn blob(&self) -> Option<BlobRef> {
        parse_blob_url(&self.data.blob_uri)
    }
}

/// The wire forms of one event (field names differ; the content does not).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventGridWire {
    id: String,
    event_type: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    event_time: Option<Value>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct CloudEventWire {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    time: Option<Value>,
    #[serde(default)]
    data: Value,
}

/// An event's time if it is an RFC 3339 string; anything else is no time (never an error).
fn event_time(value: Option<Value>) -> Option<DateTime<Utc>> {
    let text = value?;
    chrono::DateTime::parse_from_rfc3339(text.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Event<Value> {
    /// Reads an Event Grid or CloudEvents 1.0 event; `Err` says what is wrong with it.
    pub fn from_json(raw: &Value) -> Result<Event<Value>, String> {
        let obj = raw.as_object().ok_or("the event is not a JSON object")?;
        let event = if obj.contains_key("specversion") {
            let e: CloudEventWire = serde_json::from_value(raw.clone())
                .map_err(|e| format!("not a CloudEvents 1.0 event: {e}"))?;
            Event {
                id: e.id,
                event_type: e.event_type,
                subject: e.subject.unwrap_or_default(),
                source: e.source.unwrap_or_default(),
                time: event_time(e.time),
                data: e.data,
            }
        } else {
            let e: EventGridWire = serde_json::from_value(raw.clone())
                .map_err(|e| format!("not an Event Grid event: {e}"))?;
            Event {
                id: e.id,
                event_type: e.event_type,
                subject: e.subject.unwrap_or_default(),
                source: e.topic.unwrap_or_default(),
                time: event_time(e.event_time),
                data: e.data,
            }
        };
        Ok(event)
    }

    /// The same event with its data read as `D`.
    pub fn typed<D: DeserializeOwned>(self) -> Result<Event<D>, String> {
        let data = serde_json::from_value(self.data)
            .map_err(|e| format!("malformed {} data: {e}", self.event_type))?;
        Ok(Event {
            id: self.id,
            event_type: self.event_type,
            subject: self.subject,
            source: self.source,
            time: self.time,
            data,
        })
    }
}

/// One event for an event-triggered function, parsed and typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    StatusChanged(Event<StatusChangedData>),
    BlobCreated(Event<BlobCreatedData>),
    MalwareScanningResult(Event<MalwareScanningResultData>),
}

/// Why an event was not handed to a function. Retrying cannot change either reason, so the
/// host acknowledges these (and logs why) instead of failing the invocation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("event type {event_type:?} is not handled by {function}")]
    NotForThisFunction {
        event_type: String,
        function: &'static str,
    },
}

/// The kinds of event-triggered function (the ones that are not HTTP or timer triggered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFunction {
    StatusChanged,
    BlobCreated,
    ScanCompleted,
}

impl EventFunction {
    /// The one event type each function subscribes to (`infra/subscriptions.json`).
    pub fn event_type(self) -> &'static str {
        match self {
            EventFunction::StatusChanged => STATUS_CHANGED,
            EventFunction::BlobCreated => BLOB_CREATED,
            EventFunction::ScanCompleted => MALWARE_SCANNING_RESULT,
        }
    }

    pub fn name(self) -> FunctionName {
        match self {
            EventFunction::StatusChanged => FunctionName::StatusChanged,
            EventFunction::BlobCreated => FunctionName::BlobCreated,
            EventFunction::ScanCompleted => FunctionName::ScanCompleted,
        }
    }
}

impl Trigger {
    /// Parses one delivered event for `function`.
    pub fn parse(function: EventFunction, raw: &Value) -> Result<Trigger, Rejected> {
        let event = Event::from_json(raw).map_err(Rejected::Malformed)?;
        if event.event_type != function.event_type() {
            return Err(Rejected::NotForThisFunction {
                event_type: event.event_type,
                function: function.name().as_str(),
            });
        }
        let trigger = match function {
            EventFunction::StatusChanged => event.typed().map(Trigger::StatusChanged),
            EventFunction::BlobCreated => event.typed().map(Trigger::BlobCreated),
            EventFunction::ScanCompleted => event.typed().map(Trigger::MalwareScanningResult),
        };
        trigger.map_err(Rejected::Malformed)
    }

    pub fn id(&self) -> &str {
        match self {
            Trigger::StatusChanged(e) => &e.id,
            Trigger::BlobCreated(e) => &e.id,
            Trigger::MalwareScanningResult(e) => &e.id,
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            Trigger::StatusChanged(e) => &e.event_type,
            Trigger::BlobCreated(e) => &e.event_type,
            Trigger::MalwareScanningResult(e) => &e.event_type,
        }
    }

    /// When the event was raised, if it says.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::StatusChanged(e) => e.time,
            Trigger::BlobCreated(e) => e.time,
            Trigger::MalwareScanningResult(e) => e.time,
        }
    }

    /// The latency budget's name for the time from raising the event to handling it.
    pub fn waited_step(&self) -> &'static str {
        match self {
            Trigger::StatusChanged(_) => "StatusChanged on its way",
            Trigger::BlobCreated(_) => "BlobCreated on its way",
            Trigger::MalwareScanningResult(_) => "scan verdict on its way",
        }
    }
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
    let name = crate::domain::url::decode(name)?;
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
            assert_eq!(
                crate::domain::url::decode(&crate::domain::url::encode_path(name)).unwrap(),
                name
            );
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
}
