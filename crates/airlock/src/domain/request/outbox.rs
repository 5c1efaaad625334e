//! The events a status change puts in the request's outbox: `Airlock.StatusChanged` for the
//! airlock itself and `Airlock.Notification` for organisations' notification Logic Apps.

use super::AirlockRequest;
use super::GateRun;
use crate::domain::events::{
    EventGridEvent, GATE_REQUESTED, NOTIFICATION, PendingEvent, STATUS_CHANGED, StatusChangedData,
    Topic,
};
use crate::domain::lifecycle::Status;
use crate::domain::workspace::Workspace;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub fn subject_for(workspace_id: &str, request_id: &str) -> String {
    format!("/workspaces/{workspace_id}/requests/{request_id}")
}

/// An event about `request` for `topic`, in Event Grid schema.
fn event_about(
    request: &AirlockRequest,
    topic: Topic,
    event_type: &str,
    now: DateTime<Utc>,
    data: Value,
) -> PendingEvent {
    PendingEvent {
        topic,
        event: EventGridEvent {
            id: uuid::Uuid::new_v4().to_string(),
            topic: None,
            subject: subject_for(&request.workspace_id, &request.id),
            event_type: event_type.to_string(),
            event_time: now,
            data,
            data_version: "1".to_string(),
            metadata_version: None,
        },
    }
}

/// Email addresses without blanks and `except`, sorted, each once.
fn addresses(v: Vec<String>, except: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = v
        .into_iter()
        .filter(|e| !e.trim().is_empty() && Some(e.as_str()) != except)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The two events every status change produces.
pub fn status_change_events(
    request: &AirlockRequest,
    previous: Option<Status>,
    workspace: &Workspace,
    now: DateTime<Utc>,
) -> Vec<PendingEvent> {
    let data = StatusChangedData {
        request_id: request.id.clone(),
        workspace_id: request.workspace_id.clone(),
        request_type: request.request_type,
        previous_status: previous,
        new_status: request.status,
        revision: request.revision,
    };
    vec![
        event_about(
            request,
            Topic::StatusChanged,
            STATUS_CHANGED,
            now,
            serde_json::to_value(data).expect("plain data serialises"),
        ),
        event_about(
            request,
            Topic::Notification,
            NOTIFICATION,
            now,
            notification_data(request, previous, workspace),
        ),
    ]
}

/// `Airlock.GateRequested` for an external gate: the files as sealed (name, size, sha256),
/// the deadline, and where to answer. Read links are added when the event is published
/// (`app::workflow::flush_outbox`): a link is a credential and is never stored in the record.
pub fn gate_requested_event(
    request: &AirlockRequest,
    run: &GateRun,
    now: DateTime<Utc>,
) -> PendingEvent {
    let files: Vec<Value> = request
        .files
        .iter()
        .map(|f| json!({"name": f.name, "size": f.size, "sha256": f.sha256}))
        .collect();
    event_about(
        request,
        Topic::Notification,
        GATE_REQUESTED,
        now,
        json!({
            "requestId": request.id,
            "workspaceId": request.workspace_id,
            "type": request.request_type,
            "revision": run.revision,
            "gate": run.gate,
            "deadline": run.deadline,
            "answerPath": format!(
                "/api/workspaces/{}/requests/{}/gates/{}",
                request.workspace_id,
                request.id,
                crate::domain::url::encode_component(&run.gate)
            ),
            "files": files,
        }),
    )
}

/// `Airlock.Notification` with `event: "commented"`: a new comment, to the people who should
/// see it (reviewers-only comments to the airlock managers alone; others to the researcher and,
/// while the request is in review, the managers), never to its author.
pub fn comment_event(
    request: &AirlockRequest,
    comment: &super::Comment,
    workspace: &Workspace,
    now: DateTime<Utc>,
) -> PendingEvent {
    let author = comment.by.email.as_deref();
    let everyone = comment.visibility == super::Visibility::Everyone;
    let researcher = if everyone {
        addresses(
            request.created_by.email.clone().into_iter().collect(),
            author,
        )
    } else {
        vec![]
    };
    let managers = if !everyone || request.status == Status::InReview {
        addresses(workspace.contacts.airlock_manager.clone(), author)
    } else {
        vec![]
    };
    event_about(
        request,
        Topic::Notification,
        NOTIFICATION,
        now,
        json!({
            "event": "commented",
            "request": {
                "id": request.id, "type": request.request_type, "title": request.title,
                "status": request.status, "revision": request.revision,
                "createdBy": request.created_by,
            },
            "comment": comment,
            "workspace": {"id": workspace.id, "displayName": workspace.display_name},
            "recipients": {"researcher": researcher, "workspaceOwner": [], "airlockManager": managers},
        }),
    )
}

/// Who hears about a status change: the requester always, airlock managers when a review is
/// needed, owners on blocks and failures. People without an email are skipped.
pub fn recipients(request: &AirlockRequest, workspace: &Workspace) -> Value {
    let clean = |v: Vec<String>| addresses(v, None);
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
            // Incomplete blinded votes are never sent (docs/review.md).
            "reviews": request.shown_reviews(None),
            // What the workspace's gates warned about, for the reviewer to see at a glance.
            "gateWarnings": gate_warnings(request),
        },
        "workspace": {"id": workspace.id, "displayName": workspace.display_name},
        "recipients": recipients(request, workspace),
    })
}

/// Every `warn` finding, with its file, and whether the researcher justified the file.
fn gate_warnings(request: &AirlockRequest) -> Value {
    Value::Array(
        request
            .files
            .iter()
            .flat_map(|f| {
                f.findings
                    .iter()
                    .filter(|x| x.mode == crate::domain::gates::GateMode::Warn)
                    .map(move |x| {
                        json!({
                            "file": f.name, "gate": x.gate, "rule": x.rule, "message": x.message,
                            "location": x.location, "justified": f.justification.is_some(),
                        })
                    })
            })
            .collect(),
    )
}
