//! Service metrics for an operator's charts and alerts: how many requests wait for review and
//! for how long, how many are stuck, how much work is queued. `Reconcile` measures them every
//! run (every 5 minutes) and hands them here; on Azure they become Application Insights
//! custom metrics (`customMetrics`), which Azure Monitor charts and alerts on.

use super::PortError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One measured value at one moment, with the dimensions it is split by (the workspace).
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// `airlock.requests.in_review`, ...: dotted, lower case, stable (alerts are set on them).
    pub name: &'static str,
    pub value: f64,
    /// Name and value pairs; custom dimensions in Application Insights.
    pub dimensions: Vec<(&'static str, String)>,
}

impl Measurement {
    pub fn new(name: &'static str, value: impl Into<f64>) -> Self {
        Measurement {
            name,
            value: value.into(),
            dimensions: Vec::new(),
        }
    }

    pub fn with(mut self, dimension: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((dimension, value.into()));
        self
    }
}

/// Contract:
/// - `publish` returns once the metrics service has accepted every measurement, all taken
///   `at` the same moment; a measurement is a gauge (the value then), not a count to add up;
/// - it is best-effort for the caller: an error is reported, never a reason to stop the work
///   the measurements describe (they are measured again next run);
/// - `Transient` when trying again later can help (throttled, the service briefly away),
///   `Forbidden` when our identity lacks the role to publish, `Permanent` when the service
///   refused some measurement as invalid (its message says which).
#[async_trait]
pub trait MetricsSink: Send + Sync {
    async fn publish(
        &self,
        at: DateTime<Utc>,
        measurements: &[Measurement],
    ) -> Result<(), PortError>;
}

/// No metrics service configured: the measurements are only in the log (`Reconcile` writes
/// an `airlock metrics` line per workspace whatever the sink).
pub struct NoMetrics;

#[async_trait]
impl MetricsSink for NoMetrics {
    async fn publish(&self, _at: DateTime<Utc>, _m: &[Measurement]) -> Result<(), PortError> {
        Ok(())
    }
}
