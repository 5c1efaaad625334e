//! The API's error shape: `{"error": {"code", "message"}}` with the matching status.

use crate::domain::DomainError;
use crate::ports::{AuthError, PortError};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", m)
    }
    pub fn precondition_failed(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", m)
    }
    pub fn too_many(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!("too many calls from you: try again in {retry_after_secs} s"),
            )
        }
    }
    /// A backing service is briefly unavailable (throttled, restarting): try again shortly,
    /// as `Retry-After` says.
    pub fn unavailable(m: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(UNAVAILABLE_RETRY_SECS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", m)
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", m)
    }
}

/// Seconds a client is asked to wait after a 503.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(super::types::Error {
            error: super::types::ErrorDetail {
                code: self.code.to_string(),
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

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::NotFound(m) => ApiError::not_found(m),
            PortError::Conflict(m) => {
                ApiError::conflict(format!("the request changed concurrently, try again: {m}"))
            }
            PortError::Transient(m) => ApiError::unavailable(m),
            PortError::InvalidInput(m) => ApiError::bad_request(m),
            PortError::PreconditionFailed(m) => ApiError::conflict(m),
            PortError::Forbidden(m) => {
                tracing::error!(alert = "identity-forbidden", error = %m, "our identity was refused: check its role assignments");
                ApiError::unavailable(
                    "the airlock cannot reach its storage right now; it has been logged"
                        .to_string(),
                )
            }
            PortError::Permanent(m) => {
                tracing::error!(error = %m, "storage error");
                ApiError::internal("an internal error occurred; it has been logged")
            }
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::IllegalTransition { .. } | DomainError::Invalid(_) => {
                ApiError::bad_request(e.to_string())
            }
            DomainError::Forbidden(m) => ApiError::forbidden(m),
            DomainError::Stale(m) => ApiError::conflict(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(_) => ApiError::unavailable(e.to_string()),
            AuthError::Missing | AuthError::Invalid(_) => ApiError::unauthorized(e.to_string()),
        }
    }
}
