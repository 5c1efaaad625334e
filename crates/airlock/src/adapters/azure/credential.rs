//! Token credentials: Entra ID on Azure, through the Function App's managed identity (or the
//! developer's own login). There is no local mode: the local stack serves App Service's
//! managed identity endpoint, so the production path is the one that runs and is tested.

use azure_core::credentials::TokenCredential;
use std::sync::Arc;

/// Which credential the handler uses to reach storage, Cosmos and Event Grid.
pub fn credential_from_mode(mode: &str) -> Result<Arc<dyn TokenCredential>, String> {
    match mode {
        "managed-identity" => azure_identity::ManagedIdentityCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| format!("managed identity credential: {e}")),
        "developer" => azure_identity::DeveloperToolsCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| format!("developer credential: {e}")),
        other => Err(format!(
            "AIRLOCK_CREDENTIAL must be managed-identity or developer, not {other:?}"
        )),
    }
}
