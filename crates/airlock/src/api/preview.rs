//! A file of a request as a page shows it, through the API: never a storage link in the
//! browser. Who may preview is exactly who may read the files (`access::link_grant`, as for a
//! download link), and each preview is on the request's record once per person and file.
//!
//! The answer is data (`FilePreview`: a table's first rows with the gates' findings and a
//! summary per column, or a text's first characters), which the page shows as text. An image
//! comes back as its bytes only when they are PNG or JPEG, with a policy that runs nothing
//! and `nosniff`: an SVG, or HTML named `.png`, is never served as active content.

use super::requests::{RequestPath, load};
use super::{ApiError, InWorkspace};
use crate::app::Deps;
use crate::app::movement::container;
use crate::app::record::modify;
use crate::domain::access::{self, LinkRefusal};
use crate::domain::preview::{self, FilePreview, MAX_PREVIEW_BYTES, PreviewKind};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

pub struct PreviewQuery {
    /// The file's name in the request.
    file: String,
    /// `true`: the image's bytes instead of the preview document.
    content: bool,
}

impl PreviewQuery {
    /// The query as the API's own 400 (JSON, naming what is wrong), not axum's plain text.
    fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let file = params.get("file").cloned().ok_or_else(|| {
            ApiError::bad_request("missing query parameter `file`: the file's name in the request")
        })?;
        let content = match params.get("content").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "content must be true or false, not {other:?}"
                )));
            }
        };
        Ok(PreviewQuery { file, content })
    }
}

pub async fn preview(
    State(deps): State<Arc<Deps>>,
    InWorkspace { ws, caller }: InWorkspace,
    Path(RequestPath { id }): Path<RequestPath>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = PreviewQuery::parse(&params)?;
    let request = load(&deps, &ws, &caller, &id).await?;
    let grant = access::link_grant(&caller, &request).map_err(|e| match e {
        LinkRefusal::Forbidden(m) => ApiError::forbidden(m),
        LinkRefusal::Unavailable(m) => ApiError::conflict(m),
    })?;
    let file = request
        .files
        .iter()
        .find(|f| f.name == query.file)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{:?} is not a file of this request (a draft's files are listed once it is submitted)",
                query.file
            ))
        })?;
    if grant.stage == crate::domain::StageRole::Approved && !file.released() {
        return Err(ApiError::not_found(format!(
            "{:?} was not released (withheld, or a supporting file)",
            file.name
        )));
    }
    let target = container(&deps, &ws, &request, grant.stage);
    let (properties, mut stream) = deps.blobs.read(&target.blob(&file.name)).await?;
    let mut head: Vec<u8> = Vec::new();
    let mut whole = true;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = MAX_PREVIEW_BYTES - head.len();
        if chunk.len() > room {
            head.extend_from_slice(&chunk[..room]);
            whole = false;
            break;
        }
        head.extend_from_slice(&chunk);
    }
    drop(stream);
    let mut shown: FilePreview = preview::read(&file.name, &head, whole);
    shown.size = properties.size;
    shown.sha256 = file.sha256.clone();
    shown.findings = file.findings.clone();
    // On the record before the content leaves: who saw which file, once per status.
    let name = file.name.clone();
    modify::<ApiError>(&deps, &ws, &id, |r, ctx| {
        Ok(r.record_preview(ctx, &caller.user, &name))
    })
    .await?;
    if !query.content {
        return Ok(Json(shown).into_response());
    }
    let (PreviewKind::Image, Some(content_type)) = (shown.kind, shown.content_type) else {
        return Err(ApiError::bad_request(format!(
            "{:?} is not a PNG or JPEG image: its preview is the document, without content=true",
            file.name
        )));
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
            (header::CONTENT_DISPOSITION, "inline; filename=\"preview\""),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        head,
    )
        .into_response())
}
