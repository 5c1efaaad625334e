//! The audit trail's own store: append-only, one item per entry, partitioned by request.

use super::PortError;
use crate::domain::HistoryEntry;
use async_trait::async_trait;

/// Contract:
/// - a request's entries are kept by `seq`, and an entry once stored is never changed or
///   removed by the airlock (on Azure its identity may create and read items there, nothing
///   else);
/// - `append` stores entries in the order given and stops at the first failure, so when an
///   entry is stored every entry the caller appended before it is too; appending an entry
///   that is already stored with the same hash succeeds without writing, one with another
///   hash under the same `seq` is `Conflict` (a trail is never forked or rewritten);
/// - `get` reads one entry; `list` returns all of a request's entries in `seq` order.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    async fn append(
        &self,
        workspace_id: &str,
        request_id: &str,
        entries: &[HistoryEntry],
    ) -> Result<(), PortError>;
    async fn get(&self, request_id: &str, seq: u64) -> Result<Option<HistoryEntry>, PortError>;
    async fn list(&self, request_id: &str) -> Result<Vec<HistoryEntry>, PortError>;
}
