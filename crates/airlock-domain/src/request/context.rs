//! What the researcher tells the reviewer at submit: the request's purpose and, per file, what
//! it is and which disclosure controls were applied. A quarter of rejected outputs lack this
//! context (OpenSAFELY); a workspace can require it, and submit then refuses a request without
//! it, naming the files.

use super::{AirlockRequest, DomainError};
use crate::policy::WorkspacePolicy;
use crate::request_type::RequestType;
use serde::{Deserialize, Serialize};

/// Longest purpose, description or disclosure-controls text, in characters.
pub const MAX_CONTEXT_CHARS: usize = 4000;

/// The context given at submit (all optional unless the workspace requires it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitContext {
    /// What the request is for (a paper, a report, a collaborator's analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileContext>,
}

/// What one file is, and (for outputs) the disclosure controls applied to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileContext {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// e.g. "counts below 10 suppressed, rounded to the nearest 5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_controls: Option<String>,
    /// A supporting file (the code that made the outputs, a log, a checking tool's record):
    /// sealed, scanned, checked and shown to the reviewers, never released.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supporting: bool,
}

fn clean(text: &Option<String>, what: &str) -> Result<Option<String>, DomainError> {
    let Some(t) = text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > MAX_CONTEXT_CHARS {
        return Err(DomainError::Invalid(format!(
            "{what} is longer than {MAX_CONTEXT_CHARS} characters"
        )));
    }
    Ok(Some(t.to_string()))
}

impl AirlockRequest {
    /// Applies `context` to the files just listed for submit. Context not given for a file is
    /// carried over from the previous revision's file of the same name (a resubmission after
    /// changes keeps what was said); then the workspace's requirements are checked.
    pub(super) fn apply_context(
        &mut self,
        context: &SubmitContext,
        previous: &[FileContext],
        policy: &WorkspacePolicy,
    ) -> Result<(), DomainError> {
        if let Some(unknown) = context
            .files
            .iter()
            .find(|c| !self.files.iter().any(|f| f.name == c.name))
        {
            return Err(DomainError::Invalid(format!(
                "context is given for {:?}, which is not in the draft",
                unknown.name
            )));
        }
        if let Some(purpose) = clean(&context.purpose, "the purpose")? {
            self.purpose = Some(purpose);
        }
        for file in &mut self.files {
            let given = context.files.iter().find(|c| c.name == file.name);
            let before = previous.iter().find(|p| p.name == file.name);
            file.description = match given.map(|g| clean(&g.description, "a description")) {
                Some(Err(e)) => return Err(e),
                Some(Ok(Some(d))) => Some(d),
                _ => before.and_then(|b| b.description.clone()),
            };
            file.disclosure_controls = match given
                .map(|g| clean(&g.disclosure_controls, "a file's disclosure controls"))
            {
                Some(Err(e)) => return Err(e),
                Some(Ok(Some(d))) => Some(d),
                _ => before.and_then(|b| b.disclosure_controls.clone()),
            };
            file.supporting = match given {
                Some(g) => g.supporting,
                None => before.is_some_and(|b| b.supporting),
            };
        }
        let mut missing = Vec::new();
        if policy.require_purpose && self.purpose.is_none() {
            missing.push("the request's purpose".to_string());
        }
        let undescribed: Vec<&str> = self
            .files
            .iter()
            .filter(|f| f.description.is_none())
            .map(|f| f.name.as_str())
            .collect();
        if policy.require_file_descriptions && !undescribed.is_empty() {
            missing.push(format!("a description of {}", undescribed.join(", ")));
        }
        let uncontrolled: Vec<&str> = self
            .files
            .iter()
            .filter(|f| f.disclosure_controls.is_none())
            .map(|f| f.name.as_str())
            .collect();
        if policy.require_disclosure_controls
            && self.request_type == RequestType::Export
            && !uncontrolled.is_empty()
        {
            missing.push(format!(
                "the disclosure controls applied to {}",
                uncontrolled.join(", ")
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(format!(
                "this workspace needs, before submit: {}",
                missing.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Ctx, DraftFile, User};
    use crate::workspace::Workspace;

    fn workspace(policy: serde_json::Value) -> Workspace {
        serde_json::from_value(serde_json::json!({
            "id": "ws1", "displayName": "One", "shortId": "ws1", "tokenAudience": "api://ws1",
            "policy": policy,
        }))
        .unwrap()
    }

    fn draft(ws: &Workspace, kind: RequestType) -> AirlockRequest {
        AirlockRequest::create(
            "r1".into(),
            kind,
            "t".into(),
            "j".into(),
            User {
                id: "alice".into(),
                name: "Alice".into(),
                email: None,
            },
            &Ctx {
                now: chrono::Utc::now(),
                workspace: ws,
            },
        )
        .unwrap()
    }

    fn files() -> Vec<DraftFile> {
        ["a.csv", "b.png"]
            .map(|n| DraftFile {
                name: n.into(),
                size: 1,
                etag: None,
            })
            .to_vec()
    }

    fn context(json: serde_json::Value) -> SubmitContext {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn required_context_is_named_when_missing() {
        let ws = workspace(serde_json::json!({"requirePurpose": true,
            "requireFileDescriptions": true, "requireDisclosureControls": true}));
        let ctx = Ctx {
            now: chrono::Utc::now(),
            workspace: &ws,
        };
        let alice = User {
            id: "alice".into(),
            name: "Alice".into(),
            email: None,
        };
        let mut r = draft(&ws, RequestType::Export);
        let partial = context(serde_json::json!({"files": [
            {"name": "a.csv", "description": "counts by region", "disclosureControls": "  "}]}));
        let e = r
            .submit_with_context(&alice, files(), &partial, &ctx)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "this workspace needs, before submit: the request's purpose; a description of b.png; the disclosure controls applied to a.csv, b.png"
        );
        assert_eq!(r.status, crate::Status::Draft, "nothing changed");
        assert!(r.files.is_empty() && r.purpose.is_none());
        let whole = context(serde_json::json!({"purpose": "Paper in BMJ", "files": [
            {"name": "a.csv", "description": "counts by region", "disclosureControls": "suppressed < 10, rounded to 5"},
            {"name": "b.png", "description": "figure 1", "disclosureControls": "built from a.csv"}]}));
        r.submit_with_context(&alice, files(), &whole, &ctx)
            .unwrap();
        assert_eq!(r.purpose.as_deref(), Some("Paper in BMJ"));
        assert_eq!(r.files[0].description.as_deref(), Some("counts by region"));
        assert_eq!(
            r.files[0].disclosure_controls.as_deref(),
            Some("suppressed < 10, rounded to 5")
        );
        // Disclosure controls are for outputs: an import needs descriptions only.
        let mut import = draft(&ws, RequestType::Import);
        let described = context(serde_json::json!({"purpose": "reference data", "files": [
            {"name": "a.csv", "description": "x"}, {"name": "b.png", "description": "y"}]}));
        import
            .submit_with_context(&alice, files(), &described, &ctx)
            .unwrap();
    }

    #[test]
    fn bad_context_is_refused_and_none_is_needed_by_default() {
        let ws = workspace(serde_json::json!({}));
        let ctx = Ctx {
            now: chrono::Utc::now(),
            workspace: &ws,
        };
        let alice = User {
            id: "alice".into(),
            name: "Alice".into(),
            email: None,
        };
        let mut r = draft(&ws, RequestType::Export);
        let stray =
            context(serde_json::json!({"files": [{"name": "../c.csv", "description": "x"}]}));
        let e = r
            .submit_with_context(&alice, files(), &stray, &ctx)
            .unwrap_err();
        assert!(e.to_string().contains("not in the draft"), "{e}");
        let long = context(serde_json::json!({"purpose": "x".repeat(MAX_CONTEXT_CHARS + 1)}));
        assert!(r.submit_with_context(&alice, files(), &long, &ctx).is_err());
        r.submit(&alice, files(), &ctx).unwrap();
    }
}
