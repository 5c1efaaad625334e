//! The development token issuer: Entra-shaped RS256 access tokens signed with a key that is
//! checked into the repository. It exists for tests and the local stack only; the production
//! `handler` never links this crate, so it can neither mint nor trust these tokens unless an
//! operator points `AIRLOCK_AUTH_JWKS_URL` at the development JWKS.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The development signing key; its public half is `infra/local/dev-jwks.json`.
/// It signs local tokens only and must never be trusted outside a developer machine.
pub const DEV_SIGNING_KEY: &str = include_str!("../../../infra/local/dev-signing-key.pem");
pub const DEV_JWKS: &str = include_str!("../../../infra/local/dev-jwks.json");
pub const DEV_KEY_ID: &str = "airlock-dev-1";
pub const DEV_ISSUER: &str = "https://login.airlock.local/tre/v2.0";

/// Mints Entra-shaped RS256 access tokens.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    pub issuer: String,
}

/// One person's token request.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub oid: String,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub audience: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl TokenSpec {
    pub fn new(oid: &str, roles: &[&str], audience: &str) -> Self {
        let now = Utc::now();
        TokenSpec {
            oid: oid.to_string(),
            name: format!("{oid} (local)"),
            email: Some(format!("{oid}@airlock.local")),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            audience: audience.to_string(),
            valid_from: now - chrono::Duration::minutes(1),
            valid_until: now + chrono::Duration::hours(8),
        }
    }
}

impl TokenIssuer {
    pub fn from_pem(
        pem: &str,
        kid: &str,
        issuer: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(TokenIssuer {
            key: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            kid: kid.to_string(),
            issuer: issuer.to_string(),
        })
    }

    pub fn dev() -> Self {
        Self::from_pem(DEV_SIGNING_KEY, DEV_KEY_ID, DEV_ISSUER).expect("the dev key parses")
    }

    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.mint_claims(&json!({
            "iss": self.issuer,
            "aud": spec.audience,
            "oid": spec.oid,
            "sub": spec.oid,
            "tid": "00000000-0000-0000-0000-000000000000",
            "name": spec.name,
            "preferred_username": spec.email,
            "email": spec.email,
            "roles": spec.roles,
            "iat": spec.valid_from.timestamp(),
            "nbf": spec.valid_from.timestamp(),
            "exp": spec.valid_until.timestamp(),
            "ver": "2.0",
        }))
    }

    /// Signs arbitrary claims (tests use it to build malformed tokens).
    pub fn mint_claims(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.key).expect("RS256 signing works")
    }
}
