use super::FaultCounter;
use airlock::domain::{EventGridEvent, Topic};
use airlock::ports::{EventPublisher, PortError};
use async_trait::async_trait;
use std::sync::Mutex;

/// Collects published events; can be told to fail the next publishes.
#[derive(Default)]
pub struct MemoryPublisher {
    published: Mutex<Vec<(Topic, EventGridEvent)>>,
    unread: Mutex<Vec<(Topic, EventGridEvent)>>,
    faults: FaultCounter,
}

impl MemoryPublisher {
    /// The next `n` publishes fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.faults.set(n);
    }

    /// Every event ever published, in order.
    pub fn all(&self) -> Vec<(Topic, EventGridEvent)> {
        self.published.lock().unwrap().clone()
    }

    /// Events published since the last call.
    pub fn take_new(&self) -> Vec<(Topic, EventGridEvent)> {
        std::mem::take(&mut *self.unread.lock().unwrap())
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, topic: Topic, events: &[EventGridEvent]) -> Result<(), PortError> {
        if self.faults.take() {
            return Err(PortError::Transient("injected publish failure".into()));
        }
        let batch: Vec<_> = events.iter().map(|e| (topic, e.clone())).collect();
        self.published.lock().unwrap().extend(batch.iter().cloned());
        self.unread.lock().unwrap().extend(batch);
        Ok(())
    }
}
