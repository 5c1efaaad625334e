//! How fast the content gates read a table, against sha256 over the same bytes (the hash every
//! file gets anyway) measured in the same run. The table is made in memory before it is read
//! 64 KiB at a time (`AIRLOCK_BENCH_TABLE_MIB` of memory), so only the reading is timed.
//!
//! `cargo bench -p airlock-domain --bench gates` (`AIRLOCK_BENCH_TABLE_MIB`, default 64).

use airlock_domain::gates::{Checked, Gate, GateRunner};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Rows of a typical released table: labels, quoted labels with separators, counts, means.
fn table_pieces(mib: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut row = 0u64;
    let total = mib * 1024 * 1024;
    let mut made = 0usize;
    let mut header = true;
    std::iter::from_fn(move || {
        if made >= total {
            return None;
        }
        let mut piece = Vec::with_capacity(64 * 1024 + 256);
        if std::mem::take(&mut header) {
            piece.extend_from_slice(
                b"region,\"practice, name\",age_band,sex,n,deaths_count,mean_age\r\n",
            );
        }
        while piece.len() < 64 * 1024 {
            row += 1;
            let n = 10 + (row * 7919) % 5000 / 5 * 5;
            piece.extend_from_slice(
                format!(
                    "R{},\"Practice {}, \"\"North\"\"\",{}-{},{},{},{},{}.{}\r\n",
                    row % 9,
                    row % 1000,
                    (row % 18) * 5,
                    (row % 18) * 5 + 4,
                    if row % 2 == 0 { "F" } else { "M" },
                    n,
                    n / 10 * 5 + 10,
                    40 + row % 30,
                    row % 10
                )
                .as_bytes(),
            );
        }
        made += piece.len();
        Some(piece)
    })
}

/// Only the reading is timed: the table is made before (making it costs more than some
/// of the gates reading it).
/// Narrow rows, as the stack's seal bench writes them: 20 bytes, a label and a count padded
/// with zeros. Per-row costs show here.
fn narrow_pieces(mib: usize) -> impl Iterator<Item = Vec<u8>> {
    let total = mib * 1024 * 1024;
    let mut row = 0u64;
    let mut made = 0usize;
    std::iter::from_fn(move || {
        if made >= total {
            return None;
        }
        let mut piece = Vec::with_capacity(64 * 1024 + 32);
        while piece.len() < 64 * 1024 {
            if row == 0 {
                piece.extend_from_slice(format!("{:<11},{:<7}\n", "group", "n").as_bytes());
            } else {
                let n = if row % 1_000_000 == 0 {
                    3
                } else {
                    10 + (row % 1000) * 5
                };
                piece.extend_from_slice(format!("g{row:010},{n:07}\n").as_bytes());
            }
            row += 1;
        }
        made += piece.len();
        Some(piece)
    })
}

fn timed(pieces: &[Vec<u8>], mut each: impl FnMut(&[u8])) -> (Duration, usize) {
    let mut bytes = 0;
    let started = Instant::now();
    for piece in pieces {
        bytes += piece.len();
        each(piece);
    }
    (started.elapsed(), bytes)
}

fn main() {
    let mib: usize = std::env::var("AIRLOCK_BENCH_TABLE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);

    for (shape, pieces) in [
        (
            "wide rows (labels, quoted labels, counts, means)",
            table_pieces(mib).collect::<Vec<_>>(),
        ),
        (
            "narrow rows (20 bytes: a label and a count)",
            narrow_pieces(mib).collect(),
        ),
    ] {
        println!("table of {mib} MiB, {shape}, read in 64 KiB pieces");
        read_with_each_policy(&pieces);
    }
}

fn read_with_each_policy(pieces: &[Vec<u8>]) {
    let rate = |(time, bytes): (Duration, usize)| bytes as f64 / 1048576.0 / time.as_secs_f64();
    let mut hasher = Sha256::new();
    let baseline = rate(timed(pieces, |p| hasher.update(p)));
    std::hint::black_box(hasher.finalize());
    println!("{:<34} {:>9.1} MiB/s  (baseline)", "sha256", baseline);

    let policies: [(&str, serde_json::Value); 6] = [
        (
            "disclosure",
            serde_json::json!([{"name": "sdc", "kind": "disclosure"}]),
        ),
        (
            "disclosure + release ledger",
            serde_json::json!([{"name": "sdc", "kind": "disclosure"}, {"name": "ledger", "kind": "releaseLedger"}]),
        ),
        (
            "file policy + disclosure + ledger",
            serde_json::json!([{"name": "files", "kind": "filePolicy"}, {"name": "sdc", "kind": "disclosure"}, {"name": "ledger", "kind": "releaseLedger"}]),
        ),
        (
            "identifiers",
            serde_json::json!([{"name": "ids", "kind": "identifiers"}]),
        ),
        (
            "secrets",
            serde_json::json!([{"name": "keys", "kind": "secrets"}]),
        ),
        (
            "every built-in gate",
            serde_json::json!([{"name": "files", "kind": "filePolicy"}, {"name": "sdc", "kind": "disclosure"}, {"name": "ledger", "kind": "releaseLedger"}, {"name": "ids", "kind": "identifiers"}, {"name": "keys", "kind": "secrets"}]),
        ),
    ];
    for (label, policy) in policies {
        let gates: Vec<Gate> = serde_json::from_value(policy).expect("a valid policy");
        let mut runner = GateRunner::new(&gates, "table.csv").expect("a gate is on");
        let measured = timed(pieces, |p| runner.feed(p));
        let Checked {
            findings, cells, ..
        } = runner.finish();
        let speed = rate(measured);
        println!(
            "{label:<34} {speed:>9.1} MiB/s  ({:.2}× sha256; {} findings, {} rows kept)",
            speed / baseline,
            findings.len(),
            cells.map_or(0, |c| c.rows.len())
        );
    }
}
