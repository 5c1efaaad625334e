//! Full request lifecycles through the real server and the custom-handler protocol, on the
//! in-memory adapters. Each scenario runs twice: with orderly delivery, and with every event
//! delivered twice in shuffled order; both must reach the same final record and data.

use crate::common::*;
use airlock::domain::AirlockRequest;
use airlock_testkit::builders::EICAR;
use airlock_testkit::delivery::DeliveryOptions;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq)]
struct Summary {
    status: String,
    status_message: Option<String>,
    revision: u32,
    files: Vec<(String, u64, Option<String>)>,
    decisions: Vec<(String, String, u32)>,
    data: BTreeMap<String, Vec<String>>,
    outbox_empty: bool,
}

fn summarise(s: &Stack, id: &str) -> Summary {
    let r = s.record(id);
    Summary {
        status: r.status.to_string(),
        status_message: r.status_message.clone(),
        revision: r.revision,
        files: r
            .files
            .iter()
            .map(|f| (f.name.clone(), f.size, f.sha256.clone()))
            .collect(),
        decisions: r
            .reviews
            .iter()
            .map(|v| {
                (
                    v.reviewer.id.clone(),
                    format!("{:?}", v.decision),
                    v.revision,
                )
            })
            .collect(),
        data: s.data_of(id),
        outbox_empty: r.outbox.is_empty(),
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct People {
    alice: String,
    olivia: String,
    mike: String,
    mary: String,
}

fn people(s: &Stack) -> People {
    People {
        alice: s.token("alice", &[RESEARCHER], WS1),
        olivia: s.token("olivia", &[OWNER], WS1),
        mike: s.token("mike", &[MANAGER], WS1),
        mary: s.token("mary", &[MANAGER], WS1),
    }
}

const CSV: &[u8] = b"id,value\n1,0.25\n2,0.5\n";
const NOTES: &[u8] = b"aggregate statistics only\n";

/// Create, upload two files (one nested), submit; the request should reach review.
async fn submitted(s: &Stack, p: &People, kind: &str) -> String {
    let id = s.create(WS1, &p.alice, kind).await;
    let upload = s.link(WS1, &id, &p.alice).await;
    upload.upload("results/summary.csv", CSV).unwrap();
    upload.upload("notes.txt", NOTES).unwrap();
    s.action(WS1, &id, "submit", &p.alice, None).await;
    id
}

async fn approved(s: &Stack, kind: &str) -> String {
    let p = people(s);
    let id = submitted(s, &p, kind).await;
    let r = s.get(WS1, &id, &p.mike).await;
    assert_eq!(r["status"], "in_review", "{r}");
    // The reviewer reads what will cross.
    let review = s.link(WS1, &id, &p.mike).await;
    assert_eq!(
        review.download("results/summary.csv").unwrap().as_ref(),
        CSV
    );
    s.action(
        WS1,
        &id,
        "review",
        &p.mike,
        Some(json!({"decision": "approved", "explanation": "aggregate only"})),
    )
    .await;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(r["status"], "approved", "{r}");
    // The review names the policy it was made under, as the registry versions it.
    let ws = airlock::ports::WorkspaceStore::get(&*s.deps.workspaces, WS1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["reviews"][0]["policyVersion"], ws.policy.version(), "{r}");
    // The researcher downloads exactly what was sealed.
    let download = s.link(WS1, &id, &p.alice).await;
    assert_eq!(
        download.download("results/summary.csv").unwrap().as_ref(),
        CSV
    );
    assert_eq!(download.download("notes.txt").unwrap().as_ref(), NOTES);
    id
}

async fn import_approved(s: &Stack) -> String {
    let id = approved(s, "import").await;
    let r = s.record(&id);
    let f = r
        .files
        .iter()
        .find(|f| f.name == "results/summary.csv")
        .unwrap();
    assert_eq!(f.sha256.as_deref(), Some(sha(CSV).as_str()));
    assert_eq!(s.data_of(&id).keys().collect::<Vec<_>>(), vec!["stalimapp"]);
    id
}

async fn export_approved(s: &Stack) -> String {
    let id = approved(s, "export").await;
    assert_eq!(s.data_of(&id).keys().collect::<Vec<_>>(), vec!["stalexapp"]);
    id
}

async fn rejected(s: &Stack) -> String {
    let p = people(s);
    let id = submitted(s, &p, "export").await;
    s.action(
        WS1,
        &id,
        "review",
        &p.mike,
        Some(json!({"decision": "rejected", "explanation": "row-level data"})),
    )
    .await;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(r["status"], "rejected");
    assert_eq!(s.data_of(&id).keys().collect::<Vec<_>>(), vec!["stalexrej"]);
    let (status, body) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            Some(&p.alice),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    id
}

async fn cancelled_from_draft(s: &Stack) -> String {
    let p = people(s);
    let id = s.create(WS1, &p.alice, "import").await;
    s.link(WS1, &id, &p.alice)
        .await
        .upload("a.csv", CSV)
        .unwrap();
    s.action(WS1, &id, "cancel", &p.alice, None).await;
    assert_eq!(s.get(WS1, &id, &p.alice).await["status"], "cancelled");
    assert!(
        s.data_of(&id).is_empty(),
        "no data left: {:?}",
        s.data_of(&id)
    );
    id
}

async fn cancelled_from_review(s: &Stack) -> String {
    let p = people(s);
    let id = submitted(s, &p, "export").await;
    // The owner may cancel anyone's request.
    s.action(WS1, &id, "cancel", &p.olivia, None).await;
    assert_eq!(s.get(WS1, &id, &p.alice).await["status"], "cancelled");
    assert!(
        s.data_of(&id).is_empty(),
        "no data left: {:?}",
        s.data_of(&id)
    );
    id
}

async fn blocked_by_scan(s: &Stack) -> String {
    let p = people(s);
    let id = s.create(WS1, &p.alice, "import").await;
    let upload = s.link(WS1, &id, &p.alice).await;
    upload.upload("clean.csv", CSV).unwrap();
    upload
        .upload("payload/eicar.com", EICAR.as_bytes().to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &p.alice, None).await;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    let message = r["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("payload/eicar.com") && message.contains("Malicious"),
        "{message}"
    );
    assert!(!message.contains("clean.csv"), "{message}");
    assert_eq!(
        s.data_of(&id).keys().collect::<Vec<_>>(),
        vec!["stalimblocked"]
    );
    id
}

async fn changes_then_approved(s: &Stack) -> String {
    let p = people(s);
    let id = submitted(s, &p, "export").await;
    s.action(
        WS1,
        &id,
        "review",
        &p.mike,
        Some(json!({"decision": "changes_requested", "explanation": "drop notes.txt"})),
    )
    .await;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(
        (r["status"].as_str(), r["revision"].as_u64()),
        (Some("draft"), Some(2))
    );
    // The draft files are still there to edit.
    let edit = s.link(WS1, &id, &p.alice).await;
    let mut listed = edit.list().unwrap();
    listed.sort();
    assert_eq!(listed, vec!["notes.txt", "results/summary.csv"]);
    edit.delete("notes.txt").unwrap();
    edit.upload("results/summary.csv", b"id,value\n1,0.3\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &p.alice, None).await;
    assert_eq!(s.get(WS1, &id, &p.alice).await["status"], "in_review");
    // The same manager may review the new revision, saying which one it is.
    s.action(
        WS1,
        &id,
        "review",
        &p.mike,
        Some(json!({"approval": true, "decisionExplanation": "fine now", "revision": 2})),
    )
    .await;
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "approved");
    assert_eq!(r.files.len(), 1);
    assert_eq!(
        r.files[0].sha256.as_deref(),
        Some(sha(b"id,value\n1,0.3\n").as_str())
    );
    let download = s.link(WS1, &id, &p.alice).await;
    assert_eq!(
        download.download("results/summary.csv").unwrap().as_ref(),
        b"id,value\n1,0.3\n"
    );
    assert!(download.download("notes.txt").is_err());
    id
}

async fn quorum_of_two(s: &Stack) -> String {
    let p = people(s);
    // Alice is a researcher and an airlock manager: she still cannot review her own request.
    let alice_both = s.token("alice", &[RESEARCHER, MANAGER], WS1);
    let id = submitted(s, &p, "export").await;
    let path = format!("/api/workspaces/{WS1}/requests/{id}/review");
    let approve = json!({"decision": "approved", "explanation": ""});
    let (status, body) = s
        .call("POST", &path, Some(&alice_both), Some(approve.clone()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("created"),
        "{body}"
    );
    let after_one = s
        .action(WS1, &id, "review", &p.mike, Some(approve.clone()))
        .await;
    assert_eq!(after_one["airlockRequest"]["status"], "in_review");
    assert_eq!(
        after_one["allowedUserActions"],
        json!(["link", "comment"]),
        "mike has reviewed: {after_one}"
    );
    let (status, body) = s
        .call("POST", &path, Some(&p.mike), Some(approve.clone()))
        .await;
    assert_eq!(status, 409, "a reviewer counts once: {body}");
    s.action(WS1, &id, "review", &p.mary, Some(approve)).await;
    assert_eq!(s.get(WS1, &id, &p.alice).await["status"], "approved");
    id
}

async fn tampered(s: &Stack) -> String {
    let p = people(s);
    let id = submitted(s, &p, "export").await;
    let blobs = s.blobs.clone();
    *s.feed.on_blob.lock().unwrap() = Some(Box::new(move |notice| {
        if notice.blob.account.starts_with("stalexapp")
            && notice.blob.name == "notes.txt"
            && !notice.deleted
        {
            blobs.tamper(&notice.blob, b"exfiltrated row-level data\n".to_vec());
        }
    }));
    s.action(
        WS1,
        &id,
        "review",
        &p.mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    *s.feed.on_blob.lock().unwrap() = None;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(r["status"], "failed", "{r}");
    let message = r["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("notes.txt") && message.contains(&sha(NOTES)),
        "{message}"
    );
    // Nothing unverified is left on the far side.
    assert!(
        !s.data_of(&id).contains_key("stalexapp"),
        "{:?}",
        s.data_of(&id)
    );
    id
}

async fn revoked(s: &Stack) -> String {
    let id = export_approved(s).await;
    let p = people(s);
    let path = format!("/api/workspaces/{WS1}/requests/{id}/revoke");
    let (status, _) = s
        .call("POST", &path, Some(&p.mike), Some(json!({"reason": ""})))
        .await;
    assert_eq!(status, 400, "a reason is required");
    s.action(
        WS1,
        &id,
        "revoke",
        &p.mike,
        Some(json!({"reason": "contains a name"})),
    )
    .await;
    let r = s.get(WS1, &id, &p.alice).await;
    assert_eq!(r["status"], "revoked");
    assert!(
        s.data_of(&id).is_empty(),
        "approved data deleted: {:?}",
        s.data_of(&id)
    );
    let (status, body) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            Some(&p.alice),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    id
}

fn chaos(seed: u64) -> DeliveryOptions {
    DeliveryOptions {
        duplicate: true,
        reorder: true,
        seed,
        event_as_string: seed % 2 == 0,
        retry_base: std::time::Duration::ZERO,
        ..Default::default()
    }
}

macro_rules! lifecycle {
    ($name:ident, $scenario:ident, $policy:expr) => {
        #[tokio::test]
        async fn $name() {
            let orderly = Stack::start($policy).await;
            let a = $scenario(&orderly).await;
            let expected = summarise(&orderly, &a);
            assert!(expected.outbox_empty);
            assert!(
                orderly.engine.dead_letters().is_empty(),
                "{:?}",
                orderly.engine.dead_letters()
            );
            for seed in [7, 42, 1234] {
                let chaotic = Stack::start($policy).await;
                chaotic.engine.set_options(chaos(seed));
                let b = $scenario(&chaotic).await;
                assert_eq!(summarise(&chaotic, &b), expected, "seed {seed}");
                assert!(
                    chaotic.engine.dead_letters().is_empty(),
                    "{:?}",
                    chaotic.engine.dead_letters()
                );
            }
        }
    };
}

lifecycle!(import_is_approved, import_approved, json!({}));
lifecycle!(export_is_approved, export_approved, json!({}));
lifecycle!(export_is_rejected, rejected, json!({}));
lifecycle!(draft_is_cancelled, cancelled_from_draft, json!({}));
lifecycle!(review_is_cancelled, cancelled_from_review, json!({}));
lifecycle!(malware_is_blocked, blocked_by_scan, json!({}));
lifecycle!(
    changes_requested_then_approved,
    changes_then_approved,
    json!({})
);
lifecycle!(
    quorum_of_two_managers,
    quorum_of_two,
    json!({"approvalsRequired": 2})
);
lifecycle!(tampered_approved_copy_fails, tampered, json!({}));
lifecycle!(approval_is_revoked, revoked, json!({}));
lifecycle!(
    scanning_off_goes_straight_to_review,
    export_approved,
    json!({"scanRequired": false})
);

/// Notifications are typed: each one reads back as the declared shape, and a file in one
/// carries none of the workflow's bookkeeping (which version was submitted,
/// where the movement last saw it).
#[tokio::test]
async fn notifications_have_their_declared_shape_and_no_bookkeeping() {
    let s = Stack::start(json!({})).await;
    let id = export_approved(&s).await;
    let mut files_seen = 0;
    for e in s
        .notifications()
        .into_iter()
        .filter(|e| e.subject.ends_with(&id))
    {
        let typed: airlock::domain::request::NotificationData =
            serde_json::from_value(e.data.clone()).expect("a notification reads as declared");
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            e.data,
            "nothing undeclared"
        );
        for file in e.data["request"]["files"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            files_seen += 1;
            for internal in ["submittedEtag", "arrivedIn"] {
                assert!(file.get(internal).is_none(), "{internal} in {file}");
            }
        }
    }
    assert!(files_seen > 0);
}

#[tokio::test]
async fn every_status_change_is_notified_with_context() {
    let s = Stack::start(json!({})).await;
    let id = export_approved(&s).await;
    let notes: Vec<Value> = s
        .notifications()
        .into_iter()
        .filter(|e| e.subject.ends_with(&id))
        .map(|e| e.data)
        .collect();
    let statuses: Vec<&str> = notes
        .iter()
        .map(|n| n["request"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "draft",
            "submitted",
            "in_review",
            "approval_in_progress",
            "approved"
        ]
    );
    let review_needed = &notes[2];
    assert_eq!(
        review_needed["recipients"]["airlockManager"],
        json!(["managers@one.test"])
    );
    assert_eq!(
        review_needed["recipients"]["researcher"],
        json!(["alice@airlock.local"])
    );
    assert_eq!(review_needed["workspace"]["id"], WS1);
    let last = &notes[4];
    assert_eq!(last["request"]["files"].as_array().unwrap().len(), 2);
    assert_eq!(last["request"]["reviews"][0]["reviewer"]["id"], "mike");
}

#[tokio::test]
async fn history_records_every_step() {
    let s = Stack::start(json!({})).await;
    let id = export_approved(&s).await;
    let actions = s.actions(&id).await;
    for expected in [
        "created",
        "link issued",
        "submit",
        "sealed",
        "scanned",
        "ready for review",
        "review: approved",
        "verified",
        "data moved",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let links = actions.iter().filter(|a| *a == "link issued").count();
    assert_eq!(links, 3, "upload, review and download links: {actions:?}");
    let trail = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            &s.token("bob", &[OWNER], WS1),
            None,
            200,
        )
        .await;
    assert_eq!(trail["verified"], true, "{trail}");
    assert_eq!(trail["history"].as_array().unwrap().len(), actions.len());
    let (status, _) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            Some(&s.token("eve", &[RESEARCHER], WS1)),
            None,
        )
        .await;
    assert_eq!(
        status, 200,
        "approved requests are readable by the workspace's researchers"
    );
}

#[tokio::test]
async fn duplicate_deliveries_do_not_repeat_the_trail_and_tampering_shows() {
    let s = Stack::start(json!({})).await;
    s.engine.set_options(chaos(99));
    let id = export_approved(&s).await;
    let history = s.history(&id).await;
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    for once in [
        "copies started",
        "data removed",
        "data moved",
        "ready for review",
    ] {
        let n = actions.iter().filter(|a| **a == once).count();
        assert!(n <= 2, "{once} written {n} times: {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "data removed").count(), 1);
    assert_eq!(
        s.history.stored(&id),
        history.len(),
        "every entry is in the history store"
    );
    // Someone with database access rewrites who approved.
    let i = actions
        .iter()
        .position(|a| *a == "review: approved")
        .unwrap();
    s.history
        .tamper(&id, i as u64, |h| h.by = "someone-else".into());
    let owner = s.token("olivia", &[OWNER], WS1);
    let trail = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            &owner,
            None,
            200,
        )
        .await;
    assert_eq!(trail["verified"], false);
    assert_eq!(trail["brokenAt"], i);
}

/// A write that publishes events drops the entries the history store now holds in the same
/// write that clears the outbox, so the next change has nothing to look up: right after a
/// change that publishes (a request failed), the record carries no entry and no event, and
/// the stored trail is whole and verified.
#[tokio::test]
async fn a_published_step_leaves_no_tail_in_the_record() {
    let s = Stack::start(json!({})).await;
    let p = people(&s);
    let id = submitted(&s, &p, "export").await;
    let ws = s.deps.workspaces.get(WS1).await.unwrap().unwrap();
    let m = airlock::app::record::modify::<airlock::app::outcome::FunctionError>(
        &s.deps,
        &ws,
        &id,
        |r, ctx| Ok(r.fail("failed by the test".into(), ctx)),
    )
    .await
    .unwrap();
    assert!(m.publish_error.is_none());
    // What the write stored (the clean-up the failure drives may write after it).
    let r = m.request;
    assert_eq!(r.status, airlock::domain::Status::Failed);
    assert!(r.outbox.is_empty(), "{:?}", r.outbox);
    assert!(r.history_tail.is_empty(), "{:?}", r.history_tail);
    let stored = s.history(&id).await;
    let failed_at = stored
        .iter()
        .position(|e| e.to == Some(airlock::domain::Status::Failed))
        .expect("the failure is in the stored trail");
    assert_eq!(failed_at as u64 + 1, r.history_head.length);
    let trail = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            &p.alice,
            None,
            200,
        )
        .await;
    assert_eq!(trail["verified"], true, "{trail}");
}

/// The trail lives in its own store: a request's record does not grow with it, and an entry
/// removed from the end of the stored trail is noticed (the record knows the chain's head).
#[tokio::test]
async fn the_trail_does_not_grow_the_record_and_truncation_shows() {
    let s = Stack::start(json!({})).await;
    let id = export_approved(&s).await;
    let size = |r: &AirlockRequest| serde_json::to_vec(r).unwrap().len();
    let before = s.record(&id);
    let entries = s.history(&id).await.len();
    assert!(
        before.history_tail.len() <= 2,
        "the record carries only its latest entries: {:?}",
        before.history_tail
    );
    // Many audited events later (different owners each asking for a download link), the
    // record has grown by the people on it, not by the entries.
    for n in 0..40 {
        let owner = s.token(&format!("o{n}"), &[OWNER], WS1);
        s.ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            &owner,
            None,
            200,
        )
        .await;
    }
    let after = s.record(&id);
    assert_eq!(s.history(&id).await.len(), entries + 40);
    assert!(after.history_tail.len() <= 2);
    assert!(
        size(&after) < size(&before) + 40 * 200,
        "{} -> {} bytes",
        size(&before),
        size(&after)
    );
    s.history.truncate_last(&id);
    s.history.truncate_last(&id);
    s.history.truncate_last(&id);
    let trail = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            &s.token("olivia", &[OWNER], WS1),
            None,
            200,
        )
        .await;
    assert_eq!(trail["verified"], false, "{trail}");
}

/// With the history store down, changes still succeed: their entries stay in the record,
/// the trail still reads whole and verifies, and the next change stores them.
#[tokio::test]
async fn a_history_store_outage_loses_no_entry() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let created = s
        .ok(
            "POST",
            &format!("/api/workspaces/{WS1}/requests"),
            &alice,
            Some(json!({"type": "export", "title": "t", "businessJustification": "j"})),
            201,
        )
        .await;
    let id = created["airlockRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.history.fail_next(100);
    for _ in 0..3 {
        s.ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            &s.token(
                &format!("owner{}", s.history(&id).await.len()),
                &[OWNER],
                WS1,
            ),
            None,
            200,
        )
        .await;
    }
    let r = s.record(&id);
    assert!(r.history_tail.len() >= 3, "{:?}", r.history_tail);
    let trail = s.trail(WS1, &id, &alice).await;
    assert_eq!(trail["verified"], true, "{trail}");
    assert_eq!(
        trail["history"].as_array().unwrap().len() as u64,
        r.history_head.length
    );
    s.history.fail_next(0);
    s.ok(
        "POST",
        &format!("/api/workspaces/{WS1}/requests/{id}/cancel"),
        &alice,
        None,
        200,
    )
    .await;
    let r = s.record(&id);
    assert_eq!(s.history.stored(&id) as u64, r.history_head.length);
    assert!(r.history_tail.len() <= 1);
}
