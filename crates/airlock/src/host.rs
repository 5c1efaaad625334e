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
    let max_connections = deps.settings.max_connections.max(1);
    let header_read_timeout = deps.settings.header_read_timeout;
    let app = router(deps);
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

/// The answer to a connection over the limit: a complete HTTP response, then close.
async fn too_busy(mut stream: tokio::net::TcpStream, max_connections: usize) {
    use tokio::io::AsyncWriteExt;
    let body = json!({"error": {
        "code": "TooManyRequests",
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
            axum::Json(json!({"error": {"code": "NotFound", "message": hint}})),
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
    /// A queued work item for `Work`.
    Work(WorkItem),
}

impl Invocation {
    /// Reads the host's envelope for `function`; `Err` when the envelope itself is unusable.
    pub fn parse(function: FunctionName, body: &[u8]) -> Result<Invocation, String> {
        let kind = match function {
            FunctionName::Reconcile => return Ok(Invocation::Timer),
            FunctionName::Work => return work_item_in(body).map(Invocation::Work),
            FunctionName::Api => {
                return Err("Api is served as forwarded HTTP under /api".into());
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
        Ok(Invocation::Work(item)) => return finish(work::handle(deps, &item).await),
        Ok(Invocation::Events(events)) => events,
        Err(why) => {
            // Retrying a malformed delivery cannot help: acknowledge it and say why.
            warn!(reason = %why, "malformed invocation acknowledged");
            return host_response(StatusCode::OK, vec![format!("ignored: {why}")]);
        }
    };
    let mut logs = Vec::new();
    for event in events {
        let result = match event {
            Err(why) => Ok(Outcome::Ignored(why.to_string())),
            Ok(trigger) => {
                info!(event_id = %trigger.id(), event_type = %trigger.event_type(), "event received");
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

/// The work item in a queue trigger's envelope: `Data.<binding>`, the message text (JSON),
/// or the JSON itself (the host passes a JSON message either way).
pub fn work_item_in(body: &[u8]) -> Result<WorkItem, String> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|e| format!("the envelope is not JSON: {e}"))?;
    let message = envelope
        .get("Data")
        .and_then(Value::as_object)
        .and_then(|d| d.get("item").or_else(|| d.values().next()))
        .ok_or("the envelope has no Data binding")?;
    let value = match message {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("the message is not JSON: {e}"))?
        }
        other => other.clone(),
    };
    serde_json::from_value(value).map_err(|e| format!("not a work item: {e}"))
}

/// The events inside a host envelope: `Data.<binding>` as an object, an array, or a JSON
/// string of either.
pub fn events_in(body: &[u8]) -> Result<Vec<Value>, String> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|e| format!("the envelope is not JSON: {e}"))?;
    let data = envelope
        .get("Data")
        .and_then(Value::as_object)
        .ok_or("the envelope has no Data object")?;
    let binding = data
        .get("event")
        .or_else(|| data.values().next())
        .ok_or("the envelope's Data has no binding")?;
    let value = match binding {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("the event string is not JSON: {e}"))?
        }
        other => other.clone(),
    };
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(_) => Ok(vec![value]),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            Err("the event is neither an object nor an array".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let obj = br#"{"Data": {"event": {"id": "1"}}, "Metadata": {}}"#;
        let string = br#"{"Data": {"event": "{\"id\": \"1\"}"}, "Metadata": {}}"#;
        let other_binding = br#"{"Data": {"eventGridEvent": {"id": "1"}}}"#;
        let array = br#"{"Data": {"event": [{"id": "1"}, {"id": "2"}]}}"#;
        for body in [&obj[..], &string[..], &other_binding[..]] {
            assert_eq!(events_in(body).unwrap(), vec![json!({"id": "1"})]);
        }
        assert_eq!(events_in(array).unwrap().len(), 2);
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"Data": {}}"#,
            br#"{"Data": {"event": "{bad"}}"#,
            br#"{"Data": {"event": 3}}"#,
        ] {
            assert!(events_in(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
