//! The one list of demo workspaces, for the local stack (`airlock-local`, either mode) and
//! the README's walkthrough.

use airlock::domain::Workspace;

/// The audience a workspace's tokens carry.
pub fn audience(workspace_id: &str) -> String {
    format!("api://airlock-{workspace_id}")
}

/// The audience of tokens for the TRE-wide API (`AIRLOCK_API_AUDIENCE`): a `TREAdmin`'s calls
/// across workspaces and to the workspace registry.
pub const TRE_API_AUDIENCE: &str = "api://airlock";

/// What the command line asks the local issuer for when it wants the TRE-wide API's token
/// (in place of a workspace id; never a workspace's id, which the registry refuses).
pub const TRE_API_KEY: &str = "tre";

/// The demo workspace records as `infra/local/workspaces.json` has them (built in; the local
/// stack reads that file at start, so a user can edit it): `ws-alpha` (one approval),
/// `ws-beta` (two approvals) and `ws-gates` (two approvals, a disclosure gate that warns about
/// counts under 10, an identifiers gate that warns, a secrets gate that blocks), all with
/// malware scanning on by default. Each record sets only the policy fields it means: the rest
/// come from `AIRLOCK_POLICY_DEFAULTS`, then the handler's defaults.
pub const RECORDS: &str = include_str!("../../../infra/local/workspaces.json");

/// Workspace records from a JSON array, each checked to be a valid workspace (with the
/// defaults it leaves out), kept as written.
pub fn records(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let records: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of workspaces: {e}"))?;
    for r in &records {
        serde_json::from_value::<Workspace>(r.clone()).map_err(|e| {
            format!(
                "workspace {}: {e}",
                r.get("id").and_then(|i| i.as_str()).unwrap_or("(no id)")
            )
        })?;
    }
    Ok(records)
}

/// The demo workspaces, typed (their policies with the handler's defaults).
pub fn workspaces() -> Vec<Workspace> {
    records(RECORDS)
        .expect("infra/local/workspaces.json is valid")
        .into_iter()
        .map(|r| serde_json::from_value(r).expect("checked"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo records set only what they mean, so the operator's defaults can fill the
    /// rest (a gate included); a record that is no workspace is refused naming it.
    #[test]
    fn records_leave_the_rest_to_the_defaults_and_bad_ones_are_refused() {
        let demo = records(RECORDS).unwrap();
        let alpha = &demo[0]["policy"];
        assert!(alpha.get("gates").is_none(), "{alpha}");
        assert!(alpha.get("scanRequired").is_none(), "{alpha}");
        let mut with_defaults = demo[0].clone();
        let defaults = airlock::domain::workspace::parse_policy_defaults(
            r#"{"gates": [{"name": "secrets", "kind": "secrets"}]}"#,
        )
        .unwrap();
        airlock::domain::workspace::apply_policy_defaults(&mut with_defaults, &defaults);
        let ws: Workspace = serde_json::from_value(with_defaults).unwrap();
        assert_eq!(ws.policy.gates[0].name, "secrets");
        assert_eq!(workspaces().len(), 3);
        let bad = r#"[{"id": "ws-x", "policy": {"approvalsRequired": "two"}}]"#;
        assert!(records(bad).unwrap_err().starts_with("workspace ws-x: "));
        assert!(records("{}").is_err());
    }
}
