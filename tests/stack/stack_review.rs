//! Review as output checkers do it, on the real stack: a two-reviewer workspace where the
//! second reviewer cannot see the first one's decisions until both are in, a conflicted file
//! settled by a consolidating review, a partial release that lets out exactly the approved
//! file, and a comment thread that runs across a revision.

use airlock::domain::Workspace;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blinded_reviews_a_consolidation_a_partial_release_and_a_thread() {
    let ws: Workspace = serde_json::from_value(json!({
        "id": "ws-panel", "displayName": "panel", "shortId": "panel",
        "tokenAudience": audience("ws-panel"),
        "policy": {"approvalsRequired": 2, "partialRelease": true,
                   "requireFileDescriptions": true},
    }))
    .unwrap();
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "panel",
        DeliveryOptions::default(),
        vec![ws],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let w = "ws-panel";
    let rita = stack.token("rita", &["WorkspaceResearcher"], w);
    let mona = stack.token("mona", &["AirlockManager"], w);
    let max = stack.token("max", &["AirlockManager"], w);

    // Submitted with the context the workspace asks for.
    let id = c.create(w, &rita, "export").await;
    let upload = c.link(w, &id, &rita).await;
    upload
        .upload("counts.csv", b"region,n\nNorth,120\n".to_vec())
        .await
        .unwrap();
    upload
        .upload("small.csv", b"region,n\nSouth,3\n".to_vec())
        .await
        .unwrap();
    let path = |what: &str| format!("/workspaces/{w}/requests/{id}/{what}");
    let (status, body) = c.call("POST", &path("submit"), &rita, None).await;
    assert_eq!(status, 400, "descriptions are required: {body}");
    c.ok(
        "POST",
        &path("submit"),
        &rita,
        Some(json!({"purpose": "A report", "files": [
            {"name": "counts.csv", "description": "patients by region"},
            {"name": "small.csv", "description": "a rare subgroup"}]})),
    )
    .await;
    c.wait(w, &id, &mona, "in_review").await;

    // A question to the researcher, and her answer, before anyone decides.
    c.ok(
        "POST",
        &path("comments"),
        &mona,
        Some(json!({"text": "What is the subgroup?", "file": "small.csv"})),
    )
    .await;
    c.ok(
        "POST",
        &path("comments"),
        &rita,
        Some(json!({"text": "Patients over 100.", "file": "small.csv"})),
    )
    .await;

    // Mona decides per file; Max cannot see her decisions, and approves everything.
    c.ok(
        "POST",
        &path("review"),
        &mona,
        Some(json!({"revision": 1, "files": [
            {"name": "counts.csv", "decision": "approved"},
            {"name": "small.csv", "decision": "rejected", "comment": "3 is below 10"}]})),
    )
    .await;
    let seen_by_max = c
        .ok("GET", &format!("/workspaces/{w}/requests/{id}"), &max, None)
        .await;
    assert_eq!(seen_by_max["airlockRequest"]["status"], "in_review");
    assert_eq!(
        seen_by_max["airlockRequest"]["reviews"],
        json!([]),
        "blinded: {seen_by_max}"
    );
    let history = c.ok("GET", &path("history"), &max, None).await;
    assert!(
        !history.to_string().contains("3 is below 10"),
        "the trail does not tell either"
    );
    let after = c
        .ok(
            "POST",
            &path("review"),
            &max,
            Some(json!({"revision": 1, "decision": "approved"})),
        )
        .await;
    // Both in: revealed, small.csv is conflicted.
    let r = &after["airlockRequest"];
    assert_eq!(r["reviews"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(
        r["statusMessage"],
        "independent reviewers disagree about small.csv: a consolidating review decides them"
    );
    assert!(
        after["allowedUserActions"]
            .as_array()
            .unwrap()
            .contains(&json!("review")),
        "a reviewer who voted may consolidate: {after}"
    );
    c.ok(
        "POST",
        &path("review"),
        &mona,
        Some(json!({"revision": 1, "decision": "rejected", "explanation": "3 is below the threshold"})),
    )
    .await;
    let r = c.wait(w, &id, &rita, "approved").await;
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .starts_with("partial release: 1 of 2 file(s) approved; withheld: small.csv"),
        "{r}"
    );
    // Exactly the approved file left.
    let download = c.link(w, &id, &rita).await;
    assert_eq!(
        download.download("counts.csv").await.unwrap(),
        b"region,n\nNorth,120\n"
    );
    assert_eq!(download.download("small.csv").await.unwrap_err(), 404);
    let trail: Vec<String> = c.ok("GET", &path("history"), &rita, None).await["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for step in [
        "review: recorded",
        "reviews revealed",
        "consolidation needed",
        "review: consolidated",
        "review: approved in part",
    ] {
        assert!(trail.contains(&step.to_string()), "{step} in {trail:?}");
    }
    let thread = c
        .ok(
            "GET",
            &format!("/workspaces/{w}/requests/{id}"),
            &rita,
            None,
        )
        .await;
    assert_eq!(
        thread["airlockRequest"]["comments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A thread across a revision: both reviewers ask for changes (blinded, agreeing), the
    // researcher answers and resubmits; the thread and the file's description carry over.
    let id2 = c.create(w, &rita, "export").await;
    c.link(w, &id2, &rita)
        .await
        .upload("counts.csv", b"region,n\nNorth,121\n".to_vec())
        .await
        .unwrap();
    let path2 = |what: &str| format!("/workspaces/{w}/requests/{id2}/{what}");
    c.ok(
        "POST",
        &path2("submit"),
        &rita,
        Some(json!({"files": [{"name": "counts.csv", "description": "patients by region"}]})),
    )
    .await;
    c.wait(w, &id2, &mona, "in_review").await;
    for who in [&mona, &max] {
        c.ok(
            "POST",
            &path2("review"),
            who,
            Some(json!({"revision": 1, "decision": "changes_requested", "explanation": "Round to 5."})),
        )
        .await;
    }
    c.wait(w, &id2, &rita, "draft").await;
    c.ok(
        "POST",
        &path2("comments"),
        &rita,
        Some(json!({"text": "Rounded; resubmitting."})),
    )
    .await;
    c.link(w, &id2, &rita)
        .await
        .upload("counts.csv", b"region,n\nNorth,120\n".to_vec())
        .await
        .unwrap();
    c.ok("POST", &path2("submit"), &rita, None).await;
    let r = c.wait(w, &id2, &mona, "in_review").await;
    assert_eq!(r["revision"], 2);
    assert_eq!(r["files"][0]["description"], "patients by region");
    let thread: Vec<(u64, String)> = r["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["revision"].as_u64().unwrap(),
                c["by"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        thread,
        vec![(1, "max".to_string()), (2, "rita".to_string())],
        "{r}"
    );
}
