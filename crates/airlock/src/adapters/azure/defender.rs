//! Defender for Storage's on-demand malware scan, through Azure Resource Manager: asks for
//! every blob of a stage account to be scanned again. The verdicts come back exactly as
//! on-upload ones do (the `ScanCompleted` event and the blob's index tags).
//!
//! `POST {arm}{storage account id}/providers/Microsoft.Security/defenderForStorageSettings/current/startMalwareScan`
//! (learn.microsoft.com/azure/defender-for-cloud/on-demand-malware-scanning; the operation
//! `DefenderForStorageSettings_StartMalwareScan` of the Microsoft.Security REST API).

use crate::adapters::azure::rest::{RestClient, Retry};
use crate::domain::AccountNames;
use crate::ports::{PortError, ScanRequester};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Method;
use std::sync::Arc;

/// The API version of the operation (the first that offers it, per Microsoft's SDKs).
pub const START_SCAN_API_VERSION: &str = "2025-09-01-preview";

/// Where the stage accounts are, as resource-id templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RescanConfig {
    /// `https://management.azure.com` (a local stand-in on 127.0.0.1 for the emulators).
    pub arm_endpoint: String,
    /// The TRE's stage accounts: `/subscriptions/S/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/{account}`.
    pub tre_account_id: String,
    /// A workspace's stage accounts, `{workspace}` being its short id.
    pub workspace_account_id: String,
}

pub struct DefenderRescans {
    client: RestClient,
    config: RescanConfig,
    names: AccountNames,
}

impl DefenderRescans {
    pub fn new(
        config: RescanConfig,
        names: AccountNames,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        DefenderRescans {
            client: RestClient::new(
                credential,
                "https://management.azure.com/.default",
                Retry::default(),
            ),
            config,
            names,
        }
    }

    /// The resource id of one of our stage accounts.
    pub fn account_id(&self, account: &str) -> Result<String, PortError> {
        let parsed = self.names.parse(account).ok_or_else(|| {
            PortError::Permanent(format!("{account} is not one of this TRE's stage accounts"))
        })?;
        let template = match &parsed.workspace_short_id {
            None => self.config.tre_account_id.clone(),
            Some(ws) => self.config.workspace_account_id.replace("{workspace}", ws),
        };
        Ok(template.replace("{account}", account))
    }
}

#[async_trait]
impl ScanRequester for DefenderRescans {
    async fn rescan_account(&self, account: &str) -> Result<(), PortError> {
        let id = self.account_id(account)?;
        let arm = self.config.arm_endpoint.trim_end_matches('/');
        let url = format!(
            "{arm}{id}/providers/Microsoft.Security/defenderForStorageSettings/current/startMalwareScan?api-version={START_SCAN_API_VERSION}"
        );
        self.client
            .send_expecting_success(
                &format!("asking for a malware scan of {account}"),
                Method::Post,
                &url,
                &[],
                None,
            )
            .await?;
        Ok(())
    }
}
