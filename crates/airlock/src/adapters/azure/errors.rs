//! Maps Azure SDK errors to the ports' [`PortError`], deciding whether a retry can help.

use crate::ports::PortError;
use azure_core::http::StatusCode;

pub fn port_error(context: &str, e: azure_core::Error) -> PortError {
    let message = format!("{context}: {e}");
    match e.http_status() {
        Some(StatusCode::NotFound) => PortError::NotFound(message),
        Some(StatusCode::Conflict) | Some(StatusCode::PreconditionFailed) => {
            PortError::Conflict(message)
        }
        Some(StatusCode::TooManyRequests)
        | Some(StatusCode::RequestTimeout)
        | Some(StatusCode::InternalServerError)
        | Some(StatusCode::BadGateway)
        | Some(StatusCode::ServiceUnavailable)
        | Some(StatusCode::GatewayTimeout) => PortError::Transient(message),
        Some(_) => PortError::Permanent(message),
        // No HTTP answer at all: connection refused, reset, timeout.
        None => PortError::Transient(message),
    }
}

/// The same decision for an HTTP status a REST call (not the SDK) got back.
pub fn status_error(status: u16, message: String) -> PortError {
    match status {
        404 => PortError::NotFound(message),
        409 | 412 => PortError::Conflict(message),
        408 | 429 | 500 | 502 | 503 | 504 => PortError::Transient(message),
        _ => PortError::Permanent(message),
    }
}

/// The storage error code (`x-ms-error-code`) of a failed call, when there is one.
pub fn error_code(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    }
}
