//! Identities on the local stack, as App Service gives them on Azure.
//!
//! The handler runs its production credential path: `ManagedIdentityCredential` finds
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` in its environment (as App Service sets them) and
//! asks that endpoint for a token, which the router serves here ([`managed_identity_token`]).
//! The token is Entra-shaped and unsigned: Azurite (`--oauth basic`) checks its issuer,
//! audience and lifetime, and the local RBAC check ([`crate::rbac`]) reads its `oid` to know
//! whose roles apply. The stand-ins for Azure's own services (Event Grid's blob events,
//! Defender for Storage, the Functions host's queue polling) use [`LocalEntraCredential`]
//! with their own principal.

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use base64::Engine;
use serde_json::json;

/// The local tenant.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The Function App's system-assigned identity on the local stack (`function` in
/// `infra/rbac.json`): what the handler gets from the managed identity endpoint.
pub const FUNCTION_PRINCIPAL_ID: &str = "23657296-5cd5-45b0-a809-d972a7f4dfe1";
/// Azure's own services played locally (Event Grid's system topics, Defender for Storage):
/// `azure-services` in `infra/rbac.json`.
pub const AZURE_SERVICES_PRINCIPAL_ID: &str = "0f6e2a53-7c1d-4b8e-9a40-5d3c2b1a0e9f";

/// An Entra-shaped, unsigned token for `resource` (the scope without `/.default`) issued to
/// `object_id`, valid for an hour.
pub fn mint(resource: &str, object_id: &str) -> (String, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    let expires = now + Duration::hours(1);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{TENANT_ID}/"),
        "iat": now.unix_timestamp() - 60,
        "nbf": now.unix_timestamp() - 60,
        "exp": expires.unix_timestamp(),
        "oid": object_id,
        "sub": object_id,
        "tid": TENANT_ID,
        "appid": "airlock-local",
    });
    let payload = b64.encode(claims.to_string());
    (format!("{header}.{payload}."), expires)
}

/// The `oid` claim of a bearer token, without checking anything else (that is the storage
/// emulator's job); `None` when it is not a JWT with an `oid`.
pub fn object_id_of(token: &str) -> Option<String> {
    claim(token, "oid")
}

/// A string claim of a JWT's payload (unverified).
pub fn claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get(name)?.as_str().map(str::to_string)
}

/// Mints tokens for one local principal. Never used against Azure: the service would refuse
/// an unsigned token (and the production handler has no way to use it).
#[derive(Debug, Clone)]
pub struct LocalEntraCredential {
    pub object_id: String,
}

impl LocalEntraCredential {
    /// Azure's own services, played locally.
    pub fn azure_services() -> Self {
        LocalEntraCredential {
            object_id: AZURE_SERVICES_PRINCIPAL_ID.into(),
        }
    }

    /// The Function App's identity (the Functions host polls its queues with it).
    pub fn function_app() -> Self {
        LocalEntraCredential {
            object_id: FUNCTION_PRINCIPAL_ID.into(),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for LocalEntraCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let resource = scopes
            .first()
            .map(|s| s.trim_end_matches("/.default"))
            .unwrap_or("https://storage.azure.com");
        let (token, expires) = mint(resource, &self.object_id);
        Ok(AccessToken::new(Secret::new(token), expires))
    }
}

/// App Service's managed identity protocol, version 2019-08-01: `GET
/// {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...` with `X-IDENTITY-HEADER`
/// (learn.microsoft.com/azure/app-service/overview-managed-identity, "REST endpoint
/// reference"). A wrong or missing header is refused, as App Service refuses it.
#[derive(Debug, serde::Deserialize)]
pub struct TokenQuery {
    #[serde(rename = "api-version")]
    pub api_version: Option<String>,
    pub resource: Option<String>,
}

/// Answers one token request for the Function App's identity: `Err((status, message))` when
/// the request is not what App Service accepts.
pub fn managed_identity_token(
    expected_header: &str,
    header: Option<&str>,
    query: &TokenQuery,
) -> Result<serde_json::Value, (u16, String)> {
    if header != Some(expected_header) {
        return Err((401, "X-IDENTITY-HEADER is missing or wrong".into()));
    }
    if query.api_version.as_deref() != Some("2019-08-01") {
        return Err((400, "api-version must be 2019-08-01".into()));
    }
    let Some(resource) = query.resource.as_deref().filter(|r| !r.is_empty()) else {
        return Err((400, "resource is required".into()));
    };
    let (token, expires) = mint(resource, FUNCTION_PRINCIPAL_ID);
    Ok(json!({
        "access_token": token,
        "expires_on": expires.unix_timestamp().to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": FUNCTION_PRINCIPAL_ID,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_checks_the_header_and_the_version() {
        let good = TokenQuery {
            api_version: Some("2019-08-01".into()),
            resource: Some("https://storage.azure.com".into()),
        };
        let answer = managed_identity_token("s3cret", Some("s3cret"), &good).unwrap();
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(object_id_of(token).as_deref(), Some(FUNCTION_PRINCIPAL_ID));
        assert!(
            answer["expires_on"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        for header in [None, Some(""), Some("guess")] {
            assert_eq!(
                managed_identity_token("s3cret", header, &good)
                    .unwrap_err()
                    .0,
                401
            );
        }
        let old = TokenQuery {
            api_version: Some("2017-09-01".into()),
            ..good
        };
        assert_eq!(
            managed_identity_token("s3cret", Some("s3cret"), &old)
                .unwrap_err()
                .0,
            400
        );
    }

    #[test]
    fn object_ids_are_read_from_tokens_only() {
        let (token, _) = mint("https://storage.azure.com", AZURE_SERVICES_PRINCIPAL_ID);
        assert_eq!(
            object_id_of(&token).as_deref(),
            Some(AZURE_SERVICES_PRINCIPAL_ID)
        );
        for junk in ["", "abc", "a.b.c", "a.e30.c"] {
            assert_eq!(object_id_of(junk), None, "{junk}");
        }
    }
}
