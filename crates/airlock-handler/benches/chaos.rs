//! The chaos run (issue 15): N requests of mixed flows (approve, reject, changes requested and
//! resubmitted, cancelled in draft and in review, EICAR blocked, a quorum of two, revoked)
//! driven through the whole local stack while faults are injected: every delivery duplicated
//! and reordered on Event Grid's retry schedule, the handler SIGKILLed every 20 s and once kept
//! down for five minutes, publishes failing, StatusChanged / BlobCreated / ScanCompleted
//! deliveries lost, Blob and Cosmos calls slowed and failed through a proxy, Azurite restarted
//! on its data. Then every request is checked (see `airlock_local::chaos`) and the counts
//! printed; the exit status is non-zero when anything is stuck, lost or inconsistent.
//!
//! `cargo bench -p airlock-handler --bench chaos` (N: `AIRLOCK_CHAOS_REQUESTS`, default 1000;
//! `AIRLOCK_CHAOS_SMALL=1` for the compressed plan the stack test runs). `Reconcile` fires every
//! 30 s and re-drives after 60 s (Azure: 5 and 5 minutes), so healing shows within a run.

use airlock_local::chaos::{ChaosPlan, run};
use airlock_local::testing::{stack_options, start_stack_with};
use airlock_testkit::delivery::DeliveryOptions;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let requests = std::env::var("AIRLOCK_CHAOS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let plan = if std::env::var_os("AIRLOCK_CHAOS_SMALL").is_some() {
        ChaosPlan::small(requests)
    } else {
        ChaosPlan::full(requests)
    };
    let delivery = DeliveryOptions {
        duplicate: true,
        reorder: true,
        ..DeliveryOptions::event_grid()
    };
    let mut options = stack_options(
        env!("CARGO_BIN_EXE_handler").as_ref(),
        "chaos",
        delivery,
        airlock_testkit::demo::workspaces(),
        Duration::from_secs(30),
        vec![
            ("AIRLOCK_REDRIVE_AFTER_SECONDS".into(), "60".into()),
            ("AIRLOCK_OUTBOX_GRACE_SECONDS".into(), "10".into()),
            // The driver's few users poll hard; the rate limit has its own tests.
            ("AIRLOCK_API_CALLS_PER_MINUTE".into(), "0".into()),
        ],
    );
    options.fault_proxies = true;
    let stack = Arc::new(start_stack_with(options).await);
    eprintln!("chaos: {requests} requests, plan {plan:?}");
    // Ctrl-C or SIGTERM stops the stack (and every process it started) before exiting.
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    let report = tokio::select! {
        report = run(stack.clone(), &plan) => report,
        () = stop => {
            eprintln!("chaos: interrupted; stopping the stack");
            drop(stack);
            std::process::exit(130);
        }
    };
    println!("{report}");
    let clean = report.is_clean();
    drop(stack);
    if !clean {
        std::process::exit(1);
    }
}
