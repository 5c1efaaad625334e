//! Throughput and the latency budget through the whole local stack with the release
//! `handler`: batches of exports (1 MiB each, scanning on, `AIRLOCK_BENCH_CONCURRENCY` at
//! once) one after the other on one stack, so the workspace fills up batch by batch. Each
//! request is created, uploaded through its link, submitted, waited for in review, approved
//! and waited for approved.
//!
//! Prints per batch the requests completed per minute and submit → in_review and approve →
//! approved (p50/p99), then **the budget**: for every step the audit trail records between
//! submit and in review, and between approve and approved, how long after the step before it
//! (p50/p99), so a change shows which step it moved. Each batch is also given as a ratio to
//! batch 1 of the same run (the workspace filling up); the previous round's numbers are
//! printed above as the baseline to beat.
//!
//! `cargo bench -p airlock-handler --bench throughput` (`AIRLOCK_BENCH_REQUESTS` per batch,
//! default 200; `AIRLOCK_BENCH_BATCHES`, default 3; `AIRLOCK_BENCH_CONCURRENCY`, default 16;
//! `AIRLOCK_BENCH_DELIVERIES`, event deliveries in flight, default the stack's;
//! `AIRLOCK_INLINE_HASH_MAX_BYTES` is passed to the handler). Also prints the CPU time each
//! process of the stack spent per batch.

use airlock::domain::Workspace;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WS: &str = "ws-bench";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile (0..=100) of `values`, sorted in place.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// One request's timings and its audit trail (read once the batch's clock has stopped).
struct Flow {
    id: String,
    to_review: Duration,
    to_approved: Duration,
    trail: Vec<Value>,
}

async fn one_export(api: &StackClient<'_>, rita: &str, mona: &str, n: usize) -> Flow {
    let id = api.create(WS, rita, "export").await;
    let link = api.link(WS, &id, rita).await;
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 + n) as u8).collect();
    link.upload("results/table.bin", data)
        .await
        .expect("upload");
    let submitted = Instant::now();
    api.act(WS, &id, "submit", rita, None).await;
    api.wait(WS, &id, rita, "in_review").await;
    let to_review = submitted.elapsed();
    let approving = Instant::now();
    api.act(
        WS,
        &id,
        "review",
        mona,
        Some(json!({"decision": "approved", "explanation": "bench"})),
    )
    .await;
    api.wait(WS, &id, rita, "approved").await;
    let to_approved = approving.elapsed();
    Flow {
        id,
        to_review,
        to_approved,
        trail: Vec::new(),
    }
}

/// Reads the audit trail of each flow, after the batch: a researcher does not read it while
/// the request moves, and on the emulator (which scans a whole container for every query)
/// reading it inside the batch would slow the pipeline it measures.
async fn read_trails(api: &StackClient<'_>, rita: &str, flows: &mut [Flow]) {
    for f in flows {
        let trail = api
            .ok(
                "GET",
                &format!("/workspaces/{WS}/requests/{}/history", f.id),
                rita,
                None,
            )
            .await;
        f.trail = trail["history"].as_array().cloned().unwrap_or_default();
    }
}

/// The steps of `trail` from the entry that moved the request to `from` up to the one that
/// moved it to `to`: each step's name and its time after the step before it, in seconds.
fn steps(trail: &[Value], from: &str, to: &str) -> Vec<(String, f64)> {
    let at = |e: &Value| {
        e["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let Some(start) = trail.iter().position(|e| e["to"] == from) else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut previous = at(&trail[start]);
    for e in &trail[start + 1..] {
        let (Some(p), Some(now)) = (previous, at(e)) else {
            continue;
        };
        let name = match e["to"].as_str() {
            Some(status) => format!("{} -> {status}", e["action"].as_str().unwrap_or("?")),
            None => e["action"].as_str().unwrap_or("?").to_string(),
        };
        // Names that carry a file name are grouped by their verb.
        let name = name.split(':').next().unwrap_or(&name).to_string();
        out.push((name, (now - p).num_milliseconds() as f64 / 1000.0));
        previous = Some(now);
        if e["to"] == to {
            break;
        }
    }
    out
}

fn budget(title: &str, flows: &[Flow], from: &str, to: &str) {
    let mut per_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for f in flows {
        for (name, secs) in steps(&f.trail, from, to) {
            if !order.contains(&name) {
                order.push(name.clone());
            }
            per_step.entry(name).or_default().push(secs);
        }
    }
    println!("  budget {title} (time after the step before, s):");
    for name in order {
        let mut v = per_step.remove(&name).unwrap_or_default();
        let n = v.len();
        let p50 = percentile(&mut v, 50.0);
        let p99 = percentile(&mut v, 99.0);
        println!("    {name:<48} p50 {p50:>6.3}  p99 {p99:>6.3}  ({n} steps)");
    }
}

/// The handler's own budget: every `airlock::steps` event it logged since `from` (a byte
/// offset into its log), by function and step: p50/p99 of the step's time and the total, so
/// the steps that work (record writes, hashing) and those that wait (a trigger in the queue
/// or in Event Grid) are seen apart. Returns the new offset.
fn handler_budget(log: &std::path::Path, from: u64) -> u64 {
    use std::io::{Read, Seek};
    let Ok(mut file) = std::fs::File::open(log) else {
        return from;
    };
    let mut text = String::new();
    if file.seek(std::io::SeekFrom::Start(from)).is_err() || file.read_to_string(&mut text).is_err()
    {
        return from;
    }
    let mut per_step: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["target"] != "airlock::steps" {
            continue;
        }
        let (Some(step), Some(ms)) = (v["fields"]["step"].as_str(), v["fields"]["ms"].as_f64())
        else {
            continue;
        };
        let function = v["span"]["function"].as_str().unwrap_or("?").to_string();
        let kind = if v["fields"]["waited"] == true {
            "waited"
        } else {
            "worked"
        };
        per_step
            .entry((function, format!("{kind}: {step}")))
            .or_default()
            .push(ms);
    }
    println!("  the handler's steps (ms; from its log, every invocation of the batch):");
    for ((function, step), mut v) in per_step {
        let n = v.len();
        let total: f64 = v.iter().sum();
        let p50 = percentile(&mut v, 50.0);
        let p99 = percentile(&mut v, 99.0);
        println!(
            "    {function:<14} {step:<44} p50 {p50:>7.1}  p99 {p99:>7.1}  total {:>7.1} s  ({n})",
            total / 1000.0
        );
    }
    from + text.len() as u64
}

/// CPU time (user + system, in clock ticks) per process name, from /proc: what each part of
/// the stack (the handler, Azurite and the Cosmos emulator in node, clamd, this bench with the
/// stack's router, storage check and watcher) spent; and, under `"(machine)"`, the machine's
/// busy and idle ticks from /proc/stat.
fn cpu_by_process() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(stat) = std::fs::read_to_string("/proc/stat")
        && let Some(line) = stat.lines().next()
    {
        // cpu user nice system idle iowait irq softirq steal ...
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() >= 8 {
            out.insert(
                "(machine busy)".into(),
                v[0] + v[1] + v[2] + v[5] + v[6] + v[7],
            );
            out.insert("(machine idle)".into(), v[3] + v[4]);
        }
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        *out.entry(comm).or_default() += ticks(11) + ticks(12);
    }
    out
}

/// Prints where the CPU went between two [`cpu_by_process`] snapshots: how busy the machine
/// was, and each process's share of the CPU time the processes spent.
fn cpu_report(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) {
    let delta = |name: &str| {
        after
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(name).copied().unwrap_or(0)) as f64
    };
    let (busy, idle) = (delta("(machine busy)"), delta("(machine idle)"));
    let mut spent: Vec<(String, f64)> = after
        .keys()
        .filter(|name| !name.starts_with('('))
        .map(|name| (name.clone(), delta(name)))
        .filter(|(_, ticks)| *ticks > 0.0)
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = spent.iter().map(|(_, t)| t).sum();
    println!(
        "  CPU: the machine was {:.0} % busy; the processes' shares of their CPU time:",
        100.0 * busy / (busy + idle).max(1.0)
    );
    for (name, ticks) in spent.iter().take(6) {
        println!("    {name:<16} {:>5.1} %", 100.0 * ticks / total.max(1.0));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let per_batch = env_or("AIRLOCK_BENCH_REQUESTS", 200);
    let batches = env_or("AIRLOCK_BENCH_BATCHES", 3);
    let concurrency = env_or("AIRLOCK_BENCH_CONCURRENCY", 16);
    let ws: Workspace = serde_json::from_value(json!({
        "id": WS, "displayName": "Bench", "shortId": "bench", "tokenAudience": audience(WS),
        "policy": {"scanRequired": true},
    }))
    .unwrap();
    let mut handler_env = vec![
        ("AIRLOCK_API_CALLS_PER_MINUTE".into(), "0".into()),
        // The latency budget's step events (`airlock::app::steps`).
        ("AIRLOCK_LOG".into(), "info,airlock::steps=debug".into()),
    ];
    // To compare the hash in the delivery with the hash through the queue.
    if let Ok(v) = std::env::var("AIRLOCK_INLINE_HASH_MAX_BYTES") {
        handler_env.push(("AIRLOCK_INLINE_HASH_MAX_BYTES".into(), v));
    }
    let delivery = DeliveryOptions {
        concurrency: env_or(
            "AIRLOCK_BENCH_DELIVERIES",
            DeliveryOptions::default().concurrency,
        ),
        ..Default::default()
    };
    println!(
        "event deliveries in flight at most: {} (AIRLOCK_BENCH_DELIVERIES); AIRLOCK_INLINE_HASH_MAX_BYTES {}",
        delivery.concurrency,
        std::env::var("AIRLOCK_INLINE_HASH_MAX_BYTES").unwrap_or_else(|_| "default".into())
    );
    let stack = start_stack(
        env!("CARGO_BIN_EXE_handler").as_ref(),
        "tput",
        delivery,
        vec![ws],
        Duration::from_secs(60),
        handler_env,
    )
    .await;
    let log = stack.log_dir.join("handler.log");
    let mut log_read = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    stack.scan_times.take();
    let api = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], WS);
    let mona = stack.token("mona", &["AirlockManager"], WS);
    println!(
        "{batches} batches of {per_batch} exports of 1 MiB, {concurrency} at once, scanning on, one stack"
    );
    println!(
        "baseline (previous round): completed per minute 389 / 273 / 191; batch 1 submit -> in_review p50 1.18 s, p99 1.57 s; approve -> approved p50 0.91 s, p99 1.38 s"
    );
    // Batch 1 of this run is the baseline the later batches are measured against.
    let mut first: Option<(f64, f64)> = None;
    for batch in 1..=batches {
        let started = Instant::now();
        let cpu_before = cpu_by_process();
        let mut flows: Vec<Flow> = futures::stream::iter(0..per_batch)
            .map(|n| one_export(&api, &rita, &mona, batch * per_batch + n))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let cpu_after = cpu_by_process();
        read_trails(&api, &rita, &mut flows).await;
        let mut review: Vec<f64> = flows.iter().map(|f| f.to_review.as_secs_f64()).collect();
        let mut approve: Vec<f64> = flows.iter().map(|f| f.to_approved.as_secs_f64()).collect();
        println!(
            "batch {batch} (the workspace holds {} requests): {:.0} completed per minute; submit -> in_review p50 {:.2} s, p99 {:.2} s; approve -> approved p50 {:.2} s, p99 {:.2} s",
            batch * per_batch,
            flows.len() as f64 / minutes,
            percentile(&mut review, 50.0),
            percentile(&mut review, 99.0),
            percentile(&mut approve, 50.0),
            percentile(&mut approve, 99.0),
        );
        let per_minute = flows.len() as f64 / minutes;
        let review_p99 = percentile(&mut review, 99.0);
        let (base_rate, base_p99) = *first.get_or_insert((per_minute, review_p99));
        println!(
            "  against batch 1 of this run: throughput x{:.2}, submit -> in_review p99 x{:.2}",
            per_minute / base_rate,
            review_p99 / base_p99
        );
        budget("submit -> in_review", &flows, "submitted", "in_review");
        budget(
            "approve -> approved",
            &flows,
            "approval_in_progress",
            "approved",
        );
        // Reconcile once the batch is done: nothing is left to heal, so what it costs is its
        // queries alone. Each is an index seek on Cosmos DB; the emulator scans every item of
        // the container for every query, so there it grows with the workspace (its floor).
        let mut passes = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            stack.engine.reconcile().await.expect("Reconcile runs");
            passes.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "  a Reconcile pass with nothing to heal: {:.1} ms (median of 3; the emulator scans every item per query)",
            percentile(&mut passes, 50.0)
        );
        log_read = handler_budget(&log, log_read);
        cpu_report(&cpu_before, &cpu_after);
        let mut scans: Vec<f64> = stack
            .scan_times
            .take()
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        println!(
            "  clamd's own time per scan (ms, the local Defender): p50 {:.1}  p99 {:.1}  ({} scans)",
            percentile(&mut scans, 50.0),
            percentile(&mut scans, 99.0),
            scans.len()
        );
    }
}
