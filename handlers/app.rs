//! The dependencies every function receives, and the settings they run with.

use crate::adapters::{BlobStore, Clock, EventPublisher, RequestStore, WorkspaceStore};
use crate::api::auth::TokenVerifier;
use crate::domain::AccountNames;
use chrono::Duration;
use std::sync::Arc;

/// Everything a handler may touch. Built once in `main` (or a test) and shared.
pub struct Deps {
    pub blobs: Arc<dyn BlobStore>,
    pub requests: Arc<dyn RequestStore>,
    pub workspaces: Arc<dyn WorkspaceStore>,
    pub publisher: Arc<dyn EventPublisher>,
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<TokenVerifier>,
    pub names: AccountNames,
    pub settings: Settings,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Request bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// A transitional request untouched this long is re-driven by `Reconcile`.
    pub redrive_after: Duration,
    /// A transitional request untouched this long is failed by `Reconcile`.
    pub give_up_after: Duration,
    /// Outbox events older than this are republished by `Reconcile`.
    pub outbox_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 64 * 1024,
            redrive_after: Duration::minutes(5),
            give_up_after: Duration::hours(24),
            outbox_grace: Duration::minutes(1),
        }
    }
}
