//! Speed and memory of the hashing hot path, printed as numbers
//! (run: `cargo bench --bench pipeline`): sha256 of a sealed copy streamed from the blob store
//! in bounded memory, one chunk at a time.

use airlock::ports::{BlobRef, BlobStore};
use airlock_testkit::memory::{ManualClock, MemoryBlobStore};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let store = Arc::new(MemoryBlobStore::new(Arc::new(ManualClock::default())));
    let blob = BlobRef {
        account: "stalexipwsbench".into(),
        container: "c".into(),
        name: "big.bin".into(),
    };
    let size = 256 * 1024 * 1024;
    store.put(&blob, vec![7u8; size]);
    let before = peak_rss_kib();
    for run in 0..3 {
        let start = Instant::now();
        let (_, mut stream) = store.read(&blob).await.unwrap();
        let mut hasher = Sha256::new();
        let mut largest_chunk = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            largest_chunk = largest_chunk.max(chunk.len());
            hasher.update(&chunk);
        }
        let digest = hex::encode(hasher.finalize());
        let secs = start.elapsed().as_secs_f64();
        println!(
            "sha256 streaming run {run}: {} MiB in {:.3} s = {:.0} MiB/s (largest chunk {} KiB, digest {}…)",
            size >> 20,
            secs,
            (size >> 20) as f64 / secs,
            largest_chunk >> 10,
            &digest[..12]
        );
    }
    println!(
        "peak RSS growth while hashing: {} KiB (the blob itself is held by the in-memory store)",
        peak_rss_kib().saturating_sub(before)
    );
}
