//! Stage routing (DESIGN §3): which storage account holds a request's container in each status.

use super::lifecycle::Status;
use super::request_type::RequestType;

/// The role a stage plays in a request's journey, independent of import/export. Stored in
/// the record (`arrivedIn`) and in work items as `draft`, `in_progress`, ...
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StageRole {
    Draft,
    InProgress,
    Approved,
    Rejected,
    Blocked,
}

impl StageRole {
    pub const ALL: [StageRole; 5] = [
        StageRole::Draft,
        StageRole::InProgress,
        StageRole::Approved,
        StageRole::Rejected,
        StageRole::Blocked,
    ];
}

/// One of the ten stage storage accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    ImportExternal,
    ImportInProgress,
    ImportApproved,
    ImportRejected,
    ImportBlocked,
    ExportInternal,
    ExportInProgress,
    ExportApproved,
    ExportRejected,
    ExportBlocked,
}

/// Whether a stage account belongs to the TRE or to one workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Tre,
    Workspace,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::ImportExternal,
        Stage::ImportInProgress,
        Stage::ImportApproved,
        Stage::ImportRejected,
        Stage::ImportBlocked,
        Stage::ExportInternal,
        Stage::ExportInProgress,
        Stage::ExportApproved,
        Stage::ExportRejected,
        Stage::ExportBlocked,
    ];

    /// The account-name prefix, as in AzureTRE.
    pub fn prefix(self) -> &'static str {
        match self {
            Stage::ImportExternal => "stalimex",
            Stage::ImportInProgress => "stalimip",
            Stage::ImportApproved => "stalimapp",
            Stage::ImportRejected => "stalimrej",
            Stage::ImportBlocked => "stalimblocked",
            Stage::ExportInternal => "stalexint",
            Stage::ExportInProgress => "stalexip",
            Stage::ExportApproved => "stalexapp",
            Stage::ExportRejected => "stalexrej",
            Stage::ExportBlocked => "stalexblocked",
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            Stage::ImportApproved
            | Stage::ExportInternal
            | Stage::ExportInProgress
            | Stage::ExportRejected
            | Stage::ExportBlocked => Scope::Workspace,
            Stage::ImportExternal
            | Stage::ImportInProgress
            | Stage::ImportRejected
            | Stage::ImportBlocked
            | Stage::ExportApproved => Scope::Tre,
        }
    }

    pub fn request_type(self) -> RequestType {
        match self {
            Stage::ImportExternal
            | Stage::ImportInProgress
            | Stage::ImportApproved
            | Stage::ImportRejected
            | Stage::ImportBlocked => RequestType::Import,
            Stage::ExportInternal
            | Stage::ExportInProgress
            | Stage::ExportApproved
            | Stage::ExportRejected
            | Stage::ExportBlocked => RequestType::Export,
        }
    }

    pub fn role(self) -> StageRole {
        match self {
            Stage::ImportExternal | Stage::ExportInternal => StageRole::Draft,
            Stage::ImportInProgress | Stage::ExportInProgress => StageRole::InProgress,
            Stage::ImportApproved | Stage::ExportApproved => StageRole::Approved,
            Stage::ImportRejected | Stage::ExportRejected => StageRole::Rejected,
            Stage::ImportBlocked | Stage::ExportBlocked => StageRole::Blocked,
        }
    }

    pub fn of(request_type: RequestType, role: StageRole) -> Stage {
        *Stage::ALL
            .iter()
            .find(|s| s.request_type() == request_type && s.role() == role)
            .expect("every type x role has exactly one stage")
    }
}

/// Where the request's data should be while it is in `status`; `None` once nothing should
/// remain (cancelled, revoked).
pub fn data_role_for(status: Status) -> Option<StageRole> {
    match status {
        Status::Draft => Some(StageRole::Draft),
        Status::Submitted
        | Status::InReview
        | Status::ApprovalInProgress
        | Status::RejectionInProgress
        | Status::BlockingInProgress
        | Status::Failed => Some(StageRole::InProgress),
        Status::Approved => Some(StageRole::Approved),
        Status::Rejected => Some(StageRole::Rejected),
        Status::BlockedByScan => Some(StageRole::Blocked),
        Status::Cancelled | Status::Revoked => None,
    }
}

/// The stage a transitional status is moving the files to, and where they come from.
pub fn movement_for(status: Status) -> Option<(StageRole, StageRole)> {
    match status {
        Status::Submitted => Some((StageRole::Draft, StageRole::InProgress)),
        Status::ApprovalInProgress => Some((StageRole::InProgress, StageRole::Approved)),
        Status::RejectionInProgress => Some((StageRole::InProgress, StageRole::Rejected)),
        Status::BlockingInProgress => Some((StageRole::InProgress, StageRole::Blocked)),
        Status::Draft
        | Status::InReview
        | Status::Approved
        | Status::Rejected
        | Status::BlockedByScan
        | Status::Cancelled
        | Status::Failed
        | Status::Revoked => None,
    }
}

/// The transitional status whose data movement brings files into `role` (the inverse of
/// [`movement_for`]); `None` for the draft, where files arrive by upload.
pub fn status_moving_into(role: StageRole) -> Option<Status> {
    Status::transitional()
        .into_iter()
        .find(|s| movement_for(*s).is_some_and(|(_, to)| to == role))
}

/// Azure's limit on a storage account name.
pub const MAX_ACCOUNT_NAME: usize = 24;
/// The longest TRE id every TRE-level account name fits with (`stalimblocked` + 11 = 24).
pub const MAX_TRE_ID: usize = 11;
/// The longest workspace short id every workspace account name fits with
/// (`stalexblocked` + `ws` + 9 = 24). Terraform validates the same limits.
pub const MAX_WORKSPACE_SHORT_ID: usize = 9;

/// Turns stages into account names and back: `{prefix}{treId}` for TRE accounts,
/// `{prefix}ws{shortId}` for workspace accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountNames {
    pub tre_id: String,
}

/// What an account name tells about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAccount {
    pub stage: Stage,
    /// The workspace short id for workspace accounts.
    pub workspace_short_id: Option<String>,
}

impl AccountNames {
    pub fn new(tre_id: impl Into<String>) -> Self {
        AccountNames {
            tre_id: tre_id.into(),
        }
    }

    pub fn account(&self, stage: Stage, workspace_short_id: &str) -> String {
        match stage.scope() {
            Scope::Tre => format!("{}{}", stage.prefix(), self.tre_id),
            Scope::Workspace => format!("{}ws{}", stage.prefix(), workspace_short_id),
        }
    }

    /// The Function App's own storage account (`AzureWebJobsStorage`, the `Work` queue, and
    /// the `deadletters` container Event Grid writes undeliverable events to), as
    /// `infra/azure` names it.
    pub fn host_account(&self) -> String {
        format!("stalfunc{}", self.tre_id)
    }

    /// Recognises one of our stage accounts; anything else is `None`.
    pub fn parse(&self, account: &str) -> Option<ParsedAccount> {
        // Longest prefix first, so `stalimblocked...` is never read as another stage.
        let mut stages = Stage::ALL;
        stages.sort_by_key(|s| std::cmp::Reverse(s.prefix().len()));
        for stage in stages {
            let Some(rest) = account.strip_prefix(stage.prefix()) else {
                continue;
            };
            match stage.scope() {
                Scope::Tre if rest == self.tre_id => {
                    return Some(ParsedAccount {
                        stage,
                        workspace_short_id: None,
                    });
                }
                Scope::Workspace => {
                    if let Some(short) = rest.strip_prefix("ws").filter(|s| !s.is_empty()) {
                        return Some(ParsedAccount {
                            stage,
                            workspace_short_id: Some(short.to_string()),
                        });
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn each_stage_but_the_draft_is_filled_by_exactly_one_status() {
        assert_eq!(status_moving_into(StageRole::Draft), None);
        for role in StageRole::ALL
            .into_iter()
            .filter(|r| *r != StageRole::Draft)
        {
            let status = status_moving_into(role).expect("a status fills it");
            assert_eq!(movement_for(status).map(|(_, to)| to), Some(role));
            let fillers = Status::transitional()
                .into_iter()
                .filter(|s| movement_for(*s).is_some_and(|(_, to)| to == role))
                .count();
            assert_eq!(fillers, 1, "{role:?}");
        }
    }

    use super::*;
    use RequestType::*;
    use StageRole::*;

    #[test]
    fn routing_table_matches_design() {
        let table = [
            (Import, Draft, "stalimex", Scope::Tre),
            (Import, InProgress, "stalimip", Scope::Tre),
            (Import, Approved, "stalimapp", Scope::Workspace),
            (Import, Rejected, "stalimrej", Scope::Tre),
            (Import, Blocked, "stalimblocked", Scope::Tre),
            (Export, Draft, "stalexint", Scope::Workspace),
            (Export, InProgress, "stalexip", Scope::Workspace),
            (Export, Approved, "stalexapp", Scope::Tre),
            (Export, Rejected, "stalexrej", Scope::Workspace),
            (Export, Blocked, "stalexblocked", Scope::Workspace),
        ];
        for (ty, role, prefix, scope) in table {
            let stage = Stage::of(ty, role);
            assert_eq!(stage.prefix(), prefix);
            assert_eq!(stage.scope(), scope, "{prefix}");
            assert_eq!(stage.role(), role);
        }
    }

    #[test]
    fn status_to_data_location() {
        let table = [
            (Status::Draft, Some(Draft)),
            (Status::Submitted, Some(InProgress)),
            (Status::InReview, Some(InProgress)),
            (Status::ApprovalInProgress, Some(InProgress)),
            (Status::Approved, Some(Approved)),
            (Status::RejectionInProgress, Some(InProgress)),
            (Status::Rejected, Some(Rejected)),
            (Status::BlockingInProgress, Some(InProgress)),
            (Status::BlockedByScan, Some(Blocked)),
            (Status::Cancelled, None),
            (Status::Failed, Some(InProgress)),
            (Status::Revoked, None),
        ];
        assert_eq!(table.len(), Status::ALL.len());
        for (status, role) in table {
            assert_eq!(data_role_for(status), role, "{status}");
        }
    }

    #[test]
    fn movements_go_forward() {
        for status in Status::ALL {
            match movement_for(status) {
                Some((from, to)) => {
                    assert!(status.is_transitional(), "{status}");
                    assert_ne!(from, to);
                }
                None => assert!(!status.is_transitional(), "{status}"),
            }
        }
    }

    #[test]
    fn account_names_round_trip() {
        let names = AccountNames::new("mytre");
        for stage in Stage::ALL {
            let account = names.account(stage, "ab12");
            let parsed = names.parse(&account).expect(&account);
            assert_eq!(parsed.stage, stage);
            match stage.scope() {
                Scope::Tre => assert_eq!(parsed.workspace_short_id, None),
                Scope::Workspace => assert_eq!(parsed.workspace_short_id.as_deref(), Some("ab12")),
            }
        }
        assert_eq!(names.account(Stage::ImportInProgress, "x"), "stalimipmytre");
        assert_eq!(
            names.account(Stage::ExportInternal, "ab12"),
            "stalexintwsab12"
        );
    }

    #[test]
    fn foreign_accounts_are_not_ours() {
        let names = AccountNames::new("mytre");
        for account in [
            "",
            "stalimip",
            "stalimipothertre",
            "stalexintws",
            "somethingelse",
            "stalexint",
        ] {
            assert_eq!(names.parse(account), None, "{account}");
        }
    }
}

#[cfg(test)]
mod name_length_tests {
    use super::*;

    /// Every account name fits Azure's 24 characters at the longest ids allowed, and one
    /// character more would not fit some stage (the limits are as loose as they can be).
    #[test]
    fn the_longest_ids_fit_every_account_name() {
        let tre = "t".repeat(MAX_TRE_ID);
        let short = "w".repeat(MAX_WORKSPACE_SHORT_ID);
        let names = AccountNames::new(tre.clone());
        for stage in Stage::ALL {
            let name = names.account(stage, &short);
            assert!(name.len() <= MAX_ACCOUNT_NAME, "{name}");
        }
        let longer = AccountNames::new(format!("{tre}t"));
        assert!(
            Stage::ALL
                .iter()
                .any(|s| longer.account(*s, &format!("{short}w")).len() > MAX_ACCOUNT_NAME)
        );
    }
}
