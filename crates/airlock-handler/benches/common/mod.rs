//! What the large-data benches share: the handler's peak memory, the baseline read they are
//! measured against, and how a step's time is printed.

use airlock::ports::{BlobRef, BlobStore};
use futures::StreamExt;
use sha2::Digest;
use std::time::{Duration, Instant};

pub const MIB: f64 = 1024.0 * 1024.0;

/// Peak resident memory of a process (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One step: its time and throughput over `bytes`.
pub fn line(step: &str, took: Duration, bytes: u64) {
    let secs = took.as_secs_f64();
    println!(
        "{step:<42} {secs:>8.2} s {:>9.1} MB/s",
        bytes as f64 / MIB / secs
    );
}

/// The baseline: a plain streaming download (and sha256) of `blob`, as the handler reads it;
/// checks the sha256 is `expected` and prints the step.
pub async fn plain_read(
    blobs: &impl BlobStore,
    blob: &BlobRef,
    expected: &str,
    size: u64,
) -> Duration {
    let t = Instant::now();
    let (_, mut stream) = blobs.read(blob).await.expect("read");
    let mut hasher = sha2::Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(chunk.expect("chunk"));
    }
    assert_eq!(hex::encode(hasher.finalize()), expected);
    let plain = t.elapsed();
    line("baseline: plain download + sha256", plain, size);
    plain
}
