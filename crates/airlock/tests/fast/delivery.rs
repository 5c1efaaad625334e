//! The delivery engine holds the handler to Event Grid's rules: a delivery that is not
//! answered within the time limit (30 s on Azure) has failed, however far the handler got,
//! and is delivered again; one that never answers in time is dead-lettered, saying why.

use airlock::domain::EventGridEvent;
use airlock_testkit::delivery::{DeliveryEngine, DeliveryOptions, STATUS_CHANGED_TOPIC};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A stand-in handler whose `StatusChanged` answers after `slow` for its first `slow_calls`
/// invocations and at once after that; returns its URL and the invocation count.
async fn handler(slow_calls: usize, slow: Duration) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/StatusChanged",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < slow_calls {
                    tokio::time::sleep(slow).await;
                }
                axum::Json(json!({"Outputs": {}, "Logs": [], "ReturnValue": null}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn status_changed() -> EventGridEvent {
    serde_json::from_value(json!({
        "id": "e-1", "subject": "/requests/r-1", "eventType": "Airlock.StatusChanged",
        "eventTime": "2026-12-03T09:00:00Z", "data": {"requestId": "r-1"}, "dataVersion": "1.0"
    }))
    .unwrap()
}

fn options(max_attempts: u32) -> DeliveryOptions {
    DeliveryOptions {
        // 30 s on Azure; short here so the test is quick. The handler's slow answer is
        // well past it either way.
        timeout: Duration::from_millis(300),
        retry_base: Duration::ZERO,
        max_attempts,
        ..DeliveryOptions::default()
    }
}

#[tokio::test]
async fn a_delivery_past_the_time_limit_fails_and_is_delivered_again() {
    let (url, calls) = handler(1, Duration::from_secs(5)).await;
    let engine = DeliveryEngine::new(url, options(5));
    engine.publish(STATUS_CHANGED_TOPIC, status_changed());
    let deliveries = engine.settle(|| {}).await.unwrap();
    assert_eq!(deliveries, 2, "the slow delivery was retried once");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(engine.dead_letters().is_empty());
}

#[tokio::test]
async fn a_handler_that_never_answers_in_time_gets_its_delivery_dead_lettered() {
    let (url, calls) = handler(usize::MAX, Duration::from_secs(5)).await;
    let engine = DeliveryEngine::new(url, options(3));
    engine.publish(STATUS_CHANGED_TOPIC, status_changed());
    engine.settle(|| {}).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let dead = engine.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].event.id.as_str(), dead[0].attempts), ("e-1", 3));
    assert!(
        dead[0].last_error.contains("timed out"),
        "{}",
        dead[0].last_error
    );
}

/// Event Grid's schedule, as `infra/azure` configures the subscriptions (30 attempts, a day to
/// live): the waits between attempts, and a delivery past its time to live dead-lettered even
/// with attempts left.
#[test]
fn the_retry_schedule_is_event_grids() {
    let grid = DeliveryOptions::event_grid();
    assert_eq!(
        (grid.max_attempts, grid.event_ttl),
        (30, Duration::from_secs(86_400))
    );
    let waits: Vec<u64> = (1..=11).map(|n| grid.retry_delay(n).as_secs()).collect();
    assert_eq!(
        waits,
        vec![
            10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 43_200
        ]
    );
    // The local stack's tests keep their quick doubling.
    let quick = DeliveryOptions::default();
    assert_eq!(quick.retry_delay(1), Duration::from_millis(400));
}

#[tokio::test]
async fn an_event_past_its_time_to_live_is_dead_lettered_and_can_be_replayed() {
    // Slow once (the delivery fails), then answers at once: the outage is over.
    let (url, calls) = handler(1, Duration::from_secs(5)).await;
    let engine = DeliveryEngine::new(
        url,
        DeliveryOptions {
            // Attempts to spare, but a time to live shorter than the first wait.
            event_ttl: Duration::from_millis(100),
            retry_base: Duration::from_millis(200),
            ..options(30)
        },
    );
    engine.publish(STATUS_CHANGED_TOPIC, status_changed());
    engine.settle(|| {}).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let dead = engine.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].last_error.contains("time to live"),
        "{}",
        dead[0].last_error
    );
    // The operator replays: delivered this time, and the list is empty.
    assert_eq!(engine.replay_dead_letters(), 1);
    engine.settle(|| {}).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(engine.dead_letters().is_empty());
    assert_eq!(engine.replay_dead_letters(), 0);
}

/// While the host holds deliveries (its handler down), nothing is delivered and nothing is
/// spent: the event waits, and goes once deliveries resume.
#[tokio::test]
async fn a_paused_engine_delivers_nothing_until_it_resumes() {
    let (url, calls) = handler(0, Duration::ZERO).await;
    let engine = Arc::new(DeliveryEngine::new(url, options(5)));
    engine.pause(true);
    engine.publish(STATUS_CHANGED_TOPIC, status_changed());
    assert_eq!(engine.dispatch_due(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(engine.pending(), 1);
    engine.pause(false);
    assert_eq!(engine.dispatch_due(), 1);
    for _ in 0..50 {
        if calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
