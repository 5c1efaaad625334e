//! Typed events against the fixtures (real payloads in both of Event Grid's schemas): each
//! parses into its typed form, keeps every field through a round trip, and is refused with a
//! reason when it is for another function or malformed. The builders the local stack uses
//! produce what the parser reads.

use airlock::domain::Status;
use airlock::functions::FunctionName;
use airlock::functions::events::{
    BlobCreatedData, Event, EventFunction, MalwareScanningResultData, Rejected, Trigger,
};
use airlock::host::Invocation;
use airlock::ports::BlobRef;
use airlock_testkit::builders::{
    EICAR, azure_blob_url, blob_event, eicar_scanner, scan_result_event,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn blob() -> BlobRef {
    BlobRef {
        account: "stalexipwsone".into(),
        container: "7f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f".into(),
        name: "results/summary.csv".into(),
    }
}

/// Typed data serialises back to what it was read from (every field kept, nulls aside).
fn round_trips<D>(data: &Value)
where
    D: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let typed: D = serde_json::from_value(data.clone()).unwrap();
    let mut again = serde_json::to_value(&typed).unwrap();
    let mut expected = data.clone();
    strip_nulls(&mut expected);
    strip_nulls(&mut again);
    assert_eq!(again, expected);
    assert_eq!(
        serde_json::from_value::<D>(serde_json::to_value(&typed).unwrap()).unwrap(),
        typed
    );
}

/// Drops nulls and writes timestamps one way (`.1234567Z` and `.123456700Z` are one instant).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::String(text) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
                *text = t.to_utc().to_rfc3339();
            }
        }
        _ => {}
    }
}

#[test]
fn blob_created_fixture_is_typed() {
    let raw = fixture("blob-created.json");
    let Trigger::BlobCreated(e) = Trigger::parse(EventFunction::BlobCreated, &raw).unwrap() else {
        panic!("a BlobCreated trigger")
    };
    assert_eq!(e.id, "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66");
    assert_eq!(e.data.api, "CopyBlob");
    assert_eq!(e.data.content_length, Some(524));
    assert_eq!(e.data.etag.as_deref(), Some("\"0x8DC5B2A3F1E2D3C\""));
    assert_eq!(e.blob(), Some(blob()));
    round_trips::<BlobCreatedData>(&raw["data"]);
}

#[test]
fn scan_result_fixtures_are_typed() {
    for (name, result, names) in [
        ("scan-clean.json", "No threats found", vec![]),
        (
            "scan-malicious.json",
            "Malicious",
            vec!["EICAR_Test_File".to_string()],
        ),
        ("scan-error.json", "Error", vec![]),
    ] {
        let raw = fixture(name);
        let Trigger::MalwareScanningResult(e) =
            Trigger::parse(EventFunction::ScanCompleted, &raw).unwrap()
        else {
            panic!("{name}: a scan result trigger")
        };
        assert_eq!(e.data.scan_result_type, result, "{name}");
        assert_eq!(e.data.malware_names(), names, "{name}");
        assert!(e.data.scan_finished_time_utc.is_some(), "{name}");
        assert_eq!(e.blob(), Some(blob()), "{name}");
        round_trips::<MalwareScanningResultData>(&raw["data"]);
    }
    let error = fixture("scan-error.json");
    let Ok(Trigger::MalwareScanningResult(e)) =
        Trigger::parse(EventFunction::ScanCompleted, &error)
    else {
        panic!("scan error parses")
    };
    let details = e.data.scan_result_details.unwrap();
    assert!(details.error.unwrap().contains("too large"));
}

#[test]
fn status_changed_parses_in_both_schemas_alike() {
    let grid = Trigger::parse(
        EventFunction::StatusChanged,
        &fixture("status-changed.json"),
    )
    .unwrap();
    let cloud = Trigger::parse(
        EventFunction::StatusChanged,
        &fixture("status-changed-cloudevent.json"),
    )
    .unwrap();
    let (Trigger::StatusChanged(g), Trigger::StatusChanged(c)) = (grid, cloud) else {
        panic!("StatusChanged triggers")
    };
    assert_eq!(g.data, c.data);
    assert_eq!(g.subject, c.subject);
    assert_eq!(g.source, c.source);
    assert_eq!(g.data.new_status, Status::Submitted);
    assert_eq!(g.data.previous_status, Some(Status::Draft));
    assert_eq!(g.data.revision, 1);
}

#[test]
fn events_for_another_function_or_malformed_are_rejected_with_the_reason() {
    let deleted = fixture("blob-deleted.json");
    assert_eq!(
        Trigger::parse(EventFunction::BlobCreated, &deleted),
        Err(Rejected::NotForThisFunction {
            event_type: "Microsoft.Storage.BlobDeleted".into(),
            function: "BlobCreated",
        })
    );
    // A scan verdict sent to StatusChanged is not read as a status change.
    assert!(matches!(
        Trigger::parse(EventFunction::StatusChanged, &fixture("scan-clean.json")),
        Err(Rejected::NotForThisFunction { .. })
    ));
    let mut no_uri = fixture("scan-clean.json");
    no_uri["data"].as_object_mut().unwrap().remove("blobUri");
    let mut bad_status = fixture("status-changed.json");
    bad_status["data"]["newStatus"] = json!("teleported");
    let mut bad_length = fixture("blob-created.json");
    bad_length["data"]["contentLength"] = json!("big");
    let cases = [
        (EventFunction::ScanCompleted, no_uri, "blobUri"),
        (EventFunction::StatusChanged, bad_status, "teleported"),
        (EventFunction::BlobCreated, bad_length, "\"big\""),
        (
            EventFunction::BlobCreated,
            json!("an event"),
            "not a JSON object",
        ),
        (
            EventFunction::BlobCreated,
            json!({"eventType": "Microsoft.Storage.BlobCreated"}),
            "id",
        ),
        (
            EventFunction::StatusChanged,
            json!({"specversion": "1.0", "id": "1"}),
            "type",
        ),
    ];
    for (function, raw, needle) in cases {
        match Trigger::parse(function, &raw) {
            Err(Rejected::Malformed(why)) => {
                assert!(why.contains(needle), "{why} should name {needle}")
            }
            other => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn the_host_parses_an_invocation_once_into_what_it_is() {
    let timer = serde_json::to_vec(&fixture("envelope-timer.json")).unwrap();
    assert_eq!(
        Invocation::parse(FunctionName::Reconcile, &timer),
        Ok(Invocation::Timer)
    );
    for envelope in ["envelope-object.json", "envelope-string.json"] {
        let body = serde_json::to_vec(&fixture(envelope)).unwrap();
        let Ok(Invocation::Events(events)) = Invocation::parse(FunctionName::BlobCreated, &body)
        else {
            panic!("{envelope}: events")
        };
        assert_eq!(events.len(), 1, "{envelope}");
        assert!(matches!(&events[0], Ok(Trigger::BlobCreated(e)) if e.blob() == Some(blob())));
    }
    assert!(Invocation::parse(FunctionName::Api, b"{}").is_err());
    assert!(Invocation::parse(FunctionName::StatusChanged, b"not json").is_err());
    let queue = serde_json::to_vec(&fixture("envelope-queue.json")).unwrap();
    let Ok(Invocation::Work(item, meta)) = Invocation::parse(FunctionName::Work, &queue) else {
        panic!("the host's queue envelope is a work item")
    };
    let airlock::ports::WorkItem::SettleFile { request_id, .. } = item;
    assert_eq!(request_id, "7f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f");
    assert_eq!(meta.dequeue_count, Some(1));
    assert_eq!(
        meta.id.as_deref(),
        Some("b3f1c5de-2a4b-4c6d-8e0f-1a2b3c4d5e6f")
    );
    let unreadable = serde_json::to_vec(&fixture("envelope-queue-unreadable.json")).unwrap();
    assert!(Invocation::parse(FunctionName::Work, &unreadable).is_err());
    for bad in [&b"not json"[..], b"{}", br#"{"Data": {"timer": 5}}"#] {
        assert!(Invocation::parse(FunctionName::Reconcile, bad).is_err());
    }
}

/// The JSON type of every value, recursively (strings also say whether their content is
/// itself a JSON string or object: that is the host's encoding).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(_) => json!("array"),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
                Ok(Value::Object(_)) => json!("json string of json object"),
                _ => json!("json string"),
            },
            Ok(Value::Number(_)) => json!("number as string"),
            Ok(Value::Object(_)) => json!("json object as string"),
            _ => json!("string"),
        },
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[test]
fn the_test_kit_builds_the_envelopes_the_host_sends() {
    use airlock_testkit::host_envelopes;
    let fixture_queue = fixture("envelope-queue.json");
    let message = serde_json::from_str::<Value>(
        &serde_json::from_str::<String>(fixture_queue["Data"]["item"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let built = host_envelopes::queue_message(&message.to_string(), "b3f1", 1, "Work");
    let mut fixture_shape = shape(&fixture_queue);
    let mut built_shape = shape(&built);
    // Dates: the fixture's are RFC 3339 strings, as chrono's are.
    assert_eq!(built_shape, fixture_shape);
    assert_eq!(
        built_shape["Data"]["item"],
        json!("json string of json object")
    );
    assert_eq!(
        built_shape["Metadata"]["DequeueCount"],
        json!("number as string")
    );
    let event = fixture("blob-created.json");
    for (as_string, file) in [
        (false, "envelope-object.json"),
        (true, "envelope-string.json"),
    ] {
        built_shape = shape(&host_envelopes::event_grid(
            &event,
            as_string,
            "BlobCreated",
        ));
        fixture_shape = shape(&fixture(file));
        assert_eq!(built_shape["Data"], fixture_shape["Data"], "{file}");
    }
    assert_eq!(
        shape(&host_envelopes::timer("Reconcile"))["Data"],
        shape(&fixture("envelope-timer.json"))["Data"]
    );
}

#[test]
fn builders_make_what_the_parser_reads() {
    let b = blob();
    let url = azure_blob_url(&b);
    let now = chrono::Utc::now();
    let created = serde_json::to_value(blob_event(&b, &url, "\"0x1\"", 42, false, now)).unwrap();
    let Ok(Trigger::BlobCreated(e)) = Trigger::parse(EventFunction::BlobCreated, &created) else {
        panic!("{created}")
    };
    assert_eq!(
        (e.blob(), e.data.content_length),
        (Some(b.clone()), Some(42))
    );
    let deleted = serde_json::to_value(blob_event(&b, &url, "\"0x1\"", 42, true, now)).unwrap();
    assert!(Trigger::parse(EventFunction::BlobCreated, &deleted).is_err());
    let verdict = eicar_scanner(EICAR.as_bytes());
    let scan =
        serde_json::to_value(scan_result_event(&b, &url, "\"0x1\"", &verdict, None, now)).unwrap();
    let Ok(Trigger::MalwareScanningResult(e)) = Trigger::parse(EventFunction::ScanCompleted, &scan)
    else {
        panic!("{scan}")
    };
    assert_eq!(e.blob(), Some(b));
    assert_eq!(e.data.scan_result_type, "Malicious");
    assert_eq!(e.data.malware_names(), vec!["EICAR-Test-File".to_string()]);
    assert_eq!(eicar_scanner(b"id,value\n").0, "No threats found");
    let _: Event<Value> = Event::from_json(&scan).unwrap();
}
