//! ACRO's record read from a real one: `fixtures/acro/` was written by the `acro` package
//! (tests/python/make_record.py): output_0 passes, output_1 fails with the researcher's
//! exception, output_2 fails without one, and ACRO's session summaries are `DONT_RELEASE`.

use super::*;
use sha2::{Digest, Sha256};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/acro");

/// Every file of the real record, by its name relative to the record's folder.
fn record_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["", "checksums/"] {
        for entry in std::fs::read_dir(format!("{FIXTURE}/{dir}")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = format!("{dir}{}", entry.file_name().to_string_lossy());
                files.push((name, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn gates(json: serde_json::Value) -> Vec<Gate> {
    serde_json::from_value(json).unwrap()
}

/// What the seal keeps of a file, fed in small chunks as a stream would.
fn evidence(gates: &[Gate], name: &str, data: &[u8]) -> Option<Evidence> {
    let mut runner = GateRunner::new(gates, name)?;
    for piece in data.chunks(7) {
        runner.feed(piece);
    }
    runner.finish().evidence
}

struct Sealed {
    name: String,
    sha256: String,
    evidence: Option<Evidence>,
}

/// The files as the seal leaves them, under `folder`, with `edit` applied to the bytes first.
fn seal(
    files: &[(String, Vec<u8>)],
    folder: &str,
    gates: &[Gate],
    edit: impl Fn(&str, &mut Vec<u8>),
) -> Vec<Sealed> {
    files
        .iter()
        .map(|(name, data)| {
            let mut data = data.clone();
            edit(name, &mut data);
            let name = format!("{folder}{name}");
            Sealed {
                evidence: evidence(gates, &name, &data),
                sha256: hex::encode(Sha256::digest(&data)),
                name,
            }
        })
        .collect()
}

fn assess_sealed(sealed: &[Sealed], gates: &[Gate]) -> Assessment {
    let view: Vec<SealedFile<'_>> = sealed
        .iter()
        .map(|s| SealedFile {
            name: &s.name,
            sha256: Some(&s.sha256),
            evidence: s.evidence.as_ref(),
        })
        .collect();
    assess(
        &view,
        &acro_gate(gates).expect("the ACRO gate is on"),
        workspace_threshold(gates),
    )
}

fn found(a: &Assessment) -> Vec<(&str, &str)> {
    a.findings
        .iter()
        .map(|(file, f)| (file.as_str(), f.rule.as_str()))
        .collect()
}

#[test]
fn a_real_record_is_read_as_it_streams_past() {
    let files = record_files();
    let results = &files.iter().find(|(n, _)| n == "results.json").unwrap().1;
    let Some(Evidence::AcroResults(record)) = evidence(&[], "results.json", results) else {
        panic!("ACRO's results.json is read with no gate declared");
    };
    assert_eq!(record.version, "1.0.2");
    let statuses: Vec<(&str, &str)> = record
        .outputs
        .iter()
        .map(|o| (o.uid.as_str(), o.status.as_str()))
        .collect();
    // By ACRO's name for each output.
    assert_eq!(
        statuses,
        [
            ("2ndary_risk_summary_csv-DONT_RELEASE", "review"),
            ("2ndary_risk_summary_json-DONT_RELEASE", "review"),
            ("output_0", "pass"),
            ("output_1", "fail"),
            ("output_2", "fail"),
        ]
    );
    let output = |uid: &str| record.outputs.iter().find(|o| o.uid == uid).unwrap();
    let o1 = output("output_1");
    assert_eq!(o1.files, ["output_1_0.csv"]);
    assert_eq!(
        o1.exception.as_deref(),
        Some("the small cells are people over 85 in a synthetic data set")
    );
    assert!(o1.failed_checks["MinimumThresholdCheck"] > 0);
    assert!(output("output_0").failed_checks.is_empty());
    assert!(output("output_2").exception.is_none());
    assert!(output("2ndary_risk_summary_csv-DONT_RELEASE").do_not_release());

    let config = &files.iter().find(|(n, _)| n == "config.json").unwrap().1;
    assert_eq!(
        evidence(&[], "config.json", config),
        Some(Evidence::AcroConfig {
            safe_threshold: Some(10)
        })
    );
    let sum = &files
        .iter()
        .find(|(n, _)| n == "checksums/output_0_0.csv.txt")
        .unwrap()
        .1;
    let data = &files.iter().find(|(n, _)| n == "output_0_0.csv").unwrap().1;
    assert_eq!(
        evidence(&[], "checksums/output_0_0.csv.txt", sum),
        Some(Evidence::AcroChecksum {
            sha256: hex::encode(Sha256::digest(data))
        })
    );
    // Nothing is kept for any other file, and with no gate on no runner is made for it.
    assert!(GateRunner::new(&[], "output_0_0.csv").is_none());
}

#[test]
fn the_record_checked_against_the_sealed_files() {
    let files = record_files();
    let sealed = seal(&files, "", &[], |_, _| {});
    let a = assess_sealed(&sealed, &[]);
    // Only the output that failed without an exception is a finding.
    assert_eq!(found(&a), [("output_2_0.csv", "acro_fail")]);
    let finding = &a.findings[0].1;
    assert_eq!(finding.gate, DEFAULT_ACRO_GATE);
    assert_eq!(finding.mode, GateMode::Warn);
    assert!(
        finding
            .message
            .starts_with("ACRO's checks failed for output_2 (MinimumThresholdCheck: "),
        "{}",
        finding.message
    );
    assert!(
        finding
            .remediation
            .as_deref()
            .unwrap()
            .contains("add_exception")
    );
    // Each output's evidence goes beside its file.
    assert_eq!(a.outputs["output_1_0.csv"].status, "fail");
    assert_eq!(a.outputs["output_0_0.csv"].status, "pass");
    assert!(!a.outputs.contains_key("results.json"));
    // The record and what ACRO says must not be released are supporting files.
    let mut supporting = vec![
        "config.json",
        "results.json",
        "session_summary.csv",
        "session_summary.json",
    ];
    supporting.extend(
        files
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("checksums/")),
    );
    supporting.sort();
    assert_eq!(a.supporting, supporting);
}

#[test]
fn what_the_record_reveals_table() {
    let files = record_files();
    type Edit = fn(&str, &mut Vec<u8>);
    type Case<'a> = (
        &'a str,
        serde_json::Value,
        &'a str,
        Edit,
        Vec<(&'a str, &'a str)>,
    );
    let no_edit: Edit = |_, _| {};
    let cases: Vec<Case> = vec![
        (
            "an output edited after ACRO checked it",
            serde_json::json!([]),
            "",
            |name, data| {
                if name == "output_0_0.csv" {
                    data.extend_from_slice(b"extra,1,1\n");
                }
            },
            vec![
                ("output_0_0.csv", "acro_modified"),
                ("output_2_0.csv", "acro_fail"),
            ],
        ),
        (
            "a workspace stricter than ACRO's configuration",
            serde_json::json!([{"name": "sdc", "kind": "disclosure", "threshold": 20}]),
            "",
            no_edit,
            vec![
                ("output_2_0.csv", "acro_fail"),
                ("results.json", "acro_threshold"),
            ],
        ),
        (
            "the same record in a folder of the request",
            serde_json::json!([]),
            "acro/",
            no_edit,
            vec![("acro/output_2_0.csv", "acro_fail")],
        ),
        (
            "a record cut short",
            serde_json::json!([]),
            "",
            |name, data| {
                if name == "results.json" {
                    data.truncate(data.len() / 2);
                }
            },
            vec![("results.json", "acro_unreadable")],
        ),
        (
            "a checksum that is not one",
            serde_json::json!([]),
            "",
            |name, data| {
                if name == "checksums/output_0_0.csv.txt" {
                    *data = b"not a checksum".to_vec();
                }
                if name == "output_0_0.csv" {
                    data.push(b'\n');
                }
            },
            vec![("output_2_0.csv", "acro_fail")],
        ),
    ];
    for (label, policy, folder, edit, expected) in cases {
        let g = gates(policy);
        let sealed = seal(&files, folder, &g, edit);
        let a = assess_sealed(&sealed, &g);
        let mut got = found(&a);
        got.sort();
        assert_eq!(got, expected, "{label}");
    }

    // Without config.json the threshold ACRO used cannot be told.
    let without: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(n, _)| n != "config.json")
        .cloned()
        .collect();
    let a = assess_sealed(&seal(&without, "", &[], no_edit), &[]);
    assert!(found(&a).contains(&("results.json", "acro_threshold")));
    assert!(!a.supporting.contains(&"config.json".to_string()));
}

#[test]
fn the_policy_names_the_gate_sets_its_mode_or_turns_it_off() {
    let files = record_files();
    let results = &files.iter().find(|(n, _)| n == "results.json").unwrap().1;
    let block = gates(serde_json::json!([
        {"name": "ACRO record", "kind": "acro", "mode": "block", "requireJustification": true}
    ]));
    let a = assess_sealed(&seal(&files, "", &block, |_, _| {}), &block);
    let f = &a.findings[0].1;
    assert_eq!(
        (f.gate.as_str(), f.mode, f.needs_justification),
        ("ACRO record", GateMode::Block, false)
    );
    let off = gates(serde_json::json!([{"name": "acro", "kind": "acro", "mode": "off"}]));
    assert!(acro_gate(&off).is_none());
    assert!(GateRunner::new(&off, "results.json").is_none());
    // Another gate on: the runner runs it but keeps nothing of ACRO's.
    let mut off_too = off.clone();
    off_too.extend(gates(
        serde_json::json!([{"name": "f", "kind": "filePolicy"}]),
    ));
    assert_eq!(evidence(&off_too, "results.json", results), None);
}

#[test]
fn someone_elses_results_json_is_not_acro() {
    for other in [
        &b"{\"results\": [1, 2, 3]}"[..],
        b"{\"version\": 2, \"results\": {\"a\": {\"score\": 1}}}",
        b"not json at all",
        b"",
    ] {
        assert_eq!(evidence(&[], "results.json", other), None);
    }
    assert_eq!(evidence(&[], "config.json", b"{\"threads\": 4}"), None);
    // Larger than the airlock reads: unreadable when it says ACRO, ignored otherwise.
    let mut big = b"{\"tool\": {\"name\": \"ACRO\"}, \"results\": {".to_vec();
    big.resize(MAX_RESULTS_BYTES + 10, b' ');
    assert!(matches!(
        evidence(&[], "out/results.json", &big),
        Some(Evidence::AcroUnreadable { .. })
    ));
    let mut other = b"{\"results\": {".to_vec();
    other.resize(MAX_RESULTS_BYTES + 10, b' ');
    assert_eq!(evidence(&[], "results.json", &other), None);
}
