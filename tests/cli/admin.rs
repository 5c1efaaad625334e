//! `airlock admin` on the local stack: a TRE admin lists, registers and disables workspaces
//! and changes a workspace's policy, which the handler enforces at once; the trail says who
//! changed what. Nobody else gets in.

use crate::flows::{login, stack_provisioned};
use airlock_local::testing::StackClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tre_admin_changes_a_policy_that_is_enforced_at_once_and_on_the_record() {
    // ws-delta's stage accounts exist (Terraform's workspace module) but it is not registered.
    let (stack, root) = stack_provisioned("admin", &["delta"]).await;
    let tina = login(&root, "tina", "TREAdmin").await;
    let rita = login(&root, "rita", "WorkspaceResearcher").await;

    // Logging in elsewhere says that the default workspace changed; `login --local` finds the
    // stack's summary from a folder below the repository (here: the scratch root's
    // target/airlock-local/stack.json), without --stack.
    let nested = root.join("target/airlock-local");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(root.join("stack.json"), nested.join("stack.json")).unwrap();
    std::fs::create_dir_all(root.join("deep/below")).unwrap();
    let mut wanderer = rita.clone();
    wanderer.cwd = root.join("deep/below");
    let switched = wanderer
        .run(&[
            "login",
            "--local",
            "--user",
            "rita",
            "--roles",
            "WorkspaceResearcher",
            "--workspace",
            "ws-beta",
        ])
        .await
        .ok();
    assert!(
        switched
            .stdout
            .contains("commands now act in ws-beta by default (was ws-alpha"),
        "{}",
        switched.stdout
    );
    wanderer
        .run(&[
            "login",
            "--local",
            "--user",
            "rita",
            "--roles",
            "WorkspaceResearcher",
            "--workspace",
            "ws-alpha",
        ])
        .await
        .ok();

    let list = tina.run(&["admin", "workspace", "list"]).await.ok();
    assert!(
        list.stdout.contains("ws-alpha") && list.stdout.contains("ws-gates"),
        "{}",
        list.stdout
    );
    rita.run(&["admin", "workspace", "list"])
        .await
        .refused(1, "only a TRE admin");

    // A policy that allows one file: the researcher's two-file export is refused.
    std::fs::write(root.join("policy.json"), br#"{"maxFiles": 1}"#).unwrap();
    let set = tina
        .run(&["admin", "policy", "set", "ws-alpha", "policy.json"])
        .await
        .ok();
    assert!(set.stdout.contains("policy of ws-alpha:"), "{}", set.stdout);
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("out/a.csv"), b"n\n20\n").unwrap();
    std::fs::write(root.join("out/b.csv"), b"n\n30\n").unwrap();
    rita.run(&[
        "export",
        "out",
        "--title",
        "Counts",
        "--justification",
        "paper",
    ])
    .await
    .refused(1, "allows at most 1");

    // A request that ends blocked still gives a script its id (`--id`), with exit code 1.
    std::fs::create_dir_all(root.join("bad")).unwrap();
    std::fs::write(
        root.join("bad/tool.com"),
        airlock_testkit::builders::EICAR.as_bytes(),
    )
    .unwrap();
    let blocked = rita
        .run(&[
            "export",
            "bad",
            "--title",
            "Tool",
            "--justification",
            "x",
            "--wait",
            "--id",
        ])
        .await
        .refused(1, "ended blocked");
    let id = blocked.stdout.trim();
    assert!(
        id.len() == 36 && !id.contains(' '),
        "the id alone on stdout: {:?}",
        blocked.stdout
    );

    // A bad policy is refused with what to fix, and changes nothing.
    std::fs::write(root.join("bad.json"), br#"{"maxFiles": "many"}"#).unwrap();
    tina.run(&["admin", "policy", "set", "ws-alpha", "bad.json"])
        .await
        .refused(1, "policy: invalid");

    let history = tina
        .run(&["admin", "policy", "history", "ws-alpha"])
        .await
        .ok();
    assert!(
        history.stdout.contains("tina policy changed")
            && history.stdout.contains("policy.maxFiles: 100 → 1")
            && history.stdout.contains("hash chain verifies"),
        "{}",
        history.stdout
    );
    let diff = tina
        .run(&["admin", "policy", "diff", "ws-alpha"])
        .await
        .ok();
    assert!(
        diff.stdout.contains("policy.maxFiles: 100 → 1"),
        "{}",
        diff.stdout
    );

    // As the README does it: the policy on standard input.
    let mut command = tina.command(&["admin", "policy", "set", "ws-beta", "-"]);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"approvalsRequired": 2, "linkExpiryMinutes": 30}"#)
            .unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("policy of ws-beta:"),
        "{said}"
    );

    // Statistics: TRE-wide for the admin; a researcher is refused.
    let stats = tina.run(&["stats", "--all"]).await.ok();
    assert!(
        stats.stdout.contains("ws-alpha") && stats.stdout.contains("request(s) created"),
        "{}",
        stats.stdout
    );
    rita.run(&["stats"]).await.refused(1, "read the statistics");

    // Register, refuse the same again, disable.
    std::fs::write(
        root.join("delta.json"),
        br#"{"id": "ws-delta", "displayName": "Delta", "shortId": "delta", "tokenAudience": "api://airlock-ws-delta"}"#,
    )
    .unwrap();
    tina.run(&["admin", "workspace", "register", "delta.json"])
        .await
        .ok();
    tina.run(&["admin", "workspace", "register", "delta.json"])
        .await
        .refused(1, "already registered");
    tina.run(&["admin", "workspace", "disable", "ws-beta"])
        .await
        .ok();
    let list = tina.run(&["admin", "workspace", "list"]).await.ok();
    let beta = list
        .stdout
        .lines()
        .find(|l| l.starts_with("ws-beta"))
        .unwrap();
    assert!(beta.contains("disabled"), "{beta}");
    assert!(list.stdout.contains("ws-delta"), "{}", list.stdout);

    // The workspace registered through the API takes a request end to end at once: created,
    // uploaded through its link, sealed, scanned and checked in its own accounts, reviewed.
    let api = StackClient::new(&stack);
    let researcher = stack.token("dora", &["WorkspaceResearcher"], "ws-delta");
    let manager = stack.token("mo", &["AirlockManager"], "ws-delta");
    let id = api
        .submitted(
            "ws-delta",
            &researcher,
            "export",
            &[("results/table.csv", b"region,n\nnorth,20\nsouth,30\n")],
        )
        .await;
    let r = api.wait("ws-delta", &id, &researcher, "in_review").await;
    assert_eq!(r["files"][0]["scan"]["result"], "No threats found", "{r}");
    api.act(
        "ws-delta",
        &id,
        "review",
        &manager,
        Some(serde_json::json!({"decision": "approved", "explanation": "aggregate"})),
    )
    .await;
    api.wait("ws-delta", &id, &researcher, "approved").await;
    let link = api.link("ws-delta", &id, &researcher).await;
    assert_eq!(
        link.download("results/table.csv").await.unwrap(),
        b"region,n\nnorth,20\nsouth,30\n"
    );
}
