//! Statistics through the API: what an overseer asks without querying the database, for
//! those who oversee the workspace, TRE-wide with a TRE API token, and nobody else.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn overseers_read_counts_turnaround_and_releases_and_researchers_do_not() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mona = s.token("mona", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"region,n\nnorth,20\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    s.clock.advance(chrono::Duration::hours(3));
    s.action(
        WS1,
        &id,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "aggregate"})),
    )
    .await;
    s.settle().await;
    s.create(WS1, &alice, "import").await;
    s.create(WS2, &s.token("bob", &[RESEARCHER], WS2), "export")
        .await;

    let path = format!("/api/workspaces/{WS1}/stats");
    let stats = s.ok("GET", &path, &mona, None, 200).await;
    assert_eq!(stats["requests"], 2, "{stats}");
    assert_eq!(stats["byType"], json!({"export": 1, "import": 1}));
    assert_eq!(stats["byStatus"]["approved"], 1, "{stats}");
    assert_eq!(stats["byStatus"]["draft"], 1);
    assert_eq!(stats["reviews"], 1);
    assert_eq!(stats["reviewTurnaround"]["count"], 1);
    assert_eq!(stats["reviewTurnaround"]["p50Seconds"], 3 * 3600);
    assert_eq!(stats["releasedFiles"], 1);
    assert_eq!(stats["releasedBytes"], 18);
    assert_eq!(stats["workspaces"], json!([WS1]));

    // Auditors and owners too; researchers not.
    s.ok(
        "GET",
        &path,
        &s.token("audrey", &["AirlockAuditor"], WS1),
        None,
        200,
    )
    .await;
    s.ok("GET", &path, &s.token("olivia", &[OWNER], WS1), None, 200)
        .await;
    let (status, _) = s.call("GET", &path, Some(&alice), None).await;
    assert_eq!(status, 403);

    // A range that holds none of them; ranges that make no sense.
    let empty = s
        .ok(
            "GET",
            &format!("{path}?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z"),
            &mona,
            None,
            200,
        )
        .await;
    assert_eq!(empty["requests"], 0);
    // Any span: the cost is bounded by the requests read (at most 5,000), not the years.
    let since_2000 = s
        .ok(
            "GET",
            &format!("{path}?from=2000-01-01T00:00:00Z"),
            &mona,
            None,
            200,
        )
        .await;
    assert_eq!(since_2000["requests"], 2, "{since_2000}");
    assert_ne!(since_2000["truncated"], true, "{since_2000}");
    for (query, needle) in [
        ("?from=yesterday", "RFC 3339"),
        (
            "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "before",
        ),
        ("?workspace=x", "unknown parameter"),
    ] {
        let (status, body) = s
            .call("GET", &format!("{path}{query}"), Some(&mona), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(needle), "{query}: {body}");
    }

    // TRE-wide: every workspace, for a TRE admin or auditor with a TRE API token only.
    let tre = |roles: &[&str]| {
        s.issuer.mint(&airlock_testkit::TokenSpec::new(
            "tina",
            roles,
            airlock_testkit::demo::TRE_API_AUDIENCE,
        ))
    };
    let all = s
        .ok("GET", "/api/admin/stats", &tre(&[ADMIN]), None, 200)
        .await;
    assert_eq!(all["requests"], 3, "{all}");
    assert_eq!(all["workspaces"], json!([WS1, WS2]));
    s.ok(
        "GET",
        "/api/admin/stats",
        &tre(&["AirlockAuditor"]),
        None,
        200,
    )
    .await;
    let (status, _) = s
        .call("GET", "/api/admin/stats", Some(&tre(&[MANAGER])), None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call(
            "GET",
            "/api/admin/stats",
            Some(&s.token("tina", &[ADMIN], WS1)),
            None,
        )
        .await;
    assert_eq!(status, 401, "a workspace token is not the TRE API's");
}
