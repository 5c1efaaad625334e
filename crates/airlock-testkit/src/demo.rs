//! The one list of demo workspaces, for the local stack (`airlock-local`, either mode) and
//! the README's walkthrough.

use airlock::domain::Workspace;
use serde_json::json;

/// The audience a workspace's tokens carry.
pub fn audience(workspace_id: &str) -> String {
    format!("api://airlock-{workspace_id}")
}

/// `ws-alpha` (one approval), `ws-beta` (two approvals) and `ws-gates` (two approvals and a
/// disclosure gate that warns about counts under 10, to try gates and the review page), all
/// with malware scanning on.
pub fn workspaces() -> Vec<Workspace> {
    let small_counts = json!([
        {"name": "small counts", "kind": "disclosure", "mode": "warn", "threshold": 10}
    ]);
    [
        ("alpha", 1, json!([])),
        ("beta", 2, json!([])),
        ("gates", 2, small_counts),
    ]
    .iter()
    .map(|(name, approvals, gates)| {
            serde_json::from_value(json!({
                "id": format!("ws-{name}"),
                "displayName": format!("Demo workspace {name}"),
                "shortId": name,
                "tokenAudience": audience(&format!("ws-{name}")),
                "policy": {"approvalsRequired": approvals, "scanRequired": true, "gates": gates},
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
