//! The whole airlock in one process, on the in-memory fakes: the real server (the same
//! `airlock::host` router the `handler` serves) on a loopback port, a JWKS endpoint for the
//! development key, and the [`DeliveryEngine`] fed from the fakes, with Defender played by
//! the EICAR scanner. The fast tests and `airlock-local --memory` run on it.

use crate::builders::{Verdict, azure_blob_url, blob_event, eicar_scanner, scan_result_event};
use crate::delivery::{DeliveryEngine, DeliveryOptions, SCAN_RESULT_TOPIC, topic_name};
use crate::memory::{
    BlobNotice, MemoryBlobStore, MemoryHistoryStore, MemoryMetrics, MemoryPublisher,
    MemoryReleaseLedger, MemoryRequestStore, MemoryScanRequester, MemoryWorkQueue,
    MemoryWorkspaceStore,
};
use crate::tokens::{DEV_ISSUER, DEV_JWKS};
use airlock::adapters::jwks::{AuthConfig, JwksVerifier};
use airlock::app::{Deps, Settings};
use airlock::domain::{AccountNames, StageRole, Workspace};
use airlock::ports::{Clock, DEFENDER_RESULT_TAG, DEFENDER_TIME_TAG};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A hook run on each blob notice before its event is delivered (tests tamper here).
pub type BlobHook = Box<dyn Fn(&BlobNotice) + Send + Sync>;
/// A verdict the stand-in for Defender gives a blob's bytes.
pub type Scanner = dyn Fn(&[u8]) -> Verdict + Send + Sync;

/// Feeds the delivery engine from the fakes: what was published, which blobs appeared, and
/// Defender's verdicts on blobs that land in an in-progress stage.
pub struct MemoryFeed {
    pub publisher: Arc<MemoryPublisher>,
    pub work: Arc<MemoryWorkQueue>,
    pub blobs: Arc<MemoryBlobStore>,
    pub names: AccountNames,
    /// Play Defender: scan every blob that lands in an in-progress stage.
    pub scan: AtomicBool,
    pub scanner: Box<Scanner>,
    pub on_blob: Mutex<Option<BlobHook>>,
}

impl MemoryFeed {
    pub fn new(
        publisher: Arc<MemoryPublisher>,
        work: Arc<MemoryWorkQueue>,
        blobs: Arc<MemoryBlobStore>,
        names: AccountNames,
    ) -> Self {
        MemoryFeed {
            publisher,
            work,
            blobs,
            names,
            scan: AtomicBool::new(true),
            scanner: Box::new(eicar_scanner),
            on_blob: Mutex::new(None),
        }
    }

    /// Hands everything that happened since the last call to `engine`.
    pub fn feed(&self, engine: &DeliveryEngine) {
        for (topic, event) in self.publisher.take_new() {
            engine.publish(topic_name(topic), event);
        }
        for message in self.work.take_new() {
            engine.enqueue_work(message);
        }
        let now = chrono::Utc::now();
        for notice in self.blobs.take_notices() {
            let Some(parsed) = self.names.parse(&notice.blob.account) else {
                continue;
            };
            if let Some(hook) = self.on_blob.lock().unwrap().as_ref() {
                hook(&notice);
            }
            let url = azure_blob_url(&notice.blob);
            engine.blob_event(
                parsed.stage.prefix(),
                blob_event(
                    &notice.blob,
                    &url,
                    &notice.etag,
                    notice.size,
                    notice.deleted,
                    now,
                ),
            );
            let scanned = self.scan.load(Ordering::SeqCst)
                && !notice.deleted
                && parsed.stage.role() == StageRole::InProgress;
            // Defender scans the version that raised the event; a later write is another scan.
            if let Some(bytes) = self.blobs.get(&notice.blob).filter(|_| scanned) {
                let verdict = (self.scanner)(&bytes);
                // As Defender: the verdict goes into the blob's index tags, then the event.
                self.blobs.set_tags(
                    &notice.blob,
                    std::collections::BTreeMap::from([
                        (DEFENDER_RESULT_TAG.to_string(), verdict.0.clone()),
                        (DEFENDER_TIME_TAG.to_string(), now.to_rfc3339()),
                    ]),
                );
                engine.publish(
                    SCAN_RESULT_TOPIC,
                    scan_result_event(&notice.blob, &url, &notice.etag, &verdict, None, now),
                );
            }
        }
    }
}

/// The in-process airlock. Dropping it stops its server and tasks.
pub struct InMemoryAirlock {
    /// `http://127.0.0.1:PORT`: the API is under `/api`.
    pub base: String,
    pub deps: Arc<Deps>,
    pub engine: Arc<DeliveryEngine>,
    pub feed: Arc<MemoryFeed>,
    pub blobs: Arc<MemoryBlobStore>,
    pub publisher: Arc<MemoryPublisher>,
    pub work: Arc<MemoryWorkQueue>,
    pub scans: Arc<MemoryScanRequester>,
    pub metrics: Arc<MemoryMetrics>,
    pub requests: Arc<MemoryRequestStore>,
    pub history: Arc<MemoryHistoryStore>,
    pub releases: Arc<MemoryReleaseLedger>,
    pub workspaces: Arc<MemoryWorkspaceStore>,
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for InMemoryAirlock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What an in-memory airlock starts with.
pub struct InMemoryOptions {
    pub tre_id: String,
    pub workspaces: Vec<Workspace>,
    pub clock: Arc<dyn Clock>,
    /// `settings.api_audience` is the TRE-wide audience (`api://airlock` when `None`).
    pub settings: Settings,
    /// The handler's port; a free one when `None`.
    pub port: Option<u16>,
    /// Token signing keys from here instead of the development JWKS (tests of key trouble).
    pub jwks_url: Option<String>,
    pub leeway_secs: u64,
}

/// Serves the development JWKS on a loopback port; returns its URL and the server task.
pub async fn serve_dev_jwks() -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/discovery/v2.0/keys",
        axum::routing::get(|| async { ([("content-type", "application/json")], DEV_JWKS) }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the development JWKS server stopped");
        }
    });
    Ok((url, task))
}

impl InMemoryAirlock {
    pub async fn start(options: InMemoryOptions) -> std::io::Result<InMemoryAirlock> {
        let mut tasks = Vec::new();
        let jwks_url = match options.jwks_url {
            Some(url) => url,
            None => {
                let (url, task) = serve_dev_jwks().await?;
                tasks.push(task);
                url
            }
        };
        let blobs = Arc::new(MemoryBlobStore::new(options.clock.clone()));
        let publisher = Arc::new(MemoryPublisher::default());
        let work = Arc::new(MemoryWorkQueue::default());
        let scans = Arc::new(MemoryScanRequester::default());
        let metrics = Arc::new(MemoryMetrics::default());
        let requests = Arc::new(MemoryRequestStore::default());
        let history = Arc::new(MemoryHistoryStore::default());
        let releases = Arc::new(MemoryReleaseLedger::default());
        let workspaces = Arc::new(MemoryWorkspaceStore::new(options.workspaces));
        let names = AccountNames::new(options.tre_id);
        let deps = Arc::new(Deps {
            blobs: blobs.clone(),
            requests: requests.clone(),
            history: history.clone(),
            releases: releases.clone(),
            workspaces: workspaces.clone(),
            publisher: publisher.clone(),
            work: work.clone(),
            scans: scans.clone(),
            metrics: metrics.clone(),
            clock: options.clock,
            tokens: Arc::new(JwksVerifier::new(
                AuthConfig {
                    issuer: DEV_ISSUER.into(),
                    jwks_url,
                    leeway_secs: options.leeway_secs,
                },
                reqwest::Client::new(),
            )),
            names: names.clone(),
            limiter: airlock::app::limits::RateLimiter::new(options.settings.api_calls_per_minute),
            inline_hashes: airlock::app::limits::InlineHashes::new(
                options.settings.inline_hash_max_bytes,
            ),
            settings: Settings {
                api_audience: options
                    .settings
                    .api_audience
                    .clone()
                    .or_else(|| Some(crate::demo::TRE_API_AUDIENCE.into())),
                ..options.settings
            },
        });
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = deps.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = airlock::host::serve(listener, serving, shutdown).await {
                tracing::error!(error = %e, "the in-memory handler stopped");
            }
        }));
        let engine = Arc::new(DeliveryEngine::new(
            base.clone(),
            DeliveryOptions {
                retry_base: std::time::Duration::ZERO,
                ..Default::default()
            },
        ));
        let feed = Arc::new(MemoryFeed::new(
            publisher.clone(),
            work.clone(),
            blobs.clone(),
            names,
        ));
        Ok(InMemoryAirlock {
            base,
            deps,
            engine,
            feed,
            blobs,
            publisher,
            work,
            scans,
            metrics,
            requests,
            history,
            releases,
            workspaces,
            stop: Some(stop),
            tasks,
        })
    }

    /// Delivers until nothing is left to deliver (and what that caused, and so on).
    pub async fn settle(&self) -> Result<usize, String> {
        self.engine.settle(|| self.feed.feed(&self.engine)).await
    }

    /// Notifications published so far.
    pub fn notifications(&self) -> Vec<airlock::domain::EventGridEvent> {
        self.engine.received(crate::delivery::NOTIFICATION_TOPIC)
    }
}
