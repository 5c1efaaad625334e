//! Gates on the whole in-process airlock: what the workspace's policy lists runs over each
//! sealed copy as it is hashed; a `block` finding blocks the request before review naming the
//! file, the gate and the cell, a `warn` finding goes to review on the file, `off` does
//! nothing.

use crate::common::*;
use serde_json::{Value, json};

const SMALL_COUNT: &[u8] = b"group,n\nA,120\nB,3\n";

/// Submits one file and lets every delivery happen; returns the request record as the API
/// shows it.
async fn submit(s: &Stack, name: &str, data: &[u8]) -> Value {
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload(name, data.to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    s.get(WS1, &id, &alice).await
}

fn disclosure(mode: &str) -> Value {
    json!({"gates": [{"name": "sdc", "kind": "disclosure", "mode": mode}]})
}

#[tokio::test]
async fn a_small_count_blocks_when_the_gate_blocks_naming_the_cell() {
    let s = Stack::start(disclosure("block")).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    let message = r["statusMessage"].as_str().unwrap();
    assert_eq!(
        message,
        "blocked by policy: table.csv: count 3 is below the threshold of 10 (sdc, row 3, column \"n\")"
    );
    assert_eq!(r["files"][0]["findings"][0]["rule"], "small_count");
    let id = r["id"].as_str().unwrap();
    assert!(s.actions(id).await.contains(&"gates: blocked".to_string()));
    // The data went where blocked data goes: the quarantine, not review.
    assert!(
        s.data_of(id).keys().any(|stage| stage.contains("blocked")),
        "{:?}",
        s.data_of(id)
    );
}

#[tokio::test]
async fn a_small_count_goes_to_review_marked_when_the_gate_warns() {
    let s = Stack::start(disclosure("warn")).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "in_review", "{r}");
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(
        (
            finding["gate"].as_str(),
            finding["mode"].as_str(),
            finding["location"].as_str()
        ),
        (Some("sdc"), Some("warn"), Some("row 3, column \"n\""))
    );
    let id = r["id"].as_str().unwrap();
    // The managers' notification of the review says which gate warned, and where.
    let note = s
        .notifications()
        .into_iter()
        .map(|e| e.data)
        .find(|n| n["request"]["id"] == id && n["request"]["status"] == "in_review")
        .expect("a notification of the review");
    assert_eq!(
        note["request"]["gateWarnings"],
        json!([{"file": "table.csv", "gate": "sdc", "rule": "small_count",
            "message": "count 3 is below the threshold of 10", "location": "row 3, column \"n\"",
            "justified": false}])
    );
    assert!(s.history(id).await.iter().any(
        |e| e.action == "gates" && e.message.as_deref().is_some_and(|m| m.contains("count 3"))
    ));
}

#[tokio::test]
async fn a_gate_that_is_off_or_finds_nothing_changes_nothing() {
    for policy in [disclosure("off"), disclosure("block")] {
        let s = Stack::start(policy.clone()).await;
        let data: &[u8] = if policy["gates"][0]["mode"] == "off" {
            SMALL_COUNT
        } else {
            b"group,n\nA,120\nB,30\n"
        };
        let r = submit(&s, "table.csv", data).await;
        assert_eq!(r["status"], "in_review", "{policy}: {r}");
        assert!(r["files"][0].get("findings").is_none(), "{r}");
    }
}

#[tokio::test]
async fn a_disguised_executable_is_blocked() {
    let s = Stack::start(json!({"gates": [{"name": "file types", "kind": "filePolicy", "allowedExtensions": ["csv", "txt"]}]})).await;
    let r = submit(&s, "report.csv", b"MZ\x90\x00\x03\x00\x00\x00").await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: report.csv: the content is a Windows executable (PE) (file types)"
    );
    // And an extension outside the allowlist.
    let r = submit(&s, "model.pkl", b"\x80\x04\x95").await;
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .contains("files ending .pkl are not allowed here"),
        "{r}"
    );
}

#[tokio::test]
async fn warnings_the_workspace_wants_justified_hold_approval_until_they_are() {
    let s = Stack::start(json!({"gates": [{"name": "sdc", "kind": "disclosure", "mode": "warn", "requireJustification": true}]})).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "in_review");
    assert_eq!(r["files"][0]["findings"][0]["needsJustification"], true);
    let id = r["id"].as_str().unwrap().to_string();
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let review = |token: String| {
        let s = &s;
        let id = id.clone();
        async move {
            s.call(
                "POST",
                &format!("/api/workspaces/{WS1}/requests/{id}/review"),
                Some(&token),
                Some(json!({"decision": "approved", "explanation": "fine", "revision": 1})),
            )
            .await
        }
    };
    let (status, body) = review(mike.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("justify the gate warnings on table.csv"),
        "{body}"
    );
    let justify = format!("/api/workspaces/{WS1}/requests/{id}/justify");
    // Only a contributor justifies, only a warned file, with some text.
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&bob),
            Some(json!({"file": "table.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&mike),
            Some(json!({"file": "table.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 403, "a reviewer cannot justify what they judge");
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&alice),
            Some(json!({"file": "table.csv", "justification": "  "})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&alice),
            Some(json!({"file": "other.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    let before = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}"),
            &alice,
            None,
            200,
        )
        .await;
    assert!(
        before["allowedUserActions"]
            .as_array()
            .unwrap()
            .contains(&json!("justify")),
        "{before}"
    );
    let justified = s
        .ok(
            "POST",
            &justify,
            &alice,
            Some(json!({"file": "table.csv", "justification": "Region B is a published national figure"})),
            200,
        )
        .await;
    assert_eq!(
        justified["airlockRequest"]["files"][0]["justification"]["text"],
        "Region B is a published national figure"
    );
    assert!(
        justified["allowedUserActions"]
            .as_array()
            .unwrap()
            .contains(&json!("justify"))
    );
    let (status, body) = review(mike).await;
    assert_eq!(status, 200, "{body}");
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
    assert!(s.actions(&id).await.contains(&"justified".to_string()));
}

#[tokio::test]
async fn a_file_released_before_is_shown_to_the_reviewer_as_a_re_release() {
    let s = Stack::start(
        json!({"gates": [{"name": "release ledger", "kind": "releaseLedger", "mode": "warn"}]}),
    )
    .await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let table: &[u8] = b"region,mean\nNorth,4.5\n";
    let first = submit(&s, "table.csv", table).await;
    assert_eq!(first["status"], "in_review");
    assert!(
        first["files"][0].get("findings").is_none(),
        "nothing released yet: {first}"
    );
    let first_id = first["id"].as_str().unwrap().to_string();
    s.action(
        WS1,
        &first_id,
        "review",
        &mike,
        Some(json!({"decision": "approved", "explanation": "ok", "revision": 1})),
    )
    .await;
    assert_eq!(s.record(&first_id).status.to_string(), "approved");
    assert_eq!(
        s.airlock.releases.all().len(),
        1,
        "the approved export is in the ledger"
    );
    // The same bytes again, under another name: shown as a re-release.
    let again = submit(&s, "results/copy.csv", table).await;
    assert_eq!(again["status"], "in_review");
    let finding = &again["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "already_released");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "identical to \"table.csv\", released by request {first_id} on "
        )),
        "{message}"
    );
    // Different bytes: nothing.
    let other = submit(&s, "table.csv", b"region,mean\nNorth,4.6\n").await;
    assert!(other["files"][0].get("findings").is_none(), "{other}");
}
