//! The workspace registry's rules: what a TRE admin may register or change, what a change
//! changed (field by field, on the policy in force), and the audit entry that records it.
//!
//! A workspace record is kept **as written**: the policy fields it leaves out are filled from
//! the operator's defaults (`AIRLOCK_POLICY_DEFAULTS`) when it is read, so an operator can
//! change a default for every workspace that does not set its own. A change is judged on the
//! policy in force, defaults included, because that is what the airlock enforces; its
//! version ([`WorkspacePolicy::version`]) is the one the gates record where they read a file.
//!
//! Every change is an entry in the workspace's own hash-chained trail (same chain rule as a
//! request's, with `workspace:{id}` where a request's id starts the chain). The record keeps
//! the chain's head and its latest entries ([`KEPT_ENTRIES`]), written with the change in one
//! conditional write, so a change is never on the record without its audit entry; the entries
//! then go to the append-only history store, as a request's do.

use crate::policy::WorkspacePolicy;
use crate::request::{HistoryEntry, HistoryHead};
use crate::stages::MAX_WORKSPACE_SHORT_ID;
use crate::workspace::{Workspace, apply_policy_defaults, parse_policy_defaults};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The fields a TRE admin writes; anything else in a registration is refused.
pub const RECORD_FIELDS: [&str; 7] = [
    "id",
    "displayName",
    "shortId",
    "airlockEnabled",
    "tokenAudience",
    "policy",
    "contacts",
];

/// Not a workspace id: the command line keeps the TRE-wide API's token under it.
pub const RESERVED_ID: &str = "tre";

/// The record's own bookkeeping: the trail's head and latest entries.
pub const HISTORY_HEAD: &str = "historyHead";
pub const HISTORY_TAIL: &str = "historyTail";

/// Entries the record keeps after they are written: every write first appends the kept ones
/// to the history store, so an entry leaves the record only once the store has it.
pub const KEPT_ENTRIES: usize = 8;

/// Where a workspace's trail starts its chain, and its key in the history store.
pub fn trail_id(workspace_id: &str) -> String {
    format!("workspace:{workspace_id}")
}

/// One field that a change changed: its value before and after (`None`: not there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// `displayName`, `airlockEnabled`, ... or `policy.approvalsRequired`, `policy.gates`.
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// What an audit entry of the workspace's trail carries besides its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeDetails {
    /// The version of the policy in force before (none at registration) and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_before: Option<String>,
    pub policy_version: String,
    /// Every field that changed, the policy's by the values in force.
    pub changes: Vec<FieldChange>,
    /// The policy as the record now sets it (the fields it leaves out come from the
    /// operator's defaults): with every version kept, any two can be compared.
    pub policy: Value,
}

/// A change refused, with what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    /// The change changes nothing: no entry, no write.
    #[error("nothing to change")]
    Unchanged,
}

/// A record to write, with the entry that audits it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub record: Value,
    pub entry: HistoryEntry,
    pub workspace: Workspace,
}

/// Checks a record as a TRE admin writes it and returns the workspace it is, the operator's
/// defaults applied. The same parser the airlock reads records with, plus what storage needs.
pub fn validate(record: &Value, defaults: &Map<String, Value>) -> Result<Workspace, RegistryError> {
    let invalid = |m: String| RegistryError::Invalid(m);
    let obj = record
        .as_object()
        .ok_or_else(|| invalid("a workspace record is a JSON object".into()))?;
    if let Some(unknown) = obj.keys().find(|k| !RECORD_FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field {unknown:?}; a workspace record has {}",
            RECORD_FIELDS.join(", ")
        )));
    }
    let text = |field: &str| obj.get(field).and_then(Value::as_str);
    let id = text("id").ok_or_else(|| invalid("id is required (a string)".into()))?;
    if !(1..=64).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "id {id:?} must be 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    if id == RESERVED_ID {
        return Err(invalid(format!(
            "id {id:?} is reserved: clients name the TRE-wide API by it"
        )));
    }
    let short = text("shortId").ok_or_else(|| invalid("shortId is required (a string)".into()))?;
    let max = MAX_WORKSPACE_SHORT_ID;
    if !(1..=max).contains(&short.len())
        || !short
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(invalid(format!(
            "shortId {short:?} must be 1 to {max} lower-case letters or digits: it ends the workspace's storage account names (stalexintws{short})"
        )));
    }
    match text("displayName") {
        Some(name) if !name.trim().is_empty() && name.chars().count() <= 200 => {}
        _ => {
            return Err(invalid(
                "displayName is required: 1 to 200 characters, not only spaces".into(),
            ));
        }
    }
    match text("tokenAudience") {
        Some(aud) if !aud.trim().is_empty() && aud.chars().count() <= 512 && aud.trim() == aud => {}
        _ => {
            return Err(invalid(
                "tokenAudience is required: the workspace app's Application ID URI (api://...), at most 512 characters, no white space around it"
                    .into(),
            ));
        }
    }
    if let Some(policy) = obj.get("policy") {
        let text = serde_json::to_string(policy).unwrap_or_default();
        parse_policy_defaults(&text).map_err(|e| invalid(format!("policy: {e}")))?;
    }
    let mut filled = record.clone();
    apply_policy_defaults(&mut filled, defaults);
    let ws: Workspace = serde_json::from_value(filled)
        .map_err(|e| invalid(format!("not a workspace record: {e}")))?;
    if let Some(bad) = ws
        .contacts
        .workspace_owner
        .iter()
        .chain(&ws.contacts.airlock_manager)
        .find(|a| !plausible_address(a))
    {
        return Err(invalid(format!(
            "contacts: {bad:?} is not an e-mail address"
        )));
    }
    Ok(ws)
}

fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        && a.chars().count() <= 254
}

/// The record's own part of a stored document: the fields an admin wrote, without the
/// store's and the trail's bookkeeping.
pub fn as_written(stored: &Value) -> Value {
    let mut out = Map::new();
    if let Some(obj) = stored.as_object() {
        for field in RECORD_FIELDS {
            if let Some(v) = obj.get(field) {
                out.insert(field.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The trail's head and kept entries as the stored record has them.
pub fn trail_of(stored: &Value) -> (HistoryHead, Vec<HistoryEntry>) {
    let head = stored
        .get(HISTORY_HEAD)
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let tail = stored
        .get(HISTORY_TAIL)
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    (head, tail)
}

/// Every field that differs between two workspaces, the policy's by the values in force.
pub fn changes(before: Option<&Workspace>, after: &Workspace) -> Vec<FieldChange> {
    let flat = |ws: Option<&Workspace>| -> Vec<(String, Value)> {
        let Some(ws) = ws else { return vec![] };
        let mut fields = Vec::new();
        let value = serde_json::to_value(ws).unwrap_or_default();
        for (k, v) in value.as_object().into_iter().flatten() {
            if k == "policy" {
                for (pk, pv) in v.as_object().into_iter().flatten() {
                    fields.push((format!("policy.{pk}"), pv.clone()));
                }
            } else {
                fields.push((k.clone(), v.clone()));
            }
        }
        fields
    };
    let old = flat(before);
    let new = flat(Some(after));
    let find = |list: &[(String, Value)], name: &str| {
        list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let mut names: Vec<&String> = new.iter().map(|(k, _)| k).collect();
    for (k, _) in &old {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let (b, a) = (find(&old, name), find(&new, name));
            (b != a).then(|| FieldChange {
                field: name.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

/// One line for the trail: what changed, short values spelled out, long ones named.
pub fn describe(changes: &[FieldChange]) -> String {
    let short = |v: &Option<Value>| match v {
        None => "(none)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() <= 40 {
                s
            } else {
                "(…)".to_string()
            }
        }
    };
    changes
        .iter()
        .map(|c| format!("{} {} → {}", c.field, short(&c.before), short(&c.after)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Who changes what, when.
pub struct Author<'a> {
    pub user_id: &'a str,
    pub now: DateTime<Utc>,
}

/// Registers a workspace (`stored` is `None`) or changes its record: validates the record as
/// written, works out what changed on the policy in force, and returns the record to store
/// with its trail advanced by one entry. `written` holds only [`RECORD_FIELDS`].
pub fn apply(
    stored: Option<&Value>,
    written: &Value,
    defaults: &Map<String, Value>,
    author: Author<'_>,
) -> Result<Change, RegistryError> {
    let after = validate(written, defaults)?;
    let before = match stored {
        None => None,
        Some(doc) => {
            let mut filled = as_written(doc);
            apply_policy_defaults(&mut filled, defaults);
            Some(serde_json::from_value::<Workspace>(filled).map_err(|e| {
                RegistryError::Invalid(format!("the stored record does not read: {e}"))
            })?)
        }
    };
    if let Some(before) = &before
        && before.id != after.id
    {
        return Err(RegistryError::Invalid(format!(
            "id {:?} cannot change (it is {:?})",
            after.id, before.id
        )));
    }
    if let Some(before) = &before
        && before.short_id != after.short_id
    {
        return Err(RegistryError::Invalid(format!(
            "shortId {:?} cannot change (it is {:?}): the workspace's storage accounts are named by it",
            after.short_id, before.short_id
        )));
    }
    let changed = changes(before.as_ref(), &after);
    let same_record = stored.is_some_and(|doc| as_written(doc) == *written);
    if stored.is_some() && changed.is_empty() && same_record {
        return Err(RegistryError::Unchanged);
    }
    let action = action(before.as_ref(), &after, &changed);
    let version = after.policy.version();
    let details = ChangeDetails {
        policy_version_before: before.as_ref().map(|b| b.policy.version()),
        policy_version: version.clone(),
        changes: changed.clone(),
        policy: written
            .get("policy")
            .cloned()
            .unwrap_or(Value::Object(Map::new())),
    };
    let message = match (&before, changed.is_empty()) {
        (None, _) => format!("workspace {} registered, policy {version}", after.id),
        (Some(_), true) => "the record as written changed; nothing in force did".to_string(),
        (Some(b), false) if b.policy.version() != version => format!(
            "policy {} → {version}: {}",
            b.policy.version(),
            describe(&changed)
        ),
        (Some(_), false) => describe(&changed),
    };
    let (head, mut tail) = stored.map(trail_of).unwrap_or_default();
    let mut entry = HistoryEntry {
        seq: head.length,
        at: author.now,
        by: author.user_id.to_string(),
        action: action.to_string(),
        from: None,
        to: None,
        message: Some(message),
        details: Some(serde_json::to_value(&details).unwrap_or_default()),
        hash: String::new(),
    };
    let previous = if head.length == 0 {
        trail_id(&after.id)
    } else {
        head.hash.clone()
    };
    entry.hash = entry.chain_hash(&previous);
    tail.push(entry.clone());
    if tail.len() > KEPT_ENTRIES {
        tail.drain(..tail.len() - KEPT_ENTRIES);
    }
    let mut record = written.clone();
    record[HISTORY_HEAD] = serde_json::to_value(HistoryHead {
        length: entry.seq + 1,
        hash: entry.hash.clone(),
    })
    .unwrap_or_default();
    record[HISTORY_TAIL] = serde_json::to_value(&tail).unwrap_or_default();
    Ok(Change {
        record,
        entry,
        workspace: after,
    })
}

/// The trail's name for a change.
fn action(before: Option<&Workspace>, after: &Workspace, changed: &[FieldChange]) -> &'static str {
    let Some(before) = before else {
        return "workspace registered";
    };
    if before.airlock_enabled && !after.airlock_enabled {
        "airlock disabled"
    } else if !before.airlock_enabled && after.airlock_enabled {
        "airlock enabled"
    } else if !changed.is_empty() && changed.iter().all(|c| c.field.starts_with("policy.")) {
        "policy changed"
    } else {
        "workspace changed"
    }
}

/// A policy set on its own (`PUT .../policy`): the record with its policy replaced.
pub fn with_policy(stored: &Value, policy: &Value) -> Value {
    let mut written = as_written(stored);
    written["policy"] = policy.clone();
    written
}

/// The policy in force for a record as written.
pub fn policy_in_force(
    written: &Value,
    defaults: &Map<String, Value>,
) -> Result<WorkspacePolicy, RegistryError> {
    validate(written, defaults).map(|ws| ws.policy)
}

#[cfg(test)]
mod tests;
