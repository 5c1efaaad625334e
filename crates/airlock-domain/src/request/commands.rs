//! What researchers and managers do to a request as a whole: submit (with its context),
//! cancel, revoke; and the system's `fail`. Reviews are in `review.rs`, what happens to the
//! files after submit in `sealing.rs`.

use super::*;

impl AirlockRequest {
    /// Submits the draft with the files found in its container.
    pub fn submit(
        &mut self,
        by: &User,
        files: Vec<DraftFile>,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        self.submit_with_context(by, files, &SubmitContext::default(), ctx)
    }

    /// Submits with what the researcher says about the request and its files; refused, naming
    /// what is missing, when the workspace requires context that is not given.
    pub fn submit_with_context(
        &mut self,
        by: &User,
        files: Vec<DraftFile>,
        context: &SubmitContext,
        ctx: &Ctx,
    ) -> Result<(), DomainError> {
        if self.status != Status::Draft {
            return Err(DomainError::IllegalTransition {
                action: "submit",
                status: self.status,
            });
        }
        let listed: Vec<(String, u64)> = files.iter().map(|f| (f.name.clone(), f.size)).collect();
        check_files(&listed, &ctx.workspace.policy).map_err(DomainError::Invalid)?;
        let previous_purpose = self.purpose.clone();
        let previous_files = std::mem::take(&mut self.files);
        let previous: Vec<FileContext> = previous_files
            .iter()
            .map(FileRecord::context)
            .chain(self.carried_context.iter().cloned())
            .collect();
        self.files = files
            .into_iter()
            .map(|f| FileRecord {
                name: f.name,
                size: f.size,
                submitted_etag: f.etag,
                sha256: None,
                etag: None,
                sealed_at: None,
                scan: None,
                arrived_in: None,
                findings: Vec::new(),
                justification: None,
                description: None,
                disclosure_controls: None,
                supporting: false,
                gates_read: None,
                table_labels: None,
                evidence: None,
                acro: None,
                decision: None,
            })
            .collect();
        if let Err(e) = self.apply_context(context, &previous, &ctx.workspace.policy) {
            self.files = previous_files;
            self.purpose = previous_purpose;
            return Err(e);
        }
        self.carried_context.clear();
        self.review_quorum = ctx.workspace.policy.approvals_required.max(1);
        self.add_contributor(&by.id);
        let count = self.files.len();
        self.transition(
            Status::Submitted,
            by,
            "submit",
            Some(format!("{count} file(s) submitted")),
            ctx,
        )
    }

    pub fn cancel(&mut self, by: &User, ctx: &Ctx) -> Result<(), DomainError> {
        self.transition(Status::Cancelled, by, "cancel", None, ctx)
    }

    /// Approvals given in the current revision, one per reviewer.
    /// Distinct independent approvals of the current revision: a reviewer who has since become
    /// a contributor no longer counts.
    pub fn approvals_this_revision(&self) -> usize {
        let mut ids: Vec<&str> = self
            .reviews
            .iter()
            .filter(|r| r.revision == self.revision && r.decision == Decision::Approved)
            .filter(|r| !self.is_contributor(&r.reviewer.id))
            .map(|r| r.reviewer.id.as_str())
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }

    pub fn has_reviewed_this_revision(&self, user_id: &str) -> bool {
        self.reviews
            .iter()
            .any(|r| r.revision == self.revision && r.reviewer.id == user_id)
    }

    pub fn revoke(&mut self, by: &User, reason: String, ctx: &Ctx) -> Result<(), DomainError> {
        if reason.chars().count() > super::MAX_JUSTIFICATION_CHARS {
            return Err(DomainError::Invalid(format!(
                "a reason to revoke is at most {} characters",
                super::MAX_JUSTIFICATION_CHARS
            )));
        }
        let reason = reason.trim().to_string();
        if reason.is_empty() {
            return Err(DomainError::Invalid(
                "a reason is required to revoke".into(),
            ));
        }
        self.transition(Status::Revoked, by, "revoke", Some(reason), ctx)
    }

    /// Fails the request for a reason retrying cannot fix. A request already terminal is
    /// left alone.
    pub fn fail(&mut self, message: String, ctx: &Ctx) -> Applied {
        if self.status.is_terminal() {
            return Applied::Unchanged(format!("already {}", self.status));
        }
        match self.transition(Status::Failed, &User::system(), "fail", Some(message), ctx) {
            Ok(()) => Applied::Changed,
            Err(e) => Applied::Unchanged(e.to_string()),
        }
    }

    /// Fails the request for what was found while acting on it as it was (`seen`: its status
    /// and revision then), only if it is still there. Work that read the request earlier (a
    /// late or duplicated delivery, a timer's listing) can find it moved on: sent back and
    /// resubmitted, the new revision's files are not the ones that work looked at (a draft
    /// file rewritten for revision 2 is "changed" to a copy of revision 1's), and failing it
    /// would fail a revision nobody found anything wrong with.
    pub fn fail_as_seen(&mut self, seen: (Status, u32), message: String, ctx: &Ctx) -> Applied {
        if (self.status, self.revision) != seen {
            return Applied::Unchanged(format!(
                "not failed: {message:?} was found at {} (revision {}); the request is now {} (revision {})",
                seen.0, seen.1, self.status, self.revision
            ));
        }
        self.fail(message, ctx)
    }

    /// A pre-flight check of the draft ran (`summary` says what it found): on the record, and
    /// the time kept so that checks can be spaced out ([`PREFLIGHT_INTERVAL`]).
    pub fn record_preflight(
        &mut self,
        ctx: &Ctx,
        by: &User,
        summary: String,
    ) -> Result<(), DomainError> {
        if self.status != Status::Draft {
            return Err(DomainError::Invalid(format!(
                "a pre-flight check is for a draft; this request is {}",
                self.status
            )));
        }
        self.preflight_at = Some(ctx.now);
        self.audit(ctx, by, PREFLIGHT, summary);
        Ok(())
    }

    /// How long until another pre-flight check may run (`None`: now).
    pub fn preflight_wait(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        let next = self.preflight_at? + PREFLIGHT_INTERVAL;
        (next > now).then(|| next - now)
    }
}

/// The history action of a pre-flight check.
pub const PREFLIGHT: &str = "pre-flight check";
/// The least time between two pre-flight checks of one request: each reads every file.
pub const PREFLIGHT_INTERVAL: chrono::Duration = chrono::Duration::seconds(30);
