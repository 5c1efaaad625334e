//! The events the airlock publishes (DESIGN §5), in Event Grid schema. What a status change
//! puts in a request's outbox is built in `request::outbox`.

use super::lifecycle::Status;
use super::request_type::RequestType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const STATUS_CHANGED: &str = "Airlock.StatusChanged";
pub const NOTIFICATION: &str = "Airlock.Notification";
/// Asks an external gate (on the notification topic) for its verdict on a request's files.
pub const GATE_REQUESTED: &str = "Airlock.GateRequested";

/// The custom topic an event goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Topic {
    /// Internal: drives the `StatusChanged` function.
    StatusChanged,
    /// For organisations' notification Logic Apps.
    Notification,
}

/// An event in Event Grid schema, as published and as received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventGridEvent {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub subject: String,
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    #[serde(default)]
    pub data: Value,
    #[serde(default = "one")]
    pub data_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<String>,
}

fn one() -> String {
    "1".to_string()
}

/// An event waiting in a request's outbox, written in the same conditional write as the
/// status change that caused it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    pub topic: Topic,
    pub event: EventGridEvent,
}

/// Data of `Airlock.StatusChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangedData {
    pub request_id: String,
    pub workspace_id: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub previous_status: Option<Status>,
    pub new_status: Status,
    pub revision: u32,
}
