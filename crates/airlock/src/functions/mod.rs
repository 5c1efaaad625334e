//! The functions the Functions host invokes, one module each. A handler receives its typed
//! event ([`events`]), asks the domain what it means and calls the ports; it is idempotent
//! under duplicate and out-of-order delivery.

pub mod blob_created;
pub mod events;
pub mod reconcile;
pub mod scan_completed;
pub mod status_changed;
pub mod work;

pub use crate::app::outcome::{FunctionError, Outcome};

/// The one list of function names; `function-manifests/` must hold exactly these folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionName {
    StatusChanged,
    BlobCreated,
    ScanCompleted,
    Api,
    Reconcile,
    /// The queue trigger that does the work events queue (`airlock-work`).
    Work,
}

impl FunctionName {
    pub const ALL: [FunctionName; 6] = [
        FunctionName::StatusChanged,
        FunctionName::BlobCreated,
        FunctionName::ScanCompleted,
        FunctionName::Api,
        FunctionName::Reconcile,
        FunctionName::Work,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FunctionName::StatusChanged => "StatusChanged",
            FunctionName::BlobCreated => "BlobCreated",
            FunctionName::ScanCompleted => "ScanCompleted",
            FunctionName::Api => "Api",
            FunctionName::Reconcile => "Reconcile",
            FunctionName::Work => "Work",
        }
    }

    pub fn parse(s: &str) -> Option<FunctionName> {
        FunctionName::ALL.into_iter().find(|f| f.as_str() == s)
    }
}
