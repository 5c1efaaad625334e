//! Publishing to Event Grid custom topics.

use super::PortError;
use crate::domain::{EventGridEvent, Topic};
use async_trait::async_trait;

/// Contract: either every event of the batch is accepted by the topic, or an error says
/// whether retrying can help. Delivery downstream is at-least-once: the same event may be
/// published again after a crash, so consumers dedupe.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, topic: Topic, events: &[EventGridEvent]) -> Result<(), PortError>;
}
