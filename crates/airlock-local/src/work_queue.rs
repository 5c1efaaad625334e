//! The Functions host's queue trigger for `Work`, on Azurite's queue service: takes each
//! message off the `airlock-work` queue the handler writes to and hands it to the delivery
//! engine, which invokes `Work` with the host's retries and poison list.

use airlock::ports::PortError;
use airlock_testkit::delivery::DeliveryEngine;
use azure_core::credentials::TokenCredential;
use base64::Engine;
use std::sync::Arc;

const VERSION: &str = "2021-08-06";

/// The queue trigger's shortest wait between polls (the WebJobs SDK's
/// `QueuePollingIntervals.Minimum`).
pub const MIN_POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// host.json `extensions.queues.maxPollingInterval` (a fast test keeps the two equal).
pub const MAX_POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// When the host polls the queue next, as its queue listener does: at once after a poll
/// that found messages; after an empty one, twice as long as the last wait, from
/// [`MIN_POLLING_INTERVAL`] up to [`MAX_POLLING_INTERVAL`]. So on an idle app a new work item
/// can wait up to two seconds, as on Azure; the stand-in is not quicker than the host.
#[derive(Debug, Default)]
pub struct PollingInterval {
    empty_polls: u32,
}

impl PollingInterval {
    /// The wait before the next poll, given whether this one found messages.
    pub fn next(&mut self, found: bool) -> std::time::Duration {
        if found {
            self.empty_polls = 0;
            return std::time::Duration::ZERO;
        }
        let wait = MIN_POLLING_INTERVAL * 2u32.saturating_pow(self.empty_polls.min(8));
        self.empty_polls = self.empty_polls.saturating_add(1);
        wait.min(MAX_POLLING_INTERVAL)
    }
}

pub struct QueueTrigger {
    http: reqwest::Client,
    /// `https://127.0.0.1:{port}/{account}/airlock-work`
    pub queue_url: String,
    credential: Arc<dyn TokenCredential>,
}

/// One message as Get Messages returns it.
struct Message {
    id: String,
    pop_receipt: String,
    text: String,
}

/// Get Messages' answer (only what the trigger reads).
#[derive(Debug, Default, serde::Deserialize)]
struct QueueMessagesList {
    #[serde(rename = "QueueMessage", default)]
    messages: Vec<QueueMessage>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueueMessage {
    message_id: String,
    pop_receipt: String,
    message_text: String,
}

impl QueueTrigger {
    pub fn new(queue_url: String, credential: Arc<dyn TokenCredential>) -> Self {
        QueueTrigger {
            http: reqwest::Client::new(),
            queue_url,
            credential,
        }
    }

    async fn token(&self) -> Result<String, PortError> {
        let token = self
            .credential
            .get_token(&["https://storage.azure.com/.default"], None)
            .await
            .map_err(|e| PortError::Transient(e.to_string()))?;
        Ok(token.token.secret().to_string())
    }

    async fn take(&self) -> Result<Vec<Message>, PortError> {
        let response = self
            .http
            .get(format!(
                "{}/messages?numofmessages=32&visibilitytimeout=300",
                self.queue_url
            ))
            .bearer_auth(self.token().await?)
            .header("x-ms-version", VERSION)
            .send()
            .await
            .map_err(|e| PortError::Transient(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            // The handler creates the queue with its first message.
            404 => return Ok(vec![]),
            status => return Err(PortError::Transient(format!("get messages: {status}"))),
        }
        let xml = response
            .text()
            .await
            .map_err(|e| PortError::Transient(e.to_string()))?;
        let list: QueueMessagesList = quick_xml::de::from_str(&xml)
            .map_err(|e| PortError::Transient(format!("get messages: {e}")))?;
        Ok(list
            .messages
            .into_iter()
            .map(|m| {
                // host.json's `messageEncoding: base64`; a message that is not is taken as is.
                let text = base64::engine::general_purpose::STANDARD
                    .decode(&m.message_text)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or(m.message_text);
                Message {
                    id: m.message_id,
                    pop_receipt: m.pop_receipt,
                    text,
                }
            })
            .collect())
    }

    async fn delete(&self, m: &Message) -> Result<(), PortError> {
        let receipt = airlock::domain::url::encode_component(&m.pop_receipt);
        self.http
            .delete(format!(
                "{}/messages/{}?popreceipt={receipt}",
                self.queue_url, m.id
            ))
            .bearer_auth(self.token().await?)
            .header("x-ms-version", VERSION)
            .send()
            .await
            .map_err(|e| PortError::Transient(e.to_string()))?;
        Ok(())
    }

    /// Moves what is on the queue to `engine`; returns how many messages it moved.
    pub async fn poll(&self, engine: &DeliveryEngine) -> Result<usize, PortError> {
        let messages = self.take().await?;
        for m in &messages {
            engine.enqueue_work(m.text.clone());
            self.delete(m).await?;
        }
        Ok(messages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn get_messages_answers_are_read_with_their_escapes() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>m1</MessageId><InsertionTime>Fri, 04 Dec 2026 20:19:27 GMT</InsertionTime><PopReceipt>AgAA+/=&amp;</PopReceipt><DequeueCount>1</DequeueCount><MessageText>eyJhIjoxfQ==</MessageText></QueueMessage></QueueMessagesList>";
        let list: QueueMessagesList = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(list.messages.len(), 1);
        assert_eq!(list.messages[0].message_id, "m1");
        assert_eq!(list.messages[0].pop_receipt, "AgAA+/=&");
        assert_eq!(list.messages[0].message_text, "eyJhIjoxfQ==");
        let empty: QueueMessagesList = quick_xml::de::from_str("<QueueMessagesList />").unwrap();
        assert!(empty.messages.is_empty());
    }

    #[test]
    fn empty_polls_back_off_to_the_hosts_maximum_and_a_message_resets_it() {
        let mut p = PollingInterval::default();
        let waits: Vec<Duration> = (0..7).map(|_| p.next(false)).collect();
        let ms: Vec<u128> = waits.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.next(true), Duration::ZERO);
        assert_eq!(p.next(false), MIN_POLLING_INTERVAL);
    }
}
