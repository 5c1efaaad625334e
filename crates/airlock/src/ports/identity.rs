//! Who is calling: a bearer token turned into a verified identity.

use crate::domain::{Role, User};

/// Who a verified token says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: User,
    pub roles: Vec<Role>,
    /// The token's `aud` values; the API checks them per workspace.
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
    /// The token is not acceptable; a retry with the same token cannot help.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The signing keys could not be fetched (a retry may help).
    #[error("cannot verify tokens right now: {0}")]
    KeysUnavailable(String),
}

impl AuthError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable(_))
    }
}

/// Verifies bearer tokens.
///
/// Contract: `Ok` only for a token whose signature, issuer, expiry and not-before all check
/// out; the audience is *not* checked here (it depends on the workspace the call is for),
/// so callers must compare [`Identity::audiences`] with the workspace's audience.
#[async_trait::async_trait]
pub trait TokenVerifier: Send + Sync {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}
