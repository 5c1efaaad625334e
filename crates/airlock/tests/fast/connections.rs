//! Back-pressure at the handler's socket: connections over the limit are answered 429 with
//! `Retry-After` and closed (never left to be reset), a client that trickles its headers is
//! cut off, and a freed slot serves again.

use crate::common::*;
use airlock::app::Settings;
use airlock_testkit::in_memory::{InMemoryAirlock, InMemoryOptions};
use airlock_testkit::memory::ManualClock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADERS_WITHIN: Duration = Duration::from_secs(3);

async fn airlock(max_connections: usize) -> InMemoryAirlock {
    InMemoryAirlock::start(InMemoryOptions {
        tre_id: TRE.into(),
        workspaces: vec![workspace(WS1, "one", serde_json::json!({}))],
        clock: Arc::new(ManualClock::default()),
        settings: Settings {
            max_connections,
            header_read_timeout: HEADERS_WITHIN,
            ..Settings::default()
        },
        port: None,
        jwks_url: None,
        leeway_secs: 5,
    })
    .await
    .unwrap()
}

fn address(a: &InMemoryAirlock) -> String {
    a.base.trim_start_matches("http://").to_string()
}

/// Sends a readiness probe on a fresh connection and reads the whole answer.
async fn probe(address: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(address).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn connections_over_the_limit_are_answered_429_not_reset() {
    let a = airlock(4).await;
    let address = address(&a);
    // Four clients that trickle their headers hold every slot (a slow-connection attack).
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&address).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A flood meanwhile: each one gets a complete answer saying when to come back.
    let flood: Vec<_> = (0..50).map(|_| probe(&address)).collect();
    for answer in futures::future::join_all(flood).await {
        let answer = answer.expect("answered, not reset");
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer}"
        );
        assert!(answer.contains("TooManyRequests"), "{answer}");
    }
    // A slot freed is a slot served.
    drop(slow.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = probe(&address).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The trickling clients are cut off once the header timeout passes.
    let started = Instant::now();
    for mut s in slow {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "a client that never finishes its headers is closed"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited <= HEADERS_WITHIN + Duration::from_secs(2),
        "{waited:?}"
    );
    let answer = probe(&address).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// On shutdown (the host's SIGTERM) an invocation already under way is finished and answered
/// before the server stops, while the port stops taking new connections.
#[tokio::test]
async fn shutdown_finishes_the_invocation_in_flight() {
    let a = airlock(16).await;
    let listener = airlock::host::bind(0).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(airlock::host::serve(listener, a.deps.clone(), async {
        let _ = stopped.await;
    }));
    // A timer invocation under way: its headers are in, its payload still arriving.
    let payload = br#"{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}"#;
    let mut s = TcpStream::connect(&address).await.unwrap();
    s.write_all(
        format!(
            "POST /Reconcile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             X-Azure-Functions-InvocationId: in-flight\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.write_all(&payload[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the invocation in flight"
    );
    assert!(
        TcpStream::connect(&address).await.is_err(),
        "no new connection is taken once shutting down"
    );
    s.write_all(&payload[10..]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once the invocation is answered")
        .unwrap()
        .unwrap();
}
