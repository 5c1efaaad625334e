//! What changed in a resubmission: the current revision's files against the previous
//! revision's, and against what the asking reviewer last decided. Files are compared by name
//! and sealed sha256, as the decisions kept them (`FileDecision::sha256`); a file renamed is
//! a new file.

use super::{AirlockRequest, Decision};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a file compares with an earlier revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    Added,
    Changed,
    /// Byte-identical (same sha256) under the same name.
    Identical,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileDiff {
    pub name: String,
    pub change: FileChange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    /// Against your last decisions: what you decided then (carried over when `identical`
    /// and the workspace carries votes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_decision: Option<Decision>,
    /// For a changed CSV/TSV table: which cells, rows and columns changed (when both
    /// versions were small enough for the seal to keep their cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<super::table_diff::TableDiff>,
}

/// `GET .../requests/{id}/diff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDiff {
    pub revision: u32,
    /// Against the previous revision (absent at revision 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<Vec<FileDiff>>,
    /// Against the revision you last decided (absent if you never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_your_vote: Option<SinceYourVote>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinceYourVote {
    pub revision: u32,
    pub files: Vec<FileDiff>,
}

impl RevisionDiff {
    /// Every changed file of both comparisons, for filling in `table`.
    pub fn changed_files_mut(&mut self) -> impl Iterator<Item = &mut FileDiff> {
        self.since_previous
            .iter_mut()
            .flatten()
            .chain(
                self.since_your_vote
                    .iter_mut()
                    .flat_map(|s| s.files.iter_mut()),
            )
            .filter(|f| f.change == FileChange::Changed)
    }
}

impl AirlockRequest {
    /// Files (name → sha256) as the decisions of `revision` kept them (any reviewer's, or
    /// `reviewer`'s only), with what `reviewer` decided.
    fn decided_files(
        &self,
        revision: u32,
        reviewer: Option<&str>,
    ) -> BTreeMap<String, (Option<String>, Option<Decision>)> {
        let mut files = BTreeMap::new();
        for review in self
            .reviews
            .iter()
            .filter(|r| r.revision == revision && reviewer.is_none_or(|id| r.reviewer.id == id))
        {
            for d in &review.files {
                let entry = files
                    .entry(d.name.clone())
                    .or_insert((d.sha256.clone(), None));
                if reviewer.is_some() {
                    entry.1 = Some(d.decision);
                }
            }
        }
        files
    }

    fn compare(
        &self,
        earlier: &BTreeMap<String, (Option<String>, Option<Decision>)>,
    ) -> Vec<FileDiff> {
        let mut out: Vec<FileDiff> = self
            .files
            .iter()
            .map(|f| {
                let before = earlier.get(&f.name);
                let change = match before {
                    None => FileChange::Added,
                    Some((sha, _)) if sha.is_some() && *sha == f.sha256 => FileChange::Identical,
                    Some(_) => FileChange::Changed,
                };
                FileDiff {
                    name: f.name.clone(),
                    change,
                    sha256: f.sha256.clone(),
                    previous_sha256: before.and_then(|(sha, _)| sha.clone()),
                    your_decision: before.and_then(|(_, d)| *d),
                    table: None,
                }
            })
            .collect();
        for (name, (sha, decision)) in earlier {
            if !self.files.iter().any(|f| &f.name == name) {
                out.push(FileDiff {
                    name: name.clone(),
                    change: FileChange::Removed,
                    sha256: None,
                    previous_sha256: sha.clone(),
                    your_decision: *decision,
                    table: None,
                });
            }
        }
        out
    }

    /// The current revision against the previous one and against `reviewer`'s last decisions.
    pub fn revision_diff(&self, reviewer: &str) -> RevisionDiff {
        let since_previous =
            (self.revision > 1).then(|| self.compare(&self.decided_files(self.revision - 1, None)));
        let last_vote = self
            .reviews
            .iter()
            .filter(|r| r.reviewer.id == reviewer && r.revision < self.revision)
            .map(|r| r.revision)
            .max();
        RevisionDiff {
            revision: self.revision,
            since_previous,
            since_your_vote: last_vote.map(|n| SinceYourVote {
                revision: n,
                files: self.compare(&self.decided_files(n, Some(reviewer))),
            }),
        }
    }
}
