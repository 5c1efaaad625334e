//! The events the airlock publishes (DESIGN §5), in Event Grid schema.

use super::lifecycle::Status;
use super::request::{AirlockRequest, RequestType};
use super::workspace::Workspace;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const STATUS_CHANGED: &str = "Airlock.StatusChanged";
pub const NOTIFICATION: &str = "Airlock.Notification";

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

pub fn subject_for(workspace_id: &str, request_id: &str) -> String {
    format!("/workspaces/{workspace_id}/requests/{request_id}")
}

/// The two events every status change produces.
pub fn status_change_events(
    request: &AirlockRequest,
    previous: Option<Status>,
    workspace: &Workspace,
    now: DateTime<Utc>,
) -> Vec<PendingEvent> {
    let subject = subject_for(&request.workspace_id, &request.id);
    let data = StatusChangedData {
        request_id: request.id.clone(),
        workspace_id: request.workspace_id.clone(),
        request_type: request.request_type,
        previous_status: previous,
        new_status: request.status,
        revision: request.revision,
    };
    let event = |event_type: &str, data: Value| EventGridEvent {
        id: uuid::Uuid::new_v4().to_string(),
        topic: None,
        subject: subject.clone(),
        event_type: event_type.to_string(),
        event_time: now,
        data,
        data_version: "1".to_string(),
        metadata_version: None,
    };
    vec![
        PendingEvent {
            topic: Topic::StatusChanged,
            event: event(
                STATUS_CHANGED,
                serde_json::to_value(data).expect("plain data serialises"),
            ),
        },
        PendingEvent {
            topic: Topic::Notification,
            event: event(
                NOTIFICATION,
                notification_data(request, previous, workspace),
            ),
        },
    ]
}

/// Who hears about a status change: the requester always, airlock managers when a review is
/// needed, owners on blocks and failures. People without an email are skipped.
pub fn recipients(request: &AirlockRequest, workspace: &Workspace) -> Value {
    let clean = |v: Vec<String>| -> Vec<String> {
        let mut v: Vec<String> = v.into_iter().filter(|e| !e.trim().is_empty()).collect();
        v.sort();
        v.dedup();
        v
    };
    let researcher = clean(request.created_by.email.clone().into_iter().collect());
    let managers = if request.status == Status::InReview {
        clean(workspace.contacts.airlock_manager.clone())
    } else {
        vec![]
    };
    let owners = if matches!(request.status, Status::BlockedByScan | Status::Failed) {
        clean(workspace.contacts.workspace_owner.clone())
    } else {
        vec![]
    };
    json!({"researcher": researcher, "workspaceOwner": owners, "airlockManager": managers})
}

fn notification_data(
    request: &AirlockRequest,
    previous: Option<Status>,
    workspace: &Workspace,
) -> Value {
    json!({
        "event": "statusChanged",
        "request": {
            "id": request.id,
            "type": request.request_type,
            "title": request.title,
            "businessJustification": request.business_justification,
            "status": request.status,
            "previousStatus": previous,
            "statusMessage": request.status_message,
            "revision": request.revision,
            "createdBy": request.created_by,
            "createdWhen": request.created_when,
            "updatedBy": request.updated_by,
            "updatedWhen": request.updated_when,
            "files": request.files,
            "reviews": request.reviews,
        },
        "workspace": {"id": workspace.id, "displayName": workspace.display_name},
        "recipients": recipients(request, workspace),
    })
}
