//! Every built-in gate over a large table, against the plain seal of the same table, through
//! the whole local stack with the release `handler`: a CSV of `AIRLOCK_BENCH_GIB` GiB
//! (default 1; 20-byte rows, counts rounded to 5 with a few small ones) sealed in a workspace
//! without gates, and in one with a file policy, a disclosure gate (rounding base 5, totals,
//! k-anonymity and linked tables on), the release ledger, the identifiers and secrets gates
//! and ACRO's built-in gate, where a researcher's pre-flight reads it first. Prints the time
//! and the handler's peak RSS of each step, measured separately (the peak is reset in
//! between), and their ratios to the plain seal and to a plain download + sha256 of the same
//! blob on the same Azurite, all measured in the same run.
//!
//! `cargo bench -p airlock-handler --bench seal_gates`.

mod common;

use airlock::domain::Workspace;
use airlock::ports::BlobRef;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use common::{MIB, line, peak_rss_mib};
use serde_json::json;
use std::time::{Duration, Instant};

const WS: &str = "ws-bench";
/// The same workspace without gates: the plain seal.
const PLAIN: &str = "ws-plain";
/// Every row of the table, the header included, is this long.
const ROW: u64 = 20;

/// Row `r` of the table (row 0 is the header), exactly [`ROW`] bytes.
fn row(r: u64) -> String {
    if r == 0 {
        return format!("{:<11},{:<7}\n", "group", "n");
    }
    // Counts rounded to 5 and at least 10, except a small one every million rows.
    let n = if r % 1_000_000 == 0 {
        3
    } else {
        10 + (r % 1000) * 5
    };
    format!("g{r:010},{n:07}\n")
}

fn fill(offset: u64, chunk: &mut [u8]) {
    let mut at = 0usize;
    while at < chunk.len() {
        let p = offset + at as u64;
        let (r, within) = (p / ROW, (p % ROW) as usize);
        let text = row(r);
        let take = (ROW as usize - within).min(chunk.len() - at);
        chunk[at..at + take].copy_from_slice(&text.as_bytes()[within..within + take]);
        at += take;
    }
}

/// Resets a process's peak RSS to its current RSS (Linux: `5` to `clear_refs`), so that each
/// step's peak is its own.
fn reset_peak(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        println!("(could not reset the handler's peak RSS: {e}; peaks below are cumulative)");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let gib: u64 = std::env::var("AIRLOCK_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Whole rows only.
    let size = gib * 1024 * 1024 * 1024 / ROW * ROW;
    let workspace = |id: &str, short: &str, gates: serde_json::Value| -> Workspace {
        serde_json::from_value(json!({
            "id": id, "displayName": "Bench", "shortId": short, "tokenAudience": audience(id),
            "policy": {"scanRequired": false, "maxFileBytes": size, "maxTotalBytes": size,
                "gates": gates},
        }))
        .unwrap()
    };
    let all_gates = json!([
        {"name": "file types", "kind": "filePolicy", "mode": "block"},
        {"name": "small counts", "kind": "disclosure", "mode": "warn", "roundingBase": 5},
        {"name": "ledger", "kind": "releaseLedger", "mode": "warn"},
        {"name": "identifiers", "kind": "identifiers", "mode": "warn"},
        {"name": "secrets", "kind": "secrets", "mode": "block"}
    ]);
    let stack = start_stack(
        env!("CARGO_BIN_EXE_handler").as_ref(),
        "sealgates",
        DeliveryOptions::default(),
        vec![
            workspace(WS, "bench", all_gates),
            workspace(PLAIN, "plain", json!([])),
        ],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let api = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], WS);
    let rita_plain = stack.token("rita", &["WorkspaceResearcher"], PLAIN);
    let pid = stack.handler_pid();
    println!(
        "every gate against the plain seal: a {:.2} GiB CSV ({} rows) through the local stack",
        size as f64 / MIB / 1024.0,
        size / ROW - 1
    );

    let id = api.create(WS, &rita, "export").await;
    let link = api.link(WS, &id, &rita).await;
    let t = Instant::now();
    let expected = link
        .upload_blocks("table.csv", size, 8 * 1024 * 1024, fill)
        .await
        .expect("upload");
    line("upload through the link", t.elapsed(), size);

    // Baseline: a plain streaming download (and sha256) of the same blob.
    let draft = BlobRef {
        account: "stalexintwsbench".into(),
        container: id.clone(),
        name: "table.csv".into(),
    };
    let plain = common::plain_read(stack.blobs.as_ref(), &draft, &expected, size).await;

    // The plain seal: the same table in the workspace without gates.
    let plain_id = api.create(PLAIN, &rita_plain, "export").await;
    api.link(PLAIN, &plain_id, &rita_plain)
        .await
        .upload_blocks("table.csv", size, 8 * 1024 * 1024, fill)
        .await
        .expect("upload");
    reset_peak(pid);
    let idle = peak_rss_mib(pid);
    let (plain_seal, _) = seal(&api, PLAIN, &plain_id, &rita_plain, &expected).await;
    let plain_seal_rss = peak_rss_mib(pid);
    line("plain seal (copy, hash; no gates)", plain_seal, size);

    reset_peak(pid);
    let t = Instant::now();
    let report = api
        .ok(
            "POST",
            &format!("/workspaces/{WS}/requests/{id}/preflight"),
            &rita,
            None,
        )
        .await;
    let preflight = t.elapsed();
    let preflight_rss = peak_rss_mib(pid);
    let findings = report["files"][0]["findings"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(findings > 0, "the small counts are found: {report}");
    line("pre-flight (all gates, one read)", preflight, size);

    reset_peak(pid);
    let (sealed, to_review) = seal(&api, WS, &id, &rita, &expected).await;
    let seal_rss = peak_rss_mib(pid);
    line("seal with every gate (copy, hash, gates)", sealed, size);
    line("submit -> in_review", to_review, size);

    println!(
        "ratios to the plain seal: seal with every gate {:.2}x (goal <= 1.3x), pre-flight {:.2}x",
        sealed.as_secs_f64() / plain_seal.as_secs_f64(),
        preflight.as_secs_f64() / plain_seal.as_secs_f64(),
    );
    println!(
        "ratios to the plain download: plain seal {:.2}x, seal with every gate {:.2}x, pre-flight {:.2}x",
        plain_seal.as_secs_f64() / plain.as_secs_f64(),
        sealed.as_secs_f64() / plain.as_secs_f64(),
        preflight.as_secs_f64() / plain.as_secs_f64(),
    );
    println!(
        "handler peak RSS: idle {idle:.1} MiB, plain seal {plain_seal_rss:.1} MiB, pre-flight {preflight_rss:.1} MiB, seal with every gate {seal_rss:.1} MiB (goal < 64 MiB; {findings} pre-flight findings listed)"
    );
}

/// Submits the request and waits for review: the time from submit to the file's seal (its
/// `sealedAt`), and to `in_review`.
async fn seal(
    api: &StackClient<'_>,
    ws: &str,
    id: &str,
    token: &str,
    expected: &str,
) -> (Duration, Duration) {
    let submitted_at = chrono::Utc::now();
    let t = Instant::now();
    api.act(ws, id, "submit", token, None).await;
    let r = api.wait_long(ws, id, token, "in_review").await;
    let to_review = t.elapsed();
    assert_eq!(r["files"][0]["sha256"], expected);
    let sealed = r["files"][0]["sealedAt"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .and_then(|at| {
            (at.with_timezone(&chrono::Utc) - submitted_at)
                .to_std()
                .ok()
        })
        .unwrap_or(to_review);
    (sealed, to_review)
}
