//! Context at submit and the comment thread: what a workspace requires the researcher to say
//! about a request and its files, and the conversation between reviewers and researchers
//! across a revision, with who sees what and who is told.

use crate::common::*;
use serde_json::{Value, json};

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_workspace_that_requires_context_refuses_a_submit_without_it_naming_the_files() {
    let s = Stack::start(
        json!({"requirePurpose": true, "requireFileDescriptions": true,
        "requireDisclosureControls": true}),
    )
    .await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    link.upload("counts.csv", b"region,n\nNorth,120\n".to_vec())
        .unwrap();
    link.upload("figure.png", b"\x89PNG\r\n\x1a\n".to_vec())
        .unwrap();
    let submit = format!("/api/workspaces/{WS1}/requests/{id}/submit");
    // No body at all (as AzureTRE's clients submit): refused, naming everything missing.
    let (status, body) = s.call("POST", &submit, Some(&alice), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "this workspace needs, before submit: the request's purpose; a description of counts.csv, figure.png; the disclosure controls applied to counts.csv, figure.png"
    );
    let (status, body) = s
        .call(
            "POST",
            &submit,
            Some(&alice),
            Some(json!({"purpose": "x", "files": [{"name": "nope.csv"}]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).contains("\"nope.csv\", which is not in the draft"),
        "{body}"
    );
    let (status, body) = s
        .call(
            "POST",
            &submit,
            Some(&alice),
            Some(json!({"purpose": "x", "sneaky": true})),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    assert_eq!(s.record(&id).status.to_string(), "draft");
    let context = json!({"purpose": "Figures for a paper", "files": [
        {"name": "counts.csv", "description": "patients by region", "disclosureControls": "counts under 10 suppressed; rounded to 5"},
        {"name": "figure.png", "description": "figure 1", "disclosureControls": "drawn from counts.csv only"},
    ]});
    let v = s.action(WS1, &id, "submit", &alice, Some(context)).await;
    assert_eq!(v["airlockRequest"]["purpose"], "Figures for a paper");
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "in_review");
    assert_eq!(
        r.files[0].description.as_deref(),
        Some("patients by region")
    );
}

#[tokio::test]
async fn a_thread_across_a_revision_with_reviewer_only_notes_and_notifications() {
    let s = Stack::start(json!({"requireFileDescriptions": true})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let nina = s.token("nina", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("counts.csv", b"region,n\nNorth,120\n".to_vec())
        .unwrap();
    s.action(
        WS1,
        &id,
        "submit",
        &alice,
        Some(json!({"files": [{"name": "counts.csv", "description": "patients by region"}]})),
    )
    .await;
    let comments = format!("/api/workspaces/{WS1}/requests/{id}/comments");
    // A reviewer's note for reviewers only, and a question on the file to the researcher.
    let note = s
        .ok("POST", &comments, &mike, Some(json!({"text": "Check row 2 against last month's release.", "visibility": "reviewers"})), 201)
        .await;
    assert_eq!(note["visibility"], "reviewers");
    s.ok(
        "POST",
        &comments,
        &mike,
        Some(json!({"text": "Which years does **this** cover?", "file": "counts.csv"})),
        201,
    )
    .await;
    s.settle().await;
    // The researcher may not write for reviewers only, nor about a file that is not there.
    let (status, _) = s
        .call(
            "POST",
            &comments,
            Some(&alice),
            Some(json!({"text": "psst", "visibility": "reviewers"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call(
            "POST",
            &comments,
            Some(&alice),
            Some(json!({"text": "?", "file": "other.csv"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .call("POST", &comments, Some(&alice), Some(json!({"text": "  "})))
        .await;
    assert_eq!(status, 400);
    // Someone else's researcher may not comment.
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let (status, _) = s
        .call("POST", &comments, Some(&bob), Some(json!({"text": "hi"})))
        .await;
    assert_eq!(status, 403);

    // The researcher sees the question, not the reviewers' note (nor does the trail show it).
    let seen = s.get(WS1, &id, &alice).await;
    let texts: Vec<&str> = seen["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["Which years does **this** cover?"]);
    assert_eq!(
        s.get(WS1, &id, &nina).await["comments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let trail = s.history(&id).await;
    assert!(
        !trail
            .iter()
            .any(|e| e.message.as_deref().unwrap_or("").contains("last month")),
        "a reviewers-only comment's text stays out of the trail"
    );
    assert!(trail.iter().any(|e| {
        e.action == "commented"
            && e.message
                .as_deref()
                .unwrap_or("")
                .contains("(reviewers only)")
    }));
    // Who was told: the note to the managers only; the question to the researcher too.
    let told: Vec<Value> = s
        .notifications()
        .into_iter()
        .map(|e| e.data)
        .filter(|d| d["event"] == "commented" && d["request"]["id"] == id.as_str())
        .collect();
    assert_eq!(told.len(), 2);
    assert_eq!(told[0]["recipients"]["researcher"], json!([]));
    assert_eq!(
        told[0]["recipients"]["airlockManager"],
        json!(["managers@one.test"])
    );
    assert_eq!(
        told[1]["recipients"]["researcher"],
        json!(["alice@airlock.local"])
    );

    // Changes requested: the explanation joins the thread; the researcher answers and
    // resubmits; the file's description carries over to the new revision.
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "changes_requested",
        "explanation": "Please add the years to the file name.", "revision": 1})),
    )
    .await;
    assert_eq!(s.record(&id).status.to_string(), "draft");
    s.ok(
        "POST",
        &comments,
        &alice,
        Some(json!({"text": "2019 to 2024; renamed.", "file": "counts.csv"})),
        201,
    )
    .await;
    s.link(WS1, &id, &alice)
        .await
        .upload("counts.csv", b"region,n\nNorth,125\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "in_review");
    assert_eq!(r.revision, 2);
    assert_eq!(
        r.files[0].description.as_deref(),
        Some("patients by region")
    );
    let thread: Vec<(u32, &str)> = r
        .comments
        .iter()
        .map(|c| (c.revision, c.by.id.as_str()))
        .collect();
    assert_eq!(
        thread,
        vec![(1, "mike"), (1, "mike"), (1, "mike"), (2, "alice")],
        "one thread across the revision"
    );
    assert_eq!(r.comments[2].text, "Please add the years to the file name.");
}

/// Attack: comments of 8,000 four-byte characters each. Counted in characters, 68 of them
/// made the record 2.19 MB (the 200 allowed about 6.4 MB); Cosmos DB refuses items over 2 MB,
/// so every later write — a review, a revoke, Reconcile — would fail. A person's writing now
/// stops at the record's budget, with a clear 400, and the airlock's own writes still fit.
#[tokio::test]
async fn comments_cannot_grow_the_record_past_what_cosmos_holds() {
    use airlock::domain::request::{MAX_RECORD_BYTES, USER_RECORD_BYTES};
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("counts.csv", b"region,n\nNorth,120\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let comments = format!("/api/workspaces/{WS1}/requests/{id}/comments");
    let big = "\u{1F600}".repeat(airlock::domain::request::MAX_COMMENT_CHARS);
    let mut accepted = 0;
    let refusal = loop {
        let (status, body) = s
            .call("POST", &comments, Some(&alice), Some(json!({"text": big})))
            .await;
        match status.as_u16() {
            201 => accepted += 1,
            400 => break body,
            other => panic!("comment {accepted}: {other} {body}"),
        }
        assert!(accepted < 200, "never refused");
    };
    assert!(
        error_message(&refusal).contains(&format!("more than the {USER_RECORD_BYTES}")),
        "{refusal}"
    );
    let size = s.record(&id).stored_bytes();
    assert!(
        size <= USER_RECORD_BYTES,
        "{size} bytes after {accepted} comments"
    );
    assert!(
        accepted >= 40,
        "{accepted} comments of 32 KB fit in the budget"
    );
    // The airlock's own writes and a review still go through, under Cosmos DB's limit.
    let (status, body) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{id}/review"),
            Some(&mike),
            Some(json!({"decision": "approved", "explanation": "ok"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "approved");
    assert!(r.stored_bytes() <= MAX_RECORD_BYTES, "{}", r.stored_bytes());
}
