//! The ports: one small trait per IO capability, each with a documented contract that the
//! Azure adapters (the `adapters` module) and the in-memory fakes (`airlock-testkit`) both honour.

pub mod blob;
pub mod clock;
pub mod events;
pub mod history;
pub mod identity;
pub mod metrics;
pub mod releases;
pub mod requests;
pub mod scans;
pub mod work;
pub mod workspaces;

pub use blob::{
    BlobInfo, BlobProperties, BlobRef, BlobStore, ByteStream, ContainerRef, ContentHeaders, CopyIf,
    CopyState, DEFENDER_RESULT_TAG, DEFENDER_TIME_TAG, Destination, SasRequest,
};
pub use clock::{Clock, SystemClock};
pub use events::EventPublisher;
pub use history::HistoryStore;
pub use identity::{AuthError, Identity, TokenVerifier};
pub use metrics::{Measurement, MetricsSink, NoMetrics};
pub use releases::{Release, ReleaseLedger};
pub use requests::{OrderBy, Page, RequestQuery, RequestStore, Versioned};
pub use scans::{NoRescans, ScanRequester};
pub use work::{BACKLOG_PEEK, Backlog};
pub use work::{WorkItem, WorkQueue};
pub use workspaces::WorkspaceStore;

/// What can go wrong talking to a backing service, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost a race (stale ETag) or the item already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Throttling, timeouts, a service briefly down: a retry may succeed.
    #[error("temporarily unavailable: {0}")]
    Transient(String),
    /// A condition the write depended on no longer holds (the source of a copy changed
    /// since its eTag was recorded): retrying the same write cannot help.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// Something the caller passed through to the service was refused (an unknown or
    /// tampered continuation token): the caller's fault, and retrying will not help.
    #[error("{0}")]
    InvalidInput(String),
    /// The service refused our own identity (HTTP 403: a role assignment missing, or not yet
    /// propagated, which takes up to ten minutes on Azure). An operator must act, so it is
    /// logged as an alert; and it is retried, so that what was being done (a malware verdict,
    /// say) is kept by the host's retries and dead letters, never acknowledged and lost.
    #[error("forbidden (the Function App's identity lacks a role?): {0}")]
    Forbidden(String),
    /// Bad request, misconfiguration: retrying will not help.
    #[error("{0}")]
    Permanent(String),
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PortError::Transient(_) | PortError::Conflict(_) | PortError::Forbidden(_)
        )
    }
}
