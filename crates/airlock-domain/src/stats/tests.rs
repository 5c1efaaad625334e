use super::*;
use crate::request::{Ctx, Decision, DraftFile, RequestType, ScanVerdict, User};
use crate::workspace::Workspace;
use chrono::Duration;

fn ws() -> Workspace {
    serde_json::from_value(serde_json::json!({
        "id": "ws", "displayName": "W", "shortId": "w", "tokenAudience": "a",
        "policy": {"scanRequired": true}
    }))
    .unwrap()
}

fn at(hours: i64) -> DateTime<Utc> {
    "2026-11-02T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(hours)
}

fn person(id: &str) -> User {
    User {
        id: id.into(),
        name: id.into(),
        email: None,
    }
}

/// A request created at `start`, submitted and in review an hour later, decided by `decision`
/// `review_after` hours after that (never, with `None`).
fn request(
    id: &str,
    kind: RequestType,
    start: i64,
    decision: Option<(Decision, i64)>,
) -> (AirlockRequest, Vec<HistoryEntry>) {
    let ws = ws();
    let ctx = |h: i64| Ctx {
        workspace: &ws,
        now: at(h),
    };
    let mut r = AirlockRequest::create(
        id.into(),
        kind,
        "t".into(),
        "j".into(),
        person("alice"),
        &ctx(start),
    )
    .unwrap();
    let files = vec![DraftFile {
        name: "t.csv".into(),
        size: 1000,
        etag: Some("d".into()),
    }];
    r.submit(&person("alice"), files, &ctx(start + 1)).unwrap();
    r.record_sealed("t.csv", 1000, "h".into(), "e".into(), &ctx(start + 1))
        .unwrap();
    r.record_verdict(
        "t.csv",
        ScanVerdict {
            result: crate::request::CLEAN_VERDICT.into(),
            malware_names: vec![],
            scanned_at: at(start + 1),
            etag: Some("e".into()),
        },
        &ctx(start + 1),
    )
    .unwrap();
    assert_eq!(r.status, Status::InReview);
    if let Some((decision, after)) = decision {
        r.review(
            &person("mona"),
            decision,
            "see the files".into(),
            None,
            &ctx(start + 1 + after),
        )
        .unwrap();
    }
    let trail = r.history_tail.clone();
    (r, trail)
}

#[test]
fn counts_durations_and_outcomes_of_the_range_only() {
    let requests = vec![
        request("a", RequestType::Export, 0, Some((Decision::Approved, 2))),
        request("b", RequestType::Export, 10, Some((Decision::Rejected, 6))),
        request(
            "c",
            RequestType::Import,
            20,
            Some((Decision::ChangesRequested, 10)),
        ),
        request("d", RequestType::Import, 30, None),
        // Outside the range: created before it, and at its end.
        request(
            "old",
            RequestType::Export,
            -100,
            Some((Decision::Approved, 1)),
        ),
        request(
            "late",
            RequestType::Export,
            48,
            Some((Decision::Approved, 1)),
        ),
    ];
    let stats = summarise(&requests, Some(at(0)), Some(at(48)));
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.workspaces, ["ws"]);
    assert_eq!(stats.by_type["export"], 2);
    assert_eq!(stats.by_type["import"], 2);
    assert_eq!(stats.by_status["approval_in_progress"], 1);
    assert_eq!(stats.by_status["rejection_in_progress"], 1);
    assert_eq!(
        stats.by_status["draft"], 1,
        "sent back for changes: a draft again"
    );
    assert_eq!(stats.by_status["in_review"], 1);
    assert_eq!(stats.reviews, 3);
    // Reviews took 2, 6 and 10 hours from submit: median 6, p90 and longest 10.
    assert_eq!(
        stats.review_turnaround,
        Durations {
            count: 3,
            p50_seconds: 6 * 3600,
            p90_seconds: 10 * 3600,
            max_seconds: 10 * 3600,
        }
    );
    assert_eq!(
        stats.time_in_status["in_review"].count, 3,
        "d is still there"
    );
    assert_eq!(stats.time_in_status["draft"].p50_seconds, 3600);
    assert_eq!(stats.released_files, 0, "nothing has reached approved yet");
}

#[test]
fn overrides_findings_and_releases_are_counted() {
    let (mut r, trail) = request("a", RequestType::Export, 0, Some((Decision::Approved, 1)));
    r.status = Status::Approved;
    r.files[0].findings = vec![
        serde_json::from_value(serde_json::json!({"gate": "sdc", "mode": "warn", "rule": "small_count", "message": "m"})).unwrap(),
        serde_json::from_value(serde_json::json!({"gate": "sdc", "mode": "warn", "rule": "small_count", "message": "m"})).unwrap(),
        serde_json::from_value(serde_json::json!({"gate": "sdc", "mode": "warn", "rule": "unrounded", "message": "m"})).unwrap(),
    ];
    r.reviews[0].files[0].overrides = vec![
        serde_json::from_value(
            serde_json::json!({"rule": "small_count", "rationale": "regions are large"}),
        )
        .unwrap(),
    ];
    let mut supporting = r.files[0].clone();
    supporting.name = "code.py".into();
    supporting.supporting = true;
    supporting.findings.clear();
    r.files.push(supporting);
    let stats = summarise(&[(r, trail)], None, None);
    assert_eq!(stats.findings_by_rule["small_count"], 2);
    assert_eq!(stats.findings_by_rule["unrounded"], 1);
    assert_eq!(stats.overrides, 1);
    assert_eq!(stats.overrides_by_rule["small_count"], 1);
    assert_eq!(
        stats.released_files, 1,
        "a supporting file is never released"
    );
    assert_eq!(stats.released_bytes, 1000);
}

#[test]
fn percentiles_are_nearest_rank() {
    assert_eq!(Durations::of(vec![]), Durations::default());
    let d = Durations::of((1..=10).rev().collect());
    assert_eq!(
        (d.p50_seconds, d.p90_seconds, d.max_seconds, d.count),
        (5, 9, 10, 10)
    );
    let one = Durations::of(vec![7]);
    assert_eq!((one.p50_seconds, one.p90_seconds), (7, 7));
}
