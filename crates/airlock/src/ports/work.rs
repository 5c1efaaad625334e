//! Work proportional to data size, taken out of the event deliveries: an event handler
//! enqueues a [`WorkItem`] and answers at once; the `Work` function (an Azure Storage queue
//! trigger in the same Function App) does it, with the queue's retries and poison queue.

use super::PortError;
use crate::domain::StageRole;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One unit of work, as a queue message (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WorkItem {
    /// Hash a file's copy in a stage and record it: the seal of a submitted file, the
    /// verification of an approved copy, the hash of a quarantined one.
    #[serde(rename_all = "camelCase")]
    SettleFile {
        workspace_id: String,
        request_id: String,
        stage: StageRole,
        name: String,
        /// When it was queued, to the millisecond (the host's `InsertionTime` has whole
        /// seconds): for the latency budget only. Absent in items queued before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queued_at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

impl WorkItem {
    /// When the item was queued, if it says.
    pub fn queued_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            WorkItem::SettleFile { queued_at, .. } => *queued_at,
        }
    }
}

/// Contract:
/// - `enqueue` returns once the item is durably queued (or fails, and nothing is queued);
/// - delivery is at least once, in any order, possibly concurrently: the `Work` function is
///   idempotent; a message whose invocation fails is retried and, after the host's
///   `maxDequeueCount`, moved to the poison queue (`Reconcile` re-drives what it left
///   undone).
///
/// - `backlog` peeks at the queue without taking anything: how many messages wait (counted up
///   to [`BACKLOG_PEEK`]; that many means at least that many) and when the oldest seen was
///   queued. A queue that does not exist yet has none.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), PortError>;
    async fn backlog(&self) -> Result<Backlog, PortError>;
}

/// The most messages one look at the queue counts (Azure Storage's Peek Messages takes 32).
pub const BACKLOG_PEEK: usize = 32;

/// What waits in the work queue: for the gauges `Reconcile` logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Up to [`BACKLOG_PEEK`].
    pub messages: usize,
    /// When the oldest message seen was queued.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}
