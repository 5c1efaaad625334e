//! The workspace registry through the API: a TRE admin registers a workspace and changes its
//! policy; each change is validated, conditional on the version read, in force at once, and
//! on the workspace's own verified trail with what it changed. Nobody else gets in.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REGISTRY: &str = "/api/admin/workspaces";

fn admin(s: &Stack) -> String {
    s.issuer.mint(&airlock_testkit::TokenSpec::new(
        "tina",
        &[ADMIN],
        "api://airlock",
    ))
}

fn three() -> Value {
    json!({"id": "ws-three", "displayName": "Three", "shortId": "three",
           "tokenAudience": audience("ws-three"), "policy": {"approvalsRequired": 1}})
}

/// A call with `If-Match`, answering status, body and the answer's `ETag`.
async fn put(
    s: &Stack,
    path: &str,
    token: &str,
    etag: Option<&str>,
    body: Value,
) -> (StatusCode, Value, Option<String>) {
    let mut req = s
        .http
        .put(format!("{}{path}", s.base))
        .bearer_auth(token)
        .json(&body);
    if let Some(etag) = etag {
        req = req.header("If-Match", etag);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap(), etag)
}

#[tokio::test]
async fn an_admin_registers_a_workspace_and_changes_its_policy_on_the_record() {
    let s = Stack::start(json!({})).await;
    let tina = admin(&s);
    let created = s.ok("POST", REGISTRY, &tina, Some(three()), 201).await;
    assert_eq!(created["record"]["shortId"], "three");
    assert_eq!(created["changes"], 1);
    let first_version = created["policyVersion"].as_str().unwrap().to_string();
    let etag = created["etag"].as_str().unwrap().to_string();

    // In force at once: a researcher of the new workspace creates a request.
    let alice = s.token("alice", &[RESEARCHER], "ws-three");
    s.create("ws-three", &alice, "export").await;

    // A second registration of the id, or of the short id, is refused.
    let (status, body) = s.call("POST", REGISTRY, Some(&tina), Some(three())).await;
    assert_eq!(status, 409, "{body}");
    let mut same_short = three();
    same_short["id"] = json!("ws-four");
    let (status, body) = s
        .call("POST", REGISTRY, Some(&tina), Some(same_short))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("taken by workspace ws-three"),
        "{body}"
    );

    // A policy change: needs If-Match, is validated, and lands with a new version.
    let path = format!("{REGISTRY}/ws-three/policy");
    let gates = json!({"approvalsRequired": 2, "gates": [{"name": "sdc", "kind": "disclosure", "threshold": 10}]});
    let (status, body, _) = put(&s, &path, &tina, None, gates.clone()).await;
    assert_eq!(status, 428, "{body}");
    let (status, body, _) = put(
        &s,
        &path,
        &tina,
        Some(&etag),
        json!({"approvalsRequired": "two"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("policy: invalid"), "{body}");
    let (status, changed, header) = put(&s, &path, &tina, Some(&etag), gates.clone()).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(header.as_deref(), changed["etag"].as_str());
    assert_eq!(changed["policyInForce"]["approvalsRequired"], 2);
    assert_ne!(changed["policyVersion"], first_version.as_str());
    let ws = airlock::ports::WorkspaceStore::get(&*s.deps.workspaces, "ws-three")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ws.policy.approvals_required, 2,
        "the airlock reads the new policy"
    );

    // Two admins: the one who read the old version is refused, not silently overwritten.
    let (status, body, _) = put(
        &s,
        &path,
        &tina,
        Some(&etag),
        json!({"approvalsRequired": 3}),
    )
    .await;
    assert_eq!(status, 412, "{body}");
    assert!(body.to_string().contains("read it again"), "{body}");
    // What is wrong with a policy is said whatever the version named: a stale If-Match
    // with a bad policy hears about the policy (and nothing is written).
    let (status, body, _) = put(
        &s,
        &path,
        &tina,
        Some(&etag),
        json!({"allowedIpRanges": ["10.0.0.0/8", "192.168.0.0/16"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("restricted to one"), "{body}");
    let new_etag = changed["etag"].as_str().unwrap();

    // The same policy again changes nothing and adds no entry.
    let (status, same, _) = put(&s, &path, &tina, Some(new_etag), gates).await;
    assert_eq!(status, 200);
    assert_eq!(same["changes"], 2);

    // Disabling through the record; the trail verifies and says what changed, who and how.
    let mut record = changed["record"].clone();
    record["airlockEnabled"] = json!(false);
    let (status, off, _) = put(
        &s,
        &format!("{REGISTRY}/ws-three"),
        &tina,
        Some(new_etag),
        record,
    )
    .await;
    assert_eq!(status, 200, "{off}");
    let (status, body) = s
        .call(
            "POST",
            "/api/workspaces/ws-three/requests",
            Some(&alice),
            Some(json!({"type": "export"})),
        )
        .await;
    assert_eq!(
        status, 400,
        "a disabled workspace takes no requests: {body}"
    );

    let trail = s
        .ok(
            "GET",
            &format!("{REGISTRY}/ws-three/history"),
            &tina,
            None,
            200,
        )
        .await;
    assert_eq!(trail["verified"], true, "{trail}");
    let entries = trail["history"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["workspace registered", "policy changed", "airlock disabled"]
    );
    assert!(entries.iter().all(|e| e["by"] == "tina"));
    let details = &entries[1]["details"];
    assert_eq!(details["policyVersionBefore"], first_version.as_str());
    assert_eq!(details["policyVersion"], changed["policyVersion"]);
    let fields: Vec<&str> = details["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["policy.approvalsRequired", "policy.gates"]);
    assert!(
        entries[1]["message"]
            .as_str()
            .unwrap()
            .contains("policy.approvalsRequired 1 → 2")
    );

    // The entries are in the append-only store, not only on the record.
    let kept = airlock::ports::HistoryStore::list(&*s.deps.history, "workspace:ws-three")
        .await
        .unwrap();
    assert_eq!(kept.len(), 3);
}

#[tokio::test]
async fn only_a_tre_admin_with_a_tre_api_token_reaches_the_registry() {
    let s = Stack::start(json!({})).await;
    let tina = admin(&s);
    for (token, expected, why) in [
        (
            s.token("olivia", &[OWNER], WS1),
            401,
            "a workspace owner's token is for the workspace",
        ),
        (
            s.token("tina", &[ADMIN], WS1),
            401,
            "even a TREAdmin role in a workspace's token",
        ),
        (
            s.issuer.mint(&airlock_testkit::TokenSpec::new(
                "mona",
                &[MANAGER],
                "api://airlock",
            )),
            403,
            "an airlock manager with a TRE API token",
        ),
    ] {
        for (method, path, body) in [
            ("GET", REGISTRY.to_string(), None),
            ("POST", REGISTRY.to_string(), Some(three())),
            ("GET", format!("{REGISTRY}/{WS1}/history"), None),
        ] {
            let (status, answer) = s.call(method, &path, Some(&token), body).await;
            assert_eq!(status, expected, "{why}: {method} {path}: {answer}");
        }
        let (status, _, _) = put(
            &s,
            &format!("{REGISTRY}/{WS1}/policy"),
            &token,
            Some("1"),
            json!({"approvalsRequired": 0}),
        )
        .await;
        assert_eq!(status, expected, "{why}: policy");
    }
    let (status, _) = s.call("GET", REGISTRY, None, None).await;
    assert_eq!(status, 401);
    // Nothing changed; the admin sees both workspaces.
    let all = s.ok("GET", REGISTRY, &tina, None, 200).await;
    let ids: Vec<&str> = all["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["record"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [WS1, WS2]);
    assert_eq!(
        all["workspaces"][0]["policyInForce"]["approvalsRequired"],
        1
    );
}

#[tokio::test]
async fn bad_records_and_tricks_are_refused_with_what_to_fix() {
    let s = Stack::start(json!({})).await;
    let tina = admin(&s);
    let with = |field: &str, value: Value| {
        let mut r = three();
        r[field] = value;
        r
    };
    for (body, needle) in [
        (with("shortId", json!("THREE")), "lower-case"),
        (with("id", json!("../ws-one")), "letters, digits"),
        (with("historyHead", json!({"length": 0})), "unknown field"),
        (with("policy", json!({"allowedIpRanges": ["::/0"]})), "IPv6"),
        (json!("ws-three"), "JSON object"),
    ] {
        let (status, answer) = s
            .call("POST", REGISTRY, Some(&tina), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.to_string().contains(needle), "{body}: {answer}");
    }
    // An id cannot be changed by a replace, nor a short id.
    let one = s
        .ok("GET", &format!("{REGISTRY}/{WS1}"), &tina, None, 200)
        .await;
    let etag = one["etag"].as_str().unwrap();
    let mut renamed = one["record"].clone();
    renamed["id"] = json!(WS2);
    let (status, body, _) = put(&s, &format!("{REGISTRY}/{WS1}"), &tina, Some(etag), renamed).await;
    assert_eq!(status, 400, "{body}");
    let mut moved = one["record"].clone();
    moved["shortId"] = json!("elsewhere");
    let (status, body, _) = put(&s, &format!("{REGISTRY}/{WS1}"), &tina, Some(etag), moved).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("storage accounts"), "{body}");
    let (status, _, _) = put(
        &s,
        &format!("{REGISTRY}/ws-nine/policy"),
        &tina,
        Some(etag),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call("GET", &format!("{REGISTRY}/ws%2Fone"), Some(&tina), None)
        .await;
    assert_eq!(status, 404);
}
