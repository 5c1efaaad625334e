//! Token credentials: Entra ID on Azure (managed identity, or the developer's own login), and
//! a local Entra-shaped credential for the emulators so the production code path (bearer
//! tokens, user-delegation SAS) is the one that runs and is tested locally.

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use base64::Engine;
use std::sync::Arc;

/// Mints unsigned Entra-shaped tokens. Azurite in `--oauth basic` mode checks the issuer,
/// audience and lifetime of a token but not its signature, so this stands in for Entra ID.
/// Never use it against Azure: the service would refuse it.
#[derive(Debug, Clone)]
pub struct LocalEntraCredential {
    pub tenant_id: String,
    pub object_id: String,
}

impl Default for LocalEntraCredential {
    fn default() -> Self {
        LocalEntraCredential {
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            object_id: "23657296-5cd5-45b0-a809-d972a7f4dfe1".into(),
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
        let now = OffsetDateTime::now_utc();
        let expires = now + Duration::hours(1);
        // The resource is the scope without `/.default`.
        let audience = scopes
            .first()
            .map(|s| s.trim_end_matches("/.default").to_string())
            .unwrap_or_else(|| "https://storage.azure.com".into());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "iss": format!("https://sts.windows.net/{}/", self.tenant_id),
            "iat": now.unix_timestamp() - 60,
            "nbf": now.unix_timestamp() - 60,
            "exp": expires.unix_timestamp(),
            "oid": self.object_id,
            "tid": self.tenant_id,
            "appid": "airlock-local",
        });
        let payload = b64.encode(claims.to_string());
        Ok(AccessToken::new(
            Secret::new(format!("{header}.{payload}.")),
            expires,
        ))
    }
}

/// Which credential the handler uses to reach storage, Cosmos and Event Grid.
pub fn credential_from_mode(mode: &str) -> Result<Arc<dyn TokenCredential>, String> {
    match mode {
        "local" => Ok(Arc::new(LocalEntraCredential::default())),
        "managed-identity" => azure_identity::ManagedIdentityCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| format!("managed identity credential: {e}")),
        "developer" => azure_identity::DeveloperToolsCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| format!("developer credential: {e}")),
        other => Err(format!(
            "AIRLOCK_CREDENTIAL must be managed-identity, developer or local, not {other:?}"
        )),
    }
}
