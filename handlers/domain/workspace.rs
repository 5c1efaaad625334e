//! The workspace record: who it is, how its tokens are addressed, and its airlock policy.

use super::policy::WorkspacePolicy;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub display_name: String,
    /// Short id used in workspace storage account names (`stalexintws{shortId}`).
    pub short_id: String,
    #[serde(default = "yes")]
    pub airlock_enabled: bool,
    /// The `aud` a token must carry to act in this workspace.
    pub token_audience: String,
    #[serde(default)]
    pub policy: WorkspacePolicy,
    #[serde(default)]
    pub contacts: Contacts,
}

fn yes() -> bool {
    true
}

/// Emails to notify, per role; people may also be reached through their own tokens' claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Contacts {
    pub workspace_owner: Vec<String>,
    pub airlock_manager: Vec<String>,
}
