//! Asking the malware scanner for a verdict again. Defender for Storage scans a blob when it
//! is written and reports once (an Event Grid event and the blob's index tags); an event can
//! be lost and a scan can fail to happen at all. Before `Reconcile` fails a request for a
//! missing verdict it asks for the account to be scanned again (Defender's on-demand scan),
//! whose verdicts arrive like any other.

use super::PortError;
use async_trait::async_trait;

/// Contract:
/// - `rescan_account` returns once the scanner has accepted the request to scan every blob in
///   the storage account `account` again; it does not wait for verdicts, which come back
///   exactly as on-upload verdicts do (a `ScanCompleted` delivery and the blob's index tags);
/// - asking again while a scan is under way is harmless (the scanner may refuse it as a
///   conflict, which the caller treats like success);
/// - `Permanent` when no rescan can be asked here at all (not configured, not allowed):
///   the caller stops waiting for one.
#[async_trait]
pub trait ScanRequester: Send + Sync {
    async fn rescan_account(&self, account: &str) -> Result<(), PortError>;
}

/// No scanner to ask (a deployment without on-demand scanning configured): every request is
/// refused as `Permanent`, so a missing verdict fails its request as it always did.
pub struct NoRescans;

#[async_trait]
impl ScanRequester for NoRescans {
    async fn rescan_account(&self, account: &str) -> Result<(), PortError> {
        Err(PortError::Permanent(format!(
            "no on-demand malware scan is configured (AIRLOCK_RESCAN_*_ACCOUNT_ID) to rescan {account}"
        )))
    }
}
