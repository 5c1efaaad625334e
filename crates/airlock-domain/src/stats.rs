//! Service statistics over a time range: what an operator or an overseer asks ("how long do
//! reviews take", "how many overrides last month", "which rule fires most") without querying
//! the database. Worked out from the request records and their trails alone.

use crate::lifecycle::Status;
use crate::request::{AirlockRequest, HistoryEntry, REVIEW_ESCALATED, REVIEW_REMINDED};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long something took: how many, the median, the 90th percentile and the longest
/// (nearest rank), in seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    pub count: u64,
    pub p50_seconds: i64,
    pub p90_seconds: i64,
    pub max_seconds: i64,
}

impl Durations {
    pub fn of(mut seconds: Vec<i64>) -> Durations {
        if seconds.is_empty() {
            return Durations::default();
        }
        seconds.sort_unstable();
        let rank = |p: usize| seconds[(seconds.len() * p).div_ceil(100).max(1) - 1];
        Durations {
            count: seconds.len() as u64,
            p50_seconds: rank(50),
            p90_seconds: rank(90),
            max_seconds: *seconds.last().unwrap_or(&0),
        }
    }
}

/// The statistics of the requests created in `[from, to)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The workspaces counted.
    pub workspaces: Vec<String>,
    /// More requests were created in the range than one call reads: narrow the range.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Requests created in the range.
    pub requests: u64,
    /// By type: `import`, `export`.
    pub by_type: BTreeMap<String, u64>,
    /// By the status they are in now (`approved`, `rejected`, `blocked_by_scan`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// How long requests stayed in each status they have left.
    pub time_in_status: BTreeMap<String, Durations>,
    /// From submit to the decision that ended the review (approved, rejected, or sent back
    /// for changes), per submission.
    pub review_turnaround: Durations,
    /// Reviews given (each reviewer's, consolidations included).
    pub reviews: u64,
    /// Files approved over a gate's warning, counted per warning rule overridden.
    pub overrides: u64,
    pub overrides_by_rule: BTreeMap<String, u64>,
    /// The gates' findings on the current revision's files, by rule.
    pub findings_by_rule: BTreeMap<String, u64>,
    /// Files and bytes released by approved requests (withheld and supporting files left out).
    pub released_files: u64,
    pub released_bytes: u64,
    /// Reviewer deadline reminders and escalations sent.
    pub review_reminders: u64,
    pub review_escalations: u64,
}

/// Adds up the requests (each with its whole trail) created in `[from, to)`.
pub fn summarise(
    requests: &[(AirlockRequest, Vec<HistoryEntry>)],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Stats {
    let mut stats = Stats {
        from,
        to,
        ..Stats::default()
    };
    let mut in_status: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut turnaround = Vec::new();
    let mut workspaces = std::collections::BTreeSet::new();
    for (request, trail) in requests {
        let created = request.created_when;
        if from.is_some_and(|f| created < f) || to.is_some_and(|t| created >= t) {
            continue;
        }
        workspaces.insert(request.workspace_id.clone());
        stats.requests += 1;
        *stats
            .by_type
            .entry(request.request_type.as_str().to_string())
            .or_default() += 1;
        *stats
            .by_status
            .entry(request.status.to_string())
            .or_default() += 1;
        // Stays: from each entry that moved the request into a status to the next one that
        // moved it on.
        let moves: Vec<(&HistoryEntry, Status)> = trail
            .iter()
            .filter_map(|e| e.to.map(|to| (e, to)))
            .collect();
        for pair in moves.windows(2) {
            let ((entered, status), (left, _)) = (pair[0], pair[1]);
            let seconds = (left.at - entered.at).num_seconds();
            in_status
                .entry(status.to_string())
                .or_default()
                .push(seconds);
        }
        let mut submitted_at = None;
        for (entry, status) in &moves {
            match status {
                Status::Submitted => submitted_at = Some(entry.at),
                Status::ApprovalInProgress
                | Status::RejectionInProgress
                | Status::Approved
                | Status::Rejected
                | Status::Draft
                    if entry.from == Some(Status::InReview) =>
                {
                    if let Some(at) = submitted_at.take() {
                        turnaround.push((entry.at - at).num_seconds());
                    }
                }
                _ => {}
            }
        }
        stats.review_reminders +=
            trail.iter().filter(|e| e.action == REVIEW_REMINDED).count() as u64;
        stats.review_escalations += trail
            .iter()
            .filter(|e| e.action == REVIEW_ESCALATED)
            .count() as u64;
        stats.reviews += request.reviews.len() as u64;
        for review in &request.reviews {
            for decision in &review.files {
                for o in &decision.overrides {
                    stats.overrides += 1;
                    *stats.overrides_by_rule.entry(o.rule.clone()).or_default() += 1;
                }
            }
        }
        for file in &request.files {
            for finding in &file.findings {
                *stats
                    .findings_by_rule
                    .entry(finding.rule.clone())
                    .or_default() += 1;
            }
            if request.status == Status::Approved && file.released() {
                stats.released_files += 1;
                stats.released_bytes += file.size;
            }
        }
    }
    stats.time_in_status = in_status
        .into_iter()
        .map(|(status, seconds)| (status, Durations::of(seconds)))
        .collect();
    stats.review_turnaround = Durations::of(turnaround);
    stats.workspaces = workspaces.into_iter().collect();
    stats
}

#[cfg(test)]
mod tests;
