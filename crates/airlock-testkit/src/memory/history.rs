use super::FaultCounter;
use airlock::domain::HistoryEntry;
use airlock::ports::{HistoryStore, PortError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The audit trail's store: entries by request and `seq`, appended only (as the Cosmos
/// `history` container is to the airlock's identity). Tests may fail appends on demand and
/// edit a stored entry as an attacker with direct access would.
#[derive(Default)]
pub struct MemoryHistoryStore {
    entries: Mutex<HashMap<String, BTreeMap<u64, HistoryEntry>>>,
    faults: FaultCounter,
}

impl MemoryHistoryStore {
    /// The next `n` appends fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.faults.set(n);
    }

    /// Changes a stored entry behind the airlock's back (a forgery test).
    pub fn tamper(&self, request_id: &str, seq: u64, edit: impl FnOnce(&mut HistoryEntry)) {
        let mut all = self.entries.lock().unwrap();
        if let Some(entry) = all.get_mut(request_id).and_then(|e| e.get_mut(&seq)) {
            edit(entry);
        }
    }

    /// Removes a request's last stored entry (a truncation test).
    pub fn truncate_last(&self, request_id: &str) {
        let mut all = self.entries.lock().unwrap();
        if let Some(entries) = all.get_mut(request_id) {
            entries.pop_last();
        }
    }

    /// How many entries are stored for a request.
    pub fn stored(&self, request_id: &str) -> usize {
        self.entries
            .lock()
            .unwrap()
            .get(request_id)
            .map_or(0, BTreeMap::len)
    }
}

#[async_trait]
impl HistoryStore for MemoryHistoryStore {
    async fn append(
        &self,
        _workspace_id: &str,
        request_id: &str,
        entries: &[HistoryEntry],
    ) -> Result<(), PortError> {
        if self.faults.take() {
            return Err(PortError::Transient(
                "injected history store failure".into(),
            ));
        }
        let mut all = self.entries.lock().unwrap();
        let stored = all.entry(request_id.to_string()).or_default();
        for entry in entries {
            match stored.get(&entry.seq) {
                Some(existing) if existing.hash == entry.hash => {}
                Some(_) => {
                    return Err(PortError::Conflict(format!(
                        "history entry {} of request {request_id} is already stored with other content",
                        entry.seq
                    )));
                }
                None => {
                    stored.insert(entry.seq, entry.clone());
                }
            }
        }
        Ok(())
    }

    async fn get(&self, request_id: &str, seq: u64) -> Result<Option<HistoryEntry>, PortError> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .get(request_id)
            .and_then(|e| e.get(&seq))
            .cloned())
    }

    async fn list(&self, request_id: &str) -> Result<Vec<HistoryEntry>, PortError> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .get(request_id)
            .map(|e| e.values().cloned().collect())
            .unwrap_or_default())
    }
}
