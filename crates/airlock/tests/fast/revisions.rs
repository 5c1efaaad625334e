//! A resubmission through the API: the diff against the previous revision and the reviewer's
//! own vote, and the vote on an unchanged file carried over so only what changed is decided.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn only_the_changed_file_needs_a_new_vote() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let rita = s.token("rita", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let upload = |files: Vec<(&'static str, &'static [u8])>| {
        let s = &s;
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let link = s.link(WS1, &id, &alice).await;
            for (name, data) in files {
                link.upload(name, data.to_vec()).unwrap();
            }
            s.action(WS1, &id, "submit", &alice, None).await;
            s.settle().await;
        }
    };
    upload(vec![("a.csv", b"x,n\na,20\n"), ("b.csv", b"x,n\nb,30\n")]).await;
    let path = |tail: &str| format!("/api/workspaces/{WS1}/requests/{id}{tail}");
    // Revision 1: nothing to compare with yet.
    let diff = s.ok("GET", &path("/diff"), &rita, None, 200).await;
    assert_eq!(diff, json!({"revision": 1}));
    s.ok(
        "POST",
        &path("/review"),
        &rita,
        Some(
            json!({"revision": 1, "explanation": "b needs work", "files": [
                {"name": "a.csv", "decision": "approved"},
                {"name": "b.csv", "decision": "changes_requested"}
            ]}),
        ),
        200,
    )
    .await;
    // Revision 2: a.csv the same bytes, b.csv changed.
    upload(vec![("a.csv", b"x,n\na,20\n"), ("b.csv", b"x,n\nb,35\n")]).await;
    assert_eq!(s.record(&id).revision, 2);
    let diff = s.ok("GET", &path("/diff"), &rita, None, 200).await;
    let changes = |files: &serde_json::Value| -> Vec<(String, String)> {
        files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["change"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let expected = vec![
        ("a.csv".to_string(), "identical".to_string()),
        ("b.csv".to_string(), "changed".to_string()),
    ];
    assert_eq!(changes(&diff["sincePrevious"]), expected);
    assert_eq!(diff["sinceYourVote"]["revision"], 1);
    assert_eq!(changes(&diff["sinceYourVote"]["files"]), expected);
    assert_eq!(
        diff["sinceYourVote"]["files"][0]["yourDecision"],
        "approved"
    );
    // The changed table, cell by cell (both versions' cells were kept at their seals).
    let table = &diff["sincePrevious"][1]["table"];
    assert_eq!(table["labelColumns"], json!(["x"]), "{diff}");
    assert_eq!(
        table["cells"],
        json!([{"row": "b", "column": "n", "before": "30", "after": "35"}])
    );
    assert_eq!(table["cellsChanged"], 1);
    assert_eq!(table["complete"], true);
    assert_eq!(diff["sinceYourVote"]["files"][1]["table"], *table);
    assert!(diff["sincePrevious"][0].get("table").is_none());
    // The researcher sees what changed, never anyone's decisions.
    let theirs = s.ok("GET", &path("/diff"), &alice, None, 200).await;
    assert!(theirs.get("sinceYourVote").is_none(), "{theirs}");
    assert!(!theirs.to_string().contains("yourDecision"));
    // Rita decides only b.csv: her vote on the unchanged a.csv carries over.
    let answer = s
        .ok(
            "POST",
            &path("/review"),
            &rita,
            Some(json!({"revision": 2, "explanation": "fine now", "files": [
                {"name": "b.csv", "decision": "approved"}
            ]})),
            200,
        )
        .await;
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved", "{answer}");
    let review = &s.record(&id).reviews[1];
    let a = review.files.iter().find(|d| d.name == "a.csv").unwrap();
    assert!(a.carried && a.decision == airlock::domain::Decision::Approved);
    assert!(
        !review
            .files
            .iter()
            .find(|d| d.name == "b.csv")
            .unwrap()
            .carried
    );
    assert!(
        s.actions(&id)
            .await
            .contains(&airlock::domain::request::VOTES_CARRIED.to_string())
    );
}

/// A supporting file (the code that made the outputs) is sealed, scanned and reviewed like
/// the rest, and never leaves: not copied to the approved stage, not in the release ledger,
/// not previewable from there.
#[tokio::test]
async fn a_supporting_file_is_reviewed_and_never_released() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let rita = s.token("rita", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    link.upload("table.csv", b"x,n\na,20\n".to_vec()).unwrap();
    link.upload("analysis.R", b"summary(data)\n".to_vec())
        .unwrap();
    s.action(
        WS1,
        &id,
        "submit",
        &alice,
        Some(json!({"files": [{"name": "analysis.R", "supporting": true}]})),
    )
    .await;
    s.settle().await;
    let path = |tail: &str| format!("/api/workspaces/{WS1}/requests/{id}{tail}");
    let shown = s.ok("GET", &path(""), &rita, None, 200).await;
    let files = &shown["airlockRequest"]["files"];
    assert_eq!(files[0]["name"], "analysis.R");
    assert_eq!(files[0]["supporting"], true);
    assert!(files[1].get("supporting").is_none());
    // Reviewed like any file: it can be previewed and needs a decision.
    s.ok("GET", &path("/preview?file=analysis.R"), &rita, None, 200)
        .await;
    s.ok(
        "POST",
        &path("/review"),
        &rita,
        Some(json!({"decision": "approved", "explanation": "fine", "revision": 1})),
        200,
    )
    .await;
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
    let approved: Vec<String> = s
        .data_of(&id)
        .into_iter()
        .filter(|(stage, _)| stage.starts_with("stalexapp"))
        .flat_map(|(_, names)| names)
        .collect();
    assert_eq!(
        approved,
        vec!["table.csv".to_string()],
        "{:?}",
        s.data_of(&id)
    );
    let (status, body) = s
        .call("GET", &path("/preview?file=analysis.R"), Some(&alice), None)
        .await;
    assert_eq!(status.as_u16(), 404, "{body}");
}
