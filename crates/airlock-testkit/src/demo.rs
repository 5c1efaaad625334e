//! The one list of demo workspaces, for the local stack (`airlock-local`, either mode) and
//! the README's walkthrough.

use airlock::domain::Workspace;
use serde_json::json;

/// The audience a workspace's tokens carry.
pub fn audience(workspace_id: &str) -> String {
    format!("api://airlock-{workspace_id}")
}

/// `ws-alpha` (one approval) and `ws-beta` (two approvals), both with malware scanning on.
pub fn workspaces() -> Vec<Workspace> {
    [("alpha", 1), ("beta", 2)]
        .iter()
        .map(|(name, approvals)| {
            serde_json::from_value(json!({
                "id": format!("ws-{name}"),
                "displayName": format!("Demo workspace {name}"),
                "shortId": name,
                "tokenAudience": audience(&format!("ws-{name}")),
                "policy": {"approvalsRequired": approvals, "scanRequired": true},
                "contacts": {
                    "workspaceOwner": [format!("owner@{name}.airlock.local")],
                    "airlockManager": [format!("manager1@{name}.airlock.local"), format!("manager2@{name}.airlock.local")]
                },
            }))
            .expect("demo workspace is valid")
        })
        .collect()
}

/// The people the local stack prints tokens for: (key, user, roles).
pub const PEOPLE: [(&str, &str, &str); 5] = [
    ("researcher", "researcher1", "WorkspaceResearcher"),
    ("researcher2", "researcher2", "WorkspaceResearcher"),
    ("owner", "owner1", "WorkspaceOwner"),
    ("manager1", "manager1", "AirlockManager"),
    ("manager2", "manager2", "AirlockManager"),
];
