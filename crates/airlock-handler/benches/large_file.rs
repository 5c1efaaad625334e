//! A large file through the whole local stack with the release `handler`: create → upload
//! through the link → submit → in_review → approve → approved → download and verify. Prints
//! each step's time and MB/s, the ratios to a plain upload and a plain download of the same
//! blob on the same Azurite (measured in the same run), and the handler's peak RSS.
//!
//! `cargo bench -p airlock-handler --bench large_file` (size: `AIRLOCK_BENCH_GIB`, default 10;
//! Azurite keeps blobs on disk, about three copies of the file at the peak).

mod common;

use airlock::domain::Workspace;
use airlock::ports::BlobRef;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use common::{line, peak_rss_mib};
use serde_json::json;
use std::time::{Duration, Instant};

const WS: &str = "ws-bench";

fn fill(offset: u64, chunk: &mut [u8]) {
    let mut x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let gib: u64 = std::env::var("AIRLOCK_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let size = gib * 1024 * 1024 * 1024;
    let ws: Workspace = serde_json::from_value(json!({
        "id": WS, "displayName": "Bench", "shortId": "bench", "tokenAudience": audience(WS),
        "policy": {"scanRequired": true, "unscannedFiles": "review", "maxFileBytes": size, "maxTotalBytes": size},
    }))
    .unwrap();
    let stack = start_stack(
        env!("CARGO_BIN_EXE_handler").as_ref(),
        "bench",
        DeliveryOptions::default(),
        vec![ws],
        Duration::from_secs(60),
        std::env::var("AIRLOCK_BENCH_MALLOC_ARENA_MAX")
            .map(|v| vec![("MALLOC_ARENA_MAX".to_string(), v)])
            .unwrap_or_default(),
    )
    .await;
    let api = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], WS);
    let mona = stack.token("mona", &["AirlockManager"], WS);
    println!("{gib} GiB through the local stack (release handler, Azurite on disk)");

    let id = api.create(WS, &rita, "export").await;
    let link = api.link(WS, &id, &rita).await;
    let t = Instant::now();
    let expected = link
        .upload_blocks("data.bin", size, 8 * 1024 * 1024, fill)
        .await
        .expect("upload");
    let upload = t.elapsed();
    line("upload through the link", upload, size);

    // Baseline: a plain streaming download (and sha256) of the same blob, as the handler
    // reads it.
    let draft = BlobRef {
        account: "stalexintwsbench".into(),
        container: id.clone(),
        name: "data.bin".into(),
    };
    let plain = common::plain_read(stack.blobs.as_ref(), &draft, &expected, size).await;

    let t = Instant::now();
    let submitted_at = chrono::Utc::now();
    api.act(WS, &id, "submit", &rita, None).await;
    let r = api.wait_long(WS, &id, &mona, "in_review").await;
    let seal = t.elapsed();
    assert_eq!(r["files"][0]["sha256"], expected.as_str());
    line("submit -> in_review (copy + hash)", seal, size);
    // The seal (copy + hash) and the scan run side by side; the record says when each
    // ended. Up to 2 GiB clamd scans the file; beyond, "not scanned" and the policy
    // (review) applies.
    let since_submit = |at: &serde_json::Value| {
        at.as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| {
                (at.with_timezone(&chrono::Utc) - submitted_at)
                    .to_std()
                    .ok()
            })
    };
    if let Some(sealed) = since_submit(&r["files"][0]["sealedAt"]) {
        line("  of which submit -> sealed", sealed, size);
        println!(
            "  seal {:.2}x the plain download time",
            sealed.as_secs_f64() / plain.as_secs_f64()
        );
    }
    if let Some(scanned) = since_submit(&r["files"][0]["scan"]["scannedAt"]) {
        line("  of which submit -> scan verdict", scanned, size);
    }
    println!(
        "  scan verdict on the record: {}",
        r["files"][0]["scan"]["result"].as_str().unwrap_or("none")
    );

    let t = Instant::now();
    api.act(
        WS,
        &id,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "bench", "revision": 1})),
    )
    .await;
    api.wait_long(WS, &id, &rita, "approved").await;
    let approve = t.elapsed();
    line("approve -> approved (copy + verify)", approve, size);

    let t = Instant::now();
    let download = api.link(WS, &id, &rita).await;
    let (got, got_size) = download
        .download_sha256("data.bin")
        .await
        .expect("download");
    let fetched = t.elapsed();
    assert_eq!((got.as_str(), got_size), (expected.as_str(), size));
    line("download approved + verify", fetched, size);

    println!(
        "ratios to the plain download time: upload {:.2}x, submit -> in_review {:.2}x (seal and scan), approve -> approved {:.2}x (copy + verify)",
        upload.as_secs_f64() / plain.as_secs_f64(),
        seal.as_secs_f64() / plain.as_secs_f64(),
        approve.as_secs_f64() / plain.as_secs_f64()
    );
    println!(
        "handler peak RSS: {:.1} MiB",
        peak_rss_mib(stack.handler_pid())
    );
    println!(
        "dead letters: {}, poisoned work items: {}",
        stack.engine.dead_letters().len(),
        stack.engine.poisoned().len()
    );
}
