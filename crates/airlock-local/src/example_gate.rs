//! An external gate, as an organisation would run one (the worked example in `docs/gates.md`):
//! an Event Grid webhook on the notification topic that takes `Airlock.GateRequested` events
//! for its gate, reads each file through the event's read link, fails a file holding anything
//! shaped like an NHS number (ten digits in a row, alone), and answers through the API as its
//! service identity (role `AirlockGate`). On Azure the same logic would be a Function or a
//! Logic App with an Event Grid subscription filtered on the event type.
//!
//! For tests it can answer late or never, and it counts what it did.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the example gate gets a token for a workspace (the local issuer here; client
/// credentials against Entra ID on Azure).
pub type TokenSource = Arc<dyn Fn(&str) -> String + Send + Sync>;

pub struct GateOptions {
    /// The API's base URL (`https://127.0.0.1:8080`); answers go to it plus the event's
    /// `answerPath`.
    pub api_url: String,
    /// The gate this service answers for (events for other gates are ignored).
    pub gate: String,
    pub token: TokenSource,
    /// Wait this long before answering (a slow gate).
    pub delay: Duration,
    /// Never answer (a gate that is down).
    pub silent: bool,
}

/// What the gate did with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    pub request_id: String,
    /// The verdicts it sent, `(file, "pass" | "fail")`.
    pub verdicts: Vec<(String, String)>,
    /// The API's answer (200 taken; 409 late or already answered).
    pub status: u16,
}

pub struct ExampleGate {
    /// The webhook to subscribe to the notification topic.
    pub webhook_url: String,
    answered: Arc<Mutex<Vec<Answered>>>,
    asked: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl ExampleGate {
    /// Starts the webhook on a free loopback port.
    pub async fn start(options: GateOptions) -> std::io::Result<ExampleGate> {
        let listener = crate::emulators::free_listener().await?;
        let webhook_url = format!("http://{}/api/events", listener.local_addr()?);
        let answered = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Service {
            options,
            http: reqwest::Client::new(),
            answered: answered.clone(),
            asked: asked.clone(),
        });
        let app = axum::Router::new()
            .route("/api/events", post(events))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ExampleGate {
            webhook_url,
            answered,
            asked,
            server,
        })
    }

    /// Every answer it sent, in order.
    pub fn answered(&self) -> Vec<Answered> {
        self.answered.lock().unwrap().clone()
    }

    /// The data of every `Airlock.GateRequested` event for its gate.
    pub fn asked(&self) -> Vec<Value> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for ExampleGate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Service {
    options: GateOptions,
    http: reqwest::Client,
    answered: Arc<Mutex<Vec<Answered>>>,
    asked: Arc<Mutex<Vec<Value>>>,
}

/// The webhook: answers Event Grid's subscription handshake, takes the gate's events and
/// works on them after answering (Event Grid waits at most 30 s for a delivery).
async fn events(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let Ok(events) = serde_json::from_str::<Vec<Value>>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "expected an array of Event Grid events"})),
        );
    };
    let validation = headers
        .get("aeg-event-type")
        .is_some_and(|v| v == "SubscriptionValidation");
    for event in events {
        if validation || event["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent" {
            return (
                StatusCode::OK,
                axum::Json(json!({"validationResponse": event["data"]["validationCode"]})),
            );
        }
        if event["eventType"] != "Airlock.GateRequested"
            || event["data"]["gate"] != service.options.gate.as_str()
        {
            continue;
        }
        service.asked.lock().unwrap().push(event["data"].clone());
        let service = service.clone();
        tokio::spawn(async move { service.decide(event["data"].clone()).await });
    }
    (StatusCode::OK, axum::Json(json!({})))
}

impl Service {
    async fn decide(&self, asked: Value) {
        if self.options.silent {
            return;
        }
        tokio::time::sleep(self.options.delay).await;
        let mut files = Vec::new();
        let mut verdicts = Vec::new();
        for file in asked["files"].as_array().cloned().unwrap_or_default() {
            let name = file["name"].as_str().unwrap_or_default().to_string();
            let url = file["url"].as_str().unwrap_or_default();
            let verdict = match self.read(url).await {
                Ok(bytes) => match nhs_number_at(&bytes) {
                    Some(line) => json!({"name": name, "result": "fail",
                        "message": "holds something shaped like an NHS number",
                        "location": format!("line {line}")}),
                    None => json!({"name": name, "result": "pass"}),
                },
                // Could not read it: not safe to pass.
                Err(why) => json!({"name": name, "result": "fail",
                    "message": format!("the gate could not read the file: {why}")}),
            };
            verdicts.push((name, verdict["result"].as_str().unwrap_or("").to_string()));
            files.push(verdict);
        }
        let workspace = asked["workspaceId"].as_str().unwrap_or_default();
        let url = format!(
            "{}{}",
            self.options.api_url,
            asked["answerPath"].as_str().unwrap_or_default()
        );
        let body = json!({"revision": asked["revision"], "files": files});
        let mut status = 0;
        // A gate retries what may pass on a second try (the API's 429 and 5xx, no answer).
        for attempt in 0..5u64 {
            let sent = self
                .http
                .post(&url)
                .bearer_auth((self.options.token)(workspace))
                .json(&body)
                .send()
                .await;
            status = sent.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            if status != 0 && status != 429 && status < 500 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        self.answered.lock().unwrap().push(Answered {
            request_id: asked["requestId"].as_str().unwrap_or_default().to_string(),
            verdicts,
            status,
        });
    }

    async fn read(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(url)
            .header("x-ms-version", "2025-11-05")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("storage answered {}", response.status()));
        }
        Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
    }
}

/// The 1-based line of the first run of exactly ten digits (an NHS number's shape), if any.
pub fn nhs_number_at(bytes: &[u8]) -> Option<usize> {
    let mut line = 1;
    let mut run = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            continue;
        }
        if run == 10 {
            return Some(line);
        }
        run = 0;
        if b == b'\n' {
            line += 1;
        }
    }
    (run == 10).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::nhs_number_at;

    #[test]
    fn ten_digits_alone_look_like_an_nhs_number() {
        assert_eq!(nhs_number_at(b"id,n\n9434765919,12\n"), Some(2));
        assert_eq!(nhs_number_at(b"x\ny\n9434765919"), Some(3));
        assert_eq!(nhs_number_at(b"id,n\n94347659190,12\n"), None, "eleven");
        assert_eq!(nhs_number_at(b"id,n\n943476591,12\n"), None, "nine");
        assert_eq!(nhs_number_at(b"region,n\nNorth,120\n"), None);
    }
}
