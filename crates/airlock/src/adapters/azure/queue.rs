//! The work queue on Azure Storage queues, over the Queue service REST API (Put Message) with
//! an Entra ID token: the Function App's `Work` queue trigger reads the same queue. Messages
//! are base64 text, as the Functions host expects by default (`messageEncoding`).

use crate::ports::{PortError, WorkItem, WorkQueue};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use base64::Engine;
use std::sync::Arc;

/// Queue service REST version (supported by Azure and by Azurite 3.x).
const VERSION: &str = "2021-08-06";
const SCOPE: &str = "https://storage.azure.com/.default";

pub struct AzureWorkQueue {
    http: reqwest::Client,
    /// `https://{account}.queue.core.windows.net/{queue}` (Azurite:
    /// `https://127.0.0.1:10001/{account}/{queue}`).
    queue_url: String,
    credential: Arc<dyn TokenCredential>,
}

impl AzureWorkQueue {
    pub fn new(
        http: reqwest::Client,
        queue_url: String,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        AzureWorkQueue {
            http,
            queue_url: queue_url.trim_end_matches('/').to_string(),
            credential,
        }
    }

    async fn token(&self) -> Result<String, PortError> {
        let token = self
            .credential
            .get_token(&[SCOPE], None)
            .await
            .map_err(|e| PortError::Transient(format!("token for the work queue: {e}")))?;
        Ok(token.token.secret().to_string())
    }

    /// Creates the queue (Terraform does on Azure; the local stack's Azurite starts empty).
    async fn create_queue(&self) -> Result<(), PortError> {
        let response = self
            .http
            .put(&self.queue_url)
            .bearer_auth(self.token().await?)
            .header("x-ms-version", VERSION)
            .header("content-length", "0")
            .send()
            .await
            .map_err(|e| PortError::Transient(format!("creating the work queue: {e}")))?;
        match response.status().as_u16() {
            201 | 204 | 409 => Ok(()),
            status => Err(classify(status, "creating the work queue", response).await),
        }
    }

    async fn put(&self, body: &str) -> Result<u16, PortError> {
        let response = self
            .http
            .post(format!("{}/messages", self.queue_url))
            .bearer_auth(self.token().await?)
            .header("x-ms-version", VERSION)
            .header("content-type", "application/xml")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| PortError::Transient(format!("queueing work: {e}")))?;
        match response.status().as_u16() {
            201 => Ok(201),
            404 => Ok(404),
            status => Err(classify(status, "queueing work", response).await),
        }
    }
}

async fn classify(status: u16, what: &str, response: reqwest::Response) -> PortError {
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let message = format!("{what}: {status}: {text}");
    if status == 429 || status == 408 || status >= 500 {
        PortError::Transient(message)
    } else {
        PortError::Permanent(message)
    }
}

#[async_trait]
impl WorkQueue for AzureWorkQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), PortError> {
        let json = serde_json::to_string(item).map_err(|e| PortError::Permanent(e.to_string()))?;
        let text = base64::engine::general_purpose::STANDARD.encode(json);
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        if self.put(&body).await? == 404 {
            self.create_queue().await?;
            if self.put(&body).await? == 404 {
                return Err(PortError::Transient("the work queue does not exist".into()));
            }
        }
        Ok(())
    }
}
