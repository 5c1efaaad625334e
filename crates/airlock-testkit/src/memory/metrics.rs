use airlock::ports::{Measurement, MetricsSink, PortError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Records what was published, run by run; a test can make the service refuse.
#[derive(Default)]
pub struct MemoryMetrics {
    published: Mutex<Vec<(DateTime<Utc>, Vec<Measurement>)>>,
    unavailable: AtomicBool,
}

impl MemoryMetrics {
    /// Every publish so far, in order: when, and what.
    pub fn published(&self) -> Vec<(DateTime<Utc>, Vec<Measurement>)> {
        self.published.lock().unwrap().clone()
    }

    /// The value of `name` with these dimensions in the last publish that has it.
    pub fn last(&self, name: &str, dimensions: &[(&str, &str)]) -> Option<f64> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|(_, ms)| {
                ms.iter()
                    .find(|m| {
                        m.name == name
                            && dimensions.iter().all(|(k, v)| {
                                m.dimensions.iter().any(|(mk, mv)| mk == k && mv == v)
                            })
                    })
                    .map(|m| m.value)
            })
    }

    /// While set, every publish is refused as `Transient` (the service throttling).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }
}

#[async_trait]
impl MetricsSink for MemoryMetrics {
    async fn publish(
        &self,
        at: DateTime<Utc>,
        measurements: &[Measurement],
    ) -> Result<(), PortError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(PortError::Transient(
                "the metrics service is throttling".into(),
            ));
        }
        self.published
            .lock()
            .unwrap()
            .push((at, measurements.to_vec()));
        Ok(())
    }
}
