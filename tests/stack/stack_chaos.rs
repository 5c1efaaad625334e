//! The chaos run, small: every kind of fault the `chaos` bench injects, compressed into a few
//! minutes, and every request checked against the airlock's invariants (see
//! `airlock_local::chaos`). The bench reports N = 1000; this keeps the invariants in CI.

use airlock::domain::{AccountNames, RequestType, Stage, StageRole};
use airlock::ports::{BlobRef, BlobStore, ContainerRef};
use airlock_local::chaos::{ChaosPlan, ONE_APPROVAL, audit, run};
use airlock_local::testing::{StackClient, stack_options, start_stack_with};
use airlock_testkit::delivery::DeliveryOptions;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_flows_under_faults_end_where_they_should_with_their_data_intact() {
    let delivery = DeliveryOptions {
        duplicate: true,
        reorder: true,
        max_attempts: 30,
        ..DeliveryOptions::default()
    };
    let mut options = stack_options(
        &airlock_system_tests::handler_bin(),
        "chaostest",
        delivery,
        airlock_testkit::demo::workspaces(),
        Duration::from_secs(1),
        vec![
            ("AIRLOCK_REDRIVE_AFTER_SECONDS".into(), "3".into()),
            ("AIRLOCK_OUTBOX_GRACE_SECONDS".into(), "1".into()),
            ("AIRLOCK_API_CALLS_PER_MINUTE".into(), "0".into()),
        ],
    );
    options.fault_proxies = true;
    let stack = Arc::new(start_stack_with(options).await);
    let report = run(stack.clone(), &ChaosPlan::small(24)).await;
    eprintln!("{report}");
    if !report.is_clean() {
        eprintln!("faults, as they began:");
        for line in &report.faults.timeline {
            eprintln!("  {line}");
        }
        for id in report.troubled_requests() {
            eprintln!("the handler on {id}:");
            for line in stack.handler_log_about(std::slice::from_ref(&id), 300) {
                eprintln!("  {line}");
            }
        }
    }
    assert!(report.is_clean(), "{report}");
    let f = &report.faults;
    assert!(
        f.handler_kills >= 1 && f.long_outages == 1 && f.azurite_restarts == 1,
        "{report}"
    );
    assert!(
        report.restarts >= 2,
        "the supervisor restarted the handler: {report}"
    );
    assert_eq!(report.by_flow.values().sum::<usize>(), 24);

    // The checks can fail: damage two approved requests behind the airlock's back — a copy
    // of one's file left in its rejected stage, the other's file deleted — and the audit
    // names exactly those.
    let api = StackClient::new(&stack);
    let mike = stack.token("mike", &["AirlockManager"], ONE_APPROVAL);
    let list = api
        .ok(
            "GET",
            &format!("/workspaces/{ONE_APPROVAL}/requests?pageSize=100"),
            &mike,
            None,
        )
        .await;
    let approved: Vec<(String, RequestType, String)> = list["airlockRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["airlockRequest"])
        .filter(|r| r["status"] == "approved")
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                RequestType::parse(r["type"].as_str().unwrap()).unwrap(),
                r["files"][0]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(approved.len() >= 2, "{list}");
    clean_ups_done(&stack, &api, &mike, &approved).await;
    let names = AccountNames::new(&stack.tre_id);
    let blob = |(id, kind, name): &(String, RequestType, String), role| BlobRef {
        account: names.account(Stage::of(*kind, role), "alpha"),
        container: id.clone(),
        name: name.clone(),
    };
    let stray = blob(&approved[0], StageRole::Rejected);
    stack
        .blobs
        .create_container(&ContainerRef {
            account: stray.account.clone(),
            container: stray.container.clone(),
        })
        .await
        .unwrap();
    stack
        .blobs
        .start_copy(
            &blob(&approved[0], StageRole::Approved),
            &stray,
            &Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    stack
        .blobs
        .delete_blob(&blob(&approved[1], StageRole::Approved))
        .await
        .unwrap();
    let damaged = audit(&stack).await;
    assert_eq!(damaged.inconsistent.len(), 1, "{damaged}");
    assert!(
        damaged.inconsistent[0].contains(&approved[0].0),
        "{damaged}"
    );
    assert_eq!(damaged.lost.len(), 1, "{damaged}");
    assert!(damaged.lost[0].contains(&approved[1].0), "{damaged}");
    assert!(damaged.stuck.is_empty(), "{damaged}");
}

/// Waits until nothing is left to deliver and each of `requests` has its clean-up on record
/// after its last status change. A run is judged settled on statuses, but a duplicated or
/// re-driven "approved" event can still be on its way: it deletes every other stage's
/// container again, as it should, and would remove the damage above before the audit sees
/// it (one CI run in about six did).
async fn clean_ups_done(
    stack: &airlock_local::stack::LocalStack,
    api: &StackClient<'_>,
    token: &str,
    requests: &[(String, RequestType, String)],
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut waiting = Vec::new();
        if stack.engine.pending() > 0 || stack.engine.in_flight() > 0 {
            waiting.push(format!(
                "{} deliveries pending, {} in flight",
                stack.engine.pending(),
                stack.engine.in_flight()
            ));
        }
        for (id, _, _) in requests {
            let trail = api
                .ok(
                    "GET",
                    &format!("/workspaces/{ONE_APPROVAL}/requests/{id}/history"),
                    token,
                    None,
                )
                .await;
            let entries = trail["history"].as_array().cloned().unwrap_or_default();
            let last_change = entries.iter().rposition(|e| !e["to"].is_null());
            let removed = entries
                .iter()
                .rposition(|e| e["action"] == airlock::domain::request::DATA_REMOVED);
            if !matches!((last_change, removed), (Some(c), Some(r)) if r > c) {
                waiting.push(format!("{id}: clean-up not on record"));
            }
        }
        if waiting.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not quiesce: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
