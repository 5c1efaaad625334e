//! What a function answers: its [`Outcome`], or a [`FunctionError`] that says whether the
//! host should try again. The steps that produce them are in their own files:
//! [`super::record`] (the conditional read-modify-write with its outbox and audit trail),
//! [`super::movement`] (the data movement a status needs) and [`super::settle`] (a file that
//! arrived in a stage).

use crate::ports::PortError;

/// What a function did with its event. Both answer 2xx: an ignored event is not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Ignored(String),
}

impl Outcome {
    pub fn message(&self) -> String {
        match self {
            Outcome::Done(m) => m.clone(),
            Outcome::Ignored(m) => format!("ignored: {m}"),
        }
    }
}

/// A function failed. `Retryable` answers non-2xx so the host and Event Grid try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    #[error("{0} (a retry may help)")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

impl FunctionError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, FunctionError::Retryable(_))
    }
}

/// A rule the domain refused is not going to change on a retry.
impl From<crate::domain::DomainError> for FunctionError {
    fn from(e: crate::domain::DomainError) -> Self {
        FunctionError::Permanent(e.to_string())
    }
}

impl From<PortError> for FunctionError {
    fn from(e: PortError) -> Self {
        if let PortError::Forbidden(m) = &e {
            tracing::error!(alert = "identity-forbidden", error = %m, "our identity was refused: check its role assignments (docs/operating.md); the host will retry");
        }
        if e.is_retryable() {
            FunctionError::Retryable(e.to_string())
        } else {
            FunctionError::Permanent(e.to_string())
        }
    }
}
