//! Workspace records (managed by TRE admins; read by the airlock).

use super::PortError;
use crate::domain::Workspace;
use async_trait::async_trait;

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Workspace>, PortError>;
    async fn get_by_short_id(&self, short_id: &str) -> Result<Option<Workspace>, PortError>;
    async fn list(&self) -> Result<Vec<Workspace>, PortError>;
}
