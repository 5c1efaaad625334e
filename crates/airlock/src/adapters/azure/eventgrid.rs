//! Publishing to Event Grid custom topics over its REST API (Event Grid schema). Batches stay
//! under the 1 MB request limit; throttling, server errors and network failures are retried
//! with exponential back-off, then reported as transient so the caller's outbox keeps them.

use crate::domain::{EventGridEvent, Topic};
use crate::ports::{EventPublisher, PortError};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Event Grid refuses requests over 1 MB; keep a margin for the array brackets.
pub const MAX_BATCH_BYTES: usize = 1_000_000;

#[derive(Clone)]
pub struct TopicEndpoint {
    /// `https://{topic}.{region}-1.eventgrid.azure.net/api/events`
    pub url: String,
    /// Entra ID bearer tokens for `https://eventgrid.azure.net/.default` (the topics run with
    /// local auth off, so there is no key to use).
    pub credential: Arc<dyn TokenCredential>,
}

pub struct EventGridPublisher {
    http: reqwest::Client,
    topics: HashMap<Topic, TopicEndpoint>,
    pub max_attempts: u32,
    pub first_delay: Duration,
}

impl EventGridPublisher {
    pub fn new(http: reqwest::Client, topics: HashMap<Topic, TopicEndpoint>) -> Self {
        EventGridPublisher {
            http,
            topics,
            max_attempts: 5,
            first_delay: Duration::from_millis(200),
        }
    }

    async fn send(&self, endpoint: &TopicEndpoint, body: String) -> Result<(), PortError> {
        let url = if endpoint.url.contains("api-version=") {
            endpoint.url.clone()
        } else {
            let sep = if endpoint.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}api-version=2018-01-01", endpoint.url)
        };
        let mut delay = self.first_delay;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let mut request = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            let token = endpoint
                .credential
                .get_token(&["https://eventgrid.azure.net/.default"], None)
                .await
                .map_err(|e| PortError::Transient(format!("token for Event Grid: {e}")))?;
            request = request.bearer_auth(token.token.secret());
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    last = format!("{status}: {}", text.chars().take(300).collect::<String>());
                    let retryable = status.as_u16() == 429
                        || status.is_server_error()
                        || status.as_u16() == 408;
                    if status.as_u16() == 401 || status.as_u16() == 403 {
                        // Our identity lacks EventGrid Data Sender (or it has not propagated):
                        // an operator must act; the outbox keeps the events meanwhile.
                        return Err(PortError::Forbidden(format!(
                            "Event Grid refused our identity ({last})"
                        )));
                    }
                    if !retryable {
                        return Err(PortError::Permanent(format!(
                            "Event Grid refused the events ({last})"
                        )));
                    }
                }
                Err(e) => last = format!("network error: {e}"),
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
        Err(PortError::Transient(format!(
            "Event Grid did not accept the events after {} attempts (last: {last})",
            self.max_attempts
        )))
    }
}

/// Splits events into JSON arrays of at most `max_bytes` each. An event larger than the
/// limit on its own is an error: Event Grid would refuse it.
pub fn batches(events: &[EventGridEvent], max_bytes: usize) -> Result<Vec<String>, PortError> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for event in events {
        let json = serde_json::to_string(event).map_err(|e| PortError::Permanent(e.to_string()))?;
        if json.len() + 2 > max_bytes {
            return Err(PortError::Permanent(format!(
                "event {} is {} bytes, over the {max_bytes}-byte limit",
                event.id,
                json.len()
            )));
        }
        if !current.is_empty() && size + json.len() + 1 > max_bytes {
            out.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() {
        out.push(format!("[{}]", current.join(",")));
    }
    Ok(out)
}

#[async_trait]
impl EventPublisher for EventGridPublisher {
    async fn publish(&self, topic: Topic, events: &[EventGridEvent]) -> Result<(), PortError> {
        let endpoint = self.topics.get(&topic).ok_or_else(|| {
            PortError::Permanent(format!("no endpoint configured for the {topic:?} topic"))
        })?;
        for body in batches(events, MAX_BATCH_BYTES)? {
            self.send(endpoint, body).await?;
        }
        Ok(())
    }
}
