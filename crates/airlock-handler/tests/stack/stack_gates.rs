//! Gates on the real local stack: a workspace that blocks small counts and disguised
//! executables, and one that only warns, each seen through the API as a researcher and a
//! manager would. The sealed copy in Azurite is what is checked, as it is hashed.

use airlock::domain::Workspace;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use serde_json::json;
use std::time::Duration;

fn workspace(id: &str, short: &str, mode: &str) -> Workspace {
    serde_json::from_value(json!({
        "id": id, "displayName": id, "shortId": short, "tokenAudience": audience(id),
        "policy": {"gates": [
            {"name": "file types", "kind": "filePolicy", "mode": "block"},
            {"name": "small counts", "kind": "disclosure", "mode": mode, "threshold": 10},
        ]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_count_of_three_is_blocked_or_warned_as_the_policy_says() {
    let stack = start_stack(
        env!("CARGO_BIN_EXE_handler").as_ref(),
        "gates",
        DeliveryOptions::default(),
        vec![
            workspace("ws-strict", "strict", "block"),
            workspace("ws-lenient", "lenient", "warn"),
        ],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let table: &[u8] = b"region,n,mean\nNorth,125,4.5\nSouth,3,2.0\n";

    let strict = stack.token("rita", &["WorkspaceResearcher"], "ws-strict");
    let id = c
        .submitted("ws-strict", &strict, "export", &[("counts.csv", table)])
        .await;
    let r = c.wait("ws-strict", &id, &strict, "blocked_by_scan").await;
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: counts.csv: count 3 is below the threshold of 10 (small counts, row 3, column \"n\")"
    );

    // A Windows executable named as a table is blocked whatever the disclosure mode.
    let lenient = stack.token("rita", &["WorkspaceResearcher"], "ws-lenient");
    let id = c
        .submitted(
            "ws-lenient",
            &lenient,
            "export",
            &[("results.csv", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")],
        )
        .await;
    let r = c.wait("ws-lenient", &id, &lenient, "blocked_by_scan").await;
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .contains("the content is a Windows executable (PE) (file types)"),
        "{r}"
    );

    // Warn: the manager reviews the table with the finding on the file.
    let manager = stack.token("mona", &["AirlockManager"], "ws-lenient");
    let id = c
        .submitted("ws-lenient", &lenient, "export", &[("counts.csv", table)])
        .await;
    let r = c.wait("ws-lenient", &id, &manager, "in_review").await;
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(finding["gate"], "small counts");
    assert_eq!(finding["mode"], "warn");
    assert_eq!(finding["location"], "row 3, column \"n\"");
}
