//! The pure heart of the airlock: what a request is, which status may follow which, where its
//! data lives in each status, who may do what, and which files a workspace accepts.
//!
//! Nothing in here does IO or is async, so every rule is testable with plain tables and the
//! same rules serve the API, the event handlers and the docs.

pub mod access;
pub mod archive;
pub mod events;
pub mod gates;
pub mod lifecycle;
pub mod policy;
pub mod preview;
pub mod registry;
pub mod request;
pub mod request_type;
pub mod stages;
pub mod stats;
pub mod url;
pub mod workspace;

pub use access::{Caller, LinkGrant, Role, SasPermissions, UserAction};
pub use events::{EventGridEvent, PendingEvent, Topic};
pub use lifecycle::{By, Status, TRANSITIONS, Transition};
pub use policy::{FileNameError, WorkspacePolicy};
pub use request::{
    AirlockRequest, Decision, DomainError, FileRecord, HistoryEntry, RequestType, Review,
    ScanVerdict, User,
};
pub use stages::{AccountNames, Stage, StageRole};
pub use workspace::Workspace;
