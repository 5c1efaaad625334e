//! What happens to a submitted request's files: each sealed copy hashed and checked, the
//! malware scanner's verdict (and a rescan when it is overdue), a copy arriving in the next
//! stage, and the researcher's justification of a gate's warning; the request moves on when
//! every file has what its status waits for.

use super::*;

impl AirlockRequest {
    pub(crate) fn file_mut(&mut self, name: &str) -> Option<&mut FileRecord> {
        self.files.iter_mut().find(|f| f.name == name)
    }

    /// The sealed copy of `name` in the in-progress stage was hashed.
    pub fn record_sealed(
        &mut self,
        name: &str,
        size: u64,
        sha256: String,
        etag: String,
        ctx: &Ctx,
    ) -> Result<Applied, DomainError> {
        self.record_sealed_checked(name, size, sha256, etag, Default::default(), ctx)
    }

    /// The seal of `name` with what the workspace's gates found in it on the same read.
    pub fn record_sealed_checked(
        &mut self,
        name: &str,
        size: u64,
        sha256: String,
        etag: String,
        checked: crate::gates::Checked,
        ctx: &Ctx,
    ) -> Result<Applied, DomainError> {
        let crate::gates::Checked {
            findings,
            evidence,
            read_by,
            labels,
            ..
        } = checked;
        if self.status != Status::Submitted {
            return Ok(Applied::Unchanged(format!(
                "request is {}, not submitted",
                self.status
            )));
        }
        let max = ctx.workspace.policy.max_file_bytes;
        let Some(file) = self.file_mut(name) else {
            return Ok(Applied::Unchanged(format!(
                "{name:?} is not a file of this request"
            )));
        };
        if file.sha256.is_some() && file.etag.as_deref() == Some(etag.as_str()) {
            return Ok(Applied::Unchanged(format!("{name:?} already sealed")));
        }
        if file.sha256.is_some() {
            // The sealed copy changed after it was hashed: nobody should be able to write
            // there, so this is tampering.
            let message = format!(
                "the sealed copy of {name:?} changed after it was hashed (etag {} then {etag})",
                file.etag.clone().unwrap_or_default()
            );
            return Ok(self.fail(message, ctx));
        }
        file.size = size;
        file.sha256 = Some(sha256.clone());
        file.etag = Some(etag);
        file.sealed_at = Some(ctx.now);
        file.arrived_in = Some(StageRole::InProgress);
        let found: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{} {:?} {}: {}{}",
                    f.gate,
                    f.mode,
                    f.rule,
                    f.message,
                    f.location
                        .as_deref()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        file.findings = findings;
        file.evidence = evidence;
        file.table_labels = labels;
        file.gates_read = Some(GatesRead {
            policy_version: ctx.workspace.policy.version(),
            gates: read_by,
        });
        if size > max {
            let message = format!(
                "{name:?} is {size} bytes once sealed; the workspace allows at most {max} bytes per file"
            );
            return Ok(self.fail(message, ctx));
        }
        let sealed_total: u64 = self
            .files
            .iter()
            .filter(|f| f.sha256.is_some())
            .map(|f| f.size)
            .sum();
        let max_total = ctx.workspace.policy.max_total_bytes;
        if sealed_total > max_total {
            let message = format!(
                "the sealed files total {sealed_total} bytes; the workspace allows at most {max_total} bytes"
            );
            return Ok(self.fail(message, ctx));
        }
        self.log(
            ctx,
            &User::system(),
            "sealed",
            None,
            None,
            Some(format!(
                "{name} ({size} bytes) sha256 {sha256}; policy version {}",
                ctx.workspace.policy.version()
            )),
        );
        if !found.is_empty() {
            self.log_gates(ctx, format!("{name}: {}", found.join("; ")));
        }
        if self.files.iter().all(|f| f.sha256.is_some()) {
            self.assess_acro_record(ctx);
            self.assess_linked_tables(ctx);
        }
        self.advance_after_sealing(ctx)?;
        Ok(Applied::Changed)
    }

    /// Once every file is sealed: the request's ACRO record (if it carries one) checked
    /// against the sealed files; its findings go on the files they are about, each output's
    /// evidence beside its files, and the record's own files become supporting files.
    fn assess_acro_record(&mut self, ctx: &Ctx) {
        let gates = &ctx.workspace.policy.gates;
        let Some(gate) = crate::gates::acro_gate(gates) else {
            return;
        };
        if !self.files.iter().any(|f| f.evidence.is_some()) {
            return;
        }
        let sealed: Vec<crate::gates::SealedFile<'_>> = self
            .files
            .iter()
            .map(|f| crate::gates::SealedFile {
                name: &f.name,
                sha256: f.sha256.as_deref(),
                evidence: f.evidence.as_ref(),
            })
            .collect();
        let assessment =
            crate::gates::assess(&sealed, &gate, crate::gates::workspace_threshold(gates));
        let mut described = Vec::new();
        let mut newly_supporting = Vec::new();
        for file in &mut self.files {
            file.findings.retain(|f| f.gate != gate.name);
            file.acro = assessment.outputs.get(&file.name).cloned();
            for (_, finding) in assessment.findings.iter().filter(|(n, _)| *n == file.name) {
                described.push(format!(
                    "{}: {} {:?}: {}",
                    file.name, finding.rule, finding.mode, finding.message
                ));
                file.findings.push(finding.clone());
            }
            if assessment.supporting.contains(&file.name) && !file.supporting {
                file.supporting = true;
                newly_supporting.push(file.name.clone());
            }
        }
        let outputs = assessment.outputs.len();
        let mut details = format!("ACRO record read: {outputs} files mapped to its outputs");
        if !newly_supporting.is_empty() {
            details.push_str(&format!(
                "; supporting (reviewed, never released): {}",
                newly_supporting.join(", ")
            ));
        }
        if !described.is_empty() {
            details.push_str(&format!("; {}", described.join("; ")));
        }
        self.log_gates(ctx, details);
    }

    /// Once every file is sealed: tables of the request that can be joined into a finer
    /// table than either (ACRO's linked tables) get a `linked_tables` warning each, naming
    /// the other table and the shared columns, for a person to judge.
    fn assess_linked_tables(&mut self, ctx: &Ctx) {
        let Some((gate, _)) = crate::gates::linking_gate(&ctx.workspace.policy.gates) else {
            return;
        };
        let tables: Vec<(&str, &[String])> = self
            .files
            .iter()
            .filter(|f| !f.supporting)
            .filter_map(|f| f.table_labels.as_deref().map(|l| (f.name.as_str(), l)))
            .collect();
        let links = crate::gates::linked_tables(&tables, &gate);
        let mut described = Vec::new();
        for file in &mut self.files {
            file.findings
                .retain(|f| !(f.gate == gate.name && f.rule == crate::gates::LINKED_TABLES));
            for finding in links.iter().filter(|(n, _)| *n == file.name) {
                described.push(format!("{}: {}", file.name, finding.1.message));
                file.findings.push(finding.1.clone());
            }
        }
        if !described.is_empty() {
            self.log_gates(ctx, format!("linked tables: {}", described.join("; ")));
        }
    }

    /// What the gates found, in the history (action `gates`, by the system).
    fn log_gates(&mut self, ctx: &Ctx, details: String) {
        self.log(ctx, &User::system(), "gates", None, None, Some(details));
    }

    /// The researcher's justification of the gate warnings on `name`, while in review. Only
    /// someone who could have written the data (a contributor) justifies it; a new one
    /// replaces the old, and both are in the history.
    pub fn justify(
        &mut self,
        by: &User,
        name: &str,
        text: String,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        if self.status != Status::InReview {
            return Err(DomainError::IllegalTransition {
                action: "justify",
                status: self.status,
            });
        }
        if !super::is_written(&text, MAX_JUSTIFICATION_CHARS) {
            return Err(DomainError::Invalid(format!(
                "a justification is 1 to {MAX_JUSTIFICATION_CHARS} characters"
            )));
        }
        let text = text.trim().to_string();
        let Some(file) = self.file_mut(name) else {
            return Err(DomainError::Invalid(format!(
                "{name:?} is not a file of this request"
            )));
        };
        if !file
            .findings
            .iter()
            .any(|f| f.mode == crate::gates::GateMode::Warn)
        {
            return Err(DomainError::Invalid(format!(
                "{name:?} has no gate warnings to justify"
            )));
        }
        file.justification = Some(Justification {
            by: by.id.clone(),
            at: ctx.now,
            text: text.clone(),
        });
        self.log(
            ctx,
            by,
            "justified",
            None,
            None,
            Some(format!("{name}: {text}")),
        );
        Ok(())
    }

    /// Whether the verdicts of a submitted request are overdue: a file sealed `timeout` ago
    /// without a verdict asks for a rescan first, and is given up on only `timeout` after
    /// that rescan was asked for (a lost verdict event or a scan that never ran is recovered,
    /// not failed).
    pub fn verdict_wait(&self, now: DateTime<Utc>, timeout: chrono::Duration) -> VerdictWait {
        if self.status != Status::Submitted {
            return VerdictWait::OnTime;
        }
        let late: Vec<String> = self
            .files
            .iter()
            .filter(|f| {
                !f.has_verdict_for_seal() && f.sealed_at.is_some_and(|t| now - t >= timeout)
            })
            .map(|f| f.name.clone())
            .collect();
        if late.is_empty() {
            return VerdictWait::OnTime;
        }
        match self.rescan_requested_at {
            None => VerdictWait::AskRescan(late),
            Some(asked) if now - asked >= timeout => VerdictWait::Overdue(late),
            Some(_) => VerdictWait::OnTime,
        }
    }

    /// Records that a rescan of `files` was asked for (once per status).
    pub fn record_rescan_requested(&mut self, files: &[String], ctx: &Ctx) -> Applied {
        if self.status != Status::Submitted || self.rescan_requested_at.is_some() {
            return Applied::Unchanged("a rescan is already on the record".into());
        }
        self.rescan_requested_at = Some(ctx.now);
        self.log(
            ctx,
            &User::system(),
            RESCAN_REQUESTED,
            None,
            None,
            Some(format!(
                "no malware scan verdict yet for: {}; asked the scanner to scan them again",
                files.join(", ")
            )),
        );
        Applied::Changed
    }

    /// A malware verdict for `name`. Verdicts about another version of the blob are ignored.
    ///
    /// A verdict must name the version (eTag) it scanned, and only a verdict about the sealed
    /// version counts. A clean verdict never replaces a bad one for the same version; a bad one
    /// always counts, even after a clean one and after review began (the request is blocked).
    pub fn record_verdict(
        &mut self,
        name: &str,
        verdict: ScanVerdict,
        ctx: &Ctx,
    ) -> Result<Applied, DomainError> {
        let status = self.status;
        if !matches!(status, Status::Submitted | Status::InReview) {
            return Ok(Applied::Unchanged(format!(
                "request is {status}: verdicts no longer apply"
            )));
        }
        let Some(file) = self.file_mut(name) else {
            return Ok(Applied::Unchanged(format!(
                "{name:?} is not a file of this request"
            )));
        };
        let Some(seen) = verdict.etag.as_deref() else {
            return Ok(Applied::Unchanged(format!(
                "verdict for {name:?} names no eTag: it cannot be tied to the sealed copy"
            )));
        };
        if let Some(sealed) = &file.etag
            && sealed != seen
        {
            return Ok(Applied::Unchanged(format!(
                "verdict for {name:?} is about etag {seen}, the sealed copy is {sealed}"
            )));
        }
        if file.scan.as_ref() == Some(&verdict) {
            return Ok(Applied::Unchanged(format!(
                "verdict for {name:?} already recorded"
            )));
        }
        let earlier_bad = file
            .scan
            .as_ref()
            .is_some_and(|v| !v.is_clean() && v.etag.as_deref() == Some(seen));
        if earlier_bad && verdict.is_clean() {
            return Ok(Applied::Unchanged(format!(
                "a clean verdict for {name:?} never overrides an earlier bad one for the same version"
            )));
        }
        if status == Status::InReview && verdict.is_clean() {
            return Ok(Applied::Unchanged(format!(
                "request is in review: {name:?} was already found clean"
            )));
        }
        let passes = verdict.passes(&ctx.workspace.policy);
        let fails = verdict.fails_request(&ctx.workspace.policy);
        let message = if verdict.malware_names.is_empty() {
            format!("{name}: {}", verdict.result)
        } else {
            format!(
                "{name}: {} ({})",
                verdict.result,
                verdict.malware_names.join(", ")
            )
        };
        file.scan = Some(verdict);
        self.log(
            ctx,
            &User::system(),
            "scanned",
            None,
            None,
            Some(message.clone()),
        );
        if status == Status::InReview && fails {
            self.fail(unscanned_failure(&[message]), ctx);
            return Ok(Applied::Changed);
        }
        if status == Status::InReview && !passes {
            // A later, contradicting verdict (Defender rescans, or a first clean answer was
            // wrong): what is under review is malware after all.
            self.transition(
                Status::BlockingInProgress,
                &User::system(),
                "scan: blocked",
                Some(format!("blocked by malware scan during review: {message}")),
                ctx,
            )?;
            return Ok(Applied::Changed);
        }
        self.advance_after_sealing(ctx)?;
        Ok(Applied::Changed)
    }

    /// From `submitted`: block on any bad verdict, review once everything is sealed and clean.
    /// Both moves are in the lifecycle table; an error here means the table and this rule
    /// disagree, and is reported rather than ignored.
    pub(crate) fn advance_after_sealing(&mut self, ctx: &Ctx) -> Result<(), DomainError> {
        if self.status != Status::Submitted {
            return Ok(());
        }
        let policy = &ctx.workspace.policy;
        // Verdicts about the sealed version (one about another version does not count),
        // described for the status message.
        let verdicts: Vec<(&ScanVerdict, String)> = self
            .files
            .iter()
            .filter_map(|f| {
                let v = f.scan.as_ref()?;
                let matches = match (&f.etag, &v.etag) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                let described = if v.malware_names.is_empty() {
                    format!("{}: {}", f.name, v.result)
                } else {
                    format!("{}: {} ({})", f.name, v.result, v.malware_names.join(", "))
                };
                matches.then_some((v, described))
            })
            .collect();
        let failing: Vec<String> = verdicts
            .iter()
            .filter(|(v, _)| v.fails_request(policy))
            .map(|(_, d)| d.clone())
            .collect();
        let bad: Vec<String> = verdicts
            .iter()
            .filter(|(v, _)| !v.passes(policy) && !v.fails_request(policy))
            .map(|(_, d)| d.clone())
            .collect();
        // Malware blocks (quarantine) even when another file only fails the request.
        if bad.is_empty() && !failing.is_empty() {
            self.fail(unscanned_failure(&failing), ctx);
            return Ok(());
        }
        if !bad.is_empty() {
            let message = format!("blocked by malware scan: {}", bad.join("; "));
            return self.transition(
                Status::BlockingInProgress,
                &User::system(),
                "scan: blocked",
                Some(message),
                ctx,
            );
        }
        // A gate in block mode that found something stops the request before review, like
        // malware (the data goes to the blocked stage), naming file, gate and cell.
        let gate_findings: Vec<(String, &crate::gates::Finding)> = self
            .files
            .iter()
            .flat_map(|f| f.findings.iter().map(move |x| (f.name.clone(), x)))
            .collect();
        if let Some(message) = crate::gates::blocking_message(&gate_findings) {
            return self.transition(
                Status::BlockingInProgress,
                &User::system(),
                "gates: blocked",
                Some(message),
                ctx,
            );
        }
        let scan_required = ctx.workspace.policy.scan_required;
        let ready = self.files.iter().all(|f| {
            f.sha256.is_some()
                && (!scan_required
                    || f.scan.as_ref().is_some_and(|v| {
                        v.passes(&ctx.workspace.policy) && (v.etag.is_none() || v.etag == f.etag)
                    }))
        });
        // External gates are asked last, about exactly what the reviewer will see.
        if ready && self.request_external_gates(ctx).is_empty() {
            self.transition(
                Status::InReview,
                &User::system(),
                "ready for review",
                None,
                ctx,
            )?;
        }
        Ok(())
    }

    /// A file arrived in the destination of the movement under way. For the approved stage
    /// the copy's sha256 must match the sealed one, else the request fails naming the file.
    pub fn record_arrival(
        &mut self,
        name: &str,
        stage: StageRole,
        observed_sha256: Option<&str>,
        ctx: &Ctx,
    ) -> Result<Applied, DomainError> {
        let Some((_, destination)) = crate::stages::movement_for(self.status) else {
            return Ok(Applied::Unchanged(format!(
                "request is {}: no movement under way",
                self.status
            )));
        };
        if destination != stage || stage == StageRole::InProgress {
            return Ok(Applied::Unchanged(format!(
                "arrival in {stage:?} does not match the movement of a {} request",
                self.status
            )));
        }
        let status = self.status;
        let Some(file) = self.file_mut(name) else {
            return Ok(Applied::Unchanged(format!(
                "{name:?} is not a file of this request"
            )));
        };
        if stage == StageRole::Approved && !file.released() {
            // Never copied there; a copy that appears anyway is not part of the release.
            return Ok(Applied::Unchanged(format!(
                "{name:?} is withheld from this release"
            )));
        }
        if file.arrived_in == Some(stage) {
            return Ok(Applied::Unchanged(format!(
                "{name:?} already arrived in {stage:?}"
            )));
        }
        if status == Status::ApprovalInProgress {
            let expected = file.sha256.clone().unwrap_or_default();
            match observed_sha256 {
                Some(seen) if seen == expected => {}
                seen => {
                    let message = format!(
                        "integrity check failed: the approved copy of {name:?} has sha256 {} but the sealed copy had {expected}",
                        seen.unwrap_or("(not computed)")
                    );
                    return Ok(self.fail(message, ctx));
                }
            }
        }
        if file.sha256.is_none() {
            file.sha256 = observed_sha256.map(str::to_string);
        }
        file.arrived_in = Some(stage);
        let verb = if status == Status::ApprovalInProgress {
            "verified"
        } else {
            "moved"
        };
        self.log(
            ctx,
            &User::system(),
            verb,
            None,
            None,
            Some(format!("{name} in {stage:?}")),
        );
        if self
            .files
            .iter()
            .filter(|f| stage != StageRole::Approved || f.released())
            .all(|f| f.arrived_in == Some(stage))
        {
            let to = match status {
                Status::ApprovalInProgress => Status::Approved,
                Status::RejectionInProgress => Status::Rejected,
                Status::BlockingInProgress => Status::BlockedByScan,
                Status::Draft
                | Status::Submitted
                | Status::InReview
                | Status::Approved
                | Status::Rejected
                | Status::BlockedByScan
                | Status::Cancelled
                | Status::Failed
                | Status::Revoked => {
                    return Err(DomainError::Invalid(format!(
                        "no movement of a {status} request ends with every file in {stage:?}"
                    )));
                }
            };
            // Why it was blocked, and what a partial release withheld, stay on the record.
            let partial = self.files.iter().any(FileRecord::withheld);
            let message = self
                .status_message
                .clone()
                .filter(|_| to == Status::BlockedByScan || (to == Status::Approved && partial));
            self.transition(to, &User::system(), "data moved", message, ctx)?;
        }
        Ok(Applied::Changed)
    }
}
