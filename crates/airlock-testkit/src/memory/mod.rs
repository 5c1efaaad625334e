//! In-memory fakes of every port, for fast tests. They behave like the real services where
//! it matters: stale ETags conflict, copies can stay pending, continuation tokens page,
//! publishing can fail on demand, and links carry (and enforce) their permissions.

mod blob;
mod clock;
mod events;
mod history;
mod metrics;
mod releases;
mod requests;
mod scans;
mod work;
mod workspaces;

pub use blob::{BlobNotice, CopyMode, MemoryBlobStore, SasClient, SasError};
pub use clock::ManualClock;
pub use events::MemoryPublisher;
pub use history::MemoryHistoryStore;
pub use metrics::MemoryMetrics;
pub use releases::MemoryReleaseLedger;
pub use requests::MemoryRequestStore;
pub use scans::MemoryScanRequester;
pub use work::MemoryWorkQueue;
pub use workspaces::MemoryWorkspaceStore;

/// Counts down injected failures: `take()` is true for the next `n` calls.
#[derive(Default)]
pub(crate) struct FaultCounter(std::sync::atomic::AtomicU32);

impl FaultCounter {
    pub fn set(&self, n: u32) {
        self.0.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn take(&self) -> bool {
        self.0
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
    }
}
