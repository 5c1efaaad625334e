//! The functions as the Functions host drives them: real-shaped fixture payloads in host
//! envelopes, the protocol's edge cases, and the faults `Reconcile` must heal.

use crate::common::*;
use airlock::app::record::modify;
use airlock::domain::request::Applied;
use airlock::domain::{AirlockRequest, EventGridEvent, FileRecord, RequestType, Status, User};
use airlock::functions::FunctionName;
use airlock::ports::{BlobStore, ContainerRef};
use airlock_testkit::memory::CopyMode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const RID: &str = "7f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f";
const FILE: &str = "results/summary.csv";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn post(s: &Stack, function: &str, body: &Value) -> (u16, Value) {
    let (status, v) = s
        .call("POST", &format!("/{function}"), None, Some(body.clone()))
        .await;
    (status.as_u16(), v)
}

fn envelope(event: Value) -> Value {
    json!({"Data": {"event": event}, "Metadata": {}})
}

/// The queue trigger's envelope for `message`, as the Functions host builds it (the text
/// JSON-encoded twice, the metadata as strings).
fn work_envelope(message: &str, dequeue_count: u32) -> Value {
    airlock_testkit::host_envelopes::queue_message(message, "m-1", dequeue_count, "Work")
}

/// Plays the queue trigger: invokes `Work` with every message queued so far, as the
/// Functions host does; returns the answers.
async fn run_work(s: &Stack) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for message in s.work.take_new() {
        let body = work_envelope(&message, 1);
        answers.push(post(s, "Work", &body).await);
    }
    answers
}

/// The fixtures' request: an export in ws-one, submitted with one file whose sealed copy
/// is already in the in-progress stage (as after `StatusChanged`).
async fn fixture_request(s: &Stack) {
    let now = s.clock_now();
    let alice = User {
        id: "alice".into(),
        name: "Alice".into(),
        email: Some("alice@one.test".into()),
    };
    let request = AirlockRequest {
        id: RID.into(),
        workspace_id: WS1.into(),
        request_type: RequestType::Export,
        title: "t".into(),
        business_justification: "j".into(),
        purpose: None,
        status: Status::Submitted,
        status_message: None,
        status_since: Some(now),
        revision: 1,
        created_by: alice.clone(),
        created_when: now,
        updated_by: alice,
        updated_when: now,
        files: vec![FileRecord {
            name: FILE.into(),
            size: 524,
            submitted_etag: None,
            sha256: None,
            etag: None,
            sealed_at: None,
            scan: None,
            arrived_in: None,
            findings: vec![],
            justification: None,
            description: None,
            disclosure_controls: None,
            supporting: false,
            gates_read: None,
            table_labels: None,
            evidence: None,
            acro: None,
            decision: None,
        }],
        reviews: vec![],
        history_head: Default::default(),
        history_tail: vec![],
        links_issued: vec![],
        audited_since_change: vec![],
        rescan_requested_at: None,
        preflight_at: None,
        contributors: vec!["alice".into()],
        gate_runs: vec![],
        carried_context: vec![],
        review_quorum: 1,
        comments: vec![],
        outbox: vec![],
    };
    s.requests.force_put(&request);
    let draft = ContainerRef {
        account: "stalexintwsone".into(),
        container: RID.into(),
    };
    let sealed = ContainerRef {
        account: "stalexipwsone".into(),
        container: RID.into(),
    };
    s.blobs.put(&draft.blob(FILE), b"id,value\n1,2\n".to_vec());
    s.blobs.create_container(&sealed).await.unwrap();
    let metadata = BTreeMap::from([("airlockrevision".to_string(), "1".to_string())]);
    s.blobs
        .start_copy(
            &draft.blob(FILE),
            &sealed.blob(FILE),
            &metadata,
            Default::default(),
        )
        .await
        .unwrap();
    s.blobs.take_notices();
}

trait Now {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}
impl Now for Stack {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        airlock::ports::Clock::now(&*self.clock)
    }
}

#[test]
fn function_names_match_the_manifests() {
    let dir = format!("{}/function-manifests", crate::common::REPO);
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    let mut names: Vec<String> = FunctionName::ALL
        .iter()
        .map(|f| f.as_str().to_string())
        .collect();
    names.sort();
    assert_eq!(folders, names);
    let trigger = |name: &str| -> Value {
        let text = std::fs::read_to_string(format!("{dir}/{name}/function.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["bindings"].clone()
    };
    for name in ["StatusChanged", "BlobCreated", "ScanCompleted"] {
        assert_eq!(trigger(name)[0]["type"], "eventGridTrigger", "{name}");
        assert_eq!(
            trigger(name)[0]["name"],
            "event",
            "{name}: the handler reads Data.event"
        );
    }
    assert_eq!(trigger("Api")[0]["type"], "httpTrigger");
    assert_eq!(trigger("Api")[0]["route"], "{*path}");
    assert_eq!(trigger("Api")[1]["type"], "http");
    assert_eq!(trigger("Reconcile")[0]["type"], "timerTrigger");
    let host: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/host.json", crate::common::REPO)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "handler"
    );
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert!(
        host["extensionBundle"]["version"]
            .as_str()
            .unwrap()
            .starts_with("[4.")
    );
}

#[tokio::test]
async fn host_protocol_edges() {
    let s = Stack::start(json!({})).await;
    let (status, _) = s.call("GET", "/", None, None).await;
    assert_eq!(status, 200, "ready probe");
    let (status, body) = post(&s, "NoSuchFunction", &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&s, "Api", &json!({})).await;
    assert_eq!(status, 404, "{body}");
    // An invocation the handler cannot read is answered 500, never acknowledged: the host
    // retries it and Event Grid dead-letters it (or the queue poisons it), so it is kept.
    for body in [
        json!("nonsense"),
        json!({"Data": {}}),
        json!({"Data": {"event": "{not json"}}),
        json!({"Data": {"event": "\"{not json\""}}),
        envelope(json!({"no": "id"})),
        envelope(json!([1, 2])),
    ] {
        let (status, v) = post(&s, "BlobCreated", &body).await;
        assert_eq!(status, 500, "{body}: {v}");
        assert!(v["Logs"][0].as_str().unwrap().contains("unreadable"), "{v}");
        assert_eq!(v["ReturnValue"], Value::Null);
    }
    for (function, body) in [
        ("Reconcile", json!("nonsense")),
        ("Reconcile", json!({"Data": {"timer": "\"yesterday\""}})),
        ("Work", json!({"Data": {}})),
    ] {
        let (status, v) = post(&s, function, &body).await;
        assert_eq!(status, 500, "{function} {body}: {v}");
    }
    let resp = s
        .http
        .post(format!("{}/StatusChanged", s.base))
        .body("\u{0}\u{1}binary")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    // Events of the wrong type, or for requests we do not know, are acknowledged.
    let mut wrong = fixture("status-changed.json");
    wrong["eventType"] = json!("Something.Else");
    for (function, event) in [
        ("StatusChanged", wrong),
        ("StatusChanged", fixture("status-changed.json")),
        ("ScanCompleted", fixture("scan-clean.json")),
        ("BlobCreated", fixture("blob-created.json")),
    ] {
        let (status, v) = post(&s, function, &envelope(event)).await;
        assert_eq!(status, 200, "{function}: {v}");
        assert!(
            v["Logs"][0].as_str().unwrap().starts_with("ignored"),
            "{function}: {v}"
        );
    }
}

/// A small file is hashed (and checked) in the delivery that found its copy: no queue hop.
#[tokio::test]
async fn blob_created_seals_a_small_file_at_once() {
    let s = Stack::start(json!({"scanRequired": false})).await;
    fixture_request(&s).await;
    let (status, v) = post(&s, "BlobCreated", &fixture("envelope-string.json")).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["Logs"][0].as_str().unwrap().contains("recorded"), "{v}");
    assert!(s.work.take_new().is_empty(), "nothing queued");
    assert!(s.record(RID).files[0].sha256.is_some());
}

#[tokio::test]
async fn blob_created_seals_from_both_envelope_shapes() {
    let s = Stack::start_queueing_hashes(json!({"scanRequired": false})).await;
    fixture_request(&s).await;
    let (status, v) = post(&s, "BlobCreated", &fixture("envelope-string.json")).await;
    assert_eq!(status, 200, "{v}");
    // The event delivery only queues the hashing; the `Work` function does it.
    assert!(v["Logs"][0].as_str().unwrap().contains("queued"), "{v}");
    assert!(s.record(RID).files[0].sha256.is_none());
    let answers = run_work(&s).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, 200, "{:?}", answers[0].1);
    let r = s.record(RID);
    assert_eq!(r.status, Status::InReview, "{:?}", answers[0].1);
    assert_eq!(
        r.files[0].sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"id,value\n1,2\n")).as_str())
    );
    assert_eq!(r.files[0].size, 13, "size comes from the sealed copy");
    // The same event again (object form) changes nothing.
    let (status, v) = post(&s, "BlobCreated", &fixture("envelope-object.json")).await;
    assert_eq!(status, 200);
    assert!(v["Logs"][0].as_str().unwrap().starts_with("ignored"), "{v}");
    assert_eq!(s.record(RID).history_head, r.history_head);
}

#[tokio::test]
async fn blob_deleted_is_ignored() {
    let s = Stack::start(json!({})).await;
    fixture_request(&s).await;
    let before = s.record(RID);
    let (status, v) = post(&s, "BlobCreated", &envelope(fixture("blob-deleted.json"))).await;
    assert_eq!(status, 200);
    assert!(
        v["Logs"][0].as_str().unwrap().contains("BlobDeleted"),
        "{v}"
    );
    assert_eq!(s.record(RID), before);
}

#[tokio::test]
async fn cloud_events_are_accepted() {
    let s = Stack::start(json!({})).await;
    fixture_request(&s).await;
    s.blobs
        .delete_blob(
            &ContainerRef {
                account: "stalexipwsone".into(),
                container: RID.into(),
            }
            .blob(FILE),
        )
        .await
        .unwrap();
    let (status, v) = post(
        &s,
        "StatusChanged",
        &envelope(fixture("status-changed-cloudevent.json")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        s.data_of(RID).contains_key("stalexip"),
        "the sealed copy was started again: {v}"
    );
}

/// Seals the fixture file, then returns the sealed copy's ETag.
async fn sealed(s: &Stack) -> String {
    post(s, "BlobCreated", &fixture("envelope-object.json")).await;
    run_work(s).await;
    s.record(RID).files[0].etag.clone().unwrap()
}

#[tokio::test]
async fn scan_verdicts_from_defender() {
    for (name, status, needle) in [
        ("scan-clean.json", Status::InReview, None),
        (
            "scan-malicious.json",
            Status::BlockingInProgress,
            Some("EICAR_Test_File"),
        ),
        ("scan-error.json", Status::BlockingInProgress, Some("Error")),
    ] {
        let s = Stack::start(json!({})).await;
        fixture_request(&s).await;
        let etag = sealed(&s).await;
        // A verdict about another version of the blob does not count.
        let (code, v) = post(&s, "ScanCompleted", &envelope(fixture(name))).await;
        assert_eq!(code, 200);
        assert!(
            v["Logs"][0].as_str().unwrap().contains("etag"),
            "{name}: {v}"
        );
        assert_eq!(s.record(RID).status, Status::Submitted);
        let mut event = fixture(name);
        event["data"]["eTag"] = json!(etag);
        let (code, v) = post(&s, "ScanCompleted", &envelope(event)).await;
        assert_eq!(code, 200, "{v}");
        let r = s.record(RID);
        assert_eq!(r.status, status, "{name}: {v}");
        if let Some(needle) = needle {
            let message = r.status_message.unwrap();
            assert!(
                message.contains(needle) && message.contains(FILE),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn retryable_failures_answer_500_then_succeed() {
    let s = Stack::start_queueing_hashes(json!({})).await;
    fixture_request(&s).await;
    s.requests.fail_next(1);
    let (status, v) = post(&s, "BlobCreated", &fixture("envelope-object.json")).await;
    assert_eq!(status, 500, "{v}");
    assert!(v["Logs"][0].as_str().unwrap().contains("retry"), "{v}");
    let (status, _) = post(&s, "BlobCreated", &fixture("envelope-object.json")).await;
    assert_eq!(status, 200);
    // The same for the queued work: a retryable failure is a 500 (the host retries the
    // message), then it succeeds.
    let message = s.work.take_new().pop().expect("hashing queued");
    let body = work_envelope(&message, 1);
    s.requests.fail_next(1);
    let (status, v) = post(&s, "Work", &body).await;
    assert_eq!(status, 500, "{v}");
    assert!(s.record(RID).files[0].sha256.is_none());
    let (status, v) = post(&s, "Work", &body).await;
    assert_eq!(status, 200, "{v}");
    assert!(s.record(RID).files[0].sha256.is_some());
    // Delivered again (at least once): nothing is hashed or recorded twice.
    let head = s.record(RID).history_head;
    let (status, v) = post(&s, "Work", &body).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["Logs"][0].as_str().unwrap().starts_with("ignored"), "{v}");
    assert_eq!(s.record(RID).history_head, head);
}

/// Work items the handler cannot read are answered 500 (the host retries them, then moves
/// them to the poison queue, where an operator sees them); items it reads but that no longer
/// apply are acknowledged with the reason. Never a panic, never a silent 200 for the unread.
#[tokio::test]
async fn unreadable_work_items_are_kept_and_stale_ones_acknowledged() {
    let s = Stack::start(json!({})).await;
    fixture_request(&s).await;
    for (text, needle) in [
        ("not json", "not JSON"),
        (r#"{"kind": "formatDisk"}"#, "not a work item"),
        (r#"{"kind": "settleFile"}"#, "not a work item"),
        (r#""{\"kind\": \"settleFile\"}""#, "not a work item"),
        ("[]", "not a work item"),
    ] {
        let (status, v) = post(&s, "Work", &work_envelope(text, 1)).await;
        assert_eq!(status, 500, "{text}: {v}");
        let log = v["Logs"][0].as_str().unwrap();
        assert!(
            log.contains("unreadable") && log.contains(needle),
            "{text}: {v}"
        );
    }
    // The fixture: a real envelope of an unreadable message.
    let (status, v) = post(&s, "Work", &fixture("envelope-queue-unreadable.json")).await;
    assert_eq!(status, 500, "{v}");
    for (item, needle) in [
        (
            json!({"kind": "settleFile", "workspaceId": WS1, "requestId": "nope", "stage": "in_progress", "name": FILE}),
            "no longer exists",
        ),
        (
            json!({"kind": "settleFile", "workspaceId": "ws-gone", "requestId": RID, "stage": "in_progress", "name": FILE}),
            "no longer exists",
        ),
        (
            json!({"kind": "settleFile", "workspaceId": WS1, "requestId": RID, "stage": "in_progress", "name": "../other.csv"}),
            "not a file",
        ),
    ] {
        let (status, v) = post(&s, "Work", &work_envelope(&item.to_string(), 1)).await;
        assert_eq!(status, 200, "{item}: {v}");
        let log = v["Logs"][0].as_str().unwrap();
        assert!(
            log.starts_with("ignored") && log.contains(needle),
            "{item}: {v}"
        );
    }
    assert_eq!(s.record(RID).status, Status::Submitted);
}

/// The real queue envelope (the message encoded twice, the metadata as strings) is read:
/// the file is hashed. Measured before this was fixed: 200 "ignored: not a work item", and
/// the host deleted the message.
#[tokio::test]
async fn the_hosts_queue_envelope_is_read() {
    let s = Stack::start(json!({"scanRequired": false})).await;
    fixture_request(&s).await;
    let (status, v) = post(&s, "Work", &fixture("envelope-queue.json")).await;
    assert_eq!(status, 200, "{v}");
    assert!(s.record(RID).files[0].sha256.is_some(), "{v}");
}

#[tokio::test]
async fn a_lost_race_is_retried_from_a_fresh_read() {
    let s = Stack::start(json!({})).await;
    fixture_request(&s).await;
    let ws = s.workspaces.list_sync(WS1);
    let mut first = true;
    let m = modify::<airlock::functions::FunctionError>(&s.deps, &ws, RID, |r, ctx| {
        if first {
            first = false;
            // Someone else writes between our read and our write.
            let mut other = r.clone();
            other.audit(
                ctx,
                &User::system(),
                "concurrent",
                "written meanwhile".into(),
            );
            s.requests.force_put(&other);
        }
        r.audit(ctx, &User::system(), "ours", "our change".into());
        Ok(Applied::Changed)
    })
    .await
    .unwrap();
    let actions = s.actions(RID).await;
    assert_eq!(
        actions[actions.len() - 2..],
        ["concurrent".to_string(), "ours".to_string()],
        "neither write is lost"
    );
    assert_eq!(m.request.history_head.length, actions.len() as u64);
}

trait SyncGet {
    fn list_sync(&self, id: &str) -> airlock::domain::Workspace;
}
impl SyncGet for airlock_testkit::memory::MemoryWorkspaceStore {
    fn list_sync(&self, id: &str) -> airlock::domain::Workspace {
        futures::executor::block_on(airlock::ports::WorkspaceStore::get(self, id))
            .unwrap()
            .unwrap()
    }
}

// ---- Faults that Reconcile heals ----

async fn draft_with_file(s: &Stack) -> (String, String) {
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("data.csv", b"a,b\n1,2\n".to_vec())
        .unwrap();
    (id, alice)
}

async fn reconcile_after(s: &Stack, minutes: i64) -> Value {
    s.clock.advance(chrono::Duration::minutes(minutes));
    let v = s.engine.reconcile().await.expect("reconcile answers 2xx");
    s.settle().await;
    v
}

#[tokio::test]
async fn publish_failure_after_the_write_is_healed() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.publisher.fail_next(1);
    // The submit is committed even though its events could not be published.
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Submitted);
    assert_eq!(r.outbox.len(), 2, "events wait in the outbox");
    assert!(
        !s.data_of(&id).contains_key("stalexip"),
        "nothing moved yet"
    );
    let v = reconcile_after(&s, 2).await;
    assert!(
        v["Logs"][0].as_str().unwrap().contains("republished 1"),
        "{v}"
    );
    let r = s.record(&id);
    assert_eq!(r.status, Status::InReview);
    assert!(r.outbox.is_empty());
}

#[tokio::test]
async fn a_lost_blob_created_is_healed() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, e: &EventGridEvent| {
            f == FunctionName::BlobCreated.as_str()
                && e.topic.as_deref().unwrap_or("").ends_with("stalexipwsone")
        })),
        true,
    );
    s.action(WS1, &id, "submit", &alice, None).await;
    assert_eq!(s.record(&id).status, Status::Submitted);
    assert!(s.record(&id).files[0].sha256.is_none());
    reconcile_after(&s, 1).await;
    assert_eq!(
        s.record(&id).status,
        Status::Submitted,
        "too early to re-drive"
    );
    reconcile_after(&s, 5).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::InReview);
    assert!(r.files[0].sha256.is_some());
}

/// Every verdict event is lost, but Defender also wrote each verdict into the sealed blob's
/// index tags: Reconcile takes it from there, before any scan deadline, clean and bad alike.
#[tokio::test]
async fn lost_verdict_events_are_read_from_defenders_tags() {
    let s = Stack::start(json!({"scanTimeoutMinutes": 30})).await;
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, _: &EventGridEvent| {
            f == FunctionName::ScanCompleted.as_str()
        })),
        false,
    );
    let (clean, alice) = draft_with_file(&s).await;
    let bad = s.create(WS1, &alice, "export").await;
    s.link(WS1, &bad, &alice)
        .await
        .upload(
            "payload.bin",
            airlock_testkit::builders::EICAR.as_bytes().to_vec(),
        )
        .unwrap();
    for id in [&clean, &bad] {
        s.action(WS1, id, "submit", &alice, None).await;
        let r = s.record(id);
        assert_eq!(
            r.status,
            Status::Submitted,
            "the verdict event was lost: {:?}",
            r.status_message
        );
        assert!(r.files[0].sha256.is_some() && r.files[0].scan.is_none());
    }
    reconcile_after(&s, 1).await;
    assert_eq!(s.record(&clean).status, Status::Submitted, "too early");
    reconcile_after(&s, 5).await;
    let r = s.record(&clean);
    assert_eq!(r.status, Status::InReview, "{:?}", r.status_message);
    assert_eq!(r.files[0].scan.as_ref().unwrap().etag, r.files[0].etag);
    let r = s.record(&bad);
    assert!(
        matches!(r.status, Status::BlockingInProgress | Status::BlockedByScan),
        "{:?}",
        r.status
    );
    assert!(
        r.status_message.as_deref().unwrap().contains("payload.bin"),
        "{:?}",
        r.status_message
    );
}

#[tokio::test]
async fn a_scan_that_never_answers_fails_with_the_files_named() {
    let s = Stack::start(json!({"scanTimeoutMinutes": 30})).await;
    // Defender never answers.
    s.feed
        .scan
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    let v = reconcile_after(&s, 10).await;
    assert_eq!(
        s.record(&id).status,
        Status::Submitted,
        "still within the scan timeout"
    );
    assert!(
        v.to_string().contains("0 verdict(s) overdue")
            && v.to_string().contains("work queue: 0 waiting"),
        "the run's gauges: {v}"
    );
    // Overdue: the scanner is asked to scan the in-progress account again, and the request
    // waits another scan timeout for that verdict.
    let v = reconcile_after(&s, 25).await;
    assert!(
        v.to_string().contains(
            "ws-one: 0 in review (oldest 0 h, 0 past the deadline), 1 stuck, 1 verdict(s) overdue"
        ),
        "the run's gauges: {v}"
    );
    assert_eq!(
        s.metrics
            .last("airlock.scans.verdicts_overdue", &[("workspace", "ws-one")]),
        Some(1.0)
    );
    assert_eq!(
        s.metrics.last("airlock.work_queue.messages", &[]),
        Some(0.0)
    );
    let r = s.record(&id);
    assert_eq!(r.status, Status::Submitted, "{:?}", r.status_message);
    assert_eq!(s.scans.asked(), vec!["stalexipwsone".to_string()]);
    reconcile_after(&s, 10).await;
    assert_eq!(s.record(&id).status, Status::Submitted, "still waiting");
    assert_eq!(s.scans.asked().len(), 1, "the rescan is asked for once");
    reconcile_after(&s, 25).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Failed);
    let message = r.status_message.unwrap();
    assert!(
        message.contains("no malware scan verdict")
            && message.contains("after asking for a rescan")
            && message.contains("data.csv"),
        "{message}"
    );
    // The failure is notified to the requester and the owners.
    let last = s
        .notifications()
        .into_iter()
        .rev()
        .find(|e| e.subject.ends_with(&id))
        .unwrap();
    assert_eq!(
        last.data["recipients"]["workspaceOwner"],
        json!(["owner@one.test"])
    );
}

#[tokio::test]
async fn without_on_demand_scanning_an_overdue_verdict_fails_at_once_saying_why() {
    let s = Stack::start(json!({"scanTimeoutMinutes": 30})).await;
    s.feed
        .scan
        .store(false, std::sync::atomic::Ordering::SeqCst);
    s.scans.set_unavailable(true);
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    reconcile_after(&s, 35).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Failed);
    let message = r.status_message.unwrap();
    assert!(
        message.contains("no malware scan verdict")
            && message.contains("data.csv")
            && message.contains("a rescan could not be asked for"),
        "{message}"
    );
}

#[tokio::test]
async fn pending_copies_complete_later() {
    let s = Stack::start(json!({})).await;
    s.blobs.set_copy_mode(CopyMode::Pending);
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Submitted);
    assert!(
        r.files[0].sha256.is_none(),
        "a pending copy is never hashed"
    );
    assert_eq!(s.blobs.complete_copies(), 1);
    s.settle().await;
    assert_eq!(s.record(&id).status, Status::InReview);
}

#[tokio::test]
async fn a_handler_killed_mid_copy_is_re_driven() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    // The approval's StatusChanged is lost, as if the handler died before copying.
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, e: &EventGridEvent| {
            f == FunctionName::StatusChanged.as_str()
                && e.data["newStatus"] == "approval_in_progress"
        })),
        true,
    );
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(s.record(&id).status, Status::ApprovalInProgress);
    reconcile_after(&s, 6).await;
    assert_eq!(s.record(&id).status, Status::Approved);
    assert_eq!(
        s.data_of(&id),
        BTreeMap::from([("stalexapp".to_string(), vec!["data.csv".to_string()])]),
        "exactly one copy, in the final stage"
    );
}

#[tokio::test]
async fn copies_that_never_finish_fail_after_the_deadline() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.blobs.set_copy_mode(CopyMode::Pending);
    s.action(WS1, &id, "submit", &alice, None).await;
    reconcile_after(&s, 60).await;
    assert_eq!(
        s.record(&id).status,
        Status::Submitted,
        "slow copies are waited for"
    );
    reconcile_after(&s, 24 * 60).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Failed);
    assert!(r.status_message.unwrap().contains("data.csv"));
}

/// A lost (dead-lettered) StatusChanged for a final status: its clean-up never ran, and
/// `Reconcile` runs it once the re-drive delay has passed.
#[tokio::test]
async fn a_lost_clean_up_after_a_final_status_is_re_driven() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, e: &EventGridEvent| {
            f == FunctionName::StatusChanged.as_str() && e.data["newStatus"] == "cancelled"
        })),
        true,
    );
    s.action(WS1, &id, "cancel", &alice, None).await;
    assert_eq!(s.record(&id).status, Status::Cancelled);
    assert_eq!(
        s.data_of(&id),
        BTreeMap::from([("stalexint".to_string(), vec!["data.csv".to_string()])]),
        "the clean-up was lost with its event"
    );
    reconcile_after(&s, 1).await;
    assert!(!s.data_of(&id).is_empty(), "too early to re-drive");
    let v = reconcile_after(&s, 5).await;
    assert!(s.data_of(&id).is_empty(), "{v}");
    assert!(s.actions(&id).await.iter().any(|a| a == "data removed"));
    // Once done, it is not done again.
    let again = reconcile_after(&s, 5).await;
    assert!(again.to_string().contains("cleaned up after 0"), "{again}");
}

/// Attack: the upload link is still valid after submit; overwrite a file in the moment
/// between submit and the seal. What gets sealed would not be what was submitted (nor what
/// the limits were checked on): the request fails instead, naming the file.
#[tokio::test]
async fn an_overwrite_between_submit_and_seal_fails_the_request() {
    let s = Stack::start(json!({"maxTotalBytes": 100})).await;
    let (id, alice) = draft_with_file(&s).await;
    let upload = s.link(WS1, &id, &alice).await;
    // Submit, but let nothing be delivered yet (the seal has not run).
    s.ok(
        "POST",
        &format!("/api/workspaces/{WS1}/requests/{id}/submit"),
        &alice,
        None,
        200,
    )
    .await;
    upload.upload("data.csv", vec![b'x'; 5_000]).unwrap();
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Failed, "{:?}", r.status_message);
    let message = r.status_message.unwrap();
    assert!(
        message.contains("data.csv") && message.contains("changed in the draft after submit"),
        "{message}"
    );
    assert!(
        s.data_of(&id).get("stalexip").is_none_or(|f| f.is_empty()),
        "nothing was sealed: {:?}",
        s.data_of(&id)
    );
}

/// Found by the chaos run: a submit retried while the first was still being answered (a
/// client timeout, a double click) passed the "is it a draft" check too and rewrote each
/// file's headers, changing the eTag under the version the first submit had recorded; the
/// seal then failed the request as "changed in the draft after submit" though nobody had
/// touched a byte. A racing submit must leave the frozen versions alone.
#[tokio::test]
async fn a_submit_racing_a_retry_of_itself_still_seals() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.link(WS1, &id, &alice)
        .await
        .upload("notes.txt", b"context\n".to_vec())
        .unwrap();
    let draft = s.record(&id);
    let ws = s.deps.workspaces.get(WS1).await.unwrap().unwrap();
    s.ok(
        "POST",
        &format!("/api/workspaces/{WS1}/requests/{id}/submit"),
        &alice,
        None,
        200,
    )
    .await;
    // The retry read the request while it was still a draft, and now takes the files.
    let retried = airlock::app::submit::draft_files(&s.deps, &ws, &draft)
        .await
        .unwrap();
    let submitted = s.record(&id);
    for file in &submitted.files {
        let again = retried.iter().find(|f| f.name == file.name).unwrap();
        assert_eq!(
            again.etag, file.submitted_etag,
            "{} left as submitted",
            file.name
        );
    }
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::InReview, "{:?}", r.status_message);

    // An uploader's own headers are still replaced (a write, so a new version) by a submit.
    let (id, _) = draft_with_file(&s).await;
    let draft = s.record(&id);
    let container =
        airlock::app::movement::container(&s.deps, &ws, &draft, airlock::domain::StageRole::Draft);
    let before = s.blobs.list_blobs(&container).await.unwrap();
    let taken = airlock::app::submit::draft_files(&s.deps, &ws, &draft)
        .await
        .unwrap();
    assert_ne!(before[0].etag, taken[0].etag.clone().unwrap(), "{before:?}");
}

/// Found by the chaos run: a delivery of "submitted, revision 1" read the request, then
/// waited (a duplicate, storage slow to answer) while the request was reviewed, sent back,
/// rewritten and resubmitted. Its copy of revision 1's draft version then found the draft
/// file changed, and it failed the request, now at revision 2, as "changed in the draft
/// after submit". What it found is about revision 1: revision 2 goes on to review.
#[tokio::test]
async fn a_late_movement_of_an_earlier_revision_does_not_fail_the_resubmission() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    let submit = format!("/api/workspaces/{WS1}/requests/{id}/submit");
    s.ok("POST", &submit, &alice, None, 200).await;
    // What that delivery read, before it got its turn.
    let revision_1 = s.record(&id);
    assert_eq!(
        (revision_1.status, revision_1.revision),
        (Status::Submitted, 1)
    );
    s.settle().await;
    assert_eq!(s.record(&id).status, Status::InReview);
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "changes_requested", "explanation": "round it"})),
    )
    .await;
    s.link(WS1, &id, &alice)
        .await
        .upload("data.csv", b"a,b\n0,0\n".to_vec())
        .unwrap();
    s.ok("POST", &submit, &alice, None, 200).await;
    let ws = s.deps.workspaces.get(WS1).await.unwrap().unwrap();
    let late = airlock::app::movement::drive(&s.deps, &ws, &revision_1)
        .await
        .unwrap();
    let r = s.record(&id);
    assert_eq!(
        (r.status, r.revision),
        (Status::Submitted, 2),
        "{:?}; the late movement: {late:?}",
        r.status_message
    );
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(
        (r.status, r.revision),
        (Status::InReview, 2),
        "{:?}",
        r.status_message
    );
    let sealed = &r.files[0];
    assert_eq!(
        sealed.sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"a,b\n0,0\n")).as_str()),
        "revision 2's bytes are sealed"
    );
}

/// The same late movement when the draft was resubmitted unchanged: the copy it would make
/// is of the same version, and the sealed copy of revision 2 is already there. It leaves
/// that copy alone (replacing it would change the sealed blob's version under its verdict).
#[tokio::test]
async fn a_late_movement_leaves_a_later_revisions_sealed_copy_alone() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.ok(
        "POST",
        &format!("/api/workspaces/{WS1}/requests/{id}/submit"),
        &alice,
        None,
        200,
    )
    .await;
    let revision_1 = s.record(&id);
    s.settle().await;
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "changes_requested", "explanation": "say more"})),
    )
    .await;
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!(
        (r.status, r.revision),
        (Status::InReview, 2),
        "{:?}",
        r.status_message
    );
    let sealed = airlock::ports::BlobRef {
        account: "stalexipwsone".into(),
        container: id.clone(),
        name: "data.csv".into(),
    };
    let version = || async {
        airlock::ports::BlobStore::properties(s.blobs.as_ref(), &sealed)
            .await
            .unwrap()
            .unwrap()
            .etag
    };
    assert_eq!(Some(version().await), r.files[0].etag, "the seal's version");
    let ws = s.deps.workspaces.get(WS1).await.unwrap().unwrap();
    airlock::app::movement::drive(&s.deps, &ws, &revision_1)
        .await
        .unwrap();
    s.settle().await;
    assert_eq!(Some(version().await), r.files[0].etag, "left alone");
    let r = s.record(&id);
    assert_eq!(
        (r.status, r.revision),
        (Status::InReview, 2),
        "{:?}",
        r.status_message
    );
}

/// A resubmit that overtakes the clean-up of revision 1's sealed copies (its StatusChanged
/// is late) must not leave a revision-1 file where reviewers look.
#[tokio::test]
async fn a_resubmit_never_shows_a_previous_revisions_file() {
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.link(WS1, &id, &alice)
        .await
        .upload("notes.txt", b"names of people\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    assert_eq!(s.record(&id).status, Status::InReview);
    // The clean-up of the sealed copies for revision 2's draft is lost.
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, e: &EventGridEvent| {
            f == FunctionName::StatusChanged.as_str() && e.data["newStatus"] == "draft"
        })),
        true,
    );
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "changes_requested", "explanation": "drop notes.txt"})),
    )
    .await;
    let upload = s.link(WS1, &id, &alice).await;
    upload.delete("notes.txt").unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!((r.status, r.revision), (Status::InReview, 2));
    assert_eq!(
        s.data_of(&id).get("stalexip"),
        Some(&vec!["data.csv".to_string()]),
        "only revision 2's files are sealed"
    );
}

/// Attack: someone who can send to the scan-result topic posts "No threats found", with the
/// right eTag, for a file Defender found malicious. Defender's own record on the blob (its
/// index tag) says otherwise: the forged verdict is not accepted, the genuine one blocks.
#[tokio::test]
async fn a_verdict_contradicting_defenders_blob_tag_is_refused() {
    let s = Stack::start(json!({})).await;
    s.feed
        .scan
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Submitted, "sealed, waiting for a verdict");
    let etag = r.files[0].etag.clone().unwrap();
    let sealed = airlock::ports::BlobRef {
        account: "stalexipwsone".into(),
        container: id.clone(),
        name: "data.csv".into(),
    };
    // Defender has scanned and written its verdict to the blob; its event is on the way.
    assert!(s.blobs.set_tags(
        &sealed,
        BTreeMap::from([(
            airlock::ports::DEFENDER_RESULT_TAG.to_string(),
            "Malicious".to_string()
        )])
    ));
    let url = airlock_testkit::builders::azure_blob_url(&sealed);
    let now = chrono::Utc::now();
    let forged = airlock_testkit::builders::scan_result_event(
        &sealed,
        &url,
        &etag,
        &("No threats found".into(), vec![]),
        None,
        now,
    );
    s.engine.publish("scan-result", forged);
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::Submitted, "{:?}", r.status_message);
    assert!(r.files[0].scan.is_none());
    let genuine = airlock_testkit::builders::scan_result_event(
        &sealed,
        &url,
        &etag,
        &("Malicious".into(), vec!["EICAR".into()]),
        None,
        now,
    );
    s.engine.publish("scan-result", genuine);
    s.settle().await;
    assert_eq!(s.record(&id).status, Status::BlockedByScan);
}

/// A resubmission right after "changes requested" raced the clean-up of the previous
/// revision's sealed copies: the clean-up (a late delivery, still looking at the draft)
/// deleted the new revision's sealed file and the request failed. It deletes only what it
/// meant to: copies of an earlier revision, as the version it looked at.
#[tokio::test]
async fn the_previous_revisions_clean_up_never_deletes_the_next_revisions_seal() {
    let s = Stack::start(json!({"scanRequired": false})).await;
    fixture_request(&s).await;
    let ws = s.workspaces.list_sync(WS1);
    let sealed = ContainerRef {
        account: "stalexipwsone".into(),
        container: RID.into(),
    };
    let draft = ContainerRef {
        account: "stalexintwsone".into(),
        container: RID.into(),
    };
    // Revision 1's copy of another file, and revision 2's seal of FILE (made after the
    // resubmission, before the clean-up got to it).
    s.blobs.put(&draft.blob("old.csv"), b"old\n".to_vec());
    let revision = |r: &str| BTreeMap::from([("airlockrevision".to_string(), r.to_string())]);
    s.blobs
        .start_copy(
            &draft.blob("old.csv"),
            &sealed.blob("old.csv"),
            &revision("1"),
            Default::default(),
        )
        .await
        .unwrap();
    s.blobs
        .start_copy(
            &draft.blob(FILE),
            &sealed.blob(FILE),
            &revision("2"),
            Default::default(),
        )
        .await
        .unwrap();
    // The clean-up, run with the record as it was when the request went back to draft.
    let mut stale = s.record(RID);
    stale.status = Status::Draft;
    stale.revision = 2;
    airlock::app::movement::drive(&s.deps, &ws, &stale)
        .await
        .unwrap();
    let left: Vec<String> = s
        .blobs
        .list_blobs(&sealed)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(
        left,
        vec![FILE.to_string()],
        "revision 2's seal stays, revision 1's goes"
    );
}

/// A request left in review past the workspace's deadline: `Reconcile` reminds the airlock
/// managers once, and at twice the deadline tells the owners too; a decision stops it.
#[tokio::test]
async fn a_review_past_its_deadline_reminds_the_managers_then_tells_the_owners() {
    let s = Stack::start(json!({"reviewDeadlineHours": 24})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    let overdue = |s: &Stack| -> Vec<Value> {
        s.notifications()
            .into_iter()
            .filter(|e| e.data["event"] == "reviewOverdue")
            .map(|e| e.data)
            .collect()
    };
    // The metrics service away: the run says so, and does its work all the same.
    s.metrics.set_unavailable(true);
    let v = reconcile_after(&s, 23 * 60).await;
    assert!(
        v.to_string().contains("metrics: temporarily unavailable"),
        "{v}"
    );
    assert!(overdue(&s).is_empty(), "not yet due");
    s.metrics.set_unavailable(false);
    let v = reconcile_after(&s, 61).await;
    assert!(v.to_string().contains("reminded reviewers of 1"), "{v}");
    assert!(
        v.to_string().contains(
            "ws-one: 1 in review (oldest 24 h, 1 past the deadline), 0 stuck, 0 verdict(s) overdue"
        ),
        "the run's gauges: {v}"
    );
    // The same gauges as metrics, by workspace, all taken at the run's moment.
    let ws_one = [("workspace", "ws-one")];
    assert_eq!(
        s.metrics.last("airlock.requests.in_review", &ws_one),
        Some(1.0)
    );
    assert_eq!(
        s.metrics.last("airlock.reviews.overdue", &ws_one),
        Some(1.0)
    );
    assert_eq!(
        s.metrics
            .last("airlock.reviews.oldest_waiting_hours", &ws_one),
        Some(24.0)
    );
    assert_eq!(s.metrics.last("airlock.requests.stuck", &ws_one), Some(0.0));
    assert_eq!(
        s.metrics
            .last("airlock.requests.in_review", &[("workspace", "ws-two")]),
        Some(0.0),
        "every workspace, also when nothing waits"
    );
    assert_eq!(s.metrics.last("airlock.reconcile.errors", &[]), Some(0.0));
    assert_eq!(s.metrics.last("airlock.dead_letters", &[]), Some(0.0));
    // An event Event Grid gave up on, waiting in the host account's dead-letter container.
    s.blobs.put(
        &airlock::ports::BlobRef {
            account: format!("stalfunc{TRE}"),
            container: "deadletters".into(),
            name: "status-changed/sub/2026/01/01/00/event.json".into(),
        },
        b"[]".to_vec(),
    );
    let v = reconcile_after(&s, 1).await;
    assert!(v.to_string().contains("dead letters: 1"), "{v}");
    assert_eq!(s.metrics.last("airlock.dead_letters", &[]), Some(1.0));
    let (at, last) = s.metrics.published().pop().unwrap();
    assert_eq!(at, airlock::ports::Clock::now(s.clock.as_ref()));
    assert!(last.iter().all(|m| m.value.is_finite()));
    let sent = overdue(&s);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["escalated"], false);
    assert_eq!(
        sent[0]["recipients"]["airlockManager"],
        json!(["managers@one.test"])
    );
    assert_eq!(sent[0]["recipients"]["workspaceOwner"], json!([]));
    reconcile_after(&s, 60).await;
    assert_eq!(overdue(&s).len(), 1, "a reminder is sent once");
    reconcile_after(&s, 24 * 60).await;
    let sent = overdue(&s);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["escalated"], true);
    assert_eq!(
        sent[1]["recipients"]["workspaceOwner"],
        json!(["owner@one.test"])
    );
    let actions = s.actions(&id).await;
    assert!(
        actions.contains(&"review reminder sent".to_string())
            && actions.contains(&"review escalated".to_string()),
        "{actions:?}"
    );
    // Decided: nothing more, however long.
    let mona = s.token("mona", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "fine"})),
    )
    .await;
    reconcile_after(&s, 100 * 60).await;
    assert_eq!(overdue(&s).len(), 2);
}

/// Found by the chaos run: a seal that read the request at revision 1 and its sealed copy,
/// but recorded only after the request had been sent back and resubmitted as revision 2
/// (revision 1's copy still in the in-progress stage: its clean-up lost, revision 2's copy
/// not made yet). The hash of revision 1's bytes must not become revision 2's seal, or the
/// approval later finds the approved copy differs from "the sealed copy" and fails.
#[tokio::test]
async fn a_seal_of_an_earlier_revision_is_not_recorded_on_a_resubmission() {
    use airlock::app::settle::{Hashing, settle_file};
    use airlock::domain::stages::StageRole;
    let s = Stack::start(json!({})).await;
    let (id, alice) = draft_with_file(&s).await;
    s.action(WS1, &id, "submit", &alice, None).await;
    assert_eq!(s.record(&id).status, Status::InReview);
    // Revision 1's clean-up is lost, and revision 2's copy has not happened yet.
    s.engine.drop_deliveries(
        Some(Box::new(|f: &str, e: &EventGridEvent| {
            f == FunctionName::StatusChanged.as_str()
                && (e.data["newStatus"] == "draft" || e.data["newStatus"] == "submitted")
        })),
        false,
    );
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "changes_requested", "explanation": "round the counts"})),
    )
    .await;
    s.link(WS1, &id, &alice)
        .await
        .upload("data.csv", b"a,b\n1,5\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    let now = s.record(&id);
    assert_eq!((now.status, now.revision), (Status::Submitted, 2));
    assert!(now.files[0].sha256.is_none());
    // The seal that loaded the request while it was still revision 1, submitted and
    // unsealed (the record as it was then differs from today's only in its revision).
    let mut then = now.clone();
    then.revision = 1;
    let ws = s.deps.workspaces.get(WS1).await.unwrap().unwrap();
    let outcome = settle_file(
        &s.deps,
        &ws,
        &then,
        StageRole::InProgress,
        "data.csv",
        Hashing::Now,
    )
    .await
    .unwrap();
    assert!(
        outcome.message().contains("revision"),
        "{}",
        outcome.message()
    );
    assert!(
        s.record(&id).files[0].sha256.is_none(),
        "revision 1's bytes are not revision 2's seal"
    );
    // Revision 2's own copy and seal, once its event is re-driven, are recorded.
    s.engine.drop_deliveries(None, false);
    reconcile_after(&s, 10).await;
    let r = s.record(&id);
    assert_eq!(r.status, Status::InReview, "{:?}", r.status_message);
    assert_eq!(
        r.files[0].sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"a,b\n1,5\n")).as_str())
    );
}
