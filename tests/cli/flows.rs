//! Whole flows on the local stack, through the CLI only: an export of a folder to approved and
//! downloaded with every hash verified; an import sent back for changes and resubmitted; an
//! interrupted upload resumed; and the refusals a person meets, each one clear line and a
//! meaningful exit code.

use crate::support::*;
use airlock_local::stack::LocalStack;
use airlock_local::testing::{stack_options, start_stack_with};
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo;
use std::path::Path;
use std::time::Duration;

pub async fn stack(name: &str) -> (LocalStack, std::path::PathBuf) {
    stack_provisioned(name, &[]).await
}

/// The stack, with the stage accounts of workspaces not registered yet (`short_ids`), as
/// Terraform's workspace module leaves them before an operator registers the workspace.
pub async fn stack_provisioned(name: &str, short_ids: &[&str]) -> (LocalStack, std::path::PathBuf) {
    let mut options = stack_options(
        &handler_bin(),
        name,
        DeliveryOptions::default(),
        demo::workspaces(),
        Duration::from_secs(5),
        vec![],
    );
    options.provisioned_short_ids = short_ids.iter().map(|s| s.to_string()).collect();
    let stack = start_stack_with(options).await;
    let root = scratch(name);
    std::fs::write(
        root.join("stack.json"),
        serde_json::to_vec_pretty(&stack.summary()).unwrap(),
    )
    .unwrap();
    (stack, root)
}

pub async fn login(root: &Path, name: &str, roles: &str) -> Person {
    let person = Person::new(root, name);
    let stack_json = root.join("stack.json");
    person
        .run(&[
            "login",
            "--local",
            "--stack",
            stack_json.to_str().unwrap(),
            "--user",
            name,
            "--roles",
            roles,
            "--workspace",
            "ws-alpha",
        ])
        .await
        .ok();
    person
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn file_names(request: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = request["airlockRequest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_a_folder_review_it_and_download_it_verified() {
    let (_stack, root) = stack("cliexp").await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;
    let mona = login(&root, "mona", "AirlockManager").await;

    // A folder with nested files, a unicode name and a space.
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("results/table.csv", b"id,value\n1,0.25\n".to_vec()),
        ("results/figures/plot.png", noise(3 * 1024 * 1024 + 17, 7)),
        (
            "results/r\u{e9}sum\u{e9} notes.txt",
            b"context for the reviewer".to_vec(),
        ),
    ];
    for (name, data) in &files {
        write(&root.join(name), data);
    }
    let exported = rita
        .run(&[
            "export",
            "results",
            "--title",
            "Results",
            "--justification",
            "Figures for the paper",
            "--wait",
        ])
        .await
        .ok();
    assert!(
        exported.stderr.contains("in_review") && exported.stderr.contains("sha256 matches"),
        "the steps are shown as they happen: {}",
        exported.stderr
    );
    // Every transition, in order, even those that came and went between two polls.
    let statuses: Vec<&str> = exported
        .stderr
        .lines()
        .filter_map(|l| l.trim().split_once(" s  ").map(|(_, s)| s))
        .collect();
    assert_eq!(statuses, ["submitted", "in_review"], "{}", exported.stderr);
    let id = exported
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("created export request "))
        .expect("the request's id is shown")
        .trim()
        .to_string();
    assert!(exported.stdout.contains("in_review"), "{}", exported.stdout);
    let request = rita.run(&["status", &id, "--json"]).await.ok().json();
    assert_eq!(
        rita.run(&["status", &id, "--id"]).await.ok().stdout.trim(),
        id,
        "--id prints the id alone"
    );
    assert_eq!(request["airlockRequest"]["status"], "in_review");
    // The gate report: the malware scan passed every file.
    let gates = rita.run(&["gates", &id]).await.ok();
    assert!(
        gates
            .stdout
            .lines()
            .any(|l| l.starts_with("passed") && l.contains("malware scan")),
        "{}",
        gates.stdout
    );
    let report = rita.run(&["gates", &id, "--json"]).await.ok().json();
    assert_eq!(report["gates"][0]["kind"], "malwareScan");
    assert_eq!(report["gates"][0]["files"].as_array().unwrap().len(), 3);
    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert_eq!(file_names(&request), expected);
    for f in request["airlockRequest"]["files"].as_array().unwrap() {
        let local = files.iter().find(|(n, _)| *n == f["name"]).unwrap();
        assert_eq!(f["sha256"], sha256_hex(&local.1).as_str(), "{f}");
    }

    // The manager finds it waiting, and the researcher cannot review their own export.
    let waiting = mona
        .run(&["list", "--awaiting-review", "--json"])
        .await
        .ok();
    assert!(
        waiting
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["airlockRequest"]["id"] == id.as_str()),
        "{}",
        waiting.stdout
    );
    rita.run(&["review", &id, "--approve"])
        .await
        .refused(1, "airlock: ");
    mona.run(&["review", &id, "--reject"])
        .await
        .refused(2, "--explanation");
    // Not approved yet: nothing to download.
    rita.run(&["download", &id, "early"])
        .await
        .refused(1, "not approved");

    // Review: download the sealed files (verified), then approve the revision shown.
    let decided = mona
        .run(&[
            "review",
            &id,
            "--download",
            "review",
            "--approve",
            "--explanation",
            "aggregate only",
            "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(decided["airlockRequest"]["reviews"][0]["revision"], 1);
    for (name, data) in &files {
        assert_eq!(
            &std::fs::read(root.join("review").join(name)).unwrap(),
            data
        );
    }

    // Download (waiting for the approved copy if need be): byte for byte, hashes verified;
    // a second run finds everything already there.
    let downloaded = rita.run(&["download", &id, "out"]).await.ok();
    assert!(
        downloaded.stderr.contains("every sha256 verified"),
        "{}",
        downloaded.stderr
    );
    for (name, data) in &files {
        assert_eq!(&std::fs::read(root.join("out").join(name)).unwrap(), data);
    }
    let again = rita.run(&["download", &id, "out"]).await.ok();
    assert_eq!(
        again.stderr.matches("already here").count(),
        files.len(),
        "{}",
        again.stderr
    );

    let history = rita.run(&["history", &id]).await.ok();
    assert!(
        history.stdout.contains("hash chain: verified"),
        "{}",
        history.stdout
    );
    assert!(
        history.stdout.contains("review: approved"),
        "{}",
        history.stdout
    );

    // The governance record: saved, verified offline with the files downloaded, and not
    // verified once edited or beside a changed file.
    rita.run(&["record", &id, "--output", "record.json"])
        .await
        .ok();
    rita.run(&["record", &id, "--format", "html", "--output", "record.html"])
        .await
        .ok();
    assert!(
        std::fs::read_to_string(root.join("record.html"))
            .unwrap()
            .contains("hash chain verifies")
    );
    let verified = rita
        .run(&["verify", "record.json", "--files", "out"])
        .await
        .ok();
    assert!(
        verified.stdout.contains("verifies") && verified.stdout.contains("3 file(s)"),
        "{}",
        verified.stdout
    );
    // The Five Safes RO-Crate saved beside the downloaded files is a complete RO-Crate 1.1,
    // parsed and validated offline by the tools a receiving TRE would use; the metadata
    // without the released files is not (its data entities are missing).
    rita.run(&[
        "record",
        &id,
        "--format",
        "ro-crate",
        "--output",
        "out/ro-crate-metadata.json",
    ])
    .await
    .ok();
    let checked =
        airlock_system_tests::check_ro_crate(&root.join("out")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        checked.contains("3 file(s)") && checked.contains("requirements met"),
        "{checked}"
    );
    std::fs::create_dir_all(root.join("alone")).unwrap();
    std::fs::copy(
        root.join("out/ro-crate-metadata.json"),
        root.join("alone/ro-crate-metadata.json"),
    )
    .unwrap();
    let alone = airlock_system_tests::check_ro_crate(&root.join("alone")).unwrap_err();
    assert!(alone.contains("part of its payload"), "{alone}");
    let text = std::fs::read_to_string(root.join("record.json")).unwrap();
    std::fs::write(
        root.join("edited.json"),
        text.replacen("aggregate only", "anything goes", 1),
    )
    .unwrap();
    rita.run(&["verify", "edited.json"])
        .await
        .refused(1, "does not verify");
    std::fs::write(root.join("out/results/table.csv"), b"id,value\n1,0.99\n").unwrap();
    rita.run(&["verify", "record.json", "--files", "out"])
        .await
        .refused(1, "is not the");

    // Refusals: one line each, the right exit code, nothing created on the way.
    let before = rita.run(&["list", "--json"]).await.ok().json();
    rita.run(&[
        "export",
        "nothing-here",
        "--title",
        "t",
        "--justification",
        "j",
    ])
    .await
    .refused(2, "no such file or folder");
    write(&root.join("tricky/invoice\u{202E}gpj.exe"), b"MZ");
    rita.run(&["export", "tricky", "--title", "t", "--justification", "j"])
        .await
        .refused(1, "would refuse this name");
    // More files than the workspace allows (100): refused before anything is created.
    for i in 0..101 {
        write(&root.join(format!("many/{i:03}.csv")), b"a\n");
    }
    rita.run(&["export", "many", "--title", "t", "--justification", "j"])
        .await
        .refused(1, "the workspace allows at most 100");
    let after = rita.run(&["list", "--json"]).await.ok().json();
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len(),
        "a refused export creates no request"
    );
    rita.run(&["submit", &id]).await.refused(1, "airlock: ");
    let stranger = Person::new(&root, "stranger");
    let api = request_api(&root);
    stranger
        .run(&["list", "--api", &api, "--workspace", "ws-alpha"])
        .await
        .refused(1, "not logged in");
    let port = airlock_local::emulators::free_port().unwrap();
    rita.run(&["list", "--api", &format!("http://127.0.0.1:{port}/api")])
        .await
        .refused(1, "could not be reached");
    rita.run(&["frobnicate"])
        .await
        .refused(2, "unrecognized subcommand");
    std::fs::remove_dir_all(&root).ok();
}

fn request_api(root: &Path) -> String {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("stack.json")).unwrap()).unwrap();
    summary["apiUrl"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_resumes_an_interrupted_upload_and_is_resubmitted_after_changes() {
    let (_stack, root) = stack("cliimp").await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;
    let mona = login(&root, "mona", "AirlockManager").await;

    let created = rita
        .run(&[
            "create",
            "--type",
            "import",
            "--title",
            "Cohort",
            "--justification",
            "Linked data for the study",
            "--json",
        ])
        .await
        .ok()
        .json();
    let id = created["airlockRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["airlockRequest"]["status"], "draft");

    // 96 MiB, uploaded in 8 MiB blocks; the first run is killed once some blocks are in.
    let big = noise(96 * 1024 * 1024, 11);
    write(&root.join("cohort.bin"), &big);
    let mut first = rita
        .command(&["upload", &id, "cohort.bin", "--quiet"])
        .spawn()
        .unwrap();
    let journals = rita.config.join("transfers").join(&id);
    let killed_midway = loop {
        let blocks_done = std::fs::read_dir(&journals)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .map_or(0, |j| j.lines().count().saturating_sub(1));
        if let Some(status) = first.try_wait().unwrap() {
            assert!(status.success());
            break false;
        }
        if blocks_done >= 3 {
            first.kill().unwrap();
            first.wait().unwrap();
            break true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let resumed = rita
        .run(&["upload", &id, "cohort.bin", "--json"])
        .await
        .ok()
        .json();
    let file = &resumed["files"][0];
    assert_eq!(file["sha256"], sha256_hex(&big).as_str());
    let sent = file["sentBytes"].as_u64().unwrap();
    assert!(
        sent < big.len() as u64,
        "blocks already sent are not sent again: {resumed}"
    );
    if killed_midway {
        assert_eq!(file["skipped"], false, "{resumed}");
        assert!(sent > 0, "{resumed}");
    }
    // Already committed: nothing sent at all.
    let again = rita
        .run(&["upload", &id, "cohort.bin", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        (
            again["files"][0]["skipped"].as_bool(),
            again["files"][0]["sentBytes"].as_u64()
        ),
        (Some(true), Some(0))
    );

    let submitted = rita
        .run(&["submit", &id, "--wait", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(submitted["airlockRequest"]["status"], "in_review");
    assert_eq!(
        submitted["airlockRequest"]["files"][0]["sha256"],
        sha256_hex(&big).as_str()
    );
    // Waiting for something that will not happen in time: exit code 3.
    rita.run(&["status", &id, "--watch", "--timeout", "0"])
        .await
        .refused(3, "still in_review");

    // Changes requested: back to draft at revision 2; the researcher adds a file and
    // resubmits; the manager approves the new revision.
    let changes = mona
        .run(&[
            "review",
            &id,
            "--request-changes",
            "--explanation",
            "add a data dictionary",
            "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(changes["airlockRequest"]["status"], "draft");
    assert_eq!(changes["airlockRequest"]["revision"], 2);
    let told = rita.run(&["status", &id]).await.ok().stdout;
    assert!(
        told.contains("changes were requested in revision 1")
            && told.contains(&format!("airlock submit {id}")),
        "the researcher is told what to do next: {told}"
    );
    write(
        &root.join("dictionary.csv"),
        b"column,meaning\nid,pseudonymous id\n",
    );
    rita.run(&["upload", &id, "dictionary.csv"]).await.ok();
    let resubmitted = rita
        .run(&["submit", &id, "--wait", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(resubmitted["airlockRequest"]["revision"], 2);
    assert_eq!(
        file_names(&resubmitted),
        vec!["cohort.bin", "dictionary.csv"]
    );
    // What changed since mona's vote: cohort.bin unchanged, the dictionary new.
    let diff = mona.run(&["diff", &id]).await.ok();
    assert!(
        diff.stdout.contains("unchanged  cohort.bin")
            && diff.stdout.contains("added      dictionary.csv"),
        "{}",
        diff.stdout
    );
    mona.run(&["review", &id, "--approve", "--explanation", "complete now"])
        .await
        .ok();
    rita.run(&["download", &id, "inside"]).await.ok();
    assert_eq!(std::fs::read(root.join("inside/cohort.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(root.join("inside/dictionary.csv")).unwrap(),
        b"column,meaning\nid,pseudonymous id\n"
    );
    std::fs::remove_dir_all(&root).ok();
}

/// Context at submit, a comment thread and a per-file review, from the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_comments_and_a_per_file_review() {
    let (_stack, root) = stack("cliconv").await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;
    let mona = login(&root, "mona", "AirlockManager").await;
    write(&root.join("out/counts.csv"), b"region,n\nNorth,120\n");
    write(&root.join("out/notes.txt"), b"how the counts were made");
    let exported = rita
        .run(&[
            "export",
            "out",
            "--title",
            "Counts",
            "--justification",
            "For the report",
            "--purpose",
            "Annual report",
            "--describe",
            "out/counts.csv=patients by region",
            "--controls",
            "out/counts.csv=rounded to 5",
            "--wait",
            "--id",
        ])
        .await
        .ok();
    let id = exported.stdout.trim().to_string();
    let shown = rita.run(&["status", &id]).await.ok().stdout;
    assert!(shown.contains("purpose: Annual report"), "{shown}");
    assert!(shown.contains("about: patients by region"), "{shown}");
    assert!(
        shown.contains("disclosure controls: rounded to 5"),
        "{shown}"
    );
    mona.run(&["comment", &id, "Which year?", "--file", "out/counts.csv"])
        .await
        .ok();
    mona.run(&["comment", &id, "Looks fine to me", "--reviewers-only"])
        .await
        .ok();
    // A researcher cannot write for reviewers only: refused, exit 1.
    let refused = rita
        .run(&["comment", &id, "psst", "--reviewers-only"])
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    rita.run(&["comment", &id, "2025", "--file", "out/counts.csv"])
        .await
        .ok();
    // Attack: a comment that erases the line above it on the manager's terminal and writes
    // to their clipboard (OSC 52). Shown escaped, never obeyed.
    let attack = "ok\r\u{1b}[2K\u{1b}[1A\u{1b}]52;c;cm0gLXJmIH4=\u{7}";
    rita.run(&["comment", &id, attack]).await.ok();
    let seen = mona.run(&["status", &id]).await.ok().stdout;
    assert!(
        !seen.contains('\u{1b}') && !seen.contains('\u{7}') && !seen.contains('\r'),
        "{seen:?}"
    );
    assert!(seen.contains("ok\\u{d}\\u{1b}[2K"), "{seen}");
    let bad = mona
        .run(&["review", &id, "--file", "out/counts.csv=maybe"])
        .await;
    assert_eq!(bad.code, 2, "a usage error: {}", bad.stderr);
    mona.run(&[
        "review",
        &id,
        "--file",
        "out/counts.csv=approve",
        "--file",
        "out/notes.txt=changes",
        "--explanation",
        "Say which software made the counts",
    ])
    .await
    .ok();
    let r = rita.run(&["status", &id, "--json"]).await.ok().json();
    assert_eq!(r["airlockRequest"]["status"], "draft");
    assert_eq!(r["airlockRequest"]["revision"], 2);
    let texts: Vec<&str> = r["airlockRequest"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![
            "Which year?",
            "2025",
            attack,
            "Say which software made the counts"
        ],
        "the researcher does not see the reviewers-only note; JSON keeps the text as written"
    );

    // A pre-flight check in a workspace with a disclosure gate: each finding with what to do,
    // before anything is submitted; `export` shows them before it submits (a warning does
    // not stop it).
    let gates = Person::new(&root, "rita-gates");
    gates
        .run(&[
            "login",
            "--local",
            "--stack",
            root.join("stack.json").to_str().unwrap(),
            "--user",
            "rita",
            "--roles",
            "WorkspaceResearcher",
            "--workspace",
            "ws-gates",
        ])
        .await
        .ok();
    write(
        &root.join("small/counts.csv"),
        b"region,n\nNorth,120\nSouth,3\n",
    );
    write(&root.join("small/readme.txt"), b"counts by region");
    let draft = gates
        .run(&[
            "create",
            "--type",
            "export",
            "--title",
            "Small",
            "--justification",
            "J",
            "--json",
        ])
        .await
        .ok()
        .json();
    let id = draft["airlockRequest"]["id"].as_str().unwrap().to_string();
    gates.run(&["upload", &id, "small"]).await.ok();
    let checked = gates.run(&["check", &id]).await.ok();
    assert!(
        checked
            .stdout
            .contains("what to do: suppress or merge the cells below 10 in column \"n\""),
        "{}",
        checked.stdout
    );
    assert!(
        checked.stdout.contains("1 finding(s)"),
        "{}",
        checked.stdout
    );
    let status = gates.run(&["status", &id, "--json"]).await.ok().json();
    assert_eq!(
        status["airlockRequest"]["status"], "draft",
        "a check changes nothing"
    );
    // Checked again at once: refused with when to come back.
    gates.run(&["check", &id]).await.refused(1, "try again in");
    let exported = gates
        .run(&[
            "export",
            "small",
            "--title",
            "Small counts",
            "--justification",
            "J",
            "--wait",
            "--json",
        ])
        .await
        .ok();
    assert!(
        exported.stderr.contains("what to do: suppress or merge"),
        "{}",
        exported.stderr
    );
    assert_eq!(exported.json()["airlockRequest"]["status"], "in_review");
    let id = exported.json()["airlockRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A checker approves the flagged table only with a reason for its kind of warning.
    let checker = Person::new(&root, "mona-gates");
    checker
        .run(&[
            "login",
            "--local",
            "--stack",
            root.join("stack.json").to_str().unwrap(),
            "--user",
            "mona",
            "--roles",
            "AirlockManager",
            "--workspace",
            "ws-gates",
        ])
        .await
        .ok();
    checker
        .run(&["review", &id, "--approve"])
        .await
        .refused(1, "needs a reason for each kind: small_count");
    // Every file without findings approved in one go, the flagged one over its warning.
    let reviewed = checker
        .run(&[
            "review",
            &id,
            "--approve-clean",
            "--override",
            "small/counts.csv:small_count=regions of 100,000 people",
            "--json",
        ])
        .await
        .ok()
        .json();
    let mine = &reviewed["airlockRequest"]["reviews"][0]["files"];
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|d| d["decision"] == "approved")
    );
}
