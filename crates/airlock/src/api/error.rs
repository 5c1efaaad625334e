//! The API's error shape: `{"error": {"code", "message"}}` with the matching status.

use super::types::ErrorCode;
use crate::domain::DomainError;
use crate::ports::{AuthError, PortError};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, m)
    }
    pub fn precondition_failed(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::PreconditionFailed, m)
    }
    pub fn precondition_required(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::PreconditionRequired, m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, m)
    }
    pub fn too_many(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                ErrorCode::TooManyRequests,
                format!("too many calls from you: try again in {retry_after_secs} s"),
            )
        }
    }
    /// A backing service is briefly unavailable (throttled, restarting): try again shortly,
    /// as `Retry-After` says.
    pub fn unavailable(m: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(UNAVAILABLE_RETRY_SECS),
            ..Self::new(ErrorCode::ServiceUnavailable, m)
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, m)
    }
}

/// Seconds a client is asked to wait after a 503.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(super::types::Error {
            error: super::types::ErrorDetail {
                code: self.code,
                message: self.message,
            },
        });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

/// A short id that joins what a caller was told to the log line that says what happened.
fn correlation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// What went wrong in a backing service is said in our words: the service's own text (which
/// can name internal hosts, accounts and URLs) goes to the log, under a correlation id the
/// answer carries.
impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        let id = correlation_id();
        match e {
            PortError::NotFound(m) => ApiError::not_found(m),
            PortError::Conflict(m) => {
                tracing::info!(correlation_id = %id, error = %m, "conflict");
                ApiError::conflict(format!(
                    "the request changed while this was being done: read it again and retry (correlation id {id})"
                ))
            }
            PortError::Transient(m) => {
                tracing::warn!(correlation_id = %id, error = %m, "a backing service is unavailable");
                ApiError::unavailable(format!(
                    "a service the airlock depends on did not answer; try again shortly (correlation id {id})"
                ))
            }
            PortError::InvalidInput(m) => ApiError::bad_request(m),
            PortError::PreconditionFailed(m) => {
                tracing::info!(correlation_id = %id, error = %m, "precondition failed");
                ApiError::conflict(format!(
                    "a file changed while this was being done: read the request again and retry (correlation id {id})"
                ))
            }
            PortError::Forbidden(m) => {
                tracing::error!(alert = "identity-forbidden", correlation_id = %id, error = %m, "our identity was refused: check its role assignments");
                ApiError::unavailable(format!(
                    "the airlock cannot reach its storage right now; it has been logged (correlation id {id})"
                ))
            }
            PortError::Permanent(m) => {
                tracing::error!(correlation_id = %id, error = %m, "storage error");
                ApiError::internal(format!(
                    "an internal error occurred; it has been logged (correlation id {id})"
                ))
            }
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => ApiError::bad_request(m),
            // What the request's state does not allow now is a conflict with it (RFC 9110
            // 15.5.10), as is a key that already named another change: the body is fine.
            DomainError::IllegalTransition { .. } => ApiError::conflict(e.to_string()),
            DomainError::Forbidden(m) => ApiError::forbidden(m),
            DomainError::Stale(m) | DomainError::AlreadyDone(m) | DomainError::KeyReused(m) => {
                ApiError::conflict(m)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(m) => {
                let id = correlation_id();
                tracing::warn!(correlation_id = %id, error = %m, "the token issuer's keys are unavailable");
                ApiError::unavailable(format!(
                    "tokens cannot be checked right now (the issuer's keys could not be fetched); try again shortly (correlation id {id})"
                ))
            }
            AuthError::Missing | AuthError::Invalid(_) => ApiError::unauthorized(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: a list under load answered 503 with the Cosmos account's address; the SDK's
    /// text named internal hosts and URLs. No answer carries it now, only a correlation id.
    #[test]
    fn service_errors_are_said_in_our_words() {
        let internal = "querying requests: connection refused (https://cosmos-airlock-tre1.documents.azure.com:443/dbs/airlock, 10.1.2.3:443)";
        for e in [
            PortError::Transient(internal.into()),
            PortError::Conflict(internal.into()),
            PortError::PreconditionFailed(internal.into()),
            PortError::Forbidden(internal.into()),
            PortError::Permanent(internal.into()),
        ] {
            let answer = ApiError::from(e.clone());
            assert!(
                answer.status.is_server_error() || answer.status == StatusCode::CONFLICT,
                "{e:?}"
            );
            for leak in [
                "http",
                "documents.azure.com",
                "10.1.2.3",
                "connection refused",
                "dbs/",
            ] {
                assert!(!answer.message.contains(leak), "{e:?}: {}", answer.message);
            }
            assert!(
                answer.message.contains("correlation id "),
                "{}",
                answer.message
            );
        }
        let keys = ApiError::from(AuthError::KeysUnavailable(internal.into()));
        assert!(
            !keys.message.contains("documents.azure.com"),
            "{}",
            keys.message
        );
    }
}
