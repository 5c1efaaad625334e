//! End to end on the real local stack: Azurite (HTTPS, OAuth), the Cosmos emulator, the
//! local router and the `handler` binary as the Functions host runs it. Files go up and
//! down through the links the API hands out, with a SAS-only blob client.

use airlock_local::stack::LocalStack;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const ALPHA: &str = "ws-alpha";
const BETA: &str = "ws-beta";

async fn start(delivery: DeliveryOptions) -> LocalStack {
    let delivery = DeliveryOptions {
        max_attempts: 8,
        ..delivery
    };
    start_stack(
        &airlock_system_tests::handler_bin(),
        "e2e",
        delivery,
        demo::workspaces(),
        Duration::from_secs(2),
        vec![],
    )
    .await
}

type Client<'a> = StackClient<'a>;

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Export of a 64 MiB file and a small nested one, approved, downloaded and verified.
async fn export_approved(c: &Client<'_>, big: &[u8]) -> (String, Duration, Duration) {
    let s = c.stack;
    let alice = s.token("alice", &["WorkspaceResearcher"], ALPHA);
    let mike = s.token("mike", &["AirlockManager"], ALPHA);
    let id = c.create(ALPHA, &alice, "export").await;
    c.wait(ALPHA, &id, &alice, "draft").await;
    let upload = c.link(ALPHA, &id, &alice).await;
    upload
        .upload("model/weights.bin", big.to_vec())
        .await
        .expect("64 MiB upload through the link");
    upload
        .upload("summary.csv", b"id,value\n1,2\n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        upload.download("summary.csv").await,
        Err(403),
        "the draft link cannot read"
    );
    let submitted = Instant::now();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/submit"),
        &alice,
        None,
    )
    .await;
    let r = c.wait(ALPHA, &id, &mike, "in_review").await;
    let sealed = submitted.elapsed();
    let weights = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "model/weights.bin")
        .unwrap();
    assert_eq!(weights["sha256"], sha(big), "hashed from the sealed copy");
    assert_eq!(weights["size"], big.len() as u64);
    let review = c.link(ALPHA, &id, &mike).await;
    assert_eq!(
        review.download("summary.csv").await.unwrap(),
        b"id,value\n1,2\n"
    );
    assert_eq!(
        review.upload("extra.csv", b"x".to_vec()).await,
        Err(403),
        "the review link cannot write"
    );
    let reviewed = Instant::now();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/review"),
        &mike,
        Some(json!({"decision": "approved", "explanation": "ok"})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "approved").await;
    let approving = reviewed.elapsed();
    let download = c.link(ALPHA, &id, &alice).await;
    let got = download.download("model/weights.bin").await.unwrap();
    assert_eq!(sha(&got), sha(big), "the approved copy is the sealed one");
    assert!(
        download.container_url.contains("/stalexappe2e/"),
        "{}",
        download.container_url
    );
    (id, sealed, approving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycles_on_the_real_stack() {
    let stack = start(DeliveryOptions::default()).await;
    let c = Client::new(&stack);
    let big: Vec<u8> = (0..64 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (exported, sealed, approving) = export_approved(&c, &big).await;
    eprintln!(
        "64 MiB export: submit -> in_review {:.2} s, approve -> approved {:.2} s",
        sealed.as_secs_f64(),
        approving.as_secs_f64()
    );

    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let bob = stack.token("bob", &["WorkspaceResearcher"], ALPHA);
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    let owner = stack.token("olivia", &["WorkspaceOwner"], ALPHA);

    // Another request's container is out of reach with this request's link.
    let other = c.create(ALPHA, &alice, "export").await;
    c.wait(ALPHA, &other, &alice, "draft").await;
    let link = c.link(ALPHA, &other, &alice).await;
    let stolen = SasOnly::new(&link.container_url.replacen(&other, &exported, 1));
    assert_eq!(stolen.upload("x.csv", b"x".to_vec()).await, Err(403));

    // Import approved, by way of changes requested and a second revision.
    let id = c.create(ALPHA, &alice, "import").await;
    c.wait(ALPHA, &id, &alice, "draft").await;
    let upload = c.link(ALPHA, &id, &alice).await;
    upload.upload("data.csv", b"raw\n".to_vec()).await.unwrap();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/submit"),
        &alice,
        None,
    )
    .await;
    c.wait(ALPHA, &id, &mike, "in_review").await;
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/review"),
        &mike,
        Some(json!({"decision": "changes_requested", "explanation": "aggregate it"})),
    )
    .await;
    let r = c.wait(ALPHA, &id, &alice, "draft").await;
    assert_eq!(r["revision"], 2);
    let upload = c.link(ALPHA, &id, &alice).await;
    upload
        .upload("data.csv", b"aggregated\n".to_vec())
        .await
        .unwrap();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/submit"),
        &alice,
        None,
    )
    .await;
    let r = c.wait(ALPHA, &id, &mike, "in_review").await;
    assert_eq!(
        r["files"][0]["sha256"],
        sha(b"aggregated\n"),
        "revision 2 is sealed afresh"
    );
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/review"),
        &mike,
        Some(json!({"approval": true, "decisionExplanation": "fine", "revision": 2})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "approved").await;
    // Approved imports land in the workspace; any researcher of it may read them.
    let read = c.link(ALPHA, &id, &bob).await;
    assert!(
        read.container_url.contains("/stalimappwsalpha/"),
        "{}",
        read.container_url
    );
    assert_eq!(read.download("data.csv").await.unwrap(), b"aggregated\n");

    // Rejected.
    let id = c
        .submitted(ALPHA, &alice, "export", &[("names.csv", b"alice,bob\n")])
        .await;
    c.wait(ALPHA, &id, &mike, "in_review").await;
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/review"),
        &mike,
        Some(json!({"decision": "rejected", "explanation": "names"})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "rejected").await;
    let (status, _) = c
        .call(
            "GET",
            &format!("/workspaces/{ALPHA}/requests/{id}/link"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 409);

    // Cancelled from draft: the draft container goes.
    let id = c.create(ALPHA, &alice, "export").await;
    c.wait(ALPHA, &id, &alice, "draft").await;
    let upload = c.link(ALPHA, &id, &alice).await;
    upload.upload("a.csv", b"a\n".to_vec()).await.unwrap();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/cancel"),
        &owner,
        None,
    )
    .await;
    c.wait(ALPHA, &id, &alice, "cancelled").await;
    let gone = async {
        for _ in 0..100 {
            if upload.upload("b.csv", b"b\n".to_vec()).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(gone.await, "the cancelled draft's container is deleted");

    // Revoke the big export: its approved data is deleted.
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{exported}/revoke"),
        &mike,
        Some(json!({"reason": "contains identifiers"})),
    )
    .await;
    c.wait(ALPHA, &exported, &alice, "revoked").await;
    let (status, body) = c
        .call(
            "GET",
            &format!("/workspaces/{ALPHA}/requests/{exported}/link"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Quorum of two in ws-beta; the creator is refused even with the manager role.
    let carol = stack.token("carol", &["WorkspaceResearcher", "AirlockManager"], BETA);
    let m1 = stack.token("m1", &["AirlockManager"], BETA);
    let m2 = stack.token("m2", &["AirlockManager"], BETA);
    let id = c
        .submitted(BETA, &carol, "export", &[("r.csv", b"r\n")])
        .await;
    c.wait(BETA, &id, &m1, "in_review").await;
    let (status, _) = c
        .call(
            "POST",
            &format!("/workspaces/{BETA}/requests/{id}/review"),
            &carol,
            Some(json!({"decision": "approved"})),
        )
        .await;
    assert_eq!(status, 403);
    c.ok(
        "POST",
        &format!("/workspaces/{BETA}/requests/{id}/review"),
        &m1,
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(
        c.wait(BETA, &id, &m1, "in_review").await["reviews"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    c.ok(
        "POST",
        &format!("/workspaces/{BETA}/requests/{id}/review"),
        &m2,
        Some(json!({"decision": "approved"})),
    )
    .await;
    c.wait(BETA, &id, &carol, "approved").await;
    assert!(
        !stack
            .log_dir
            .parent()
            .unwrap()
            .join("dead-letters.jsonl")
            .exists(),
        "nothing was dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicated_and_reordered_delivery_reaches_the_same_end() {
    let stack = start(DeliveryOptions {
        duplicate: true,
        reorder: true,
        ..Default::default()
    })
    .await;
    let c = Client::new(&stack);
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (id, sealed, approving) = export_approved(&c, &big).await;
    eprintln!(
        "1 MiB export, duplicated and reordered delivery: submit -> in_review {:.2} s, approve -> approved {:.2} s",
        sealed.as_secs_f64(),
        approving.as_secs_f64()
    );
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let r = c
        .ok(
            "GET",
            &format!("/workspaces/{ALPHA}/requests/{id}/history"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r["verified"], true, "the trail in Cosmos verifies: {r}");
    let history: Vec<&str> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(history.iter().filter(|a| **a == "submit").count(), 1);
    assert_eq!(
        history.iter().filter(|a| **a == "data moved").count(),
        1,
        "{history:?}"
    );
    assert_eq!(
        history.iter().filter(|a| **a == "sealed").count(),
        2,
        "each file sealed once: {history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clamav_blocks_malware_and_passes_clean_files() {
    // An organisation's notification subscriber (as a Logic App would be).
    let received: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let hook = airlock_local::emulators::free_listener().await.unwrap();
    let hook_url = format!("http://{}/notify", hook.local_addr().unwrap());
    let sink = received.clone();
    let hook_task = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/notify",
            axum::routing::post(move |axum::Json(events): axum::Json<Vec<Value>>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().extend(events);
                    "ok"
                }
            }),
        );
        let _ = axum::serve(hook, app).await;
    });
    let stack = start(DeliveryOptions {
        notification_webhooks: vec![hook_url],
        ..Default::default()
    })
    .await;
    let c = Client::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let owner = stack.token("olivia", &["WorkspaceOwner"], ALPHA);
    let id = c.create(ALPHA, &alice, "import").await;
    c.wait(ALPHA, &id, &alice, "draft").await;
    let upload = c.link(ALPHA, &id, &alice).await;
    upload.upload("clean.csv", b"a,b\n".to_vec()).await.unwrap();
    upload
        .upload(
            "tools/eicar.com",
            airlock_testkit::builders::EICAR.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    c.ok(
        "POST",
        &format!("/workspaces/{ALPHA}/requests/{id}/submit"),
        &alice,
        None,
    )
    .await;
    // Attack: right after submit, post Defender-shaped "No threats found" verdicts for the
    // EICAR file straight to the function, as the Functions host would. Only the host can:
    // the API port forwards /api/... and nothing else.
    let forged = forged_clean_verdicts(&stack, &id, "tools/eicar.com").await;
    assert!(forged.iter().all(|s| *s == 404), "{forged:?}");
    let r = c.wait(ALPHA, &id, &owner, "blocked_by_scan").await;
    let blocked_id = id.clone();
    let message = r["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("tools/eicar.com") && message.contains("Airlock.Test.EICAR"),
        "{message}"
    );
    let files = r["files"].as_array().unwrap();
    let verdict =
        |name: &str| files.iter().find(|f| f["name"] == name).unwrap()["scan"]["result"].clone();
    assert_eq!(verdict("tools/eicar.com"), "Malicious");
    // The blocked files sit in the blocked stage, nowhere else.
    let blocked = airlock::ports::ContainerRef {
        account: "stalimblockede2e".into(),
        container: id.clone(),
    };
    let mut names: Vec<String> = airlock::ports::BlobStore::list_blobs(&*stack.blobs, &blocked)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    names.sort();
    assert_eq!(names, vec!["clean.csv", "tools/eicar.com"]);
    // The draft and in-progress copies are removed just after the final status: wait for it.
    for gone in ["stalimexe2e", "stalimipe2e"] {
        let c = airlock::ports::ContainerRef {
            account: gone.into(),
            container: id.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !airlock::ports::BlobStore::list_blobs(&*stack.blobs, &c)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "{gone} still holds data");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A clean request in the same workspace is scanned and reviewed.
    let id = c
        .submitted(ALPHA, &alice, "export", &[("ok.csv", b"fine\n")])
        .await;
    let r = c.wait(ALPHA, &id, &owner, "in_review").await;
    assert_eq!(r["files"][0]["scan"]["result"], "No threats found");
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    c.act(
        ALPHA,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "approved").await;
    // Both audit trails verify; the clean-up after the final status is recorded too (it is
    // written by the StatusChanged handler just after the status changes, so wait for it).
    for rid in [&blocked_id, &id] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let trail = c
                .ok(
                    "GET",
                    &format!("/workspaces/{ALPHA}/requests/{rid}/history"),
                    &owner,
                    None,
                )
                .await;
            assert_eq!(trail["verified"], true, "{trail}");
            let actions: Vec<String> = trail["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["action"].as_str().unwrap().to_string())
                .collect();
            if actions.iter().any(|a| a == "data removed") {
                assert!(actions.iter().any(|a| a == "scanned"), "{actions:?}");
                break;
            }
            assert!(Instant::now() < deadline, "no clean-up entry: {actions:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Every status change of both requests reached the subscriber, with context.
    // Delivery is at least once and in no particular order (as from Event Grid): a
    // subscriber counts each event id once and orders by the request's `updatedWhen`.
    let statuses_of = |rid: &str| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut events: Vec<(chrono::DateTime<chrono::Utc>, String)> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["request"]["id"] == rid)
            .filter(|e| seen.insert(e["id"].as_str().unwrap_or_default().to_string()))
            .map(|e| {
                let when = serde_json::from_value(e["data"]["request"]["updatedWhen"].clone())
                    .expect("updatedWhen is a time");
                let status = e["data"]["request"]["status"].as_str().unwrap().to_string();
                (when, status)
            })
            .collect();
        events.sort();
        events.into_iter().map(|(_, status)| status).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while statuses_of(&blocked_id).len() < 4 || statuses_of(&id).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "notifications missing: {:?} {:?}",
            statuses_of(&blocked_id),
            statuses_of(&id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        statuses_of(&blocked_id),
        [
            "draft",
            "submitted",
            "blocking_in_progress",
            "blocked_by_scan"
        ]
    );
    assert_eq!(
        statuses_of(&id),
        [
            "draft",
            "submitted",
            "in_review",
            "approval_in_progress",
            "approved"
        ]
    );
    let events = received.lock().unwrap().clone();
    let blocked = events
        .iter()
        .find(|e| {
            e["data"]["request"]["id"] == blocked_id
                && e["data"]["request"]["status"] == "blocked_by_scan"
        })
        .unwrap();
    assert_eq!(blocked["eventType"], "Airlock.Notification");
    assert_eq!(
        blocked["data"]["recipients"]["researcher"],
        json!(["alice@airlock.local"])
    );
    assert_eq!(
        blocked["data"]["recipients"]["workspaceOwner"],
        json!(["owner@alpha.airlock.local"])
    );
    assert!(
        blocked["data"]["request"]["statusMessage"]
            .as_str()
            .unwrap()
            .contains("tools/eicar.com")
    );
    assert_eq!(
        blocked["data"]["workspace"]["displayName"],
        "Demo workspace alpha"
    );
    let review = events
        .iter()
        .find(|e| e["data"]["request"]["id"] == id && e["data"]["request"]["status"] == "in_review")
        .unwrap();
    assert_eq!(
        review["data"]["recipients"]["airlockManager"],
        json!([
            "manager1@alpha.airlock.local",
            "manager2@alpha.airlock.local"
        ])
    );
    assert_eq!(
        review["data"]["request"]["files"][0]["sha256"],
        sha(b"fine\n")
    );
    hook_task.abort();
}

/// Posts a forged clean verdict for `name` to every path that might reach `ScanCompleted`
/// through the API's port; returns the status codes.
async fn forged_clean_verdicts(stack: &LocalStack, id: &str, name: &str) -> Vec<u16> {
    let blob = airlock::ports::BlobRef {
        account: "stalimipwsalpha".into(),
        container: id.into(),
        name: name.into(),
    };
    let url = stack.blobs.blob_url(&blob);
    let verdict = airlock_testkit::builders::scan_result_event(
        &blob,
        &url,
        "",
        &("No threats found".into(), vec![]),
        None,
        chrono::Utc::now(),
    );
    let envelope = json!({"Data": {"event": verdict}, "Metadata": {}}).to_string();
    let mut statuses = Vec::new();
    // Sent as raw HTTP: an HTTP client (reqwest's URL parser) would resolve the dot
    // segments itself and never send the attack.
    for path in [
        "/ScanCompleted",
        "/api/../ScanCompleted",
        "/api/%2e%2e/ScanCompleted",
        "/api/%2E%2e/ScanCompleted",
        "/api/.%2e/ScanCompleted",
        "/api/./../ScanCompleted",
        "/api/x/%2e%2e/%2e%2e/ScanCompleted",
        "//ScanCompleted",
        "/StatusChanged",
        "/Reconcile",
        "/api/..%2fScanCompleted",
    ] {
        statuses.push(raw_post(&stack.api_url, path, &envelope).await);
    }
    statuses
}

/// POSTs `body` to `path` exactly as written (no client-side normalisation); the status.
async fn raw_post(base: &str, path: &str, body: &str) -> u16 {
    let head = format!(
        "content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    raw_request(base, path, &head, body).await.0
}

/// Sends one POST with `headers` (CRLF-terminated lines) and `body` as bytes on the wire;
/// the status and the whole answer.
async fn raw_request(base: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\n{headers}connection: close\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// The Functions host forwards a request's body only when it declares a Content-Length
/// above zero (`HttpRequestExtensions.ToHttpRequestMessage`): a chunked create reaches the
/// handler without its body and is refused, on Azure and so here. The same request with a
/// length is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_does_not_reach_the_handler_as_on_azure() {
    let stack = start(DeliveryOptions::default()).await;
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let body = json!({"type": "export", "title": "t", "businessJustification": "j"}).to_string();
    let path = format!("/api/workspaces/{ALPHA}/requests");
    let auth = format!("authorization: Bearer {alice}\r\ncontent-type: application/json\r\n");
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let (status, answer) = raw_request(
        &stack.api_url,
        &path,
        &format!("{auth}transfer-encoding: chunked\r\n"),
        &chunked,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = raw_request(
        &stack.api_url,
        &path,
        &format!("{auth}content-length: {}\r\n", body.len()),
        &body,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

/// Attack: smuggle data past review in content headers (Content-Type, Cache-Control,
/// Content-Disposition, ... about 1 KB each) set on the draft blob; a server-side copy takes
/// them along and the sha256 does not cover them. The sealed and approved copies carry the
/// airlock's own headers only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_headers_do_not_cross() {
    let stack = start(DeliveryOptions::default()).await;
    let c = Client::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    let secret = "s".repeat(900);
    let smuggled = airlock::ports::ContentHeaders {
        content_type: Some(format!("text/html; x={secret}")),
        cache_control: Some(format!("private, x={secret}")),
        content_disposition: Some(format!("attachment; filename=\"{secret}.csv\"")),
        content_encoding: Some("identity".into()),
        content_language: Some("en-GB".into()),
    };
    let id = c.create(ALPHA, &alice, "export").await;
    c.wait(ALPHA, &id, &alice, "draft").await;
    c.link(ALPHA, &id, &alice)
        .await
        .upload_with_headers("summary.csv", b"n,mean\n12,3.4\n".to_vec(), &smuggled)
        .await
        .unwrap();
    c.act(ALPHA, &id, "submit", &alice, None).await;
    c.wait(ALPHA, &id, &mike, "in_review").await;
    let expected = airlock::ports::ContentHeaders::only_type("text/csv");
    let sealed = airlock::ports::BlobRef {
        account: "stalexipwsalpha".into(),
        container: id.clone(),
        name: "summary.csv".into(),
    };
    let props = airlock::ports::BlobStore::properties(&*stack.blobs, &sealed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(props.content, expected, "what the reviewer downloads");
    c.act(
        ALPHA,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved", "revision": 1})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "approved").await;
    let approved = airlock::ports::BlobRef {
        account: format!("stalexapp{}", stack.tre_id),
        ..sealed
    };
    let props = airlock::ports::BlobStore::properties(&*stack.blobs, &approved)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(props.content, expected, "what crosses");
}

/// Creates racing each other under one `Idempotency-Key`, on the Cosmos emulator: one
/// request, every answer naming it; the key with another body is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_under_one_key_make_one_request_on_cosmos() {
    let stack = start(DeliveryOptions::default()).await;
    let c = Client::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let body =
        json!({"type": "export", "title": "Figures", "businessJustification": "For the paper"});
    let path = format!("/workspaces/{ALPHA}/requests");
    let answers = futures::future::join_all((0..8).map(|_| {
        c.call_with(
            "POST",
            &path,
            &alice,
            &[("Idempotency-Key", "\"race-1\"")],
            Some(body.clone()),
        )
    }))
    .await;
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(code, v)| {
            assert_eq!(*code, 201, "{v}");
            v["airlockRequest"]["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let id = ids.into_iter().next().unwrap().to_string();
    let list = c
        .ok("GET", &format!("{path}?pageSize=100"), &alice, None)
        .await;
    let listed = list["airlockRequests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    c.wait(ALPHA, &id, &alice, "draft").await;
    let (code, v) = c
        .call_with(
            "POST",
            &path,
            &alice,
            &[("Idempotency-Key", "race-1")],
            Some(json!({"type": "import", "title": "Figures", "businessJustification": "For the paper"})),
        )
        .await;
    assert_eq!(code, 409, "{v}");
}
