//! Request records, with optimistic concurrency on ETags.

use super::PortError;
use crate::domain::{AirlockRequest, RequestType, Status};
use async_trait::async_trait;

/// A stored value and the ETag to condition the next write on.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OrderBy {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
    /// Whatever order the store reads in: for scans that take every match (`Reconcile`),
    /// where an ORDER BY would cost an index the filter does not need.
    Unordered,
}

impl OrderBy {
    pub fn parse(s: &str) -> Option<OrderBy> {
        match s {
            "createdWhen" | "createdWhen desc" | "-createdWhen" => Some(OrderBy::CreatedDesc),
            "createdWhen asc" | "+createdWhen" => Some(OrderBy::CreatedAsc),
            "updatedWhen" | "updatedWhen desc" | "-updatedWhen" => Some(OrderBy::UpdatedDesc),
            "updatedWhen asc" | "+updatedWhen" => Some(OrderBy::UpdatedAsc),
            _ => None,
        }
    }
}

/// A filtered query inside one workspace (the partition key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestQuery {
    pub creator: Option<String>,
    pub request_type: Option<RequestType>,
    /// Any of these statuses; empty means all.
    pub statuses: Vec<Status>,
    /// Only requests whose outbox still holds events.
    pub with_pending_events: bool,
    /// Only requests in a final status whose clean-up is not on the record
    /// ([`AirlockRequest::awaits_clean_up`]).
    pub awaiting_clean_up: bool,
    pub order_by: OrderBy,
    pub page_size: u32,
    pub continuation: Option<String>,
    /// Listing for people: each item is the record's summary ([`AirlockRequest::summary`]),
    /// without the bookkeeping and the conversation, read as such from the store.
    pub summary: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub continuation: Option<String>,
}

/// Contract:
/// - with `summary`, `query` returns each record as [`AirlockRequest::summary`] makes it;
/// - `create` of an existing id is `Conflict`, unless the stored record equals the one being
///   created: then it returns the stored version, since that is a create that reached the
///   store and was retried after its answer was lost (by the SDK or the caller);
/// - `replace` succeeds only if `if_match` is the current ETag, else `Conflict`; every
///   successful write returns a new ETag;
/// - `query` is always scoped to one workspace and pages with an opaque continuation token;
///   a token it did not issue is `InvalidInput`;
///   an unknown or tampered token is `Permanent`;
/// - `locate` finds the workspace of a request id (blob events know only the container name).
#[async_trait]
pub trait RequestStore: Send + Sync {
    async fn get(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<AirlockRequest>>, PortError>;
    async fn create(
        &self,
        request: &AirlockRequest,
    ) -> Result<Versioned<AirlockRequest>, PortError>;
    async fn replace(
        &self,
        request: &AirlockRequest,
        if_match: &str,
    ) -> Result<Versioned<AirlockRequest>, PortError>;
    async fn query(
        &self,
        workspace_id: &str,
        query: &RequestQuery,
    ) -> Result<Page<AirlockRequest>, PortError>;
    async fn locate(&self, id: &str) -> Result<Option<String>, PortError>;
}
