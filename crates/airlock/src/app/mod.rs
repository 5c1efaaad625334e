//! The application layer: the dependencies every function receives, the settings they run
//! with, and the steps the event functions and the API share: [`record`] (conditional
//! writes, outbox, audit trail), [`movement`] (data movement), [`settle`] (sealing and
//! verifying a file), [`submit`] (a draft's files taken at submit), with what a function
//! answers in [`outcome`].

pub mod limits;
pub mod movement;
pub mod outcome;
pub mod preflight;
pub mod record;
pub mod registry;
pub mod settle;
pub mod stats;
pub mod steps;
pub mod submit;

use crate::domain::AccountNames;
use crate::ports::{
    BlobStore, Clock, EventPublisher, HistoryStore, MetricsSink, ReleaseLedger, RequestStore,
    ScanRequester, TokenVerifier, WorkQueue, WorkspaceStore,
};
use chrono::Duration;
use std::sync::Arc;

/// Everything a handler may touch. Built once in `main` (or a test) and shared.
pub struct Deps {
    pub blobs: Arc<dyn BlobStore>,
    pub requests: Arc<dyn RequestStore>,
    /// The audit trail (append-only).
    pub history: Arc<dyn HistoryStore>,
    /// What each workspace has released (append-only), for the release-ledger gate.
    pub releases: Arc<dyn ReleaseLedger>,
    pub workspaces: Arc<dyn WorkspaceStore>,
    pub publisher: Arc<dyn EventPublisher>,
    /// Where work proportional to data size goes (hashing), out of the event deliveries.
    pub work: Arc<dyn WorkQueue>,
    /// Asks the malware scanner for verdicts again before a missing one fails a request.
    pub scans: Arc<dyn ScanRequester>,
    /// Where `Reconcile`'s gauges go for charts and alerts (Application Insights on Azure).
    pub metrics: Arc<dyn MetricsSink>,
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<dyn TokenVerifier>,
    pub names: AccountNames,
    pub settings: Settings,
    /// Per-caller API rate limit (`Settings::api_calls_per_minute`).
    pub limiter: limits::RateLimiter,
    /// Which hashes run in the event delivery (`Settings::inline_hash_max_bytes`).
    pub inline_hashes: limits::InlineHashes,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// `aud` of tokens for the TRE-wide API (`TREAdmin` across workspaces); optional.
    pub api_audience: Option<String>,
    /// Request bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// A transitional request untouched this long is re-driven by `Reconcile`.
    pub redrive_after: Duration,
    /// A transitional request untouched this long is failed by `Reconcile`.
    pub give_up_after: Duration,
    /// Outbox events older than this are republished by `Reconcile`.
    pub outbox_grace: Duration,
    /// API calls one caller may make per minute (sustained, and as a burst); 0 is no limit.
    pub api_calls_per_minute: u32,
    /// Connections served at once; one more is answered 429 and closed (`host::serve`).
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers (and stay idle between
    /// requests): a client that trickles them (a slow-connection attack) is cut off instead
    /// of holding a connection for ever. Two minutes: longer than the Functions host keeps an
    /// idle pooled connection (.NET's default is one minute), so a reused connection never
    /// races its close; only the host can connect to the handler on Azure anyway.
    pub header_read_timeout: std::time::Duration,
    /// Files up to this size are hashed in the event delivery that found their copy, not
    /// through the `Work` queue (`limits::InlineHashes`); 0 queues every file.
    pub inline_hash_max_bytes: u64,
    /// The web app's sign-in (none: the page says sign-in is not set up).
    pub web: WebSettings,
    /// The operator's policy defaults (`AIRLOCK_POLICY_DEFAULTS`): what fills the policy
    /// fields a workspace record leaves out. The workspace registry judges a change on the
    /// policy in force, so it needs them too.
    pub policy_defaults: serde_json::Map<String, serde_json::Value>,
}

/// What the web app needs to know that only the deployment knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSettings {
    /// The identity provider (`https://login.microsoftonline.com/{tenant}`), the web app's
    /// client id and the TRE-wide API's scope: all three, or no sign-in.
    pub sign_in: Option<(String, String, String)>,
    /// Origins the page may call besides its own (the identity provider's token endpoint,
    /// the storage accounts the links point at): its Content-Security-Policy's `connect-src`.
    pub connect_origins: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_audience: None,
            max_body_bytes: 64 * 1024,
            redrive_after: Duration::minutes(5),
            give_up_after: Duration::hours(24),
            outbox_grace: Duration::minutes(1),
            api_calls_per_minute: 300,
            max_connections: 512,
            header_read_timeout: std::time::Duration::from_secs(120),
            inline_hash_max_bytes: 16 * 1024 * 1024,
            web: WebSettings::default(),
            policy_defaults: Default::default(),
        }
    }
}
