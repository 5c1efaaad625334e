//! The web app: its files are built into the binary from the repository's `web/app/` and
//! served under `/api/app/`, on the same origin as the API (no CORS, one Content-Security-
//! Policy), through the same `Api` function as every API call: no new path reaches the
//! handler, and nothing here is an invocation of another function.
//!
//! Every answer carries a policy that allows only the app's own scripts and styles, images
//! from the app or from what it fetched itself (`blob:`), and calls to the API, the identity
//! provider's token endpoint and the storage accounts the links name. Researcher content never
//! comes from here: the page shows it as text (`api/preview.rs`).

use super::ApiError;
use super::types::{WebConfig, WebSignIn};
use crate::app::Deps;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `(name, content type, bytes)` of every file of the app.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../../web/app/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/app/app.js"),
    ),
    (
        "auth.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/app/auth.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../web/app/app.css"),
    ),
];

/// The page's Content-Security-Policy: nothing inline, nothing from elsewhere but the calls
/// it must make.
pub fn content_security_policy(connect_origins: &[String]) -> String {
    let mut connect = vec!["'self'".to_string()];
    connect.extend(connect_origins.iter().cloned());
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src {}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        connect.join(" ")
    )
}

/// `GET /api/app`: to the app's page.
pub async fn start() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/api/app/index.html")],
    )
        .into_response()
}

/// `GET /api/app/{asset}`: one of the app's files, or `config.json` (how it signs in).
pub async fn asset(
    State(deps): State<Arc<Deps>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (content_type, body): (&str, Vec<u8>) = if name == "config.json" {
        let config =
            WebConfig {
                sign_in: deps.settings.web.sign_in.as_ref().map(
                    |(authority, client_id, api_scope)| WebSignIn {
                        authority: authority.clone(),
                        client_id: client_id.clone(),
                        api_scope: api_scope.clone(),
                    },
                ),
            };
        (
            "application/json",
            serde_json::to_vec(&config).map_err(|e| ApiError::internal(e.to_string()))?,
        )
    } else {
        let (_, content_type, bytes) = ASSETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| ApiError::not_found("no such file in the web app"))?;
        (content_type, bytes.to_vec())
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let csp = content_security_policy(&deps.settings.web.connect_origins);
    for (name, value) in [
        (header::CONTENT_TYPE, content_type.to_string()),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (header::REFERRER_POLICY, "no-referrer".into()),
        (header::X_FRAME_OPTIONS, "DENY".into()),
        (header::CACHE_CONTROL, "no-cache".into()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}
