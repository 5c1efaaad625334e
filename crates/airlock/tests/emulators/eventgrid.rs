//! The Event Grid publisher (on the shared REST client, azure_core's pipeline) against a
//! local stand-in topic served over TLS as Event Grid is: auth header, batching under 1 MB,
//! retry with back-off, and clear errors.

use airlock::adapters::azure::eventgrid::{
    EventGridPublisher, MAX_BATCH_BYTES, TopicEndpoint, batches,
};
use airlock::adapters::azure::rest::Retry;
use airlock::domain::{EventGridEvent, Topic};
use airlock::ports::{EventPublisher, PortError};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn event(i: usize, padding: usize) -> EventGridEvent {
    EventGridEvent {
        id: format!("e{i}"),
        topic: None,
        subject: "/workspaces/ws/requests/r".into(),
        event_type: "Airlock.Notification".into(),
        event_time: chrono::Utc::now(),
        data: json!({"pad": "x".repeat(padding)}),
        data_version: "1".into(),
        metadata_version: None,
    }
}

/// The `aud` claim of a token.
fn audience(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["aud"].as_str().map(str::to_string)
}

#[derive(Default)]
struct Seen {
    bodies: Vec<Vec<Value>>,
    keys: Vec<Option<String>>,
    fail_first: usize,
    status: Option<u16>,
}

async fn topic(seen: Arc<Mutex<Seen>>) -> String {
    let app = axum::Router::new().route(
        "/api/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut s = seen.lock().unwrap();
                // The audience of the bearer token: Event Grid's.
                s.keys.push(
                    headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .and_then(audience),
                );
                if let Some(code) = s.status {
                    return StatusCode::from_u16(code).unwrap();
                }
                if s.fail_first > 0 {
                    s.fail_first -= 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                assert!(
                    body.len() <= MAX_BATCH_BYTES,
                    "batch of {} bytes",
                    body.len()
                );
                s.bodies.push(serde_json::from_str(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/api/events", listener.local_addr().unwrap());
    let acceptor = airlock_local::tls::acceptor(&airlock_local::testing::tls_dir()).unwrap();
    airlock_local::tls::serve(listener, acceptor, app);
    url
}

fn publisher(url: String) -> EventGridPublisher {
    EventGridPublisher::with_retry(
        HashMap::from([(
            Topic::Notification,
            TopicEndpoint {
                url,
                credential: Arc::new(airlock_local::identity::LocalEntraCredential::function_app()),
            },
        )]),
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(5),
        },
    )
}

#[tokio::test]
async fn large_publishes_are_split_under_one_megabyte() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let p = publisher(topic(seen.clone()).await);
    let events: Vec<_> = (0..12).map(|i| event(i, 200_000)).collect();
    p.publish(Topic::Notification, &events).await.unwrap();
    let s = seen.lock().unwrap();
    assert!(s.bodies.len() >= 3, "{} batches", s.bodies.len());
    let ids: Vec<String> = s
        .bodies
        .iter()
        .flatten()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        (0..12).map(|i| format!("e{i}")).collect::<Vec<_>>(),
        "all events, in order, once"
    );
    assert!(
        s.keys
            .iter()
            .all(|k| k.as_deref() == Some("https://eventgrid.azure.net")),
        "{:?}",
        s.keys
    );
    assert_eq!(s.bodies[0][0]["eventType"], "Airlock.Notification");
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let seen = Arc::new(Mutex::new(Seen {
        fail_first: 2,
        ..Default::default()
    }));
    let p = publisher(topic(seen.clone()).await);
    p.publish(Topic::Notification, &[event(1, 10)])
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().keys.len(), 3, "two 503s then success");
}

/// Publishes one event to a topic that answers every call with `code`: the error and how
/// many calls were made.
async fn refused_with(code: u16) -> (PortError, usize) {
    let seen = Arc::new(Mutex::new(Seen {
        status: Some(code),
        ..Default::default()
    }));
    let err = publisher(topic(seen.clone()).await)
        .publish(Topic::Notification, &[event(1, 10)])
        .await
        .unwrap_err();
    let attempts = seen.lock().unwrap().keys.len();
    (err, attempts)
}

#[tokio::test]
async fn errors_say_whether_a_retry_can_help() {
    let seen = Arc::new(Mutex::new(Seen {
        fail_first: 100,
        ..Default::default()
    }));
    let p = publisher(topic(seen.clone()).await);
    let err = p
        .publish(Topic::Notification, &[event(1, 10)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Transient(ref m) if m.contains("5 attempts")),
        "{err}"
    );
    // Our identity refused (no EventGrid Data Sender, or not yet propagated): not retried
    // here, reported as Forbidden, which the outbox keeps and the host retries, with an alert.
    for code in [401, 403] {
        let (err, attempts) = refused_with(code).await;
        assert!(
            matches!(err, PortError::Forbidden(ref m) if m.contains(&code.to_string())),
            "{err}"
        );
        assert!(err.is_retryable());
        assert_eq!(attempts, 1, "a {code} is not retried at once");
    }
    let (err, _) = refused_with(400).await;
    assert!(
        matches!(err, PortError::Permanent(ref m) if m.contains("400")),
        "{err}"
    );
    let err = publisher("https://127.0.0.1:9/api/events".into())
        .publish(Topic::StatusChanged, &[event(1, 10)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Permanent(ref m) if m.contains("no endpoint")),
        "{err}"
    );
    let err = publisher("https://127.0.0.1:9/api/events".into())
        .publish(Topic::Notification, &[event(1, 10)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Transient(ref m) if m.contains("network")),
        "{err}"
    );
}

/// Our identity's token never leaves in clear: a plain-HTTP topic gets no request at all.
#[tokio::test]
async fn no_token_is_sent_over_plain_http() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let https = topic(seen.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = format!("http://{}/api/events", listener.local_addr().unwrap());
    let caught = Arc::new(Mutex::new(0usize));
    let counter = caught.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            *counter.lock().unwrap() += 1;
        }
    });
    let err = publisher(plain)
        .publish(Topic::Notification, &[event(1, 10)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Permanent(ref m) if m.contains("https")),
        "{err}"
    );
    assert_eq!(*caught.lock().unwrap(), 0, "no connection was even opened");
    // The same publisher over TLS delivers.
    publisher(https)
        .publish(Topic::Notification, &[event(2, 10)])
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().bodies.len(), 1);
}

#[test]
fn an_oversized_event_is_refused() {
    assert!(batches(&[event(1, MAX_BATCH_BYTES)], MAX_BATCH_BYTES).is_err());
    assert_eq!(batches(&[], MAX_BATCH_BYTES).unwrap().len(), 0);
}
