use super::*;
use crate::events::{NOTIFICATION, STATUS_CHANGED, StatusChangedData, Topic};
use crate::policy::WorkspacePolicy;
use crate::workspace::Contacts;

fn user(id: &str) -> User {
    User {
        id: id.into(),
        name: format!("{id} name"),
        email: Some(format!("{id}@example.org")),
    }
}

fn workspace(policy: WorkspacePolicy) -> Workspace {
    Workspace {
        id: "ws1".into(),
        display_name: "Workspace One".into(),
        short_id: "ws1".into(),
        airlock_enabled: true,
        token_audience: "api://ws1".into(),
        policy,
        contacts: Contacts {
            workspace_owner: vec!["owner@example.org".into()],
            airlock_manager: vec!["manager@example.org".into(), "".into()],
        },
    }
}

fn ctx(ws: &Workspace) -> Ctx<'_> {
    Ctx {
        now: chrono::Utc::now(),
        workspace: ws,
    }
}

fn new_request(ws: &Workspace) -> AirlockRequest {
    AirlockRequest::create(
        "req-1".into(),
        RequestType::Export,
        "Results".into(),
        "Paper figures".into(),
        user("alice"),
        &ctx(ws),
    )
    .unwrap()
}

fn files(n: usize) -> Vec<DraftFile> {
    (0..n)
        .map(|i| DraftFile {
            name: format!("f{i}.csv"),
            size: 10,
            etag: Some(format!("draft{i}")),
        })
        .collect()
}

fn clean(etag: &str) -> ScanVerdict {
    ScanVerdict {
        result: CLEAN_VERDICT.into(),
        malware_names: vec![],
        scanned_at: chrono::Utc::now(),
        etag: Some(etag.into()),
    }
}

/// Submits and seals every file (clean when scanning is on) so the request is in review.
pub(crate) fn in_review(ws: &Workspace, n: usize) -> AirlockRequest {
    let mut r = new_request(ws);
    r.submit(&user("alice"), files(n), &ctx(ws)).unwrap();
    for i in 0..n {
        let name = format!("f{i}.csv");
        r.record_sealed(&name, 10, format!("hash{i}"), format!("etag{i}"), &ctx(ws))
            .unwrap();
        if ws.policy.scan_required {
            r.record_verdict(&name, clean(&format!("etag{i}")), &ctx(ws))
                .unwrap();
        }
    }
    assert_eq!(r.status, Status::InReview);
    r
}

fn status_changes(r: &AirlockRequest) -> Vec<StatusChangedData> {
    r.outbox
        .iter()
        .filter(|p| p.topic == Topic::StatusChanged)
        .map(|p| serde_json::from_value(p.event.data.clone()).unwrap())
        .collect()
}

#[test]
fn create_queues_draft_event_and_history() {
    let ws = workspace(Default::default());
    let r = new_request(&ws);
    assert_eq!(r.status, Status::Draft);
    assert_eq!(r.revision, 1);
    assert_eq!(r.history_tail.len(), 1);
    assert_eq!(r.history_head.length, 1);
    assert_eq!(r.history_head.hash, r.history_tail[0].hash);
    let changes = status_changes(&r);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].previous_status, None);
    assert_eq!(changes[0].new_status, Status::Draft);
    assert_eq!(r.outbox[0].event.event_type, STATUS_CHANGED);
    assert_eq!(r.outbox[1].event.event_type, NOTIFICATION);
    assert_eq!(r.outbox[0].event.subject, "/workspaces/ws1/requests/req-1");
}

#[test]
fn create_validates_text() {
    let ws = workspace(Default::default());
    for (title, just) in [
        ("", "j"),
        ("  ", "j"),
        ("t", ""),
        (&"x".repeat(201)[..], "j"),
    ] {
        let err = AirlockRequest::create(
            "r".into(),
            RequestType::Import,
            title.into(),
            just.into(),
            user("a"),
            &ctx(&ws),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)), "{title:?} {just:?}");
    }
}

#[test]
fn submit_checks_files_and_status() {
    let ws = workspace(WorkspacePolicy {
        max_files: 2,
        ..Default::default()
    });
    let mut r = new_request(&ws);
    let err = r.submit(&user("alice"), vec![], &ctx(&ws)).unwrap_err();
    assert!(
        matches!(err, DomainError::Invalid(ref m) if m.contains("no files")),
        "{err}"
    );
    let err = r.submit(&user("alice"), files(3), &ctx(&ws)).unwrap_err();
    assert!(matches!(err, DomainError::Invalid(_)));
    assert_eq!(r.status, Status::Draft, "a refused submit changes nothing");
    r.submit(&user("alice"), files(2), &ctx(&ws)).unwrap();
    assert_eq!(r.status, Status::Submitted);
    assert_eq!(r.files.len(), 2);
    let err = r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap_err();
    assert_eq!(
        err,
        DomainError::IllegalTransition {
            action: "submit",
            status: Status::Submitted
        }
    );
}

#[test]
fn sealing_without_scanning_goes_to_review() {
    let ws = workspace(WorkspacePolicy {
        scan_required: false,
        ..Default::default()
    });
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(2), &ctx(&ws)).unwrap();
    assert_eq!(
        r.record_sealed("f0.csv", 10, "h0".into(), "e0".into(), &ctx(&ws))
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(r.status, Status::Submitted);
    // Duplicate delivery of the same blob is a no-op.
    assert!(matches!(
        r.record_sealed("f0.csv", 10, "h0".into(), "e0".into(), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    assert!(matches!(
        r.record_sealed("unknown.csv", 10, "h".into(), "e".into(), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    r.record_sealed("f1.csv", 10, "h1".into(), "e1".into(), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::InReview);
}

#[test]
fn scanning_waits_for_every_clean_verdict_in_any_order() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(2), &ctx(&ws)).unwrap();
    // Verdict before the seal (out of order), then the seal.
    r.record_verdict("f0.csv", clean("e0"), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "h0".into(), "e0".into(), &ctx(&ws))
        .unwrap();
    r.record_sealed("f1.csv", 10, "h1".into(), "e1".into(), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Submitted, "f1 has no verdict yet");
    // A verdict about another version of the blob is ignored.
    assert!(matches!(
        r.record_verdict("f1.csv", clean("stale"), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    assert_eq!(r.status, Status::Submitted);
    r.record_verdict("f1.csv", clean("e1"), &ctx(&ws)).unwrap();
    assert_eq!(r.status, Status::InReview);
}

#[test]
fn a_bad_verdict_blocks_naming_file_and_malware() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(2), &ctx(&ws)).unwrap();
    let verdict = ScanVerdict {
        result: "Malicious".into(),
        malware_names: vec!["Eicar-Test-Signature".into()],
        scanned_at: chrono::Utc::now(),
        etag: Some("etag1".into()),
    };
    r.record_verdict("f1.csv", verdict, &ctx(&ws)).unwrap();
    assert_eq!(r.status, Status::BlockingInProgress);
    let msg = r.status_message.clone().unwrap();
    assert!(
        msg.contains("f1.csv") && msg.contains("Malicious") && msg.contains("Eicar"),
        "{msg}"
    );
    // Files then move to the blocked stage.
    r.record_arrival("f0.csv", StageRole::Blocked, None, &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::BlockingInProgress);
    r.record_arrival("f1.csv", StageRole::Blocked, None, &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::BlockedByScan);
    assert!(r.status_message.unwrap().contains("f1.csv"));
}

#[test]
fn scan_errors_are_not_clean() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "h".into(), "e".into(), &ctx(&ws))
        .unwrap();
    let verdict = ScanVerdict {
        result: "SAM259201: scan error".into(),
        malware_names: vec![],
        scanned_at: chrono::Utc::now(),
        etag: Some("e".into()),
    };
    r.record_verdict("f0.csv", verdict, &ctx(&ws)).unwrap();
    assert_eq!(r.status, Status::BlockingInProgress);
}

#[test]
fn sealed_copy_changing_after_hash_fails() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "h".into(), "e1".into(), &ctx(&ws))
        .unwrap();
    r.record_sealed("f0.csv", 11, "other".into(), "e2".into(), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Failed);
    assert!(r.status_message.unwrap().contains("f0.csv"));
}

#[test]
fn oversized_sealed_copy_fails() {
    let ws = workspace(WorkspacePolicy {
        max_file_bytes: 100,
        scan_required: false,
        ..Default::default()
    });
    let mut r = new_request(&ws);
    let one = DraftFile {
        name: "a".into(),
        size: 10,
        etag: None,
    };
    r.submit(&user("alice"), vec![one], &ctx(&ws)).unwrap();
    r.record_sealed("a", 101, "h".into(), "e".into(), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Failed);
    assert!(r.status_message.unwrap().contains("101 bytes"));
}

#[test]
fn creator_never_reviews_and_reviewers_count_once() {
    let ws = workspace(WorkspacePolicy {
        approvals_required: 2,
        ..Default::default()
    });
    let mut r = in_review(&ws, 1);
    let err = r
        .review(
            &user("alice"),
            Decision::Approved,
            "".into(),
            None,
            &ctx(&ws),
        )
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
    r.review(&user("m1"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::InReview, "one of two approvals");
    let err = r
        .review(&user("m1"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap_err();
    assert!(matches!(err, DomainError::AlreadyDone(ref m) if m.contains("already reviewed")));
    r.review(
        &user("m2"),
        Decision::Approved,
        "ok".into(),
        None,
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
    assert_eq!(r.approvals_this_revision(), 2);
}

#[test]
fn reject_and_changes_need_explanations() {
    let ws = workspace(Default::default());
    for decision in [Decision::Rejected, Decision::ChangesRequested] {
        let mut r = in_review(&ws, 1);
        let err = r
            .review(&user("m"), decision, "  ".into(), None, &ctx(&ws))
            .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)));
        assert!(r.reviews.is_empty(), "a refused review is not recorded");
    }
}

#[test]
fn changes_requested_starts_a_new_revision() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 2);
    r.outbox.clear();
    r.review(
        &user("m1"),
        Decision::ChangesRequested,
        "drop column x".into(),
        None,
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::Draft);
    assert_eq!(r.revision, 2);
    assert!(r.files.is_empty());
    let changes = status_changes(&r);
    assert_eq!(changes[0].revision, 2, "the event carries the new revision");
    assert_eq!(changes[0].previous_status, Some(Status::InReview));
    // The same manager may review the next revision.
    r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "h".into(), "e".into(), &ctx(&ws))
        .unwrap();
    r.record_verdict("f0.csv", clean("e"), &ctx(&ws)).unwrap();
    r.review(
        &user("m1"),
        Decision::Approved,
        "".into(),
        Some(2),
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
}

#[test]
fn approved_copy_is_verified_against_the_seal() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 2);
    r.review(&user("m"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap();
    // Arrival in the wrong stage is ignored.
    assert!(matches!(
        r.record_arrival("f0.csv", StageRole::Rejected, Some("hash0"), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    r.record_arrival("f0.csv", StageRole::Approved, Some("hash0"), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
    assert!(matches!(
        r.record_arrival("f0.csv", StageRole::Approved, Some("hash0"), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    r.record_arrival("f1.csv", StageRole::Approved, Some("hash1"), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Approved);
}

#[test]
fn tampered_approved_copy_fails_naming_the_file() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 2);
    r.review(&user("m"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap();
    r.record_arrival("f1.csv", StageRole::Approved, Some("evil"), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Failed);
    let msg = r.status_message.unwrap();
    assert!(
        msg.contains("f1.csv") && msg.contains("evil") && msg.contains("hash1"),
        "{msg}"
    );
}

#[test]
fn revoke_needs_reason_and_approval() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 1);
    let err = r.revoke(&user("m"), "leak".into(), &ctx(&ws)).unwrap_err();
    assert!(matches!(err, DomainError::IllegalTransition { .. }));
    r.review(&user("m"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap();
    r.record_arrival("f0.csv", StageRole::Approved, Some("hash0"), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Approved);
    assert!(matches!(
        r.revoke(&user("m"), " ".into(), &ctx(&ws)),
        Err(DomainError::Invalid(_))
    ));
    r.revoke(&user("m"), "contains identifiers".into(), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Revoked);
    assert_eq!(r.status_message.as_deref(), Some("contains identifiers"));
}

#[test]
fn fail_is_a_no_op_once_terminal() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.cancel(&user("alice"), &ctx(&ws)).unwrap();
    assert!(matches!(
        r.fail("x".into(), &ctx(&ws)),
        Applied::Unchanged(_)
    ));
    assert_eq!(r.status, Status::Cancelled);
    let err = r.cancel(&user("alice"), &ctx(&ws)).unwrap_err();
    assert!(matches!(err, DomainError::IllegalTransition { .. }));
}

/// What a late worker found wrong fails the request only at the status and revision it
/// looked at.
#[test]
fn a_failure_found_on_an_earlier_look_fails_only_that_look() {
    let ws = workspace(Default::default());
    let r = in_review(&ws, 1);
    let cases = [
        ((Status::InReview, 1), true),
        ((Status::Submitted, 1), false),
        ((Status::InReview, 2), false),
        ((Status::Draft, 1), false),
    ];
    for (seen, fails) in cases {
        let mut now = r.clone();
        let applied = now.fail_as_seen(seen, "copy source changed".into(), &ctx(&ws));
        assert_eq!(matches!(applied, Applied::Changed), fails, "{seen:?}");
        assert_eq!(now.status == Status::Failed, fails, "{seen:?}");
        if !fails {
            assert_eq!(now.status, Status::InReview, "{seen:?}: untouched");
            assert!(
                matches!(&applied, Applied::Unchanged(why) if why.contains("now in_review (revision 1)")),
                "{seen:?}: {applied:?}"
            );
        }
    }
}

#[test]
fn notifications_choose_recipients_by_status() {
    let ws = workspace(Default::default());
    let r = in_review(&ws, 1);
    let last = r
        .outbox
        .iter()
        .rev()
        .find(|p| p.topic == Topic::Notification)
        .unwrap();
    let rec = &last.event.data["recipients"];
    assert_eq!(rec["researcher"], serde_json::json!(["alice@example.org"]));
    assert_eq!(
        rec["airlockManager"],
        serde_json::json!(["manager@example.org"]),
        "empty emails skipped"
    );
    assert_eq!(rec["workspaceOwner"], serde_json::json!([]));
    assert_eq!(last.event.data["workspace"]["displayName"], "Workspace One");

    let mut failed = new_request(&ws);
    failed.created_by.email = None;
    failed.fail("boom".into(), &ctx(&ws));
    let last = failed.outbox.last().unwrap();
    assert_eq!(
        last.event.data["recipients"]["researcher"],
        serde_json::json!([])
    );
    assert_eq!(
        last.event.data["recipients"]["workspaceOwner"],
        serde_json::json!(["owner@example.org"])
    );
    assert_eq!(last.event.data["request"]["statusMessage"], "boom");
}

#[test]
fn outbox_clears_only_published_events() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    let first = r.pending_event_ids();
    r.cancel(&user("alice"), &ctx(&ws)).unwrap();
    assert_eq!(r.outbox.len(), 4);
    assert!(r.clear_published(&first));
    assert_eq!(r.outbox.len(), 2, "events queued after the read stay");
    assert!(!r.clear_published(&first));
}

#[test]
fn record_round_trips_through_json() {
    let ws = workspace(Default::default());
    let r = in_review(&ws, 2);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], "in_review");
    assert_eq!(json["type"], "export");
    assert!(json["createdBy"]["id"].is_string());
    let back: AirlockRequest = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn history_is_a_verifiable_hash_chain() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 2);
    r.review(&user("m"), Decision::Approved, "ok".into(), None, &ctx(&ws))
        .unwrap();
    let h = &r.history_tail;
    let head = &r.history_head;
    assert!(h.len() > 5);
    assert_eq!(head.length, h.len() as u64);
    assert_eq!(super::verify_history(&r.id, h, head), Ok(()));
    // Survives a round trip through JSON (as stored in Cosmos DB).
    let back: AirlockRequest = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(
        super::verify_history(&back.id, &back.history_tail, &back.history_head),
        Ok(())
    );
    let mut edited = h.clone();
    edited[2].message = Some("nothing to see".into());
    assert_eq!(super::verify_history(&r.id, &edited, head), Err(2));
    let mut removed = h.clone();
    removed.remove(1);
    assert_eq!(super::verify_history(&r.id, &removed, head), Err(1));
    let mut swapped = h.clone();
    swapped.swap(3, 4);
    assert_eq!(super::verify_history(&r.id, &swapped, head), Err(3));
    let mut truncated = h.clone();
    truncated.pop();
    assert_eq!(
        super::verify_history(&r.id, &truncated, head),
        Err(h.len() - 1),
        "the record knows where the trail ends: dropping its last entries is caught"
    );
    let mut renumbered = h.clone();
    renumbered[1].seq = 7;
    assert_eq!(super::verify_history(&r.id, &renumbered, head), Err(1));
    assert_eq!(
        super::verify_history("another-request", h, head),
        Err(0),
        "chains are bound to their request"
    );
}

/// A review counts only for the revision the reviewer saw: after a resubmit, a review naming
/// the old revision (or none, as AzureTRE's clients send) is stale.
#[test]
fn a_review_names_the_revision_it_reviewed() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 1);
    // Leaving the revision out is fine while there has been only one.
    let mut first = r.clone();
    first
        .review(&user("m1"), Decision::Approved, "".into(), None, &ctx(&ws))
        .unwrap();
    assert_eq!(first.status, Status::ApprovalInProgress);
    assert!(matches!(
        r.clone().review(
            &user("m1"),
            Decision::Approved,
            "".into(),
            Some(2),
            &ctx(&ws)
        ),
        Err(DomainError::Stale(_))
    ));
    r.review(
        &user("m1"),
        Decision::ChangesRequested,
        "round the counts".into(),
        Some(1),
        &ctx(&ws),
    )
    .unwrap();
    r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "swapped".into(), "etag-b".into(), &ctx(&ws))
        .unwrap();
    r.record_verdict("f0.csv", clean("etag-b"), &ctx(&ws))
        .unwrap();
    assert_eq!((r.status, r.revision), (Status::InReview, 2));
    for stale in [Some(1), None, Some(3)] {
        let err = r
            .clone()
            .review(&user("m2"), Decision::Approved, "".into(), stale, &ctx(&ws))
            .unwrap_err();
        let DomainError::Stale(message) = err else {
            panic!("{stale:?}: {err:?}")
        };
        assert!(message.contains("revision 2"), "{message}");
    }
    r.review(
        &user("m2"),
        Decision::Approved,
        "".into(),
        Some(2),
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
}

/// Separation of duties: the creator, whoever submitted and whoever was given an upload
/// link are contributors; none of them may review, and a read link does not make one.
#[test]
fn contributors_cannot_review() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.record_link_issued(&ctx(&ws), &user("olga"), true, "upload link".into());
    r.record_link_issued(&ctx(&ws), &user("rita"), false, "read link".into());
    r.submit(&user("sam"), files(1), &ctx(&ws)).unwrap();
    r.record_sealed("f0.csv", 10, "h".into(), "etag0".into(), &ctx(&ws))
        .unwrap();
    r.record_verdict("f0.csv", clean("etag0"), &ctx(&ws))
        .unwrap();
    for who in ["alice", "olga", "sam"] {
        assert!(r.is_contributor(who), "{who}");
        let err = r
            .clone()
            .review(&user(who), Decision::Approved, "".into(), None, &ctx(&ws))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)), "{who}: {err:?}");
    }
    assert!(!r.is_contributor("rita"));
    r.review(
        &user("rita"),
        Decision::Approved,
        "".into(),
        None,
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
}

fn malicious(etag: Option<&str>) -> ScanVerdict {
    ScanVerdict {
        result: "Malicious".into(),
        malware_names: vec!["EICAR".into()],
        scanned_at: chrono::Utc::now(),
        etag: etag.map(str::to_string),
    }
}

/// Attack: a forged "No threats found" with no eTag, posted right after submit, must not
/// count; neither may a clean verdict replace a bad one for the same version.
#[test]
fn verdicts_must_name_the_sealed_version_and_clean_never_beats_bad() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
    let mut forged = clean("x");
    forged.etag = None;
    assert!(matches!(
        r.record_verdict("f0.csv", forged, &ctx(&ws)).unwrap(),
        Applied::Unchanged(ref why) if why.contains("names no eTag")
    ));
    assert!(r.files[0].scan.is_none());
    // A bad verdict before the seal, then a "clean" one for the same version.
    let mut blocked = r.clone();
    blocked
        .record_verdict("f0.csv", malicious(Some("e0")), &ctx(&ws))
        .unwrap();
    assert_eq!(blocked.status, Status::BlockingInProgress);
    let mut early = r.clone();
    early.files[0].scan = Some(malicious(Some("e0")));
    assert!(matches!(
        early.record_verdict("f0.csv", clean("e0"), &ctx(&ws)).unwrap(),
        Applied::Unchanged(ref why) if why.contains("never overrides")
    ));
    assert!(!early.files[0].scan.as_ref().unwrap().is_clean());
    // A verdict without an eTag does not seal anyone's fate either way.
    r.record_sealed("f0.csv", 10, "h".into(), "e0".into(), &ctx(&ws))
        .unwrap();
    r.record_verdict("f0.csv", malicious(None), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::Submitted);
}

/// A bad verdict after a clean one (Defender rescans; a first answer was wrong) blocks a
/// request that is already in review; a later clean one changes nothing.
#[test]
fn a_later_bad_verdict_blocks_a_request_in_review() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 1);
    assert!(matches!(
        r.record_verdict("f0.csv", clean("etag0"), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    assert!(matches!(
        r.record_verdict("f0.csv", malicious(Some("other")), &ctx(&ws))
            .unwrap(),
        Applied::Unchanged(_)
    ));
    assert_eq!(r.status, Status::InReview);
    r.record_verdict("f0.csv", malicious(Some("etag0")), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::BlockingInProgress);
    assert!(r.status_message.clone().unwrap().contains("during review"));
    // Nobody can approve it now.
    assert!(
        r.clone()
            .review(&user("m"), Decision::Approved, "".into(), None, &ctx(&ws))
            .is_err()
    );
}

/// The record carries the chain's head and only the entries its store may not hold yet:
/// once the store has them they are dropped, and the merged trail is whole again.
#[test]
fn history_tail_merges_with_the_store() {
    let ws = workspace(Default::default());
    let mut r = in_review(&ws, 2);
    let all = r.history_tail.clone();
    let split = 3;
    r.history_stored_before(split as u64);
    assert_eq!(r.history_tail.len(), all.len() - split);
    let merged = super::merge_tail(all[..split].to_vec(), &r.history_tail);
    assert_eq!(merged, all);
    assert_eq!(
        super::verify_history(&r.id, &merged, &r.history_head),
        Ok(())
    );
    // A store missing entries before the tail leaves a gap that does not verify.
    let gap = super::merge_tail(all[..split - 1].to_vec(), &r.history_tail);
    assert!(super::verify_history(&r.id, &gap, &r.history_head).is_err());
    // Where store and tail disagree, the store's entry is kept, and it does not verify.
    let mut forged = all[..split + 1].to_vec();
    forged[split].by = "someone-else".into();
    let merged = super::merge_tail(forged, &r.history_tail);
    assert_eq!(
        super::verify_history(&r.id, &merged, &r.history_head),
        Err(split)
    );
}

/// A person asking for the same link again adds nothing; a different link replaces their
/// previous one on the record (one per person), and a status change starts afresh.
#[test]
fn links_on_record_stay_bounded() {
    let ws = workspace(Default::default());
    let mut r = new_request(&ws);
    let alice = user("alice");
    let before = r.history_head.length;
    for i in 0..50 {
        let note = format!("link {}", i % 2);
        let applied = r.record_link_issued(&ctx(&ws), &alice, true, note);
        assert_eq!(applied, Applied::Changed, "{i}");
    }
    // Alternating between two links records each change, but keeps one per person.
    assert_eq!(r.links_issued.len(), 1);
    assert_eq!(r.history_head.length, before + 50);
    let n = r.history_head.length;
    for _ in 0..10 {
        assert!(matches!(
            r.record_link_issued(&ctx(&ws), &alice, true, "link 1".into()),
            Applied::Unchanged(_)
        ));
    }
    assert_eq!(r.history_head.length, n, "the same link is recorded once");
    r.record_link_issued(&ctx(&ws), &user("bob"), false, "read".into());
    assert_eq!(r.links_issued.len(), 2);
    assert!(r.audited_since_change(super::LINK_ISSUED));
    r.cancel(&alice, &ctx(&ws)).unwrap();
    assert!(r.links_issued.is_empty());
    assert!(!r.audited_since_change(super::LINK_ISSUED));
}

/// Every scanner outcome has an explicit request outcome, by workspace policy: clean goes to
/// review, malicious is blocked, and what the scanner could not judge is blocked or reviewed
/// as the workspace's `unscannedFiles` says — including when it arrives during review.
#[test]
fn every_scan_outcome_has_an_explicit_request_outcome() {
    use super::super::policy::UnscannedFiles::{Block, Fail, Review};
    let verdict = |result: &str, names: &[&str]| ScanVerdict {
        result: result.into(),
        malware_names: names.iter().map(|n| n.to_string()).collect(),
        scanned_at: chrono::Utc::now(),
        etag: Some("e0".into()),
    };
    let table = [
        ("No threats found", &[][..], Block, Status::InReview),
        ("No threats found", &[][..], Review, Status::InReview),
        (
            "Malicious",
            &["EICAR"][..],
            Block,
            Status::BlockingInProgress,
        ),
        (
            "Malicious",
            &["EICAR"][..],
            Review,
            Status::BlockingInProgress,
        ),
        ("Malicious", &[][..], Review, Status::BlockingInProgress),
        ("Error", &[][..], Block, Status::BlockingInProgress),
        ("Error", &[][..], Review, Status::InReview),
        (
            "Not scanned: larger than the scanner's limit",
            &[][..],
            Block,
            Status::BlockingInProgress,
        ),
        (
            "Not scanned: larger than the scanner's limit",
            &[][..],
            Review,
            Status::InReview,
        ),
        (
            "Not scanned: encrypted archive",
            &[][..],
            Review,
            Status::InReview,
        ),
        ("Scan throttled", &[][..], Block, Status::BlockingInProgress),
        ("Scan timed out", &[][..], Review, Status::InReview),
        ("Error", &[][..], Fail, Status::Failed),
        (
            "Not scanned: encrypted archive",
            &[][..],
            Fail,
            Status::Failed,
        ),
        (
            "Malicious",
            &["EICAR"][..],
            Fail,
            Status::BlockingInProgress,
        ),
        ("No threats found", &[][..], Fail, Status::InReview),
    ];
    for (result, names, unscanned_files, expected) in table {
        let ws = workspace(WorkspacePolicy {
            unscanned_files,
            ..Default::default()
        });
        let mut r = new_request(&ws);
        r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
        r.record_sealed("f0.csv", 10, "h0".into(), "e0".into(), &ctx(&ws))
            .unwrap();
        r.record_verdict("f0.csv", verdict(result, names), &ctx(&ws))
            .unwrap();
        assert_eq!(r.status, expected, "{result} under {unscanned_files:?}");
        if matches!(expected, Status::BlockingInProgress | Status::Failed) {
            let message = r.status_message.clone().unwrap();
            assert!(
                message.contains("f0.csv") && message.contains(result),
                "{message}"
            );
        }
        // The same outcome arriving during review (a rescan): only what the policy does
        // not accept pulls the request out of review.
        let mut reviewed = in_review(&ws, 1);
        let mut late = verdict(result, names);
        late.etag = Some("etag0".into());
        reviewed.record_verdict("f0.csv", late, &ctx(&ws)).unwrap();
        let expected_late = match expected {
            Status::BlockingInProgress | Status::Failed => expected,
            _ => Status::InReview,
        };
        assert_eq!(
            reviewed.status, expected_late,
            "late {result} under {unscanned_files:?}"
        );
    }
}

/// Without required scanning, a verdict the scanner could not reach passes; malware still
/// blocks.
#[test]
fn unscanned_passes_where_scanning_is_not_required() {
    let ws = workspace(WorkspacePolicy {
        scan_required: false,
        ..Default::default()
    });
    for (result, names, expected) in [
        ("Error: not scanned: too large", vec![], Status::InReview),
        (
            "Malicious",
            vec!["EICAR".to_string()],
            Status::BlockingInProgress,
        ),
    ] {
        let mut r = new_request(&ws);
        r.submit(&user("alice"), files(1), &ctx(&ws)).unwrap();
        let verdict = ScanVerdict {
            result: result.into(),
            malware_names: names,
            scanned_at: chrono::Utc::now(),
            etag: Some("e0".into()),
        };
        r.record_verdict("f0.csv", verdict, &ctx(&ws)).unwrap();
        r.record_sealed("f0.csv", 10, "h0".into(), "e0".into(), &ctx(&ws))
            .unwrap();
        assert_eq!(r.status, expected, "{result}");
    }
}

/// A request sealed at `sealed` with two files; `f0.csv` has its clean verdict, `f1.csv` none.
fn one_verdict_missing(ws: &Workspace, sealed: chrono::DateTime<chrono::Utc>) -> AirlockRequest {
    let mut r = new_request(ws);
    let at = Ctx {
        now: sealed,
        workspace: ws,
    };
    r.submit(&user("alice"), files(2), &at).unwrap();
    for i in 0..2 {
        r.record_sealed(
            &format!("f{i}.csv"),
            10,
            format!("hash{i}"),
            format!("etag{i}"),
            &at,
        )
        .unwrap();
    }
    r.record_verdict("f0.csv", clean("etag0"), &at).unwrap();
    assert_eq!(r.status, Status::Submitted);
    r
}

#[test]
fn an_overdue_verdict_asks_for_a_rescan_before_it_fails_anything() {
    let ws = workspace(WorkspacePolicy {
        scan_required: true,
        ..Default::default()
    });
    let t0 = chrono::Utc::now();
    let minutes = chrono::Duration::minutes;
    let late = || vec!["f1.csv".to_string()];
    // (minutes since sealing, rescan asked at minute, expected)
    let table: Vec<(i64, Option<i64>, VerdictWait)> = vec![
        (0, None, VerdictWait::OnTime),
        (29, None, VerdictWait::OnTime),
        (30, None, VerdictWait::AskRescan(late())),
        (45, Some(30), VerdictWait::OnTime),
        (59, Some(30), VerdictWait::OnTime),
        (60, Some(30), VerdictWait::Overdue(late())),
        (500, Some(30), VerdictWait::Overdue(late())),
    ];
    for (since, asked, expected) in table {
        let mut r = one_verdict_missing(&ws, t0);
        if let Some(at) = asked {
            let asked_ctx = Ctx {
                now: t0 + minutes(at),
                workspace: &ws,
            };
            assert_eq!(
                r.record_rescan_requested(&late(), &asked_ctx),
                Applied::Changed
            );
        }
        assert_eq!(
            r.verdict_wait(t0 + minutes(since), minutes(30)),
            expected,
            "{since} min after sealing, rescan asked at {asked:?}"
        );
    }
}

#[test]
fn a_rescan_is_recorded_once_per_status_and_forgotten_on_a_status_change() {
    let ws = workspace(WorkspacePolicy {
        scan_required: true,
        ..Default::default()
    });
    let t0 = chrono::Utc::now();
    let mut r = one_verdict_missing(&ws, t0);
    let files = vec!["f1.csv".to_string()];
    let length = r.history_head.length;
    assert_eq!(
        r.record_rescan_requested(&files, &ctx(&ws)),
        Applied::Changed
    );
    assert!(matches!(
        r.record_rescan_requested(&files, &ctx(&ws)),
        Applied::Unchanged(_)
    ));
    assert_eq!(r.history_head.length, length + 1, "one trail entry");
    let entry = r.history_tail.last().unwrap();
    assert_eq!(entry.action, RESCAN_REQUESTED);
    assert!(entry.message.as_deref().unwrap().contains("f1.csv"));
    // The verdict comes: the request moves on, and the rescan belongs to the old status.
    r.record_verdict("f1.csv", clean("etag1"), &ctx(&ws))
        .unwrap();
    assert_eq!(r.status, Status::InReview);
    assert_eq!(r.rescan_requested_at, None);
    assert_eq!(
        r.verdict_wait(
            t0 + chrono::Duration::days(1),
            chrono::Duration::minutes(30)
        ),
        VerdictWait::OnTime,
        "nothing is overdue outside submitted"
    );
    assert!(matches!(
        r.record_rescan_requested(&files, &ctx(&ws)),
        Applied::Unchanged(_)
    ));
}

#[test]
fn a_verdict_about_an_overwritten_copy_does_not_count_as_the_seals() {
    let ws = workspace(WorkspacePolicy {
        scan_required: true,
        ..Default::default()
    });
    let t0 = chrono::Utc::now();
    let at = Ctx {
        now: t0,
        workspace: &ws,
    };
    let mut r = new_request(&ws);
    r.submit(&user("alice"), files(1), &at).unwrap();
    // The verdict for a first copy arrives, then the seal hashes a later version.
    r.record_verdict("f0.csv", clean("first-copy"), &at)
        .unwrap();
    r.record_sealed("f0.csv", 10, "hash0".into(), "second-copy".into(), &at)
        .unwrap();
    assert_eq!(
        r.status,
        Status::Submitted,
        "not reviewed on another version's verdict"
    );
    assert!(!r.files[0].has_verdict_for_seal());
    let timeout = chrono::Duration::minutes(30);
    assert_eq!(
        r.verdict_wait(t0 + timeout, timeout),
        VerdictWait::AskRescan(vec!["f0.csv".into()]),
        "its verdict is overdue like a missing one"
    );
    // The sealed version's own verdict moves it on.
    r.record_verdict("f0.csv", clean("second-copy"), &at)
        .unwrap();
    assert!(r.files[0].has_verdict_for_seal());
    assert_eq!(r.status, Status::InReview);
}

#[test]
fn a_preview_is_on_the_record_once_per_person_and_file_until_the_status_changes() {
    let ws = workspace(WorkspacePolicy::default());
    let mut r = in_review(&ws, 2);
    let rita = user("rita");
    let length = |r: &AirlockRequest| r.history_head.length;
    let before = length(&r);
    assert_eq!(
        r.record_preview(&ctx(&ws), &rita, "f0.csv"),
        Applied::Changed
    );
    assert!(matches!(
        r.record_preview(&ctx(&ws), &rita, "f0.csv"),
        Applied::Unchanged(_)
    ));
    // Another file, another person: each on the record.
    assert_eq!(
        r.record_preview(&ctx(&ws), &rita, "f1.csv"),
        Applied::Changed
    );
    assert_eq!(
        r.record_preview(&ctx(&ws), &user("max"), "f0.csv"),
        Applied::Changed
    );
    assert_eq!(length(&r), before + 3);
    let last = r.history_tail.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        (FILE_PREVIEWED, "max")
    );
    assert!(last.message.as_deref().unwrap().contains("f0.csv"));
    // A status change starts afresh: looking again is news.
    r.cancel(&user("alice"), &ctx(&ws)).unwrap();
    assert_eq!(
        r.record_preview(&ctx(&ws), &rita, "f0.csv"),
        Applied::Changed
    );
}

#[test]
fn approving_over_a_warning_takes_a_reason_per_kind_of_finding() {
    let ws = workspace(WorkspacePolicy::default());
    let warned = |rule: &str| crate::gates::Finding {
        gate: "small counts".into(),
        mode: crate::gates::GateMode::Warn,
        rule: rule.into(),
        message: format!("a {rule}"),
        location: None,
        cell: None,
        remediation: None,
        needs_justification: false,
    };
    let setup = || {
        let mut r = in_review(&ws, 2);
        r.files[0].findings = vec![
            warned("small_count"),
            warned("small_count"),
            warned("unrounded"),
        ];
        r
    };
    let reason = |rule: &str, text: &str| Override {
        rule: rule.into(),
        rationale: text.into(),
    };
    let f0 = |decision: Decision, overrides: Vec<Override>| FileDecision {
        overrides,
        ..FileDecision::new("f0.csv", decision)
    };
    let review = |r: &mut AirlockRequest, d: FileDecision| {
        r.review_files(
            &user("rita"),
            Some(Decision::Approved),
            vec![d],
            "ok".into(),
            Some(1),
            &ctx(&ws),
        )
    };
    // (overrides given, what is refused): one reason per kind, for kinds the file has, once.
    let refused: Vec<(Vec<Override>, &str)> = vec![
        (
            vec![],
            "needs a reason for each kind: small_count, unrounded",
        ),
        (
            vec![reason("small_count", "regions are large")],
            "needs a reason for each kind: unrounded",
        ),
        (
            vec![
                reason("small_count", "a"),
                reason("unrounded", "b"),
                reason("zero", "c"),
            ],
            "has no \"zero\" warning to override",
        ),
        (
            vec![reason("small_count", "  "), reason("unrounded", "b")],
            "must be 1 to 4000 bytes",
        ),
        (
            vec![
                reason("small_count", "a"),
                reason("small_count", "again"),
                reason("unrounded", "b"),
            ],
            "more than one override of small_count",
        ),
    ];
    for (overrides, says) in refused {
        let mut r = setup();
        let err = review(&mut r, f0(Decision::Approved, overrides.clone())).unwrap_err();
        assert!(err.to_string().contains(says), "{overrides:?}: {err}");
        assert_eq!(r.status, Status::InReview, "nothing recorded");
        assert!(r.reviews.is_empty());
    }
    // The whole request approved with no word on the warned file: refused too.
    let mut r = setup();
    let err = r
        .review_files(
            &user("rita"),
            Some(Decision::Approved),
            vec![],
            "ok".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap_err();
    assert!(err.to_string().contains("f0.csv"), "{err}");
    // With its reasons: approved, each override on the review and in the trail.
    let mut r = setup();
    review(
        &mut r,
        f0(
            Decision::Approved,
            vec![
                reason("small_count", " regions of 100,000 people "),
                reason("unrounded", "exact counts agreed with the data owner"),
            ],
        ),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
    let kept = &r.reviews[0]
        .files
        .iter()
        .find(|d| d.name == "f0.csv")
        .unwrap()
        .overrides;
    assert_eq!(kept[0].rationale, "regions of 100,000 people");
    let entry = r
        .history_tail
        .iter()
        .find(|e| e.action == OVERRIDE)
        .unwrap();
    assert_eq!(
        entry.message.as_deref(),
        Some(
            "f0.csv approved over small_count (\"regions of 100,000 people\") over unrounded (\"exact counts agreed with the data owner\")"
        )
    );
    // A rejection needs no override, and any given is dropped.
    let mut r = setup();
    r.review_files(
        &user("rita"),
        Some(Decision::Rejected),
        vec![f0(Decision::Rejected, vec![reason("small_count", "x")])],
        "too small".into(),
        Some(1),
        &ctx(&ws),
    )
    .unwrap();
    assert!(r.reviews[0].files.iter().all(|d| d.overrides.is_empty()));
    assert!(r.history_tail.iter().all(|e| e.action != OVERRIDE));
}

/// Submits `files` (name, sha256) as the next revision and seals them: in review again.
fn resubmit(r: &mut AirlockRequest, ws: &Workspace, files: &[(&str, &str)]) {
    let drafts: Vec<DraftFile> = files
        .iter()
        .map(|(name, _)| DraftFile {
            name: name.to_string(),
            size: 10,
            etag: Some(format!("draft-{name}")),
        })
        .collect();
    r.submit(&user("alice"), drafts, &ctx(ws)).unwrap();
    for (name, sha) in files {
        r.record_sealed(
            name,
            10,
            sha.to_string(),
            format!("etag-{name}-{sha}"),
            &ctx(ws),
        )
        .unwrap();
        if ws.policy.scan_required {
            r.record_verdict(name, clean(&format!("etag-{name}-{sha}")), &ctx(ws))
                .unwrap();
        }
    }
    assert_eq!(r.status, Status::InReview);
}

fn decide(name: &str, decision: Decision) -> FileDecision {
    FileDecision {
        comment: Some("see".into()),
        ..FileDecision::new(name, decision)
    }
}

#[test]
fn a_vote_on_an_unchanged_file_carries_over_to_the_resubmission() {
    use Decision::{Approved as A, ChangesRequested as C};
    // Revision 1: f0 (hash0) approved, f1 (hash1) sent back.
    let first_round = |policy: WorkspacePolicy| {
        let ws = workspace(policy);
        let mut r = in_review(&ws, 2);
        r.review_files(
            &user("rita"),
            None,
            vec![decide("f0.csv", A), decide("f1.csv", C)],
            "fix f1".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
        assert_eq!((r.status, r.revision), (Status::Draft, 2));
        assert_eq!(
            r.reviews[0].files[0].sha256.as_deref(),
            Some("hash0"),
            "each decision keeps the bytes it was about"
        );
        (ws, r)
    };
    // Revision 2 as (files submitted, decisions rita gives, what happens).
    type Case = (
        &'static [(&'static str, &'static str)],
        Vec<FileDecision>,
        Result<Vec<(&'static str, Decision, bool)>, &'static str>,
    );
    let cases: Vec<(&str, Case)> = vec![
        (
            "unchanged f0 carried, changed f1 and new f2 decided",
            (
                &[
                    ("f0.csv", "hash0"),
                    ("f1.csv", "hash1b"),
                    ("f2.csv", "hash2"),
                ],
                vec![decide("f1.csv", A), decide("f2.csv", A)],
                Ok(vec![
                    ("f0.csv", A, true),
                    ("f1.csv", A, false),
                    ("f2.csv", A, false),
                ]),
            ),
        ),
        (
            "a changed file is never carried",
            (
                &[("f0.csv", "hash0-edited"), ("f1.csv", "hash1b")],
                vec![decide("f1.csv", A)],
                Err("no decision for \"f0.csv\""),
            ),
        ),
        (
            "the same bytes under another name are a new file",
            (
                &[("g0.csv", "hash0"), ("f1.csv", "hash1b")],
                vec![decide("f1.csv", A)],
                Err("no decision for \"g0.csv\""),
            ),
        ),
        (
            "a removed file is simply gone",
            (
                &[("f0.csv", "hash0")],
                vec![],
                Ok(vec![("f0.csv", A, true)]),
            ),
        ),
        (
            "a decision given again wins over the carried one",
            (
                &[("f0.csv", "hash0"), ("f1.csv", "hash1b")],
                vec![decide("f0.csv", Decision::Rejected), decide("f1.csv", A)],
                Ok(vec![
                    ("f0.csv", Decision::Rejected, false),
                    ("f1.csv", A, false),
                ]),
            ),
        ),
    ];
    for (what, (files, given, expected)) in cases {
        let (ws, mut r) = first_round(WorkspacePolicy::default());
        resubmit(&mut r, &ws, files);
        let result = r.review_files(&user("rita"), None, given, "ok".into(), Some(2), &ctx(&ws));
        match expected {
            Ok(expected) => {
                result.unwrap_or_else(|e| panic!("{what}: {e}"));
                let got: Vec<(&str, Decision, bool)> = r.reviews[1]
                    .files
                    .iter()
                    .map(|d| (d.name.as_str(), d.decision, d.carried))
                    .collect();
                assert_eq!(got, expected, "{what}");
                if expected.iter().any(|(_, _, carried)| *carried) {
                    let entry = r.history_tail.iter().find(|e| e.action == VOTES_CARRIED);
                    assert!(
                        entry.is_some_and(|e| e
                            .message
                            .as_deref()
                            .unwrap()
                            .contains("f0.csv approved (carried over)")),
                        "{what}: {:?}",
                        r.history_tail
                    );
                }
            }
            Err(says) => {
                let err = result.unwrap_err();
                assert!(err.to_string().contains(says), "{what}: {err}");
            }
        }
    }
    // A decision for the whole request is the reviewer's word on every file not listed:
    // nothing is carried.
    let (ws, mut r) = first_round(WorkspacePolicy::default());
    resubmit(&mut r, &ws, &[("f0.csv", "hash0"), ("f1.csv", "hash1b")]);
    r.review_files(
        &user("rita"),
        Some(Decision::Rejected),
        vec![],
        "no".into(),
        Some(2),
        &ctx(&ws),
    )
    .unwrap();
    assert!(
        r.reviews[1]
            .files
            .iter()
            .all(|d| !d.carried && d.decision == Decision::Rejected)
    );
    // The workspace can turn it off: every file decided again.
    let (ws, mut r) = first_round(WorkspacePolicy {
        carry_over_votes: false,
        ..WorkspacePolicy::default()
    });
    resubmit(&mut r, &ws, &[("f0.csv", "hash0"), ("f1.csv", "hash1b")]);
    let err = r
        .review_files(
            &user("rita"),
            None,
            vec![decide("f1.csv", A)],
            "ok".into(),
            Some(2),
            &ctx(&ws),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("no decision for \"f0.csv\""),
        "{err}"
    );
    // A request-level decision is never carried: a reviewer who decided nothing about the
    // new revision's changed file must decide it, whatever they said of the request before.
    let (ws, mut r) = first_round(WorkspacePolicy::default());
    resubmit(&mut r, &ws, &[("f0.csv", "hash0"), ("f1.csv", "hash1b")]);
    assert_eq!(r.carried_decisions("rita").len(), 1);
    assert!(
        r.carried_decisions("mona").is_empty(),
        "only your own votes carry"
    );
    // The diff says the same: against the previous revision and against rita's vote.
    let diff = r.revision_diff("rita");
    let changes = |files: &[FileDiff]| -> Vec<(String, FileChange)> {
        files.iter().map(|f| (f.name.clone(), f.change)).collect()
    };
    let expected = vec![
        ("f0.csv".to_string(), FileChange::Identical),
        ("f1.csv".to_string(), FileChange::Changed),
    ];
    assert_eq!(changes(diff.since_previous.as_ref().unwrap()), expected);
    let mine = diff.since_your_vote.unwrap();
    assert_eq!((mine.revision, changes(&mine.files)), (1, expected));
    assert_eq!(mine.files[0].your_decision, Some(A));
    assert!(r.revision_diff("mona").since_your_vote.is_none());
    // Removed and added files.
    let (ws, mut r) = first_round(WorkspacePolicy::default());
    resubmit(&mut r, &ws, &[("f1.csv", "hash1"), ("f9.csv", "hash9")]);
    let diff = r.revision_diff("rita");
    assert_eq!(
        changes(diff.since_previous.as_ref().unwrap()),
        vec![
            ("f1.csv".to_string(), FileChange::Identical),
            ("f9.csv".to_string(), FileChange::Added),
            ("f0.csv".to_string(), FileChange::Removed),
        ]
    );
}

#[test]
fn carried_votes_keep_blinding_and_quorum() {
    use Decision::{Approved as A, ChangesRequested as C};
    let ws = workspace(WorkspacePolicy {
        approvals_required: 2,
        ..WorkspacePolicy::default()
    });
    let mut r = in_review(&ws, 2);
    for reviewer in ["rita", "mona"] {
        r.review_files(
            &user(reviewer),
            None,
            vec![decide("f0.csv", A), decide("f1.csv", C)],
            "fix f1".into(),
            Some(1),
            &ctx(&ws),
        )
        .unwrap();
    }
    assert_eq!((r.status, r.revision), (Status::Draft, 2));
    resubmit(&mut r, &ws, &[("f0.csv", "hash0"), ("f1.csv", "hash1b")]);
    // Rita decides only the changed file; her carried vote stays hidden until both are in.
    r.review_files(
        &user("rita"),
        None,
        vec![decide("f1.csv", A)],
        "ok".into(),
        Some(2),
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::InReview, "one of two reviews");
    let last = r.history_tail.last().unwrap();
    assert_eq!(last.action, "review: recorded");
    assert!(r.history_tail.iter().all(|e| e.action != VOTES_CARRIED));
    // Mona's own earlier vote carries for her; both in, the votes are revealed, carried marked.
    r.review_files(
        &user("mona"),
        None,
        vec![decide("f1.csv", A)],
        "ok".into(),
        Some(2),
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::ApprovalInProgress);
    let revealed = r
        .history_tail
        .iter()
        .rev()
        .find(|e| e.action == "reviews revealed")
        .unwrap();
    let text = revealed.message.as_deref().unwrap();
    assert!(
        text.contains("rita: f0.csv approved (carried over), f1.csv approved")
            && text.contains("mona: f0.csv approved (carried over), f1.csv approved"),
        "{text}"
    );
}

/// The gate report says "checked" only of what a gate read: a file blocked before its seal
/// was read (hashed in the blocked stage afterwards) by no gate, and a disclosure gate reads
/// tables only. Each read names the policy version it ran under.
#[test]
fn the_gate_report_never_calls_an_unread_file_checked() {
    let policy: WorkspacePolicy = serde_json::from_value(serde_json::json!({
        "scanRequired": false,
        "gates": [
            {"name": "types", "kind": "filePolicy", "mode": "block"},
            {"name": "sdc", "kind": "disclosure", "mode": "warn"}
        ]
    }))
    .unwrap();
    let ws = workspace(policy.clone());
    let mut r = new_request(&ws);
    let draft = |name: &str| DraftFile {
        name: name.into(),
        size: 10,
        etag: Some(format!("d-{name}")),
    };
    r.submit(
        &user("alice"),
        vec![draft("tool.csv"), draft("plot.png"), draft("late.csv")],
        &ctx(&ws),
    )
    .unwrap();
    let read = |gates: &[crate::gates::Gate], name: &str, data: &[u8]| {
        let mut runner = crate::gates::GateRunner::for_seal(gates, name).unwrap();
        runner.feed(data);
        runner.finish()
    };
    r.record_sealed_checked(
        "plot.png",
        10,
        "sha-png".into(),
        "e-png".into(),
        read(&policy.gates, "plot.png", b"\x89PNG\r\n\x1a\n...."),
        &ctx(&ws),
    )
    .unwrap();
    r.record_sealed_checked(
        "tool.csv",
        10,
        "sha-tool".into(),
        "e-tool".into(),
        read(&policy.gates, "tool.csv", b"\x7fELF\x02\x01"),
        &ctx(&ws),
    )
    .unwrap();
    assert_eq!(r.status, Status::BlockingInProgress);
    // The third file reaches the blocked stage unread by any gate; it is hashed there.
    r.record_arrival("late.csv", StageRole::Blocked, Some("sha-late"), &ctx(&ws))
        .unwrap();
    let report = r.gate_report(&policy, chrono::Utc::now());
    let checked = |gate: &str| -> Vec<(String, bool)> {
        report
            .gates
            .iter()
            .find(|g| g.name == gate)
            .unwrap()
            .files
            .iter()
            .map(|f| (f.name.clone(), f.checked))
            .collect()
    };
    let named = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    assert_eq!(
        checked("types"),
        named(&[("tool.csv", true), ("plot.png", true), ("late.csv", false)])
    );
    assert_eq!(
        checked("sdc"),
        named(&[("tool.csv", true), ("plot.png", false), ("late.csv", false)])
    );
    let version = policy.version();
    assert_eq!(version.len(), 16);
    let types = report.gates.iter().find(|g| g.name == "types").unwrap();
    assert_eq!(
        types.files[0].policy_version.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(types.files[2].policy_version, None);
    // Another rule is another version.
    let mut stricter = policy.clone();
    stricter.approvals_required = 2;
    assert_ne!(stricter.version(), version);
}

#[test]
fn a_retried_create_is_told_from_a_different_request_under_the_same_key() {
    let ws = workspace(WorkspacePolicy::default());
    let r = new_request(&ws);
    let cases: &[(RequestType, &str, &str, &str, bool)] = &[
        (
            RequestType::Export,
            "Results",
            "Paper figures",
            "alice",
            true,
        ),
        // Stored trimmed, so a retry with the same untrimmed text is the same create.
        (
            RequestType::Export,
            "  Results ",
            "Paper figures\n",
            "alice",
            true,
        ),
        (
            RequestType::Import,
            "Results",
            "Paper figures",
            "alice",
            false,
        ),
        (
            RequestType::Export,
            "Results 2",
            "Paper figures",
            "alice",
            false,
        ),
        (
            RequestType::Export,
            "Results",
            "Other figures",
            "alice",
            false,
        ),
        (
            RequestType::Export,
            "Results",
            "Paper figures",
            "bob",
            false,
        ),
    ];
    for (kind, title, why, user_id, same) in cases {
        assert_eq!(
            r.made_by_create(*kind, title, why, user_id),
            *same,
            "{kind:?} {title:?} {why:?} {user_id}"
        );
    }
}

#[test]
fn a_comment_under_one_id_is_written_once_and_the_id_is_not_reused() {
    let ws = workspace(WorkspacePolicy::default());
    let mut r = new_request(&ws);
    let alice = user("alice");
    let c = ctx(&ws);
    let id = "c-1".to_string();
    let (first, made) = r
        .comment_once(
            id.clone(),
            &alice,
            false,
            NewComment::on_request("Which years?"),
            &c,
        )
        .unwrap();
    assert!(made);
    let outbox = r.outbox.len();
    // Sent again (the text as typed, untrimmed): the same comment, nothing new.
    let (again, made) = r
        .comment_once(
            id.clone(),
            &alice,
            false,
            NewComment::on_request(" Which years? "),
            &c,
        )
        .unwrap();
    assert!(!made);
    assert_eq!(again, first);
    assert_eq!((r.comments.len(), r.outbox.len()), (1, outbox));
    // The id with anything else different: refused.
    let others = [
        NewComment::on_request("Which months?"),
        NewComment {
            visibility: Visibility::Reviewers,
            ..NewComment::on_request("Which years?")
        },
    ];
    for other in others {
        let err = r
            .comment_once(id.clone(), &alice, true, other, &c)
            .unwrap_err();
        assert!(matches!(err, DomainError::KeyReused(_)), "{err:?}");
    }
    assert_eq!(r.comments.len(), 1);
}
