//! The airlock's REST API, typed with the server's own request and answer types
//! (`airlock_api::types`), so the CLI cannot send a field the server does not read.

use crate::auth;
use crate::config::Settings;
use crate::error::{CliError, CliResult};
use airlock_api::types::{
    AuditTrail, ContainerLink, CreateRequest, Error as ApiErrorBody, JustifyRequest,
    RequestEnvelope, RequestList, ReviewRequest, RevokeRequest, WorkspaceLimits,
};
use airlock_api::view::RequestView;
use airlock_domain::Status;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How often a change (create, submit, cancel) is sent before its failure is reported, and
/// the first pause between attempts (doubled each time: 1, 2, 4 s).
const CHANGE_ATTEMPTS: u32 = 4;
const CHANGE_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// What a call is conditional on: the version it changes (`If-Match`), or the key that makes
/// sending it again safe (`Idempotency-Key`).
#[derive(Clone, Copy)]
struct Preconditions<'a> {
    if_match: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

/// A submit was made: the request left the draft status (for review, or on to an outcome).
fn submitted(r: &RequestView) -> bool {
    r.status != Status::Draft
}

/// Answers after which the same call, sent again, may succeed: the airlock or a service it
/// depends on was briefly away or busy.
fn retry_may_help(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

pub struct Api {
    pub http: reqwest::Client,
    pub settings: Settings,
}

/// An HTTP client that trusts the configured CA too (the local stack's), with the same
/// settings for the API and for storage.
pub fn http_client(settings: &Settings) -> CliResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("airlock-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_max_idle_per_host(32);
    if let Some(ca) = &settings.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| {
            CliError::Usage(format!(
                "the CA certificate {} cannot be read: {e} (pass --ca-cert or fix the config)",
                ca.display()
            ))
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            CliError::Usage(format!("{} is not a PEM certificate: {e}", ca.display()))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| CliError::Failed(format!("setting up HTTPS: {e}")))
}

/// A list query: the filters the API takes.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub status: Option<String>,
    pub request_type: Option<String>,
    pub creator: Option<String>,
}

impl Api {
    pub fn new(settings: Settings) -> CliResult<Api> {
        Ok(Api {
            http: http_client(&settings)?,
            settings,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        workspace: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> CliResult<T> {
        self.call_if_match(method, workspace, path, query, None, body)
            .await
    }

    /// A call conditional on a record's version (`If-Match`), for the workspace registry.
    async fn call_if_match<T: DeserializeOwned>(
        &self,
        method: Method,
        workspace: &str,
        path: &str,
        query: &[(&str, String)],
        if_match: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> CliResult<T> {
        let response = self
            .send(method, workspace, path, query, if_match, body)
            .await?;
        Self::decode(response).await
    }

    /// A successful answer's JSON as `T`.
    async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> CliResult<T> {
        response.json().await.map_err(|e| {
            CliError::Failed(format!("the airlock answered something unexpected: {e}"))
        })
    }

    /// Sends a call with the token for `workspace`: the answer when it succeeded, else the
    /// airlock's refusal in our words (a login to renew, too many calls, refused, failed).
    async fn send(
        &self,
        method: Method,
        workspace: &str,
        path: &str,
        query: &[(&str, String)],
        if_match: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> CliResult<reqwest::Response> {
        let response = self
            .dispatch(
                method,
                workspace,
                path,
                query,
                Preconditions {
                    if_match,
                    idempotency_key: None,
                },
                body,
            )
            .await?;
        Self::judge(response).await
    }

    /// Sends a call as it is, whatever the answer; `Unreachable` when no answer came.
    async fn dispatch(
        &self,
        method: Method,
        workspace: &str,
        path: &str,
        query: &[(&str, String)],
        Preconditions {
            if_match,
            idempotency_key,
        }: Preconditions<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> CliResult<reqwest::Response> {
        let token = auth::token_for(&self.http, &self.settings, workspace).await?;
        let url = format!("{}{path}", self.settings.api()?);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(token)
            .query(query);
        if let Some(etag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", format!("\"{key}\""));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(|e| {
            CliError::Unreachable(format!(
                "the airlock API at {} could not be reached: {}",
                self.settings.api().unwrap_or_default(),
                root_cause(&e)
            ))
        })
    }

    /// The answer when it succeeded, else the airlock's refusal in our words.
    async fn judge(response: reqwest::Response) -> CliResult<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = match response.json::<ApiErrorBody>().await {
            Ok(body) => body.error.message,
            Err(_) => status.canonical_reason().unwrap_or("error").to_string(),
        };
        Err(match status {
            StatusCode::UNAUTHORIZED => CliError::Login(format!(
                "the airlock did not accept your login ({message}): run `airlock login`"
            )),
            StatusCode::TOO_MANY_REQUESTS => {
                CliError::Failed(format!("too many calls ({message}): try again in a minute"))
            }
            s if s.is_client_error() => CliError::Refused(message),
            _ => CliError::Failed(format!("the airlock failed ({status}): {message}")),
        })
    }

    /// The workspace registry (TRE admins): `GET`/`POST` `/admin/workspaces{tail}`, or a
    /// `PUT` over the version `if_match` names. Called with the TRE-wide API's token
    /// ([`auth::TRE_API`]).
    pub async fn registry(
        &self,
        method: Method,
        tail: &str,
        if_match: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> CliResult<serde_json::Value> {
        let path = format!("/admin/workspaces{tail}");
        self.call_if_match(method, auth::TRE_API, &path, &[], if_match, body)
            .await
    }

    /// Statistics of one workspace, or (`workspace` `None`) of every one with the TRE-wide
    /// API's token.
    pub async fn stats(
        &self,
        workspace: Option<&str>,
        range: &[(&str, String)],
    ) -> CliResult<serde_json::Value> {
        match workspace {
            Some(ws) => {
                let path = format!("/workspaces/{ws}/stats");
                self.call(Method::GET, ws, &path, range, None::<&()>).await
            }
            None => {
                self.call(
                    Method::GET,
                    auth::TRE_API,
                    "/admin/stats",
                    range,
                    None::<&()>,
                )
                .await
            }
        }
    }

    /// A finished request's governance record in `format`, as the airlock sends it.
    pub async fn record(&self, workspace: &str, id: &str, format: &str) -> CliResult<String> {
        let path = format!("{}/record", Self::request_path(workspace, id));
        let query = [("format", format.to_string())];
        if format == "html" {
            // The page is text, not JSON.
            return self.text(workspace, &path, &query).await;
        }
        let value: serde_json::Value = self
            .call(Method::GET, workspace, &path, &query, None::<&()>)
            .await?;
        serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::Failed(format!("the record does not print: {e}")))
    }

    /// A GET whose answer is text (an HTML page).
    async fn text(
        &self,
        workspace: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> CliResult<String> {
        self.send(Method::GET, workspace, path, query, None, None::<&()>)
            .await?
            .text()
            .await
            .map_err(|e| CliError::Failed(format!("reading the answer: {e}")))
    }

    fn request_path(workspace: &str, id: &str) -> String {
        format!("/workspaces/{workspace}/requests/{id}")
    }

    pub async fn create(
        &self,
        workspace: &str,
        body: &CreateRequest,
    ) -> CliResult<RequestEnvelope> {
        let path = format!("/workspaces/{workspace}/requests");
        // Named by a key of its own, the create is safe to send again: a retry after a lost
        // answer (a dropped connection, a restarting Function App, a 503) is answered with
        // the request the first attempt made, never a second draft.
        let key = uuid::Uuid::new_v4().to_string();
        self.send_again_if_lost(workspace, &path, Some(&key), Some(body), async || None)
            .await
    }

    /// Sends a change, and sends it again while no answer comes back (or one after which a
    /// retry may help), [`CHANGE_ATTEMPTS`] times at most. A change is safe to send again
    /// when it names itself (`key`: the airlock answers a repeat with what the first made),
    /// or when the request shows whether it was made: before each repeat, and on a refusal
    /// after a lost answer (the first attempt got there after all), `made` looks, and what it
    /// finds is the answer. Keyed changes pass a `made` that finds nothing.
    async fn send_again_if_lost<T: DeserializeOwned>(
        &self,
        workspace: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
        made: impl AsyncFn() -> Option<T>,
    ) -> CliResult<T> {
        let mut pause = CHANGE_FIRST_PAUSE;
        let mut lost_before = false;
        for attempt in 1..=CHANGE_ATTEMPTS {
            let last = attempt == CHANGE_ATTEMPTS;
            match self
                .dispatch(
                    Method::POST,
                    workspace,
                    path,
                    &[],
                    Preconditions {
                        if_match: None,
                        idempotency_key: key,
                    },
                    body,
                )
                .await
            {
                Err(CliError::Unreachable(_)) if !last => {}
                Err(e) => return Err(e),
                Ok(r) if !last && retry_may_help(r.status()) => {}
                Ok(r) => {
                    return match Self::judge(r).await {
                        Ok(r) => Self::decode(r).await,
                        Err(refused) if lost_before => made().await.ok_or(refused),
                        Err(e) => Err(e),
                    };
                }
            }
            lost_before = true;
            tokio::time::sleep(pause).await;
            pause *= 2;
            if let Some(now) = made().await {
                return Ok(now);
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Request `id` as it is now, if `made` says a change whose answer was lost is there.
    async fn now_made(
        &self,
        workspace: &str,
        id: &str,
        made: fn(&RequestView) -> bool,
    ) -> Option<RequestEnvelope> {
        match self.get(workspace, id).await {
            Ok(now) if made(&now.airlock_request) => Some(now),
            _ => None,
        }
    }

    pub async fn limits(&self, workspace: &str) -> CliResult<WorkspaceLimits> {
        let path = format!("/workspaces/{workspace}/limits");
        self.call(Method::GET, workspace, &path, &[], None::<&()>)
            .await
    }

    pub async fn get(&self, workspace: &str, id: &str) -> CliResult<RequestEnvelope> {
        self.call(
            Method::GET,
            workspace,
            &Self::request_path(workspace, id),
            &[],
            None::<&()>,
        )
        .await
    }

    pub async fn link(&self, workspace: &str, id: &str) -> CliResult<ContainerLink> {
        let path = format!("{}/link", Self::request_path(workspace, id));
        self.call(Method::GET, workspace, &path, &[], None::<&()>)
            .await
    }

    pub async fn gates(
        &self,
        workspace: &str,
        id: &str,
    ) -> CliResult<airlock_domain::request::GateReport> {
        let path = format!("{}/gates", Self::request_path(workspace, id));
        self.call(Method::GET, workspace, &path, &[], None::<&()>)
            .await
    }

    /// What changed in the current revision (against the previous one and your last vote).
    pub async fn diff(
        &self,
        workspace: &str,
        id: &str,
    ) -> CliResult<airlock_domain::request::RevisionDiff> {
        let path = format!("{}/diff", Self::request_path(workspace, id));
        self.call(Method::GET, workspace, &path, &[], None::<&()>)
            .await
    }

    /// What the workspace's gates find in a draft's files now (nothing changes).
    pub async fn preflight(
        &self,
        workspace: &str,
        id: &str,
    ) -> CliResult<airlock_api::types::PreflightReport> {
        let path = format!("{}/preflight", Self::request_path(workspace, id));
        self.call(Method::POST, workspace, &path, &[], None::<&()>)
            .await
    }

    pub async fn history(&self, workspace: &str, id: &str) -> CliResult<AuditTrail> {
        let path = format!("{}/history", Self::request_path(workspace, id));
        self.call(Method::GET, workspace, &path, &[], None::<&()>)
            .await
    }

    /// Cancels, sent again if its answer is lost (the request's status shows whether it was
    /// made).
    pub async fn cancel(&self, workspace: &str, id: &str) -> CliResult<RequestEnvelope> {
        let path = format!("{}/cancel", Self::request_path(workspace, id));
        let cancelled = |r: &RequestView| r.status == Status::Cancelled;
        self.send_again_if_lost(workspace, &path, None, None::<&()>, async || {
            self.now_made(workspace, id, cancelled).await
        })
        .await
    }

    pub async fn submit(
        &self,
        workspace: &str,
        id: &str,
        body: &airlock_domain::request::SubmitContext,
    ) -> CliResult<RequestEnvelope> {
        let path = format!("{}/submit", Self::request_path(workspace, id));
        self.send_again_if_lost(workspace, &path, None, Some(body), async || {
            self.now_made(workspace, id, submitted).await
        })
        .await
    }

    /// Comments, sent again if its answer is lost: named by a key of its own, a repeat is
    /// answered with the comment the first attempt wrote, never a second one.
    pub async fn comment(
        &self,
        workspace: &str,
        id: &str,
        body: &airlock_api::types::CommentRequest,
    ) -> CliResult<airlock_domain::request::Comment> {
        let path = format!("{}/comments", Self::request_path(workspace, id));
        let key = uuid::Uuid::new_v4().to_string();
        self.send_again_if_lost(workspace, &path, Some(&key), Some(body), async || None)
            .await
    }

    pub async fn review(
        &self,
        workspace: &str,
        id: &str,
        body: &ReviewRequest,
    ) -> CliResult<RequestEnvelope> {
        let path = format!("{}/review", Self::request_path(workspace, id));
        self.call(Method::POST, workspace, &path, &[], Some(body))
            .await
    }

    pub async fn justify(
        &self,
        workspace: &str,
        id: &str,
        body: &JustifyRequest,
    ) -> CliResult<RequestEnvelope> {
        let path = format!("{}/justify", Self::request_path(workspace, id));
        self.call(Method::POST, workspace, &path, &[], Some(body))
            .await
    }

    pub async fn revoke(
        &self,
        workspace: &str,
        id: &str,
        body: &RevokeRequest,
    ) -> CliResult<RequestEnvelope> {
        let path = format!("{}/revoke", Self::request_path(workspace, id));
        self.call(Method::POST, workspace, &path, &[], Some(body))
            .await
    }

    /// Every page of a workspace's requests.
    pub async fn list(&self, workspace: &str, q: &ListQuery) -> CliResult<Vec<RequestEnvelope>> {
        let mut query = vec![("pageSize", "100".to_string())];
        if let Some(s) = &q.status {
            query.push(("status", s.clone()));
        }
        if let Some(t) = &q.request_type {
            query.push(("type", t.clone()));
        }
        if let Some(c) = &q.creator {
            query.push(("creator", c.clone()));
        }
        let path = format!("/workspaces/{workspace}/requests");
        self.pages(workspace, &path, query).await
    }

    /// `GET /requests`: the caller's own requests across the workspaces the token is for,
    /// or (with `awaiting_review`) what this manager can review now.
    pub async fn mine(
        &self,
        workspace: &str,
        q: &ListQuery,
        awaiting_review: bool,
    ) -> CliResult<Vec<RequestEnvelope>> {
        let mut query = vec![("pageSize", "100".to_string())];
        if awaiting_review {
            query.push(("awaitingMyReview", "true".into()));
        }
        if let Some(s) = &q.status {
            query.push(("status", s.clone()));
        }
        if let Some(t) = &q.request_type {
            query.push(("type", t.clone()));
        }
        self.pages(workspace, "/requests", query).await
    }

    async fn pages(
        &self,
        workspace: &str,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> CliResult<Vec<RequestEnvelope>> {
        let mut all = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut q = query.clone();
            if let Some(c) = &continuation {
                q.push(("continuationToken", c.clone()));
            }
            let page: RequestList = self
                .call(Method::GET, workspace, path, &q, None::<&()>)
                .await?;
            all.extend(page.airlock_requests);
            match page.continuation_token {
                Some(c) => continuation = Some(c),
                None => return Ok(all),
            }
        }
    }
}

/// The innermost cause of a transport error: "connection refused" says more than reqwest's
/// "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
