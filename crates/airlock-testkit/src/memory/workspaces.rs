use airlock::domain::Workspace;
use airlock::ports::{PortError, WorkspaceStore};
use async_trait::async_trait;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryWorkspaceStore(Mutex<Vec<Workspace>>);

impl MemoryWorkspaceStore {
    pub fn new(workspaces: Vec<Workspace>) -> Self {
        MemoryWorkspaceStore(Mutex::new(workspaces))
    }

    pub fn upsert(&self, ws: Workspace) {
        let mut all = self.0.lock().unwrap();
        all.retain(|w| w.id != ws.id);
        all.push(ws);
    }
}

#[async_trait]
impl WorkspaceStore for MemoryWorkspaceStore {
    async fn get(&self, id: &str) -> Result<Option<Workspace>, PortError> {
        Ok(self.0.lock().unwrap().iter().find(|w| w.id == id).cloned())
    }

    async fn get_by_short_id(&self, short_id: &str) -> Result<Option<Workspace>, PortError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|w| w.short_id == short_id)
            .cloned())
    }

    async fn list(&self) -> Result<Vec<Workspace>, PortError> {
        Ok(self.0.lock().unwrap().clone())
    }
}
