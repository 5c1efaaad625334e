//! A researcher's pre-flight check of a draft: the gates' findings with what to do about
//! them, nothing sealed or changed, for whoever may submit, spaced out, on the record.

use crate::common::*;
use serde_json::json;

fn path(id: &str) -> String {
    format!("/api/workspaces/{WS1}/requests/{id}/preflight")
}

#[tokio::test]
async fn a_draft_is_checked_with_remediation_and_nothing_changes() {
    let s = Stack::start(json!({"maxFiles": 3, "gates": [
        {"name": "types", "kind": "filePolicy", "mode": "block"},
        {"name": "small counts", "kind": "disclosure", "mode": "warn", "threshold": 10, "roundingBase": 5}
    ]}))
    .await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    link.upload("counts.csv", b"region,n\nNorth,120\nSouth,3\n".to_vec())
        .unwrap();
    link.upload("tool.csv", b"\x7fELF\x02\x01\x01\0".to_vec())
        .unwrap();
    link.upload("fine.txt", b"all good\n".to_vec()).unwrap();
    let before = s.record(&id);
    let report = s.ok("POST", &path(&id), &alice, None, 200).await;
    assert_eq!(report["wouldBlock"], true, "{report}");
    let files = report["files"].as_array().unwrap();
    let of = |name: &str| files.iter().find(|f| f["name"] == name).unwrap().clone();
    let counts = of("counts.csv");
    assert_eq!(counts["findings"][0]["rule"], "small_count");
    assert_eq!(
        counts["findings"][0]["remediation"],
        "suppress or merge the cells below 10 in column \"n\" (combine the small groups with others, or show them as \"<10\")"
    );
    assert_eq!(counts["findings"][1]["rule"], "unrounded");
    let tool = of("tool.csv");
    assert_eq!(tool["findings"][0]["rule"], "executable");
    assert_eq!(tool["findings"][0]["mode"], "block");
    assert!(
        tool["findings"][0]["remediation"]
            .as_str()
            .unwrap()
            .contains("export the results it produced")
    );
    assert_eq!(of("fine.txt")["findings"], json!([]));
    assert!(
        report["notChecked"][0]
            .as_str()
            .unwrap()
            .contains("malware scan")
    );
    // Nothing sealed, nothing moved: still the same draft, with one more entry in its trail.
    let after = s.record(&id);
    assert_eq!(after.status, before.status);
    assert!(after.files.is_empty());
    let trail = s.history(&id).await;
    let last = trail.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        (airlock::domain::request::PREFLIGHT, "alice")
    );
    assert!(
        last.message
            .as_deref()
            .unwrap()
            .contains("3 file(s), 3 finding(s); a submit now would be blocked")
    );
    // What the workspace's limits refuse outright is a problem, not a finding.
    link.upload("fourth.txt", b"x".to_vec()).unwrap();
    s.clock.advance(chrono::Duration::seconds(31));
    let report = s.ok("POST", &path(&id), &alice, None, 200).await;
    assert!(
        report["problems"][0].as_str().unwrap().contains("4 files"),
        "{report}"
    );
}

#[tokio::test]
async fn checks_are_spaced_out_and_only_for_who_may_submit_a_draft() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"x,n\na,1\n".to_vec())
        .unwrap();
    for (token, expected) in [
        (s.token("bob", &[RESEARCHER], WS1), 403),
        (s.token("rita", &[MANAGER], WS1), 403),
        (s.token("alice", &[RESEARCHER], WS2), 401),
    ] {
        let (status, body) = s.call("POST", &path(&id), Some(&token), None).await;
        assert_eq!(status.as_u16(), expected, "{body}");
    }
    s.ok("POST", &path(&id), &alice, None, 200).await;
    // Again at once: refused with how long to wait, nothing read.
    let (status, body) = s.call("POST", &path(&id), Some(&alice), None).await;
    assert_eq!(status.as_u16(), 429, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("30 s"));
    s.clock.advance(chrono::Duration::seconds(31));
    s.ok("POST", &path(&id), &alice, None, 200).await;
    // Once submitted there is nothing to pre-flight.
    s.clock.advance(chrono::Duration::seconds(31));
    s.action(WS1, &id, "submit", &alice, None).await;
    let (status, body) = s.call("POST", &path(&id), Some(&alice), None).await;
    assert_eq!(status.as_u16(), 409, "{body}");
}
