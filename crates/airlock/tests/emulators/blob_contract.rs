//! The blob port's contract, checked on the in-memory fake and on Azurite through the Azure
//! adapter (bearer tokens + user-delegation SAS, over HTTPS).

use airlock::domain::SasPermissions;
use airlock::ports::{
    BlobRef, BlobStore, ContainerRef, ContentHeaders, CopyIf, CopyState, Destination, PortError,
    SasRequest,
};
use airlock_local::testing::*;
use airlock_testkit::memory::{ManualClock, MemoryBlobStore};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

fn c(account: &str, container: &str) -> ContainerRef {
    ContainerRef {
        account: account.into(),
        container: container.into(),
    }
}

async fn sha(store: &dyn BlobStore, b: &BlobRef) -> (String, u64) {
    let (props, mut stream) = store.read(b).await.unwrap();
    let mut h = Sha256::new();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    assert_eq!(props.size, n);
    (hex::encode(h.finalize()), n)
}

/// The parts of the contract both implementations share; `put` writes a blob as a user would.
/// What a backend does that Azure does differently, so the contract can say so.
struct Divergences {
    /// Azure documents that Set Blob Properties ends a concluded copy's record on the
    /// destination (x-ms-copy-*); Azurite 3.x keeps it.
    keeps_copy_details_after_set_properties: bool,
}

async fn contract(
    store: &dyn BlobStore,
    divergences: Divergences,
    put: impl AsyncFn(&BlobRef, Vec<u8>),
) {
    let src = c("stalexintwsone", "req-1");
    let dst = c("stalexipwsone", "req-1");
    store.create_container(&src).await.unwrap();
    store
        .create_container(&src)
        .await
        .expect("creating an existing container is success");
    assert_eq!(store.list_blobs(&src).await.unwrap(), vec![]);
    assert_eq!(
        store
            .list_blobs(&c("stalexintwsone", "missing"))
            .await
            .unwrap(),
        vec![],
        "a missing container lists nothing"
    );

    let data = b"id,value\n1,2\n".to_vec();
    let name = "dir/a b.csv";
    put(&src.blob(name), data.clone()).await;
    let listed = store.list_blobs(&src).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].size),
        (name, data.len() as u64)
    );

    let props = store.properties(&src.blob(name)).await.unwrap().unwrap();
    assert_eq!(props.size, data.len() as u64);
    assert!(!props.etag.is_empty());
    assert_eq!(store.properties(&src.blob("nope")).await.unwrap(), None);

    store.create_container(&dst).await.unwrap();
    let meta = BTreeMap::from([("airlockrevision".to_string(), "3".to_string())]);
    let state = store
        .start_copy(&src.blob(name), &dst.blob(name), &meta, CopyIf::default())
        .await
        .unwrap();
    assert!(matches!(state, CopyState::Success | CopyState::Pending));
    let copied = store.properties(&dst.blob(name)).await.unwrap().unwrap();
    assert_eq!(copied.copy, Some(CopyState::Success));
    assert_eq!(
        copied.metadata.get("airlockrevision").map(String::as_str),
        Some("3")
    );
    assert_eq!(
        sha(store, &dst.blob(name)).await,
        (hex::encode(Sha256::digest(&data)), data.len() as u64)
    );

    // Conditional writes: content headers set on one version, copies pinned to a version.
    let v1 = props.etag.clone();
    let headers = ContentHeaders::only_type("text/csv");
    let v2 = store
        .set_content_headers(&src.blob(name), &headers, Some(&v1))
        .await
        .unwrap();
    assert_ne!(v2, v1, "new properties are a new version");
    let now = store.properties(&src.blob(name)).await.unwrap().unwrap();
    assert_eq!((&now.etag, &now.content), (&v2, &headers));
    // Listed with the headers too (a submit leaves an already frozen version alone).
    let listed = store.list_blobs(&src).await.unwrap();
    let listed = listed.iter().find(|b| b.name == name).unwrap();
    assert_eq!((&listed.etag, &listed.content), (&v2, &headers));
    let stale = store
        .set_content_headers(&src.blob(name), &headers, Some(&v1))
        .await;
    assert!(
        matches!(stale, Err(PortError::PreconditionFailed(_))),
        "{stale:?}"
    );
    let stale = store
        .start_copy(&src.blob(name), &dst.blob("pinned"), &meta, source(&v1))
        .await;
    assert!(
        matches!(stale, Err(PortError::PreconditionFailed(_))),
        "{stale:?}"
    );
    assert_eq!(
        store.properties(&dst.blob("pinned")).await.unwrap(),
        None,
        "nothing copied from a changed source"
    );
    store
        .start_copy(&src.blob(name), &dst.blob("pinned"), &meta, source(&v2))
        .await
        .unwrap();
    let pinned = store
        .properties(&dst.blob("pinned"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pinned.content, headers,
        "a copy carries the source's headers"
    );
    // Setting the properties of a concluded copy ends its copy record (x-ms-copy-source,
    // with the source's read link, is no longer shown).
    store
        .set_content_headers(&dst.blob("pinned"), &headers, Some(&pinned.etag))
        .await
        .unwrap();
    let reset = store
        .properties(&dst.blob("pinned"))
        .await
        .unwrap()
        .unwrap();
    if divergences.keeps_copy_details_after_set_properties {
        assert_eq!(reset.copy, Some(CopyState::Success));
    } else {
        assert_eq!(
            reset.copy, None,
            "copy details gone after Set Blob Properties"
        );
    }
    store.delete_blob(&dst.blob("pinned")).await.unwrap();

    // Copies tied to the destination seen: a second copy decided on the same (now stale)
    // look is refused and changes nothing.
    let only_new = CopyIf {
        destination: Destination::Absent,
        ..CopyIf::default()
    };
    store
        .start_copy(&src.blob(name), &dst.blob("once"), &meta, only_new)
        .await
        .unwrap();
    let first = store.properties(&dst.blob("once")).await.unwrap().unwrap();
    let again = store
        .start_copy(&src.blob(name), &dst.blob("once"), &meta, only_new)
        .await;
    assert!(matches!(again, Err(PortError::Conflict(_))), "{again:?}");
    let over_stale = store
        .start_copy(
            &src.blob(name),
            &dst.blob("once"),
            &meta,
            CopyIf {
                destination: Destination::Version(&v1),
                ..CopyIf::default()
            },
        )
        .await;
    assert!(
        matches!(over_stale, Err(PortError::Conflict(_))),
        "{over_stale:?}"
    );
    let after = store.properties(&dst.blob("once")).await.unwrap().unwrap();
    assert_eq!(after.etag, first.etag, "the refused copies changed nothing");
    store
        .start_copy(
            &src.blob(name),
            &dst.blob("once"),
            &meta,
            CopyIf {
                destination: Destination::Version(&first.etag),
                ..CopyIf::default()
            },
        )
        .await
        .unwrap();
    store.delete_blob(&dst.blob("once")).await.unwrap();

    let missing = store
        .start_copy(
            &src.blob("nope"),
            &dst.blob("nope"),
            &meta,
            CopyIf::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(PortError::NotFound(_))),
        "{missing:?}"
    );
    assert!(matches!(
        store.read(&src.blob("nope")).await,
        Err(PortError::NotFound(_))
    ));

    // A conditional delete removes only the version it names: a blob rewritten since the
    // listing (a later revision's seal) stays, and a missing one is no error.
    put(&src.blob("cond"), b"first".to_vec()).await;
    let listed = store.properties(&src.blob("cond")).await.unwrap().unwrap();
    put(&src.blob("cond"), b"second".to_vec()).await;
    assert!(
        !store
            .delete_blob_if(&src.blob("cond"), &listed.etag)
            .await
            .unwrap(),
        "a blob changed since it was listed is left alone"
    );
    let now = store.properties(&src.blob("cond")).await.unwrap().unwrap();
    assert_eq!(now.size, 6);
    assert!(
        store
            .delete_blob_if(&src.blob("cond"), &now.etag)
            .await
            .unwrap()
    );
    assert_eq!(store.properties(&src.blob("cond")).await.unwrap(), None);
    assert!(
        !store
            .delete_blob_if(&src.blob("cond"), &now.etag)
            .await
            .unwrap()
    );

    store.delete_blob(&dst.blob(name)).await.unwrap();
    store
        .delete_blob(&dst.blob(name))
        .await
        .expect("deleting a missing blob is success");
    assert_eq!(store.properties(&dst.blob(name)).await.unwrap(), None);
    store.delete_container(&src).await.unwrap();
    store
        .delete_container(&src)
        .await
        .expect("deleting a missing container is success");
    store
        .delete_container(&c("stalexintwsone", "never-existed"))
        .await
        .unwrap();
}

#[tokio::test]
async fn memory_store_honours_the_contract() {
    let store = MemoryBlobStore::new(Arc::new(ManualClock::default()));
    let azure = Divergences {
        keeps_copy_details_after_set_properties: false,
    };
    contract(&store, azure, async |b: &BlobRef, data: Vec<u8>| {
        store.put(b, data);
    })
    .await;
}

fn link(permissions: SasPermissions, minutes: i64) -> SasRequest {
    SasRequest {
        permissions,
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(minutes),
        ip_range: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_adapter_on_azurite_honours_the_contract() {
    let azurite = azurite(&["stalexintwsone", "stalexipwsone"]);
    let store = blob_store(&azurite);
    let up = c("stalexintwsone", "req-1");
    let azurite_3 = Divergences {
        keeps_copy_details_after_set_properties: true,
    };
    contract(&store, azurite_3, async |b: &BlobRef, data: Vec<u8>| {
        store
            .create_container(&c(&b.account, &b.container))
            .await
            .unwrap();
        let url = store
            .container_link(
                &c(&b.account, &b.container),
                &link(SasPermissions::UPLOAD, 10),
            )
            .await
            .unwrap();
        SasOnly::new(&url)
            .upload(&b.name, data)
            .await
            .expect("upload through the link");
    })
    .await;
    drop(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_enforced_by_the_storage_service() {
    let azurite = azurite(&["stalexintwsone", "stalexipwsone"]);
    let store = blob_store(&azurite);
    let draft = c("stalexintwsone", "req-a");
    let other = c("stalexintwsone", "req-b");
    for x in [&draft, &other] {
        store.create_container(x).await.unwrap();
    }
    let upload_url = store
        .container_link(&draft, &link(SasPermissions::UPLOAD, 10))
        .await
        .unwrap();
    assert!(
        upload_url.starts_with("https://") && upload_url.contains("spr=https"),
        "{upload_url}"
    );
    assert!(
        upload_url.contains("skoid="),
        "signed with a user-delegation key: {upload_url}"
    );
    let upload = SasOnly::new(&upload_url);
    upload
        .upload("a.csv", b"1\n".to_vec())
        .await
        .expect("the draft link writes");
    assert_eq!(
        upload.download("a.csv").await,
        Err(403),
        "a draft link cannot read"
    );

    let read_url = store
        .container_link(&draft, &link(SasPermissions::READ, 10))
        .await
        .unwrap();
    let read = SasOnly::new(&read_url);
    assert_eq!(read.download("a.csv").await.unwrap(), b"1\n");
    assert_eq!(
        read.upload("b.csv", b"2\n".to_vec()).await,
        Err(403),
        "a review link cannot write"
    );

    // A link to one blob reads that blob and no other of its container.
    upload
        .upload("dir/a b.csv", b"3\n".to_vec())
        .await
        .expect("the draft link writes");
    let one = store
        .blob_link(&draft.blob("dir/a b.csv"), &link(SasPermissions::READ, 10))
        .await
        .unwrap();
    assert!(one.contains("sr=b"), "{one}");
    let (path, token) = one.split_once('?').unwrap();
    let base = path
        .strip_suffix("/dir/a%20b.csv")
        .unwrap_or_else(|| panic!("the blob's path: {path}"));
    let through = SasOnly::new(&format!("{base}?{token}"));
    assert_eq!(through.download("dir/a b.csv").await.unwrap(), b"3\n");
    assert_eq!(through.download("a.csv").await, Err(403), "another blob");
    assert_eq!(
        through.upload("dir/a b.csv", b"x".to_vec()).await,
        Err(403),
        "a blob link to read cannot write"
    );

    // The same token on another request's container is refused.
    let other_url = upload_url.replacen("/req-a?", "/req-b?", 1);
    assert_eq!(
        SasOnly::new(&other_url)
            .upload("x.csv", b"x".to_vec())
            .await,
        Err(403)
    );

    let expired = store
        .container_link(&draft, &link(SasPermissions::UPLOAD, -5))
        .await
        .unwrap();
    assert_eq!(
        SasOnly::new(&expired)
            .upload("late.csv", b"x".to_vec())
            .await,
        Err(403),
        "an expired link is refused"
    );
    // A tampered permission string breaks the signature.
    let widened = upload_url.replacen("sp=acwdl", "sp=racwdl", 1);
    assert_eq!(SasOnly::new(&widened).download("a.csv").await, Err(403));
    let listed: Vec<String> = store
        .list_blobs(&draft)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(
        listed,
        vec!["a.csv", "dir/a b.csv"],
        "nothing else was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_agree_between_listing_properties_and_reads() {
    let azurite = azurite(&["stalexipwsone"]);
    let store = blob_store(&azurite);
    let c = ContainerRef {
        account: "stalexipwsone".into(),
        container: "req-e".into(),
    };
    store.create_container(&c).await.unwrap();
    let url = store
        .container_link(&c, &link(SasPermissions::UPLOAD, 10))
        .await
        .unwrap();
    SasOnly::new(&url)
        .upload("f.bin", b"x".to_vec())
        .await
        .unwrap();
    let listed = store.list_blobs(&c).await.unwrap()[0].etag.clone();
    let props = store
        .properties(&c.blob("f.bin"))
        .await
        .unwrap()
        .unwrap()
        .etag;
    let (read, _) = store.read(&c.blob("f.bin")).await.unwrap();
    assert_eq!(listed, props);
    assert_eq!(props, read.etag);
    assert!(listed.starts_with('"') && listed.ends_with('"'), "{listed}");
}

/// Index tags as Defender writes them: readable through the port, and writing them leaves
/// the blob's version (eTag) alone, so a verdict about a version still names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_tags_keep_the_version() {
    let azurite = azurite(&["stalexipwstags"]);
    let store = blob_store(&azurite);
    let c = ContainerRef {
        account: "stalexipwstags".into(),
        container: "req-tags".into(),
    };
    store.create_container(&c).await.unwrap();
    let url = store
        .container_link(&c, &link(SasPermissions::UPLOAD, 10))
        .await
        .unwrap();
    SasOnly::new(&url)
        .upload("data.csv", b"1,2\n".to_vec())
        .await
        .unwrap();
    let before = store
        .properties(&c.blob("data.csv"))
        .await
        .unwrap()
        .unwrap();
    assert!(store.tags(&c.blob("data.csv")).await.unwrap().is_empty());
    let tags = BTreeMap::from([
        (
            airlock::ports::DEFENDER_RESULT_TAG.to_string(),
            "No threats found".to_string(),
        ),
        (
            airlock::ports::DEFENDER_TIME_TAG.to_string(),
            "2026-11-22T12:00:00Z".to_string(),
        ),
    ]);
    store.set_tags(&c.blob("data.csv"), &tags).await.unwrap();
    assert_eq!(store.tags(&c.blob("data.csv")).await.unwrap(), tags);
    let after = store
        .properties(&c.blob("data.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.etag, before.etag, "tags are not a new version");
    assert!(matches!(
        store.tags(&c.blob("nope")).await,
        Err(PortError::NotFound(_))
    ));
}

/// A copy of exactly this version of the source.
fn source(etag: &str) -> CopyIf<'_> {
    CopyIf {
        source_etag: Some(etag),
        ..CopyIf::default()
    }
}
