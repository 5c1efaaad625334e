//! Workspace records: read by the airlock; registered and changed by TRE admins through the
//! registry API (`api/admin.rs`), which keeps each record as written.

use super::{PortError, Versioned};
use crate::domain::Workspace;
use async_trait::async_trait;
use serde_json::Value;

/// Contract:
/// - `get`, `get_by_short_id` and `list` read workspaces with the operator's policy defaults
///   filling what a record leaves out;
/// - `get_record` reads a record as written (no defaults), with the ETag of that version;
/// - `create_record` stores a new record: `Conflict` when one with its `id` exists;
/// - `replace_record` stores a record over the version `if_match` names: `Conflict` when the
///   stored version is another (someone changed it since), `NotFound` when there is none.
///   Records are refused (`InvalidInput`) unless they read as a workspace.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Workspace>, PortError>;
    async fn get_by_short_id(&self, short_id: &str) -> Result<Option<Workspace>, PortError>;
    async fn list(&self) -> Result<Vec<Workspace>, PortError>;
    async fn get_record(&self, id: &str) -> Result<Option<Versioned<Value>>, PortError>;
    async fn create_record(&self, record: &Value) -> Result<Versioned<Value>, PortError>;
    async fn replace_record(
        &self,
        record: &Value,
        if_match: &str,
    ) -> Result<Versioned<Value>, PortError>;
}
