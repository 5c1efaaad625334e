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

/// Fills the policy fields a workspace record leaves out from the operator's defaults
/// (`AIRLOCK_POLICY_DEFAULTS`); fields the record sets always win.
pub fn apply_policy_defaults(
    record: &mut serde_json::Value,
    defaults: &serde_json::Map<String, serde_json::Value>,
) {
    let Some(obj) = record.as_object_mut() else {
        return;
    };
    let policy = obj
        .entry("policy")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let Some(policy) = policy.as_object_mut() {
        for (k, v) in defaults {
            policy.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// Checks operator policy defaults: a JSON object of known policy fields with valid values.
pub fn parse_policy_defaults(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let map = value.as_object().cloned().ok_or("must be a JSON object")?;
    let known = serde_json::to_value(WorkspacePolicy::default()).expect("serialises");
    if let Some(unknown) = map.keys().find(|k| known.get(k.as_str()).is_none()) {
        return Err(format!("unknown policy field {unknown:?}"));
    }
    let policy = serde_json::from_value::<WorkspacePolicy>(value)
        .map_err(|e| format!("invalid value: {e}"))?;
    policy.link_ip_range()?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_gaps_and_records_win() {
        let defaults =
            parse_policy_defaults(r#"{"linkExpiryMinutes": 15, "approvalsRequired": 2}"#).unwrap();
        let mut record = json!({"id": "w", "displayName": "w", "shortId": "w", "tokenAudience": "a", "policy": {"approvalsRequired": 3}});
        apply_policy_defaults(&mut record, &defaults);
        let ws: Workspace = serde_json::from_value(record).unwrap();
        assert_eq!(ws.policy.approvals_required, 3, "the record wins");
        assert_eq!(
            ws.policy.link_expiry_minutes, 15,
            "the operator default fills the gap"
        );
        assert_eq!(
            ws.policy.max_files,
            WorkspacePolicy::default().max_files,
            "built-in default otherwise"
        );
        let mut bare = json!({"id": "w", "displayName": "w", "shortId": "w", "tokenAudience": "a"});
        apply_policy_defaults(&mut bare, &defaults);
        let ws: Workspace = serde_json::from_value(bare).unwrap();
        assert_eq!(ws.policy.approvals_required, 2);
    }

    #[test]
    fn bad_defaults_are_refused_with_a_reason() {
        for (text, needle) in [
            ("[]", "object"),
            ("{", "JSON"),
            (r#"{"colour": 1}"#, "colour"),
            (r#"{"maxFiles": "many"}"#, "invalid"),
        ] {
            let err = parse_policy_defaults(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
