//! The audit trail: hash-chained entries, numbered from 0, that live in their own append-only
//! store (one item per entry). The request record keeps only the chain's head (its length and
//! last hash, so a truncated or edited trail is detected) and the tail of entries written with
//! its latest change, which the workflow appends to the store after the write: a record never
//! grows with its history, however many entries it gets.

use super::super::lifecycle::Status;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Position in the trail, from 0.
    #[serde(default)]
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// User id, or `system`.
    pub by: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Structured evidence for the entry where a message is not enough (a workspace's change:
    /// the fields changed and the policy as set). Chained like every field when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// sha256 over the previous entry's hash and this entry's fields: editing, removing or
    /// reordering any entry breaks every hash after it.
    #[serde(default)]
    pub hash: String,
}

impl HistoryEntry {
    /// The chain hash of this entry given the previous one's (the request id for the first).
    pub fn chain_hash(&self, previous: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut fields = serde_json::json!([
            previous,
            self.at,
            self.by,
            self.action,
            self.from,
            self.to,
            self.message
        ]);
        // Only where there are details, so every entry written before they existed keeps
        // its hash.
        if let (Some(details), Some(list)) = (&self.details, fields.as_array_mut()) {
            list.push(details.clone());
        }
        hex::encode(Sha256::digest(fields.to_string().as_bytes()))
    }
}

/// Where the chain ends, as the request record knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryHead {
    /// How many entries the trail has.
    pub length: u64,
    /// The last entry's hash (empty while there is none).
    pub hash: String,
}

/// Checks the trail: entry `i` has `seq` `i` and chains onto the one before, and the trail
/// ends where the record says it does. `Err` is the index of the first entry that does not
/// verify (the trail's length when entries are missing at its end).
pub fn verify_history(
    request_id: &str,
    history: &[HistoryEntry],
    head: &HistoryHead,
) -> Result<(), usize> {
    let mut previous = request_id.to_string();
    for (i, entry) in history.iter().enumerate() {
        if entry.seq != i as u64 || entry.chain_hash(&previous) != entry.hash {
            return Err(i);
        }
        previous = entry.hash.clone();
    }
    let complete =
        history.len() as u64 == head.length && (head.length == 0 || head.hash == previous);
    if complete {
        Ok(())
    } else {
        Err(history.len().min(head.length as usize))
    }
}

/// The whole trail from what the store holds and the record's tail (entries the store may
/// not have yet). Entries are taken by position; where both have one, the store's is kept,
/// so a difference shows up in [`verify_history`].
pub fn merge_tail(stored: Vec<HistoryEntry>, tail: &[HistoryEntry]) -> Vec<HistoryEntry> {
    let mut all = stored;
    for entry in tail {
        if entry.seq == all.len() as u64 {
            all.push(entry.clone());
        }
    }
    all
}

/// A link that is on the record since the last status change (one per person: the latest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedLink {
    pub by: String,
    pub note: String,
}
