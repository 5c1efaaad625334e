//! External gates on the request: asked once per revision when everything else has passed,
//! answered once through the API by a service identity, and failed by `Reconcile` when the
//! deadline passes without an answer.

use super::outbox::gate_requested_event;
use super::{AirlockRequest, Applied, Ctx, DomainError, NOT_INDEPENDENT, User};
use crate::gates::{FileVerdict, Finding, GateResult, external_gates};
use crate::lifecycle::Status;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest message an external gate may give per file, in characters.
pub const MAX_GATE_MESSAGE_CHARS: usize = 2000;

/// One external gate asked about one revision of the request, and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateRun {
    pub gate: String,
    pub revision: u32,
    pub requested_at: DateTime<Utc>,
    /// After this, an answer is refused and `Reconcile` fails the request.
    pub deadline: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<GateAnswer>,
}

/// What an external gate answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateAnswer {
    /// The answering identity's object id.
    pub by: String,
    pub at: DateTime<Utc>,
    pub files: Vec<FileVerdict>,
}

impl AirlockRequest {
    /// Asks every external gate not yet asked about this revision (a `GateRequested` event
    /// each, in the outbox) and returns the gates still owing an answer.
    pub(super) fn request_external_gates(&mut self, ctx: &Ctx) -> Vec<String> {
        let mut waiting = Vec::new();
        for (gate, external) in external_gates(&ctx.workspace.policy.gates) {
            let run = self
                .gate_runs
                .iter()
                .find(|r| r.gate == gate.name && r.revision == self.revision);
            match run {
                Some(run) if run.answer.is_some() => continue,
                Some(_) => {}
                None => {
                    let run = GateRun {
                        gate: gate.name.clone(),
                        revision: self.revision,
                        requested_at: ctx.now,
                        deadline: ctx.now
                            + chrono::Duration::minutes(external.deadline_minutes.into()),
                        answer: None,
                    };
                    self.log(
                        ctx,
                        &User::system(),
                        "gate requested",
                        None,
                        None,
                        Some(format!(
                            "{}: answer due by {}",
                            gate.name,
                            run.deadline.to_rfc3339()
                        )),
                    );
                    self.outbox.push(gate_requested_event(self, &run, ctx.now));
                    self.gate_runs.push(run);
                }
            }
            waiting.push(gate.name.clone());
        }
        waiting
    }

    /// The gates asked about this revision that have not answered, with their deadlines.
    pub fn unanswered_gates(&self) -> Vec<&GateRun> {
        self.gate_runs
            .iter()
            .filter(|r| r.revision == self.revision && r.answer.is_none())
            .collect()
    }

    /// An external gate's verdicts on this revision's files. A `fail` becomes a finding on the
    /// file in the gate's mode (so `block` blocks the request and `warn` shows the reviewer);
    /// when every gate has answered the request moves on. The same answer again is accepted
    /// and changes nothing (a Logic App retries); a different one, an answer after the
    /// deadline, or one for another revision is refused.
    pub fn answer_gate(
        &mut self,
        by: &User,
        gate_name: &str,
        revision: u32,
        mut files: Vec<FileVerdict>,
        ctx: &Ctx,
    ) -> Result<Applied, DomainError> {
        let Some((gate, external)) =
            external_gates(&ctx.workspace.policy.gates).find(|(g, _)| g.name == gate_name)
        else {
            return Err(DomainError::Invalid(format!(
                "this workspace's policy has no external gate {gate_name:?} that is on"
            )));
        };
        if !external.answered_by.is_empty() && !external.answered_by.contains(&by.id) {
            return Err(DomainError::Forbidden(format!(
                "identity {} may not answer for gate {gate_name:?}",
                by.id
            )));
        }
        if self.is_contributor(&by.id) {
            return Err(DomainError::Forbidden(NOT_INDEPENDENT.into()));
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for f in &mut files {
            f.message = f.message.take().map(|m| m.trim().to_string());
            let too_long = |s: &Option<String>| {
                s.as_ref()
                    .is_some_and(|m| m.chars().count() > MAX_GATE_MESSAGE_CHARS)
            };
            if too_long(&f.message) || too_long(&f.location) {
                return Err(DomainError::Invalid(format!(
                    "a gate's message or location is at most {MAX_GATE_MESSAGE_CHARS} characters"
                )));
            }
        }
        let run_index = self
            .gate_runs
            .iter()
            .position(|r| r.gate == gate_name && r.revision == revision);
        if let Some(i) = run_index
            && let Some(answer) = &self.gate_runs[i].answer
        {
            return if answer.files == files && answer.by == by.id {
                Ok(Applied::Unchanged(format!(
                    "gate {gate_name:?} already gave this answer"
                )))
            } else {
                Err(DomainError::Stale(format!(
                    "gate {gate_name:?} already answered for revision {revision}"
                )))
            };
        }
        if revision != self.revision {
            return Err(DomainError::Stale(format!(
                "the request is at revision {}; this answer is for revision {revision}",
                self.revision
            )));
        }
        // Late first (the request may have been failed for it meanwhile): the gate learns why.
        if let Some(i) = run_index
            && ctx.now > self.gate_runs[i].deadline
        {
            return Err(DomainError::Stale(format!(
                "gate {gate_name:?} had until {}; answers after the deadline do not count",
                self.gate_runs[i].deadline.to_rfc3339()
            )));
        }
        if self.status != Status::Submitted {
            return Err(DomainError::IllegalTransition {
                action: "answer a gate for",
                status: self.status,
            });
        }
        let Some(i) = run_index else {
            return Err(DomainError::Stale(format!(
                "gate {gate_name:?} has not been asked about revision {revision} yet (its files are still being sealed or scanned)"
            )));
        };
        let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        names.dedup();
        if names.len() != files.len() {
            return Err(DomainError::Invalid(
                "each file may have one verdict only".into(),
            ));
        }
        if let Some(unknown) = files
            .iter()
            .find(|f| !self.files.iter().any(|x| x.name == f.name))
        {
            return Err(DomainError::Invalid(format!(
                "{:?} is not a file of this request",
                unknown.name
            )));
        }
        let missing: Vec<&str> = self
            .files
            .iter()
            .filter(|x| !files.iter().any(|f| f.name == x.name))
            .map(|x| x.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DomainError::Invalid(format!(
                "the answer must give a verdict for every file; missing: {}",
                missing.join(", ")
            )));
        }
        let mode = gate.mode;
        let needs_justification = gate.needs_justification();
        for verdict in files.iter().filter(|f| f.result == GateResult::Fail) {
            if let Some(file) = self.file_mut(&verdict.name) {
                file.findings.push(Finding {
                    gate: gate_name.to_string(),
                    mode,
                    rule: "external".into(),
                    message: verdict
                        .message
                        .clone()
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| format!("{gate_name} failed this file")),
                    location: verdict.location.clone(),
                    cell: None,
                    remediation: None,
                    needs_justification,
                });
            }
        }
        let summary: Vec<String> = files
            .iter()
            .map(|f| match (&f.result, &f.message) {
                (GateResult::Pass, _) => format!("{} pass", f.name),
                (GateResult::Fail, Some(m)) => format!("{} fail: {m}", f.name),
                (GateResult::Fail, None) => format!("{} fail", f.name),
            })
            .collect();
        self.gate_runs[i].answer = Some(GateAnswer {
            by: by.id.clone(),
            at: ctx.now,
            files,
        });
        self.log(
            ctx,
            by,
            "gate answered",
            None,
            None,
            Some(format!("{gate_name}: {}", summary.join("; "))),
        );
        self.advance_after_sealing(ctx)?;
        Ok(Applied::Changed)
    }

    /// The status message of a request whose gates did not answer in time, or `None` while
    /// every gate still has time (`now` before each deadline).
    pub fn overdue_gates(&self, now: DateTime<Utc>) -> Option<String> {
        if self.status != Status::Submitted {
            return None;
        }
        let overdue: Vec<String> = self
            .unanswered_gates()
            .into_iter()
            .filter(|r| now > r.deadline)
            .map(|r| format!("{} (due {})", r.gate, r.deadline.to_rfc3339()))
            .collect();
        (!overdue.is_empty()).then(|| {
            format!(
                "no answer from external gate(s) by their deadline: {}",
                overdue.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::GATE_REQUESTED;
    use crate::request::GateState;
    use crate::request::{DraftFile, RequestType};
    use crate::workspace::Workspace;

    fn workspace(gates: serde_json::Value) -> Workspace {
        serde_json::from_value(serde_json::json!({
            "id": "ws1", "displayName": "One", "shortId": "ws1", "tokenAudience": "api://ws1",
            "policy": {"scanRequired": false, "gates": gates},
        }))
        .unwrap()
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            email: None,
        }
    }

    fn at(ws: &Workspace, minutes: i64) -> Ctx<'_> {
        Ctx {
            now: DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap(),
            workspace: ws,
        }
    }

    /// Submitted and sealed (two files, no scan): waiting for the external gates.
    fn sealed(ws: &Workspace) -> AirlockRequest {
        let mut r = AirlockRequest::create(
            "r1".into(),
            RequestType::Export,
            "t".into(),
            "j".into(),
            user("alice"),
            &at(ws, 0),
        )
        .unwrap();
        let files = ["a.csv", "b.csv"]
            .map(|n| DraftFile {
                name: n.into(),
                size: 3,
                etag: Some("d".into()),
            })
            .to_vec();
        r.submit(&user("alice"), files, &at(ws, 0)).unwrap();
        r.outbox.clear();
        for n in ["a.csv", "b.csv"] {
            r.record_sealed(n, 3, format!("sha-{n}"), format!("e-{n}"), &at(ws, 1))
                .unwrap();
        }
        r
    }

    fn verdicts(a: GateResult, b: GateResult) -> Vec<FileVerdict> {
        vec![
            FileVerdict {
                name: "b.csv".into(),
                result: b,
                message: Some("row 2 names a person".into()),
                location: Some("row 2".into()),
            },
            FileVerdict {
                name: "a.csv".into(),
                result: a,
                message: None,
                location: None,
            },
        ]
    }

    fn one_gate(mode: &str) -> Workspace {
        workspace(serde_json::json!([
            {"name": "names", "kind": "external", "mode": mode, "deadlineMinutes": 30,
             "answeredBy": ["svc-names"]},
        ]))
    }

    #[test]
    fn the_gate_is_asked_once_files_are_sealed_and_the_request_waits() {
        let ws = one_gate("block");
        let r = sealed(&ws);
        assert_eq!(r.status, Status::Submitted);
        let asked: Vec<_> = r
            .outbox
            .iter()
            .filter(|p| p.event.event_type == GATE_REQUESTED)
            .collect();
        assert_eq!(asked.len(), 1, "asked exactly once");
        let data = &asked[0].event.data;
        assert_eq!(data["gate"], "names");
        assert_eq!(data["revision"], 1);
        assert_eq!(data["files"][0]["sha256"], "sha-a.csv");
        assert_eq!(
            data["answerPath"],
            "/api/workspaces/ws1/requests/r1/gates/names"
        );
        assert_eq!(r.unanswered_gates().len(), 1);
        assert_eq!(
            r.unanswered_gates()[0].deadline,
            at(&ws, 31).now,
            "deadline runs from when it was asked"
        );
        // An off gate is never asked.
        let r = sealed(&one_gate("off"));
        assert_eq!(r.status, Status::InReview);
        assert!(r.gate_runs.is_empty());
    }

    #[test]
    fn answers_decide_by_mode() {
        let cases = [
            (
                "block",
                GateResult::Pass,
                GateResult::Pass,
                Status::InReview,
                0,
            ),
            (
                "block",
                GateResult::Pass,
                GateResult::Fail,
                Status::BlockingInProgress,
                1,
            ),
            (
                "warn",
                GateResult::Pass,
                GateResult::Fail,
                Status::InReview,
                1,
            ),
            (
                "warn",
                GateResult::Fail,
                GateResult::Fail,
                Status::InReview,
                2,
            ),
        ];
        for (mode, a, b, status, findings) in cases {
            let ws = one_gate(mode);
            let mut r = sealed(&ws);
            let applied = r
                .answer_gate(&user("svc-names"), "names", 1, verdicts(a, b), &at(&ws, 5))
                .unwrap();
            assert_eq!(applied, Applied::Changed);
            assert_eq!(r.status, status, "{mode} {a:?} {b:?}");
            let found: Vec<&Finding> = r.files.iter().flat_map(|f| &f.findings).collect();
            assert_eq!(found.len(), findings, "{mode} {a:?} {b:?}");
            if status == Status::BlockingInProgress {
                assert_eq!(
                    r.status_message.as_deref(),
                    Some("blocked by policy: b.csv: row 2 names a person (names, row 2)")
                );
            }
            // The same answer again (a retried call) is accepted and changes nothing.
            let again = r
                .answer_gate(&user("svc-names"), "names", 1, verdicts(a, b), &at(&ws, 6))
                .unwrap();
            assert!(matches!(again, Applied::Unchanged(_)));
        }
    }

    #[test]
    fn wrong_answers_are_refused() {
        let ws = one_gate("block");
        let r = sealed(&ws);
        let pass = || verdicts(GateResult::Pass, GateResult::Pass);
        let svc = user("svc-names");
        let refused = |who: &User, gate: &str, rev: u32, files: Vec<FileVerdict>, minute: i64| {
            r.clone()
                .answer_gate(who, gate, rev, files, &at(&ws, minute))
                .unwrap_err()
        };
        assert!(matches!(
            refused(&svc, "other", 1, pass(), 5),
            DomainError::Invalid(_)
        ));
        assert!(matches!(
            refused(&user("svc-other"), "names", 1, pass(), 5),
            DomainError::Forbidden(_)
        ));
        assert!(matches!(
            refused(&user("alice"), "names", 1, pass(), 5),
            DomainError::Forbidden(_)
        ));
        assert!(matches!(
            refused(&svc, "names", 2, pass(), 5),
            DomainError::Stale(_)
        ));
        // After the deadline (asked at minute 1, 30 minutes to answer).
        let late = refused(&svc, "names", 1, pass(), 32);
        assert!(
            late.to_string()
                .contains("answers after the deadline do not count"),
            "{late}"
        );
        let mut missing = pass();
        missing.pop();
        assert_eq!(
            refused(&svc, "names", 1, missing, 5).to_string(),
            "the answer must give a verdict for every file; missing: a.csv"
        );
        let mut unknown = pass();
        unknown[0].name = "../etc/passwd".into();
        assert!(matches!(
            refused(&svc, "names", 1, unknown, 5),
            DomainError::Invalid(_)
        ));
        let mut twice = pass();
        twice[0].name = "a.csv".into();
        assert!(matches!(
            refused(&svc, "names", 1, twice, 5),
            DomainError::Invalid(_)
        ));
        let mut long = pass();
        long[0].message = Some("x".repeat(MAX_GATE_MESSAGE_CHARS + 1));
        assert!(matches!(
            refused(&svc, "names", 1, long, 5),
            DomainError::Invalid(_)
        ));
        // A different second answer is refused; the first stands.
        let mut r2 = r.clone();
        r2.answer_gate(&svc, "names", 1, pass(), &at(&ws, 5))
            .unwrap();
        let changed = r2
            .answer_gate(
                &svc,
                "names",
                1,
                verdicts(GateResult::Fail, GateResult::Pass),
                &at(&ws, 6),
            )
            .unwrap_err();
        assert!(matches!(changed, DomainError::Stale(_)));
        assert_eq!(r2.status, Status::InReview);
        // Before it is asked (still sealing): not yet.
        let mut early = AirlockRequest::create(
            "r2".into(),
            RequestType::Export,
            "t".into(),
            "j".into(),
            user("alice"),
            &at(&ws, 0),
        )
        .unwrap();
        early
            .submit(
                &user("alice"),
                vec![DraftFile {
                    name: "a.csv".into(),
                    size: 1,
                    etag: None,
                }],
                &at(&ws, 0),
            )
            .unwrap();
        let e = early
            .answer_gate(&svc, "names", 1, vec![pass().remove(1)], &at(&ws, 1))
            .unwrap_err();
        assert!(e.to_string().contains("has not been asked"), "{e}");
    }

    #[test]
    fn silence_past_the_deadline_is_overdue() {
        let ws = one_gate("block");
        let r = sealed(&ws);
        assert_eq!(r.overdue_gates(at(&ws, 31).now), None);
        let message = r.overdue_gates(at(&ws, 32).now).unwrap();
        assert!(
            message.starts_with("no answer from external gate(s) by their deadline: names (due "),
            "{message}"
        );
    }

    #[test]
    fn every_gate_must_answer_and_the_report_shows_each() {
        let ws = workspace(serde_json::json!([
            {"name": "one", "kind": "external"},
            {"name": "two", "kind": "external", "mode": "warn"},
        ]));
        let mut r = sealed(&ws);
        assert_eq!(r.unanswered_gates().len(), 2);
        let svc = user("svc");
        r.answer_gate(
            &svc,
            "one",
            1,
            verdicts(GateResult::Pass, GateResult::Pass),
            &at(&ws, 2),
        )
        .unwrap();
        assert_eq!(r.status, Status::Submitted, "still waiting for two");
        r.answer_gate(
            &svc,
            "two",
            1,
            verdicts(GateResult::Pass, GateResult::Fail),
            &at(&ws, 3),
        )
        .unwrap();
        assert_eq!(r.status, Status::InReview);
        let report = r.gate_report(&ws.policy, at(&ws, 4).now);
        let states: Vec<(&str, GateState)> = report
            .gates
            .iter()
            .map(|g| (g.name.as_str(), g.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("malware scan", GateState::Off),
                ("one", GateState::Passed),
                ("two", GateState::Warned),
            ]
        );
        assert_eq!(report.gates[2].answered_by.as_deref(), Some("svc"));
        assert_eq!(report.gates[2].files[1].findings[0].rule, "external");
    }
}
