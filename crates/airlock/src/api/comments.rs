//! The conversation: comments on a request or one of its files.

use super::requests::{RequestPath, idempotency_key, load, modify_as_user};
use super::types::CommentRequest;
use super::{ApiError, InWorkspace, JsonBody};
use crate::app::Deps;
use crate::domain::access::{self, UserAction};
use crate::domain::request::{Applied, NewComment};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// A comment on the request or one of its files (201 with the comment). With an
/// `Idempotency-Key` it can be sent again safely: a repeat is answered with the comment the
/// key made, and the key with another comment is 409.
pub async fn comment(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CommentRequest>,
) -> Result<(StatusCode, Json<crate::domain::request::Comment>), ApiError> {
    let key = idempotency_key(&headers)?;
    load(&deps, &ws, &caller, &id).await?;
    let mut made = None;
    modify_as_user(&deps, &ws, &id, |r, ctx| {
        access::may(&caller, UserAction::Comment, r).map_err(ApiError::forbidden)?;
        let new = NewComment {
            file: body.file.clone(),
            text: body.text.clone(),
            visibility: body.visibility,
        };
        let reviewer = caller.reviews(r);
        let (comment, changed) = match &key {
            Some(key) => {
                let id = key.comment_id(&r.id, &caller.user.id);
                r.comment_once(id, &caller.user, reviewer, new, ctx)?
            }
            None => (r.comment(&caller.user, reviewer, new, ctx)?, true),
        };
        made = Some(comment);
        Ok(if changed {
            Applied::Changed
        } else {
            Applied::Unchanged("a comment sent again under its Idempotency-Key".into())
        })
    })
    .await?;
    let comment = made.ok_or_else(|| ApiError::internal("the comment was not made"))?;
    Ok((StatusCode::CREATED, Json(comment)))
}
