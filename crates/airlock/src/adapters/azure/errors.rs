//! Maps Azure SDK errors to the ports' [`PortError`], deciding whether a retry can help.

use crate::ports::PortError;

pub fn port_error(context: &str, e: azure_core::Error) -> PortError {
    let message = format!("{context}: {e}");
    match e.http_status() {
        Some(status) => status_error(u16::from(status), message),
        // No HTTP answer at all: connection refused, reset, timeout.
        None => PortError::Transient(message),
    }
}

/// Whether a retry can help, from the HTTP status an Azure service answered (through the SDK
/// or a plain REST call).
pub fn status_error(status: u16, message: String) -> PortError {
    match status {
        // Our identity was refused (no role, a role not yet propagated, a token for the wrong
        // audience): an operator must act, and a later retry can then succeed.
        401 | 403 => PortError::Forbidden(message),
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
