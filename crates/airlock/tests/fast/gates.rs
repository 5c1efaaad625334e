//! Gates on the whole in-process airlock: what the workspace's policy lists runs over each
//! sealed copy as it is hashed; a `block` finding blocks the request before review naming the
//! file, the gate and the cell, a `warn` finding goes to review on the file, `off` does
//! nothing.

use crate::common::*;
use serde_json::{Value, json};

const SMALL_COUNT: &[u8] = b"group,n\nA,120\nB,3\n";

/// Submits one file and lets every delivery happen; returns the request record as the API
/// shows it.
async fn submit(s: &Stack, name: &str, data: &[u8]) -> Value {
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload(name, data.to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    s.get(WS1, &id, &alice).await
}

/// The request's gate report as an airlock manager reads it.
async fn gate_report(s: &Stack, id: &str) -> Value {
    s.ok(
        "GET",
        &format!("/api/workspaces/{WS1}/requests/{id}/gates"),
        &s.token("mike", &[MANAGER], WS1),
        None,
        200,
    )
    .await
}

fn disclosure(mode: &str) -> Value {
    json!({"gates": [{"name": "sdc", "kind": "disclosure", "mode": mode}]})
}

#[tokio::test]
async fn a_small_count_blocks_when_the_gate_blocks_naming_the_cell() {
    let s = Stack::start(disclosure("block")).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    let message = r["statusMessage"].as_str().unwrap();
    assert_eq!(
        message,
        "blocked by policy: table.csv: count 3 is below the threshold of 10 (sdc, row 3, column \"n\")"
    );
    assert_eq!(r["files"][0]["findings"][0]["rule"], "small_count");
    let id = r["id"].as_str().unwrap();
    assert!(s.actions(id).await.contains(&"gates: blocked".to_string()));
    // The data went where blocked data goes: the quarantine, not review.
    assert!(
        s.data_of(id).keys().any(|stage| stage.contains("blocked")),
        "{:?}",
        s.data_of(id)
    );
}

#[tokio::test]
async fn a_small_count_goes_to_review_marked_when_the_gate_warns() {
    let s = Stack::start(disclosure("warn")).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "in_review", "{r}");
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(
        (
            finding["gate"].as_str(),
            finding["mode"].as_str(),
            finding["location"].as_str()
        ),
        (Some("sdc"), Some("warn"), Some("row 3, column \"n\""))
    );
    let id = r["id"].as_str().unwrap();
    // The managers' notification of the review says which gate warned, and where.
    let note = s
        .notifications()
        .into_iter()
        .map(|e| e.data)
        .find(|n| n["request"]["id"] == id && n["request"]["status"] == "in_review")
        .expect("a notification of the review");
    assert_eq!(
        note["request"]["gateWarnings"],
        json!([{"file": "table.csv", "gate": "sdc", "rule": "small_count",
            "message": "count 3 is below the threshold of 10", "location": "row 3, column \"n\"",
            "justified": false}])
    );
    assert!(s.history(id).await.iter().any(
        |e| e.action == "gates" && e.message.as_deref().is_some_and(|m| m.contains("count 3"))
    ));
}

#[tokio::test]
async fn a_gate_that_is_off_or_finds_nothing_changes_nothing() {
    for policy in [disclosure("off"), disclosure("block")] {
        let s = Stack::start(policy.clone()).await;
        let data: &[u8] = if policy["gates"][0]["mode"] == "off" {
            SMALL_COUNT
        } else {
            b"group,n\nA,120\nB,30\n"
        };
        let r = submit(&s, "table.csv", data).await;
        assert_eq!(r["status"], "in_review", "{policy}: {r}");
        assert!(r["files"][0].get("findings").is_none(), "{r}");
    }
}

#[tokio::test]
async fn a_disguised_executable_is_blocked() {
    let s = Stack::start(json!({"gates": [{"name": "file types", "kind": "filePolicy", "allowedExtensions": ["csv", "txt"]}]})).await;
    let r = submit(&s, "report.csv", b"MZ\x90\x00\x03\x00\x00\x00").await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: report.csv: the content is a Windows executable (PE) (file types)"
    );
    // And an extension outside the allowlist.
    let r = submit(&s, "model.pkl", b"\x80\x04\x95").await;
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .contains("files ending .pkl are not allowed here"),
        "{r}"
    );
}

#[tokio::test]
async fn warnings_the_workspace_wants_justified_hold_approval_until_they_are() {
    let s = Stack::start(json!({"gates": [{"name": "sdc", "kind": "disclosure", "mode": "warn", "requireJustification": true}]})).await;
    let r = submit(&s, "table.csv", SMALL_COUNT).await;
    assert_eq!(r["status"], "in_review");
    assert_eq!(r["files"][0]["findings"][0]["needsJustification"], true);
    let id = r["id"].as_str().unwrap().to_string();
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let review = |token: String| {
        let s = &s;
        let id = id.clone();
        async move {
            s.call(
                "POST",
                &format!("/api/workspaces/{WS1}/requests/{id}/review"),
                Some(&token),
                Some(json!({"decision": "approved", "explanation": "fine", "revision": 1})),
            )
            .await
        }
    };
    let (status, body) = review(mike.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("justify the gate warnings on table.csv"),
        "{body}"
    );
    let justify = format!("/api/workspaces/{WS1}/requests/{id}/justify");
    // Only a contributor justifies, only a warned file, with some text.
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&bob),
            Some(json!({"file": "table.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&mike),
            Some(json!({"file": "table.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 403, "a reviewer cannot justify what they judge");
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&alice),
            Some(json!({"file": "table.csv", "justification": "  "})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .call(
            "POST",
            &justify,
            Some(&alice),
            Some(json!({"file": "other.csv", "justification": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    let before = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}"),
            &alice,
            None,
            200,
        )
        .await;
    assert!(
        before["allowedUserActions"]
            .as_array()
            .unwrap()
            .contains(&json!("justify")),
        "{before}"
    );
    let justified = s
        .ok(
            "POST",
            &justify,
            &alice,
            Some(json!({"file": "table.csv", "justification": "Region B is a published national figure"})),
            200,
        )
        .await;
    assert_eq!(
        justified["airlockRequest"]["files"][0]["justification"]["text"],
        "Region B is a published national figure"
    );
    assert!(
        justified["allowedUserActions"]
            .as_array()
            .unwrap()
            .contains(&json!("justify"))
    );
    // Justified, the warning still stands: approving over it is an override with its reason.
    let (status, body) = review(mike.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a reason for each kind: small_count")
    );
    let (status, body) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{id}/review"),
            Some(&mike),
            Some(json!({"decision": "approved", "explanation": "fine", "revision": 1,
                "files": [{"name": "table.csv", "decision": "approved", "overrides": [
                    {"rule": "small_count", "rationale": "the researcher's justification holds: regions are large"}
                ]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
    let actions = s.actions(&id).await;
    assert!(actions.contains(&"justified".to_string()));
    assert!(actions.contains(&airlock::domain::request::OVERRIDE.to_string()));
}

#[tokio::test]
async fn a_file_released_before_is_shown_to_the_reviewer_as_a_re_release() {
    let s = Stack::start(
        json!({"gates": [{"name": "release ledger", "kind": "releaseLedger", "mode": "warn"}]}),
    )
    .await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let table: &[u8] = b"region,mean\nNorth,4.5\n";
    let first = submit(&s, "table.csv", table).await;
    assert_eq!(first["status"], "in_review");
    assert!(
        first["files"][0].get("findings").is_none(),
        "nothing released yet: {first}"
    );
    let first_id = first["id"].as_str().unwrap().to_string();
    s.action(
        WS1,
        &first_id,
        "review",
        &mike,
        Some(json!({"decision": "approved", "explanation": "ok", "revision": 1})),
    )
    .await;
    assert_eq!(s.record(&first_id).status.to_string(), "approved");
    assert_eq!(
        s.airlock.releases.all().len(),
        1,
        "the approved export is in the ledger"
    );
    // The same bytes again, under another name: shown as a re-release.
    let again = submit(&s, "results/copy.csv", table).await;
    assert_eq!(again["status"], "in_review");
    let finding = &again["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "already_released");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "identical to \"table.csv\", released by request {first_id} on "
        )),
        "{message}"
    );
    // Different bytes: nothing.
    let other = submit(&s, "table.csv", b"region,mean\nNorth,4.6\n").await;
    assert!(other["files"][0].get("findings").is_none(), "{other}");
}

fn external(mode: &str) -> Value {
    json!({"gates": [{"name": "names check", "kind": "external", "mode": mode,
        "deadlineMinutes": 30}]})
}

/// The `Airlock.GateRequested` events published for request `id`.
fn gate_requests(s: &Stack, id: &str) -> Vec<Value> {
    s.notifications()
        .into_iter()
        .filter(|e| e.event_type == "Airlock.GateRequested" && e.data["requestId"] == id)
        .map(|e| e.data)
        .collect()
}

fn answer(result: &str) -> Value {
    json!({"revision": 1, "files": [{"name": "table.csv", "result": result,
        "message": "row 2 names a patient", "location": "row 2"}]})
}

#[tokio::test]
async fn an_external_gate_is_asked_with_read_links_and_its_answer_decides() {
    let s = Stack::start(external("block")).await;
    let r = submit(&s, "table.csv", b"name,n\nAda,120\n").await;
    assert_eq!(r["status"], "submitted", "waits for the gate: {r}");
    let id = r["id"].as_str().unwrap().to_string();
    let asked = gate_requests(&s, &id);
    assert_eq!(asked.len(), 1, "{asked:?}");
    let asked = &asked[0];
    assert_eq!(asked["gate"], "names check");
    assert_eq!(
        asked["answerPath"],
        format!("/api/workspaces/{WS1}/requests/{id}/gates/names%20check")
    );
    let file = &asked["files"][0];
    assert_eq!(file["name"], "table.csv");
    assert_eq!(
        file["sha256"],
        s.record(&id).files[0].sha256.clone().unwrap()
    );
    // The link reads the sealed copy, and only that: signed for the blob (`sr=b`), read, no
    // list, no write, no other file of the request.
    let url = file["url"].as_str().unwrap();
    assert!(url.contains("sr=b&sp=r&"), "{url}");
    let link = s.blobs.sas_client(url).unwrap();
    assert_eq!(
        &link.download("table.csv").unwrap()[..],
        b"name,n\nAda,120\n"
    );
    assert!(link.download("other.csv").is_err());
    assert!(link.upload("x.csv", b"x".to_vec()).is_err());
    assert!(link.list().is_err());
    // The same signature on the container is refused.
    let (path, query) = url.split_once('?').unwrap();
    let container = path.rsplit_once('/').unwrap().0;
    assert!(
        s.blobs
            .sas_client(&format!("{container}?{}", query.replace("sr=b", "sr=c")))
            .is_err()
    );

    // Reviewers see the gate waiting.
    let mike = s.token("mike", &[MANAGER], WS1);
    let report = gate_report(&s, &id).await;
    assert_eq!(report["gates"][1]["state"], "waiting", "{report}");
    assert_eq!(report["gates"][0]["name"], "malware scan");

    // Only the gate's service identity may answer.
    let path = format!("/api/workspaces/{WS1}/requests/{id}/gates/names check");
    let alice = s.token("alice", &[RESEARCHER], WS1);
    for who in [&alice, &mike] {
        let (status, body) = s.call("POST", &path, Some(who), Some(answer("pass"))).await;
        assert_eq!(status.as_u16(), 403, "{body}");
    }
    let elsewhere = s.token("svc-gate", &["AirlockGate"], WS2);
    let (status, _) = s
        .call("POST", &path, Some(&elsewhere), Some(answer("pass")))
        .await;
    assert_eq!(status.as_u16(), 401, "another workspace's token");
    let gate = s.token("svc-gate", &["AirlockGate"], WS1);
    // A gate cannot read the request itself.
    let (status, _) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}"),
            Some(&gate),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 403);
    // Malformed answers are 400 with the reason.
    let (status, body) = s
        .call(
            "POST",
            &path,
            Some(&gate),
            Some(json!({"revision": 1, "files": [{"name": "table.csv", "result": "maybe"}]})),
        )
        .await;
    assert_eq!(status.as_u16(), 400, "{body}");
    let (status, body) = s
        .call(
            "POST",
            &path,
            Some(&gate),
            Some(json!({"revision": 1, "files": []})),
        )
        .await;
    assert_eq!(status.as_u16(), 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing: table.csv"),
        "{body}"
    );
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{id}/gates/nope"),
            Some(&gate),
            Some(answer("pass")),
        )
        .await;
    assert_eq!(status.as_u16(), 400, "no such gate");

    // The gate fails the file: blocked, naming the file, the gate and the place.
    let receipt = s.ok("POST", &path, &gate, Some(answer("fail")), 200).await;
    assert_eq!(receipt["recorded"], true);
    s.settle().await;
    let r = s.get(WS1, &id, &mike).await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: table.csv: row 2 names a patient (names check, row 2)"
    );
    // Retried (a Logic App's retry): the same answer is fine; another is a conflict.
    let receipt = s.ok("POST", &path, &gate, Some(answer("fail")), 200).await;
    assert_eq!(receipt["recorded"], false);
    let (status, _) = s
        .call("POST", &path, Some(&gate), Some(answer("pass")))
        .await;
    assert_eq!(status.as_u16(), 409);
    assert!(s.actions(&id).await.contains(&"gate answered".to_string()));
}

#[tokio::test]
async fn a_warning_external_gate_passes_the_request_to_review_with_its_finding() {
    let s = Stack::start(external("warn")).await;
    let r = submit(&s, "table.csv", b"name,n\nAda,120\n").await;
    let id = r["id"].as_str().unwrap().to_string();
    let gate = s.token("svc-gate", &["AirlockGate"], WS1);
    s.ok(
        "POST",
        &format!("/api/workspaces/{WS1}/requests/{id}/gates/names%20check"),
        &gate,
        Some(answer("fail")),
        200,
    )
    .await;
    s.settle().await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let r = s.get(WS1, &id, &mike).await;
    assert_eq!(r["status"], "in_review", "{r}");
    assert_eq!(r["files"][0]["findings"][0]["rule"], "external");
    let report = gate_report(&s, &id).await;
    assert_eq!(report["gates"][1]["state"], "warned");
    assert_eq!(report["gates"][1]["answeredBy"], "svc-gate");
}

#[tokio::test]
async fn a_gate_that_answers_late_or_never_fails_the_request() {
    let s = Stack::start(external("block")).await;
    let r = submit(&s, "table.csv", b"name,n\nAda,120\n").await;
    let id = r["id"].as_str().unwrap().to_string();
    // Before the deadline Reconcile waits, whatever its re-drive delay.
    s.clock.advance(chrono::Duration::minutes(20));
    s.engine.reconcile().await.unwrap();
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "submitted");
    // Past it, an answer is refused...
    s.clock.advance(chrono::Duration::minutes(11));
    let gate = s.token("svc-gate", &["AirlockGate"], WS1);
    let path = format!("/api/workspaces/{WS1}/requests/{id}/gates/names%20check");
    let (status, body) = s
        .call("POST", &path, Some(&gate), Some(answer("pass")))
        .await;
    assert_eq!(status.as_u16(), 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("answers after the deadline do not count")
    );
    // ... and Reconcile fails the request, naming the gate.
    s.engine.reconcile().await.unwrap();
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "failed");
    assert!(
        r.status_message
            .as_deref()
            .unwrap()
            .starts_with("no answer from external gate(s) by their deadline: names check (due "),
        "{:?}",
        r.status_message
    );
    let report = gate_report(&s, &id).await;
    assert_eq!(report["gates"][1]["state"], "no_answer");
}

#[tokio::test]
async fn a_table_that_differs_from_a_released_one_by_a_small_count_is_flagged() {
    let s = Stack::start(json!({"gates": [
        {"name": "release ledger", "kind": "releaseLedger", "mode": "warn"},
        {"name": "sdc", "kind": "disclosure", "mode": "warn"},
    ]}))
    .await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let first = submit(&s, "cohort.csv", b"region,n\nNorth,47\nSouth,120\n").await;
    let first_id = first["id"].as_str().unwrap().to_string();
    s.action(
        WS1,
        &first_id,
        "review",
        &mike,
        Some(json!({"decision": "approved", "explanation": "ok", "revision": 1})),
    )
    .await;
    assert_eq!(s.record(&first_id).status.to_string(), "approved");
    // A week later the cohort has three more people in the North.
    let later = submit(&s, "cohort-v2.csv", b"region,n\nNorth,50\nSouth,120\n").await;
    assert_eq!(later["status"], "in_review");
    let finding = &later["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "differencing", "{later}");
    assert_eq!(finding["location"], "row \"north\", column \"n\"");
    assert!(
        finding["message"].as_str().unwrap().contains(&format!(
            "n is 50 here and 47 in \"cohort.csv\", released by request {first_id}"
        )),
        "{finding}"
    );
}

/// The workspace's allowed range restricts the external gate's read links as it restricts
/// every link (docs/configuration.md); they were issued without it.
#[tokio::test]
async fn an_external_gates_links_carry_the_workspaces_ip_range() {
    let mut policy = external("block");
    policy["allowedIpRanges"] = json!(["10.1.0.0/16"]);
    let s = Stack::start(policy).await;
    let r = submit(&s, "table.csv", b"name,n\nAda,120\n").await;
    let id = r["id"].as_str().unwrap().to_string();
    let asked = gate_requests(&s, &id);
    let url = asked[0]["files"][0]["url"].as_str().unwrap();
    assert!(url.contains("sip=10.1.0.0-10.1.255.255"), "{url}");
}

/// Identifiers warn, secrets block: an NHS number in a table goes to the reviewer with the
/// line it is on (never the number), a cloud key in a script stops the request.
#[tokio::test]
async fn identifiers_go_to_review_and_a_credential_blocks() {
    let s = Stack::start(json!({"gates": [
        {"name": "identifiers", "kind": "identifiers", "mode": "warn"},
        {"name": "secrets", "kind": "secrets", "mode": "block"}
    ]}))
    .await;
    let r = submit(&s, "patients.csv", b"id,n\n943 476 5919,12\n").await;
    assert_eq!(r["status"], "in_review", "{r}");
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "nhs_number");
    assert_eq!(finding["location"], "line 2");
    assert!(!r.to_string().contains("943 476"), "{r}");
    let r = submit(
        &s,
        "load.py",
        b"import boto3\nkey = 'AKIAIOSFODNN7EXAMPLE'\n",
    )
    .await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: load.py: an AWS access key id (secrets, line 2)"
    );
    let report = gate_report(&s, r["id"].as_str().unwrap()).await;
    let kinds: Vec<&str> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["malwareScan", "identifiers", "secrets"]);
}

/// Issue 25's table rules on the whole airlock: in a blocking disclosure gate, a suppressed
/// cell that the row total gives back blocks the request naming the cell; two tables of
/// one request that join into a finer table go to review as linked (a warning whatever the
/// gate's mode: a person judges it), each naming the other; an unreadable file under an
/// `identifiers` gate is uncertain, and the gate report does not call it checked.
#[tokio::test]
async fn totals_that_give_back_a_cell_block_and_linked_tables_go_to_review() {
    let s = Stack::start(disclosure("block")).await;
    let r = submit(
        &s,
        "by_sex.csv",
        b"region,male,female,total\nNorth,120,*,250\nSouth,200,150,350\n",
    )
    .await;
    assert_eq!(r["status"], "blocked_by_scan", "{r}");
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .contains("it is 130 (sdc, row 2, column \"female\")"),
        "{r}"
    );

    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    link.upload(
        "by_sex.csv",
        b"age_band,sex,n\n30-39,F,40\n30-39,M,50\n".to_vec(),
    )
    .unwrap();
    link.upload(
        "by_region.csv",
        b"age_band,region,n\n30-39,North,45\n30-39,South,45\n".to_vec(),
    )
    .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.get(WS1, &id, &alice).await;
    assert_eq!(r["status"], "in_review", "{r}");
    for (file, other) in [
        ("by_region.csv", "by_sex.csv"),
        ("by_sex.csv", "by_region.csv"),
    ] {
        let f = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == file)
            .unwrap();
        let linked = &f["findings"][0];
        assert_eq!(
            (linked["rule"].as_str(), linked["mode"].as_str()),
            (Some("linked_tables"), Some("warn")),
            "{f}"
        );
        assert!(
            linked["message"].as_str().unwrap().contains(other),
            "{linked}"
        );
        assert!(f.get("tableLabels").is_none(), "internal: {f}");
    }
    assert!(s.history(&id).await.iter().any(|e| {
        e.action == "gates"
            && e.message
                .as_deref()
                .is_some_and(|m| m.contains("linked tables"))
    }));

    let s = Stack::start(json!({"gates": [
        {"name": "identifiers", "kind": "identifiers", "mode": "warn"}
    ]}))
    .await;
    let r = submit(
        &s,
        "export.xlsx",
        b"PK\x03\x04\x14\0\0\0\x08\0 compressed \0\0",
    )
    .await;
    assert_eq!(r["status"], "in_review", "{r}");
    assert_eq!(r["files"][0]["findings"][0]["rule"], "uncertain", "{r}");
    let report = gate_report(&s, r["id"].as_str().unwrap()).await;
    let identifiers = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "identifiers")
        .unwrap();
    assert_eq!(identifiers["files"][0]["checked"], false, "{report}");
}
