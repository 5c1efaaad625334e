//! Gates on the real local stack: a workspace that blocks small counts and disguised
//! executables, and one that only warns, each seen through the API as a researcher and a
//! manager would. The sealed copy in Azurite is what is checked, as it is hashed.

use airlock::domain::Workspace;
use airlock_local::testing::*;
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::audience;
use airlock_testkit::fixtures;
use serde_json::json;
use std::time::Duration;

fn workspace(id: &str, short: &str, mode: &str) -> Workspace {
    fixtures::workspace(
        id,
        short,
        json!({"gates": [
            {"name": "file types", "kind": "filePolicy", "mode": "block"},
            {"name": "small counts", "kind": "disclosure", "mode": mode, "threshold": 10},
        ]}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_count_of_three_is_blocked_or_warned_as_the_policy_says() {
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "gates",
        DeliveryOptions::default(),
        vec![
            workspace("ws-strict", "strict", "block"),
            workspace("ws-lenient", "lenient", "warn"),
        ],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let table: &[u8] = b"region,n,mean\nNorth,125,4.5\nSouth,3,2.0\n";

    let strict = stack.token("rita", &["WorkspaceResearcher"], "ws-strict");
    let id = c
        .submitted("ws-strict", &strict, "export", &[("counts.csv", table)])
        .await;
    let r = c.wait("ws-strict", &id, &strict, "blocked_by_scan").await;
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: counts.csv: count 3 is below the threshold of 10 (small counts, row 3, column \"n\")"
    );

    // A Windows executable named as a table is blocked whatever the disclosure mode.
    let lenient = stack.token("rita", &["WorkspaceResearcher"], "ws-lenient");
    let id = c
        .submitted(
            "ws-lenient",
            &lenient,
            "export",
            &[("results.csv", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")],
        )
        .await;
    let r = c.wait("ws-lenient", &id, &lenient, "blocked_by_scan").await;
    assert!(
        r["statusMessage"]
            .as_str()
            .unwrap()
            .contains("the content is a Windows executable (PE) (file types)"),
        "{r}"
    );

    // Warn: the manager reviews the table with the finding on the file.
    let manager = stack.token("mona", &["AirlockManager"], "ws-lenient");
    let id = c
        .submitted("ws-lenient", &lenient, "export", &[("counts.csv", table)])
        .await;
    let r = c.wait("ws-lenient", &id, &manager, "in_review").await;
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(finding["gate"], "small counts");
    assert_eq!(finding["mode"], "warn");
    assert_eq!(finding["location"], "row 3, column \"n\"");
}

/// External gates on the real stack, with the example gate service (docs/gates.md) as the
/// organisation's gate: it is asked through the notification topic, reads the sealed files
/// in Azurite through the event's links, and answers through the API with its own token.
/// One workspace's gate answers at once, one answers after its one-minute deadline, one
/// never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_gate_decides_and_one_that_is_late_or_silent_fails_the_request() {
    use airlock_local::example_gate::{ExampleGate, GateOptions};
    let gated = |id: &str, short: &str, gate: &str| -> Workspace {
        serde_json::from_value(json!({
            "id": id, "displayName": id, "shortId": short, "tokenAudience": audience(id),
            "policy": {"gates": [
                {"name": gate, "kind": "external", "mode": "block", "deadlineMinutes": 1,
                 "answeredBy": ["svc-gate"]},
            ]},
        }))
        .unwrap()
    };
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "extgates",
        DeliveryOptions::default(),
        vec![
            gated("ws-prompt", "prompt", "identifiers"),
            gated("ws-slow", "slow", "identifiers slow"),
            gated("ws-down", "down", "identifiers down"),
        ],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let issuer = airlock_testkit::TokenIssuer::dev();
    let token: airlock_local::example_gate::TokenSource = std::sync::Arc::new(move |ws: &str| {
        issuer.mint(&airlock_testkit::TokenSpec::new(
            "svc-gate",
            &["AirlockGate"],
            &audience(ws),
        ))
    });
    let gate = |name: &str, delay: u64, silent: bool| GateOptions {
        api_url: stack.api_url.clone(),
        gate: name.into(),
        token: token.clone(),
        delay: Duration::from_secs(delay),
        silent,
    };
    let prompt = ExampleGate::start(gate("identifiers", 0, false))
        .await
        .unwrap();
    let slow = ExampleGate::start(gate("identifiers slow", 65, false))
        .await
        .unwrap();
    let down = ExampleGate::start(gate("identifiers down", 0, true))
        .await
        .unwrap();
    stack.engine.set_options(DeliveryOptions {
        notification_webhooks: vec![
            prompt.webhook_url.clone(),
            slow.webhook_url.clone(),
            down.webhook_url.clone(),
        ],
        ..stack.engine.options()
    });
    let c = StackClient::new(&stack);
    let clean: &[u8] = b"region,n\nNorth,120\n";
    let identifying: &[u8] = b"nhs_number,n\n9434765919,1\n";

    // The prompt gate passes a clean table and blocks one with an identifier, naming it.
    let rita = stack.token("rita", &["WorkspaceResearcher"], "ws-prompt");
    let passed = c
        .submitted("ws-prompt", &rita, "export", &[("counts.csv", clean)])
        .await;
    let blocked = c
        .submitted("ws-prompt", &rita, "export", &[("ids.csv", identifying)])
        .await;
    // Slow and silent gates, asked at the same time.
    let sam = stack.token("sam", &["WorkspaceResearcher"], "ws-slow");
    let late = c
        .submitted("ws-slow", &sam, "export", &[("counts.csv", clean)])
        .await;
    let dan = stack.token("dan", &["WorkspaceResearcher"], "ws-down");
    let never = c
        .submitted("ws-down", &dan, "export", &[("counts.csv", clean)])
        .await;

    let r = c.wait("ws-prompt", &passed, &rita, "in_review").await;
    assert!(r.get("files").is_some());
    let r = c
        .wait("ws-prompt", &blocked, &rita, "blocked_by_scan")
        .await;
    assert_eq!(
        r["statusMessage"],
        "blocked by policy: ids.csv: holds something shaped like an NHS number (identifiers, line 2)"
    );
    let mona = stack.token("mona", &["AirlockManager"], "ws-prompt");
    let report = c
        .ok(
            "GET",
            &format!("/workspaces/ws-prompt/requests/{passed}/gates"),
            &mona,
            None,
        )
        .await;
    assert_eq!(report["gates"][1]["state"], "passed", "{report}");
    assert_eq!(report["gates"][1]["answeredBy"], "svc-gate");
    // The event named the sealed copy's sha256, which the record holds.
    let asked = prompt
        .asked()
        .into_iter()
        .find(|a| a["requestId"] == passed.as_str())
        .expect("the prompt gate was asked");
    let record = c
        .ok(
            "GET",
            &format!("/workspaces/ws-prompt/requests/{passed}"),
            &mona,
            None,
        )
        .await;
    assert_eq!(
        asked["files"][0]["sha256"],
        record["airlockRequest"]["files"][0]["sha256"]
    );

    // Past the deadline: Reconcile fails both; the late answer was refused (409).
    tokio::time::sleep(Duration::from_secs(62)).await;
    stack.engine.reconcile().await.expect("reconcile runs");
    for (ws, id, token) in [("ws-slow", &late, &sam), ("ws-down", &never, &dan)] {
        let r = c.wait(ws, id, token, "failed").await;
        assert!(
            r["statusMessage"]
                .as_str()
                .unwrap()
                .starts_with("no answer from external gate(s) by their deadline"),
            "{r}"
        );
    }
    for _ in 0..100 {
        if !slow.answered().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(slow.answered()[0].status, 409, "{:?}", slow.answered());
    assert!(down.answered().is_empty());
    assert_eq!(down.asked().len(), 1, "asked once");
}

/// The release ledger on the real stack (Cosmos emulator): a table approved and released,
/// then a new one whose North count is 3 higher, is shown to the reviewer as differencing,
/// naming the row, the column and the earlier release; the same bytes again as a re-release.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overlap_with_an_earlier_release_is_shown_to_the_reviewer() {
    let ws: Workspace = serde_json::from_value(json!({
        "id": "ws-ledger", "displayName": "ledger", "shortId": "ledger",
        "tokenAudience": audience("ws-ledger"),
        "policy": {"gates": [
            {"name": "release ledger", "kind": "releaseLedger", "mode": "warn"},
            {"name": "small counts", "kind": "disclosure", "mode": "warn"},
        ]},
    }))
    .unwrap();
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "ledger",
        DeliveryOptions::default(),
        vec![ws],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], "ws-ledger");
    let mona = stack.token("mona", &["AirlockManager"], "ws-ledger");
    let first: &[u8] = b"region,n\nNorth,47\nSouth,120\n";
    let id = c
        .submitted("ws-ledger", &rita, "export", &[("cohort.csv", first)])
        .await;
    c.wait("ws-ledger", &id, &mona, "in_review").await;
    c.act(
        "ws-ledger",
        &id,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "fine", "revision": 1})),
    )
    .await;
    c.wait("ws-ledger", &id, &mona, "approved").await;

    let later = c
        .submitted(
            "ws-ledger",
            &rita,
            "export",
            &[("cohort-v2.csv", b"region,n\nNorth,50\nSouth,120\n")],
        )
        .await;
    let r = c.wait("ws-ledger", &later, &mona, "in_review").await;
    let finding = &r["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "differencing", "{r}");
    assert_eq!(finding["location"], "row \"north\", column \"n\"");
    assert!(
        finding["message"].as_str().unwrap().starts_with(&format!(
            "n is 50 here and 47 in \"cohort.csv\", released by request {id} on "
        )),
        "{finding}"
    );
    let again = c
        .submitted("ws-ledger", &rita, "export", &[("copy.csv", first)])
        .await;
    let r = c.wait("ws-ledger", &again, &mona, "in_review").await;
    assert_eq!(
        r["files"][0]["findings"][0]["rule"], "already_released",
        "{r}"
    );
}

/// A record written by the real `acro` package (installed on first use) uploaded with its
/// outputs to the real stack: the sealed copies in Azurite are what is compared with ACRO's
/// checksums; the reviewer sees ACRO's verdict beside each output; the record and ACRO's
/// DONT_RELEASE summaries never reach the approved stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acro_record_is_evidence_in_the_review_and_is_never_released() {
    let out = std::env::temp_dir().join(format!("airlock-acro-{}", uuid::Uuid::new_v4()));
    airlock_system_tests::acro_record(&out);
    let mut files = fixtures::folder_files(&out, "acro/");
    for (name, data) in &mut files {
        if name == "acro/output_0_0.csv" {
            // Edited after ACRO checked it.
            data.extend_from_slice(b"west,100,100\n");
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "acro",
        DeliveryOptions::default(),
        vec![fixtures::workspace(
            "ws-acro",
            "acro",
            json!({"gates": [
                {"name": "small counts", "kind": "disclosure", "mode": "warn", "threshold": 10}
            ]}),
        )],
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], "ws-acro");
    let mona = stack.token("mona", &["AirlockManager"], "ws-acro");
    let named: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let id = c.submitted("ws-acro", &rita, "export", &named).await;
    let r = c.wait("ws-acro", &id, &mona, "in_review").await;
    let file = |name: &str| {
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {r}"))
            .clone()
    };
    let rules = |name: &str| -> Vec<String> {
        file(name)["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "{} {}",
                    f["gate"].as_str().unwrap(),
                    f["rule"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(rules("acro/output_0_0.csv"), ["acro acro_modified"]);
    assert_eq!(rules("acro/output_2_0.csv"), ["acro acro_fail"]);
    // ACRO's columns are its table's categories, not counts the disclosure gate knows:
    // ACRO's record is what shows the small cells here.
    assert!(rules("acro/output_1_0.csv").is_empty());
    let excepted = file("acro/output_1_0.csv");
    assert_eq!(excepted["acro"]["status"], "fail");
    assert_eq!(
        excepted["acro"]["exception"],
        "the small cells are people over 85 in a synthetic data set"
    );
    for supporting in [
        "acro/results.json",
        "acro/config.json",
        "acro/session_summary.csv",
    ] {
        assert_eq!(file(supporting)["supporting"], true, "{supporting}");
    }

    c.ok(
        "POST",
        &format!("/workspaces/ws-acro/requests/{id}/review"),
        &mona,
        Some(
            json!({"decision": "approved", "explanation": "checked with ACRO's record", "files": [
                {"name": "acro/output_0_0.csv", "decision": "approved", "overrides": [
                    {"rule": "acro_modified", "rationale": "the added row's cells are 100"}]},
                {"name": "acro/output_2_0.csv", "decision": "approved", "overrides": [
                    {"rule": "acro_fail", "rationale": "synthetic data"}]}
            ]}),
        ),
    )
    .await;
    c.wait("ws-acro", &id, &rita, "approved").await;
    let download = c.link("ws-acro", &id, &rita).await;
    for (name, data) in &files {
        let got = download.download(name).await;
        if name.starts_with("acro/output_") {
            assert_eq!(got.as_ref(), Ok(data), "{name} is released as sealed");
        } else {
            assert_eq!(got, Err(404), "{name} is evidence, never released");
        }
    }
}

/// The `identifiers` gate of the demo workspace `ws-gates` (infra/local/workspaces.json) on
/// files made by the libraries that make them in the wild: Pillow's PNG with EXIF GPS tags
/// (an `eXIf` chunk, big-endian TIFF), pydicom's DICOM naming its patient, a VCF with sample
/// columns; and their harmless twins (no EXIF, patient tags emptied), which pass without an
/// `uncertain` finding because their headers were read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identifiers_in_files_made_by_real_libraries_go_to_review() {
    let out = std::env::temp_dir().join(format!("airlock-identifying-{}", uuid::Uuid::new_v4()));
    airlock_system_tests::identifying_files(&out);
    let files = fixtures::folder_files(&out, "");
    std::fs::remove_dir_all(&out).unwrap();
    assert_eq!(
        files.len(),
        5,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let stack = start_stack(
        &airlock_system_tests::handler_bin(),
        "identifying",
        DeliveryOptions::default(),
        airlock_testkit::demo::workspaces(),
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let c = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], "ws-gates");
    let mona = stack.token("mona", &["AirlockManager"], "ws-gates");
    let named: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let id = c.submitted("ws-gates", &rita, "export", &named).await;
    let r = c.wait("ws-gates", &id, &mona, "in_review").await;
    let rules = |name: &str| -> Vec<String> {
        let file = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {r}"));
        file["findings"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        format!(
                            "{} {} {}",
                            f["gate"].as_str().unwrap(),
                            f["mode"].as_str().unwrap(),
                            f["rule"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(rules("photo.png"), ["identifiers warn exif_gps"]);
    assert_eq!(rules("scan.dcm"), ["identifiers warn dicom"]);
    assert_eq!(rules("calls.vcf"), ["identifiers warn vcf_genotypes"]);
    for harmless in ["plain.png", "anonymised.dcm"] {
        assert!(
            rules(harmless).is_empty(),
            "{harmless}: {:?}",
            rules(harmless)
        );
    }
    // The finding names the tags, never the patient.
    assert!(!r.to_string().contains("Doe^Jane"), "{r}");
    assert!(!r.to_string().contains("9434765919"), "{r}");
}
