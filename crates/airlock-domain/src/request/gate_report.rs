//! What each gate of the workspace's policy made of a request's current revision, as the
//! reviewer and the researcher see it (`GET .../gates`): the malware scan first, then the
//! policy's gates in order, each with its state and, per file, the evidence.

use super::{AirlockRequest, GateRun};
use crate::gates::{Finding, GateKind, GateMode};
use crate::lifecycle::Status;
use crate::policy::WorkspacePolicy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a gate stands on the current revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// Turned off by the workspace's policy.
    Off,
    /// Not every file has been checked yet (or, for an external gate, it was not asked yet).
    Pending,
    /// Asked and not answered; `deadline` says until when.
    Waiting,
    /// Every file checked, nothing found.
    Passed,
    /// Something found, shown to the reviewer.
    Warned,
    /// Something found that stops the request.
    Blocked,
    /// An external gate that did not answer by its deadline.
    NoAnswer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateFileResult {
    pub name: String,
    /// Whether this gate read the file (never said of a file it did not read: a disclosure
    /// gate reads tables only, and a file blocked before its seal was read by none).
    pub checked: bool,
    /// The version of the workspace's policy the gate read it under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    pub findings: Vec<Finding>,
    /// The malware scan's verdict, on the malware gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateStatus {
    pub name: String,
    /// `malwareScan`, `filePolicy`, `disclosure`, `releaseLedger` or `external`.
    pub kind: String,
    pub mode: GateMode,
    pub state: GateState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    pub files: Vec<GateFileResult>,
}

/// Every gate's result on a request's current revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub request_id: String,
    pub revision: u32,
    pub status: Status,
    pub gates: Vec<GateStatus>,
}

fn state_of<'a>(findings: impl Iterator<Item = &'a Finding>, all_checked: bool) -> GateState {
    let mut state = if all_checked {
        GateState::Passed
    } else {
        GateState::Pending
    };
    for f in findings {
        match f.mode {
            GateMode::Block => return GateState::Blocked,
            GateMode::Warn => state = GateState::Warned,
            GateMode::Off => {}
        }
    }
    state
}

impl AirlockRequest {
    /// The gate report at `now` (which tells a late external gate from a waiting one).
    pub fn gate_report(&self, policy: &WorkspacePolicy, now: DateTime<Utc>) -> GateReport {
        let mut gates = Vec::new();
        let submitted = self.status != Status::Draft;
        // The malware scan is the first gate; it cannot be turned off or to warn: a file the
        // scanner calls malicious is always blocked.
        let scan_files: Vec<GateFileResult> = self
            .files
            .iter()
            .map(|f| GateFileResult {
                name: f.name.clone(),
                checked: f.scan.is_some(),
                findings: Vec::new(),
                policy_version: None,
                verdict: f.scan.as_ref().map(|v| {
                    if v.malware_names.is_empty() {
                        v.result.clone()
                    } else {
                        format!("{} ({})", v.result, v.malware_names.join(", "))
                    }
                }),
            })
            .collect();
        let scan_state = if !policy.scan_required {
            GateState::Off
        } else if self
            .files
            .iter()
            .any(|f| f.scan.as_ref().is_some_and(|v| !v.passes(policy)))
        {
            GateState::Blocked
        } else if submitted && scan_files.iter().all(|f| f.checked) {
            GateState::Passed
        } else {
            GateState::Pending
        };
        gates.push(GateStatus {
            name: "malware scan".into(),
            kind: "malwareScan".into(),
            mode: if policy.scan_required {
                GateMode::Block
            } else {
                GateMode::Off
            },
            state: scan_state,
            requested_at: None,
            deadline: None,
            answered_at: None,
            answered_by: None,
            files: scan_files,
        });
        // The built-in ACRO gate is shown when the request carries an ACRO record.
        let mut declared = policy.gates.clone();
        if !declared.iter().any(|g| matches!(g.kind, GateKind::Acro {}))
            && self.files.iter().any(|f| f.evidence.is_some())
            && let Some(acro) = crate::gates::acro_gate(&declared)
        {
            declared.push(acro);
        }
        for gate in &declared {
            let kind = match &gate.kind {
                GateKind::FilePolicy(_) => "filePolicy",
                GateKind::Disclosure(_) => "disclosure",
                GateKind::ReleaseLedger {} => "releaseLedger",
                GateKind::External(_) => "external",
                GateKind::Acro {} => "acro",
                GateKind::Identifiers(_) => "identifiers",
                GateKind::Secrets(_) => "secrets",
            };
            let run: Option<&GateRun> = self
                .gate_runs
                .iter()
                .find(|r| r.gate == gate.name && r.revision == self.revision);
            let files: Vec<GateFileResult> = self
                .files
                .iter()
                .map(|f| GateFileResult {
                    name: f.name.clone(),
                    checked: match &gate.kind {
                        GateKind::External(_) => run.is_some_and(|r| r.answer.is_some()),
                        // Only the files ACRO's record covers: the record's own files and
                        // the outputs it names.
                        GateKind::Acro {} => f.evidence.is_some() || f.acro.is_some(),
                        _ => f
                            .gates_read
                            .as_ref()
                            .is_some_and(|r| r.gates.contains(&gate.name)),
                    },
                    policy_version: f.gates_read.as_ref().map(|r| r.policy_version.clone()),
                    findings: f
                        .findings
                        .iter()
                        .filter(|x| x.gate == gate.name)
                        .cloned()
                        .collect(),
                    verdict: None,
                })
                .collect();
            let all_checked = submitted
                && match &gate.kind {
                    // The record is checked once every file is sealed.
                    GateKind::Acro {} => self.files.iter().all(|f| f.sha256.is_some()),
                    _ => files.iter().all(|f| f.checked),
                };
            let mut state = state_of(files.iter().flat_map(|f| &f.findings), all_checked);
            if gate.mode == GateMode::Off {
                state = GateState::Off;
            } else if let Some(run) = run
                && run.answer.is_none()
            {
                state = if now > run.deadline {
                    GateState::NoAnswer
                } else {
                    GateState::Waiting
                };
            }
            gates.push(GateStatus {
                name: gate.name.clone(),
                kind: kind.into(),
                mode: gate.mode,
                state,
                requested_at: run.map(|r| r.requested_at),
                deadline: run.map(|r| r.deadline),
                answered_at: run.and_then(|r| r.answer.as_ref()).map(|a| a.at),
                answered_by: run.and_then(|r| r.answer.as_ref()).map(|a| a.by.clone()),
                files,
            });
        }
        GateReport {
            request_id: self.id.clone(),
            revision: self.revision,
            status: self.status,
            gates,
        }
    }
}
