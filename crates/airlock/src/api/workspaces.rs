//! The workspaces a person can choose between: the airlock-enabled ones, each with the token
//! audience its calls need (the web app asks the identity provider for one token per
//! workspace). A token for the TRE-wide API, or for any of the workspaces, may list them; a
//! token minted for some other application in the tenant may not.

use super::types::{WorkspaceList, WorkspaceSummary};
use super::{ApiError, Authenticated};
use crate::app::Deps;
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

pub async fn list(
    State(deps): State<Arc<Deps>>,
    Authenticated(identity): Authenticated,
) -> Result<Json<WorkspaceList>, ApiError> {
    let mut all = deps.workspaces.list().await?;
    all.retain(|w| w.airlock_enabled);
    let ours = |aud: &String| {
        deps.settings.api_audience.as_ref() == Some(aud)
            || all.iter().any(|w| &w.token_audience == aud)
    };
    if !identity.audiences.iter().any(ours) {
        return Err(ApiError::unauthorized(
            "the token is not for the airlock's API or one of its workspaces",
        ));
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(WorkspaceList {
        workspaces: all
            .into_iter()
            .map(|w| WorkspaceSummary {
                scope: format!("{}/.default", w.token_audience),
                id: w.id,
                display_name: w.display_name,
                token_audience: w.token_audience,
            })
            .collect(),
    }))
}
