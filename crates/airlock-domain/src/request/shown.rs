//! What leaves the airlock about a file: the API's requests and the notifications show a
//! file as [`FileView`], the stored record without the workflow's bookkeeping (the submitted
//! draft's version, which stage the movement last confirmed).

use super::{Decision, FileRecord, Justification, ScanVerdict};
use crate::gates::{AcroOutput, Finding};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A file of a request as the API and the notifications show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub name: String,
    pub size: u64,
    /// sha256 (hex) of the sealed copy: what is reviewed and released.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The sealed copy's version (ETag); a scan verdict counts only for this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// When the sealed copy was hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<DateTime<Utc>>,
    /// The malware scanner's verdict on the sealed copy.
    #[serde(default)]
    pub scan: Option<ScanVerdict>,
    /// What the workspace's gates found in the sealed copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The researcher's reason why this file's warnings are acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<Justification>,
    /// What the file is, in the researcher's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The disclosure controls applied to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_controls: Option<String>,
    /// A supporting file: shown to the reviewers, never released.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supporting: bool,
    /// What the researcher's ACRO record says about this file: its output's status, the
    /// checks that flagged cells and the researcher's exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acro: Option<AcroOutput>,
    /// The review's final decision on this file; in an approved request a `rejected` file is
    /// withheld (a partial release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl FileView {
    /// Withheld from an approved request (a partial release): never copied out.
    pub fn withheld(&self) -> bool {
        self.decision == Some(Decision::Rejected)
    }
}

impl From<&FileRecord> for FileView {
    fn from(f: &FileRecord) -> Self {
        FileView {
            name: f.name.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            etag: f.etag.clone(),
            sealed_at: f.sealed_at,
            scan: f.scan.clone(),
            findings: f.findings.clone(),
            justification: f.justification.clone(),
            description: f.description.clone(),
            disclosure_controls: f.disclosure_controls.clone(),
            supporting: f.supporting,
            acro: f.acro.clone(),
            decision: f.decision,
        }
    }
}
