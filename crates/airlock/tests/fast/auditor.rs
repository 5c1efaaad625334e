//! The auditor: reads every request of the workspace, its trail, gate report and comments
//! (reviewers-only ones too), never the data, and does nothing else; the reads are on the
//! record.

use crate::common::*;
use serde_json::json;

const AUDITOR: &str = "AirlockAuditor";

#[tokio::test]
async fn an_auditor_reads_everything_but_the_data_does_nothing_and_is_on_the_record() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mona = s.token("mona", &[MANAGER], WS1);
    let audrey = s.token("audrey", &[AUDITOR], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"n\n20\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let path = |tail: &str| format!("/api/workspaces/{WS1}/requests/{id}{tail}");
    s.ok(
        "POST",
        &path("/comments"),
        &mona,
        Some(json!({"text": "check row 2 with the team", "visibility": "reviewers"})),
        201,
    )
    .await;

    // Reads: the request (with the reviewers' comment), the list, the trail, the gates.
    let seen = s.ok("GET", &path(""), &audrey, None, 200).await;
    let comments = seen["airlockRequest"]["comments"].to_string();
    assert!(comments.contains("check row 2"), "{seen}");
    assert_eq!(
        seen["allowedUserActions"],
        json!([]),
        "an auditor is offered nothing"
    );
    let researcher_view = s.ok("GET", &path(""), &alice, None, 200).await;
    assert!(
        !researcher_view.to_string().contains("check row 2"),
        "the researcher still does not see it"
    );
    let list = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests"),
            &audrey,
            None,
            200,
        )
        .await;
    assert_eq!(
        list["airlockRequests"].as_array().unwrap().len(),
        1,
        "{list}"
    );
    // A TRE-wide auditor (a token for the TRE API) lists every workspace's requests.
    let tre_auditor = s.issuer.mint(&airlock_testkit::TokenSpec::new(
        "tom",
        &[AUDITOR],
        airlock_testkit::demo::TRE_API_AUDIENCE,
    ));
    let everything = s
        .ok("GET", "/api/requests?pageSize=50", &tre_auditor, None, 200)
        .await;
    assert!(everything.to_string().contains(&id), "{everything}");
    s.ok("GET", &path("/history"), &audrey, None, 200).await;
    s.ok("GET", &path("/gates"), &audrey, None, 200).await;
    s.ok(
        "GET",
        &format!("/api/workspaces/{WS1}/limits"),
        &audrey,
        None,
        200,
    )
    .await;

    // Never the data; never an action.
    for (method, tail, body) in [
        ("GET", "/link", None),
        ("GET", "/preview?file=a.csv", None),
        (
            "POST",
            "/review",
            Some(json!({"decision": "approved", "explanation": "fine"})),
        ),
        ("POST", "/cancel", None),
        (
            "POST",
            "/comments",
            Some(json!({"text": "an auditor's remark"})),
        ),
        (
            "POST",
            "/justify",
            Some(json!({"file": "a.csv", "justification": "x"})),
        ),
    ] {
        let (status, body) = s.call(method, &path(tail), Some(&audrey), body).await;
        assert_eq!(status, 403, "{method} {tail}: {body}");
    }
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests"),
            Some(&audrey),
            Some(json!({"type": "export"})),
        )
        .await;
    assert_eq!(status, 403);

    // On the record once for the status, however many reads; again after a change.
    let reads = |actions: &[String]| actions.iter().filter(|a| *a == "read by auditor").count();
    assert_eq!(reads(&s.actions(&id).await), 1);
    s.action(WS1, &id, "cancel", &alice, None).await;
    s.ok("GET", &path(""), &audrey, None, 200).await;
    s.ok("GET", &path(""), &audrey, None, 200).await;
    let actions = s.actions(&id).await;
    assert_eq!(reads(&actions), 2, "{actions:?}");
    let trail = s.ok("GET", &path("/history"), &mona, None, 200).await;
    assert_eq!(trail["verified"], true);
    assert!(
        trail
            .to_string()
            .contains("audrey (auditor) read the request"),
        "{trail}"
    );
}
