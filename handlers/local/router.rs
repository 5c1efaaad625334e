//! The local router: what Event Grid and the Functions host do on Azure, for the local
//! stack. It accepts publishes on Event Grid's REST shape (with the `aeg-sas-key` check),
//! turns new blobs in the stage accounts into `Microsoft.Storage.BlobCreated` events, and
//! delivers every event to the functions its subscriptions name (from
//! `infra/subscriptions.json`) by POSTing the host's envelope to the handler: at least once,
//! retried with back-off on non-2xx, dead-lettered to a JSON-lines file after
//! `max_attempts`, optionally duplicated and reordered. It also issues local tokens.

use super::{DEV_JWKS, TokenIssuer, TokenSpec};
use crate::adapters::BlobRef;
use crate::adapters::azure::AzureBlobStore;
use crate::domain::EventGridEvent;
use crate::functions::inbound::{blob_event, scan_result_event};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deliveries to a webhook carry its URL after this prefix instead of a function name.
const WEBHOOK: &str = "webhook:";

pub const SUBSCRIPTIONS: &str = include_str!("../../infra/subscriptions.json");

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub name: String,
    pub source: Source,
    pub event_types: Vec<String>,
    pub function: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub topic: Option<String>,
    #[serde(default)]
    pub storage_stages: Vec<String>,
}

#[derive(Deserialize)]
struct SubscriptionFile {
    topics: Vec<String>,
    subscriptions: Vec<Subscription>,
}

pub fn subscriptions() -> (Vec<String>, Vec<Subscription>) {
    let file: SubscriptionFile =
        serde_json::from_str(SUBSCRIPTIONS).expect("infra/subscriptions.json is valid");
    (file.topics, file.subscriptions)
}

#[derive(Clone, Debug, Default)]
pub struct RouterOptions {
    pub duplicate: bool,
    pub reorder: bool,
    pub max_attempts: u32,
    /// Webhooks subscribed to the notification topic, as an organisation's Logic App would
    /// be: each gets the events as a JSON array (Event Grid schema), retried like the rest.
    pub notification_webhooks: Vec<String>,
}

#[derive(Clone, Debug)]
struct Delivery {
    function: String,
    event: EventGridEvent,
    attempts: u32,
    not_before: Instant,
}

pub struct Router {
    pub handler_url: String,
    pub topic_key: String,
    pub options: RouterOptions,
    pub dead_letter_file: PathBuf,
    subscriptions: Vec<Subscription>,
    queue: Mutex<VecDeque<Delivery>>,
    http: reqwest::Client,
    issuer: TokenIssuer,
    audience_of: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Topic events received, for tests and the notification subscriber.
    received: Mutex<Vec<(String, EventGridEvent)>>,
    delivered: Mutex<usize>,
    rng: Mutex<u64>,
    /// Fault injection: publishes answered 503 while this is above zero.
    failing_publishes: std::sync::atomic::AtomicU32,
    /// Fault injection: deliveries for which this answers true are lost.
    drop_rule: Mutex<Option<DropRule>>,
}

/// Decides whether a delivery (function name, event) is lost.
pub type DropRule = Box<dyn Fn(&str, &EventGridEvent) -> bool + Send + Sync>;

impl Router {
    pub fn new(
        handler_url: String,
        topic_key: String,
        options: RouterOptions,
        dead_letter_file: PathBuf,
        audience_of: Box<dyn Fn(&str) -> String + Send + Sync>,
    ) -> Self {
        Router {
            handler_url,
            topic_key,
            options,
            dead_letter_file,
            subscriptions: subscriptions().1,
            queue: Mutex::new(VecDeque::new()),
            http: reqwest::Client::new(),
            issuer: TokenIssuer::dev(),
            audience_of,
            received: Mutex::new(Vec::new()),
            delivered: Mutex::new(0),
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            failing_publishes: std::sync::atomic::AtomicU32::new(0),
            drop_rule: Mutex::new(None),
        }
    }

    /// The next `n` publishes to any topic are refused with 503, as a throttled topic would.
    pub fn fail_next_publishes(&self, n: u32) {
        self.failing_publishes
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Loses every delivery `rule` matches until cleared with `None`.
    pub fn drop_deliveries(&self, rule: Option<DropRule>) {
        *self.drop_rule.lock().unwrap() = rule;
    }

    pub fn received(&self, topic: &str) -> Vec<EventGridEvent> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn delivered(&self) -> usize {
        *self.delivered.lock().unwrap()
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap().len()
    }

    /// Queues `event` for every subscription it matches.
    fn route(&self, matches: impl Fn(&Source) -> bool, event: EventGridEvent) {
        let drop_rule = self.drop_rule.lock().unwrap();
        let mut queue = self.queue.lock().unwrap();
        for s in &self.subscriptions {
            if drop_rule
                .as_ref()
                .is_some_and(|lose| lose(&s.function, &event))
            {
                continue;
            }
            if matches(&s.source) && s.event_types.contains(&event.event_type) {
                let copies = if self.options.duplicate { 2 } else { 1 };
                for _ in 0..copies {
                    queue.push_back(Delivery {
                        function: s.function.clone(),
                        event: event.clone(),
                        attempts: 0,
                        not_before: Instant::now(),
                    });
                }
            }
        }
    }

    pub fn publish_to_topic(&self, topic: &str, event: EventGridEvent) {
        self.received
            .lock()
            .unwrap()
            .push((topic.to_string(), event.clone()));
        if topic == "notification" {
            let mut queue = self.queue.lock().unwrap();
            for hook in &self.options.notification_webhooks {
                queue.push_back(Delivery {
                    function: format!("{WEBHOOK}{hook}"),
                    event: event.clone(),
                    attempts: 0,
                    not_before: Instant::now(),
                });
            }
        }
        self.route(|s| s.topic.as_deref() == Some(topic), event);
    }

    pub fn blob_created(&self, stage_prefix: &str, event: EventGridEvent) {
        self.route(
            |s| s.storage_stages.iter().any(|p| p == stage_prefix),
            event,
        );
    }

    fn next_random(&self) -> u64 {
        let mut s = self.rng.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Delivers what is due; returns how many invocations it made.
    pub async fn deliver_due(&self) -> usize {
        let now = Instant::now();
        let mut due: Vec<Delivery> = {
            let mut queue = self.queue.lock().unwrap();
            let (ready, later): (Vec<_>, Vec<_>) =
                queue.drain(..).partition(|d| d.not_before <= now);
            queue.extend(later);
            ready
        };
        if self.options.reorder {
            for i in (1..due.len()).rev() {
                let j = (self.next_random() % (i as u64 + 1)) as usize;
                due.swap(i, j);
            }
        }
        let count = due.len();
        for mut d in due {
            let envelope = json!({
                "Data": {"event": d.event},
                "Metadata": {"sys": {"MethodName": d.function, "UtcNow": chrono::Utc::now(), "RandGuid": uuid::Uuid::new_v4()}}
            });
            let request = match d.function.strip_prefix(WEBHOOK) {
                // A webhook subscriber gets what Event Grid sends: an array of events.
                Some(url) => self
                    .http
                    .post(url)
                    .header("aeg-event-type", "Notification")
                    .json(&[&d.event]),
                None => self
                    .http
                    .post(format!("{}/{}", self.handler_url, d.function))
                    .header(
                        "X-Azure-Functions-InvocationId",
                        uuid::Uuid::new_v4().to_string(),
                    )
                    .json(&envelope),
            };
            let result = request.timeout(Duration::from_secs(600)).send().await;
            *self.delivered.lock().unwrap() += 1;
            let failure = match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!(
                    "{}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure {
                d.attempts += 1;
                let max = self.options.max_attempts.max(1);
                if d.attempts >= max {
                    tracing::warn!(function = %d.function, event_id = %d.event.id, %why, "dead-lettered");
                    let line = json!({"function": d.function, "event": d.event, "attempts": d.attempts, "lastError": why, "at": chrono::Utc::now()});
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.dead_letter_file)
                    {
                        let _ = writeln!(f, "{line}");
                    }
                } else {
                    d.not_before =
                        Instant::now() + Duration::from_millis(200 * 2u64.pow(d.attempts.min(6)));
                    self.queue.lock().unwrap().push_back(d);
                }
            }
        }
        count
    }

    /// Fires the `Reconcile` timer trigger once, as the Functions host does on schedule.
    pub async fn reconcile(&self) -> Result<Value, String> {
        let envelope = json!({"Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}}, "Metadata": {}});
        let r = self
            .http
            .post(format!("{}/Reconcile", self.handler_url))
            .json(&envelope)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    pub fn http_routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/topics/{topic}/api/events", post(publish))
            .route(
                "/discovery/v2.0/keys",
                get(|| async { ([("content-type", "application/json")], DEV_JWKS) }),
            )
            .route("/token", get(token))
            .with_state(self.clone())
    }
}

async fn publish(
    State(router): State<Arc<Router>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("aeg-sas-key").and_then(|v| v.to_str().ok()) != Some(router.topic_key.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong aeg-sas-key".into(),
        );
    }
    let failing = router
        .failing_publishes
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected failure".into());
    }
    if body.len() > 1_048_576 {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "batches are limited to 1 MB".into(),
        );
    }
    let events: Vec<EventGridEvent> = match serde_json::from_str(&body) {
        Ok(e) => e,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected an array of Event Grid events: {e}"),
            );
        }
    };
    let (topics, _) = subscriptions();
    if !topics.contains(&topic) {
        return (StatusCode::NOT_FOUND, format!("no topic {topic:?}"));
    }
    for event in events {
        router.publish_to_topic(&topic, event);
    }
    (StatusCode::OK, String::new())
}

#[derive(Deserialize)]
struct TokenQuery {
    user: String,
    roles: String,
    workspace: String,
    email: Option<String>,
}

/// `GET /token?user=alice&roles=WorkspaceResearcher,AirlockManager&workspace=ws-alpha`
async fn token(
    State(router): State<Arc<Router>>,
    Query(q): Query<TokenQuery>,
) -> (StatusCode, axum::Json<Value>) {
    let roles: Vec<&str> = q.roles.split(',').filter(|r| !r.is_empty()).collect();
    let mut spec = TokenSpec::new(&q.user, &roles, &(router.audience_of)(&q.workspace));
    if let Some(e) = q.email {
        spec.email = Some(e);
    }
    (
        StatusCode::OK,
        axum::Json(
            json!({"accessToken": router.issuer.mint(&spec), "expiresOn": spec.valid_until}),
        ),
    )
}

/// Watches stage accounts and raises `BlobCreated` for every committed blob version
/// (Azurite emits no events of its own).
pub struct BlobWatcher {
    pub store: Arc<AzureBlobStore>,
    pub accounts: Vec<(String, String)>,
    /// clamd's port: blobs landing in an in-progress stage are scanned, as Defender would.
    pub clamd_port: Option<u16>,
    seen: Mutex<HashSet<(String, String, String, String)>>,
}

impl BlobWatcher {
    /// `accounts`: (account name, stage prefix).
    pub fn new(store: Arc<AzureBlobStore>, accounts: Vec<(String, String)>) -> Self {
        BlobWatcher {
            store,
            accounts,
            clamd_port: None,
            seen: Mutex::new(HashSet::new()),
        }
    }

    pub async fn scan(&self, router: &Arc<Router>) {
        let mut now_seen = HashMap::new();
        for (account, prefix) in &self.accounts {
            let Ok(containers) = self.store.list_containers(account).await else {
                continue;
            };
            for container in containers {
                let c = crate::adapters::ContainerRef {
                    account: account.clone(),
                    container: container.clone(),
                };
                let Ok(blobs) = crate::adapters::BlobStore::list_blobs(&*self.store, &c).await
                else {
                    continue;
                };
                for b in blobs {
                    let key = (
                        account.clone(),
                        container.clone(),
                        b.name.clone(),
                        b.etag.clone(),
                    );
                    now_seen.insert(key, (prefix.clone(), b.size));
                }
            }
        }
        let fresh: Vec<_> = {
            let mut seen = self.seen.lock().unwrap();
            now_seen
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect()
        };
        for ((account, container, name, etag), (prefix, size)) in fresh {
            let blob = BlobRef {
                account,
                container,
                name,
            };
            let url = self.store.blob_url(&blob);
            router.blob_created(
                &prefix,
                blob_event(&blob, &url, &etag, size, false, chrono::Utc::now()),
            );
            if let (Some(port), true) = (
                self.clamd_port,
                prefix == "stalimip" || prefix == "stalexip",
            ) {
                // Scan in the background, like Defender: the verdict is an event of its own.
                let (store, router) = (self.store.clone(), router.clone());
                tokio::spawn(async move {
                    let verdict = match crate::adapters::BlobStore::read(&*store, &blob).await {
                        Ok((props, stream)) if props.etag == etag => {
                            super::clamav::scan(port, stream).await
                        }
                        // This version is gone (overwritten or deleted): its successor is scanned.
                        Ok(_) | Err(crate::adapters::PortError::NotFound(_)) => return,
                        Err(e) => super::clamav::Verdict {
                            result: format!("Error: {e}"),
                            malware_names: vec![],
                        },
                    };
                    let event = scan_result_event(
                        &blob,
                        &url,
                        &etag,
                        &verdict.result,
                        &verdict.malware_names,
                        None,
                        chrono::Utc::now(),
                    );
                    router.publish_to_topic("scan-result", event);
                });
            }
        }
    }
}
