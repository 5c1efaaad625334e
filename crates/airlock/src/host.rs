//! The Azure Functions custom-handler protocol: `GET /` for readiness, `POST /{FunctionName}`
//! with the host's envelope for triggers, and forwarded HTTP under `/api/...` for the `Api`
//! function. One span per invocation carries the invocation id and the request id.

use crate::app::Deps;
use crate::functions::events::{EventFunction, Rejected, Trigger};
use crate::functions::{
    FunctionError, FunctionName, Outcome, blob_created, reconcile, scan_completed, status_changed,
    work,
};
use crate::ports::WorkItem;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::{Instrument, error, info, info_span, warn};

/// Event Grid events are at most 1 MB; the envelope adds little.
const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

pub fn router(deps: Arc<Deps>) -> Router {
    Router::new()
        .route("/", get(|| async { "ready" }))
        .merge(crate::api::router().layer(middleware::from_fn(api_span)))
        .route(
            "/{function}",
            post(invoke).layer(DefaultBodyLimit::max(MAX_ENVELOPE_BYTES)),
        )
        .with_state(deps)
}

/// Connections waiting to be accepted: above the Functions host's concurrency (host.json
/// `maxConcurrentRequests` 100, `maxOutstandingRequests` 200) so a burst queues instead of
/// being reset; the kernel caps it at `net.core.somaxconn`.
pub const ACCEPT_BACKLOG: u32 = 1024;

/// Binds the handler's port on loopback with [`ACCEPT_BACKLOG`].
pub fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind((std::net::Ipv4Addr::LOCALHOST, port).into())?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves until `shutdown` resolves, then finishes the invocations in flight.
///
/// At most `Settings::max_connections` connections are served at once; one more is answered
/// at once with 429 and `Retry-After` (as the Functions host answers when it is too busy) and
/// closed, never left to time out or be reset. A request's headers must arrive within
/// `Settings::header_read_timeout` (hyper also closes a keep-alive connection idle that long).
pub async fn serve(
    listener: tokio::net::TcpListener,
    deps: Arc<Deps>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = deps.settings.max_connections;
    let header_read_timeout = deps.settings.header_read_timeout;
    serve_app(
        listener,
        router(deps),
        max_connections,
        header_read_timeout,
        shutdown,
    )
    .await
}

/// Serves `app` as [`serve`] does: at most `max_connections` at once (one more is answered
/// 429 and closed), headers within `header_read_timeout`, in-flight requests finished on
/// shutdown. The local stack's front door serves with it too, as Kestrel has such limits.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    header_read_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = max_connections.max(1);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                warn!(error = %e, "accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if open.load(std::sync::atomic::Ordering::SeqCst) >= max_connections {
            tokio::spawn(too_busy(stream, max_connections));
            continue;
        }
        let slot = OpenConnection::take(open.clone());
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One served connection, counted while it is open.
struct OpenConnection(Arc<std::sync::atomic::AtomicUsize>);

impl OpenConnection {
    fn take(open: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenConnection(open)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The answer to a connection over the limit: a complete HTTP response, then close. The
/// request's head is read first (for at most a second): an HTTP client that gets an answer
/// before it has sent its request takes it for a broken connection, not a 429.
async fn too_busy(mut stream: tokio::net::TcpStream, max_connections: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let body = json!({"error": {
        "code": crate::api::types::ErrorCode::TooManyRequests.as_str(),
        "message": format!("the airlock is busy ({max_connections} connections open); retry after 1 second"),
    }})
    .to_string();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn invocation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

async fn api_span(request: Request, next: Next) -> Response {
    let span = info_span!(
        "invocation",
        function = "Api",
        invocation_id = %invocation_id(request.headers()),
        method = %request.method(),
        path = %request.uri().path(),
        request_id = tracing::field::Empty,
    );
    async move {
        let response = next.run(request).await;
        info!(status = response.status().as_u16(), "api call");
        response
    }
    .instrument(span)
    .await
}

fn host_response(status: StatusCode, logs: Vec<String>) -> Response {
    (
        status,
        axum::Json(json!({"Outputs": {}, "Logs": logs, "ReturnValue": null})),
    )
        .into_response()
}

async fn invoke(
    State(deps): State<Arc<Deps>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(function) = FunctionName::parse(&name).filter(|f| *f != FunctionName::Api) else {
        let hint = if name == "Api" {
            "Api is served as forwarded HTTP under /api".to_string()
        } else {
            format!("no function named {name:?}")
        };
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": crate::api::types::ErrorCode::NotFound.as_str(), "message": hint}})),
        )
            .into_response();
    };
    let span = info_span!(
        "invocation",
        function = function.as_str(),
        invocation_id = %invocation_id(&headers),
        request_id = tracing::field::Empty,
    );
    run(&deps, function, &body).instrument(span).await
}

/// What one invocation of a non-HTTP function carries, parsed once.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// The `Reconcile` timer fired.
    Timer,
    /// Events for an event-triggered function, each typed or rejected with the reason.
    Events(Vec<Result<Trigger, Rejected>>),
    /// A queued work item for `Work`, with the queue's metadata.
    Work(WorkItem, QueueMetadata),
}

/// Why an invocation could not be read. It is answered 500: the host then retries it and,
/// when it keeps failing, moves a queue message to the poison queue or Event Grid dead-letters
/// the event, so nothing unread is ever acknowledged and lost.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("unreadable invocation: {0}")]
pub struct Unreadable(pub String);

/// What the queue trigger says about a message (`Metadata`), as far as the handler uses it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueMetadata {
    /// The queue message id.
    pub id: Option<String>,
    /// How many times the message has been dequeued, this time included.
    pub dequeue_count: Option<u32>,
    /// When the message was queued (for the latency budget: how long it waited).
    pub inserted_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Invocation {
    /// Reads the host's envelope for `function`.
    pub fn parse(function: FunctionName, body: &[u8]) -> Result<Invocation, Unreadable> {
        let kind = match function {
            FunctionName::Reconcile => return timer_in(body).map(|()| Invocation::Timer),
            FunctionName::Work => {
                return work_item_in(body).map(|(item, meta)| Invocation::Work(item, meta));
            }
            FunctionName::Api => {
                return Err(Unreadable(
                    "Api is served as forwarded HTTP under /api".into(),
                ));
            }
            FunctionName::StatusChanged => EventFunction::StatusChanged,
            FunctionName::BlobCreated => EventFunction::BlobCreated,
            FunctionName::ScanCompleted => EventFunction::ScanCompleted,
        };
        let events = events_in(body)?;
        Ok(Invocation::Events(
            events.iter().map(|raw| Trigger::parse(kind, raw)).collect(),
        ))
    }
}

async fn run(deps: &Deps, function: FunctionName, body: &[u8]) -> Response {
    let events = match Invocation::parse(function, body) {
        Ok(Invocation::Timer) => return finish(reconcile::run(deps).await),
        Ok(Invocation::Work(item, meta)) => {
            info!(message_id = ?meta.id, dequeue_count = ?meta.dequeue_count, "work item received");
            if let Some(at) = item.queued_at().or(meta.inserted_at) {
                crate::app::steps::waited("work item waited in the queue", at);
            }
            return finish(work::handle(deps, &item).await);
        }
        Ok(Invocation::Events(events)) => events,
        Err(why) => return unreadable(&why),
    };
    let mut logs = Vec::new();
    for event in events {
        let result = match event {
            Err(why @ Rejected::Malformed(_)) => {
                return unreadable(&Unreadable(why.to_string()));
            }
            // Parsed, and not ours (another event type on a shared subscription).
            Err(why @ Rejected::NotForThisFunction { .. }) => Ok(Outcome::Ignored(why.to_string())),
            Ok(trigger) => {
                info!(event_id = %trigger.id(), event_type = %trigger.event_type(), "event received");
                if let Some(at) = trigger.time() {
                    crate::app::steps::waited(trigger.waited_step(), at);
                }
                match &trigger {
                    Trigger::StatusChanged(e) => status_changed::handle(deps, e).await,
                    Trigger::BlobCreated(e) => blob_created::handle(deps, e).await,
                    Trigger::MalwareScanningResult(e) => scan_completed::handle(deps, e).await,
                }
            }
        };
        match result {
            Ok(outcome) => {
                info!(outcome = %outcome.message(), "handled");
                logs.push(outcome.message());
            }
            Err(e) => return finish(Err(e)),
        }
    }
    host_response(StatusCode::OK, logs)
}

/// An invocation the handler cannot read: 500, never 200, so that the host keeps it (retry,
/// then the poison queue or Event Grid's dead letters) and an operator can see it.
fn unreadable(why: &Unreadable) -> Response {
    error!(reason = %why.0, "unreadable invocation: answered 500 so the host keeps it");
    host_response(StatusCode::INTERNAL_SERVER_ERROR, vec![why.to_string()])
}

fn finish(result: Result<Outcome, FunctionError>) -> Response {
    match result {
        Ok(outcome) => {
            info!(outcome = %outcome.message(), "handled");
            host_response(StatusCode::OK, vec![outcome.message()])
        }
        Err(e) if e.is_retryable() => {
            warn!(error = %e, "failed; the host will retry");
            host_response(StatusCode::INTERNAL_SERVER_ERROR, vec![e.to_string()])
        }
        Err(e) => {
            // Retrying cannot help; Reconcile fails the request if it stays stuck.
            error!(error = %e, "failed permanently; acknowledged");
            host_response(StatusCode::OK, vec![format!("error: {e}")])
        }
    }
}

/// The host's envelope: `{"Data": {<binding>: value}, "Metadata": {...}}`.
fn envelope_of(body: &[u8]) -> Result<serde_json::Map<String, Value>, Unreadable> {
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|e| Unreadable(format!("the envelope is not JSON: {e}")))?;
    match envelope {
        Value::Object(map) => Ok(map),
        _ => Err(Unreadable("the envelope is not a JSON object".into())),
    }
}

/// The value of the trigger binding `name` in `Data` (or the only binding there is).
fn binding<'a>(
    envelope: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a Value, Unreadable> {
    let data = envelope
        .get("Data")
        .and_then(Value::as_object)
        .ok_or_else(|| Unreadable("the envelope has no Data object".into()))?;
    data.get(name)
        .or_else(|| (data.len() == 1).then(|| data.values().next()).flatten())
        .ok_or_else(|| Unreadable(format!("the envelope's Data has no {name:?} binding")))
}

/// A binding value as the handler means it, undoing the host's encoding.
///
/// The host (`ScriptInvocationContextExtensions.GetHttpScriptInvocationContextValue`) keeps a
/// value that serialises as a JSON object (`JObject.FromObject`) and turns anything else into
/// a JSON string with `JsonConvert.SerializeObject`. A queue message reaches it as a .NET
/// string, so `Data.item` is a JSON string *whose content is a JSON string literal* holding
/// the message: JSON inside JSON inside JSON. Metadata values (`DequeueCount`, `Id`) are
/// encoded the same way. This peels string layers until a non-string JSON value appears (at
/// most three: the host's, the serialiser's, and a sender that sent JSON text).
pub fn decode_host_value(value: &Value) -> Result<Value, String> {
    let mut current = value.clone();
    for _ in 0..3 {
        match current {
            Value::String(text) => {
                current = serde_json::from_str(&text).map_err(|e| {
                    format!("the value is not JSON: {e} (starts {:?})", preview(&text))
                })?;
            }
            other => return Ok(other),
        }
    }
    match current {
        Value::String(text) => Err(format!(
            "the value is a string nested too deep (starts {:?})",
            preview(&text)
        )),
        other => Ok(other),
    }
}

fn preview(text: &str) -> String {
    text.chars().take(60).collect()
}

/// The timer trigger's envelope: `Data.timer` is the host's `TimerInfo`, an object.
pub fn timer_in(body: &[u8]) -> Result<(), Unreadable> {
    let envelope = envelope_of(body)?;
    match decode_host_value(binding(&envelope, "timer")?).map_err(Unreadable)? {
        Value::Object(_) => Ok(()),
        _ => Err(Unreadable("the timer binding is not an object".into())),
    }
}

/// The work item in a queue trigger's envelope (`Data.item`) and the queue's metadata.
pub fn work_item_in(body: &[u8]) -> Result<(WorkItem, QueueMetadata), Unreadable> {
    let envelope = envelope_of(body)?;
    let message = decode_host_value(binding(&envelope, "item")?)
        .map_err(|e| Unreadable(format!("the queue message: {e}")))?;
    let item =
        serde_json::from_value(message).map_err(|e| Unreadable(format!("not a work item: {e}")))?;
    Ok((item, queue_metadata(envelope.get("Metadata"))))
}

/// `Metadata` of a queue trigger. Missing or odd values are `None`: the handler does not
/// depend on them, it only logs them.
fn queue_metadata(metadata: Option<&Value>) -> QueueMetadata {
    // One layer: the host's `SerializeObject` of a .NET string or number.
    let field = |name: &str| {
        metadata.and_then(|m| m.get(name)).map(|v| match v {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
            other => other.clone(),
        })
    };
    QueueMetadata {
        id: field("Id").and_then(|v| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        dequeue_count: field("DequeueCount")
            .and_then(|v| v.as_u64())
            .and_then(|n| u32::try_from(n).ok()),
        inserted_at: field("InsertionTime")
            .and_then(|v| v.as_str().map(str::to_string))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    }
}

/// The events inside an Event Grid trigger's envelope: `Data.event` as an object or an
/// array, or a JSON string (encoded once or twice) of either.
pub fn events_in(body: &[u8]) -> Result<Vec<Value>, Unreadable> {
    let envelope = envelope_of(body)?;
    let value = decode_host_value(binding(&envelope, "event")?)
        .map_err(|e| Unreadable(format!("the event: {e}")))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(_) => Ok(vec![value]),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Err(Unreadable(
            "the event is neither an object nor an array".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let obj = br#"{"Data": {"event": {"id": "1"}}, "Metadata": {}}"#;
        let string = br#"{"Data": {"event": "{\"id\": \"1\"}"}, "Metadata": {}}"#;
        let twice = br#"{"Data": {"event": "\"{\\\"id\\\": \\\"1\\\"}\""}, "Metadata": {}}"#;
        let other_binding = br#"{"Data": {"eventGridEvent": {"id": "1"}}}"#;
        let array = br#"{"Data": {"event": [{"id": "1"}, {"id": "2"}]}}"#;
        for body in [&obj[..], &string[..], &twice[..], &other_binding[..]] {
            assert_eq!(
                events_in(body).unwrap(),
                vec![json!({"id": "1"})],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(events_in(array).unwrap().len(), 2);
        for bad in [
            &b"not json"[..],
            b"{}",
            b"[]",
            br#"{"Data": {}}"#,
            br#"{"Data": {"a": {}, "b": {}}}"#,
            br#"{"Data": {"event": "{bad"}}"#,
            br#"{"Data": {"event": "\"{bad\""}}"#,
            br#"{"Data": {"event": 3}}"#,
            br#"{"Data": {"event": "\"\\\"\\\\\\\"x\\\\\\\"\\\"\""}}"#,
        ] {
            assert!(events_in(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn host_values_are_peeled_to_the_first_non_string() {
        let message = json!({"kind": "settleFile"});
        let once = Value::String(message.to_string());
        let twice = Value::String(once.to_string());
        for v in [&message, &once, &twice] {
            assert_eq!(decode_host_value(v).unwrap(), message, "{v}");
        }
        assert!(decode_host_value(&json!("plain text")).is_err());
        assert!(decode_host_value(&Value::String(json!("plain text").to_string())).is_err());
    }

    #[test]
    fn queue_metadata_as_the_host_encodes_it() {
        let inserted = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:15:03Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        // A .NET DateTimeOffset through `SerializeObject` is a JSON string literal.
        let meta = json!({"DequeueCount": "3", "Id": "\"5e1f\"", "PopReceipt": "\"AgAA\"",
            "InsertionTime": "\"2026-11-21T10:15:03+00:00\""});
        assert_eq!(
            queue_metadata(Some(&meta)),
            QueueMetadata {
                id: Some("5e1f".into()),
                dequeue_count: Some(3),
                inserted_at: Some(inserted),
            }
        );
        let plain =
            json!({"DequeueCount": 2, "Id": "abc", "InsertionTime": "2026-11-21T10:15:03+00:00"});
        assert_eq!(
            queue_metadata(Some(&plain)),
            QueueMetadata {
                id: Some("abc".into()),
                dequeue_count: Some(2),
                inserted_at: Some(inserted),
            }
        );
        let odd = json!({"InsertionTime": "yesterday"});
        assert_eq!(queue_metadata(Some(&odd)).inserted_at, None);
        assert_eq!(queue_metadata(None), QueueMetadata::default());
    }
}
