//! A minimal OpenID provider for the web app on the local stack, answering where Entra ID
//! does (`/oauth2/v2.0/authorize`, `/oauth2/v2.0/token`) and as it does for a single-page
//! application: the authorization-code flow with PKCE (S256 only), one-use codes that expire,
//! refresh tokens that get a token for another workspace's scope without signing in again,
//! and CORS on the token endpoint. Instead of a password, a person picks who they are and
//! their roles. The web app runs the same code against this and against Entra ID; nothing of
//! this links into the `handler`.

use airlock_testkit::{TokenIssuer, TokenSpec};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The web app's client id on the local stack.
pub const LOCAL_CLIENT_ID: &str = "airlock-web-local";

/// How long a code may wait to be exchanged (Entra ID: 10 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// Who signed in, with what roles.
#[derive(Clone, Debug)]
struct Person {
    user: String,
    roles: Vec<String>,
}

struct Code {
    person: Person,
    challenge: String,
    redirect_uri: String,
    client_id: String,
    issued: Instant,
}

/// The provider's state: codes waiting to be exchanged, refresh tokens handed out.
pub struct SignIn {
    issuer: TokenIssuer,
    codes: Mutex<HashMap<String, Code>>,
    refresh: Mutex<HashMap<String, Person>>,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn {
            issuer: TokenIssuer::dev(),
            codes: Mutex::default(),
            refresh: Mutex::default(),
        }
    }
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    code_challenge: String,
    code_challenge_method: String,
}

/// Text for an HTML attribute or element.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The web app's page on the local stack's front door is the only place a code goes.
fn allowed_redirect(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| uri.strip_prefix("https://127.0.0.1:"))
    else {
        return false;
    };
    let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
    port.parse::<u16>().is_ok() && path.starts_with("api/app/") && !path.contains("..")
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    allow_any_origin(&mut response);
    response
}

/// A single-page application calls the token endpoint from its own origin.
fn allow_any_origin(response: &mut Response) {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

impl AuthorizeQuery {
    fn check(&self) -> Result<(), &'static str> {
        if self.response_type != "code" {
            return Err("response_type must be code");
        }
        if self.code_challenge_method != "S256" || self.code_challenge.len() < 43 {
            return Err("PKCE with S256 is required (code_challenge, code_challenge_method=S256)");
        }
        if !allowed_redirect(&self.redirect_uri) {
            return Err("redirect_uri is not registered for this client");
        }
        Ok(())
    }
}

/// `GET /oauth2/v2.0/authorize`: who are you? (a form, instead of a password).
async fn authorize_page(Query(q): Query<AuthorizeQuery>) -> Response {
    if let Err(why) = q.check() {
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            html_escape(value)
        )
    };
    let people = airlock_testkit::demo::PEOPLE
        .iter()
        .map(|(_, user, _)| format!("<option value=\"{user}\"></option>"))
        .collect::<String>();
    let role = |name: &str| {
        format!(
            "<label><input type=\"checkbox\" name=\"roles\" value=\"{name}\"> {name}</label><br>"
        )
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to the local airlock</title></head>\
         <body><main><h1>Sign in to the local airlock</h1>\
         <p>The local stack's stand-in for Entra ID: pick who you are and your roles.</p>\
         <form method=\"post\" action=\"/oauth2/v2.0/authorize\">\
         <label for=\"user\">User id</label> <input id=\"user\" name=\"user\" list=\"people\" required autocomplete=\"username\"><datalist id=\"people\">{people}</datalist>\
         <fieldset><legend>Roles</legend>{}{}{}{}</fieldset>\
         {}{}{}{}{}{}\
         <button type=\"submit\">Sign in</button></form></main></body></html>",
        role("WorkspaceResearcher"),
        role("AirlockManager"),
        role("WorkspaceOwner"),
        role("TREAdmin"),
        hidden("client_id", &q.client_id),
        hidden("redirect_uri", &q.redirect_uri),
        hidden("scope", &q.scope),
        hidden("state", &q.state),
        hidden("code_challenge", &q.code_challenge),
        hidden("code_challenge_method", &q.code_challenge_method),
    );
    let mut response = Html(page).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self' http://127.0.0.1:* https://127.0.0.1:*",
        ),
    );
    response
}

/// `POST /oauth2/v2.0/authorize`: the form, sent. Redirects back with a one-use code.
async fn authorize(
    State(sign_in): State<Arc<SignIn>>,
    axum::extract::RawForm(raw): axum::extract::RawForm,
) -> Response {
    // `roles` repeats: read the form as pairs.
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_bytes(&raw) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let one = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let q = AuthorizeQuery {
        client_id: one("client_id"),
        redirect_uri: one("redirect_uri"),
        response_type: "code".into(),
        scope: one("scope"),
        state: one("state"),
        code_challenge: one("code_challenge"),
        code_challenge_method: one("code_challenge_method"),
    };
    if let Err(why) = q.check() {
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let user = one("user").trim().to_string();
    if user.is_empty() || user.len() > 64 {
        return (StatusCode::BAD_REQUEST, "a user id is required").into_response();
    }
    let roles = pairs
        .iter()
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v.clone())
        .collect();
    let code = uuid::Uuid::new_v4().simple().to_string();
    sign_in.codes.lock().unwrap().insert(
        code.clone(),
        Code {
            person: Person { user, roles },
            challenge: q.code_challenge,
            redirect_uri: q.redirect_uri.clone(),
            client_id: q.client_id,
            issued: Instant::now(),
        },
    );
    let sep = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{sep}code={code}&state={}",
        q.redirect_uri,
        percent_encoding::utf8_percent_encode(&q.state, percent_encoding::NON_ALPHANUMERIC)
    );
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    scope: String,
}

/// The resource a scope names: `api://airlock-ws-alpha/.default` → `api://airlock-ws-alpha`.
fn audience_of(scope: &str) -> Option<String> {
    let resource = scope
        .split_whitespace()
        .find(|s| !matches!(*s, "openid" | "profile" | "offline_access" | "email"))?;
    Some(match resource.rsplit_once('/') {
        Some((aud, _)) if aud.contains("://") && aud.len() > "api://".len() => aud.to_string(),
        _ => resource.to_string(),
    })
}

/// `POST /oauth2/v2.0/token`: a code (with its PKCE verifier) or a refresh token for a token.
async fn token(State(sign_in): State<Arc<SignIn>>, Form(form): Form<TokenForm>) -> Response {
    let person = match form.grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = sign_in.codes.lock().unwrap().remove(&form.code) else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code is unknown or was used already",
                );
            };
            let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(form.code_verifier.as_bytes()));
            if code.issued.elapsed() > CODE_LIFETIME
                || verified != code.challenge
                || form.redirect_uri != code.redirect_uri
                || form.client_id != code.client_id
            {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code expired, or the verifier, redirect_uri or client_id does not match",
                );
            }
            code.person
        }
        "refresh_token" => match sign_in.refresh.lock().unwrap().get(&form.refresh_token) {
            Some(p) => p.clone(),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is unknown",
                );
            }
        },
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            );
        }
    };
    let Some(audience) = audience_of(&form.scope) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "a resource scope is required (e.g. api://airlock/.default)",
        );
    };
    let roles: Vec<&str> = person.roles.iter().map(String::as_str).collect();
    let spec = TokenSpec::new(&person.user, &roles, &audience);
    let access = sign_in.issuer.mint(&spec);
    let refresh = uuid::Uuid::new_v4().simple().to_string();
    sign_in
        .refresh
        .lock()
        .unwrap()
        .insert(refresh.clone(), person);
    let mut response = axum::Json(json!({
        "token_type": "Bearer",
        "scope": form.scope,
        "expires_in": (spec.valid_until - chrono::Utc::now()).num_seconds(),
        "access_token": access,
        "refresh_token": refresh,
    }))
    .into_response();
    allow_any_origin(&mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A preflight for the token endpoint (browsers send one when the page adds headers).
async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    allow_any_origin(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    response
}

/// The provider's routes, for the router to serve.
pub fn routes(sign_in: Arc<SignIn>) -> axum::Router {
    axum::Router::new()
        .route(
            "/oauth2/v2.0/authorize",
            get(authorize_page).post(authorize),
        )
        .route(
            "/oauth2/v2.0/token",
            axum::routing::post(token).options(preflight),
        )
        .with_state(sign_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_web_app_on_loopback_gets_codes() {
        for ok in [
            "http://127.0.0.1:8080/api/app/index.html",
            "https://127.0.0.1:1/api/app/",
        ] {
            assert!(allowed_redirect(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/api/app/index.html",
            "http://127.0.0.1.evil.example:80/api/app/",
            "http://127.0.0.1:8080/api/workspaces",
            "http://127.0.0.1:8080/api/app/../workspaces",
            "http://127.0.0.1:x/api/app/",
            "javascript:alert(1)",
        ] {
            assert!(!allowed_redirect(bad), "{bad}");
        }
    }

    /// The flow as a page runs it, and the ways it must fail.
    #[tokio::test]
    async fn codes_need_their_verifier_once_and_refresh_tokens_reach_other_workspaces() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = routes(Arc::new(SignIn::default()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let verifier = "v".repeat(64);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:8080/api/app/index.html";
        // Not for another site, and not without PKCE.
        for (uri, method) in [
            ("https://evil.example/api/app/", "S256"),
            (redirect, "plain"),
        ] {
            let r = http
                .get(format!("{base}/oauth2/v2.0/authorize"))
                .query(&[
                    ("client_id", "c"),
                    ("redirect_uri", uri),
                    ("response_type", "code"),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", method),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{uri} {method}");
        }
        // The form the sign-in page posts, as `extra` (who, roles, state) says.
        let sign_in = |extra: &str| {
            let request = http
                .post(format!("{base}/oauth2/v2.0/authorize"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "{extra}&client_id=c&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256",
                    percent_encoding::utf8_percent_encode(redirect, percent_encoding::NON_ALPHANUMERIC)
                ));
            async move { request.send().await.unwrap() }
        };
        let location_of =
            |answer: &reqwest::Response| answer.headers()["location"].to_str().unwrap().to_string();
        let code_in = |location: &str| {
            let after = location.split("code=").nth(1).unwrap();
            after.split('&').next().unwrap().to_string()
        };
        let exchange = |code: &str, verifier: &str| {
            http.post(format!("{base}/oauth2/v2.0/token")).form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "c"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("scope", "openid offline_access api://airlock/.default"),
            ])
        };
        let signed_in =
            sign_in("user=mona&roles=AirlockManager&roles=WorkspaceOwner&state=s%201").await;
        assert_eq!(signed_in.status(), 303);
        let location = location_of(&signed_in);
        assert!(
            location.starts_with(redirect) && location.ends_with("&state=s%201"),
            "{location}"
        );
        let code = code_in(&location);
        // A wrong verifier spends the code: it cannot be tried again.
        let wrong = exchange(&code, &"w".repeat(64)).send().await.unwrap();
        assert_eq!(wrong.status(), 400);
        let again = exchange(&code, &verifier).send().await.unwrap();
        assert_eq!(again.status(), 400, "a code is used once");
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        // A fresh sign-in, exchanged properly; then another workspace's token by refresh.
        let signed_in = sign_in("user=mona&roles=AirlockManager&state=s").await;
        let code = code_in(&location_of(&signed_in));
        let answer: serde_json::Value = exchange(&code, &verifier)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audience = |token: &str| crate::identity::claim(token, "aud");
        assert_eq!(
            audience(answer["access_token"].as_str().unwrap()).as_deref(),
            Some("api://airlock")
        );
        let refreshed: serde_json::Value = http
            .post(format!("{base}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "c"),
                ("refresh_token", answer["refresh_token"].as_str().unwrap()),
                ("scope", "api://airlock-ws-alpha/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            audience(refreshed["access_token"].as_str().unwrap()).as_deref(),
            Some("api://airlock-ws-alpha")
        );
        let forged = http
            .post(format!("{base}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "made-up"),
                ("scope", "api://airlock-ws-alpha/.default"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 400);
    }

    #[test]
    fn a_scope_names_its_resource() {
        assert_eq!(
            audience_of("openid offline_access api://airlock-ws-alpha/.default").as_deref(),
            Some("api://airlock-ws-alpha")
        );
        assert_eq!(
            audience_of("api://airlock/user_impersonation").as_deref(),
            Some("api://airlock")
        );
        assert_eq!(audience_of("openid profile"), None);
    }
}
