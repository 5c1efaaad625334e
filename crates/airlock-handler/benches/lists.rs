//! List pages against the number of requests in a workspace, on the Cosmos emulator: the
//! first page and the next pages of 100, as the API reads them (summaries) and as whole
//! records (the baseline, measured in the same run), then 16 pages at once. Growth from the
//! smallest to the largest workspace is printed, so a page that slows with size shows.
//!
//! The local emulator (`@vercel/cosmosdb-server`) has no index: every query reads, filters and
//! sorts the whole container before it pages, so any query's time grows with the container
//! whatever the page. That floor is measured in the same run — the same query with a page of
//! one — and the page's own cost (a page of 100 less the floor: reading, sending and parsing
//! its items) is printed beside it. On Cosmos DB the composite index serves the `ORDER BY`, so
//! the floor is an index seek; only the page's own cost is ours to keep flat.
//!
//! `cargo bench -p airlock-handler --bench lists` (sizes: `AIRLOCK_BENCH_LIST_SIZES`, default
//! `1000,10000`). Each request carries what a reviewed request carries: three files, a review,
//! its queued events and a short thread.

use airlock::domain::request::{Ctx, DraftFile};
use airlock::domain::{AirlockRequest, RequestType, Workspace};
use airlock::ports::{OrderBy, RequestQuery, RequestStore};
use airlock_local::testing::*;
use airlock_testkit::fixtures::{self, user};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn workspace(id: &str) -> Workspace {
    fixtures::workspace(
        id,
        &id.replace('-', ""),
        serde_json::json!({"scanRequired": false}),
    )
}

/// A request as a reviewed one looks: submitted, sealed, commented on.
fn request(ws: &Workspace, i: usize) -> AirlockRequest {
    let ctx = Ctx {
        now: chrono::DateTime::from_timestamp(1_800_000_000 + i as i64, 0).unwrap(),
        workspace: ws,
    };
    let mut r = AirlockRequest::create(
        format!("req-{i:06}"),
        RequestType::Export,
        format!("Results {i}"),
        "Figures for the paper".into(),
        user(&format!("researcher-{}", i % 50)),
        &ctx,
    )
    .unwrap();
    let files: Vec<DraftFile> = (0..3)
        .map(|f| DraftFile {
            name: format!("results/table-{f}.csv"),
            size: 10_000,
            etag: Some(format!("e{f}")),
        })
        .collect();
    r.submit(&r.created_by.clone(), files, &ctx).unwrap();
    for f in 0..3 {
        r.record_sealed(
            &format!("results/table-{f}.csv"),
            10_000,
            format!("{:064x}", i * 3 + f),
            format!("s{f}"),
            &ctx,
        )
        .unwrap();
    }
    for c in 0..3 {
        let _ = r.comment(
            &user("mona"),
            true,
            airlock::domain::request::NewComment::on_request(format!(
                "Comment {c}: please check the small cells in table {c}."
            )),
            &ctx,
        );
    }
    r
}

async fn fill(
    store: &Arc<airlock::adapters::azure::cosmos::CosmosStores>,
    ws: &Workspace,
    from: usize,
    to: usize,
) {
    let mut next = from;
    while next < to {
        let batch: Vec<_> = (next..(next + 16).min(to))
            .map(|i| {
                let store = store.clone();
                let r = request(ws, i);
                tokio::spawn(async move { store.create(&r).await })
            })
            .collect();
        for b in batch {
            b.await.unwrap().expect("created");
        }
        next = (next + 16).min(to);
    }
}

/// The first page's time and the mean of the next `pages` pages' times, pages of `page_size`.
async fn pages(
    store: &airlock::adapters::azure::cosmos::CosmosStores,
    ws: &str,
    summary: bool,
    page_size: u32,
    pages: usize,
) -> (Duration, Duration) {
    let mut q = RequestQuery {
        page_size,
        summary,
        order_by: OrderBy::CreatedDesc,
        ..Default::default()
    };
    let t = Instant::now();
    let first = store.query(ws, &q).await.unwrap();
    let first_time = t.elapsed();
    q.continuation = first.continuation;
    let mut total = Duration::ZERO;
    let mut n = 0;
    while n < pages {
        let Some(token) = q.continuation.clone() else {
            break;
        };
        q.continuation = Some(token);
        let t = Instant::now();
        let page = store.query(ws, &q).await.unwrap();
        total += t.elapsed();
        n += 1;
        q.continuation = page.continuation;
    }
    (first_time, total / n.max(1) as u32)
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("AIRLOCK_BENCH_LIST_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let emulator = cosmos();
    let store = Arc::new(cosmos_stores(&emulator).await);
    let ws = workspace("ws-lists");
    let full_size = serde_json::to_vec(&request(&ws, 0)).unwrap().len();
    let summary_size = serde_json::to_vec(&request(&ws, 0).summary())
        .unwrap()
        .len();
    println!(
        "record {full_size} bytes, its summary {summary_size} bytes ({:.0}%)",
        100.0 * summary_size as f64 / full_size as f64
    );
    println!(
        "requests | first page summary / whole | next pages summary / whole | 16 at once summary / whole | floor (page of 1) | page less floor summary / whole"
    );
    let mut filled = 0;
    let mut rows = Vec::new();
    for size in sizes {
        let t = Instant::now();
        fill(&store, &ws, filled, size).await;
        filled = size;
        eprintln!(
            "filled {size} requests in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (first_s, next_s) = pages(&store, &ws.id, true, 100, 5).await;
        let (first_w, next_w) = pages(&store, &ws.id, false, 100, 5).await;
        let (_, floor) = pages(&store, &ws.id, true, 1, 10).await;
        let mut concurrent = Vec::new();
        for summary in [true, false] {
            let t = Instant::now();
            let all: Vec<_> = (0..16)
                .map(|_| {
                    let store = store.clone();
                    let ws = ws.id.clone();
                    tokio::spawn(async move { pages(&store, &ws, summary, 100, 0).await })
                })
                .collect();
            for a in all {
                a.await.unwrap();
            }
            concurrent.push(t.elapsed());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let own = |d: Duration| d.saturating_sub(floor);
        println!(
            "{size:>8} | {:>7.0} / {:>7.0} ms | {:>7.0} / {:>7.0} ms | {:>7.0} / {:>7.0} ms | {:>9.0} ms | {:>7.1} / {:>7.1} ms",
            ms(first_s),
            ms(first_w),
            ms(next_s),
            ms(next_w),
            ms(concurrent[0]),
            ms(concurrent[1]),
            ms(floor),
            ms(own(next_s)),
            ms(own(next_w))
        );
        rows.push((size, next_s, next_w, floor, own(next_s), own(next_w)));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-6);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // The page's own cost is a few milliseconds at most: its change is printed in
        // milliseconds, since a ratio of two such small numbers says nothing.
        println!(
            "growth {} -> {} requests: next page ×{:.2} (summary), ×{:.2} (whole records); \
             the emulator's floor ×{:.2}; the page's own cost {:.1} -> {:.1} ms (summary), \
             {:.1} -> {:.1} ms (whole records)",
            first.0,
            last.0,
            ratio(first.1, last.1),
            ratio(first.2, last.2),
            ratio(first.3, last.3),
            ms(first.4),
            ms(last.4),
            ms(first.5),
            ms(last.5)
        );
    }
}
