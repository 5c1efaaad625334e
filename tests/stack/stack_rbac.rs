//! Azure RBAC on the local stack (`infra/rbac.json`, enforced in front of Azurite and the
//! Cosmos DB emulator): the
//! handler's calls succeed only with the roles Terraform grants, every one of those roles is
//! needed, and a missing role is an alert and a retry, never a lost verdict.

use airlock_local::rbac::ScopeKind;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo;
use serde_json::json;
use std::time::{Duration, Instant};

const ALPHA: &str = "ws-alpha";
const TAG_READER: &str = "Airlock blob index tag reader";
const TAGS_READ: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/read";

fn options(tre: &str, handler: &std::path::Path) -> airlock_local::stack::StackOptions {
    stack_options(
        handler,
        tre,
        DeliveryOptions {
            // Retries soon and for long, as Event Grid does for 24 hours.
            retry_base: Duration::from_millis(300),
            max_attempts: 1000,
            ..Default::default()
        },
        demo::workspaces(),
        Duration::from_secs(2),
        vec![],
    )
}

/// The packaged handler (the binary in the Function App zip, built for glibc 2.28, not the
/// test build) takes a whole export through (seal, scan, review, approve, download) with
/// its production credential path, and needs every storage role the Function App is
/// granted and nothing it is not: no call is refused, and no role is more than the calls
/// needed (least privilege both ways; `infra/rbac.json` is checked against Terraform by a
/// fast test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_packaged_handler_exports_with_exactly_the_roles_granted() {
    let stack = start_stack_with(options("rbacok", &packaged_handler())).await;
    let c = StackClient::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let mike = stack.token("mike", &["AirlockManager"], ALPHA);
    let id = c
        .submitted(
            ALPHA,
            &alice,
            "export",
            &[("results/table.csv", b"id,value\n1,2\n")],
        )
        .await;
    let r = c.wait(ALPHA, &id, &alice, "in_review").await;
    assert_eq!(r["files"][0]["scan"]["result"], "No threats found", "{r}");
    c.act(
        ALPHA,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved", "explanation": "ok"})),
    )
    .await;
    c.wait(ALPHA, &id, &alice, "approved").await;
    let download = c.link(ALPHA, &id, &alice).await;
    assert_eq!(
        download.download("results/table.csv").await.unwrap(),
        b"id,value\n1,2\n"
    );
    let grants = &stack.rbac.grants;
    assert_eq!(grants.denied(), vec![], "calls the roles do not allow");
    let function_calls: Vec<_> = grants
        .decisions()
        .into_iter()
        .filter(|d| d.principal == "function")
        .collect();
    for (resource, action) in [
        ("stalexipwsalpha", TAGS_READ),
        (
            "requests",
            "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/replace",
        ),
        (
            "history",
            "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create",
        ),
        (
            "status-changed",
            "Microsoft.EventGrid/topics/events/send/action",
        ),
    ] {
        assert!(
            function_calls
                .iter()
                .any(|d| d.account == resource && d.action == action),
            "{action} on {resource} went through the check"
        );
    }
    // Roles the handler's own calls must need: storage, Cosmos DB and Event Grid roles that
    // are not the Functions host's own (its blob leases and diagnostics tables are not played
    // locally). Security Admin (Defender's on-demand scan) is needed only when a verdict is
    // overdue, which this export does not meet (`stack_faults` does, through the same check).
    let manifest = airlock_local::rbac::Manifest::load();
    let unneeded: Vec<_> = grants
        .unneeded("function")
        .into_iter()
        .filter(|a| {
            !a.host
                && manifest.roles[&a.role]
                    .actions
                    .iter()
                    .chain(&manifest.roles[&a.role].data_actions)
                    .any(|p| {
                        [
                            "Microsoft.Storage/",
                            "Microsoft.DocumentDB/",
                            "Microsoft.EventGrid/",
                        ]
                        .iter()
                        .any(|service| p.starts_with(service))
                    })
        })
        .collect();
    assert_eq!(unneeded, vec![], "granted but never needed");
}

/// Without the tag reader role (not granted, or not yet propagated: Azure takes minutes)
/// Defender's verdict cannot be recorded: `ScanCompleted` is refused reading the tag (403)
/// and answers 500, so the delivery is retried, not acknowledged and lost. Once the role is
/// granted, the retried verdict is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verdict_needs_the_tag_reader_role() {
    let mut options = options("rbactag", &airlock_system_tests::handler_bin());
    options
        .revoked_roles
        .push((ScopeKind::InProgress, TAG_READER.into()));
    let stack = start_stack_with(options).await;
    let c = StackClient::new(&stack);
    let alice = stack.token("alice", &["WorkspaceResearcher"], ALPHA);
    let id = c
        .submitted(ALPHA, &alice, "export", &[("summary.csv", b"a,b\n1,2\n")])
        .await;
    let refused = |stack: &airlock_local::stack::LocalStack| {
        stack
            .rbac
            .grants
            .denied()
            .into_iter()
            .filter(|d| d.principal == "function" && d.action == TAGS_READ)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused(&stack) < 3 {
        assert!(Instant::now() < deadline, "the tag read was never refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, v) = c
        .call(
            "GET",
            &format!("/workspaces/{ALPHA}/requests/{id}"),
            &alice,
            None,
        )
        .await;
    let r = &v["airlockRequest"];
    assert_eq!(r["status"], "submitted", "{r}");
    assert!(r["files"][0]["scan"].is_null(), "no verdict recorded: {r}");
    assert_eq!(stack.engine.dead_letters().len(), 0, "kept for retry");
    // The operator grants the role; the next retry records the verdict.
    stack
        .rbac
        .grants
        .grant("function", ScopeKind::InProgress, TAG_READER);
    let r = c.wait(ALPHA, &id, &alice, "in_review").await;
    assert_eq!(r["files"][0]["scan"]["result"], "No threats found", "{r}");
}
