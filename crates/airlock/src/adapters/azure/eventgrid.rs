//! Publishing to Event Grid custom topics over its REST API (Event Grid schema), through the
//! shared [`RestClient`]: batches stay under the 1 MB request limit; throttling, server
//! errors and network failures are retried by the pipeline, then reported as transient so
//! the caller's outbox keeps the events.

use crate::adapters::azure::rest::{RestClient, Retry};
use crate::domain::{EventGridEvent, Topic};
use crate::ports::{EventPublisher, PortError};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Method;
use std::collections::HashMap;
use std::sync::Arc;

/// Event Grid refuses requests over 1 MB; keep a margin for the array brackets.
pub const MAX_BATCH_BYTES: usize = 1_000_000;

/// The token audience of Event Grid's data plane (the topics run with local auth off, so
/// there is no key to use).
const SCOPE: &str = "https://eventgrid.azure.net/.default";

#[derive(Clone)]
pub struct TopicEndpoint {
    /// `https://{topic}.{region}-1.eventgrid.azure.net/api/events`
    pub url: String,
    pub credential: Arc<dyn TokenCredential>,
}

struct TopicClient {
    url: String,
    client: RestClient,
}

pub struct EventGridPublisher {
    topics: HashMap<Topic, TopicClient>,
}

impl EventGridPublisher {
    pub fn new(topics: HashMap<Topic, TopicEndpoint>) -> Self {
        Self::with_retry(topics, Retry::default())
    }

    pub fn with_retry(topics: HashMap<Topic, TopicEndpoint>, retry: Retry) -> Self {
        let topics = topics
            .into_iter()
            .map(|(topic, endpoint)| {
                let url = if endpoint.url.contains("api-version=") {
                    endpoint.url
                } else {
                    let sep = if endpoint.url.contains('?') { '&' } else { '?' };
                    format!("{}{sep}api-version=2018-01-01", endpoint.url)
                };
                let client = RestClient::new(endpoint.credential, SCOPE, retry);
                (topic, TopicClient { url, client })
            })
            .collect();
        EventGridPublisher { topics }
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
            let answer = endpoint
                .client
                .send(
                    "publishing to Event Grid",
                    Method::Post,
                    &endpoint.url,
                    &[("content-type", "application/json")],
                    Some(body.into_bytes()),
                )
                .await?;
            if !answer.is_success() {
                // 401/403: our identity lacks EventGrid Data Sender (or it has not
                // propagated): an operator must act; the outbox keeps the events meanwhile.
                return Err(endpoint.client.refused("publishing to Event Grid", &answer));
            }
        }
        Ok(())
    }
}
