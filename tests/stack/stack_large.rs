//! A large file on the real local stack: its hashing runs as queued work, off the event
//! deliveries, so another request's small file is not held up behind it, and the sha256 of
//! the large file is right end to end; the scanner's size limit is handled as the
//! workspace's policy says, and shown on the record.

use airlock::domain::Workspace;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use serde_json::json;
use std::time::Duration;

const WS: &str = "ws-large";
const GIB: u64 = 1024 * 1024 * 1024;

/// Deterministic content that does not compress or repeat within a block.
fn fill(offset: u64, chunk: &mut [u8]) {
    let mut x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_file_does_not_hold_up_other_requests() {
    let ws: Workspace = serde_json::from_value(json!({
        "id": WS, "displayName": "Large files", "shortId": "large", "tokenAudience": audience(WS),
        // ClamAV scans up to its limit (256 MiB here, to keep the test short; 2 GiB by
        // default); larger files go to review marked as not scanned, as this workspace's
        // policy says.
        "policy": {"scanRequired": true, "unscannedFiles": "review"},
    }))
    .unwrap();
    let mut options = stack_options(
        &airlock_system_tests::handler_bin(),
        "large",
        DeliveryOptions::default(),
        vec![ws],
        Duration::from_secs(60),
        vec![],
    );
    options.scanner_max_bytes = 256 * 1024 * 1024;
    let stack = start_stack_with(options).await;
    let api = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], WS);
    let mona = stack.token("mona", &["AirlockManager"], WS);

    // 1 GiB through the upload link, block by block (never in memory at once).
    let big = api.create(WS, &rita, "export").await;
    let link = api.link(WS, &big, &rita).await;
    let expected = link
        .upload_blocks("large/data.bin", GIB, 8 * 1024 * 1024, fill)
        .await
        .expect("upload through the link");
    api.act(WS, &big, "submit", &rita, None).await;

    // A small request submitted right after reaches review while the large file's seal is
    // still under way, and before the large request does.
    let small = api
        .submitted(WS, &rita, "export", &[("small.csv", b"a,b\n1,2\n")])
        .await;
    let r = api.wait(WS, &small, &mona, "in_review").await;
    assert!(r["files"][0]["sha256"].is_string(), "{r}");
    let (_, large_now) = api
        .call(
            "GET",
            &format!("/workspaces/{WS}/requests/{big}"),
            &mona,
            None,
        )
        .await;
    assert_eq!(
        large_now["airlockRequest"]["status"], "submitted",
        "the small request was not held up behind the large one: {large_now}"
    );

    // The large file is sealed with the sha256 of what was uploaded, and no event delivery
    // failed or was given up on along the way (none ran past Event Grid's 30 s).
    let r = api.wait(WS, &big, &mona, "in_review").await;
    assert_eq!(r["files"][0]["sha256"], expected.as_str(), "{r}");
    assert_eq!(r["files"][0]["size"], GIB);
    let verdict = r["files"][0]["scan"]["result"].as_str().unwrap();
    assert!(verdict.contains("not scanned"), "{verdict}");
    assert!(stack.engine.dead_letters().is_empty());
    assert!(stack.engine.poisoned().is_empty());
}
