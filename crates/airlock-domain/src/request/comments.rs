//! The conversation on a request: reviewers and requesters comment on the request or on one of
//! its files, in markdown, visible to everyone who may read the request or to reviewers only.
//! Comments stay across revisions (a question, the researcher's answer and the resubmission are
//! one thread) and each one is a notification to the people who should see it.

use super::outbox::comment_event;
use super::{AirlockRequest, Ctx, DomainError, User};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 8000;
/// Most comments on one request (the record stays well inside a database item's size).
pub const MAX_COMMENTS: usize = 200;

/// Who sees a comment.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone who may read the request.
    #[default]
    Everyone,
    /// Airlock managers, owners and TRE admins only (never the researcher).
    Reviewers,
}

/// What a person writes: the text, the file it is about (none for the request), and who may
/// read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewComment {
    pub file: Option<String>,
    pub text: String,
    pub visibility: Visibility,
}

impl NewComment {
    /// A comment on the request as a whole, for everyone.
    pub fn on_request(text: impl Into<String>) -> Self {
        NewComment {
            file: None,
            text: text.into(),
            visibility: Visibility::Everyone,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: String,
    pub by: User,
    pub at: DateTime<Utc>,
    /// The revision it was written on.
    pub revision: u32,
    /// The file it is about; none for the request as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Markdown.
    pub text: String,
    #[serde(default)]
    pub visibility: Visibility,
}

impl AirlockRequest {
    /// Adds a comment. `reviewer` says whether the author reviews here (may write for reviewers
    /// only); the caller's right to comment at all is the access rules'. A comment on a file
    /// names one of this revision's files (or, in a draft sent back for changes, one the
    /// researcher is answering about: any earlier comment's file).
    pub fn comment(
        &mut self,
        by: &User,
        reviewer: bool,
        new: NewComment,
        ctx: &Ctx,
    ) -> Result<Comment, DomainError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.comment_as(id, by, reviewer, new, ctx)
    }

    /// [`AirlockRequest::comment`] under an id the client's `Idempotency-Key` decided
    /// ([`super::IdempotencyKey::comment_id`]): sent again after a lost answer, it is
    /// answered with the comment already made (`false` for "made": nothing changes), and the
    /// id with other content is refused.
    pub fn comment_once(
        &mut self,
        id: String,
        by: &User,
        reviewer: bool,
        new: NewComment,
        ctx: &Ctx,
    ) -> Result<(Comment, bool), DomainError> {
        if let Some(earlier) = self.comments.iter().find(|c| c.id == id) {
            let same = earlier.by.id == by.id
                && earlier.file == new.file
                && earlier.text == new.text.trim()
                && earlier.visibility == new.visibility;
            return if same {
                Ok((earlier.clone(), false))
            } else {
                Err(DomainError::KeyReused(
                    "this Idempotency-Key was already used for a different comment: send a new key for a new comment".into(),
                ))
            };
        }
        let made = self.comment_as(id, by, reviewer, new, ctx)?;
        Ok((made, true))
    }

    fn comment_as(
        &mut self,
        id: String,
        by: &User,
        reviewer: bool,
        NewComment {
            file,
            text,
            visibility,
        }: NewComment,
        ctx: &Ctx,
    ) -> Result<Comment, DomainError> {
        if !super::is_written(&text, MAX_COMMENT_CHARS) {
            return Err(DomainError::Invalid(format!(
                "a comment is 1 to {MAX_COMMENT_CHARS} characters"
            )));
        }
        let text = text.trim().to_string();
        if visibility == Visibility::Reviewers && !reviewer {
            return Err(DomainError::Forbidden(
                "only reviewers write comments for reviewers only".into(),
            ));
        }
        if self.comments.len() >= MAX_COMMENTS {
            return Err(DomainError::Invalid(format!(
                "this request has {MAX_COMMENTS} comments, the most it may have"
            )));
        }
        if let Some(name) = &file {
            let known = self.files.iter().any(|f| &f.name == name)
                || self.carried_context.iter().any(|f| &f.name == name)
                || self.comments.iter().any(|c| c.file.as_ref() == Some(name));
            if !known {
                return Err(DomainError::Invalid(format!(
                    "{name:?} is not a file of this request"
                )));
            }
        }
        let comment = Comment {
            id,
            by: by.clone(),
            at: ctx.now,
            revision: self.revision,
            file,
            text,
            visibility,
        };
        // The trail records that a comment was made; the text of one for reviewers only stays
        // out of it (everyone who reads the request reads its trail).
        let on = comment
            .file
            .as_deref()
            .map(|f| format!(" on {f}"))
            .unwrap_or_default();
        let message = match visibility {
            Visibility::Everyone => format!("{}{on}: {}", comment.id, comment.text),
            Visibility::Reviewers => format!("{} (reviewers only){on}", comment.id),
        };
        self.log(ctx, by, "commented", None, None, Some(message));
        self.outbox
            .push(comment_event(self, &comment, ctx.workspace, ctx.now));
        self.comments.push(comment.clone());
        Ok(comment)
    }

    /// The request as `viewer` may see it: comments for reviewers only are left out for
    /// anyone but reviewers (`viewer_is_reviewer`), and while independent reviews are
    /// incomplete (blinded in review, or never completed) each reviewer sees only their own
    /// review of the current revision.
    pub fn visible_to(&self, viewer: &str, viewer_is_reviewer: bool) -> AirlockRequest {
        let mut r = self.clone();
        if !viewer_is_reviewer {
            r.comments.retain(|c| c.visibility == Visibility::Everyone);
        }
        r.reviews = self.shown_reviews(Some(viewer));
        r
    }
}
