//! The release ledger: what each workspace has released (approved exports), by sha256, so a
//! new request can be compared with what already left.

use super::PortError;
use crate::domain::gates::TableCells;
use crate::domain::gates::table::TableSnapshot;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One released file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub workspace_id: String,
    pub sha256: String,
    pub request_id: String,
    pub file: String,
    pub released_at: DateTime<Utc>,
}

/// Contract:
/// - append-only: a release once recorded is never changed or removed (on Azure the
///   identity may only create, read and query here);
/// - `record` is idempotent: recording the same (workspace, sha256, request, file) again
///   succeeds without a second entry;
/// - `released` returns every release in the workspace with that sha256 (any order);
/// - `remember_table` keeps a table's cells by the sha256 of its bytes (content-addressed, so
///   remembering the same bytes again is success and changes nothing); cells of tables never
///   released are kept too, and only count once a release names their sha256;
/// - `released_tables` returns, for up to `limit` of the workspace's latest releases whose
///   bytes have cells remembered, the release and the cells (newest first);
/// - `remember_snapshot` keeps a small table's cells as sealed, by the sha256 of its bytes
///   (content-addressed like `remember_table`), for a resubmission's cell-level diff;
///   `snapshot` gives them back, `None` when none was kept for those bytes in the workspace.
#[async_trait]
pub trait ReleaseLedger: Send + Sync {
    async fn record(&self, releases: &[Release]) -> Result<(), PortError>;
    async fn released(&self, workspace_id: &str, sha256: &str) -> Result<Vec<Release>, PortError>;
    async fn remember_table(
        &self,
        workspace_id: &str,
        sha256: &str,
        cells: &TableCells,
    ) -> Result<(), PortError>;
    async fn released_tables(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<(Release, TableCells)>, PortError>;
    async fn remember_snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
        snapshot: &TableSnapshot,
    ) -> Result<(), PortError>;
    async fn snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
    ) -> Result<Option<TableSnapshot>, PortError>;
}
