use super::FaultCounter;
use airlock::domain::gates::TableCells;
use airlock::domain::gates::table::TableSnapshot;
use airlock::ports::{PortError, Release, ReleaseLedger};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// The release ledger: append-only, one entry per (workspace, sha256, request, file), as the
/// Cosmos `releases` container is to the airlock's identity. Tests may fail calls on demand.
#[derive(Default)]
pub struct MemoryReleaseLedger {
    releases: Mutex<Vec<Release>>,
    tables: Mutex<HashMap<(String, String), TableCells>>,
    snapshots: Mutex<HashMap<(String, String), TableSnapshot>>,
    faults: FaultCounter,
}

impl MemoryReleaseLedger {
    /// The next `n` calls fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.faults.set(n);
    }

    /// A transient failure when one was asked for (`fail_next`).
    fn available(&self) -> Result<(), PortError> {
        if self.faults.take() {
            return Err(PortError::Transient(
                "the release ledger is unavailable".into(),
            ));
        }
        Ok(())
    }

    /// Everything recorded, in order.
    pub fn all(&self) -> Vec<Release> {
        self.releases.lock().unwrap().clone()
    }
}

#[async_trait]
impl ReleaseLedger for MemoryReleaseLedger {
    async fn record(&self, releases: &[Release]) -> Result<(), PortError> {
        self.available()?;
        let mut all = self.releases.lock().unwrap();
        for r in releases {
            let same = |x: &Release| {
                x.workspace_id == r.workspace_id
                    && x.sha256 == r.sha256
                    && x.request_id == r.request_id
                    && x.file == r.file
            };
            if !all.iter().any(same) {
                all.push(r.clone());
            }
        }
        Ok(())
    }

    async fn released(&self, workspace_id: &str, sha256: &str) -> Result<Vec<Release>, PortError> {
        self.available()?;
        Ok(self
            .releases
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.workspace_id == workspace_id && r.sha256 == sha256)
            .cloned()
            .collect())
    }

    async fn remember_snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
        snapshot: &TableSnapshot,
    ) -> Result<(), PortError> {
        self.available()?;
        self.snapshots
            .lock()
            .unwrap()
            .entry((workspace_id.to_string(), sha256.to_string()))
            .or_insert_with(|| snapshot.clone());
        Ok(())
    }

    async fn snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
    ) -> Result<Option<TableSnapshot>, PortError> {
        self.available()?;
        Ok(self
            .snapshots
            .lock()
            .unwrap()
            .get(&(workspace_id.to_string(), sha256.to_string()))
            .cloned())
    }

    async fn remember_table(
        &self,
        workspace_id: &str,
        sha256: &str,
        cells: &TableCells,
    ) -> Result<(), PortError> {
        self.available()?;
        self.tables
            .lock()
            .unwrap()
            .entry((workspace_id.to_string(), sha256.to_string()))
            .or_insert_with(|| cells.clone());
        Ok(())
    }

    async fn released_tables(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<(Release, TableCells)>, PortError> {
        self.available()?;
        let tables = self.tables.lock().unwrap();
        let mut out: Vec<(Release, TableCells)> = self
            .releases
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.workspace_id == workspace_id)
            .filter_map(|r| {
                let cells = tables.get(&(workspace_id.to_string(), r.sha256.clone()))?;
                Some((r.clone(), cells.clone()))
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.0.released_at));
        out.truncate(limit);
        Ok(out)
    }
}
