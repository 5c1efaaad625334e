//! `airlock login` with Entra ID's device-code flow, against a stand-in for Entra ID on
//! loopback that answers as Entra does (RFC 8628): the code is shown, the CLI polls through
//! `authorization_pending`, caches the token where only its owner can read it, and renews it
//! with the refresh token when it expires. A declined sign-in is one clear line.

use crate::support::*;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Seen {
    forms: Vec<HashMap<String, String>>,
    bearers: Vec<String>,
    polls: usize,
}

type Shared = Arc<Mutex<Seen>>;

async fn device_code(
    State(seen): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    seen.lock().unwrap().forms.push(form);
    axum::Json(json!({
        "device_code": "device-1", "user_code": "ABCD-EFGH",
        "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 600, "interval": 1,
        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."
    }))
}

async fn token(
    State(seen): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let mut seen = seen.lock().unwrap();
    seen.forms.push(form.clone());
    let error = |e: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e, "error_description": format!("AADSTS: {e}")})),
        )
    };
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            if form["client_id"] == "declined-app" {
                return error("authorization_declined");
            }
            seen.polls += 1;
            if seen.polls == 1 {
                return error("authorization_pending");
            }
            // Already expired, so the next command must renew it.
            (
                StatusCode::OK,
                axum::Json(
                    json!({"token_type": "Bearer", "access_token": "at-1", "expires_in": 0, "refresh_token": "rt-1"}),
                ),
            )
        }
        Some("refresh_token") if form["refresh_token"] == "rt-1" => (
            StatusCode::OK,
            axum::Json(
                json!({"token_type": "Bearer", "access_token": "at-2", "expires_in": 3600, "refresh_token": "rt-2"}),
            ),
        ),
        _ => error("invalid_grant"),
    }
}

async fn requests(State(seen): State<Shared>, headers: HeaderMap) -> impl IntoResponse {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    seen.lock().unwrap().bearers.push(bearer);
    axum::Json(json!({"airlockRequests": [], "continuationToken": null}))
}

async fn entra() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/contoso/oauth2/v2.0/devicecode", post(device_code))
        .route("/contoso/oauth2/v2.0/token", post(token))
        .route("/api/workspaces/ws-alpha/requests", get(requests))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_caches_a_private_token_and_renews_it() {
    use std::os::unix::fs::PermissionsExt;
    let (url, seen) = entra().await;
    let root = scratch("login");
    let dana = Person::new(&root, "dana");
    let api = format!("{url}/api");
    let login = dana
        .run(&[
            "login",
            "--tenant",
            "contoso",
            "--client-id",
            "cli-app",
            "--scope",
            "api://ws-alpha/user_impersonation",
            "--authority",
            &url,
            "--workspace",
            "ws-alpha",
            "--api",
            &api,
        ])
        .await
        .ok();
    assert!(
        login.stderr.contains("ABCD-EFGH"),
        "the code is shown: {}",
        login.stderr
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.forms[0]["client_id"], "cli-app");
        assert_eq!(
            seen.forms[0]["scope"],
            "api://ws-alpha/user_impersonation offline_access"
        );
        assert_eq!(seen.polls, 2, "polled through authorization_pending");
    }
    let tokens = dana.config.join("tokens.json");
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner may read the token cache");
    assert!(std::fs::read_to_string(&tokens).unwrap().contains("rt-1"));

    // The cached token has expired: the next command renews it, then uses it.
    let listed = dana.run(&["list"]).await.ok();
    assert!(listed.stdout.contains("no requests"), "{}", listed.stdout);
    assert_eq!(seen.lock().unwrap().bearers, vec!["Bearer at-2"]);
    assert!(std::fs::read_to_string(&tokens).unwrap().contains("at-2"));

    dana.run(&["logout"]).await.ok();
    dana.run(&["list"]).await.refused(1, "not logged in");

    let eve = Person::new(&root, "eve");
    eve.run(&[
        "login",
        "--tenant",
        "contoso",
        "--client-id",
        "declined-app",
        "--scope",
        "api://ws-alpha/user_impersonation",
        "--authority",
        &url,
        "--workspace",
        "ws-alpha",
    ])
    .await
    .refused(1, "declined");
    std::fs::remove_dir_all(&root).ok();
}
