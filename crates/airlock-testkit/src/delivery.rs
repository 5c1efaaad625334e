//! The one event-delivery engine: what Event Grid and the Functions host do on Azure, for the
//! local stack and the fast tests alike.
//!
//! Events come in by topic ([`DeliveryEngine::publish`]) or as blob events of a stage account
//! ([`DeliveryEngine::blob_event`]); the engine queues one delivery per subscription in
//! `infra/subscriptions.json` that matches (the list Terraform reads too), and POSTs each to
//! the handler in the Functions host's envelope (or, for notification webhooks, as Event Grid
//! posts to a webhook). Like Event Grid it is at least once: a non-2xx answer or no answer is
//! retried with exponential back-off and dead-lettered after `max_attempts`; it can also
//! deliver every event twice and in shuffled order, to prove the handler does not care.
//!
//! It also plays the Functions host's queue trigger for `Work`: work items (JSON messages of
//! the `airlock-work` queue) are delivered with the host's retries (`max_dequeue`, then the
//! poison list) and its longer time limit. Deliveries run concurrently (`concurrency`), and
//! an event delivery that takes longer than `timeout` (Event Grid's 30 s) fails and is
//! retried, so a slow handler shows up here as it would on Azure.
//!
//! Who feeds it differs: the local router feeds it from HTTP publishes and a watcher of the
//! Azurite accounts (`airlock-local`); the in-memory airlock feeds it from the fakes
//! ([`crate::in_memory`]).

use airlock::domain::{EventGridEvent, Topic};
use airlock::functions::FunctionName;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `infra/subscriptions.json`: which events reach which function.
pub const SUBSCRIPTIONS: &str = include_str!("../../../infra/subscriptions.json");

pub const STATUS_CHANGED_TOPIC: &str = "status-changed";
pub const NOTIFICATION_TOPIC: &str = "notification";
pub const SCAN_RESULT_TOPIC: &str = "scan-result";

/// The custom topic a published event goes to, by its name in `infra/subscriptions.json`.
pub fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::StatusChanged => STATUS_CHANGED_TOPIC,
        Topic::Notification => NOTIFICATION_TOPIC,
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub name: String,
    pub source: Source,
    pub event_types: Vec<String>,
    pub function: String,
}

/// Where a subscription's events come from: a custom topic, or the system topics of the
/// stage accounts with these prefixes.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub topic: Option<String>,
    #[serde(default)]
    pub storage_stages: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SubscriptionFile {
    pub topics: Vec<String>,
    pub subscriptions: Vec<Subscription>,
}

impl SubscriptionFile {
    /// The checked-in list.
    pub fn load() -> SubscriptionFile {
        serde_json::from_str(SUBSCRIPTIONS).expect("infra/subscriptions.json is valid")
    }

    /// Whether blob events of stage accounts with this prefix reach any function.
    pub fn watches_stage(&self, prefix: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.source.storage_stages.iter().any(|p| p == prefix))
    }
}

/// How the engine delivers.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Deliver every event twice.
    pub duplicate: bool,
    /// Shuffle each batch of due deliveries (deterministically, from `seed`).
    pub reorder: bool,
    pub seed: u64,
    /// Send `Data.event` as the host sends a string value (JSON text encoded again as a JSON
    /// string) instead of an object.
    pub event_as_string: bool,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt up to 64×. Zero retries at once (fast tests).
    pub retry_base: Duration,
    /// How long one event delivery may take before it counts as failed (Event Grid: 30 s).
    pub timeout: Duration,
    /// How long one `Work` invocation may take (the Function App's `functionTimeout`).
    pub work_timeout: Duration,
    /// Invocations of a work item before it goes to the poison list (`maxDequeueCount`).
    pub max_dequeue: u32,
    /// Event deliveries in flight at once.
    pub concurrency: usize,
    /// `Work` invocations in flight at once (host.json `queues.batchSize`).
    pub work_concurrency: usize,
    /// Webhooks subscribed to the notification topic, as an organisation's Logic App would
    /// be: each gets the events as an Event Grid webhook does.
    pub notification_webhooks: Vec<String>,
    /// Dead letters are also appended here as JSON lines, when set.
    pub dead_letter_file: Option<PathBuf>,
    /// Retry as Event Grid does (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
    /// then every 12 h) instead of `retry_base` doubling.
    pub event_grid_schedule: bool,
    /// An event not delivered within this long of its first attempt is dead-lettered (Event
    /// Grid's `event_time_to_live`; `infra/azure` sets 1440 minutes).
    pub event_ttl: Duration,
}

/// Event Grid's retry schedule (learn.microsoft.com/azure/event-grid/delivery-and-retry):
/// the wait before attempt 2, 3, ...; after the last, every 12 hours until the time to live.
pub const EVENT_GRID_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
];

impl DeliveryOptions {
    /// Delivery as `infra/azure` configures Event Grid: its retry schedule, 30 attempts, a
    /// 24-hour time to live. What the local stack runs with for people (`airlock-local`).
    pub fn event_grid() -> Self {
        DeliveryOptions {
            max_attempts: 30,
            event_grid_schedule: true,
            event_ttl: Duration::from_secs(1440 * 60),
            ..DeliveryOptions::default()
        }
    }

    /// The wait before the next attempt of a delivery that has failed `attempts` times.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        if self.event_grid_schedule {
            let i = attempts.max(1) as usize - 1;
            EVENT_GRID_SCHEDULE
                .get(i)
                .copied()
                .unwrap_or(Duration::from_secs(12 * 3600))
        } else {
            self.retry_base * 2u32.pow(attempts.min(6))
        }
    }
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            duplicate: false,
            reorder: false,
            seed: 0x9E37_79B9_7F4A_7C15,
            event_as_string: false,
            max_attempts: 5,
            retry_base: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
            work_timeout: Duration::from_secs(2 * 3600),
            max_dequeue: 5,
            concurrency: 8,
            work_concurrency: 4,
            notification_webhooks: Vec::new(),
            dead_letter_file: None,
            event_grid_schedule: false,
            event_ttl: Duration::from_secs(1440 * 60),
        }
    }
}

/// Where a delivery goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A function of the handler, by name.
    Function(String),
    /// A webhook subscribed to the notification topic.
    Webhook(String),
}

#[derive(Clone, Debug)]
struct Delivery {
    target: Target,
    event: EventGridEvent,
    attempts: u32,
    not_before: Instant,
    /// When it was first due: the time to live runs from here.
    first_due: Instant,
}

/// A queued work item (the text of a queue message) and how often it was dequeued.
#[derive(Clone, Debug)]
struct WorkDelivery {
    /// The queue message id (the host passes it in `Metadata.Id`).
    id: String,
    text: String,
    dequeue_count: u32,
    not_before: Instant,
}

/// One due delivery of either kind.
enum Due {
    Event(Box<Delivery>),
    Work(WorkDelivery),
}

/// A work item given up on after `max_dequeue` invocations.
#[derive(Clone, Debug)]
pub struct Poisoned {
    pub text: String,
    pub dequeue_count: u32,
    pub last_error: String,
}

/// A delivery given up on.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub target: Target,
    pub event: EventGridEvent,
    pub attempts: u32,
    pub last_error: String,
}

/// Decides whether a delivery (function name, event) is lost.
pub type DropRule = Box<dyn Fn(&str, &EventGridEvent) -> bool + Send + Sync>;

struct Drop {
    rule: DropRule,
    /// Lose only the first match, then clear.
    once: bool,
}

pub struct DeliveryEngine {
    handler_url: String,
    options: Mutex<DeliveryOptions>,
    subscriptions: SubscriptionFile,
    queue: Mutex<VecDeque<Delivery>>,
    work: Mutex<VecDeque<WorkDelivery>>,
    poisoned: Mutex<Vec<Poisoned>>,
    event_slots: std::sync::Arc<tokio::sync::Semaphore>,
    work_slots: std::sync::Arc<tokio::sync::Semaphore>,
    in_flight: AtomicUsize,
    http: reqwest::Client,
    received: Mutex<Vec<(String, EventGridEvent)>>,
    dead_letters: Mutex<Vec<DeadLetter>>,
    delivered: AtomicUsize,
    rng: Mutex<u64>,
    drop: Mutex<Option<Drop>>,
    /// While set, nothing is delivered (the host waits for its handler to be ready).
    paused: std::sync::atomic::AtomicBool,
}

impl DeliveryEngine {
    pub fn new(handler_url: String, options: DeliveryOptions) -> Self {
        let (events, works) = (options.concurrency.max(1), options.work_concurrency.max(1));
        DeliveryEngine {
            handler_url,
            rng: Mutex::new(options.seed.max(1)),
            options: Mutex::new(options),
            subscriptions: SubscriptionFile::load(),
            queue: Mutex::new(VecDeque::new()),
            work: Mutex::new(VecDeque::new()),
            poisoned: Mutex::new(Vec::new()),
            event_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(events)),
            work_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(works)),
            in_flight: AtomicUsize::new(0),
            // Well under the handler's 2-minute idle close, so a pooled connection never races it.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            received: Mutex::new(Vec::new()),
            dead_letters: Mutex::new(Vec::new()),
            delivered: AtomicUsize::new(0),
            drop: Mutex::new(None),
            paused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn handler_url(&self) -> &str {
        &self.handler_url
    }

    pub fn subscriptions(&self) -> &SubscriptionFile {
        &self.subscriptions
    }

    pub fn options(&self) -> DeliveryOptions {
        self.options.lock().unwrap().clone()
    }

    pub fn set_options(&self, options: DeliveryOptions) {
        *self.rng.lock().unwrap() = options.seed.max(1);
        *self.options.lock().unwrap() = options;
    }

    /// Loses deliveries that `rule` matches: only the first when `once`, else every one
    /// until cleared with `None`.
    pub fn drop_deliveries(&self, rule: Option<DropRule>, once: bool) {
        *self.drop.lock().unwrap() = rule.map(|rule| Drop { rule, once });
    }

    /// An event published to a custom topic.
    pub fn publish(&self, topic: &str, event: EventGridEvent) {
        self.received
            .lock()
            .unwrap()
            .push((topic.to_string(), event.clone()));
        if topic == NOTIFICATION_TOPIC {
            for hook in self.options().notification_webhooks {
                self.enqueue(Target::Webhook(hook), &event);
            }
        }
        self.route(|s| s.topic.as_deref() == Some(topic), event);
    }

    /// A blob event from the system topic of a stage account with this prefix.
    pub fn blob_event(&self, stage_prefix: &str, event: EventGridEvent) {
        self.route(
            |s| s.storage_stages.iter().any(|p| p == stage_prefix),
            event,
        );
    }

    fn route(&self, matches: impl Fn(&Source) -> bool, event: EventGridEvent) {
        let functions: Vec<String> = self
            .subscriptions
            .subscriptions
            .iter()
            .filter(|s| matches(&s.source) && s.event_types.contains(&event.event_type))
            .map(|s| s.function.clone())
            .collect();
        for function in functions {
            if self.lost(&function, &event) {
                continue;
            }
            self.enqueue(Target::Function(function), &event);
        }
    }

    fn lost(&self, function: &str, event: &EventGridEvent) -> bool {
        let mut drop = self.drop.lock().unwrap();
        let Some(d) = drop.as_ref() else {
            return false;
        };
        if !(d.rule)(function, event) {
            return false;
        }
        if d.once {
            *drop = None;
        }
        true
    }

    fn enqueue(&self, target: Target, event: &EventGridEvent) {
        let copies = if self.options().duplicate { 2 } else { 1 };
        let mut queue = self.queue.lock().unwrap();
        for _ in 0..copies {
            queue.push_back(Delivery {
                target: target.clone(),
                event: event.clone(),
                attempts: 0,
                not_before: Instant::now(),
                first_due: Instant::now(),
            });
        }
    }

    /// A message put on the work queue (delivered twice with `duplicate`, as a queue may).
    pub fn enqueue_work(&self, text: String) {
        let copies = if self.options().duplicate { 2 } else { 1 };
        let mut work = self.work.lock().unwrap();
        for _ in 0..copies {
            work.push_back(WorkDelivery {
                id: uuid::Uuid::new_v4().to_string(),
                text: text.clone(),
                dequeue_count: 0,
                not_before: Instant::now(),
            });
        }
    }

    /// Work items given up on (the poison queue).
    pub fn poisoned(&self) -> Vec<Poisoned> {
        self.poisoned.lock().unwrap().clone()
    }

    /// Events published to `topic` so far.
    pub fn received(&self, topic: &str) -> Vec<EventGridEvent> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Invocations made so far (including failed ones).
    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }

    /// Deliveries waiting (due or backing off), work items included.
    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap().len() + self.work.lock().unwrap().len()
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters.lock().unwrap().clone()
    }

    fn next_random(&self) -> u64 {
        // xorshift64: deterministic for a seed, no dependency needed.
        let mut s = self.rng.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Delivers what is due now and waits for those deliveries; returns how many it
    /// attempted.
    pub async fn deliver_due(&self) -> usize {
        self.deliver(false).await
    }

    /// Starts what is due now without waiting for it, as Event Grid and the Functions host
    /// do: event deliveries and work items run in separate pools of `concurrency` slots, so
    /// a long work item never holds up an event. Returns how many it started.
    pub fn dispatch_due(self: &std::sync::Arc<Self>) -> usize {
        if self.paused.load(Ordering::SeqCst) {
            return 0;
        }
        let due = self.take_due(false);
        let mut count = 0;
        let options = self.options();
        for d in due {
            let pool = match d {
                Due::Event(_) => self.event_slots.clone(),
                Due::Work(_) => self.work_slots.clone(),
            };
            // A full pool leaves its item queued for the next round; the other pool goes on.
            let Ok(permit) = pool.try_acquire_owned() else {
                match d {
                    Due::Event(e) => self.queue.lock().unwrap().push_back(*e),
                    Due::Work(w) => self.work.lock().unwrap().push_back(w),
                }
                continue;
            };
            count += 1;
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let (engine, options) = (self.clone(), options.clone());
            tokio::spawn(async move {
                engine.deliver_one(d, &options).await;
                engine.in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            });
        }
        count
    }

    /// Holds (true) or resumes deliveries: the Functions host delivers nothing while its
    /// custom handler is down or not yet ready; what is due waits in the queue.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Whether deliveries are held (the handler is down or not ready yet).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Puts every dead letter back in the queue as a new delivery (attempts and time to live
    /// start again), as an operator re-drives dead-lettered events; returns how many.
    pub fn replay_dead_letters(&self) -> usize {
        let letters: Vec<DeadLetter> = std::mem::take(&mut *self.dead_letters.lock().unwrap());
        let mut queue = self.queue.lock().unwrap();
        for l in &letters {
            queue.push_back(Delivery {
                target: l.target.clone(),
                event: l.event.clone(),
                attempts: 0,
                not_before: Instant::now(),
                first_due: Instant::now(),
            });
        }
        letters.len()
    }

    /// Deliveries under way (started by [`DeliveryEngine::dispatch_due`]).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Takes what is due (everything with `ignore_backoff`), shuffled when asked.
    fn take_due(&self, ignore_backoff: bool) -> Vec<Due> {
        let now = Instant::now();
        let mut due: Vec<Due> = {
            let mut queue = self.queue.lock().unwrap();
            let (ready, later): (Vec<_>, Vec<_>) = queue
                .drain(..)
                .partition(|d| ignore_backoff || d.not_before <= now);
            queue.extend(later);
            ready.into_iter().map(|d| Due::Event(Box::new(d))).collect()
        };
        {
            let mut work = self.work.lock().unwrap();
            let (ready, later): (Vec<_>, Vec<_>) = work
                .drain(..)
                .partition(|d| ignore_backoff || d.not_before <= now);
            work.extend(later);
            due.extend(ready.into_iter().map(Due::Work));
        }
        if self.options().reorder {
            for i in (1..due.len()).rev() {
                let j = (self.next_random() % (i as u64 + 1)) as usize;
                due.swap(i, j);
            }
        }
        due
    }

    /// Delivers everything due (everything queued with `ignore_backoff`: the fast tests'
    /// "let time pass") and waits for it.
    async fn deliver(&self, ignore_backoff: bool) -> usize {
        use futures::StreamExt;
        let due = self.take_due(ignore_backoff);
        let count = due.len();
        let options = self.options();
        futures::stream::iter(due)
            .for_each_concurrent(options.concurrency.max(1), |d| {
                let options = options.clone();
                async move { self.deliver_one(d, &options).await }
            })
            .await;
        count
    }

    async fn deliver_one(&self, d: Due, options: &DeliveryOptions) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        match d {
            Due::Event(d) => self.deliver_event(*d, options).await,
            Due::Work(w) => self.deliver_work(w, options).await,
        }
    }

    async fn deliver_event(&self, mut d: Delivery, options: &DeliveryOptions) {
        let result = match &d.target {
            Target::Function(name) => self.invoke_with(name, &d.event, options).await,
            Target::Webhook(url) => self.post_webhook(url, &d.event, options).await,
        };
        let Err(why) = result else { return };
        d.attempts += 1;
        let next = Instant::now() + options.retry_delay(d.attempts);
        if d.attempts >= options.max_attempts.max(1) {
            self.dead_letter(d, why, options);
        } else if next > d.first_due + options.event_ttl {
            let why = format!("{why} (not delivered within its time to live)");
            self.dead_letter(d, why, options);
        } else {
            d.not_before = next;
            self.queue.lock().unwrap().push_back(d);
        }
    }

    /// Invokes `Work` with one message as the Functions host's queue trigger does; a failed
    /// invocation makes the message visible again after a pause, up to `max_dequeue` times.
    async fn deliver_work(&self, mut w: WorkDelivery, options: &DeliveryOptions) {
        w.dequeue_count += 1;
        let envelope = crate::host_envelopes::queue_message(
            &w.text,
            &w.id,
            w.dequeue_count,
            FunctionName::Work.as_str(),
        );
        let result = self
            .post_function(FunctionName::Work.as_str(), &envelope, options.work_timeout)
            .await;
        let Err(why) = result else { return };
        if w.dequeue_count >= options.max_dequeue.max(1) {
            tracing::warn!(message = %w.text, %why, "work item poisoned");
            self.poisoned.lock().unwrap().push(Poisoned {
                text: w.text,
                dequeue_count: w.dequeue_count,
                last_error: why,
            });
        } else {
            w.not_before = Instant::now() + options.retry_base * 2u32.pow(w.dequeue_count.min(6));
            self.work.lock().unwrap().push_back(w);
        }
    }

    fn dead_letter(&self, d: Delivery, why: String, options: &DeliveryOptions) {
        tracing::warn!(target = ?d.target, event_id = %d.event.id, %why, "dead-lettered");
        if let Some(file) = &options.dead_letter_file {
            let function = match &d.target {
                Target::Function(f) => f.clone(),
                Target::Webhook(url) => format!("webhook:{url}"),
            };
            let line = json!({"function": function, "event": d.event, "attempts": d.attempts, "lastError": why, "at": chrono::Utc::now()});
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = written {
                tracing::error!(error = %e, file = %file.display(), "writing a dead letter");
            }
        }
        self.dead_letters.lock().unwrap().push(DeadLetter {
            target: d.target,
            event: d.event,
            attempts: d.attempts,
            last_error: why,
        });
    }

    /// Delivers until nothing is queued, calling `feed` before each round so that what a
    /// delivery caused is delivered too; returns how many deliveries it made.
    pub async fn settle(&self, mut feed: impl FnMut()) -> Result<usize, String> {
        let mut total = 0;
        for _ in 0..500 {
            feed();
            if self.pending() == 0 {
                return Ok(total);
            }
            total += self.deliver(true).await;
        }
        Err("deliveries never settled after 500 rounds".into())
    }

    /// POSTs one event to a function as the Functions host would; `Err` describes a failed
    /// invocation.
    pub async fn invoke(
        &self,
        function: FunctionName,
        event: &EventGridEvent,
    ) -> Result<Value, String> {
        self.invoke_with(function.as_str(), event, &self.options())
            .await
    }

    async fn invoke_with(
        &self,
        function: &str,
        event: &EventGridEvent,
        options: &DeliveryOptions,
    ) -> Result<Value, String> {
        let event_json = serde_json::to_value(event).expect("events serialise");
        let envelope =
            crate::host_envelopes::event_grid(&event_json, options.event_as_string, function);
        self.post_function(function, &envelope, options.timeout)
            .await
    }

    /// Fires the `Reconcile` timer trigger once, as the Functions host does on schedule.
    pub async fn reconcile(&self) -> Result<Value, String> {
        let envelope = crate::host_envelopes::timer(FunctionName::Reconcile.as_str());
        let timeout = self.options().timeout;
        self.post_function(FunctionName::Reconcile.as_str(), &envelope, timeout)
            .await
    }

    async fn post_function(
        &self,
        function: &str,
        envelope: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/{function}", self.handler_url))
            // `DefaultHttpWorkerService.AddHeaders` in the Functions host.
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("X-Azure-Functions-HostVersion", "4.1040.100")
            .header("User-Agent", "Azure-Functions-Host/4.1040.100")
            .timeout(timeout)
            .json(envelope)
            .send()
            .await
            .map_err(|e| no_answer(e, timeout))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    /// What Event Grid sends a webhook subscriber: an array of events.
    async fn post_webhook(
        &self,
        url: &str,
        event: &EventGridEvent,
        options: &DeliveryOptions,
    ) -> Result<Value, String> {
        let response = self
            .http
            .post(url)
            .header("aeg-event-type", "Notification")
            .timeout(options.timeout)
            .json(&[event])
            .send()
            .await
            .map_err(|e| no_answer(e, options.timeout))?;
        let status = response.status();
        if status.is_success() {
            Ok(Value::Null)
        } else {
            Err(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            ))
        }
    }
}

/// Why a delivery got no answer; a timeout says so plainly (Event Grid counts a delivery
/// unanswered after 30 s as failed and retries it, however far the handler got).
fn no_answer(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} ms: timed out", timeout.as_millis())
    } else {
        e.to_string()
    }
}
