//! The conversation: comments on a request or one of its files.

use super::requests::{RequestPath, load, modify_as_user};
use super::types::CommentRequest;
use super::{ApiError, InWorkspace, JsonBody};
use crate::app::Deps;
use crate::domain::access::{self, UserAction};
use crate::domain::request::Applied;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// A comment on the request or one of its files (201 with the comment).
pub async fn comment(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    JsonBody(body): JsonBody<CommentRequest>,
) -> Result<(StatusCode, Json<crate::domain::request::Comment>), ApiError> {
    load(&deps, &ws, &caller, &id).await?;
    let mut made = None;
    modify_as_user(&deps, &ws, &id, |r, ctx| {
        access::may(&caller, UserAction::Comment, r).map_err(ApiError::forbidden)?;
        made = Some(r.comment(
            &caller.user,
            caller.reviews(r),
            body.file.clone(),
            body.text.clone(),
            body.visibility,
            ctx,
        )?);
        Ok(Applied::Changed)
    })
    .await?;
    let comment = made.ok_or_else(|| ApiError::internal("the comment was not made"))?;
    Ok((StatusCode::CREATED, Json(comment)))
}
