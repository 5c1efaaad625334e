//! A researcher's ACRO record as evidence: the real record in `airlock-domain/fixtures/acro`
//! (written by the `acro` package) uploaded with its outputs, checked before submit and after
//! the seal, shown beside each output, and never released itself.

use crate::common::*;
use serde_json::json;

/// The record's files as a researcher uploads ACRO's output folder: under `acro/`.
fn acro_folder() -> Vec<(String, Vec<u8>)> {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../airlock-domain/fixtures/acro"
    );
    airlock_testkit::fixtures::folder_files(std::path::Path::new(root), "acro/")
}

#[tokio::test]
async fn an_acro_record_is_evidence_in_preflight_and_review_and_never_leaves() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let rita = s.token("rita", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    for (name, mut data) in acro_folder() {
        // The passing table edited after ACRO checked it.
        if name == "acro/output_0_0.csv" {
            data.extend_from_slice(b"west,1,1\n");
        }
        link.upload(&name, data).unwrap();
    }
    let path = |tail: &str| format!("/api/workspaces/{WS1}/requests/{id}{tail}");

    // Before submit: the researcher sees what the reviewer will.
    let report = s.ok("POST", &path("/preflight"), &alice, None, 200).await;
    let rules = |files: &serde_json::Value| -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = files
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                f["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |x| {
                        (
                            f["name"].as_str().unwrap().to_string(),
                            x["rule"].as_str().unwrap().to_string(),
                        )
                    })
            })
            .collect();
        found.sort();
        found
    };
    let expected = vec![
        (
            "acro/output_0_0.csv".to_string(),
            "acro_modified".to_string(),
        ),
        ("acro/output_2_0.csv".to_string(), "acro_fail".to_string()),
    ];
    assert_eq!(rules(&report["files"]), expected, "{report}");
    // Warnings: submitting is not refused.
    assert_eq!(report["wouldBlock"], false);

    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let shown = s.ok("GET", &path(""), &rita, None, 200).await;
    let request = &shown["airlockRequest"];
    assert_eq!(request["status"], "in_review", "{request}");
    assert_eq!(rules(&request["files"]), expected);
    let file = |name: &str| {
        request["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    // Each output's evidence beside its file: ACRO's status, the checks, the exception.
    let excepted = file("acro/output_1_0.csv");
    assert_eq!(excepted["acro"]["uid"], "output_1");
    assert_eq!(excepted["acro"]["status"], "fail");
    assert_eq!(
        excepted["acro"]["exception"],
        "the small cells are people over 85 in a synthetic data set"
    );
    assert!(excepted["acro"]["failedChecks"]["MinimumThresholdCheck"].as_u64() > Some(0));
    assert!(excepted.get("findings").is_none());
    assert_eq!(file("acro/output_0_0.csv")["acro"]["status"], "pass");
    // The record itself is evidence, not a result; the stored evidence is not shown.
    for supporting in [
        "acro/results.json",
        "acro/config.json",
        "acro/checksums/output_0_0.csv.txt",
        "acro/session_summary.json",
    ] {
        assert_eq!(file(supporting)["supporting"], true, "{supporting}");
        assert!(file(supporting).get("evidence").is_none());
    }
    assert!(file("acro/output_1_0.csv").get("supporting").is_none());
    let trail = s.history(&id).await;
    assert!(
        trail.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|d| d.starts_with("ACRO record read: 5 files mapped"))),
        "{trail:?}"
    );
    // The gate report says which files ACRO's record covered.
    let report = s.ok("GET", &path("/gates"), &rita, None, 200).await;
    let acro = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "acro")
        .expect("the ACRO gate is in the report")
        .clone();
    assert_eq!(acro["mode"], "warn");
    let covered: Vec<&str> = acro["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checked"] == true)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(covered.len(), 13, "{acro}");

    s.ok(
        "POST",
        &path("/review"),
        &rita,
        Some(
            json!({"decision": "approved", "explanation": "ACRO's exception holds", "revision": 1,
            "files": [
                {"name": "acro/output_0_0.csv", "decision": "approved", "overrides": [
                    {"rule": "acro_modified", "rationale": "one more row, all cells above 10"}]},
                {"name": "acro/output_2_0.csv", "decision": "approved", "overrides": [
                    {"rule": "acro_fail", "rationale": "the data set is synthetic"}]}
            ]}),
        ),
        200,
    )
    .await;
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
    // The approval's notification says which warnings were overridden, by whom and why; the
    // trail has the overrides as a decision of their own.
    let note = s
        .notifications()
        .into_iter()
        .map(|e| e.data)
        .find(|n| n["request"]["id"] == id && n["request"]["status"] == "approval_in_progress")
        .expect("a notification of the approval");
    let warning = note["request"]["gateWarnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["rule"] == "acro_fail")
        .unwrap()
        .clone();
    assert_eq!(
        warning["overridden"],
        json!([{"by": "rita (local)", "rationale": "the data set is synthetic"}])
    );
    assert!(s.actions(&id).await.contains(&"override".to_string()));
    let mut released: Vec<String> = s
        .data_of(&id)
        .into_iter()
        .filter(|(stage, _)| stage.starts_with("stalexapp"))
        .flat_map(|(_, names)| names)
        .collect();
    released.sort();
    assert_eq!(
        released,
        [
            "acro/output_0_0.csv",
            "acro/output_1_0.csv",
            "acro/output_2_0.csv"
        ]
    );
}

/// A policy that blocks on ACRO's findings stops the request before review, naming them.
#[tokio::test]
async fn a_blocking_acro_gate_stops_an_output_that_failed_without_an_exception() {
    let s =
        Stack::start(json!({"gates": [{"name": "ACRO", "kind": "acro", "mode": "block"}]})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    for (name, data) in acro_folder() {
        link.upload(&name, data).unwrap();
    }
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.status.to_string(), "blocked_by_scan");
    assert!(
        r.status_message.as_deref().unwrap().starts_with(
            "blocked by policy: acro/output_2_0.csv: ACRO's checks failed for output_2"
        ),
        "{:?}",
        r.status_message
    );
}
