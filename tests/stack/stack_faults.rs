//! Faults injected into the real local stack, each healed by idempotent handlers, the
//! router's retries and the `Reconcile` timer: a publish that fails after the record was
//! written, the handler killed mid-flow, a lost `BlobCreated`, a scan result that never comes.
//! Each request must end in the right state with its data intact and exactly one copy in its
//! final stage.

use airlock::domain::{EventGridEvent, Workspace};
use airlock::ports::BlobStore;
use airlock_local::stack::{LocalStack, stage_accounts};
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::{self, audience};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

const ALPHA: &str = "ws-alpha";
const GAMMA: &str = "ws-gamma";

async fn start() -> LocalStack {
    let mut workspaces = demo::workspaces();
    let gamma: Workspace = serde_json::from_value(json!({
        "id": GAMMA, "displayName": "Impatient scans", "shortId": "gamma", "tokenAudience": audience(GAMMA),
        "policy": {"scanRequired": true, "scanTimeoutMinutes": 0},
        "contacts": {"workspaceOwner": ["owner@gamma.airlock.local"]},
    }))
    .unwrap();
    workspaces.push(gamma);
    let deadlines = vec![
        ("AIRLOCK_REDRIVE_AFTER_SECONDS".into(), "2".into()),
        ("AIRLOCK_OUTBOX_GRACE_SECONDS".into(), "1".into()),
    ];
    let delivery = DeliveryOptions {
        max_attempts: 20,
        ..Default::default()
    };
    start_stack(
        &airlock_system_tests::handler_bin(),
        "faults",
        delivery,
        workspaces,
        Duration::from_millis(500),
        deadlines,
    )
    .await
}

/// Which stage accounts hold blobs of the request, once the clean-up that follows a final
/// status has had its chance (it runs just after the status changes): waits up to 20 s for
/// the layout to be `expected`, and returns what it saw last.
async fn holders_settled(stack: &LocalStack, id: &str, expected: &[&str]) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut out = Vec::new();
        for account in stage_accounts(&stack.tre_id, &stack.workspaces) {
            let c = airlock::ports::ContainerRef {
                account: account.clone(),
                container: id.into(),
            };
            if !airlock::ports::BlobStore::list_blobs(&*stack.blobs, &c)
                .await
                .unwrap()
                .is_empty()
            {
                out.push(account);
            }
        }
        if out == expected || std::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn touches(event: &EventGridEvent, id: &str) -> bool {
    event.subject.contains(id) || event.data.to_string().contains(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_faults_heal() {
    let mut stack = start().await;
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let sha = hex::encode(Sha256::digest(&data));

    // 1. Every publish fails for a while after the submit was written: the record keeps its
    //    events in the outbox and Reconcile publishes them.
    {
        let api = StackClient::new(&stack);
        stack.router.fail_next_publishes(12);
        let id = api
            .submitted(ALPHA, &alice, "export", &[("data.bin", &data)])
            .await;
        let r = api.wait(ALPHA, &id, &mike, "in_review").await;
        assert_eq!(r["files"][0]["sha256"], sha);
        api.act(
            ALPHA,
            &id,
            "review",
            &mike,
            Some(json!({"decision": "approved"})),
        )
        .await;
        api.wait(ALPHA, &id, &alice, "approved").await;
        assert_eq!(
            holders_settled(&stack, &id, &["stalexappfaults"]).await,
            vec!["stalexappfaults"],
            "publish failure: one copy, final stage"
        );
        eprintln!("publish failure healed");
    }

    // 2. The handler is killed right after an approval: the router retries, the restarted
    //    handler finishes the move.
    let id = {
        let api = StackClient::new(&stack);
        let id = api
            .submitted(ALPHA, &alice, "import", &[("data.bin", &data)])
            .await;
        api.wait(ALPHA, &id, &mike, "in_review").await;
        api.act(
            ALPHA,
            &id,
            "review",
            &mike,
            Some(json!({"decision": "approved"})),
        )
        .await;
        id
    };
    stack
        .crash_handler(Duration::from_millis(800))
        .await
        .expect("the handler restarts");
    {
        let api = StackClient::new(&stack);
        api.wait(ALPHA, &id, &alice, "approved").await;
        assert_eq!(
            holders_settled(&stack, &id, &["stalimappwsalpha"]).await,
            vec!["stalimappwsalpha"],
            "crash: one copy, final stage"
        );
        let link = api
            .ok(
                "GET",
                &format!("/workspaces/{ALPHA}/requests/{id}/link"),
                &alice,
                None,
            )
            .await;
        let got = SasOnly::new(link["containerUrl"].as_str().unwrap())
            .download("data.bin")
            .await
            .unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&got)),
            sha,
            "data intact after the crash"
        );
        eprintln!("handler crash healed");
    }

    // 3. Every BlobCreated for the sealed copies is lost: Reconcile checks the copies itself.
    {
        let api = StackClient::new(&stack);
        stack.engine.drop_deliveries(
            Some(Box::new(|function: &str, e: &EventGridEvent| {
                function == "BlobCreated"
                    && e.topic
                        .as_deref()
                        .unwrap_or("")
                        .ends_with("stalexipwsalpha")
            })),
            false,
        );
        let id = api
            .submitted(ALPHA, &alice, "export", &[("data.bin", &data)])
            .await;
        let r = api.wait(ALPHA, &id, &mike, "in_review").await;
        stack.engine.drop_deliveries(None, false);
        assert_eq!(r["files"][0]["sha256"], sha);
        let trail = api
            .ok(
                "GET",
                &format!("/workspaces/{ALPHA}/requests/{id}/history"),
                &mike,
                None,
            )
            .await;
        assert!(
            trail["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["action"] == "sealed"),
            "{trail}"
        );
        eprintln!("lost BlobCreated healed");
    }

    // 4. Every verdict event is lost, but Defender's index tag on the blob says clean:
    //    Reconcile takes the verdict from there and the request reaches review.
    {
        let api = StackClient::new(&stack);
        let gina = stack.token("gina", &["WorkspaceResearcher"], GAMMA);
        let mona = stack.token("mona", &["AirlockManager"], GAMMA);
        stack.engine.drop_deliveries(
            Some(Box::new(|function: &str, _: &EventGridEvent| {
                function == "ScanCompleted"
            })),
            false,
        );
        // The timer waits until Defender's tag is on the sealed blob: with a timeout of
        // zero minutes a pass before it would (rightly) ask for a rescan instead.
        stack.reconcile_timer.hold().await;
        let id = api
            .submitted(GAMMA, &gina, "export", &[("data.bin", &data)])
            .await;
        let sealed = airlock::ports::BlobRef {
            account: "stalexipwsgamma".into(),
            container: id.clone(),
            name: "data.bin".into(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !stack
            .blobs
            .tags(&sealed)
            .await
            .unwrap_or_default()
            .contains_key(airlock::ports::DEFENDER_RESULT_TAG)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "Defender never tagged the sealed copy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stack.reconcile_timer.release().await;
        let r = api.wait(GAMMA, &id, &mona, "in_review").await;
        stack.engine.drop_deliveries(None, false);
        assert_eq!(r["files"][0]["scan"]["result"], "No threats found", "{r}");
        assert_eq!(r["files"][0]["scan"]["etag"], r["files"][0]["etag"]);
        eprintln!("lost verdict events healed from the index tags");
    }

    // 5. Defender is down (no event, no tag): the request fails, naming the file, and the
    //    owners hear.
    {
        let api = StackClient::new(&stack);
        let gina = stack.token("gina", &["WorkspaceResearcher"], GAMMA);
        stack
            .defender_online
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let id = api
            .submitted(GAMMA, &gina, "export", &[("data.bin", &data)])
            .await;
        let r = api.wait(GAMMA, &id, &gina, "failed").await;
        stack
            .defender_online
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let message = r["statusMessage"].as_str().unwrap();
        assert!(
            message.contains("no malware scan verdict") && message.contains("data.bin"),
            "{message}"
        );
        // The notification is published right after the write that the status came from:
        // give it the moment it takes to reach the router.
        let told = || {
            stack
                .engine
                .received("notification")
                .into_iter()
                .filter(|e| touches(e, &id))
                .any(|e| {
                    e.data["request"]["status"] == "failed"
                        && e.data["recipients"]["workspaceOwner"]
                            == json!(["owner@gamma.airlock.local"])
                })
        };
        for _ in 0..100 {
            if told() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(told(), "the owners are notified of the failure");
        assert_eq!(
            holders_settled(&stack, &id, &["stalexipwsgamma"]).await,
            vec!["stalexipwsgamma"],
            "a failed request keeps only its sealed copy, for investigation"
        );
        eprintln!("missing scan verdict failed cleanly");
    }

    // 6. Defender misses the sealed copy (down while it was written, so no verdict, no tag),
    //    then is back: Reconcile asks Resource Manager for an on-demand scan before failing
    //    anything, and the request goes on to review on that verdict. The workspace's timeout
    //    is zero, so the test runs each Reconcile pass itself: the pass after the rescan
    //    would fail the request at once, which is step 5, not this one.
    {
        let api = StackClient::new(&stack);
        let gina = stack.token("gina", &["WorkspaceResearcher"], GAMMA);
        let mona = stack.token("mona", &["AirlockManager"], GAMMA);
        stack.reconcile_timer.hold().await;
        stack
            .defender_online
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let id = api
            .submitted(GAMMA, &gina, "export", &[("missed.bin", &data)])
            .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = api.request(GAMMA, &id, &mona).await;
            if r["files"][0]["sealedAt"].is_string() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never sealed: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Sealed while Defender is down: its upload scan never happens. Once the request
        // is past the re-drive delay, a Reconcile pass finds the verdict overdue and asks
        // for the rescan (which waits for Defender); each pass is checked before the next.
        let history =
            |trail: serde_json::Value| trail["history"].as_array().cloned().unwrap_or_default();
        let asked = |trail: &serde_json::Value| {
            trail["history"].as_array().is_some_and(|h| {
                h.iter().any(|e| {
                    e["action"] == "rescan requested"
                        && e["message"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("missed.bin")
                })
            })
        };
        let mut answer;
        loop {
            answer = stack.engine.reconcile().await.unwrap().to_string();
            let trail = api.history(GAMMA, &id, &mona).await;
            if asked(&trail) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no rescan asked for: {trail}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let r = api.request(GAMMA, &id, &mona).await;
        assert_eq!(
            r["status"], "submitted",
            "asking for a rescan fails nothing: {r}"
        );
        // The gauges of the run that asked: the verdict overdue, and the work queue peeked
        // at through Azurite with the handler's own role (Storage Queue Data Contributor
        // reads messages).
        assert!(
            answer.contains("1 verdict(s) overdue") && answer.contains("waiting (oldest"),
            "{answer}"
        );
        // ... and the same gauges as Application Insights custom metrics, sent with the
        // handler's identity (Monitoring Metrics Publisher) to the ingestion stand-in, which
        // checks every item as the service does and accepted them all.
        assert!(!answer.contains("metrics:"), "{answer}");
        let items = stack.router.ingestion.items();
        let gauge = |name: &str, workspace: Option<&str>| {
            items.iter().rev().find_map(|i| {
                let base = &i["data"]["baseData"];
                (base["metrics"][0]["name"] == name
                    && workspace.is_none_or(|w| base["properties"]["workspace"] == w))
                .then(|| base["metrics"][0]["value"].as_f64().unwrap())
            })
        };
        assert_eq!(
            gauge("airlock.scans.verdicts_overdue", Some(GAMMA)),
            Some(1.0),
            "{items:?}"
        );
        assert!(gauge("airlock.work_queue.messages", None).is_some());
        assert!(
            items
                .iter()
                .all(|i| i["tags"]["ai.cloud.role"] == "airlock"),
            "{items:?}"
        );
        let publishes = stack
            .rbac
            .grants
            .decisions()
            .into_iter()
            .filter(|d| d.action == "Microsoft.Insights/Telemetry/Write")
            .collect::<Vec<_>>();
        assert!(
            !publishes.is_empty()
                && publishes
                    .iter()
                    .all(|d| d.allowed && d.principal == "function"),
            "{publishes:?}"
        );
        stack
            .defender_online
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let r = api.wait(GAMMA, &id, &mona, "in_review").await;
        // Without the role (not granted, or not yet propagated) the service refuses the
        // identity: the run says so and does the rest of its work.
        let publisher = "Monitoring Metrics Publisher";
        let grants = &stack.rbac.grants;
        grants.revoke(
            "function",
            airlock_local::rbac::ScopeKind::AppInsights,
            publisher,
        );
        let refused = stack.engine.reconcile().await.unwrap().to_string();
        assert!(
            refused.contains("metrics: forbidden") && refused.contains("verdict(s) overdue"),
            "{refused}"
        );
        grants.grant(
            "function",
            airlock_local::rbac::ScopeKind::AppInsights,
            publisher,
        );
        stack.reconcile_timer.release().await;
        assert_eq!(r["files"][0]["scan"]["result"], "No threats found", "{r}");
        let trail = api.history(GAMMA, &id, &mona).await;
        assert_eq!(
            history(trail.clone())
                .iter()
                .filter(|e| e["action"] == "rescan requested")
                .count(),
            1,
            "{trail}"
        );
        assert_eq!(trail["verified"], true);
        eprintln!("a missed scan recovered by an on-demand rescan");
    }

    // 7. Every StatusChanged of a request is lost, from submit to approval: Reconcile
    //    re-drives each step and the clean-up, and the data ends only in the approved stage.
    {
        let api = StackClient::new(&stack);
        stack.engine.drop_deliveries(
            Some(Box::new(|function: &str, _: &EventGridEvent| {
                function == "StatusChanged"
            })),
            false,
        );
        let id = api
            .submitted(ALPHA, &alice, "export", &[("lost.bin", &data)])
            .await;
        api.wait(ALPHA, &id, &mike, "in_review").await;
        api.act(
            ALPHA,
            &id,
            "review",
            &mike,
            Some(json!({"decision": "approved"})),
        )
        .await;
        let r = api.wait(ALPHA, &id, &alice, "approved").await;
        assert_eq!(
            holders_settled(&stack, &id, &["stalexappfaults"]).await,
            vec!["stalexappfaults"],
            "only the approved stage holds the data"
        );
        stack.engine.drop_deliveries(None, false);
        assert_eq!(r["files"][0]["sha256"], sha);
        let read = api.link(ALPHA, &id, &alice).await;
        let (got, _) = read.download_sha256("lost.bin").await.unwrap();
        assert_eq!(got, sha);
        eprintln!("lost StatusChanged events re-driven to the end");
    }

    // 7. Azurite restarts while writes are in flight: every write it answered is still
    //    there when it is back, as on Azure (the chaos run's restart rests on this).
    {
        let lost = answered_writes_survive_a_restart(&stack).await;
        assert!(lost.is_empty(), "answered, then forgotten: {lost:?}");
    }
}

/// Writes new content headers to 24 blobs as fast as Azurite answers, restarts Azurite in
/// the middle, and returns each blob whose headers are older than the last write answered.
async fn answered_writes_survive_a_restart(stack: &LocalStack) -> Vec<String> {
    use airlock::ports::{ContainerRef, ContentHeaders};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let names = airlock::domain::AccountNames::new(&stack.tre_id);
    let container = ContainerRef {
        account: names.account(
            airlock::domain::Stage::of(
                airlock::domain::RequestType::Export,
                airlock::domain::StageRole::Draft,
            ),
            "alpha",
        ),
        container: "restart-probe".into(),
    };
    stack.blobs.create_container(&container).await.unwrap();
    let link = stack
        .blobs
        .container_link(
            &container,
            &airlock::ports::SasRequest {
                permissions: airlock::domain::SasPermissions::UPLOAD,
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
                ip_range: None,
            },
        )
        .await
        .unwrap();
    const BLOBS: usize = 24;
    for i in 0..BLOBS {
        SasOnly::new(&link)
            .upload(&format!("b{i}"), vec![b'x'; 16])
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered: Arc<Vec<AtomicU64>> = Arc::new((0..BLOBS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..BLOBS)
        .map(|i| {
            let (blobs, stop, answered) = (stack.blobs.clone(), stop.clone(), answered.clone());
            let blob = container.blob(&format!("b{i}"));
            tokio::spawn(async move {
                let mut version = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    version += 1;
                    let headers = ContentHeaders::only_type(&format!("application/x-v{version}"));
                    let written = tokio::time::timeout(
                        Duration::from_secs(10),
                        blobs.set_content_headers(&blob, &headers, None),
                    )
                    .await;
                    if matches!(written, Ok(Ok(_))) {
                        answered[i].store(version, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The writers stop sending as Azurite goes: what is in flight now is what a restart can
    // forget.
    stop.store(true, Ordering::SeqCst);
    tokio::task::block_in_place(|| stack.restart_azurite(Duration::from_secs(1))).unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let mut lost = Vec::new();
    for i in 0..BLOBS {
        let kept = stack
            .blobs
            .properties(&container.blob(&format!("b{i}")))
            .await
            .unwrap()
            .and_then(|p| p.content.content_type)
            .and_then(|t| t.strip_prefix("application/x-v")?.parse::<u64>().ok())
            .unwrap_or(0);
        let last = answered[i].load(Ordering::SeqCst);
        if kept < last {
            lost.push(format!("b{i}: answered v{last}, kept v{kept}"));
        }
    }
    assert!(
        answered.iter().all(|a| a.load(Ordering::SeqCst) > 0),
        "every writer was answered before the restart"
    );
    stack.blobs.delete_container(&container).await.unwrap();
    lost
}

/// The local host keeps the handler running, as the Functions host does: SIGKILLed from
/// outside (nobody asks the stack to restart it), it is started again, deliveries wait for
/// it, and a request submitted meanwhile goes on to review with nothing dead-lettered. A
/// dead letter can be replayed through the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_handler_is_restarted_and_a_dead_letter_can_be_replayed() {
    let stack = start().await;
    let api = StackClient::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    let id = api.create(ALPHA, &alice, "export").await;
    api.link(ALPHA, &id, &alice)
        .await
        .upload("table.csv", b"region,n\nNorth,120\n".to_vec())
        .await
        .unwrap();
    let pid = stack.handler_pid();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The API is down while the handler is; the submit is answered once it is back.
    let submitted = loop {
        let (status, body) = api
            .call(
                "POST",
                &format!("/workspaces/{ALPHA}/requests/{id}/submit"),
                &alice,
                None,
            )
            .await;
        if status == 200 {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(submitted["airlockRequest"]["status"], "submitted");
    api.wait(ALPHA, &id, &mike, "in_review").await;
    assert!(stack.handler().restarts() >= 1);
    assert_ne!(stack.handler_pid(), pid, "a new process");
    assert!(
        stack.engine.dead_letters().is_empty(),
        "{:?}",
        stack.engine.dead_letters()
    );

    // A subscriber that is down: its notifications end as dead letters, listed and replayed
    // through the router (the operator's re-drive) once it is back.
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serving = up.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let up = serving.clone();
            async move {
                if up.load(std::sync::atomic::Ordering::SeqCst) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = airlock_local::emulators::free_listener().await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    stack.engine.set_options(DeliveryOptions {
        notification_webhooks: vec![hook.clone()],
        max_attempts: 3,
        ..stack.engine.options()
    });
    api.act(
        ALPHA,
        &id,
        "comments",
        &mike,
        Some(json!({"text": "Looking now."})),
    )
    .await;
    let dead = |stack: &LocalStack| {
        stack
            .engine
            .dead_letters()
            .into_iter()
            .filter(|d| format!("{:?}", d.target).contains(&hook))
            .count()
    };
    // (A notification from before the hook was down may join it: at least the comment's.)
    for _ in 0..300 {
        if dead(&stack) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dead(&stack) >= 1);
    // Written as Event Grid writes them, into the host account's `deadletters` container,
    // where the handler's Reconcile counts them (a gauge and a custom metric to alert on).
    let counted = dead_letters_counted(&stack, |n| n >= 1).await;
    assert!(counted >= 1);
    let metric = stack.router.ingestion.items().iter().rev().find_map(|i| {
        let m = &i["data"]["baseData"]["metrics"][0];
        (m["name"] == "airlock.dead_letters").then(|| m["value"].as_f64().unwrap())
    });
    assert_eq!(metric, Some(counted as f64));
    let router = reqwest::Client::new();
    let listed: serde_json::Value = router
        .get(format!("{}/dead-letters", stack.router_url))
        .header("aeg-sas-key", airlock_local::stack::TOPIC_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["eventType"] == "Airlock.Notification"),
        "{listed}"
    );
    let unauthorised = router
        .post(format!("{}/dead-letters/replay", stack.router_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let replayed: serde_json::Value = router
        .post(format!("{}/dead-letters/replay", stack.router_url))
        .header("aeg-sas-key", airlock_local::stack::TOPIC_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(replayed["replayed"].as_u64().unwrap() >= 1, "{replayed}");
    // Anything dead-lettered after the replay began is replayed too.
    for _ in 0..100 {
        if dead(&stack) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        router
            .post(format!("{}/dead-letters/replay", stack.router_url))
            .header("aeg-sas-key", airlock_local::stack::TOPIC_KEY)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(dead(&stack), 0, "delivered this time");
    // Replayed dead letters leave the container: the count follows.
    let left = stack.engine.dead_letters().len();
    assert_eq!(dead_letters_counted(&stack, |n| n == left).await, left);
}

/// What Reconcile counts in the dead-letter container, once `settled` holds for it (the
/// stand-in writes and removes the blobs within a second); panics after 20 s.
async fn dead_letters_counted(stack: &LocalStack, settled: impl Fn(usize) -> bool) -> usize {
    let mut answer = String::new();
    for _ in 0..40 {
        answer = stack.engine.reconcile().await.unwrap().to_string();
        let counted = answer
            .split("dead letters: ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok());
        if let Some(n) = counted
            && settled(n)
        {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the dead letters were not counted as expected: {answer}");
}

/// Back-pressure end to end: with slow connections held open at the API, a flood of 300
/// concurrent creates is answered — created, or 429 with `Retry-After` from the host stand-in
/// when more than its outstanding limit wait — and no connection is reset or left unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_creates_is_answered_not_reset() {
    use tokio::io::AsyncWriteExt;
    let stack = start().await;
    let address = stack.api_url.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
        s.write_all(b"POST /api/workspaces/ws-alpha/requests HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let http = reqwest::Client::new();
    let tokens: Vec<String> = (0..30)
        .map(|i| stack.token(&format!("flood{i}"), &["WorkspaceResearcher"], ALPHA))
        .collect();
    let calls = (0..300).map(|i| {
        let http = http.clone();
        let url = format!("{}/api/workspaces/{ALPHA}/requests", stack.api_url);
        let token = tokens[i % tokens.len()].clone();
        async move {
            match http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"type": "export", "title": "flood", "businessJustification": "load"}))
                .send()
                .await
            {
                Ok(r) => {
                    let retry = r.headers().get("retry-after").is_some();
                    let status = r.status().as_u16();
                    if !(200..300).contains(&status) && status != 429 {
                        let body = r.text().await.unwrap_or_default();
                        eprintln!("answered {status}: {body}");
                    }
                    (status, retry)
                }
                Err(e) => {
                    eprintln!("no answer: {e}");
                    (0, false)
                }
            }
        }
    });
    let answers = futures::future::join_all(calls).await;
    let mut counts = std::collections::BTreeMap::new();
    for (status, _) in &answers {
        *counts.entry(*status).or_insert(0) += 1;
    }
    eprintln!("flood answers by status: {counts:?}");
    assert!(!counts.contains_key(&0), "every call answered: {counts:?}");
    assert!(
        counts.keys().all(|s| (200..300).contains(s) || *s == 429),
        "{counts:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == 429)
            .all(|(_, retry)| *retry)
    );
    assert!(
        counts
            .iter()
            .any(|(s, n)| (200..300).contains(s) && *n >= 100),
        "{counts:?}"
    );
    drop(slow);
}

/// Attack: 1,000 connections that trickle their headers held the local front door's file
/// descriptors and delayed every API answer by ~20 s. As Kestrel does, the front door holds a
/// bounded number of connections (one more is answered 429 with `Retry-After` at once) and
/// cuts a connection whose headers do not arrive in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_header_connections_at_the_front_door_are_cut() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut options = stack_options(
        &airlock_system_tests::handler_bin(),
        "slowfront",
        DeliveryOptions::default(),
        demo::workspaces(),
        Duration::from_secs(60),
        vec![],
    );
    options.front_header_timeout = Duration::from_secs(3);
    let stack = start_stack_with(options).await;
    let address = stack.api_url.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..(airlock_local::front::MAX_CONNECTIONS + 88) {
        let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
        let _ = s
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            .await;
        slow.push(s);
    }
    let http = reqwest::Client::new();
    let health = format!("{}/api/health", stack.api_url);
    // During the attack: answered at once (429 with Retry-After while every slot is held).
    let started = std::time::Instant::now();
    let during = http
        .get(&health)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("answered during the attack");
    assert!(
        during.status() == 429 || during.status() == 200,
        "{}",
        during.status()
    );
    if during.status() == 429 {
        assert!(during.headers().contains_key("retry-after"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // After the header timeout the slow connections are closed by the server, and the API
    // answers normally.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut closed = 0;
    for s in &mut slow {
        let mut buf = [0u8; 512];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        slow.len(),
        "every slow connection was cut or refused"
    );
    let after = http.get(&health).send().await.unwrap();
    assert_eq!(after.status(), 200);
}
