//! Azurite emits no events: this watcher lists the stage accounts and raises
//! `Microsoft.Storage.BlobCreated` for every committed blob version it has not seen, and, as
//! Defender for Storage would, scans blobs that land in an in-progress stage with ClamAV and
//! publishes the verdict to the scan-result topic.

use airlock::adapters::azure::AzureBlobStore;
use airlock::domain::{AccountNames, StageRole};
use airlock::ports::{
    BlobInfo, BlobRef, BlobStore, ContainerRef, DEFENDER_RESULT_TAG, DEFENDER_TIME_TAG, PortError,
};
use airlock_testkit::builders::{blob_event, scan_result_event};
use airlock_testkit::delivery::{DeliveryEngine, SCAN_RESULT_TOPIC};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Accounts waiting for an on-demand scan (shared by the router, which is asked, and the
/// watcher, which scans).
#[derive(Clone, Default)]
pub struct RescanRequests(Arc<Mutex<Vec<String>>>);

impl RescanRequests {
    pub fn ask(&self, account: &str) {
        let mut pending = self.0.lock().unwrap();
        if !pending.iter().any(|a| a == account) {
            pending.push(account.to_string());
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Containers a blob was just written to, as the storage check in front of Azurite sees the
/// writes (Put Blob, Put Block List, Copy Blob): the watcher lists these at once instead of
/// waiting for its next pass over every container, so a blob event takes as long as Event
/// Grid's would however full the accounts are.
#[derive(Clone, Default)]
pub struct ChangedContainers(Arc<Changed>);

#[derive(Default)]
struct Changed {
    /// (account, container)
    marked: Mutex<HashSet<(String, String)>>,
    wake: tokio::sync::Notify,
}

impl ChangedContainers {
    pub fn mark(&self, account: &str, container: &str) {
        self.0
            .marked
            .lock()
            .unwrap()
            .insert((account.to_string(), container.to_string()));
        self.0.wake.notify_one();
    }

    /// Waits until a container is marked.
    pub async fn changed(&self) {
        self.0.wake.notified().await;
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.marked.lock().unwrap())
            .into_iter()
            .collect()
    }
}

/// Scan durations of the local Defender (clamd's own time, apart from the pipeline's).
#[derive(Clone, Default)]
pub struct ScanTimes(Arc<Mutex<Vec<std::time::Duration>>>);

impl ScanTimes {
    fn record(&self, took: std::time::Duration) {
        let mut times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a long-running stack keeps the latest scans only.
        if times.len() >= 100_000 {
            times.clear();
        }
        times.push(took);
    }

    /// The durations recorded since the last call.
    pub fn take(&self) -> Vec<std::time::Duration> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Watches stage accounts and raises `BlobCreated` for every committed blob version.
pub struct BlobWatcher {
    pub store: Arc<AzureBlobStore>,
    pub names: AccountNames,
    /// The accounts to watch.
    pub accounts: Vec<String>,
    /// clamd: blobs landing in an in-progress stage are scanned, as Defender would.
    pub scanner: Option<crate::clamav::Scanner>,
    /// While false, the local Defender is down: no verdict tag, no verdict event.
    pub defender_online: Arc<std::sync::atomic::AtomicBool>,
    /// On-demand scans asked for: every blob of these accounts is scanned again.
    pub rescans: RescanRequests,
    /// How long each scan took in clamd (read and verdict), for the latency budget.
    pub scan_times: ScanTimes,
    seen: Mutex<HashSet<(String, String, String, String)>>,
}

impl BlobWatcher {
    pub fn new(store: Arc<AzureBlobStore>, names: AccountNames, accounts: Vec<String>) -> Self {
        BlobWatcher {
            store,
            names,
            accounts,
            scanner: None,
            defender_online: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            rescans: RescanRequests::default(),
            scan_times: ScanTimes::default(),
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Lists every watched account once and raises events for what is new.
    pub async fn scan(&self, engine: &Arc<DeliveryEngine>) {
        let mut now_seen = HashMap::new();
        for account in &self.accounts {
            let Some(blobs) = self.blobs_of(account).await else {
                continue;
            };
            for (container, b) in blobs {
                let key = (account.clone(), container, b.name, b.etag);
                now_seen.insert(key, b.size);
            }
        }
        self.raise(now_seen, engine);
        self.rescan(engine).await;
    }

    /// Lists the containers `changed` marked and raises events for what is new in them.
    pub async fn scan_changed(&self, changed: &ChangedContainers, engine: &Arc<DeliveryEngine>) {
        let mut now_seen = HashMap::new();
        for (account, container) in changed.take() {
            if !self.accounts.contains(&account) {
                continue;
            }
            let c = ContainerRef {
                account: account.clone(),
                container: container.clone(),
            };
            if let Ok(blobs) = self.store.list_blobs(&c).await {
                for b in blobs {
                    let key = (account.clone(), container.clone(), b.name, b.etag);
                    now_seen.insert(key, b.size);
                }
            }
        }
        self.raise(now_seen, engine);
    }

    /// Raises `BlobCreated` (and a scan in an in-progress stage) for each blob version not
    /// seen before; each version once, whichever pass saw it first.
    fn raise(
        &self,
        now_seen: HashMap<(String, String, String, String), u64>,
        engine: &Arc<DeliveryEngine>,
    ) {
        let fresh: Vec<_> = {
            let mut seen = self.seen.lock().unwrap();
            now_seen
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect()
        };
        for ((account, container, name, etag), size) in fresh {
            let Some(parsed) = self.names.parse(&account) else {
                continue;
            };
            let blob = BlobRef {
                account,
                container,
                name,
            };
            let url = self.store.blob_url(&blob);
            engine.blob_event(
                parsed.stage.prefix(),
                blob_event(&blob, &url, &etag, size, false, chrono::Utc::now()),
            );
            if parsed.stage.role() == StageRole::InProgress {
                self.defend(blob, etag, url, engine);
            }
        }
    }

    /// Scans every blob of the accounts an on-demand scan was asked for (while the local
    /// Defender is down, the request waits).
    async fn rescan(&self, engine: &Arc<DeliveryEngine>) {
        if !self.online() {
            return;
        }
        for account in self.rescans.take() {
            let Some(blobs) = self.blobs_of(&account).await else {
                self.rescans.ask(&account);
                continue;
            };
            for (container, b) in blobs {
                let blob = BlobRef {
                    account: account.clone(),
                    container,
                    name: b.name,
                };
                let url = self.store.blob_url(&blob);
                self.defend(blob, b.etag, url, engine);
            }
        }
    }

    /// Every blob of an account with its container; `None` when its containers cannot be
    /// listed. A container that cannot be listed is left for the next pass.
    async fn blobs_of(&self, account: &str) -> Option<Vec<(String, BlobInfo)>> {
        let containers = self.store.list_containers(account).await.ok()?;
        let mut all = Vec::new();
        for container in containers {
            let c = ContainerRef {
                account: account.to_string(),
                container: container.clone(),
            };
            if let Ok(blobs) = self.store.list_blobs(&c).await {
                all.extend(blobs.into_iter().map(|b| (container.clone(), b)));
            }
        }
        Some(all)
    }

    fn online(&self) -> bool {
        self.defender_online
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Scans one blob version in the background, as Defender does: the verdict goes into the
    /// blob's index tags, then out as an event of its own.
    fn defend(&self, blob: BlobRef, etag: String, url: String, engine: &Arc<DeliveryEngine>) {
        let Some(scanner) = self.scanner.filter(|_| self.online()) else {
            return;
        };
        let (store, engine) = (self.store.clone(), engine.clone());
        let times = self.scan_times.clone();
        tokio::spawn(async move {
            // A storage hiccup is retried, as Defender does, before it becomes an "Error"
            // verdict.
            let mut attempt = 0;
            let verdict = loop {
                attempt += 1;
                match store.read(&blob).await {
                    Ok((props, stream)) if props.etag == etag => {
                        let started = std::time::Instant::now();
                        let verdict = scanner.scan(stream).await;
                        times.record(started.elapsed());
                        break verdict;
                    }
                    // This version is gone (overwritten or deleted): its successor is scanned.
                    Ok(_) | Err(PortError::NotFound(_)) => return,
                    Err(e) if e.is_retryable() && attempt < 10 => {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        break crate::clamav::Verdict {
                            result: format!("Error: {e}"),
                            malware_names: vec![],
                        };
                    }
                }
            };
            let now = chrono::Utc::now();
            let tags = std::collections::BTreeMap::from([
                (DEFENDER_RESULT_TAG.to_string(), verdict.result.clone()),
                (DEFENDER_TIME_TAG.to_string(), now.to_rfc3339()),
            ]);
            if let Err(e) = store.set_tags(&blob, &tags).await {
                tracing::warn!(error = %e, blob = %blob.name, "writing the verdict tags");
            }
            let event = scan_result_event(
                &blob,
                &url,
                &etag,
                &(verdict.result, verdict.malware_names),
                None,
                now,
            );
            engine.publish(SCAN_RESULT_TOPIC, event);
        });
    }
}
