//! The workspace registry's use cases: register a workspace, change its record or policy, read
//! its audit trail. The rules are the domain's (`domain::workspace::registry`); this adds the
//! stores. A change and its audit entry are one conditional write of the record (so neither
//! is ever stored without the other); the entry is then appended to the append-only history
//! store, as a request's entries are.

use super::Deps;
use crate::domain::registry::{self, Author, RegistryError};
use crate::domain::request::{HistoryEntry, HistoryHead, merge_tail, verify_history};
use crate::ports::{PortError, Versioned};
use serde_json::Value;

/// Why a registry call did not change anything.
#[derive(Debug, thiserror::Error)]
pub enum RegistryFailure {
    /// The record is not valid: the message says what to fix. Retrying cannot help.
    #[error("{0}")]
    Invalid(String),
    #[error("workspace {0} is already registered")]
    Exists(String),
    #[error("shortId {short} is taken by workspace {by}")]
    ShortIdTaken { short: String, by: String },
    #[error("workspace {0} is not registered")]
    NotFound(String),
    /// The record changed since the version the caller read: read it again, then change it.
    #[error(
        "workspace {id} changed since version {read}: read it again and apply the change to what is there now"
    )]
    Stale { id: String, read: String },
    /// A store failed; `PortError` says whether a retry can help.
    #[error(transparent)]
    Store(#[from] PortError),
}

impl From<RegistryError> for RegistryFailure {
    fn from(e: RegistryError) -> Self {
        RegistryFailure::Invalid(e.to_string())
    }
}

/// Registers a workspace from its record as written.
pub async fn register(
    deps: &Deps,
    written: &Value,
    by: &str,
) -> Result<Versioned<Value>, RegistryFailure> {
    let change = registry::apply(
        None,
        written,
        &deps.settings.policy_defaults,
        Author {
            user_id: by,
            now: deps.clock.now(),
        },
    )?;
    let id = change.workspace.id.clone();
    if deps.workspaces.get_record(&id).await?.is_some() {
        return Err(RegistryFailure::Exists(id));
    }
    if let Some(other) = deps
        .workspaces
        .get_by_short_id(&change.workspace.short_id)
        .await?
    {
        return Err(RegistryFailure::ShortIdTaken {
            short: change.workspace.short_id,
            by: other.id,
        });
    }
    let stored = deps
        .workspaces
        .create_record(&change.record)
        .await
        .map_err(|e| match e {
            PortError::Conflict(_) => RegistryFailure::Exists(id.clone()),
            e => e.into(),
        })?;
    flush(deps, &id, &stored.value).await;
    Ok(stored)
}

/// Changes a workspace's record, `stored` as the caller just read it, to `written` (as
/// written: the fields an admin sets), if it is still at version `if_match`. `Ok(None)` when
/// nothing would change.
pub async fn change(
    deps: &Deps,
    id: &str,
    stored: &Versioned<Value>,
    written: &Value,
    if_match: &str,
    by: &str,
) -> Result<Option<Versioned<Value>>, RegistryFailure> {
    let stale = || RegistryFailure::Stale {
        id: id.to_string(),
        read: if_match.to_string(),
    };
    // What is wrong with the record is said first, whatever the version named: the admin
    // learns what to fix without a read that would only bring the same refusal.
    let change = match registry::apply(
        Some(&stored.value),
        written,
        &deps.settings.policy_defaults,
        Author {
            user_id: by,
            now: deps.clock.now(),
        },
    ) {
        Err(RegistryError::Unchanged) => None,
        other => Some(other?),
    };
    if stored.etag != if_match {
        return Err(stale());
    }
    let Some(change) = change else {
        return Ok(None);
    };
    // The entries the record holds go to the store first: the write below may drop the
    // oldest of them from the record.
    append(deps, id, &stored.value).await?;
    let saved = deps
        .workspaces
        .replace_record(&change.record, if_match)
        .await
        .map_err(|e| match e {
            PortError::Conflict(_) => stale(),
            PortError::NotFound(_) => RegistryFailure::NotFound(id.to_string()),
            e => e.into(),
        })?;
    flush(deps, id, &saved.value).await;
    Ok(Some(saved))
}

/// A workspace's whole trail (the store's entries and those only the record has yet), and
/// where its chain ends.
pub async fn trail(
    deps: &Deps,
    id: &str,
) -> Result<(Vec<HistoryEntry>, HistoryHead), RegistryFailure> {
    let stored = deps
        .workspaces
        .get_record(id)
        .await?
        .ok_or_else(|| RegistryFailure::NotFound(id.to_string()))?;
    let (head, tail) = registry::trail_of(&stored.value);
    let kept = deps.history.list(&registry::trail_id(id)).await?;
    Ok((merge_tail(kept, &tail), head))
}

/// Whether a trail verifies from the workspace's own start: `Err(index)` of the first entry
/// that does not.
pub fn verify(id: &str, entries: &[HistoryEntry], head: &HistoryHead) -> Result<(), usize> {
    verify_history(&registry::trail_id(id), entries, head)
}

/// Appends the record's entries to the history store (idempotent: an entry already stored
/// with the same hash is not written again).
async fn append(deps: &Deps, id: &str, stored: &Value) -> Result<(), PortError> {
    let (_, tail) = registry::trail_of(stored);
    deps.history
        .append(id, &registry::trail_id(id), &tail)
        .await
}

/// After a write: the new entry to the store. It is on the record already, so a failure here
/// loses nothing (the next change, or a read of the trail, shows it as pending); it is logged.
async fn flush(deps: &Deps, id: &str, stored: &Value) {
    if let Err(e) = append(deps, id, stored).await {
        tracing::warn!(workspace = id, error = %e, "the workspace's audit entry stays on its record until the next change: the history store refused it");
    }
}
