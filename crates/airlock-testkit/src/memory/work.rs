use super::FaultCounter;
use airlock::ports::{PortError, WorkItem, WorkQueue};
use async_trait::async_trait;
use std::sync::Mutex;

/// The work queue: messages wait here (as the JSON text a storage queue holds) until the
/// feed hands them to the delivery engine, which plays the queue trigger.
#[derive(Default)]
pub struct MemoryWorkQueue {
    messages: Mutex<Vec<String>>,
    enqueued: std::sync::atomic::AtomicUsize,
    faults: FaultCounter,
}

impl MemoryWorkQueue {
    /// The next `n` enqueues fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.faults.set(n);
    }

    /// Messages enqueued since the last call.
    pub fn take_new(&self) -> Vec<String> {
        std::mem::take(&mut *self.messages.lock().unwrap())
    }

    /// Messages enqueued so far.
    pub fn enqueued(&self) -> usize {
        self.enqueued.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl WorkQueue for MemoryWorkQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), PortError> {
        if self.faults.take() {
            return Err(PortError::Transient("injected work queue failure".into()));
        }
        let text = serde_json::to_string(item).map_err(|e| PortError::Permanent(e.to_string()))?;
        self.messages.lock().unwrap().push(text);
        self.enqueued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn backlog(&self) -> Result<airlock::ports::Backlog, PortError> {
        let waiting = self.messages.lock().unwrap().len();
        Ok(airlock::ports::Backlog {
            messages: waiting.min(airlock::ports::BACKLOG_PEEK),
            // The fake keeps no queue times; the Azure queue does.
            oldest: None,
        })
    }
}
