//! The [`TokenVerifier`] for Entra ID: RS256 JWTs checked against the issuer's JWKS. Keys are cached and refetched when an unknown `kid` shows up (key
//! rollover), at most once per `REFRESH_COOLDOWN` so bad tokens cannot hammer the issuer.

use crate::domain::{Role, User};
use crate::ports::{AuthError, Identity, TokenVerifier};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    pub jwks_url: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
}

const KEY_TTL: Duration = Duration::from_secs(3600);
const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    oid: Option<String>,
    aud: Audience,
    name: Option<String>,
    preferred_username: Option<String>,
    email: Option<String>,
    upn: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct JwksVerifier {
    config: AuthConfig,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
}

impl JwksVerifier {
    pub fn new(config: AuthConfig, http: reqwest::Client) -> Self {
        JwksVerifier {
            config,
            http,
            cache: RwLock::new(KeyCache::default()),
        }
    }

    async fn verify_token(&self, token: &str) -> Result<Identity, AuthError> {
        let header =
            decode_header(token).map_err(|_| AuthError::Invalid("malformed JWT".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id (kid) in the token header".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.validate_aud = false; // checked per workspace by the caller
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                AuthError::Invalid(match e.kind() {
                    ExpiredSignature => "the token has expired".into(),
                    ImmatureSignature => "the token is not valid yet (nbf)".into(),
                    InvalidIssuer => "the token is from another issuer".into(),
                    InvalidSignature => "the signature does not verify".into(),
                    MissingRequiredClaim(c) => format!("the token has no {c} claim"),
                    _ => format!("{e}"),
                })
            })?
            .claims;
        let id = claims
            .oid
            .filter(|o| !o.is_empty())
            .ok_or_else(|| AuthError::Invalid("the token has no oid claim".into()))?;
        let email = claims
            .email
            .or(claims
                .preferred_username
                .clone()
                .filter(|u| u.contains('@')))
            .or(claims.upn);
        let name = claims
            .name
            .or(claims.preferred_username)
            .unwrap_or_else(|| id.clone());
        Ok(Identity {
            user: User { id, name, email },
            roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            audiences: match claims.aud {
                Audience::One(a) => vec![a],
                Audience::Many(a) => a,
            },
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched.is_some_and(|t| t.elapsed() < KEY_TTL);
            if let Some(key) = cache.keys.get(kid).filter(|_| fresh) {
                return Ok(key.clone());
            }
            if cache
                .fetched
                .is_some_and(|t| t.elapsed() < REFRESH_COOLDOWN)
            {
                return cache
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| AuthError::Invalid(format!("unknown signing key {kid:?}")));
            }
        }
        let mut cache = self.cache.write().await;
        let set: JwkSet = async {
            self.http
                .get(&self.config.jwks_url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e: reqwest::Error| {
            AuthError::KeysUnavailable(format!("fetching the JWKS failed: {e}"))
        })?;
        cache.keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
            })
            .collect();
        cache.fetched = Some(Instant::now());
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::Invalid(format!("unknown signing key {kid:?}")))
    }
}

#[async_trait::async_trait]
impl TokenVerifier for JwksVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify_token(token).await
    }
}
