//! Tokens: `AIRLOCK_TOKEN` as is; else the cached token for the workspace, refreshed when it
//! is about to expire (Entra ID's refresh token, or a new one from the local stack's issuer);
//! else the caller is asked to log in.
//!
//! `airlock login` is Entra ID's device-code flow (OAuth 2.0 RFC 8628): the person signs in
//! on any browser with the code shown, the CLI polls for the token. The refresh token it gets
//! (`offline_access`) also gets tokens for the other workspaces' scopes without signing in
//! again. `airlock login --local` asks the local stack's token issuer instead.

use crate::config::{CachedToken, EntraConfig, LocalLogin, Settings};
use crate::error::{CliError, CliResult};
use serde::Deserialize;
use std::time::Duration;

/// Entra's token answer (and the local issuer's, which uses other names).
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthError {
    /// Why, in one line: the description's first line, else the error code.
    fn summary(&self) -> &str {
        self.error_description
            .as_deref()
            .unwrap_or(&self.error)
            .lines()
            .next()
            .unwrap_or_default()
    }

    /// The OAuth error in a refusal, or one saying the answer was something else.
    async fn from_answer(answer: reqwest::Response) -> OAuthError {
        let status = answer.status();
        answer.json().await.unwrap_or_else(|e| OAuthError {
            error: format!("an answer that is not an OAuth error ({status}): {e}"),
            error_description: None,
        })
    }
}

/// One call to the token endpoint: a token, or the OAuth error Entra ID answered with.
async fn token_request(
    http: &reqwest::Client,
    entra: &EntraConfig,
    form: &[(&str, &str)],
) -> CliResult<Result<CachedToken, OAuthError>> {
    let answer = http
        .post(endpoint(entra, "token"))
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable("Entra ID", e))?;
    if !answer.status().is_success() {
        return Ok(Err(OAuthError::from_answer(answer).await));
    }
    answer
        .json::<TokenAnswer>()
        .await
        .map(|t| Ok(cached(t)))
        .map_err(|e| CliError::Login(format!("Entra ID's token answer: {e}")))
}

#[derive(Debug, Deserialize)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    #[serde(default = "five")]
    interval: u64,
    #[serde(default)]
    message: Option<String>,
}

fn five() -> u64 {
    5
}

fn endpoint(entra: &EntraConfig, what: &str) -> String {
    format!(
        "{}/{}/oauth2/v2.0/{what}",
        entra.authority.trim_end_matches('/'),
        entra.tenant
    )
}

fn unreachable(what: &str, e: reqwest::Error) -> CliError {
    CliError::Unreachable(format!("{what} could not be reached: {e}"))
}

/// Where the command line keeps the token for the TRE-wide API (the workspace registry),
/// beside the workspaces' own: `airlock login ... --workspace tre` signs in for it with the
/// TRE API's scope; the local stack's issuer mints it for `TREAdmin`s.
pub const TRE_API: &str = "tre";

/// The token for calls about `workspace`.
pub async fn token_for(
    http: &reqwest::Client,
    settings: &Settings,
    workspace: &str,
) -> CliResult<String> {
    if let Some(token) = &settings.token {
        return Ok(token.clone());
    }
    let mut tokens = settings.tokens()?;
    if let Some(cached) = tokens.get(workspace).filter(|t| t.fresh()) {
        return Ok(cached.access_token.clone());
    }
    let renewed = if let Some(local) = &settings.file.local {
        local_token(http, local, workspace).await?
    } else if let (Some(entra), Some(refresh_token)) = (
        &settings.file.entra,
        tokens
            .get(workspace)
            .and_then(|t| t.refresh_token.clone())
            .or_else(|| {
                // A refresh token from any workspace's sign-in serves the others too.
                tokens.values().find_map(|t| t.refresh_token.clone())
            }),
    ) {
        let scope = entra.scope_for(workspace).ok_or_else(|| {
            CliError::Login(format!(
                "no Entra ID scope for workspace {workspace}: add it to \"entra.scopes\" in the config"
            ))
        })?;
        refresh(http, entra, &refresh_token, scope).await?
    } else {
        return Err(CliError::Login(if tokens.contains_key(workspace) {
            format!("your login for {workspace} has expired: run `airlock login` again")
        } else {
            format!(
                "not logged in for workspace {workspace}: run `airlock login` (or set AIRLOCK_TOKEN)"
            )
        }));
    };
    let token = renewed.access_token.clone();
    tokens.insert(workspace.to_string(), renewed);
    settings.save_tokens(&tokens)?;
    Ok(token)
}

/// A token from the local stack's issuer (`GET {router}/token`).
pub async fn local_token(
    http: &reqwest::Client,
    local: &LocalLogin,
    workspace: &str,
) -> CliResult<CachedToken> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Local {
        access_token: String,
        expires_on: chrono::DateTime<chrono::Utc>,
    }
    let answer = http
        .get(format!("{}/token", local.router_url.trim_end_matches('/')))
        .query(&[
            ("user", local.user.as_str()),
            ("roles", &local.roles.join(",")),
            ("workspace", workspace),
        ])
        .send()
        .await
        .map_err(|e| {
            unreachable(
                "the local stack's token issuer (is `infra/local/run` running?)",
                e,
            )
        })?;
    if !answer.status().is_success() {
        return Err(CliError::Login(format!(
            "the local stack's token issuer refused: {}",
            answer.status()
        )));
    }
    let local: Local = answer
        .json()
        .await
        .map_err(|e| CliError::Login(format!("the local token issuer's answer: {e}")))?;
    Ok(CachedToken {
        access_token: local.access_token,
        expires_at: local.expires_on,
        refresh_token: None,
    })
}

fn cached(answer: TokenAnswer) -> CachedToken {
    CachedToken {
        access_token: answer.access_token,
        expires_at: chrono::Utc::now() + chrono::Duration::seconds(answer.expires_in as i64),
        refresh_token: answer.refresh_token,
    }
}

async fn refresh(
    http: &reqwest::Client,
    entra: &EntraConfig,
    refresh_token: &str,
    scope: &str,
) -> CliResult<CachedToken> {
    let scope = format!("{scope} offline_access");
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", entra.client_id.as_str()),
        ("refresh_token", refresh_token),
        ("scope", &scope),
    ];
    token_request(http, entra, &form).await?.map_err(|why| {
        CliError::Login(format!(
            "your login has expired and could not be renewed ({}): run `airlock login` again",
            why.summary()
        ))
    })
}

/// Entra ID's device-code flow for `workspace`: prints where to sign in and with which code,
/// waits for the person to do it.
pub async fn device_code_login(
    http: &reqwest::Client,
    entra: &EntraConfig,
    workspace: &str,
    tell: impl Fn(&str),
) -> CliResult<CachedToken> {
    let scope = entra.scope_for(workspace).ok_or_else(|| {
        CliError::Usage(format!(
            "no Entra ID scope for workspace {workspace}: pass --scope or add it to the config"
        ))
    })?;
    let answer = http
        .post(endpoint(entra, "devicecode"))
        .form(&[
            ("client_id", entra.client_id.as_str()),
            ("scope", &format!("{scope} offline_access")),
        ])
        .send()
        .await
        .map_err(|e| unreachable("Entra ID", e))?;
    if !answer.status().is_success() {
        return Err(CliError::Login(format!(
            "Entra ID refused to start the sign-in: {}",
            OAuthError::from_answer(answer).await.summary()
        )));
    }
    let code: DeviceCode = answer
        .json()
        .await
        .map_err(|e| CliError::Login(format!("Entra ID's device-code answer: {e}")))?;
    tell(&code.message.clone().unwrap_or_else(|| {
        format!(
            "To sign in, open {} and enter the code {}",
            code.verification_uri, code.user_code
        )
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(code.expires_in);
    let mut interval = Duration::from_secs(code.interval.max(1));
    loop {
        if std::time::Instant::now() > deadline {
            return Err(CliError::TimedOut(
                "the sign-in code expired before it was used: run `airlock login` again".into(),
            ));
        }
        tokio::time::sleep(interval).await;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", entra.client_id.as_str()),
            ("device_code", code.device_code.as_str()),
        ];
        let error = match token_request(http, entra, &form).await? {
            Ok(token) => return Ok(token),
            Err(error) => error,
        };
        match error.error.as_str() {
            "authorization_pending" => {}
            // RFC 8628 §3.5: wait 5 seconds longer from now on.
            "slow_down" => interval += Duration::from_secs(5),
            "authorization_declined" => {
                return Err(CliError::Login("the sign-in was declined".into()));
            }
            "expired_token" => {
                return Err(CliError::TimedOut(
                    "the sign-in code expired before it was used: run `airlock login` again".into(),
                ));
            }
            other => {
                return Err(CliError::Login(format!(
                    "the sign-in failed: {}",
                    error.error_description.as_deref().unwrap_or(other)
                )));
            }
        }
    }
}
