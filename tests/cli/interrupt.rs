//! Ctrl-C in the middle of an export: the person is told the draft's id and the command that
//! carries on, and carrying on sends what was missing and seals exactly the file.

use crate::flows::{login, stack};
use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_during_an_export_says_how_to_resume_and_resuming_seals_the_file() {
    let (_stack, root) = stack("interrupt").await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;
    // Large enough that the upload is still going when Ctrl-C comes; on disk, not in memory.
    std::fs::create_dir_all(root.join("big")).unwrap();
    let path = root.join("big/cohort.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..256 {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            file.write_all(&block).unwrap();
        }
    }
    let mut command = rita.command(&["export", "big", "--title", "Cohort", "--justification", "x"]);
    command.stderr(Stdio::piped()).stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let said = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut said = String::new();
        let mut interrupted = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            said.push_str(&line);
            said.push('\n');
            if !interrupted && line.starts_with("created export request ") {
                // Into the upload: its journal is written as the first blocks are stored.
                std::thread::sleep(std::time::Duration::from_millis(300));
                std::process::Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap();
                interrupted = true;
            }
        }
        said
    })
    .await
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    let id = said
        .lines()
        .find_map(|l| l.strip_prefix("created export request "))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        said.contains(&format!("Resume with `airlock upload {id} big`"))
            && said.contains(&format!("airlock submit {id}")),
        "{said}"
    );

    // The same export again, without a terminal: the draft is named before a new request is
    // asked for (here one the airlock refuses, a title too long, so nothing else is made).
    let too_long = "t".repeat(300);
    let again = rita
        .run(&[
            "export",
            "big",
            "--title",
            &too_long,
            "--justification",
            "x",
        ])
        .await
        .refused(1, "title");
    assert!(
        again
            .stderr
            .contains(&format!("draft {id} holds part of these files")),
        "{}",
        again.stderr
    );

    // Doing what it said.
    rita.run(&["upload", &id, "big"]).await.ok();
    let submitted = rita
        .run(&["submit", &id, "--wait", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(submitted["airlockRequest"]["status"], "in_review");
    assert_eq!(
        submitted["airlockRequest"]["files"][0]["sha256"],
        sha256_hex(&std::fs::read(&path).unwrap()).as_str()
    );
}
