//! One client for the Azure REST calls no SDK crate makes for us: Event Grid's publish, the
//! Queue service's Put Message and Resource Manager's `startMalwareScan`.
//!
//! It is `azure_core`'s own pipeline, as the Blob and Cosmos clients use: an Entra ID bearer
//! token for the service's scope added on every try (refreshed before it expires, never
//! sent over plain HTTP), exponential back-off on throttling (honouring `Retry-After`),
//! server errors and network failures, a client request id and the SDK's user agent on
//! every call. What this module adds is the one decision the callers need: whether a
//! failure is worth retrying later ([`PortError`]), told from the status, never from text.

use crate::adapters::azure::errors::status_error;
use crate::ports::PortError;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Method, Pipeline, PipelineSendOptions,
    Request, RetryOptions, Url,
};
use std::sync::Arc;
use std::time::Duration;

/// How often and how patiently a call is retried before its error is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first one included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each (plus up to 255 ms of
    /// jitter, the pipeline's own), up to ten seconds.
    pub first_delay: Duration,
}

impl Default for Retry {
    /// Five attempts over about six seconds: long enough to ride out a throttled second,
    /// short enough that a handler invocation is not held for minutes (the outbox and the
    /// host's own retries take over after that).
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(200),
        }
    }
}

/// The status and body of the last answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A pipeline authorised for one Entra ID scope.
#[derive(Clone, Debug)]
pub struct RestClient {
    pipeline: Pipeline,
    retry: Retry,
}

impl RestClient {
    /// `scope`: the token audience, e.g. `https://eventgrid.azure.net/.default`.
    pub fn new(credential: Arc<dyn TokenCredential>, scope: &str, retry: Retry) -> Self {
        let options = ClientOptions {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::try_from(retry.first_delay)
                    .unwrap_or(azure_core::time::Duration::milliseconds(200)),
                max_retries: retry.attempts.saturating_sub(1),
                max_total_elapsed: azure_core::time::Duration::seconds(60),
                max_delay: azure_core::time::Duration::seconds(10),
            }),
            ..ClientOptions::default()
        };
        // Per try, as the SDK clients do: a retry after a long back-off gets a fresh token.
        let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(
            credential,
            [scope.to_string()],
        ));
        RestClient {
            pipeline: Pipeline::new(
                Some(env!("CARGO_PKG_NAME")),
                Some(env!("CARGO_PKG_VERSION")),
                options,
                Vec::new(),
                vec![auth],
                None,
            ),
            retry,
        }
    }

    /// Sends one request through the pipeline (retrying as [`Retry`] says) and answers the
    /// last response, whatever its status; `Err` only when no answer came at all (network,
    /// token) or the request could not be made. `what` names the call in errors.
    pub async fn send(
        &self,
        what: &str,
        method: Method,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, PortError> {
        let url = Url::parse(url)
            .map_err(|e| PortError::Permanent(format!("{what}: {url:?} is not a URL: {e}")))?;
        if url.scheme() != "https" {
            // The bearer policy refuses to send a token in clear; say so plainly.
            return Err(PortError::Permanent(format!(
                "{what}: {url} is not an https URL; tokens are only sent over TLS"
            )));
        }
        let mut request = Request::new(url, method);
        for (name, value) in headers {
            request.insert_header(*name, value.to_string());
        }
        let length = body.as_ref().map_or(0, Vec::len);
        request.insert_header("content-length", length.to_string());
        if let Some(body) = body {
            request.set_body(body);
        }
        let options = PipelineSendOptions {
            // Every status comes back to us: the caller decides what it means.
            skip_checks: true,
            ..PipelineSendOptions::default()
        };
        let response = self
            .pipeline
            .send(&Context::new(), &mut request, Some(options))
            .await
            .map_err(|e| self.no_answer(what, e))?;
        let status = u16::from(response.status());
        let body = response.into_body().into_string().unwrap_or_default();
        Ok(Answer { status, body })
    }

    /// Sends and turns any answer but a success into a [`PortError`] by its status.
    pub async fn send_expecting_success(
        &self,
        what: &str,
        method: Method,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, PortError> {
        let answer = self.send(what, method, url, headers, body).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(self.refused(what, &answer))
        }
    }

    /// The error for an answer that was not a success: retryable statuses say how many
    /// attempts were made (the pipeline has made them all by now).
    pub fn refused(&self, what: &str, answer: &Answer) -> PortError {
        let text: String = answer.body.chars().take(300).collect();
        match status_error(answer.status, format!("{what}: {}: {text}", answer.status)) {
            // The statuses a retry can help with are the ones the pipeline retried.
            PortError::Transient(_) => PortError::Transient(format!(
                "{what}: still {} after {} attempts: {text}",
                answer.status, self.retry.attempts
            )),
            refused => refused,
        }
    }

    /// No answer at all: the network (after every retry), or no token for our identity.
    fn no_answer(&self, what: &str, e: azure_core::Error) -> PortError {
        use azure_core::error::ErrorKind;
        match e.kind() {
            ErrorKind::Io | ErrorKind::Connection => PortError::Transient(format!(
                "{what}: network error after {} attempts: {e}",
                self.retry.attempts
            )),
            ErrorKind::Credential => {
                PortError::Transient(format!("{what}: no token for our identity: {e}"))
            }
            _ => PortError::Transient(format!("{what}: {e}")),
        }
    }
}
