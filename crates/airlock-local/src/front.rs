//! The Functions host's front door, for the local stack. On Azure, callers reach only the
//! host: it forwards `/api/...` to the handler (`enableForwardingHttpRequest`) and invokes the
//! other functions itself, on the handler's port, which nothing outside can reach. Here the
//! same: the handler listens on a private port that only the local router knows, and this
//! listener, on the API port people use, forwards `/api/...` and answers 404 for anything
//! else, so nobody can post a forged event (a clean scan verdict, say) to a function.
//!
//! Like the host with host.json's `http` settings, it forwards at most
//! [`MAX_CONCURRENT_REQUESTS`] at once and holds at most [`MAX_OUTSTANDING_REQUESTS`]
//! (running or waiting); one more is answered 429 with `Retry-After` at once.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Connections the front door holds open at once; one more is answered 429 and closed (the
/// machine's file descriptors, 1,024 by default, must not run out).
pub const MAX_CONNECTIONS: usize = 512;
/// How long a connection may take to send a request's headers. Kestrel has 30 s for that
/// (`RequestHeadersTimeout`) and 130 s for an idle keep-alive connection (`KeepAliveTimeout`);
/// hyper has one timer for both, so 2 minutes, as the handler has: longer than clients keep
/// pooled connections (reqwest: 90 s), so no client reuses one that was just closed.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// host.json `extensions.http.maxConcurrentRequests`.
pub const MAX_CONCURRENT_REQUESTS: usize = 100;
/// host.json `extensions.http.maxOutstandingRequests`.
pub const MAX_OUTSTANDING_REQUESTS: usize = 200;

pub struct FrontDoor {
    /// `http://127.0.0.1:PRIVATE_PORT`: the handler.
    pub handler_url: String,
    http: reqwest::Client,
    running: Arc<tokio::sync::Semaphore>,
    outstanding: std::sync::atomic::AtomicUsize,
}

/// The Functions host version the stand-in claims (`X-Azure-Functions-HostVersion`).
pub const HOST_VERSION: &str = "4.1040.100";

/// Headers about a body, dropped with the body when the host does not forward it.
fn is_content_header(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH || name == header::CONTENT_TYPE
}

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
];

impl FrontDoor {
    pub fn new(handler_url: String) -> Self {
        FrontDoor {
            handler_url,
            // Idle connections are dropped long before the handler closes them (2 min), so a
            // reused one never races its close.
            // The host hands the handler's answer back as it is: a redirect goes to the caller.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            running: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            outstanding: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Routes on the *normalised* path, as Kestrel does before the host's routing sees it:
    /// `/api/../ScanCompleted` and `/api/%2e%2e/ScanCompleted` are `/ScanCompleted`, which is
    /// no HTTP route (404), never a function endpoint.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        let front = self.clone();
        axum::Router::new().fallback(move |request: Request| {
            let front = front.clone();
            async move {
                let Some(path) = normalize_path(request.uri().path()) else {
                    return bad_path();
                };
                if path == "/api" || path.starts_with("/api/") {
                    forward(front, path, request).await
                } else {
                    not_here().await
                }
            }
        })
    }
}

/// The request path as Kestrel hands it to routing: percent-decoded (an encoded `/` stays
/// inside its segment), dot segments removed (RFC 3986 §5.2.4), then re-encoded for the hop
/// to the handler. `None` when the decoded path is not UTF-8 (Kestrel answers 400).
pub fn normalize_path(raw: &str) -> Option<String> {
    use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
    /// What a path segment may carry unencoded (RFC 3986 pchar less `%`).
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'/')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'[')
        .add(b'\\')
        .add(b']')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    let mut out: Vec<String> = Vec::new();
    let segments: Vec<&str> = raw.trim_start_matches('/').split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        match decoded.as_ref() {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            other => {
                trailing_slash = false;
                out.push(utf8_percent_encode(other, SEGMENT).to_string());
            }
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if trailing_slash && !path.ends_with('/') {
        path.push('/');
    }
    Some(path)
}

fn bad_path() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {
            "code": "BadRequest",
            "message": "the request path is not valid UTF-8 once decoded"
        }})),
    )
        .into_response()
}

async fn not_here() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": {
            "code": "NotFound",
            "message": "only /api/... is served here; functions are invoked by the Functions host"
        }})),
    )
        .into_response()
}

/// Forwards one request to the handler as the Functions host does: same method, normalised
/// path, query, headers and body (streamed both ways), plus the host's version and an
/// invocation id.
async fn forward(front: Arc<FrontDoor>, path: String, request: Request) -> Response {
    use std::sync::atomic::Ordering;
    if front.outstanding.fetch_add(1, Ordering::SeqCst) >= MAX_OUTSTANDING_REQUESTS {
        front.outstanding.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            axum::Json(json!({"error": {
                "code": "TooManyRequests",
                "message": format!("the host is too busy ({MAX_OUTSTANDING_REQUESTS} requests outstanding); retry after 1 second")
            }})),
        )
            .into_response();
    }
    let response = match front.running.clone().acquire_owned().await {
        Ok(_running) => forward_one(&front, &path, request).await,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    front.outstanding.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn forward_one(front: &FrontDoor, path: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut outbound = front.http.request(
        parts.method.clone(),
        format!("{}{path}{query}", front.handler_url),
    );
    // The host copies the body only when the request declares a Content-Length above zero
    // (`HttpRequestExtensions.ToHttpRequestMessage`): a chunked body does not reach the
    // handler on Azure, so it does not here either.
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) && (content_length.is_some() || !is_content_header(name)) {
            outbound = outbound.header(name, value);
        }
    }
    // `DefaultHttpWorkerService.AddHeaders`.
    outbound = outbound
        .header("x-azure-functions-hostversion", HOST_VERSION)
        .header(
            "x-azure-functions-invocationid",
            uuid::Uuid::new_v4().to_string(),
        );
    let outbound = match content_length {
        Some(_) => outbound.body(reqwest::Body::wrap_stream(body.into_data_stream())),
        None => outbound,
    };
    let answer = outbound.send().await;
    match answer {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !HOP_BY_HOP.contains(name) {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|e| {
                    (StatusCode::BAD_GATEWAY, format!("forwarding: {e}")).into_response()
                })
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"error": {
                "code": "BadGateway",
                "message": format!("the handler did not answer: {e}")
            }})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{FrontDoor, normalize_path};
    use std::sync::Arc;

    /// A redirect from the handler reaches the caller as a redirect, as from the Functions
    /// host; following it here would serve the page under the wrong address (its relative
    /// links then point elsewhere).
    #[tokio::test]
    async fn the_handlers_redirects_reach_the_caller() {
        let handler = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handler_url = format!("http://{}", handler.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/api/app",
                axum::routing::get(|| async {
                    (
                        axum::http::StatusCode::PERMANENT_REDIRECT,
                        [("location", "/api/app/index.html")],
                    )
                }),
            )
            .route(
                "/api/app/index.html",
                axum::routing::get(|| async { "page" }),
            );
        tokio::spawn(async move { axum::serve(handler, app).await });
        let front = Arc::new(FrontDoor::new(handler_url));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_url = format!("http://{}", listener.local_addr().unwrap());
        let routes = front.routes();
        tokio::spawn(async move { axum::serve(listener, routes).await });
        let answer = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{front_url}/api/app"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 308);
        assert_eq!(answer.headers()["location"], "/api/app/index.html");
    }

    #[test]
    fn paths_are_normalised_before_routing() {
        for (raw, normal) in [
            (
                "/api/workspaces/ws-a/requests",
                "/api/workspaces/ws-a/requests",
            ),
            ("/api/../ScanCompleted", "/ScanCompleted"),
            ("/api/%2e%2e/ScanCompleted", "/ScanCompleted"),
            ("/api/%2E%2E/ScanCompleted", "/ScanCompleted"),
            ("/api/.%2e/ScanCompleted", "/ScanCompleted"),
            ("/api/./../../ScanCompleted", "/ScanCompleted"),
            ("/api/x/../../Work", "/Work"),
            ("/api/a/./b/", "/api/a/b/"),
            ("/api/a/..", "/api/"),
            ("/../../api/x", "/api/x"),
            ("/api/a%20b", "/api/a%20b"),
            ("/api/a%2Fb", "/api/a%2Fb"),
            ("/api/..%2FScanCompleted", "/api/..%2FScanCompleted"),
            ("/api/%3F", "/api/%3F"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Some(normal), "{raw}");
        }
        assert_eq!(normalize_path("/api/%ff%fe"), None);
    }
}
