//! The chaos run: many requests of mixed flows driven through the whole local stack while
//! faults are injected, then every request checked against the airlock's promises: it ends
//! where its flow ends, its data is only in the stage its status keeps, every sha256 on record
//! is the sha256 of the bytes there (and of what was uploaded), and its history verifies.
//!
//! Faults: deliveries duplicated and reordered (the stack's [`DeliveryOptions`]), the handler
//! SIGKILLed every `kill_every` and once kept down for `long_outage`, publishes that fail,
//! deliveries lost (StatusChanged, BlobCreated, ScanCompleted in turn), Blob and Cosmos calls
//! slowed down or failed through the [`crate::fault_proxy`], and Azurite restarted with its
//! data on disk. Used by the `chaos` bench (N = 1000) and, small, by a stack test.
//!
//! [`DeliveryOptions`]: airlock_testkit::delivery::DeliveryOptions

use crate::stack::LocalStack;
use crate::testing::{SasOnly, StackClient};
use airlock::domain::stages::{Stage, data_role_for, movement_for};
use airlock::domain::{AccountNames, EventGridEvent, RequestType, Status};
use airlock::ports::{BlobRef, BlobStore, ContainerRef};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One workspace needs one approval, the other two (the demo workspaces).
pub const ONE_APPROVAL: &str = "ws-alpha";
pub const TWO_APPROVALS: &str = "ws-beta";

/// What a driven request goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    Approve,
    Reject,
    ChangesThenApprove,
    CancelInDraft,
    CancelInReview,
    MalwareBlocked,
    QuorumOfTwo,
    Revoke,
}

impl Flow {
    pub const ALL: [Flow; 8] = [
        Flow::Approve,
        Flow::Reject,
        Flow::ChangesThenApprove,
        Flow::CancelInDraft,
        Flow::CancelInReview,
        Flow::MalwareBlocked,
        Flow::QuorumOfTwo,
        Flow::Revoke,
    ];

    /// The status the flow stops in.
    pub fn ends_in(self) -> Status {
        match self {
            Flow::Approve | Flow::ChangesThenApprove | Flow::QuorumOfTwo => Status::Approved,
            Flow::Reject => Status::Rejected,
            Flow::CancelInDraft | Flow::CancelInReview => Status::Cancelled,
            Flow::MalwareBlocked => Status::BlockedByScan,
            Flow::Revoke => Status::Revoked,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flow::Approve => "approve",
            Flow::Reject => "reject",
            Flow::ChangesThenApprove => "changes+resubmit",
            Flow::CancelInDraft => "cancel in draft",
            Flow::CancelInReview => "cancel in review",
            Flow::MalwareBlocked => "EICAR blocked",
            Flow::QuorumOfTwo => "quorum 2",
            Flow::Revoke => "revoke",
        }
    }

    fn workspace(self) -> &'static str {
        if self == Flow::QuorumOfTwo {
            TWO_APPROVALS
        } else {
            ONE_APPROVAL
        }
    }
}

/// How hard the run is.
#[derive(Clone, Debug)]
pub struct ChaosPlan {
    pub requests: usize,
    /// Requests driven at once.
    pub concurrency: usize,
    /// The handler is SIGKILLed this often while requests are driven.
    pub kill_every: Duration,
    /// Once, a third of the way through, the handler stays down this long.
    pub long_outage: Duration,
    /// Once, half way through, Azurite is stopped for this long and restarted on its data.
    pub azurite_down: Duration,
    /// How often one of the other faults (failing publishes, a lost delivery, a slow or
    /// failing backend for a few seconds) starts.
    pub fault_every: Duration,
    /// How long the airlock may take to settle once driving stops.
    pub quiesce_within: Duration,
    /// How long one flow may wait for one status (outages included).
    pub patience: Duration,
}

impl ChaosPlan {
    /// The run: kills every 20 s, one 5-minute outage.
    pub fn full(requests: usize) -> Self {
        ChaosPlan {
            requests,
            concurrency: 32,
            kill_every: Duration::from_secs(20),
            long_outage: Duration::from_secs(300),
            azurite_down: Duration::from_secs(10),
            fault_every: Duration::from_secs(4),
            quiesce_within: Duration::from_secs(30 * 60),
            patience: Duration::from_secs(30 * 60),
        }
    }

    /// Every kind of fault, compressed for a test.
    pub fn small(requests: usize) -> Self {
        ChaosPlan {
            requests,
            concurrency: 8,
            kill_every: Duration::from_secs(8),
            long_outage: Duration::from_secs(15),
            azurite_down: Duration::from_secs(3),
            fault_every: Duration::from_secs(2),
            quiesce_within: Duration::from_secs(5 * 60),
            patience: Duration::from_secs(5 * 60),
        }
    }
}

/// Faults injected, by kind.
#[derive(Clone, Debug, Default)]
pub struct FaultCounts {
    pub handler_kills: u64,
    pub long_outages: u64,
    pub azurite_restarts: u64,
    pub failing_publish_bursts: u64,
    pub lost_deliveries: u64,
    pub slow_blob_windows: u64,
    pub failing_blob_windows: u64,
    pub slow_cosmos_windows: u64,
    pub failing_cosmos_windows: u64,
    /// Connections the proxies refused or cut.
    pub blob_connections_failed: u64,
    pub cosmos_connections_failed: u64,
    pub duplicated: bool,
    pub reordered: bool,
    /// Each fault with the wall-clock time it began (UTC), to lay beside the handler's log
    /// when a run goes wrong.
    pub timeline: Vec<String>,
}

impl FaultCounts {
    fn began(&mut self, what: impl Into<String>) {
        self.timeline.push(format!(
            "{} {}",
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            what.into()
        ));
    }
}

/// What the run found.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub requests: usize,
    pub by_flow: BTreeMap<&'static str, usize>,
    pub faults: FaultCounts,
    /// Not where their flow ends (still moving, or ended elsewhere), with why.
    pub stuck: Vec<String>,
    /// Bytes missing from the stage the status keeps.
    pub lost: Vec<String>,
    /// Data in a stage its status does not keep, a sha256 that does not match, a history
    /// that does not verify.
    pub inconsistent: Vec<String>,
    /// A step a client could not complete (an API answer no retry could help).
    pub driver_errors: Vec<String>,
    /// Requests the driver does not know: a create retried after its answer was lost that
    /// made a second request (the driver names each create with an `Idempotency-Key`, so
    /// there should be none).
    pub extra_requests: usize,
    pub dead_letters: usize,
    /// Dead letters the handler refused (4xx), rather than missed while it was down.
    pub unexplained_dead_letters: Vec<String>,
    pub poisoned_work: usize,
    pub api_retries: u64,
    pub driving: Duration,
    pub quiesce: Duration,
    pub restarts: u32,
}

impl ChaosReport {
    /// The requests named in what went wrong (stuck, lost, inconsistent, driver errors).
    pub fn troubled_requests(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .stuck
            .iter()
            .chain(&self.lost)
            .chain(&self.inconsistent)
            .chain(&self.driver_errors)
            .flat_map(|m| m.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')))
            .filter(|w| uuid::Uuid::try_parse(w).is_ok())
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Nothing stuck, lost or inconsistent, no driver error, no request made twice, no
    /// unexplained dead letter.
    pub fn is_clean(&self) -> bool {
        self.extra_requests == 0
            && self.stuck.is_empty()
            && self.lost.is_empty()
            && self.inconsistent.is_empty()
            && self.driver_errors.is_empty()
            && self.unexplained_dead_letters.is_empty()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flows: Vec<String> = self
            .by_flow
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "requests      {} ({})", self.requests, flows.join(", "))?;
        let x = &self.faults;
        writeln!(
            f,
            "faults        handler kills {} (restarts {}), long outages {}, azurite restarts {}, failing-publish bursts {}, lost deliveries {}",
            x.handler_kills,
            self.restarts,
            x.long_outages,
            x.azurite_restarts,
            x.failing_publish_bursts,
            x.lost_deliveries
        )?;
        writeln!(
            f,
            "              blob slow/failing windows {}/{} ({} connections failed), cosmos slow/failing windows {}/{} ({} connections failed), duplicated {}, reordered {}",
            x.slow_blob_windows,
            x.failing_blob_windows,
            x.blob_connections_failed,
            x.slow_cosmos_windows,
            x.failing_cosmos_windows,
            x.cosmos_connections_failed,
            x.duplicated,
            x.reordered
        )?;
        writeln!(
            f,
            "driving       {:.0} s ({} API calls retried)",
            self.driving.as_secs_f64(),
            self.api_retries
        )?;
        writeln!(f, "quiesce       {:.0} s", self.quiesce.as_secs_f64())?;
        writeln!(
            f,
            "stuck {}  lost {}  inconsistent {}  driver errors {}  extra requests {}",
            self.stuck.len(),
            self.lost.len(),
            self.inconsistent.len(),
            self.driver_errors.len(),
            self.extra_requests
        )?;
        writeln!(
            f,
            "dead letters  {} ({} unexplained), poisoned work items {}",
            self.dead_letters,
            self.unexplained_dead_letters.len(),
            self.poisoned_work
        )?;
        for (what, list) in [
            ("stuck", &self.stuck),
            ("lost", &self.lost),
            ("inconsistent", &self.inconsistent),
            ("driver error", &self.driver_errors),
            ("unexplained dead letter", &self.unexplained_dead_letters),
        ] {
            for line in list.iter().take(10) {
                writeln!(f, "  {what}: {line}")?;
            }
        }
        Ok(())
    }
}

/// A request the driver made, and the bytes its files should hold in the end.
#[derive(Clone, Debug)]
struct Driven {
    index: usize,
    flow: Flow,
    workspace: &'static str,
    kind: RequestType,
    id: Option<String>,
    files: Vec<(String, String)>,
    error: Option<String>,
}

/// Runs the plan against `stack` (which must have the demo workspaces and, for the Blob and
/// Cosmos faults, `fault_proxies`) and checks every request.
pub async fn run(stack: Arc<LocalStack>, plan: &ChaosPlan) -> ChaosReport {
    let options = stack.engine.options();
    let mut report = ChaosReport {
        requests: plan.requests,
        ..ChaosReport::default()
    };
    report.faults.duplicated = options.duplicate;
    report.faults.reordered = options.reorder;
    for i in 0..plan.requests {
        *report.by_flow.entry(flow_of(i).name()).or_default() += 1;
    }
    let driving = Arc::new(AtomicBool::new(true));
    let retries = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let injector = tokio::spawn(inject_faults(
        stack.clone(),
        plan.clone(),
        driving.clone(),
        done.clone(),
    ));
    let started = Instant::now();
    let driver = Driver {
        stack: &stack,
        api: StackClient::new(&stack),
        patience: plan.patience,
        retries: retries.clone(),
        layout_grace: Duration::from_secs(30),
    };
    let (driving_one, done) = (&driver, &*done);
    let driven: Vec<Driven> = futures::stream::iter(0..plan.requests)
        .map(move |i| async move {
            let d = driving_one.drive(i).await;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 50 == 0 {
                eprintln!(
                    "chaos: {n}/{} flows done after {} s",
                    plan.requests,
                    started.elapsed().as_secs()
                );
            }
            d
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    report.driving = started.elapsed();
    driving.store(false, Ordering::SeqCst);
    report.faults = injector.await.unwrap_or_default();
    report.faults.duplicated = options.duplicate;
    report.faults.reordered = options.reorder;
    report.api_retries = retries.load(Ordering::Relaxed);

    let quiet = Instant::now();
    let listed = driver.settled(&driven, plan.quiesce_within).await;
    report.quiesce = quiet.elapsed();
    report.restarts = stack.handler().restarts();

    let known: HashMap<&str, &Driven> = driven
        .iter()
        .filter_map(|d| d.id.as_deref().map(|id| (id, d)))
        .collect();
    report.extra_requests = listed
        .keys()
        .filter(|(_, id)| !known.contains_key(id.as_str()))
        .count();
    for d in &driven {
        if let Some(e) = &d.error {
            report
                .driver_errors
                .push(format!("#{} {}: {e}", d.index, d.flow.name()));
        }
    }
    driver.check_all(&listed, &known, &mut report).await;
    // A driven request the lists never showed is lost outright.
    for d in &driven {
        if let Some(id) = &d.id
            && !listed.keys().any(|(_, l)| l == id)
        {
            report
                .lost
                .push(format!("{id}: not in its workspace's list"));
        }
    }
    let dead = stack.engine.dead_letters();
    report.dead_letters = dead.len();
    report.unexplained_dead_letters = dead
        .iter()
        .filter(|d| refused(&d.last_error))
        .map(|d| format!("{:?} {}: {}", d.target, d.event.event_type, d.last_error))
        .collect();
    report.poisoned_work = stack.engine.poisoned().len();
    report
}

/// Checks every request of the demo workspaces as the run's end does, knowing nothing of
/// how they were driven: each must be out of any transitional status with its data only in
/// the stage its status keeps, sha256s matching the bytes and its history verifying. Fills
/// `stuck`, `lost` and `inconsistent`.
pub async fn audit(stack: &LocalStack) -> ChaosReport {
    let driver = Driver {
        stack,
        api: StackClient::new(stack),
        patience: Duration::from_secs(60),
        retries: Arc::new(AtomicU64::new(0)),
        layout_grace: Duration::from_secs(3),
    };
    let listed = driver.list_all().await;
    let mut report = ChaosReport {
        requests: listed.len(),
        ..ChaosReport::default()
    };
    driver
        .check_all(&listed, &HashMap::new(), &mut report)
        .await;
    report
}

/// The handler answered the delivery with 4xx: it refused the event rather than missing it.
fn refused(last_error: &str) -> bool {
    last_error.as_bytes().first() == Some(&b'4')
}

fn flow_of(i: usize) -> Flow {
    Flow::ALL[i % Flow::ALL.len()]
}

enum Verdict {
    Fine,
    Stuck(String),
    Lost(String),
    Inconsistent(String),
}

/// Faults, one after another, until driving stops; returns what it injected. `done` counts
/// the flows finished so far.
///
/// The first kill, the long outage and the Azurite restart are placed by progress, not by
/// the clock, so that they fall among requests in flight however fast the machine is (a
/// quick one drove all 24 flows of the small plan in 6 s, before a clock-placed outage was
/// due): the first kill a sixth of the way through, the outage a third of the way, with the
/// rest piling up behind it, and Azurite once the handler is back and half are done, while
/// the backlog drains. All three happen even when the flows end sooner: the checks
/// afterwards then see that nothing was lost across them.
async fn inject_faults(
    stack: Arc<LocalStack>,
    plan: ChaosPlan,
    driving: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> FaultCounts {
    let mut counts = FaultCounts::default();
    let started = Instant::now();
    let requests = plan.requests as u64;
    let (sixth, third, half) = (
        requests.div_ceil(6).max(1),
        requests.div_ceil(3).max(1),
        requests.div_ceil(2).max(1),
    );
    let mut next_kill = started;
    let mut next_fault = started + plan.fault_every;
    let mut outage_owed = true;
    // When Azurite may go, if it is still owed: a moment after the handler is back.
    let mut azurite_after: Option<Instant> = None;
    let mut azurite_owed = true;
    let mut turn = 0usize;
    let mut healing: Option<Instant> = None;
    loop {
        let flows_running = driving.load(Ordering::SeqCst);
        if !flows_running && !outage_owed && !azurite_owed && counts.handler_kills > 0 {
            break;
        }
        let now = Instant::now();
        let finished = done.load(Ordering::SeqCst);
        let reached = |mark: u64| finished >= mark || !flows_running;
        if counts.handler_kills == 0 {
            if reached(sixth) {
                counts.handler_kills += 1;
                counts.began("handler killed");
                stack.handler().crash(Duration::ZERO);
                next_kill = now + plan.kill_every;
            }
        } else if outage_owed && reached(third) {
            outage_owed = false;
            counts.long_outages += 1;
            counts.began(format!("handler down for {:?}", plan.long_outage));
            tracing::warn!(
                secs = plan.long_outage.as_secs(),
                "chaos: the handler goes down"
            );
            stack.handler().crash(plan.long_outage);
            next_kill = now + plan.long_outage + plan.kill_every;
            azurite_after = Some(now + plan.long_outage + plan.kill_every / 8);
        } else if flows_running && now >= next_kill {
            counts.handler_kills += 1;
            counts.began("handler killed");
            stack.handler().crash(Duration::ZERO);
            next_kill = now + plan.kill_every;
        }
        if azurite_owed && azurite_after.is_some_and(|at| now >= at) && reached(half) {
            azurite_owed = false;
            counts.azurite_restarts += 1;
            counts.began(format!("Azurite stopped for {:?}", plan.azurite_down));
            tracing::warn!("chaos: Azurite restarts");
            let restarting = stack.clone();
            let down = plan.azurite_down;
            let restarting_at = Instant::now();
            let restarted =
                tokio::task::spawn_blocking(move || restarting.restart_azurite(down)).await;
            if matches!(restarted, Ok(Ok(()))) {
                counts.began(format!(
                    "Azurite back (saved, restarted) after {:?}",
                    restarting_at.elapsed()
                ));
            } else {
                tracing::error!(?restarted, "chaos: Azurite did not come back cleanly");
                counts.began(format!("Azurite did not come back cleanly: {restarted:?}"));
            }
        }
        if healing.is_some_and(|h| now >= h) {
            healing = None;
            counts.began("healed");
            if let Some(f) = &stack.faults {
                f.blob.heal();
                f.cosmos.heal();
            }
            stack.engine.drop_deliveries(None, false);
        }
        if flows_running && now >= next_fault && healing.is_none() {
            next_fault = now + plan.fault_every;
            turn += 1;
            healing = Some(now + plan.fault_every / 2);
            match (turn % 7, &stack.faults) {
                (0, _) => {
                    counts.failing_publish_bursts += 1;
                    counts.began("the next 5 publishes fail");
                    stack.router.fail_next_publishes(5);
                }
                (1, _) | (4, _) => {
                    counts.lost_deliveries += 1;
                    let function =
                        ["StatusChanged", "BlobCreated", "ScanCompleted"][(turn / 7) % 3];
                    counts.began(format!("deliveries to {function} lost"));
                    stack.engine.drop_deliveries(
                        Some(Box::new(move |f: &str, _: &EventGridEvent| f == function)),
                        true,
                    );
                }
                (2, Some(f)) => {
                    counts.slow_blob_windows += 1;
                    counts.began("blob slow");
                    f.blob.set_delay(Duration::from_millis(400));
                }
                (3, Some(f)) => {
                    counts.failing_blob_windows += 1;
                    counts.began("blob failing");
                    f.blob.set_refusals_per_mille(300);
                    f.blob.cut();
                }
                (5, Some(f)) => {
                    counts.slow_cosmos_windows += 1;
                    counts.began("cosmos slow");
                    f.cosmos.set_delay(Duration::from_millis(400));
                }
                (6, Some(f)) => {
                    counts.failing_cosmos_windows += 1;
                    counts.began("cosmos failing");
                    f.cosmos.set_refusals_per_mille(300);
                    f.cosmos.cut();
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(f) = &stack.faults {
        f.blob.heal();
        f.cosmos.heal();
        let (b, c) = (f.blob.counts(), f.cosmos.counts());
        counts.blob_connections_failed = b.refused + b.cut + b.backend_down;
        counts.cosmos_connections_failed = c.refused + c.cut + c.backend_down;
    }
    stack.engine.drop_deliveries(None, false);
    counts
}

/// A researcher's and managers' clients, as patient as people with a flaky connection:
/// every call is retried while the API cannot be reached or answers 429/5xx.
struct Driver<'a> {
    stack: &'a LocalStack,
    api: StackClient<'a>,
    patience: Duration,
    retries: Arc<AtomicU64>,
    /// How long a request's layout may take to settle before it counts (clean-up runs just
    /// after a final status).
    layout_grace: Duration,
}

fn transient(code: u16) -> bool {
    code == 0 || code == 429 || code >= 500
}

/// Bytes no other request carries (the release ledger would notice a repeat).
fn contents(index: usize, revision: u32, file: usize) -> Vec<u8> {
    let size = 1024 + (index * 7919 + file * 104_729) % 48_000;
    let mut out = Vec::with_capacity(size + 64);
    let mut block = Sha256::digest(format!("chaos {index} r{revision} f{file}"));
    while out.len() < size {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(size);
    out
}

impl Driver<'_> {
    /// A call, retried while it cannot help to give up; the last answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_with(method, path, token, &[], body).await
    }

    /// [`Driver::call`] with extra headers, the same on every attempt.
    async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_millis(250);
        loop {
            let (code, v) = self
                .api
                .call_with(method, path, token, headers, body.clone())
                .await;
            if !transient(code) || Instant::now() > deadline {
                return (code, v);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn get(&self, ws: &str, id: &str, token: &str) -> Result<Value, String> {
        let (code, v) = self
            .call(
                "GET",
                &format!("/workspaces/{ws}/requests/{id}"),
                token,
                None,
            )
            .await;
        if code == 200 {
            Ok(v["airlockRequest"].clone())
        } else {
            Err(format!("GET {id}: {code} {v}"))
        }
    }

    /// Waits until the request satisfies `done` (an answer that cannot change is an error).
    async fn wait(
        &self,
        ws: &str,
        id: &str,
        token: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + self.patience;
        loop {
            let r = self.get(ws, id, token).await?;
            if done(&r) {
                return Ok(r);
            }
            let status = r["status"].as_str().unwrap_or_default();
            if [
                "approved",
                "rejected",
                "blocked_by_scan",
                "cancelled",
                "failed",
                "revoked",
            ]
            .contains(&status)
            {
                return Err(format!(
                    "waiting for {what}, it ended {status}: {}",
                    r["statusMessage"]
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("waiting for {what}: still {status}"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn wait_status(
        &self,
        ws: &str,
        id: &str,
        token: &str,
        status: &str,
    ) -> Result<Value, String> {
        self.wait(ws, id, token, status, |r| r["status"] == status)
            .await
    }

    /// An action whose answer may be lost: on anything but success, the request is read
    /// again and the action counts as done when `took_effect` says so.
    async fn act(
        &self,
        ws: &str,
        id: &str,
        action: &str,
        token: &str,
        body: Value,
        took_effect: impl Fn(&Value) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.patience;
        loop {
            let (code, v) = self
                .call(
                    "POST",
                    &format!("/workspaces/{ws}/requests/{id}/{action}"),
                    token,
                    Some(body.clone()),
                )
                .await;
            if (200..300).contains(&code) {
                return Ok(());
            }
            let now = self.get(ws, id, token).await?;
            if took_effect(&now) {
                return Ok(());
            }
            if Instant::now() > deadline || !(code == 409 || transient(code)) {
                return Err(format!("{action}: {code} {v} (status {})", now["status"]));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Creates under a key of its own, so the retries after a lost answer make one request.
    async fn create(&self, ws: &str, token: &str, kind: RequestType) -> Result<String, String> {
        let key = uuid::Uuid::new_v4().to_string();
        let (code, v) = self
            .call_with(
                "POST",
                &format!("/workspaces/{ws}/requests"),
                token,
                &[("Idempotency-Key", &key)],
                Some(json!({"type": kind.as_str(), "title": "chaos", "businessJustification": "chaos run"})),
            )
            .await;
        match v["airlockRequest"]["id"].as_str() {
            Some(id) if (200..300).contains(&code) => Ok(id.to_string()),
            _ => Err(format!("create: {code} {v}")),
        }
    }

    /// Uploads through the request's link, retrying as AzCopy does.
    async fn upload(
        &self,
        ws: &str,
        id: &str,
        token: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let (code, v) = self
            .call(
                "GET",
                &format!("/workspaces/{ws}/requests/{id}/link"),
                token,
                None,
            )
            .await;
        let Some(url) = v["containerUrl"].as_str().filter(|_| code == 200) else {
            return Err(format!("link: {code} {v}"));
        };
        let link = SasOnly::new(url);
        for (name, data) in files {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match link.upload(name, data.clone()).await {
                    Ok(()) => break,
                    Err(code) if attempt < 40 && (transient(code) || code == 403) => {
                        // 403 too: a restarted Azurite may briefly refuse the signature.
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(code) => return Err(format!("upload {name}: {code}")),
                }
            }
        }
        Ok(())
    }

    async fn drive(&self, index: usize) -> Driven {
        let flow = flow_of(index);
        let kind = if index % 2 == 0 {
            RequestType::Export
        } else {
            RequestType::Import
        };
        let mut d = Driven {
            index,
            flow,
            workspace: flow.workspace(),
            kind,
            id: None,
            files: Vec::new(),
            error: None,
        };
        if let Err(e) = self.steps(&mut d).await {
            d.error = Some(format!("{} {e}", d.id.as_deref().unwrap_or("(no id)")));
        }
        d
    }

    async fn steps(&self, d: &mut Driven) -> Result<(), String> {
        let ws = d.workspace;
        let who = format!("researcher{}", d.index % 7);
        let researcher = self.stack.token(&who, &["WorkspaceResearcher"], ws);
        let manager = self.stack.token("chaos-manager1", &["AirlockManager"], ws);
        let manager2 = self.stack.token("chaos-manager2", &["AirlockManager"], ws);
        let id = self.create(ws, &researcher, d.kind).await?;
        d.id = Some(id.clone());
        self.wait_status(ws, &id, &researcher, "draft").await?;
        let mut files: Vec<(String, Vec<u8>)> = vec![(
            format!("results/part-{}.bin", d.index),
            contents(d.index, 1, 0),
        )];
        if d.index % 3 == 0 {
            files.push(("notes.bin".into(), contents(d.index, 1, 1)));
        }
        if d.flow == Flow::MalwareBlocked {
            files.push((
                "tools/eicar.com".into(),
                airlock_testkit::builders::EICAR.as_bytes().to_vec(),
            ));
        }
        self.upload(ws, &id, &researcher, &files).await?;
        d.files = files
            .iter()
            .map(|(n, b)| (n.clone(), hex::encode(Sha256::digest(b))))
            .collect();
        if d.flow == Flow::CancelInDraft {
            return self
                .act(ws, &id, "cancel", &researcher, json!({}), |r| {
                    r["status"] == "cancelled"
                })
                .await;
        }
        let submitted = |revision: u32| {
            move |r: &Value| {
                r["revision"].as_u64() == Some(u64::from(revision)) && r["status"] != "draft"
            }
        };
        self.act(ws, &id, "submit", &researcher, json!({}), submitted(1))
            .await?;
        if d.flow == Flow::MalwareBlocked {
            self.wait_status(ws, &id, &researcher, "blocked_by_scan")
                .await?;
            return Ok(());
        }
        self.wait_status(ws, &id, &manager, "in_review").await?;
        let decided = |r: &Value| r["status"] != "in_review";
        match d.flow {
            Flow::Approve | Flow::Revoke => {
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager,
                    json!({"decision": "approved", "explanation": "fine"}),
                    decided,
                )
                .await?;
                self.wait_status(ws, &id, &researcher, "approved").await?;
                if d.flow == Flow::Revoke {
                    self.act(
                        ws,
                        &id,
                        "revoke",
                        &manager,
                        json!({"reason": "chaos says so"}),
                        |r| r["status"] == "revoked",
                    )
                    .await?;
                    self.wait_status(ws, &id, &researcher, "revoked").await?;
                }
            }
            Flow::Reject => {
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager,
                    json!({"decision": "rejected", "explanation": "no"}),
                    decided,
                )
                .await?;
                self.wait_status(ws, &id, &researcher, "rejected").await?;
            }
            Flow::CancelInReview => {
                self.act(ws, &id, "cancel", &researcher, json!({}), |r| {
                    r["status"] == "cancelled"
                })
                .await?;
                self.wait_status(ws, &id, &researcher, "cancelled").await?;
            }
            Flow::ChangesThenApprove => {
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager,
                    json!({"decision": "changes_requested", "explanation": "aggregate it"}),
                    decided,
                )
                .await?;
                self.wait(ws, &id, &researcher, "draft, revision 2", |r| {
                    r["status"] == "draft" && r["revision"] == 2
                })
                .await?;
                let again: Vec<(String, Vec<u8>)> = files
                    .iter()
                    .enumerate()
                    .map(|(i, (n, _))| (n.clone(), contents(d.index, 2, i)))
                    .collect();
                self.upload(ws, &id, &researcher, &again).await?;
                d.files = again
                    .iter()
                    .map(|(n, b)| (n.clone(), hex::encode(Sha256::digest(b))))
                    .collect();
                self.act(ws, &id, "submit", &researcher, json!({}), submitted(2))
                    .await?;
                self.wait(ws, &id, &manager, "in_review, revision 2", |r| {
                    r["status"] == "in_review" && r["revision"] == 2
                })
                .await?;
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager,
                    json!({"decision": "approved", "explanation": "better", "revision": 2}),
                    decided,
                )
                .await?;
                self.wait_status(ws, &id, &researcher, "approved").await?;
            }
            Flow::QuorumOfTwo => {
                let mine = |user: &'static str| {
                    move |r: &Value| {
                        r["status"] != "in_review"
                            || r["reviews"]
                                .as_array()
                                .is_some_and(|rs| rs.iter().any(|x| x["reviewer"]["id"] == user))
                    }
                };
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager,
                    json!({"decision": "approved", "explanation": "one"}),
                    mine("chaos-manager1"),
                )
                .await?;
                self.act(
                    ws,
                    &id,
                    "review",
                    &manager2,
                    json!({"decision": "approved", "explanation": "two"}),
                    mine("chaos-manager2"),
                )
                .await?;
                self.wait_status(ws, &id, &researcher, "approved").await?;
            }
            Flow::CancelInDraft | Flow::MalwareBlocked => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Every request of both workspaces with its status, once every driven request is where
    /// its flow ends and nothing is on its way anywhere (or `within` has passed).
    async fn settled(
        &self,
        driven: &[Driven],
        within: Duration,
    ) -> BTreeMap<(String, String), String> {
        let deadline = Instant::now() + within;
        let expected: HashMap<&str, &'static str> = driven
            .iter()
            .filter_map(|d| d.id.as_deref().map(|id| (id, d.flow.ends_in().as_str())))
            .collect();
        loop {
            let listed = self.list_all().await;
            let moving = listed.iter().any(|((_, id), status)| {
                expected.get(id.as_str()).is_some_and(|e| e != status)
                    || Status::parse(status)
                        .is_some_and(|s| movement_for(s).is_some() || s == Status::Submitted)
            });
            if (!moving && !listed.is_empty()) || Instant::now() > deadline {
                return listed;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn list_all(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for ws in [ONE_APPROVAL, TWO_APPROVALS] {
            let token = self.stack.token("chaos-lister", &["AirlockManager"], ws);
            let mut next: Option<String> = None;
            loop {
                let mut path = format!("/workspaces/{ws}/requests?pageSize=100");
                if let Some(t) = &next {
                    path.push_str(&format!(
                        "&continuationToken={}",
                        airlock::domain::url::encode_component(t)
                    ));
                }
                let (code, v) = self.call("GET", &path, &token, None).await;
                if code != 200 {
                    break;
                }
                for item in v["airlockRequests"].as_array().into_iter().flatten() {
                    let r = &item["airlockRequest"];
                    if let (Some(id), Some(status)) = (r["id"].as_str(), r["status"].as_str()) {
                        out.insert((ws.to_string(), id.to_string()), status.to_string());
                    }
                }
                next = v["continuationToken"].as_str().map(str::to_string);
                if next.is_none() {
                    break;
                }
            }
        }
        out
    }

    async fn check_all(
        &self,
        listed: &BTreeMap<(String, String), String>,
        known: &HashMap<&str, &Driven>,
        report: &mut ChaosReport,
    ) {
        let checks: Vec<Verdict> = futures::stream::iter(listed.iter())
            .map(|((ws, id), status)| {
                let d = known.get(id.as_str()).copied();
                self.check(ws, id, status, d)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for v in checks {
            match v {
                Verdict::Fine => {}
                Verdict::Stuck(m) => report.stuck.push(m),
                Verdict::Lost(m) => report.lost.push(m),
                Verdict::Inconsistent(m) => report.inconsistent.push(m),
            }
        }
    }

    /// One request against the promises (its layout given `layout_grace` to settle).
    async fn check(&self, ws: &str, id: &str, status: &str, driven: Option<&Driven>) -> Verdict {
        let token = self.stack.token("chaos-checker", &["AirlockManager"], ws);
        if let Some(d) = driven
            && d.flow.ends_in().as_str() != status
        {
            let message = match self.get(ws, id, &token).await {
                Ok(r) => r["statusMessage"].to_string(),
                Err(e) => e,
            };
            return Verdict::Stuck(format!(
                "{id} ({}): {status}, expected {}: {message}",
                d.flow.name(),
                d.flow.ends_in().as_str()
            ));
        }
        let Some(status) = Status::parse(status) else {
            return Verdict::Inconsistent(format!("{id}: unknown status {status}"));
        };
        if driven.is_none() && (status == Status::Submitted || movement_for(status).is_some()) {
            return Verdict::Stuck(format!("{id}: still {}", status.as_str()));
        }
        let deadline = Instant::now() + self.layout_grace;
        loop {
            let verdict = self.check_once(ws, id, status, driven, &token).await;
            if matches!(verdict, Verdict::Fine) || Instant::now() > deadline {
                return verdict;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn check_once(
        &self,
        ws: &str,
        id: &str,
        status: Status,
        driven: Option<&Driven>,
        token: &str,
    ) -> Verdict {
        let record = match self.get(ws, id, token).await {
            Ok(r) => r,
            Err(e) => return Verdict::Lost(e),
        };
        let kind = if record["type"] == "import" {
            RequestType::Import
        } else {
            RequestType::Export
        };
        let Some(workspace) = self.stack.workspaces.iter().find(|w| w.id == ws) else {
            return Verdict::Inconsistent(format!("{id}: unknown workspace {ws}"));
        };
        let names = AccountNames::new(&self.stack.tre_id);
        let keeps = data_role_for(status)
            .map(|role| names.account(Stage::of(kind, role), &workspace.short_id));
        // Where its blobs are.
        let mut holders = Vec::new();
        for stage in Stage::ALL.iter().filter(|s| s.request_type() == kind) {
            let account = names.account(*stage, &workspace.short_id);
            let container = ContainerRef {
                account: account.clone(),
                container: id.to_string(),
            };
            match self.stack.blobs.list_blobs(&container).await {
                Ok(blobs) if !blobs.is_empty() => holders.push((account, blobs)),
                Ok(_) => {}
                Err(e) => return Verdict::Inconsistent(format!("{id}: listing {account}: {e}")),
            }
        }
        if let Some((wrong, _)) = holders.iter().find(|(a, _)| Some(a) != keeps.as_ref()) {
            return Verdict::Inconsistent(format!(
                "{id} {}: data in {wrong}, status keeps {keeps:?}",
                status.as_str()
            ));
        }
        let files = record["files"].as_array().cloned().unwrap_or_default();
        if let Some(keeps) = &keeps {
            let stored = holders.first().map(|(_, b)| b.clone()).unwrap_or_default();
            for f in &files {
                let (Some(name), sha) = (f["name"].as_str(), f["sha256"].as_str()) else {
                    continue;
                };
                if status != Status::Draft && sha.is_none() {
                    return Verdict::Inconsistent(format!(
                        "{id} {}: {name} has no sha256 on record",
                        status.as_str()
                    ));
                }
                if !stored.iter().any(|b| b.name == name) {
                    return Verdict::Lost(format!(
                        "{id} {}: {name} missing from {keeps}",
                        status.as_str()
                    ));
                }
                let blob = BlobRef {
                    account: keeps.clone(),
                    container: id.to_string(),
                    name: name.to_string(),
                };
                let actual = match self.sha256_of(&blob).await {
                    Ok(s) => s,
                    Err(e) => return Verdict::Lost(format!("{id}: reading {name}: {e}")),
                };
                if let Some(sha) = sha
                    && sha != actual
                {
                    return Verdict::Inconsistent(format!(
                        "{id}: {name} sha256 on record {sha}, bytes {actual}"
                    ));
                }
                if let Some(d) = driven
                    && let Some((_, uploaded)) = d.files.iter().find(|(n, _)| n == name)
                    && *uploaded != actual
                {
                    return Verdict::Lost(format!("{id}: {name} is not what was uploaded"));
                }
            }
            if let Some(d) = driven
                && d.flow.ends_in() == status
                && status != Status::Draft
            {
                for (name, _) in &d.files {
                    if !files.iter().any(|f| f["name"] == name.as_str()) {
                        return Verdict::Lost(format!("{id}: {name} not on record"));
                    }
                }
            }
        }
        let (code, trail) = self
            .call(
                "GET",
                &format!("/workspaces/{ws}/requests/{id}/history"),
                token,
                None,
            )
            .await;
        if code != 200 || trail["verified"] != true {
            return Verdict::Inconsistent(format!(
                "{id}: history does not verify: {code} broken at {}",
                trail["brokenAt"]
            ));
        }
        Verdict::Fine
    }

    async fn sha256_of(&self, blob: &BlobRef) -> Result<String, String> {
        let (_, mut body) = self
            .stack
            .blobs
            .read(blob)
            .await
            .map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            hasher.update(&chunk.map_err(|e| e.to_string())?);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}
