//! Changes whose answer is lost on the way back. A create: the CLI sends it again under the
//! same `Idempotency-Key`, and the researcher ends with one draft, not one per attempt. A
//! submit or cancel: the CLI reads the request, finds the change made, and says so. A
//! comment: sent again under its key, written once.

use crate::flows::{login, stack};
use crate::support::Person;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A front door that passes every call to the airlock but, for the first `lose` POSTs to a
/// path ending in `target`, throws the airlock's answer away and says 503, as a gateway does
/// when the worker behind it is restarted after doing the work.
struct LossyFront {
    upstream: String,
    http: reqwest::Client,
    target: Mutex<String>,
    lose: AtomicUsize,
    /// The `Idempotency-Key` of every POST to the target that came through.
    keys: Mutex<Vec<Option<String>>>,
}

impl LossyFront {
    /// Loses the answers of the next `count` POSTs to a path ending in `target`.
    fn lose_next(&self, target: &str, count: usize) {
        *self.target.lock().unwrap() = target.into();
        self.lose.store(count, Ordering::SeqCst);
    }
}

async fn forward(State(front): State<Arc<LossyFront>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = front
        .http
        .request(parts.method.clone(), format!("{}{path}", front.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let answer = out.send().await.unwrap();
    let target = front.target.lock().unwrap().clone();
    let is_target = parts.method == axum::http::Method::POST && parts.uri.path().ends_with(&target);
    if is_target {
        front.keys.lock().unwrap().push(
            parts
                .headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_string()),
        );
        let lost = front
            .lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the worker went away",
            )
                .into_response();
        }
    }
    let mut response = Response::builder().status(answer.status().as_u16());
    if let Some(kind) = answer.headers().get(reqwest::header::CONTENT_TYPE) {
        response = response.header("content-type", kind.as_bytes());
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// Starts the front door before `upstream` (the stack's API origin) and writes a copy of
/// the stack's summary that sends the CLI through it.
async fn lossy_front(root: &std::path::Path, upstream: &str, lose: usize) -> Arc<LossyFront> {
    let front = Arc::new(LossyFront {
        upstream: upstream.to_string(),
        http: reqwest::Client::new(),
        target: Mutex::new("/requests".into()),
        lose: AtomicUsize::new(lose),
        keys: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(front.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("stack.json")).unwrap()).unwrap();
    summary["apiUrl"] = format!("http://{address}/api").into();
    std::fs::write(
        root.join("stack.json"),
        serde_json::to_vec_pretty(&summary).unwrap(),
    )
    .unwrap();
    front
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_whose_answer_is_lost_is_sent_again_and_makes_one_draft() {
    let (stack, root) = stack("clilost").await;
    let front = lossy_front(&root, &stack.api_url, 2).await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;
    let create = [
        "create",
        "--type",
        "export",
        "--title",
        "Figures",
        "--justification",
        "For the paper",
        "--json",
    ];

    // Two answers lost, the third attempt answered: one draft, the one the first made.
    let created = rita.run(&create).await.ok().json();
    let id = created["airlockRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = std::mem::take(&mut *front.keys.lock().unwrap());
    let first_key = keys[0].clone();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys[0].is_some() && keys.iter().all(|k| k == &keys[0]),
        "{keys:?}"
    );
    assert_eq!(listed_ids(&rita).await, vec![id.clone()]);

    // Every answer lost: the CLI gives up after its attempts with a clear failure, and the
    // airlock still holds only one draft for them (a new command is a new key).
    front.lose_next("/requests", usize::MAX);
    rita.run(&create)
        .await
        .refused(1, "the airlock failed (503 Service Unavailable)");
    let keys = std::mem::take(&mut *front.keys.lock().unwrap());
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter().all(|k| k == &keys[0]) && keys[0] != first_key,
        "{keys:?}"
    );
    let listed = listed_ids(&rita).await;
    assert_eq!(
        listed.len(),
        2,
        "one draft per command, not per attempt: {listed:?}"
    );

    // A submit whose answer is lost: the CLI finds the request submitted and says so.
    std::fs::write(root.join("figures.csv"), b"region,n\nNorth,120\n").unwrap();
    rita.run(&["upload", &id, "figures.csv"]).await.ok();
    front.lose_next("/submit", 1);
    let submitted = rita.run(&["submit", &id, "--json"]).await.ok().json();
    assert_ne!(
        submitted["airlockRequest"]["status"], "draft",
        "{submitted}"
    );
    assert_eq!(
        front.lose.load(Ordering::SeqCst),
        0,
        "the answer was lost once"
    );

    // A comment whose answer is lost twice: sent again under its key, written once.
    front.lose_next("/comments", 2);
    let comment = rita
        .run(&["comment", &id, "Counts are rounded to 5.", "--json"])
        .await
        .ok()
        .json();
    let keys = std::mem::take(&mut *front.keys.lock().unwrap());
    let comment_keys: Vec<_> = keys.iter().filter(|k| k.is_some()).collect();
    assert_eq!(comment_keys.len(), 3, "{keys:?}");
    assert!(
        comment_keys.iter().all(|k| k == &comment_keys[0]),
        "{keys:?}"
    );
    let shown = rita.run(&["status", &id, "--json"]).await.ok().json();
    let comments = shown["airlockRequest"]["comments"].as_array().unwrap();
    assert_eq!(
        comments.len(),
        1,
        "one comment, not one per attempt: {shown}"
    );
    assert_eq!(comments[0]["id"], comment["id"]);

    // A cancel whose answer is lost, on the draft the failed command made.
    let other = listed_ids(&rita)
        .await
        .into_iter()
        .find(|i| i != &id)
        .unwrap();
    front.lose_next("/cancel", 1);
    let cancelled = rita.run(&["cancel", &other, "--json"]).await.ok().json();
    assert_eq!(
        cancelled["airlockRequest"]["status"], "cancelled",
        "{cancelled}"
    );
    assert_eq!(
        front.lose.load(Ordering::SeqCst),
        0,
        "the answer was lost once"
    );

    // A refusal is not retried into a success: cancelling it again is refused at once.
    front.lose.store(0, Ordering::SeqCst);
    rita.run(&["cancel", &other]).await.refused(1, "airlock: ");
}

async fn listed_ids(person: &Person) -> Vec<String> {
    let listed = person.run(&["list", "--json"]).await.ok().json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["airlockRequest"]["id"].as_str().unwrap().to_string())
        .collect()
}
