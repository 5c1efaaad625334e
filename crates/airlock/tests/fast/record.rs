//! The governance record of a finished request: JSON that verifies offline (and stops
//! verifying when edited), a print-ready page in which nothing runs, and a Five Safes RO-Crate.

use crate::common::*;
use airlock_api::governance::GovernanceRecord;
use serde_json::{Value, json};

#[tokio::test]
async fn a_finished_request_has_a_record_anyone_can_verify_offline() {
    let s =
        Stack::start(json!({"gates": [{"name": "sdc", "kind": "disclosure", "threshold": 10}]}))
            .await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mona = s.token("mona", &[MANAGER], WS1);
    let created = s
        .ok(
            "POST",
            &format!("/api/workspaces/{WS1}/requests"),
            &alice,
            Some(json!({"type": "export", "title": "<script>alert(1)</script>", "businessJustification": "paper"})),
            201,
        )
        .await;
    let id = created["airlockRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.link(WS1, &id, &alice)
        .await
        .upload("t.csv", b"region,n\nnorth,20\nsouth,30\n".to_vec())
        .unwrap();
    let path = |tail: &str| format!("/api/workspaces/{WS1}/requests/{id}{tail}");
    let (status, body) = s.call("GET", &path("/record"), Some(&alice), None).await;
    assert_eq!(status, 409, "a draft has no record yet: {body}");
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    s.ok(
        "POST",
        &path("/comments"),
        &mona,
        Some(json!({"text": "between us reviewers", "visibility": "reviewers"})),
        201,
    )
    .await;
    s.action(
        WS1,
        &id,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "aggregate counts"})),
    )
    .await;
    s.settle().await;

    let value = s.ok("GET", &path("/record"), &mona, None, 200).await;
    let record: GovernanceRecord = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(record.request.status.to_string(), "approved");
    assert!(record.verification.verified);
    assert_eq!(record.verify(), Ok(()));
    let sha = record.request.files[0].sha256.clone().unwrap();
    assert_eq!(record.check_file("t.csv", &sha), Ok(()));
    assert!(record.check_file("t.csv", &"0".repeat(64)).is_err());
    assert!(
        !record.policy_versions.is_empty(),
        "the gates' and review's policy version"
    );
    assert!(value.to_string().contains("between us reviewers"));
    let actions: Vec<&str> = record.history.iter().map(|h| h.action.as_str()).collect();
    assert!(
        actions.contains(&"approved") || actions.iter().any(|a| a.starts_with("review")),
        "{actions:?}"
    );

    // Edited after the fact: offline verification says so.
    let mut forged = record.clone();
    forged.history[2].message = Some("nothing to see".into());
    assert!(forged.verify().is_err());
    let mut dropped = record.clone();
    dropped.history.pop();
    assert!(
        dropped.verify().is_err(),
        "a missing last entry is found by the head"
    );
    // ... and outside the trail: a file's hash, the status, a review's reviewer.
    let mut swapped = record.clone();
    swapped.request.files[0].sha256 = Some("ab".repeat(32));
    assert!(swapped.verify().is_err(), "a file swapped in the record");
    let mut status = record.clone();
    status.request.status = airlock::domain::Status::Rejected;
    assert!(status.verify().is_err());
    let mut reviewer = record.clone();
    reviewer.request.reviews[0].reviewer.id = "someone-else".into();
    assert!(reviewer.verify().is_err());

    // The researcher's copy leaves out what reviewers said among themselves.
    let theirs = s.ok("GET", &path("/record"), &alice, None, 200).await;
    assert!(!theirs.to_string().contains("between us reviewers"));

    // The page: escaped, nothing can run.
    let resp = s
        .http
        .get(format!("{}{}", s.base, path("/record?format=html")))
        .bearer_auth(&mona)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script"), "no script in the page");
    assert!(page.contains(&sha) && page.contains("hash chain verifies"));

    // The RO-Crate: RO-Crate 1.1's context, the files, one AssessAction per gate and review.
    let crate_ = s
        .ok("GET", &path("/record?format=ro-crate"), &mona, None, 200)
        .await;
    assert_eq!(
        crate_["@context"][0],
        "https://w3id.org/ro/crate/1.1/context"
    );
    let graph = crate_["@graph"].as_array().unwrap();
    let of_type = |t: &str| -> Vec<&Value> { graph.iter().filter(|e| e["@type"] == t).collect() };
    assert_eq!(
        of_type("CreativeWork")[0]["conformsTo"]["@id"],
        "https://w3id.org/ro/crate/1.1"
    );
    assert_eq!(of_type("File").len(), 1);
    assert_eq!(of_type("File")[0]["sha256"], sha.as_str());
    let assessed = of_type("AssessAction");
    assert_eq!(assessed.len(), record.gates.gates.len() + 1, "{assessed:?}");
    assert!(
        assessed
            .iter()
            .all(|a| a["additionalType"]["@id"] == "shp:DisclosureCheck")
    );
    let ids: std::collections::HashSet<String> =
        graph.iter().map(|e| e["@id"].to_string()).collect();
    assert_eq!(ids.len(), graph.len(), "one entity per @id");
    // What RO-Crate 1.1 requires of the root (roc-validator checks the rest in the CLI flow).
    let root = graph.iter().find(|e| e["@id"] == "./").unwrap();
    assert!(root["datePublished"].is_string() && root["license"]["@id"] == "#terms");
    assert!(graph.iter().any(|e| e["@id"] == "#terms"));
    // A released file is named by its path, to sit beside the metadata; a file no holder of
    // the release has (withheld, or the request not approved) by a local identifier.
    assert_eq!(of_type("File")[0]["@id"], "t.csv");
    assert_eq!(root["hasPart"]["@id"], "t.csv");
    let mut withheld = record.clone();
    withheld.request.files[0].decision = Some(airlock::domain::Decision::Rejected);
    let mut rejected = record.clone();
    rejected.request.status = airlock::domain::Status::Rejected;
    for unreleased in [withheld.ro_crate(), rejected.ro_crate()] {
        let files: Vec<&Value> = unreleased["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["@type"] == "File")
            .collect();
        assert_eq!(files[0]["@id"], "#unreleased/t.csv");
        assert_eq!(files[0]["creativeWorkStatus"], "not released");
    }

    for bad in ["?format=pdf", "?colour=red"] {
        let (status, _) = s
            .call("GET", &path(&format!("/record{bad}")), Some(&mona), None)
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}
