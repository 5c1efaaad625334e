//! `Reconcile` (timer): heals what a lost event or a crash left behind. Handlers are
//! idempotent, so re-driving is always safe; a request is failed only when waiting longer
//! cannot help, with a message that says what went wrong.

use crate::app::Deps;
use crate::app::movement::{container, drive};
use crate::app::outcome::{FunctionError, Outcome};
use crate::app::record::{fail, flush_outbox, modify};
use crate::app::settle::{Hashing, settle_file};
use crate::domain::request::{Applied, VerdictWait};
use crate::domain::stages::{StageRole, movement_for};
use crate::domain::{AirlockRequest, ScanVerdict, Status, Workspace};
use crate::ports::{
    ContainerRef, DEFENDER_RESULT_TAG, DEFENDER_TIME_TAG, Measurement, OrderBy, PortError,
    RequestQuery,
};

/// Where Event Grid writes the events it could not deliver (`infra/azure`: the
/// subscriptions' `storage_blob_dead_letter_destination`).
pub const DEAD_LETTER_CONTAINER: &str = "deadletters";
use tracing::warn;

pub async fn run(deps: &Deps) -> Result<Outcome, FunctionError> {
    let mut republished = 0;
    let mut redriven = 0;
    let mut failed = 0;
    let mut cleaned = 0;
    let mut reminded = 0;
    let mut errors = Vec::new();
    let mut gauges = Vec::new();
    for ws in deps.workspaces.list().await? {
        for request in all(
            deps,
            &ws,
            RequestQuery {
                with_pending_events: true,
                order_by: OrderBy::Unordered,
                ..Default::default()
            },
        )
        .await?
        {
            let oldest = request.outbox.iter().map(|p| p.event.event_time).min();
            if oldest.is_some_and(|t| deps.clock.now() - t >= deps.settings.outbox_grace)
                && let Some(current) = deps.requests.get(&ws.id, &request.id).await?
            {
                match flush_outbox(deps, current).await {
                    (_, None) => republished += 1,
                    (_, Some(e)) => errors.push(format!("{}: {e}", request.id)),
                }
            }
        }
        let stuck = all(
            deps,
            &ws,
            RequestQuery {
                statuses: Status::transitional(),
                order_by: OrderBy::Unordered,
                ..Default::default()
            },
        )
        .await?;
        let now = deps.clock.now();
        let stuck_count = stuck
            .iter()
            .filter(|r| now - r.updated_when >= deps.settings.redrive_after)
            .count();
        let scan_timeout = chrono::Duration::minutes(ws.policy.scan_timeout_minutes.into());
        let verdicts_overdue = stuck
            .iter()
            .filter(|r| r.verdict_wait(now, scan_timeout) != VerdictWait::OnTime)
            .count();
        for request in stuck {
            // Every transitional status moves files somewhere (a domain table test says so).
            let Some((_, to)) = movement_for(request.status) else {
                continue;
            };
            match heal(deps, &ws, &request, to).await {
                Ok(Healed::Redriven) => redriven += 1,
                Ok(Healed::Failed) => failed += 1,
                Ok(Healed::Waiting) => {}
                Err(e) => {
                    warn!(request_id = %request.id, error = %e, "re-driving failed");
                    errors.push(format!("{}: {e}", request.id));
                }
            }
        }
        let in_review = all(
            deps,
            &ws,
            RequestQuery {
                statuses: vec![Status::InReview],
                order_by: OrderBy::Unordered,
                ..Default::default()
            },
        )
        .await?;
        let gauge = Gauges {
            workspace: ws.id.clone(),
            in_review: in_review.len(),
            oldest_review_hours: in_review
                .iter()
                .filter_map(|r| r.waiting_for_review(now))
                .max()
                .map_or(0, |d| d.num_hours()),
            overdue_reviews: in_review
                .iter()
                .filter(|r| {
                    ws.policy.review_deadline_hours > 0
                        && r.waiting_for_review(now).is_some_and(|d| {
                            d >= chrono::Duration::hours(ws.policy.review_deadline_hours.into())
                        })
                })
                .count(),
            stuck: stuck_count,
            verdicts_overdue,
        };
        // One line per workspace and run, for charts and alerts (docs/operating.md).
        tracing::info!(
            target: "airlock.metrics",
            workspace = %gauge.workspace,
            in_review = gauge.in_review,
            oldest_review_hours = gauge.oldest_review_hours,
            overdue_reviews = gauge.overdue_reviews,
            stuck = gauge.stuck,
            verdicts_overdue = gauge.verdicts_overdue,
            "airlock metrics"
        );
        gauges.push(gauge);
        if ws.policy.review_deadline_hours > 0 {
            for request in in_review {
                if request
                    .review_overdue(&ws.policy, deps.clock.now())
                    .is_none()
                {
                    continue;
                }
                match modify::<FunctionError>(deps, &ws, &request.id, |r, ctx| {
                    Ok(r.remind_reviewers(ctx))
                })
                .await
                {
                    Ok(m) if matches!(m.applied, Applied::Changed) => reminded += 1,
                    Ok(_) => {}
                    Err(e) => {
                        warn!(request_id = %request.id, error = %e, "the review reminder failed");
                        errors.push(format!("{}: {e}", request.id));
                    }
                }
            }
        }
        for request in unclean_terminal(deps, &ws).await? {
            // Its StatusChanged was lost (dead-lettered): the clean-up it drives never ran.
            match drive(deps, &ws, &request).await {
                Ok(_) => cleaned += 1,
                Err(e) => {
                    warn!(request_id = %request.id, error = %e, "clean-up failed");
                    errors.push(format!("{}: {e}", request.id));
                }
            }
        }
    }
    let mut measurements: Vec<Measurement> = gauges.iter().flat_map(Gauges::measurements).collect();
    let mut gauges: Vec<String> = gauges.iter().map(Gauges::line).collect();
    // The work queue, once per run: how much hashing waits, and since when.
    match deps.work.backlog().await {
        Ok(backlog) => {
            let oldest_seconds = backlog
                .oldest
                .map_or(0, |t| (deps.clock.now() - t).num_seconds().max(0));
            measurements.push(Measurement::new(
                "airlock.work_queue.messages",
                backlog.messages as f64,
            ));
            measurements.push(Measurement::new(
                "airlock.work_queue.oldest_seconds",
                oldest_seconds as f64,
            ));
            tracing::info!(
                target: "airlock.metrics",
                work_queue_messages = backlog.messages,
                work_queue_oldest_seconds = oldest_seconds,
                "airlock metrics"
            );
            gauges.push(format!(
                "work queue: {}{} waiting (oldest {oldest_seconds} s)",
                backlog.messages,
                if backlog.messages >= crate::ports::BACKLOG_PEEK {
                    "+"
                } else {
                    ""
                }
            ));
        }
        Err(e) => errors.push(format!("work queue: {e}")),
    }
    // Events Event Grid gave up on (after 24 hours of retries) wait as blobs in the host
    // account's `deadletters` container until an operator re-drives them.
    let dead_letters = ContainerRef {
        account: deps.names.host_account(),
        container: DEAD_LETTER_CONTAINER.into(),
    };
    let waiting = match deps.blobs.list_blobs(&dead_letters).await {
        Ok(letters) => Some(letters.len()),
        // No container: nothing was ever dead-lettered.
        Err(PortError::NotFound(_)) => Some(0),
        Err(e) => {
            errors.push(format!("dead letters: {e}"));
            None
        }
    };
    if let Some(waiting) = waiting {
        tracing::info!(target: "airlock.metrics", dead_letters = waiting, "airlock metrics");
        measurements.push(Measurement::new("airlock.dead_letters", waiting as f64));
        gauges.push(format!("dead letters: {waiting}"));
    }
    // What this run could not do: an alert on it finds a Reconcile that keeps failing.
    measurements.push(Measurement::new(
        "airlock.reconcile.errors",
        errors.len() as f64,
    ));
    // Charts and alerts (Application Insights custom metrics on Azure): best-effort, as the
    // port says; the next run measures again.
    if let Err(e) = deps.metrics.publish(deps.clock.now(), &measurements).await {
        warn!(error = %e, "publishing the gauges as metrics failed");
        errors.push(format!("metrics: {e}"));
    }
    let summary = format!(
        "republished {republished} outbox(es), re-drove {redriven} request(s), failed {failed}, cleaned up after {cleaned}, reminded reviewers of {reminded}; {}",
        gauges.join("; ")
    );
    if errors.is_empty() {
        Ok(Outcome::Done(summary))
    } else {
        Ok(Outcome::Done(format!(
            "{summary}; errors: {}",
            errors.join("; ")
        )))
    }
}

/// What a workspace looks like at this run: what an operator charts and alerts on.
struct Gauges {
    workspace: String,
    in_review: usize,
    oldest_review_hours: i64,
    overdue_reviews: usize,
    /// Transitional requests past the re-drive delay (being healed).
    stuck: usize,
    /// Submitted requests with a scan verdict past the scan timeout.
    verdicts_overdue: usize,
}

impl Gauges {
    /// The same figures as metrics, split by workspace (docs/operating.md names them).
    fn measurements(&self) -> Vec<Measurement> {
        let ws = |m: Measurement| m.with("workspace", self.workspace.clone());
        vec![
            ws(Measurement::new(
                "airlock.requests.in_review",
                self.in_review as f64,
            )),
            ws(Measurement::new(
                "airlock.reviews.oldest_waiting_hours",
                self.oldest_review_hours as f64,
            )),
            ws(Measurement::new(
                "airlock.reviews.overdue",
                self.overdue_reviews as f64,
            )),
            ws(Measurement::new(
                "airlock.requests.stuck",
                self.stuck as f64,
            )),
            ws(Measurement::new(
                "airlock.scans.verdicts_overdue",
                self.verdicts_overdue as f64,
            )),
        ]
    }

    fn line(&self) -> String {
        format!(
            "{}: {} in review (oldest {} h, {} past the deadline), {} stuck, {} verdict(s) overdue",
            self.workspace,
            self.in_review,
            self.oldest_review_hours,
            self.overdue_reviews,
            self.stuck,
            self.verdicts_overdue
        )
    }
}

async fn all(
    deps: &Deps,
    ws: &Workspace,
    mut query: RequestQuery,
) -> Result<Vec<AirlockRequest>, FunctionError> {
    query.page_size = 100;
    let mut out = Vec::new();
    loop {
        let page = deps.requests.query(&ws.id, &query).await?;
        out.extend(page.items);
        match page.continuation {
            Some(token) => query.continuation = Some(token),
            None => return Ok(out),
        }
    }
}

/// Requests in a final status for longer than the re-drive delay whose clean-up ("data
/// removed") is not on the record since they got there. The query reads only those (an
/// index key the store keeps, [`AirlockRequest::awaits_clean_up`]): finished and cleaned
/// requests, however many, cost `Reconcile` nothing.
async fn unclean_terminal(
    deps: &Deps,
    ws: &Workspace,
) -> Result<Vec<AirlockRequest>, FunctionError> {
    let now = deps.clock.now();
    let awaiting = all(
        deps,
        ws,
        RequestQuery {
            awaiting_clean_up: true,
            order_by: OrderBy::Unordered,
            ..Default::default()
        },
    )
    .await?;
    Ok(awaiting
        .into_iter()
        .filter(|r| r.awaits_clean_up() && now - r.updated_when >= deps.settings.redrive_after)
        .collect())
}

/// Records, for each sealed file still without a verdict on its sealed version, the verdict
/// Defender wrote into the sealed blob's index tags, if it did and the blob is still the
/// sealed version. Returns how many were recorded.
async fn verdicts_from_tags(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<usize, FunctionError> {
    let mut recorded = 0;
    let sealed = container(deps, ws, request, StageRole::InProgress);
    for file in request.files.iter().filter(|f| !f.has_verdict_for_seal()) {
        let Some(etag) = &file.etag else { continue };
        let blob = sealed.blob(&file.name);
        let tags = match deps.blobs.tags(&blob).await {
            Ok(tags) => tags,
            Err(PortError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(result) = tags.get(DEFENDER_RESULT_TAG) else {
            continue;
        };
        // Tags do not change a blob's version: the record is about the sealed copy only
        // if the blob still is that version.
        match deps.blobs.properties(&blob).await? {
            Some(p) if &p.etag == etag => {}
            _ => continue,
        }
        let scanned_at = tags
            .get(DEFENDER_TIME_TAG)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| deps.clock.now(), |t| t.with_timezone(&chrono::Utc));
        let verdict = ScanVerdict {
            result: result.clone(),
            malware_names: vec![],
            scanned_at,
            etag: Some(etag.clone()),
        };
        let m = modify::<FunctionError>(deps, ws, &request.id, |r, ctx| {
            r.record_verdict(&file.name, verdict.clone(), ctx)
                .map_err(FunctionError::from)
        })
        .await?;
        if m.applied == Applied::Changed {
            tracing::info!(file = %file.name, %result, "verdict taken from Defender's index tag (its event never came)");
            recorded += 1;
        }
    }
    Ok(recorded)
}

enum Healed {
    Waiting,
    Redriven,
    Failed,
}

/// Re-drives (or, past its deadlines, fails) a request whose transitional status moves its
/// files to the `to` stage.
async fn heal(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
    to: StageRole,
) -> Result<Healed, FunctionError> {
    let age = deps.clock.now() - request.updated_when;
    // An external gate that did not answer by its deadline fails the request, like a missing
    // scan verdict; one that still has time is waited for (its files are all in place).
    if let Some(message) = request.overdue_gates(deps.clock.now()) {
        fail(deps, ws, request, message).await?;
        return Ok(Healed::Failed);
    }
    if !request.unanswered_gates().is_empty() {
        return Ok(Healed::Waiting);
    }
    if age < deps.settings.redrive_after {
        return Ok(Healed::Waiting);
    }
    let minutes = age.num_minutes();
    if request.status == Status::Submitted && ws.policy.scan_required {
        // A verdict event can be lost (dead-lettered, or never sent); Defender's own record
        // on the blob is the second source. Only then is a missing verdict overdue.
        if verdicts_from_tags(deps, ws, request).await? > 0 {
            return Ok(Healed::Redriven);
        }
        if let Some(healed) = overdue_verdicts(deps, ws, request).await? {
            return Ok(healed);
        }
    }
    if age >= deps.settings.give_up_after {
        let pending: Vec<&str> = request
            .files
            .iter()
            .filter(|f| f.arrived_in != Some(to))
            .filter(|f| to != StageRole::Approved || f.released())
            .map(|f| f.name.as_str())
            .collect();
        let message = format!(
            "stuck in {} for {minutes} minutes; files never reached the {to:?} stage: {}",
            request.status,
            pending.join(", ")
        );
        fail(deps, ws, request, message).await?;
        return Ok(Healed::Failed);
    }
    drive(deps, ws, request).await?;
    for file in &request.files {
        // Re-read each time: settling one file can move the request on.
        let Some(current) = deps.requests.get(&ws.id, &request.id).await? else {
            break;
        };
        if current.value.status != request.status {
            break;
        }
        settle_file(deps, ws, &current.value, to, &file.name, Hashing::Queue).await?;
    }
    Ok(Healed::Redriven)
}

/// A submitted request whose malware scan verdicts are overdue: the first time, the scanner
/// is asked to scan the in-progress account again; a further timeout later (or at once when
/// no rescan can be asked), the request fails naming the files. `None` while on time.
async fn overdue_verdicts(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<Option<Healed>, FunctionError> {
    let timeout = chrono::Duration::minutes(ws.policy.scan_timeout_minutes.into());
    match request.verdict_wait(deps.clock.now(), timeout) {
        VerdictWait::OnTime => Ok(None),
        VerdictWait::AskRescan(files) => {
            let account = container(deps, ws, request, StageRole::InProgress).account;
            match deps.scans.rescan_account(&account).await {
                Ok(()) | Err(PortError::Conflict(_)) => {
                    modify::<FunctionError>(deps, ws, &request.id, |r, ctx| {
                        Ok(r.record_rescan_requested(&files, ctx))
                    })
                    .await?;
                    tracing::warn!(request_id = %request.id, %account, files = %files.join(", "), "verdicts overdue: asked for a rescan");
                    Ok(Some(Healed::Redriven))
                }
                Err(e) if e.is_retryable() => Err(e.into()),
                Err(e) => {
                    let message = format!(
                        "no malware scan verdict within {} minutes of sealing for: {} (a rescan could not be asked for: {e})",
                        ws.policy.scan_timeout_minutes,
                        files.join(", ")
                    );
                    fail(deps, ws, request, message).await?;
                    Ok(Some(Healed::Failed))
                }
            }
        }
        VerdictWait::Overdue(files) => {
            let message = format!(
                "no malware scan verdict within {} minutes of sealing, nor {} minutes after asking for a rescan, for: {}",
                ws.policy.scan_timeout_minutes,
                ws.policy.scan_timeout_minutes,
                files.join(", ")
            );
            fail(deps, ws, request, message).await?;
            Ok(Some(Healed::Failed))
        }
    }
}
