use airlock::ports::{PortError, ScanRequester};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Records the rescans asked for; a test plays the scanner's answer (or its silence).
#[derive(Default)]
pub struct MemoryScanRequester {
    asked: Mutex<Vec<String>>,
    unavailable: AtomicBool,
}

impl MemoryScanRequester {
    /// The accounts a rescan was asked for, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// While set, every request is refused as `Permanent` (no on-demand scanning here).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }
}

#[async_trait]
impl ScanRequester for MemoryScanRequester {
    async fn rescan_account(&self, account: &str) -> Result<(), PortError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(PortError::Permanent(format!(
                "no on-demand scanning for {account}"
            )));
        }
        self.asked.lock().unwrap().push(account.to_string());
        Ok(())
    }
}
