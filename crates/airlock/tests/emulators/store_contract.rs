//! The request, workspace and history stores' contracts, on the in-memory fakes and on the
//! Cosmos DB emulator through the Cosmos adapter.

use airlock::domain::request::Ctx;
use airlock::domain::{RequestType, Status, User, Workspace};
use airlock::ports::{
    HistoryStore, OrderBy, PortError, Release, ReleaseLedger, RequestQuery, RequestStore,
    WorkspaceStore,
};
use airlock_local::testing::*;
use airlock_testkit::fixtures::{self, request};
use airlock_testkit::memory::{
    MemoryHistoryStore, MemoryReleaseLedger, MemoryRequestStore, MemoryWorkspaceStore,
};
use serde_json::json;

fn workspace(id: &str, short: &str) -> Workspace {
    fixtures::workspace(id, short, json!({}))
}

async fn contract(store: &dyn RequestStore) {
    let ws1 = workspace("ws-one", "one");
    let ws2 = workspace("ws-two", "two");
    let created = request(&ws1, "req-a", "alice", RequestType::Export, 1);
    let a = store.create(&created).await.unwrap();
    assert!(!a.etag.is_empty());
    // The same create again (its answer lost, retried) is the stored record, not a second.
    let retried = store.create(&created).await.unwrap();
    assert_eq!((&retried.value, &retried.etag), (&a.value, &a.etag));
    // Another record under the same id conflicts and changes nothing.
    let dup = store
        .create(&request(&ws1, "req-a", "bob", RequestType::Export, 1))
        .await;
    assert!(matches!(dup, Err(PortError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store.get("ws-one", "req-a").await.unwrap().unwrap().value,
        a.value
    );
    assert_eq!(
        store.get("ws-two", "req-a").await.unwrap(),
        None,
        "another workspace's partition"
    );
    assert_eq!(store.get("ws-one", "missing").await.unwrap(), None);

    // Conditional replace: the current ETag wins, a stale one conflicts.
    let mut changed = a.value.clone();
    changed.title = "changed".into();
    let b = store.replace(&changed, &a.etag).await.unwrap();
    assert_ne!(b.etag, a.etag);
    let mut stale = a.value.clone();
    stale.title = "lost update".into();
    assert!(matches!(
        store.replace(&stale, &a.etag).await,
        Err(PortError::Conflict(_))
    ));
    assert_eq!(
        store
            .get("ws-one", "req-a")
            .await
            .unwrap()
            .unwrap()
            .value
            .title,
        "changed"
    );

    for (i, (creator, kind)) in [
        ("alice", RequestType::Import),
        ("bob", RequestType::Export),
        ("alice", RequestType::Export),
        ("bob", RequestType::Import),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .create(&request(
                &ws1,
                &format!("req-{i}"),
                creator,
                kind,
                10 + i as i64,
            ))
            .await
            .unwrap();
    }
    store
        .create(&request(&ws2, "req-other", "alice", RequestType::Export, 5))
        .await
        .unwrap();

    // Paging with continuation tokens, newest first, within one workspace.
    let mut q = RequestQuery {
        page_size: 2,
        ..Default::default()
    };
    let mut ids = Vec::new();
    loop {
        let page = store.query("ws-one", &q).await.unwrap();
        assert!(page.items.len() <= 2);
        ids.extend(page.items.iter().map(|r| r.id.clone()));
        match page.continuation {
            Some(t) => q.continuation = Some(t),
            None => break,
        }
    }
    assert_eq!(ids, vec!["req-3", "req-2", "req-1", "req-0", "req-a"]);
    let q = RequestQuery {
        creator: Some("alice".into()),
        request_type: Some(RequestType::Export),
        page_size: 10,
        order_by: OrderBy::CreatedAsc,
        ..Default::default()
    };
    let ids: Vec<String> = store
        .query("ws-one", &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec!["req-a", "req-2"]);

    // A summary leaves the bookkeeping out and keeps what a list shows; paging still works.
    let full = store.get("ws-one", "req-a").await.unwrap().unwrap().value;
    assert!(
        !full.outbox.is_empty(),
        "a new record has its creation event queued"
    );
    let mut q = RequestQuery {
        page_size: 2,
        summary: true,
        ..Default::default()
    };
    let mut summaries = Vec::new();
    loop {
        let page = store.query("ws-one", &q).await.unwrap();
        summaries.extend(page.items);
        match page.continuation {
            Some(t) => q.continuation = Some(t),
            None => break,
        }
    }
    assert_eq!(summaries.len(), 5);
    let a = summaries.iter().find(|r| r.id == "req-a").unwrap();
    assert_eq!(a, &full.summary());
    assert!(a.outbox.is_empty() && a.history_tail.is_empty());
    assert_eq!(
        (a.title.as_str(), a.status),
        (full.title.as_str(), full.status)
    );
    let q = RequestQuery {
        statuses: vec![Status::Draft, Status::Cancelled],
        with_pending_events: true,
        page_size: 10,
        ..Default::default()
    };
    assert_eq!(store.query("ws-two", &q).await.unwrap().items.len(), 1);
    let q = RequestQuery {
        statuses: vec![Status::Approved],
        page_size: 10,
        ..Default::default()
    };
    assert!(store.query("ws-one", &q).await.unwrap().items.is_empty());
    // A status filter is a set: repeated statuses (more than there are) change nothing.
    let q = RequestQuery {
        statuses: [Status::ALL.to_vec(), Status::ALL.to_vec()].concat(),
        order_by: OrderBy::Unordered,
        page_size: 10,
        ..Default::default()
    };
    assert_eq!(store.query("ws-one", &q).await.unwrap().items.len(), 5);

    // Reconcile's clean-up scan finds a final request until its clean-up is on the record.
    let awaiting = RequestQuery {
        awaiting_clean_up: true,
        order_by: OrderBy::Unordered,
        page_size: 10,
        ..Default::default()
    };
    assert!(
        store
            .query("ws-one", &awaiting)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let current = store.get("ws-one", "req-1").await.unwrap().unwrap();
    let mut failed = current.value.clone();
    let ctx = Ctx {
        now: failed.updated_when,
        workspace: &ws1,
    };
    failed.fail("test".into(), &ctx);
    let failed_saved = store.replace(&failed, &current.etag).await.unwrap();
    let found: Vec<String> = store
        .query("ws-one", &awaiting)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(found, vec!["req-1"]);
    let mut cleaned = failed_saved.value.clone();
    cleaned.audit(
        &ctx,
        &User::system(),
        airlock::domain::request::DATA_REMOVED,
        "removed".into(),
    );
    store.replace(&cleaned, &failed_saved.etag).await.unwrap();
    assert!(
        store
            .query("ws-one", &awaiting)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // User input is data, never SQL.
    let q = RequestQuery {
        creator: Some("x' OR 1=1 --".into()),
        page_size: 10,
        ..Default::default()
    };
    assert!(store.query("ws-one", &q).await.unwrap().items.is_empty());
    let bad = RequestQuery {
        page_size: 2,
        continuation: Some("not-a-token".into()),
        ..Default::default()
    };
    let got = store.query("ws-one", &bad).await;
    assert!(
        matches!(got, Err(PortError::InvalidInput(_))),
        "a bad token is refused: {got:?}"
    );
}

/// The history store: append-only, idempotent, never forked, in `seq` order.
async fn history_contract(store: &dyn HistoryStore) {
    let ws = workspace("ws-one", "one");
    let mut r = request(&ws, "req-h", "alice", RequestType::Export, 0);
    let ctx = Ctx {
        now: r.created_when,
        workspace: &ws,
    };
    for i in 0..14 {
        r.audit(&ctx, &User::system(), "step", format!("step {i}"));
    }
    let entries = r.history_tail.clone();
    assert_eq!(entries.len(), 15);
    assert_eq!(store.list("req-h").await.unwrap(), vec![]);
    assert_eq!(store.get("req-h", 0).await.unwrap(), None);
    store
        .append("ws-one", "req-h", &entries[..4])
        .await
        .unwrap();
    // Overlapping and repeated appends write nothing twice.
    store
        .append("ws-one", "req-h", &entries[2..])
        .await
        .unwrap();
    store.append("ws-one", "req-h", &entries).await.unwrap();
    let listed = store.list("req-h").await.unwrap();
    assert_eq!(listed, entries, "in seq order, 10 after 9");
    assert_eq!(
        store.get("req-h", 11).await.unwrap().as_ref(),
        Some(&entries[11])
    );
    // Another version of a stored entry is refused: the trail cannot be rewritten.
    let mut forged = entries[3].clone();
    forged.by = "mallory".into();
    forged.hash = forged.chain_hash(&entries[2].hash);
    let got = store.append("ws-one", "req-h", &[forged]).await;
    assert!(matches!(got, Err(PortError::Conflict(_))), "{got:?}");
    assert_eq!(
        store.get("req-h", 3).await.unwrap().as_ref(),
        Some(&entries[3])
    );
    // Requests do not see each other's entries.
    assert_eq!(store.list("req-other").await.unwrap(), vec![]);
}

async fn ledger_contract(ledger: &dyn ReleaseLedger) {
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let release = |ws: &str, sha: &str, request: &str, file: &str| Release {
        workspace_id: ws.into(),
        sha256: sha.into(),
        request_id: request.into(),
        file: file.into(),
        released_at: at,
    };
    let a = release("ws-one", "aa", "req-1", "t.csv");
    let b = release("ws-one", "aa", "req-2", "copy/t.csv");
    let c = release("ws-two", "aa", "req-3", "t.csv");
    let d = release("ws-one", "bb", "req-1", "u.csv");
    ledger.record(&[a.clone(), d.clone()]).await.unwrap();
    // Recorded again (a repeated delivery): still one entry.
    ledger
        .record(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    let mut found = ledger.released("ws-one", "aa").await.unwrap();
    found.sort_by(|x, y| x.request_id.cmp(&y.request_id));
    assert_eq!(found, vec![a, b]);
    assert_eq!(ledger.released("ws-two", "aa").await.unwrap(), vec![c]);
    assert_eq!(ledger.released("ws-one", "bb").await.unwrap(), vec![d]);
    assert_eq!(ledger.released("ws-one", "cc").await.unwrap(), vec![]);

    // Tables: remembered by content; listed only once released, newest first.
    let cells = |n: u64| airlock::domain::gates::TableCells {
        key_columns: vec!["region".into()],
        count_columns: vec!["n".into()],
        rows: vec![airlock::domain::gates::table::TableRow {
            key: "north".into(),
            counts: vec![Some(n), None],
        }],
        complete: true,
    };
    ledger
        .remember_table("ws-one", "aa", &cells(47))
        .await
        .unwrap();
    // The same bytes again: the first cells stand (they cannot differ for the same bytes).
    ledger
        .remember_table("ws-one", "aa", &cells(99))
        .await
        .unwrap();
    ledger
        .remember_table("ws-one", "ee", &cells(12))
        .await
        .unwrap();
    ledger
        .remember_table("ws-one", "never", &cells(5))
        .await
        .unwrap();
    let mut later = release("ws-one", "ee", "req-9", "later.csv");
    later.released_at = at + chrono::Duration::days(1);
    ledger.record(std::slice::from_ref(&later)).await.unwrap();
    let tables = ledger.released_tables("ws-one", 10).await.unwrap();
    let listed: Vec<(&str, &str, Option<u64>)> = tables
        .iter()
        .map(|(r, c)| {
            (
                r.request_id.as_str(),
                r.sha256.as_str(),
                c.rows[0].counts[0],
            )
        })
        .collect();
    assert_eq!(listed[0], ("req-9", "ee", Some(12)), "newest first");
    let mut rest = listed[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        vec![("req-1", "aa", Some(47)), ("req-2", "aa", Some(47))]
    );
    assert_eq!(ledger.released_tables("ws-one", 1).await.unwrap().len(), 1);
    assert!(
        ledger
            .released_tables("ws-two", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Remembered tables are not releases.
    assert_eq!(ledger.released("ws-one", "never").await.unwrap(), vec![]);
    assert_eq!(
        ledger.released("ws-one", "ee").await.unwrap(),
        vec![later.clone()]
    );

    // Snapshots for a resubmission's cell diff: by content, per workspace, first one stands,
    // and neither a release nor a table to difference against.
    let snapshot = |n: &str| airlock::domain::gates::table::TableSnapshot {
        header: vec!["region".into(), "n".into()],
        rows: vec![vec!["north, upper".into(), n.into()]],
        complete: true,
    };
    assert_eq!(ledger.snapshot("ws-one", "ff").await.unwrap(), None);
    ledger
        .remember_snapshot("ws-one", "ff", &snapshot("25"))
        .await
        .unwrap();
    ledger
        .remember_snapshot("ws-one", "ff", &snapshot("99"))
        .await
        .unwrap();
    assert_eq!(
        ledger.snapshot("ws-one", "ff").await.unwrap(),
        Some(snapshot("25"))
    );
    assert_eq!(ledger.snapshot("ws-two", "ff").await.unwrap(), None);
    assert_eq!(ledger.released("ws-one", "ff").await.unwrap(), vec![]);
    assert_eq!(ledger.released_tables("ws-one", 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn memory_release_ledger_honours_the_contract() {
    ledger_contract(&MemoryReleaseLedger::default()).await;
}

#[tokio::test]
async fn memory_history_store_honours_the_contract() {
    history_contract(&MemoryHistoryStore::default()).await;
}

/// The registry's half of `WorkspaceStore`: records as written, created once, replaced only
/// over the version read.
async fn workspace_record_contract<S: WorkspaceStore>(store: &S) {
    let record = serde_json::json!({"id": "ws-reg", "displayName": "Reg", "shortId": "reg",
        "tokenAudience": "api://ws-reg", "policy": {"approvalsRequired": 2}});
    let created = store.create_record(&record).await.unwrap();
    assert_eq!(created.value["policy"], record["policy"]);
    assert!(
        created.value["policy"].get("maxFiles").is_none(),
        "kept as written: no defaults stored"
    );
    let again = store.create_record(&record).await;
    // The same record again is the same write (a retried create), another one is a conflict.
    let mut other = record.clone();
    other["displayName"] = "Other".into();
    assert!(matches!(
        store.create_record(&other).await,
        Err(PortError::Conflict(_))
    ));
    if let Ok(v) = again {
        assert_eq!(v.value["displayName"], "Reg");
    }
    let read = store.get_record("ws-reg").await.unwrap().unwrap();
    assert_eq!(read.etag, created.etag);
    assert_eq!(
        WorkspaceStore::get(store, "ws-reg")
            .await
            .unwrap()
            .unwrap()
            .policy
            .approvals_required,
        2
    );
    let mut changed = record.clone();
    changed["policy"] = serde_json::json!({"approvalsRequired": 3});
    let replaced = store.replace_record(&changed, &read.etag).await.unwrap();
    assert_ne!(replaced.etag, read.etag);
    assert!(
        matches!(
            store.replace_record(&record, &read.etag).await,
            Err(PortError::Conflict(_))
        ),
        "a replace over a version no longer there is refused"
    );
    let mut missing = record.clone();
    missing["id"] = "ws-none".into();
    assert!(matches!(
        store.replace_record(&missing, &replaced.etag).await,
        Err(PortError::NotFound(_)) | Err(PortError::Conflict(_))
    ));
    assert!(matches!(
        store.create_record(&serde_json::json!({"id": "bad"})).await,
        Err(PortError::InvalidInput(_))
    ));
    assert_eq!(
        store.get_record("ws-reg").await.unwrap().unwrap().value["policy"]["approvalsRequired"],
        3
    );
    assert_eq!(store.get_record("ws-none").await.unwrap(), None);
}

#[tokio::test]
async fn memory_workspace_records_honour_the_contract() {
    workspace_record_contract(&MemoryWorkspaceStore::default()).await;
}

#[tokio::test]
async fn memory_store_honours_the_contract() {
    let store = MemoryRequestStore::default();
    contract(&store).await;
    store.force_put(&request(
        &workspace("ws-one", "one"),
        "x",
        "a",
        RequestType::Import,
        0,
    ));
    assert_eq!(store.locate("x").await.unwrap().as_deref(), Some("ws-one"));
    let ws = MemoryWorkspaceStore::new(vec![workspace("ws-one", "one")]);
    assert_eq!(
        ws.get_by_short_id("one").await.unwrap().unwrap().id,
        "ws-one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmos_adapter_on_the_emulator_honours_the_contract() {
    let emulator = cosmos();
    let stores = cosmos_stores(&emulator).await;
    contract(&stores).await;
    history_contract(&stores).await;
    ledger_contract(&stores).await;
    for ws in [workspace("ws-one", "one"), workspace("ws-two", "two")] {
        stores.put_workspace(&ws).await.unwrap();
    }
    assert_eq!(WorkspaceStore::list(&stores).await.unwrap().len(), 2);
    assert_eq!(
        WorkspaceStore::get(&stores, "ws-two")
            .await
            .unwrap()
            .unwrap()
            .short_id,
        "two"
    );
    assert_eq!(
        stores.get_by_short_id("one").await.unwrap().unwrap().id,
        "ws-one"
    );
    assert_eq!(stores.get_by_short_id("nope").await.unwrap(), None);
    assert_eq!(
        stores.locate("req-other").await.unwrap().as_deref(),
        Some("ws-two")
    );
    assert_eq!(stores.locate("missing").await.unwrap(), None);
    workspace_record_contract(&stores).await;
    // A second connection with create=true finds everything in place.
    let again = cosmos_stores(&emulator).await;
    assert!(
        RequestStore::get(&again, "ws-one", "req-a")
            .await
            .unwrap()
            .is_some()
    );
}
