use airlock::domain::Workspace;
use airlock::ports::{PortError, Versioned, WorkspaceStore};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Mutex;

/// Records as written, each with a version number that is its ETag. No operator defaults:
/// a test gives its workspaces whole.
#[derive(Default)]
pub struct MemoryWorkspaceStore(Mutex<Vec<(Value, u64)>>);

fn record_of(ws: &Workspace) -> Value {
    serde_json::to_value(ws).expect("a workspace serialises")
}

fn read(record: &Value) -> Result<Workspace, PortError> {
    serde_json::from_value(record.clone())
        .map_err(|e| PortError::Permanent(format!("corrupt workspace record: {e}")))
}

fn id_of(record: &Value) -> &str {
    record.get("id").and_then(Value::as_str).unwrap_or_default()
}

impl MemoryWorkspaceStore {
    pub fn new(workspaces: Vec<Workspace>) -> Self {
        MemoryWorkspaceStore(Mutex::new(
            workspaces.iter().map(|w| (record_of(w), 1)).collect(),
        ))
    }

    pub fn upsert(&self, ws: Workspace) {
        let mut all = self.0.lock().unwrap();
        let version = all
            .iter()
            .find(|(r, _)| id_of(r) == ws.id)
            .map_or(1, |(_, v)| v + 1);
        all.retain(|(r, _)| id_of(r) != ws.id);
        all.push((record_of(&ws), version));
    }

    fn all(&self) -> Result<Vec<Workspace>, PortError> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| read(r))
            .collect()
    }
}

#[async_trait]
impl WorkspaceStore for MemoryWorkspaceStore {
    async fn get(&self, id: &str) -> Result<Option<Workspace>, PortError> {
        Ok(self.all()?.into_iter().find(|w| w.id == id))
    }

    async fn get_by_short_id(&self, short_id: &str) -> Result<Option<Workspace>, PortError> {
        Ok(self.all()?.into_iter().find(|w| w.short_id == short_id))
    }

    async fn list(&self) -> Result<Vec<Workspace>, PortError> {
        self.all()
    }

    async fn get_record(&self, id: &str) -> Result<Option<Versioned<Value>>, PortError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|(r, _)| id_of(r) == id)
            .map(|(r, v)| Versioned {
                value: r.clone(),
                etag: v.to_string(),
            }))
    }

    async fn create_record(&self, record: &Value) -> Result<Versioned<Value>, PortError> {
        read(record).map_err(|e| PortError::InvalidInput(e.to_string()))?;
        let mut all = self.0.lock().unwrap();
        let id = id_of(record);
        if all.iter().any(|(r, _)| id_of(r) == id) {
            return Err(PortError::Conflict(format!("workspace {id} exists")));
        }
        all.push((record.clone(), 1));
        Ok(Versioned {
            value: record.clone(),
            etag: "1".into(),
        })
    }

    async fn replace_record(
        &self,
        record: &Value,
        if_match: &str,
    ) -> Result<Versioned<Value>, PortError> {
        read(record).map_err(|e| PortError::InvalidInput(e.to_string()))?;
        let mut all = self.0.lock().unwrap();
        let id = id_of(record);
        let slot = all
            .iter_mut()
            .find(|(r, _)| id_of(r) == id)
            .ok_or_else(|| PortError::NotFound(format!("workspace {id}")))?;
        if slot.1.to_string() != if_match {
            return Err(PortError::Conflict(format!(
                "workspace {id} is at version {}, not {if_match}",
                slot.1
            )));
        }
        *slot = (record.clone(), slot.1 + 1);
        Ok(Versioned {
            value: record.clone(),
            etag: slot.1.to_string(),
        })
    }
}
