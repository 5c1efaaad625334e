//! Who may do what (DESIGN §1, §3): roles, the actions a caller may take on a request now,
//! and the link permission table.

use super::lifecycle::{self, Status};
use super::request::{AirlockRequest, User};
use super::request_type::RequestType;
use super::stages::{StageRole, data_role_for};
use serde::{Deserialize, Serialize};

/// Workspace app roles as they appear in the token's `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    WorkspaceResearcher,
    WorkspaceOwner,
    AirlockManager,
    #[serde(rename = "TREAdmin")]
    TreAdmin,
    /// A service identity that answers for an external gate (and may do nothing else).
    AirlockGate,
    /// Oversight: reads every request of the workspace, its trail, gate report and comments
    /// (reviewers-only ones included), never the data, and may do nothing else; each request
    /// it reads is on that request's record.
    AirlockAuditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "WorkspaceResearcher" => Some(Role::WorkspaceResearcher),
            "WorkspaceOwner" => Some(Role::WorkspaceOwner),
            "AirlockManager" => Some(Role::AirlockManager),
            "TREAdmin" => Some(Role::TreAdmin),
            "AirlockGate" => Some(Role::AirlockGate),
            "AirlockAuditor" => Some(Role::AirlockAuditor),
            _ => None,
        }
    }
}

/// An authenticated person and the roles their token gives them in one workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: User,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Holds at least one of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Reviews this request: an airlock manager or TRE admin who did not contribute to it.
    /// Reviewers see comments meant for reviewers only and may write them.
    pub fn reviews(&self, request: &AirlockRequest) -> bool {
        (self.has(Role::AirlockManager) || self.has(Role::TreAdmin))
            && !request.is_contributor(&self.user.id)
    }

    /// Reads as an auditor: the auditor role and no other that reads requests, so what it
    /// reads is put on the record as an auditor's read.
    pub fn audits(&self) -> bool {
        self.has(Role::AirlockAuditor)
            && !self.has_any(&[
                Role::WorkspaceResearcher,
                Role::WorkspaceOwner,
                Role::AirlockManager,
                Role::TreAdmin,
            ])
    }

    /// Sees the comments meant for reviewers only: the request's reviewers, and auditors.
    pub fn sees_reviewer_comments(&self, request: &AirlockRequest) -> bool {
        self.reviews(request) || self.has(Role::AirlockAuditor)
    }

    fn is_creator(&self, request: &AirlockRequest) -> bool {
        self.user.id == request.created_by.id
    }

    /// Researchers act on their own requests; owners on every request of the workspace.
    fn is_requester(&self, request: &AirlockRequest) -> bool {
        self.has(Role::WorkspaceOwner)
            || (self.has(Role::WorkspaceResearcher) && self.is_creator(request))
    }
}

/// What a caller can do to a request, as listed in `allowedUserActions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserAction {
    Submit,
    Cancel,
    Review,
    Revoke,
    Link,
    /// Justify a file's gate warnings (the researcher, in review).
    Justify,
    /// Comment on the request or a file (requesters and reviewers, in any status).
    Comment,
}

impl UserAction {
    pub const ALL: [UserAction; 7] = [
        UserAction::Submit,
        UserAction::Cancel,
        UserAction::Review,
        UserAction::Revoke,
        UserAction::Link,
        UserAction::Justify,
        UserAction::Comment,
    ];
}

/// May the caller create requests in the workspace?
pub fn may_create(caller: &Caller) -> Result<(), String> {
    if caller.has(Role::WorkspaceResearcher) || caller.has(Role::WorkspaceOwner) {
        Ok(())
    } else {
        Err("only workspace researchers and owners may create airlock requests".into())
    }
}

/// May the caller read the workspace's limits? Anyone with an airlock role in it (a gate's
/// service identity has none).
pub fn may_read_limits(caller: &Caller) -> Result<(), String> {
    if caller.has_any(&[
        Role::WorkspaceResearcher,
        Role::WorkspaceOwner,
        Role::AirlockManager,
        Role::TreAdmin,
        Role::AirlockAuditor,
    ]) {
        Ok(())
    } else {
        Err("you have no airlock role in this workspace".into())
    }
}

/// May the caller read the workspace's statistics? Those who oversee it: owners, airlock
/// managers, TRE admins and auditors (a researcher sees their own requests, not the service's).
pub fn may_read_stats(caller: &Caller) -> Result<(), String> {
    if caller.has_any(&[
        Role::WorkspaceOwner,
        Role::AirlockManager,
        Role::TreAdmin,
        Role::AirlockAuditor,
    ]) {
        Ok(())
    } else {
        Err(
            "only workspace owners, airlock managers, TRE admins and auditors read the statistics"
                .into(),
        )
    }
}

/// May the caller answer for an external gate? Its service identity only.
pub fn may_answer_gate(caller: &Caller) -> Result<(), String> {
    if caller.has(Role::AirlockGate) {
        Ok(())
    } else {
        Err(
            "only an external gate's service identity (role AirlockGate) may answer for a gate"
                .into(),
        )
    }
}

/// Which of a workspace's requests a caller's list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListScope {
    /// Every request (owners, airlock managers, TRE admins).
    All,
    /// The caller's own (researchers).
    Own,
}

/// What the workspace's list shows the caller; `Err` is a 403 reason.
pub fn list_scope(caller: &Caller) -> Result<ListScope, String> {
    if caller.has(Role::WorkspaceOwner)
        || caller.has(Role::AirlockManager)
        || caller.has(Role::TreAdmin)
        || caller.has(Role::AirlockAuditor)
    {
        Ok(ListScope::All)
    } else if caller.has(Role::WorkspaceResearcher) {
        Ok(ListScope::Own)
    } else {
        Err("you have no airlock role in this workspace".into())
    }
}

/// May the caller ask for the requests awaiting their review? Airlock managers only.
pub fn may_list_awaiting_review(roles: &[Role]) -> Result<(), String> {
    if roles.contains(&Role::AirlockManager) {
        Ok(())
    } else {
        Err("only airlock managers have requests awaiting their review".into())
    }
}

/// May the caller see this request at all?
pub fn may_read(caller: &Caller, request: &AirlockRequest) -> Result<(), String> {
    let ok = caller.has(Role::WorkspaceOwner)
        || caller.has(Role::AirlockManager)
        || caller.has(Role::TreAdmin)
        || caller.has(Role::AirlockAuditor)
        || (caller.has(Role::WorkspaceResearcher)
            && (caller.is_creator(request) || request.status == Status::Approved));
    if ok {
        Ok(())
    } else {
        Err("you may only see your own requests and approved ones".into())
    }
}

/// Role check for an action, independent of the request's status. `Err` is a 403 reason.
pub fn may(caller: &Caller, action: UserAction, request: &AirlockRequest) -> Result<(), String> {
    may_read(caller, request)?;
    match action {
        UserAction::Submit | UserAction::Cancel => {
            if caller.is_requester(request) {
                Ok(())
            } else {
                Err(format!(
                    "only the creator of the request or a workspace owner may {}",
                    if action == UserAction::Submit {
                        "submit it"
                    } else {
                        "cancel it"
                    }
                ))
            }
        }
        UserAction::Review => {
            if !caller.has(Role::AirlockManager) {
                Err("only airlock managers may review".into())
            } else if request.is_contributor(&caller.user.id) {
                Err(super::request::NOT_INDEPENDENT.into())
            } else {
                Ok(())
            }
        }
        UserAction::Revoke => {
            if caller.has(Role::AirlockManager) {
                Ok(())
            } else {
                Err("only airlock managers may revoke an approval".into())
            }
        }
        UserAction::Justify => {
            if request.is_contributor(&caller.user.id)
                && (caller.has(Role::WorkspaceResearcher) || caller.has(Role::WorkspaceOwner))
            {
                Ok(())
            } else {
                Err("only whoever created, submitted or uploaded to the request may justify its files".into())
            }
        }
        UserAction::Comment => {
            let requester = caller.is_requester(request)
                || (request.is_contributor(&caller.user.id)
                    && caller.has(Role::WorkspaceResearcher));
            if requester || caller.has(Role::AirlockManager) {
                Ok(())
            } else {
                Err("only the request's researchers, the workspace's owners and airlock managers may comment".into())
            }
        }
        UserAction::Link => link_grant(caller, request)
            .map(|_| ())
            .or_else(|e| match e {
                LinkRefusal::Forbidden(m) => Err(m),
                LinkRefusal::Unavailable(_) => Ok(()),
            }),
    }
}

/// SAS permissions in their canonical order (`racwdl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SasPermissions {
    pub read: bool,
    pub add: bool,
    pub create: bool,
    pub write: bool,
    pub delete: bool,
    pub list: bool,
}

impl SasPermissions {
    pub const UPLOAD: SasPermissions = SasPermissions {
        read: false,
        add: true,
        create: true,
        write: true,
        delete: true,
        list: true,
    };
    pub const READ: SasPermissions = SasPermissions {
        read: true,
        add: false,
        create: false,
        write: false,
        delete: false,
        list: true,
    };

    /// Reads named blobs, lists nothing (an external gate's links).
    pub const READ_ONLY: SasPermissions = SasPermissions {
        read: true,
        add: false,
        create: false,
        write: false,
        delete: false,
        list: false,
    };

    pub fn as_sas(&self) -> String {
        [
            (self.read, 'r'),
            (self.add, 'a'),
            (self.create, 'c'),
            (self.write, 'w'),
            (self.delete, 'd'),
            (self.list, 'l'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    pub fn parse(s: &str) -> SasPermissions {
        SasPermissions {
            read: s.contains('r'),
            add: s.contains('a'),
            create: s.contains('c'),
            write: s.contains('w'),
            delete: s.contains('d'),
            list: s.contains('l'),
        }
    }
}

/// A link the caller may have: which stage's container, with which permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkGrant {
    pub stage: StageRole,
    pub permissions: SasPermissions,
}

/// Why no link: the caller's role (403) or the request's status (400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    Forbidden(String),
    Unavailable(String),
}

/// The link permission table of DESIGN §3.
pub fn link_grant(caller: &Caller, request: &AirlockRequest) -> Result<LinkGrant, LinkRefusal> {
    may_read(caller, request).map_err(LinkRefusal::Forbidden)?;
    if caller.audits() {
        return Err(LinkRefusal::Forbidden(
            "an airlock auditor reads the record, never the data".into(),
        ));
    }
    let stage = data_role_for(request.status);
    match request.status {
        Status::Draft => {
            if caller.is_requester(request) {
                Ok(LinkGrant {
                    stage: StageRole::Draft,
                    permissions: SasPermissions::UPLOAD,
                })
            } else {
                Err(LinkRefusal::Forbidden(
                    "only the creator or a workspace owner may upload to a draft".into(),
                ))
            }
        }
        Status::InReview => {
            if caller.has(Role::AirlockManager) || caller.has(Role::WorkspaceOwner) {
                Ok(LinkGrant {
                    stage: stage.expect("in_review has data"),
                    permissions: SasPermissions::READ,
                })
            } else {
                // Most often a researcher who wants to upload one more file: say why not,
                // and what to do instead.
                Err(LinkRefusal::Forbidden(
                    "the request is in review: its files are sealed and nothing more can be uploaded to it (only airlock managers and workspace owners may read them now). To change its files, ask a reviewer to request changes, or cancel it and send the files in a new request".into(),
                ))
            }
        }
        Status::Approved => {
            // Imported data is for the whole workspace; an export is the creator's to take
            // out (and the owners', who answer for the workspace), not every researcher's.
            let may_download = match request.request_type {
                RequestType::Import => {
                    caller.has(Role::WorkspaceResearcher) || caller.has(Role::WorkspaceOwner)
                }
                RequestType::Export => {
                    caller.is_creator(request) || caller.has(Role::WorkspaceOwner)
                }
            };
            if may_download {
                Ok(LinkGrant {
                    stage: StageRole::Approved,
                    permissions: SasPermissions::READ,
                })
            } else {
                Err(LinkRefusal::Forbidden(match request.request_type {
                    RequestType::Import => {
                        "only the workspace's researchers and owners may download an approved import"
                    }
                    RequestType::Export => {
                        "only the creator of an export and the workspace's owners may download it"
                    }
                }
                .into()))
            }
        }
        Status::Submitted
        | Status::ApprovalInProgress
        | Status::RejectionInProgress
        | Status::BlockingInProgress => Err(LinkRefusal::Unavailable(format!(
            "the request is being processed ({}); try again when it is in review or approved",
            request.status
        ))),
        Status::Cancelled => Err(LinkRefusal::Unavailable(
            "the request was cancelled; its files are deleted".into(),
        )),
        Status::Revoked => Err(LinkRefusal::Unavailable(
            "the approval was revoked; its files are deleted".into(),
        )),
        Status::Rejected | Status::BlockedByScan | Status::Failed => {
            Err(LinkRefusal::Unavailable(format!(
                "the request is {}: its files are not available",
                request.status
            )))
        }
    }
}

/// Actions the caller may take on the request right now (role and status both allow).
pub fn allowed_user_actions(caller: &Caller, request: &AirlockRequest) -> Vec<UserAction> {
    UserAction::ALL
        .into_iter()
        .filter(|&action| may(caller, action, request).is_ok())
        .filter(|&action| match action {
            UserAction::Submit => request.status == Status::Draft,
            UserAction::Cancel => {
                lifecycle::transition(request.status, Status::Cancelled).is_some()
            }
            UserAction::Review => {
                request.status == Status::InReview && request.may_still_review(&caller.user.id)
            }
            UserAction::Revoke => request.status == Status::Approved,
            UserAction::Link => link_grant(caller, request).is_ok(),
            UserAction::Comment => true,
            UserAction::Justify => {
                request.status == Status::InReview
                    && request.files.iter().any(|f| {
                        f.findings
                            .iter()
                            .any(|x| x.mode == super::gates::GateMode::Warn)
                    })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn workspace_level_checks_by_role() {
        let caller = |roles: &[Role]| Caller {
            user: User {
                id: "u".into(),
                name: "u".into(),
                email: None,
            },
            roles: roles.to_vec(),
        };
        use Role::*;
        // (roles, limits, answer a gate, list scope, awaiting review)
        type Row<'a> = (&'a [Role], bool, bool, Option<ListScope>, bool);
        let table: [Row; 9] = [
            (
                &[WorkspaceResearcher],
                true,
                false,
                Some(ListScope::Own),
                false,
            ),
            (&[WorkspaceOwner], true, false, Some(ListScope::All), false),
            (&[AirlockManager], true, false, Some(ListScope::All), true),
            (&[TreAdmin], true, false, Some(ListScope::All), false),
            (&[AirlockGate], false, true, None, false),
            (&[AirlockAuditor], true, false, Some(ListScope::All), false),
            (
                &[AirlockAuditor, AirlockGate],
                true,
                true,
                Some(ListScope::All),
                false,
            ),
            (&[], false, false, None, false),
            (
                &[WorkspaceResearcher, AirlockManager],
                true,
                false,
                Some(ListScope::All),
                true,
            ),
        ];
        for (roles, limits, gate, scope, awaiting) in table {
            let c = caller(roles);
            assert_eq!(may_read_limits(&c).is_ok(), limits, "{roles:?}");
            assert_eq!(may_answer_gate(&c).is_ok(), gate, "{roles:?}");
            assert_eq!(list_scope(&c).ok(), scope, "{roles:?}");
            assert_eq!(
                may_list_awaiting_review(roles).is_ok(),
                awaiting,
                "{roles:?}"
            );
        }
    }

    use super::*;
    use crate::request::{Ctx, RequestType};
    use crate::workspace::Workspace;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
            email: None,
        }
    }

    fn request_in(status: Status) -> AirlockRequest {
        let ws = Workspace {
            id: "ws1".into(),
            display_name: "ws".into(),
            short_id: "ws1".into(),
            airlock_enabled: true,
            token_audience: "api://ws1".into(),
            policy: Default::default(),
            contacts: Default::default(),
        };
        let ctx = Ctx {
            now: chrono::Utc::now(),
            workspace: &ws,
        };
        let mut r = AirlockRequest::create(
            "r1".into(),
            RequestType::Export,
            "t".into(),
            "j".into(),
            user("creator"),
            &ctx,
        )
        .unwrap();
        r.status = status;
        r
    }

    use Role::*;
    use Status::*;
    use UserAction::*;

    /// (role, is the creator, action, statuses in which the action is offered), for an
    /// export. Written out by hand from DESIGN §1-§3; every other cell must be refused.
    const TABLE: &[(Role, bool, UserAction, &[Status])] = &[
        (WorkspaceResearcher, true, Submit, &[Draft]),
        (WorkspaceResearcher, true, Cancel, &[Draft, InReview]),
        (WorkspaceResearcher, true, Review, &[]),
        (WorkspaceResearcher, true, Revoke, &[]),
        (WorkspaceResearcher, true, Link, &[Draft, Approved]),
        (WorkspaceResearcher, false, Submit, &[]),
        (WorkspaceResearcher, false, Cancel, &[]),
        (WorkspaceResearcher, false, Review, &[]),
        (WorkspaceResearcher, false, Revoke, &[]),
        // An approved export is its creator's (and the owners') to take out, not every
        // researcher's; an approved import is everyone's (`approved_imports_are_the_workspaces`).
        (WorkspaceResearcher, false, Link, &[]),
        (WorkspaceOwner, false, Submit, &[Draft]),
        (WorkspaceOwner, false, Cancel, &[Draft, InReview]),
        (WorkspaceOwner, false, Review, &[]),
        (WorkspaceOwner, false, Revoke, &[]),
        (WorkspaceOwner, false, Link, &[Draft, InReview, Approved]),
        (AirlockManager, false, Submit, &[]),
        (AirlockManager, false, Cancel, &[]),
        (AirlockManager, false, Review, &[InReview]),
        (AirlockManager, false, Revoke, &[Approved]),
        (AirlockManager, false, Link, &[InReview]),
        (AirlockManager, true, Review, &[]),
        (AirlockManager, true, Revoke, &[Approved]),
        (TreAdmin, false, Submit, &[]),
        (TreAdmin, false, Cancel, &[]),
        (TreAdmin, false, Review, &[]),
        (TreAdmin, false, Revoke, &[]),
        (TreAdmin, false, Link, &[]),
        // Offered only in review, and only when a gate warned (`justify_needs_a_warning`).
        (WorkspaceResearcher, true, Justify, &[]),
        (WorkspaceResearcher, false, Justify, &[]),
        (AirlockManager, false, Justify, &[]),
        // Comments: the request's people, in every status.
        (WorkspaceResearcher, true, Comment, &Status::ALL),
        (WorkspaceResearcher, false, Comment, &[]),
        (WorkspaceOwner, false, Comment, &Status::ALL),
        (AirlockManager, false, Comment, &Status::ALL),
        (TreAdmin, false, Comment, &[]),
        // Auditors read; they never act, take a link or comment.
        (AirlockAuditor, false, Submit, &[]),
        (AirlockAuditor, false, Cancel, &[]),
        (AirlockAuditor, false, Review, &[]),
        (AirlockAuditor, false, Revoke, &[]),
        (AirlockAuditor, false, Link, &[]),
        (AirlockAuditor, false, Justify, &[]),
        (AirlockAuditor, false, Comment, &[]),
    ];

    #[test]
    fn justify_needs_a_warning() {
        use crate::gates::{Finding, GateMode};
        let mut r = request_in(InReview);
        r.files
            .push(serde_json::from_value(serde_json::json!({"name": "t.csv", "size": 1})).unwrap());
        let creator = Caller {
            user: user("creator"),
            roles: vec![WorkspaceResearcher],
        };
        let other = Caller {
            user: user("someone"),
            roles: vec![WorkspaceResearcher, AirlockManager],
        };
        assert!(
            !allowed_user_actions(&creator, &r).contains(&Justify),
            "nothing to justify"
        );
        r.files[0].findings.push(Finding {
            gate: "sdc".into(),
            mode: GateMode::Warn,
            rule: "small_count".into(),
            message: "count 3".into(),
            location: None,
            cell: None,
            remediation: None,
            needs_justification: true,
        });
        assert!(allowed_user_actions(&creator, &r).contains(&Justify));
        assert!(!allowed_user_actions(&other, &r).contains(&Justify));
        r.status = Approved;
        assert!(
            !allowed_user_actions(&creator, &r).contains(&Justify),
            "only in review"
        );
    }

    #[test]
    fn approved_imports_are_the_workspaces() {
        let mut import = request_in(Approved);
        import.request_type = RequestType::Import;
        let export = request_in(Approved);
        let bob = Caller {
            user: user("bob"),
            roles: vec![WorkspaceResearcher],
        };
        assert!(link_grant(&bob, &import).is_ok());
        let Err(LinkRefusal::Forbidden(why)) = link_grant(&bob, &export) else {
            panic!("another researcher's export")
        };
        assert!(why.contains("creator of an export"), "{why}");
    }

    #[test]
    fn every_role_action_status_cell() {
        let mut cells = 0;
        for &(role, creator, action, allowed) in TABLE {
            let caller = Caller {
                user: user(if creator { "creator" } else { "someone" }),
                roles: vec![role],
            };
            for status in Status::ALL {
                let req = request_in(status);
                let offered = allowed_user_actions(&caller, &req).contains(&action);
                assert_eq!(
                    offered,
                    allowed.contains(&status),
                    "{role:?} (creator: {creator}) {action:?} in {status}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, TABLE.len() * 12);
    }

    #[test]
    fn link_permissions_table() {
        let owner = Caller {
            user: user("o"),
            roles: vec![WorkspaceOwner],
        };
        let table: &[(Status, Option<&str>)] = &[
            (Draft, Some("acwdl")),
            (Submitted, None),
            (InReview, Some("rl")),
            (ApprovalInProgress, None),
            (Approved, Some("rl")),
            (RejectionInProgress, None),
            (Rejected, None),
            (BlockingInProgress, None),
            (BlockedByScan, None),
            (Cancelled, None),
            (Failed, None),
            (Revoked, None),
        ];
        for &(status, perms) in table {
            let got = link_grant(&owner, &request_in(status));
            match perms {
                Some(p) => assert_eq!(got.unwrap().permissions.as_sas(), p, "{status}"),
                None => assert!(
                    matches!(got, Err(LinkRefusal::Unavailable(_))),
                    "{status}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn draft_link_never_reads() {
        let creator = Caller {
            user: user("creator"),
            roles: vec![WorkspaceResearcher],
        };
        let grant = link_grant(&creator, &request_in(Draft)).unwrap();
        assert!(!grant.permissions.read);
        assert!(grant.permissions.write && grant.permissions.list);
    }

    #[test]
    fn refusal_reasons_name_the_cause() {
        let creator = Caller {
            user: user("creator"),
            roles: vec![WorkspaceResearcher],
        };
        let reason = |s| match link_grant(&creator, &request_in(s)) {
            Err(LinkRefusal::Unavailable(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(reason(Submitted).contains("being processed"));
        assert!(reason(Cancelled).contains("cancelled"));
        assert!(reason(Revoked).contains("revoked"));
        assert!(reason(Rejected).contains("not available"));
    }

    #[test]
    fn reading_requests() {
        let other = Caller {
            user: user("other"),
            roles: vec![WorkspaceResearcher],
        };
        assert!(may_read(&other, &request_in(Draft)).is_err());
        assert!(may_read(&other, &request_in(Approved)).is_ok());
        let nobody = Caller {
            user: user("x"),
            roles: vec![],
        };
        assert!(may_read(&nobody, &request_in(Approved)).is_err());
        assert!(may_create(&nobody).is_err());
        for role in [AirlockManager, TreAdmin] {
            let c = Caller {
                user: user("m"),
                roles: vec![role],
            };
            assert!(may_read(&c, &request_in(Draft)).is_ok());
            assert!(may_create(&c).is_err());
        }
    }

    #[test]
    fn sas_permission_strings() {
        assert_eq!(SasPermissions::UPLOAD.as_sas(), "acwdl");
        assert_eq!(SasPermissions::READ.as_sas(), "rl");
        assert_eq!(SasPermissions::parse("acwdl"), SasPermissions::UPLOAD);
    }

    #[test]
    fn roles_parse_from_token_strings() {
        for (s, r) in [
            ("WorkspaceResearcher", WorkspaceResearcher),
            ("WorkspaceOwner", WorkspaceOwner),
            ("AirlockManager", AirlockManager),
            ("TREAdmin", TreAdmin),
        ] {
            assert_eq!(Role::parse(s), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(Role::parse("airlockmanager"), None);
    }
}
