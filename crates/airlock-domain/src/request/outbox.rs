//! The events a status change puts in the request's outbox: `Airlock.StatusChanged` for the
//! airlock itself and `Airlock.Notification` for organisations' notification Logic Apps.

use super::AirlockRequest;
use super::GateRun;
use super::{Comment, Review, User};
use crate::events::{
    EventGridEvent, GATE_REQUESTED, NOTIFICATION, PendingEvent, STATUS_CHANGED, StatusChangedData,
    Topic,
};
use crate::gates::GateMode;
use crate::lifecycle::Status;
use crate::request::RequestType;
use crate::workspace::Workspace;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `data` of `Airlock.GateRequested`: the question to an external gate (docs/gates.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateRequestedData {
    pub request_id: String,
    pub workspace_id: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub revision: u32,
    pub gate: String,
    /// After this an answer is refused and the request fails.
    pub deadline: DateTime<Utc>,
    /// Where the gate answers (`POST`, role `AirlockGate`).
    pub answer_path: String,
    pub files: Vec<GateFile>,
}

/// A file a gate is asked about, as sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateFile {
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    /// A read link to the sealed copy until the deadline: added as the event is published
    /// (`app::record`), never stored, since a link is a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `data` of `Airlock.Notification` (docs/notifications.md), by `event`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum NotificationData {
    /// A status change: everything a message about it needs.
    StatusChanged {
        request: NotifiedRequest,
        workspace: NotifiedWorkspace,
        recipients: Recipients,
    },
    /// A new comment.
    Commented {
        request: CommentedRequest,
        comment: Comment,
        workspace: NotifiedWorkspace,
        recipients: Recipients,
    },
    /// A request has waited in review past the workspace's deadline (`escalated`: past
    /// twice it, and the owners are told too).
    #[serde(rename_all = "camelCase")]
    ReviewOverdue {
        request: CommentedRequest,
        workspace: NotifiedWorkspace,
        waiting_hours: i64,
        deadline_hours: u32,
        escalated: bool,
        recipients: Recipients,
    },
}

/// The request as a status-change notification shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifiedRequest {
    pub id: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub title: String,
    pub business_justification: String,
    pub status: Status,
    /// None when the request was just created.
    pub previous_status: Option<Status>,
    pub status_message: Option<String>,
    pub revision: u32,
    pub created_by: User,
    pub created_when: DateTime<Utc>,
    pub updated_by: User,
    pub updated_when: DateTime<Utc>,
    pub files: Vec<super::FileView>,
    /// Incomplete blinded votes are never sent (docs/review.md).
    pub reviews: Vec<Review>,
    /// What the workspace's gates warned about, for the reviewer to see at a glance.
    pub gate_warnings: Vec<GateWarning>,
}

/// A `warn` finding with its file, and whether the researcher justified the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateWarning {
    pub file: String,
    pub gate: String,
    pub rule: String,
    pub message: String,
    pub location: Option<String>,
    pub justified: bool,
    /// Reviewers' overrides of this warning in the revision's reviews the notification may
    /// show (never a blinded vote): who, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<OverrideNote>,
}

/// A reviewer's override of a warning, as a notification shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverrideNote {
    pub by: String,
    pub rationale: String,
}

/// The request as a comment notification shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentedRequest {
    pub id: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub title: String,
    pub status: Status,
    pub revision: u32,
    pub created_by: User,
}

impl From<&AirlockRequest> for CommentedRequest {
    fn from(request: &AirlockRequest) -> Self {
        CommentedRequest {
            id: request.id.clone(),
            request_type: request.request_type,
            title: request.title.clone(),
            status: request.status,
            revision: request.revision,
            created_by: request.created_by.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifiedWorkspace {
    pub id: String,
    pub display_name: String,
}

impl From<&Workspace> for NotifiedWorkspace {
    fn from(w: &Workspace) -> Self {
        NotifiedWorkspace {
            id: w.id.clone(),
            display_name: w.display_name.clone(),
        }
    }
}

/// Who is to hear about it, by role: email addresses, each once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipients {
    pub researcher: Vec<String>,
    pub workspace_owner: Vec<String>,
    pub airlock_manager: Vec<String>,
}

fn data_of(data: impl Serialize) -> Value {
    serde_json::to_value(data).expect("plain data serialises")
}

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
/// (`app::record::flush_outbox`): a link is a credential and is never stored in the record.
pub fn gate_requested_event(
    request: &AirlockRequest,
    run: &GateRun,
    now: DateTime<Utc>,
) -> PendingEvent {
    let data = GateRequestedData {
        request_id: request.id.clone(),
        workspace_id: request.workspace_id.clone(),
        request_type: request.request_type,
        revision: run.revision,
        gate: run.gate.clone(),
        deadline: run.deadline,
        answer_path: format!(
            "/api/workspaces/{}/requests/{}/gates/{}",
            request.workspace_id,
            request.id,
            crate::url::encode_component(&run.gate)
        ),
        files: request
            .files
            .iter()
            .map(|f| GateFile {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                url: None,
            })
            .collect(),
    };
    event_about(
        request,
        Topic::Notification,
        GATE_REQUESTED,
        now,
        data_of(data),
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
        data_of(NotificationData::Commented {
            request: CommentedRequest::from(request),
            comment: comment.clone(),
            workspace: workspace.into(),
            recipients: Recipients {
                researcher,
                workspace_owner: vec![],
                airlock_manager: managers,
            },
        }),
    )
}

/// `Airlock.Notification` with `event: "reviewOverdue"`: to the airlock managers, and with an
/// escalation to the workspace's owners as well.
pub fn review_overdue_event(
    request: &AirlockRequest,
    due: super::Overdue,
    waiting_hours: i64,
    workspace: &Workspace,
    now: DateTime<Utc>,
) -> PendingEvent {
    let escalated = due == super::Overdue::Escalation;
    event_about(
        request,
        Topic::Notification,
        NOTIFICATION,
        now,
        data_of(NotificationData::ReviewOverdue {
            request: CommentedRequest::from(request),
            workspace: workspace.into(),
            waiting_hours,
            deadline_hours: workspace.policy.review_deadline_hours,
            escalated,
            recipients: Recipients {
                researcher: vec![],
                workspace_owner: if escalated {
                    addresses(workspace.contacts.workspace_owner.clone(), None)
                } else {
                    vec![]
                },
                airlock_manager: addresses(workspace.contacts.airlock_manager.clone(), None),
            },
        }),
    )
}

/// Who hears about a status change: the requester always, airlock managers when a review is
/// needed, owners on blocks and failures. People without an email are skipped.
pub fn recipients(request: &AirlockRequest, workspace: &Workspace) -> Recipients {
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
    Recipients {
        researcher,
        workspace_owner: owners,
        airlock_manager: managers,
    }
}

fn notification_data(
    request: &AirlockRequest,
    previous: Option<Status>,
    workspace: &Workspace,
) -> Value {
    data_of(NotificationData::StatusChanged {
        request: NotifiedRequest {
            id: request.id.clone(),
            request_type: request.request_type,
            title: request.title.clone(),
            business_justification: request.business_justification.clone(),
            status: request.status,
            previous_status: previous,
            status_message: request.status_message.clone(),
            revision: request.revision,
            created_by: request.created_by.clone(),
            created_when: request.created_when,
            updated_by: request.updated_by.clone(),
            updated_when: request.updated_when,
            files: request.files.iter().map(super::FileView::from).collect(),
            reviews: request.shown_reviews(None),
            gate_warnings: gate_warnings(request),
        },
        workspace: workspace.into(),
        recipients: recipients(request, workspace),
    })
}

/// Every `warn` finding, with its file, whether the researcher justified the file, and the
/// overrides of it that may be shown.
fn gate_warnings(request: &AirlockRequest) -> Vec<GateWarning> {
    let reviews: Vec<Review> = request
        .shown_reviews(None)
        .into_iter()
        .filter(|r| r.revision == request.revision)
        .collect();
    let overridden = |file: &str, rule: &str| -> Vec<OverrideNote> {
        reviews
            .iter()
            .flat_map(|r| {
                r.files
                    .iter()
                    .filter(|d| d.name == file)
                    .flat_map(|d| &d.overrides)
                    .filter(|o| o.rule == rule)
                    .map(|o| OverrideNote {
                        by: r.reviewer.name.clone(),
                        rationale: o.rationale.clone(),
                    })
            })
            .collect()
    };
    request
        .files
        .iter()
        .flat_map(|f| {
            f.findings
                .iter()
                .filter(|x| x.mode == GateMode::Warn)
                .map(move |x| GateWarning {
                    file: f.name.clone(),
                    gate: x.gate.clone(),
                    rule: x.rule.clone(),
                    message: x.message.clone(),
                    location: x.location.clone(),
                    justified: f.justification.is_some(),
                    overridden: overridden(&f.name, &x.rule),
                })
        })
        .collect()
}
