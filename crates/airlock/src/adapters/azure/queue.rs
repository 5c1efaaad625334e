//! The work queue on Azure Storage queues, over the Queue service REST API (Put Message)
//! through the shared [`RestClient`]: the Function App's `Work` queue trigger reads the same
//! queue. Messages are base64 text, as the Functions host expects by default
//! (`messageEncoding`).

use crate::adapters::azure::rest::{RestClient, Retry};
use crate::ports::{BACKLOG_PEEK, Backlog, PortError, WorkItem, WorkQueue};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Method;
use base64::Engine;
use std::sync::Arc;

/// Queue service REST version (supported by Azure and by Azurite 3.x).
const VERSION: &str = "2021-08-06";
const SCOPE: &str = "https://storage.azure.com/.default";

pub struct AzureWorkQueue {
    client: RestClient,
    /// `https://{account}.queue.core.windows.net/{queue}` (Azurite:
    /// `https://127.0.0.1:10001/{account}/{queue}`).
    queue_url: String,
}

impl AzureWorkQueue {
    pub fn new(queue_url: String, credential: Arc<dyn TokenCredential>) -> Self {
        AzureWorkQueue {
            client: RestClient::new(credential, SCOPE, Retry::default()),
            queue_url: queue_url.trim_end_matches('/').to_string(),
        }
    }

    /// Creates the queue (Terraform does on Azure; the local stack's Azurite starts empty).
    async fn create_queue(&self) -> Result<(), PortError> {
        let what = "creating the work queue";
        let answer = self
            .client
            .send(
                what,
                Method::Put,
                &self.queue_url,
                &[("x-ms-version", VERSION)],
                None,
            )
            .await?;
        match answer.status {
            201 | 204 | 409 => Ok(()),
            _ => Err(self.client.refused(what, &answer)),
        }
    }

    /// Puts one message: `Ok(false)` when the queue does not exist.
    async fn put(&self, body: &str) -> Result<bool, PortError> {
        let what = "queueing work";
        let answer = self
            .client
            .send(
                what,
                Method::Post,
                &format!("{}/messages", self.queue_url),
                &[
                    ("x-ms-version", VERSION),
                    ("content-type", "application/xml"),
                ],
                Some(body.as_bytes().to_vec()),
            )
            .await?;
        match answer.status {
            201 => Ok(true),
            404 => Ok(false),
            _ => Err(self.client.refused(what, &answer)),
        }
    }
}

#[async_trait]
impl WorkQueue for AzureWorkQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), PortError> {
        let json = serde_json::to_string(item).map_err(|e| PortError::Permanent(e.to_string()))?;
        let text = base64::engine::general_purpose::STANDARD.encode(json);
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        if !self.put(&body).await? {
            self.create_queue().await?;
            if !self.put(&body).await? {
                return Err(PortError::Transient("the work queue does not exist".into()));
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, PortError> {
        let what = "peeking at the work queue";
        let answer = self
            .client
            .send(
                what,
                Method::Get,
                &format!(
                    "{}/messages?peekonly=true&numofmessages={BACKLOG_PEEK}",
                    self.queue_url
                ),
                &[("x-ms-version", VERSION)],
                None,
            )
            .await?;
        match answer.status {
            200 => Ok(parse_peek(&answer.body)),
            404 => Ok(Backlog::default()),
            _ => Err(self.client.refused(what, &answer)),
        }
    }
}

/// The messages of a Peek Messages answer (`<QueueMessagesList><QueueMessage>...
/// <InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime>...`): how many, and the
/// oldest insertion time.
fn parse_peek(xml: &str) -> Backlog {
    let messages = xml.matches("<QueueMessage>").count();
    let oldest = xml
        .split("<InsertionTime>")
        .skip(1)
        .filter_map(|rest| rest.split("</InsertionTime>").next())
        .filter_map(|t| chrono::DateTime::parse_from_rfc2822(t.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .min();
    Backlog { messages, oldest }
}

#[cfg(test)]
mod tests {
    use super::parse_peek;

    #[test]
    fn a_peek_answer_gives_the_count_and_the_oldest_time() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>\
            <QueueMessage><MessageId>a</MessageId><InsertionTime>Sat, 05 Dec 2026 10:00:05 GMT</InsertionTime><MessageText>x</MessageText></QueueMessage>\
            <QueueMessage><MessageId>b</MessageId><InsertionTime>Sat, 05 Dec 2026 09:59:00 GMT</InsertionTime><MessageText>y</MessageText></QueueMessage>\
            </QueueMessagesList>";
        let backlog = parse_peek(xml);
        assert_eq!(backlog.messages, 2);
        assert_eq!(
            backlog.oldest.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-05T09:59:00+00:00")
        );
        let empty = parse_peek("<QueueMessagesList />");
        assert_eq!((empty.messages, empty.oldest), (0, None));
    }
}
