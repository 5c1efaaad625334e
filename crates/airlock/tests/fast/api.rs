//! The REST API's checks, unhappy paths first: authentication, roles, workspaces, input,
//! sizes, transitions, paging and concurrent reviews.

use crate::common::*;
use airlock_testkit::TokenIssuer;
use serde_json::{Value, json};

fn error_message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error shape: {body}"))
}

async fn in_review(s: &Stack) -> String {
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"1,2\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    id
}

#[tokio::test]
async fn tokens_are_checked() {
    let s = Stack::start(json!({})).await;
    let path = format!("/api/workspaces/{WS1}/requests");
    let now = chrono::Utc::now().timestamp();
    let claims = |over: Value| {
        let mut c = json!({"iss": airlock_testkit::DEV_ISSUER, "aud": audience(WS1), "oid": "alice", "roles": [RESEARCHER], "nbf": now - 60, "exp": now + 600});
        for (k, v) in over.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let dev = TokenIssuer::dev();
    let other = TokenIssuer::from_pem(
        include_str!("../fixtures/other-signing-key.pem"),
        airlock_testkit::DEV_KEY_ID,
        airlock_testkit::DEV_ISSUER,
    )
    .unwrap();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "no bearer token"),
        ("garbage", Some("not.a.jwt".into()), "malformed"),
        (
            "other key",
            Some(other.mint_claims(&claims(json!({})))),
            "signature",
        ),
        (
            "expired",
            Some(dev.mint_claims(&claims(json!({"exp": now - 600})))),
            "expired",
        ),
        (
            "not yet valid",
            Some(dev.mint_claims(&claims(json!({"nbf": now + 600})))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            Some(dev.mint_claims(&claims(json!({"iss": "https://evil.example/"})))),
            "issuer",
        ),
        (
            "other workspace",
            Some(dev.mint_claims(&claims(json!({"aud": audience(WS2)})))),
            "not for workspace",
        ),
        (
            "no oid",
            Some(dev.mint_claims(&claims(json!({"oid": null})))),
            "oid",
        ),
        (
            "no exp",
            Some(dev.mint_claims(&claims(json!({"exp": null})))),
            "exp",
        ),
        (
            "the airlock's own actor id",
            Some(dev.mint_claims(&claims(json!({"oid": "system"})))),
            "reserved for the airlock",
        ),
    ];
    for (what, token, needle) in cases {
        let (status, body) = s.call("GET", &path, token.as_deref(), None).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(error_message(&body).contains(needle), "{what}: {body}");
        assert_eq!(body["error"]["code"], "Unauthorized");
    }
    // A good token works, including with several audiences.
    let good = dev.mint_claims(&claims(json!({"aud": [audience(WS2), audience(WS1)]})));
    let (status, body) = s.call("GET", &path, Some(&good), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn unreachable_jwks_is_503_not_401() {
    let s = Stack::start_with(
        vec![workspace(WS1, "one", json!({}))],
        Some("http://127.0.0.1:9/keys".into()),
    )
    .await;
    let token = s.token("alice", &[RESEARCHER], WS1);
    let (status, body) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let owner2 = s.token("olivia", &[OWNER, MANAGER], WS2);
    // Another workspace's request id is unknown in this workspace.
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/link"),
        ("POST", "/submit"),
        ("POST", "/cancel"),
    ] {
        let (status, body) = s
            .call(
                method,
                &format!("/api/workspaces/{WS2}/requests/{id}{suffix}"),
                Some(&owner2),
                None,
            )
            .await;
        assert_eq!(status, 404, "{method} {suffix}: {body}");
    }
    let (status, _) = s
        .call(
            "GET",
            "/api/workspaces/ws-nowhere/requests",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS2}/requests"),
            Some(&owner2),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["airlockRequests"], json!([]));
}

#[tokio::test]
async fn roles_are_enforced() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let admin = s.token("root", &[ADMIN], WS1);
    let nobody = s.token("eve", &[], WS1);
    let create = json!({"type": "export", "title": "t", "businessJustification": "j"});
    for token in [&mike, &admin, &nobody] {
        let (status, body) = s
            .call(
                "POST",
                &format!("/api/workspaces/{WS1}/requests"),
                Some(token),
                Some(create.clone()),
            )
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let id = s.create(WS1, &alice, "export").await;
    let base = format!("/api/workspaces/{WS1}/requests/{id}");
    let (status, _) = s.call("GET", &base, Some(&bob), None).await;
    assert_eq!(status, 403, "bob may not read alice's draft");
    for action in ["submit", "cancel"] {
        let (status, _) = s
            .call("POST", &format!("{base}/{action}"), Some(&bob), None)
            .await;
        assert_eq!(status, 403, "bob {action}");
    }
    let (status, _) = s
        .call("GET", &format!("{base}/link"), Some(&mike), None)
        .await;
    assert_eq!(status, 403, "a manager cannot upload to a draft");
    let id = in_review(&s).await;
    let base = format!("/api/workspaces/{WS1}/requests/{id}");
    let approve = json!({"decision": "approved"});
    let (status, _) = s
        .call(
            "POST",
            &format!("{base}/review"),
            Some(&alice),
            Some(approve.clone()),
        )
        .await;
    assert_eq!(status, 403, "researchers do not review");
    let (status, _) = s
        .call(
            "POST",
            &format!("{base}/review"),
            Some(&admin),
            Some(approve),
        )
        .await;
    assert_eq!(status, 403, "TRE admins never review");
    let (status, _) = s
        .call("GET", &format!("{base}/link"), Some(&alice), None)
        .await;
    assert_eq!(status, 403, "the researcher cannot read files under review");
    let (status, body) = s.call("GET", &base, Some(&admin), None).await;
    assert_eq!(status, 200, "admins read requests: {body}");
    assert_eq!(body["allowedUserActions"], json!([]));
    assert!(
        body["airlockRequest"].get("outbox").is_none(),
        "the outbox is internal"
    );
}

#[tokio::test]
async fn illegal_transitions_are_409() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let base = format!("/api/workspaces/{WS1}/requests/{id}");
    let (status, body) = s
        .call("POST", &format!("{base}/submit"), Some(&alice), None)
        .await;
    assert_eq!(status, 409);
    assert!(error_message(&body).contains("no files"), "{body}");
    let (status, body) = s
        .call(
            "POST",
            &format!("{base}/review"),
            Some(&mike),
            Some(json!({"decision": "approved"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(error_message(&body).contains("draft"), "{body}");
    let (status, _) = s
        .call(
            "POST",
            &format!("{base}/revoke"),
            Some(&mike),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, 409);
    s.action(WS1, &id, "cancel", &alice, None).await;
    for action in ["cancel", "submit"] {
        let (status, body) = s
            .call("POST", &format!("{base}/{action}"), Some(&alice), None)
            .await;
        assert_eq!(status, 409, "{action} after cancel: {body}");
    }
    let (status, body) = s
        .call("GET", &format!("{base}/link"), Some(&alice), None)
        .await;
    assert_eq!(status, 409);
    assert!(error_message(&body).contains("cancelled"));
    assert_eq!(
        s.record(&id).status.to_string(),
        "cancelled",
        "refused calls change nothing"
    );
}

/// What the published document calls valid is accepted, and what it calls invalid is refused
/// as bad input: text is counted as sent (the document cannot count trimmed), the list
/// parameters it names are taken on both list forms, an empty `status=` filters nothing, and
/// a missing required query parameter is the API's own JSON 400.
#[tokio::test]
async fn the_document_and_the_server_agree_on_what_is_valid() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let create = format!("/api/workspaces/{WS1}/requests");
    // 200 characters as sent, trailing space included: the most a title may be.
    let title = format!("{} ", "t".repeat(199));
    let made = s
        .ok(
            "POST",
            &create,
            &alice,
            Some(json!({"type": "export", "title": title})),
            201,
        )
        .await;
    assert_eq!(
        made["airlockRequest"]["title"],
        "t".repeat(199),
        "kept trimmed"
    );
    // 201 as sent is over, even though it trims to 200.
    let (status, body) = s
        .call(
            "POST",
            &create,
            Some(&alice),
            Some(json!({"type": "export", "title": format!("{} ", "t".repeat(200))})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Only white space (as the document's pattern says) is refused.
    let (status, body) = s
        .call(
            "POST",
            &create,
            Some(&alice),
            Some(json!({"type": "export", "title": " \u{2003}\t"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let id = made["airlockRequest"]["id"].as_str().unwrap().to_string();
    // A reason is required to revoke, whatever the status (the document requires one).
    let (status, body) = s
        .call(
            "POST",
            &format!("{create}/{id}/revoke"),
            Some(&mike),
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // `status=` asks for nothing in particular.
    let all = s
        .ok("GET", &format!("{create}?status="), &alice, None, 200)
        .await;
    assert_eq!(all["airlockRequests"].as_array().unwrap().len(), 1, "{all}");
    // The paged list takes AzureTRE's parameters too.
    let paged = s
        .ok(
            "GET",
            "/api/requests?pageSize=5&order_by=createdWhen&order_ascending=false&airlock_manager=false",
            &alice,
            None,
            200,
        )
        .await;
    assert_eq!(
        paged["airlockRequests"].as_array().unwrap().len(),
        1,
        "{paged}"
    );
    let managed = s
        .ok(
            "GET",
            "/api/requests?pageSize=5&airlock_manager=true",
            &alice,
            None,
            200,
        )
        .await;
    assert_eq!(
        managed["airlockRequests"],
        json!([]),
        "alice manages nothing"
    );
    // A preview without its file: the API's own JSON error, naming the parameter.
    let (status, body) = s
        .call("GET", &format!("{create}/{id}/preview"), Some(&alice), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("`file`"), "{body}");
    // The document bounds what the server reads as u32.
    let doc = s.ok("GET", "/api/openapi.json", &alice, None, 200).await;
    assert_eq!(
        doc.pointer("/components/schemas/GateAnswerRequest/properties/revision/maximum"),
        Some(&json!(u32::MAX))
    );
}

#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let path = format!("/api/workspaces/{WS1}/requests");
    let cases = [
        (
            json!({"type": "export", "title": "t", "businessJustification": 7}),
            "businessJustification",
        ),
        (
            json!({"type": "export", "properties": ["not", "an", "object"]}),
            "properties",
        ),
        (
            json!({"type": "sideways", "title": "t", "businessJustification": "j"}),
            "import",
        ),
        (
            json!({"type": "export", "title": "", "businessJustification": "j"}),
            "title",
        ),
        (
            json!({"type": "export", "title": "t", "businessJustification": "j", "admin": true}),
            "admin",
        ),
        (json!([1, 2]), "invalid JSON"),
    ];
    for (body, needle) in cases {
        let (status, resp) = s
            .call("POST", &path, Some(&alice), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(error_message(&resp).contains(needle), "{body}: {resp}");
    }
    let resp = s
        .http
        .post(format!("{}{path}", s.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"type\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(error_message(&body).contains("EOF"), "{body}");
    // Oversized, declared and streamed.
    let huge = format!(
        "{{\"type\":\"export\",\"title\":\"t\",\"businessJustification\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let resp = s
        .http
        .post(format!("{}{path}", s.base))
        .bearer_auth(&alice)
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PayloadTooLarge");
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(huge.into_bytes())]);
    let resp = s
        .http
        .post(format!("{}{path}", s.base))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        413,
        "a body without Content-Length is limited too"
    );
    assert!(s.requests.all().is_empty(), "nothing was created");
    // Review bodies.
    let id = in_review(&s).await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let review = format!("/api/workspaces/{WS1}/requests/{id}/review");
    for (body, needle) in [
        (json!({}), "decision"),
        (json!({"decision": "maybe"}), "maybe"),
        (json!({"decision": "rejected"}), "explanation"),
        (json!({"approval": "maybe"}), "approval"),
        (json!({"approval": 2}), "approval"),
        (
            json!({"decision": "approved", "explanation": 5}),
            "explanation",
        ),
    ] {
        let (status, resp) = s
            .call("POST", &review, Some(&mike), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(error_message(&resp).contains(needle), "{body}: {resp}");
    }
    assert!(s.record(&id).reviews.is_empty());
}

#[tokio::test]
async fn unsafe_file_names_and_limits_refuse_submit() {
    let s = Stack::start(json!({"maxFiles": 3, "maxFileBytes": 1000})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let cases: Vec<(Vec<(&str, usize)>, &str)> = vec![
        // Attack: names a client stored without normalising. Submit touched them first and
        // answered 409 or 500; the names are refused, each named, before anything is done.
        (
            vec![("../../etc/passwd", 10)],
            "\"../../etc/passwd\": the file name has a '.' or '..'",
        ),
        (
            vec![("ok.csv", 1), ("./x.csv", 1)],
            "\"./x.csv\": the file name has a '.' or '..'",
        ),
        (vec![("dir/../../x.csv", 1)], "'.' or '..'"),
        (vec![("dir\\evil.exe", 10)], "backslash"),
        (vec![("a//b", 10)], "empty path segment"),
        (vec![("bell\u{7}.txt", 10)], "control character"),
        (vec![("big.bin", 1001)], "at most 1000 bytes"),
        (vec![("a", 1), ("b", 1), ("c", 1), ("d", 1)], "at most 3"),
    ];
    for (files, needle) in cases {
        let id = s.create(WS1, &alice, "export").await;
        let upload = s.link(WS1, &id, &alice).await;
        for (name, size) in &files {
            upload.upload(name, vec![b'x'; *size]).unwrap();
        }
        let (status, body) = s
            .call(
                "POST",
                &format!("/api/workspaces/{WS1}/requests/{id}/submit"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(status, 409, "{files:?}: {body}");
        assert!(error_message(&body).contains(needle), "{files:?}: {body}");
        assert_eq!(s.record(&id).status.to_string(), "draft");
    }
}

/// A large upload may need longer than a download: upload links live
/// `uploadLinkExpiryMinutes` (capped at a day), other links `linkExpiryMinutes`; asking again
/// while the draft is open gives a fresh link, and each is on the record.
#[tokio::test]
async fn upload_links_live_as_long_as_the_policy_gives_uploads() {
    let s = Stack::start(json!({"linkExpiryMinutes": 10, "uploadLinkExpiryMinutes": 480})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let expiry = |v: &Value| -> chrono::DateTime<chrono::Utc> {
        serde_json::from_value(v["expiresAt"].clone()).unwrap()
    };
    let path = format!("/api/workspaces/{WS1}/requests/{id}/link");
    let now = airlock::ports::Clock::now(&*s.clock);
    let first = s.ok("GET", &path, &alice, None, 200).await;
    assert_eq!(first["permissions"], "acwdl");
    let hours = (expiry(&first) - now).num_minutes();
    assert!((480..485).contains(&hours), "{hours} minutes");
    // The upload link held by an AzCopy job that runs out: a new one, later, to resume.
    s.clock.advance(chrono::Duration::minutes(470));
    let renewed = s.ok("GET", &path, &alice, None, 200).await;
    assert!(expiry(&renewed) > expiry(&first));
    let upload = s
        .blobs
        .sas_client(renewed["containerUrl"].as_str().unwrap())
        .unwrap();
    s.clock.advance(chrono::Duration::minutes(20));
    upload.upload("big.bin", b"late but fine".to_vec()).unwrap();
    // Read links keep the shorter lifetime.
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let now = airlock::ports::Clock::now(&*s.clock);
    let manager = s.token("mona", &[MANAGER], WS1);
    let read = s.ok("GET", &path, &manager, None, 200).await;
    assert_eq!(read["permissions"], "rl");
    let minutes = (expiry(&read) - now).num_minutes();
    assert!((10..15).contains(&minutes), "{minutes} minutes");
    let links = s
        .actions(&id)
        .await
        .iter()
        .filter(|a| *a == "link issued")
        .count();
    assert_eq!(
        links, 3,
        "both upload links and the read link are on the record"
    );
}

#[tokio::test]
async fn links_carry_the_right_permissions_and_expire() {
    let s =
        Stack::start(json!({"linkExpiryMinutes": 10, "allowedIpRanges": ["10.1.0.0/16"]})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let v = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            &alice,
            None,
            200,
        )
        .await;
    assert_eq!(v["permissions"], "acwdl");
    let url = v["containerUrl"].as_str().unwrap();
    assert!(
        url.starts_with("https://stalexintwsone.")
            && url.contains("spr=https")
            && url.contains("sip=10.1.0.0-10.1.255.255"),
        "{url}"
    );
    let upload = s.blobs.sas_client(url).unwrap();
    upload.upload("a.csv", b"1\n".to_vec()).unwrap();
    assert!(
        upload.download("a.csv").is_err(),
        "a draft link cannot read"
    );
    // Another request's container is out of reach: the signature covers the container.
    let other = s.create(WS1, &alice, "export").await;
    assert!(s.blobs.sas_client(&url.replace(&id, &other)).is_err());
    assert!(
        s.blobs
            .sas_client(&url.replace("sp=acwdl", "sp=racwdl"))
            .is_err(),
        "permissions cannot be widened"
    );
    // Links end on a 5-minute boundary at least linkExpiryMinutes (10) from now.
    let now = airlock::ports::Clock::now(&*s.clock);
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(v["expiresAt"].clone()).unwrap();
    assert!(
        expires >= now + chrono::Duration::minutes(10)
            && expires < now + chrono::Duration::minutes(15)
            && expires.timestamp() % 300 == 0,
        "{expires} from {now}"
    );
    s.clock.advance(chrono::Duration::minutes(15));
    assert!(
        upload.upload("b.csv", b"2\n".to_vec()).is_err(),
        "an expired link is refused"
    );
}

#[tokio::test]
async fn listing_pages_and_filters() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let owner = s.token("olivia", &[OWNER], WS1);
    for _ in 0..5 {
        s.create(WS1, &alice, "export").await;
        s.clock.advance(chrono::Duration::seconds(1));
    }
    s.create(WS1, &bob, "import").await;
    let path = format!("/api/workspaces/{WS1}/requests");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &token {
            Some(t) => format!("{path}?pageSize=2&continuationToken={t}"),
            None => format!("{path}?pageSize=2"),
        };
        let v = s.ok("GET", &q, &owner, None, 200).await;
        pages += 1;
        for r in v["airlockRequests"].as_array().unwrap() {
            seen.push(r["airlockRequest"]["id"].as_str().unwrap().to_string());
        }
        match v["continuationToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 6));
    seen.dedup();
    assert_eq!(seen.len(), 6, "no duplicates across pages");
    // Researchers see their own requests only.
    let v = s.ok("GET", &path, &bob, None, 200).await;
    assert_eq!(v["airlockRequests"].as_array().unwrap().len(), 1);
    let v = s
        .ok("GET", &format!("{path}?type=import"), &owner, None, 200)
        .await;
    assert_eq!(v["airlockRequests"].as_array().unwrap().len(), 1);
    let v = s
        .ok(
            "GET",
            &format!("{path}?status=draft,submitted&creator=alice"),
            &owner,
            None,
            200,
        )
        .await;
    assert_eq!(v["airlockRequests"].as_array().unwrap().len(), 5);
    for bad in [
        "pageSize=0",
        "pageSize=1000",
        "status=done",
        "type=x",
        "orderBy=title",
        "continuationToken=zzz",
        "colour=red",
    ] {
        let (status, body) = s
            .call("GET", &format!("{path}?{bad}"), Some(&owner), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn my_requests_across_workspaces_and_awaiting_review() {
    let s = Stack::start(json!({})).await;
    let both = s.issuer.mint_claims(&json!({
        "iss": airlock_testkit::DEV_ISSUER, "aud": [audience(WS1), audience(WS2)], "oid": "alice",
        "roles": [RESEARCHER], "exp": chrono::Utc::now().timestamp() + 600,
    }));
    s.create(WS1, &both, "export").await;
    s.create(WS2, &both, "import").await;
    // AzureTRE's form without our parameters: a bare array of request documents.
    let v = s.ok("GET", "/api/requests", &both, None, 200).await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert!(v[0]["createdWhen"].is_f64(), "{v}");
    let v = s
        .ok("GET", "/api/requests?pageSize=20", &both, None, 200)
        .await;
    assert_eq!(v["airlockRequests"].as_array().unwrap().len(), 2, "{v}");
    let v = s
        .ok("GET", "/api/requests?pageSize=1", &both, None, 200)
        .await;
    let token = v["continuationToken"].as_str().unwrap().to_string();
    let v2 = s
        .ok(
            "GET",
            &format!("/api/requests?pageSize=1&continuationToken={token}"),
            &both,
            None,
            200,
        )
        .await;
    assert_ne!(
        v["airlockRequests"][0]["airlockRequest"]["id"],
        v2["airlockRequests"][0]["airlockRequest"]["id"]
    );
    let id = in_review(&s).await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let v = s
        .ok(
            "GET",
            "/api/requests?awaitingMyReview=true",
            &mike,
            None,
            200,
        )
        .await;
    let ids: Vec<&str> = v["airlockRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["airlockRequest"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    let (status, _) = s
        .call(
            "GET",
            "/api/requests?awaitingMyReview=true",
            Some(&both),
            None,
        )
        .await;
    assert_eq!(status, 403, "researchers have nothing to review");
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    let v = s
        .ok(
            "GET",
            "/api/requests?awaitingMyReview=true",
            &mike,
            None,
            200,
        )
        .await;
    assert_eq!(v["airlockRequests"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reviews_count_each_reviewer_once() {
    let s = Stack::start(json!({"approvalsRequired": 2})).await;
    let id = in_review(&s).await;
    let path = format!("/api/workspaces/{WS1}/requests/{id}/review");
    let mike = s.token("mike", &[MANAGER], WS1);
    let mary = s.token("mary", &[MANAGER], WS1);
    let approve = json!({"decision": "approved"});
    let (a, b, c) = tokio::join!(
        s.call("POST", &path, Some(&mike), Some(approve.clone())),
        s.call("POST", &path, Some(&mary), Some(approve.clone())),
        s.call("POST", &path, Some(&mike), Some(approve.clone())),
    );
    let mut statuses = vec![a.0.as_u16(), b.0.as_u16(), c.0.as_u16()];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 200, 409],
        "mike's second review is refused: {a:?} {b:?} {c:?}"
    );
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.reviews.len(), 2);
    assert_eq!(r.status.to_string(), "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approve_and_reject_never_both_win() {
    let s = Stack::start(json!({})).await;
    let id = in_review(&s).await;
    let path = format!("/api/workspaces/{WS1}/requests/{id}/review");
    let mike = s.token("mike", &[MANAGER], WS1);
    let mary = s.token("mary", &[MANAGER], WS1);
    let (a, b) = tokio::join!(
        s.call(
            "POST",
            &path,
            Some(&mike),
            Some(json!({"decision": "approved"}))
        ),
        s.call(
            "POST",
            &path,
            Some(&mary),
            Some(json!({"decision": "rejected", "explanation": "no"}))
        ),
    );
    let mut statuses = vec![a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{a:?} {b:?}");
    s.settle().await;
    let r = s.record(&id);
    assert_eq!(r.reviews.len(), 1);
    assert!(["approved", "rejected"].contains(&r.status.to_string().as_str()));
}

#[tokio::test]
async fn unknown_endpoints_health_and_openapi() {
    let s = Stack::start(json!({})).await;
    let (status, body) = s.call("GET", "/api/nothing/here", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NotFound");
    let (status, body) = s.call("GET", "/api/health", None, None).await;
    assert_eq!(
        (status.as_u16(), body["status"].as_str()),
        (200, Some("healthy"))
    );
    let (status, doc) = s.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(
        doc["paths"]["/api/workspaces/{workspaceId}/requests/{requestId}/review"]["post"]
            .is_object()
    );
}

#[tokio::test]
async fn forwarded_http_fixture_creates_a_request() {
    let s = Stack::start(json!({})).await;
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/forwarded-http-create.json")).unwrap();
    let mut req = s
        .http
        .post(format!("{}{}", s.base, fixture["path"].as_str().unwrap()));
    for (k, v) in fixture["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let resp = req
        .bearer_auth(s.token("alice", &[RESEARCHER], WS1))
        .body(fixture["body"].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["airlockRequest"]["title"], "Model coefficients");
    assert_eq!(
        body["allowedUserActions"],
        json!(["submit", "cancel", "link", "comment"])
    );
}

#[tokio::test]
async fn an_upload_link_works_before_any_event_is_delivered() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let v = s
        .ok(
            "POST",
            &format!("/api/workspaces/{WS1}/requests"),
            &alice,
            Some(json!({"type": "import", "title": "t", "businessJustification": "j"})),
            201,
        )
        .await;
    let id = v["airlockRequest"]["id"].as_str().unwrap();
    // No settle(): StatusChanged(draft) has not run yet.
    let link = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/link"),
            &alice,
            None,
            200,
        )
        .await;
    let url = link["containerUrl"].as_str().unwrap();
    assert!(
        s.blobs.container_exists(&airlock::ports::ContainerRef {
            account: "stalimextre1".into(),
            container: id.into()
        }),
        "{url}"
    );
}

#[tokio::test]
async fn implausible_ids_are_404_not_500() {
    let s = Stack::start(json!({})).await;
    let owner = s.token("olivia", &[OWNER, MANAGER], WS1);
    s.requests.fail_next(1000); // any store access would now fail loudly
    for path in [
        "/api/workspaces/%C2%B8%5C%C2%BB-o%1F%10/requests",
        "/api/workspaces/ws%2Fone/requests",
        "/api/workspaces/..%2F..%2Fetc/requests",
    ] {
        let (status, body) = s.call("GET", path, Some(&owner), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    for suffix in ["", "/history", "/link"] {
        let path = format!("/api/workspaces/{WS1}/requests/%1F%10bad{suffix}");
        let (status, body) = s.call("GET", &path, Some(&owner), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{}/cancel", "x".repeat(200)),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// Attack: a workspace owner who is also an airlock manager slips a file into a researcher's
/// draft (owners get upload links for any draft) and approves the request alone. Whoever was
/// given an upload link, or submitted, is no independent reviewer.
#[tokio::test]
async fn whoever_could_write_the_data_cannot_review_it() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let olga = s.token("olga", &[OWNER, MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("results.csv", b"1,2\n".to_vec())
        .unwrap();
    // Olga takes an upload link for Alice's draft and adds her own file.
    s.link(WS1, &id, &olga)
        .await
        .upload("extra.csv", b"row-level data\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    let r = s.get(WS1, &id, &olga).await;
    assert_eq!(r["status"], "in_review");
    let offered = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}"),
            &olga,
            None,
            200,
        )
        .await["allowedUserActions"]
        .clone();
    assert!(
        !offered.as_array().unwrap().contains(&json!("review")),
        "review is not offered to a contributor: {offered}"
    );
    let (status, body) = s
        .call(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{id}/review"),
            Some(&olga),
            Some(json!({"decision": "approved"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("upload link"), "{body}");
    assert!(s.record(&id).reviews.is_empty());
    assert!(s.record(&id).contributors.contains(&"olga".to_string()));
    // An independent manager still can.
    let mike = s.token("mike", &[MANAGER], WS1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
}

/// The same for whoever submits someone else's draft (an owner may), and a reader's link
/// (read-only, in review) does not disqualify anyone.
#[tokio::test]
async fn the_submitter_cannot_review_but_a_reader_can() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let olga = s.token("olga", &[OWNER, MANAGER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("results.csv", b"1,2\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &olga, None).await;
    let review = format!("/api/workspaces/{WS1}/requests/{id}/review");
    let (status, body) = s
        .call(
            "POST",
            &review,
            Some(&olga),
            Some(json!({"decision": "approved"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let mike = s.token("mike", &[MANAGER], WS1);
    s.link(WS1, &id, &mike).await; // a read link to look at the files
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
}

/// Attack: a manager reads revision 1; the researcher swaps the file and resubmits as
/// revision 2; the manager's approval, naming revision 1 or nothing, must not approve it.
#[tokio::test]
async fn an_approval_for_what_the_reviewer_did_not_see_is_409() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let mary = s.token("mary", &[MANAGER], WS1);
    let id = in_review(&s).await;
    let seen = s.get(WS1, &id, &mary).await;
    assert_eq!(seen["revision"], 1);
    s.action(
        WS1,
        &id,
        "review",
        &mike,
        Some(
            json!({"decision": "changes_requested", "explanation": "drop the ids", "revision": 1}),
        ),
    )
    .await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"swapped after review\n".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &alice, None).await;
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    assert_eq!(s.record(&id).revision, 2);
    let review = format!("/api/workspaces/{WS1}/requests/{id}/review");
    for body in [
        json!({"decision": "approved", "revision": 1}),
        json!({"decision": "approved"}),
        json!({"approval": true, "decisionExplanation": "ok"}),
    ] {
        let (status, resp) = s
            .call("POST", &review, Some(&mary), Some(body.clone()))
            .await;
        assert_eq!(status, 409, "{body}: {resp}");
        assert!(error_message(&resp).contains("revision 2"), "{resp}");
        assert_eq!(resp["error"]["code"], "Conflict");
    }
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    assert!(s.record(&id).reviews.iter().all(|r| r.revision == 1));
    s.action(
        WS1,
        &id,
        "review",
        &mary,
        Some(json!({"decision": "approved", "revision": 2})),
    )
    .await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
}

/// Names that display as something else, clash on case, or are reserved on Windows are
/// refused at submit with a 400 naming the file.
#[tokio::test]
async fn deceptive_file_names_refuse_submit() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    for (files, needle) in [
        (
            vec!["invoice\u{202E}gpj.exe"],
            "invisible formatting character (U+202E)",
        ),
        (vec!["re\u{200B}sults.csv"], "U+200B"),
        (
            vec!["Results.csv", "results.csv"],
            "differ only in letter case",
        ),
        (vec!["CON.txt"], "Windows"),
        (vec!["data:stream"], "Windows"),
    ] {
        let id = s.create(WS1, &alice, "export").await;
        let link = s.link(WS1, &id, &alice).await;
        for name in &files {
            link.upload(name, b"1\n".to_vec()).unwrap();
        }
        let (status, body) = s
            .call(
                "POST",
                &format!("/api/workspaces/{WS1}/requests/{id}/submit"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(status, 409, "{files:?}: {body}");
        assert!(error_message(&body).contains(needle), "{files:?}: {body}");
        assert_eq!(s.record(&id).status.to_string(), "draft");
    }
}

/// Attack: a researcher asks for the upload link in a loop to fill the request's record
/// (Cosmos DB items stop at 2 MB, and then nothing can be written to the request). The same
/// link is on the record once, and the caller is slowed down with 429 and `Retry-After`.
#[tokio::test]
async fn a_link_loop_neither_grows_the_record_nor_goes_unthrottled() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let path = format!("{}/api/workspaces/{WS1}/requests/{id}/link", s.base);
    let mut throttled = None;
    let mut served = 0;
    for _ in 0..400 {
        let r = s.http.get(&path).bearer_auth(&alice).send().await.unwrap();
        match r.status().as_u16() {
            200 => served += 1,
            429 => {
                throttled = Some((
                    r.headers()["retry-after"].to_str().unwrap().to_string(),
                    r.json::<Value>().await.unwrap(),
                ));
                break;
            }
            other => panic!("{other}"),
        }
    }
    let (retry_after, body) = throttled.expect("the loop is throttled");
    assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!((250..400).contains(&served), "{served}");
    let links = s
        .actions(&id)
        .await
        .iter()
        .filter(|a| *a == "link issued")
        .count();
    assert_eq!(links, 1, "the same link is on the record once");
    // Someone else is not slowed down by Alice's loop.
    let bob = s.token("bob", &[RESEARCHER], WS1);
    s.create(WS1, &bob, "export").await;
    // Time heals: a minute later Alice may call again.
    s.clock.advance(chrono::Duration::minutes(1));
    let r = s.http.get(&path).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A workspace whose allowed IP range no SAS can carry (IPv6, or several) gets a clear 400
/// naming the range, never a 500 or a link that ignores the restriction.
#[tokio::test]
async fn links_refuse_ip_ranges_they_cannot_carry() {
    for (ranges, needle) in [
        (json!(["2001:db8::/32"]), "IPv6"),
        (json!(["10.0.0.0/8", "192.168.0.0/16"]), "2 IP ranges"),
    ] {
        let s = Stack::start(json!({"allowedIpRanges": ranges})).await;
        let alice = s.token("alice", &[RESEARCHER], WS1);
        let id = s.create(WS1, &alice, "export").await;
        let (status, body) = s
            .call(
                "GET",
                &format!("/api/workspaces/{WS1}/requests/{id}/link"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(status, 400, "{ranges}: {body}");
        assert!(error_message(&body).contains(needle), "{body}");
    }
}

/// The record's version as a precondition: GET answers with `ETag`; a review sent with an
/// `If-Match` of a version that has since changed is 412, and nothing is recorded.
#[tokio::test]
async fn a_review_with_a_stale_if_match_is_412() {
    let s = Stack::start(json!({})).await;
    let id = in_review(&s).await;
    let mary = s.token("mary", &[MANAGER], WS1);
    let mike = s.token("mike", &[MANAGER], WS1);
    let path = format!("{}/api/workspaces/{WS1}/requests/{id}", s.base);
    let read = s.http.get(&path).bearer_auth(&mary).send().await.unwrap();
    let seen = read.headers()["etag"].to_str().unwrap().to_string();
    assert!(seen.starts_with('"') && seen.len() > 2, "{seen}");
    // The record changes after Mary read it (another manager takes a read link).
    s.link(WS1, &id, &mike).await;
    let review = |etag: String| {
        s.http
            .post(format!("{path}/review"))
            .bearer_auth(&mary)
            .header("if-match", etag)
            .json(&json!({"decision": "approved", "revision": 1}))
            .send()
    };
    // Not an entity-tag at all is bad input, not a version that does not match.
    for malformed in ["INF", "W/", "\"a\", \"b\""] {
        let refused = review(malformed.to_string()).await.unwrap();
        assert_eq!(refused.status(), 400, "{malformed:?}");
    }
    let stale = review(seen.clone()).await.unwrap();
    assert_eq!(stale.status(), 412);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PreconditionFailed", "{body}");
    assert!(s.record(&id).reviews.is_empty());
    let fresh = s.http.get(&path).bearer_auth(&mary).send().await.unwrap();
    let now = fresh.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(now, seen);
    assert_eq!(review(now).await.unwrap().status(), 200);
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
}

#[tokio::test]
async fn workspace_limits_are_shown_to_its_members_only() {
    let s = Stack::start(
        json!({"maxFiles": 3, "uploadLinkExpiryMinutes": 480, "unscannedFiles": "review"}),
    )
    .await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let path = format!("/api/workspaces/{WS1}/limits");
    let limits = s.ok("GET", &path, &alice, None, 200).await;
    assert_eq!(limits["workspaceId"], WS1);
    assert_eq!(limits["maxFiles"], 3);
    assert_eq!(limits["uploadLinkExpiryMinutes"], 480);
    assert_eq!(limits["unscannedFiles"], "review");
    // Another workspace's member, someone without an airlock role, and nobody at all.
    let olivia = s.token("olivia", &[OWNER], WS2);
    let (status, _) = s.call("GET", &path, Some(&olivia), None).await;
    assert_eq!(status, 401);
    let nobody = s.token("nina", &[], WS1);
    let (status, body) = s.call("GET", &path, Some(&nobody), None).await;
    assert_eq!(
        (status.as_u16(), error_message(&body)),
        (403, "you have no airlock role in this workspace")
    );
    let (status, _) = s.call("GET", &path, None, None).await;
    assert_eq!(status, 401);
}

/// AzureTRE's clients, unchanged: its create body (no title, `properties`), its review body
/// (`approval` as the string "True"), its list parameters, and documents its model reads
/// (epoch-second timestamps, `reviewDecision`, `decisionExplanation`, `dateCreated`).
#[tokio::test]
async fn azure_tre_bodies_parameters_and_fields() {
    let s = Stack::start(json!({})).await;
    let owner = s.token("olga", &["WorkspaceOwner"], WS1);
    let created = s
        .ok(
            "POST",
            &format!("/api/workspaces/{WS1}/requests"),
            &owner,
            Some(
                json!({"type": "import", "businessJustification": "some business justification",
                "properties": {"anything": ["AzureTRE", "sends"]}}),
            ),
            201,
        )
        .await;
    let r = &created["airlockRequest"];
    assert_eq!(r["title"], "Airlock Request", "AzureTRE's default title");
    assert_eq!(r["status"], "draft");
    assert!(r["createdWhen"].as_f64().unwrap() > 1.7e9, "{r}");
    assert!(r["updatedWhen"].is_f64());
    let created_at =
        chrono::DateTime::parse_from_rfc3339(r["createdAt"].as_str().unwrap()).unwrap();
    assert!((created_at.timestamp() as f64 - r["createdWhen"].as_f64().unwrap()).abs() < 1.0);
    assert!(r["resourceVersion"].as_u64().unwrap() >= 1);
    for internal in ["outbox", "historyTail", "linksIssued", "auditedSinceChange"] {
        assert!(r.get(internal).is_none(), "{internal} is not shown");
    }
    let id = r["id"].as_str().unwrap().to_string();
    s.settle().await;
    s.link(WS1, &id, &owner)
        .await
        .upload("test_airlock_sample.txt", b"hello".to_vec())
        .unwrap();
    s.action(WS1, &id, "submit", &owner, None).await;
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    // The owner who created it may not review it (our rule, kept): 403.
    let review = format!("/api/workspaces/{WS1}/requests/{id}/review");
    let azure_tre_review = json!({"approval": "True",
        "decisionExplanation": "the reason why this request was approved/rejected"});
    let (status, _) = s
        .call(
            "POST",
            &review,
            Some(&owner),
            Some(azure_tre_review.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let mike = s.token("mike", &[MANAGER], WS1);
    let v = s
        .ok("POST", &review, &mike, Some(azure_tre_review), 200)
        .await;
    let r = &v["airlockRequest"];
    assert_eq!(
        r["reviews"][0]["decisionExplanation"],
        "the reason why this request was approved/rejected"
    );
    assert_eq!(r["reviews"][0]["reviewDecision"], "approved");
    assert!(r["reviews"][0]["dateCreated"].is_f64());
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "approved");
    // AzureTRE's list parameters.
    let list = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests?creator_user_id=olga&order_by=updatedWhen&order_ascending=false&type=import&status=approved"),
            &mike,
            None,
            200,
        )
        .await;
    assert_eq!(
        list["airlockRequests"].as_array().unwrap().len(),
        1,
        "{list}"
    );
    let (status, body) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests?order_by=c.id;DROP"),
            Some(&mike),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // AzureTRE's cross-workspace list for a manager: a bare array.
    let v = s
        .ok(
            "GET",
            "/api/requests?airlock_manager=true",
            &mike,
            None,
            200,
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["id"], id.as_str());
    // A researcher asking as a manager gets nothing, as in AzureTRE.
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let v = s
        .ok(
            "GET",
            "/api/requests?airlock_manager=true",
            &alice,
            None,
            200,
        )
        .await;
    assert_eq!(v, json!([]));
    // A rejection with AzureTRE's "False".
    let other = in_review(&s).await;
    let v = s
        .ok(
            "POST",
            &format!("/api/workspaces/{WS1}/requests/{other}/review"),
            &mike,
            Some(json!({"approval": "false", "decisionExplanation": "no"})),
            200,
        )
        .await;
    assert_eq!(
        v["airlockRequest"]["reviews"][0]["reviewDecision"],
        "rejected"
    );
}

/// The store briefly unavailable is a 503 with Retry-After (never a bare 500), and the next
/// call works.
#[tokio::test]
async fn a_store_outage_is_503_with_retry_after() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    s.requests.fail_next(1);
    let resp = s
        .http
        .get(format!("{}/api/workspaces/{WS1}/requests", s.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let (status, _) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

/// Under load an auditor read `verified: false` for a request whose step was being written:
/// the record was read before that step, the history store after it. The trail read is the
/// committed one: never a false break from reading mid-write.
#[tokio::test]
async fn the_audit_trail_read_mid_write_verifies() {
    use airlock::app::record::{committed_history, full_history};
    use airlock::domain::request::verify_history;
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    s.link(WS1, &id, &alice)
        .await
        .upload("a.csv", b"a,b\n".to_vec())
        .unwrap();
    // The auditor's read of the record, then a step written (record and store) before the
    // auditor reads the store.
    let read_before = s.record(&id);
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    let naive = full_history(&s.deps, &read_before).await.unwrap();
    assert!(
        verify_history(&id, &naive, &read_before.history_head).is_err(),
        "the race this guards against: the store ran ahead of the record read"
    );
    let (record, history) = committed_history(&s.deps, WS1, read_before).await.unwrap();
    assert_eq!(verify_history(&id, &history, &record.history_head), Ok(()));
    assert_eq!(history.len() as u64, record.history_head.length);
    // And through the API.
    let trail = s.trail(WS1, &id, &alice).await;
    assert_eq!(trail["verified"], true, "{trail}");
}

/// POSTs a create with `Idempotency-Key: key` (raw header bytes), returning the status and
/// the body.
async fn create_with_key(
    s: &Stack,
    ws: &str,
    token: &str,
    key: &[u8],
    title: &str,
) -> (u16, Value) {
    let (status, body) = s
        .call_with(
            "POST",
            &format!("/api/workspaces/{ws}/requests"),
            Some(token),
            &[("Idempotency-Key", key)],
            Some(
                json!({"type": "export", "title": title, "businessJustification": "For the paper"}),
            ),
        )
        .await;
    (status.as_u16(), body)
}

async fn request_ids(s: &Stack, ws: &str, token: &str) -> Vec<String> {
    let v = s
        .ok(
            "GET",
            &format!("/api/workspaces/{ws}/requests?pageSize=100"),
            token,
            None,
            200,
        )
        .await;
    let mut ids: Vec<String> = v["airlockRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["airlockRequest"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_create_with_an_idempotency_key_is_made_once_however_often_it_is_sent() {
    let s = Stack::start(json!({})).await;
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id_of = |v: &Value| v["airlockRequest"]["id"].as_str().unwrap().to_string();

    // A retry after a lost answer, and eight racing each other: one request.
    let (code, first) = create_with_key(&s, WS1, &alice, b"key-1", "Results").await;
    assert_eq!(code, 201, "{first}");
    let id = id_of(&first);
    let (code, again) = create_with_key(&s, WS1, &alice, b"\"key-1\"", "Results").await;
    assert_eq!(
        (code, id_of(&again)),
        (201, id.clone()),
        "quoted, the same key"
    );
    let racing = futures::future::join_all(
        (0..8).map(|_| create_with_key(&s, WS1, &alice, b"key-2", " Results ")),
    )
    .await;
    let raced: std::collections::BTreeSet<String> = racing
        .iter()
        .map(|(code, v)| {
            assert_eq!(*code, 201, "{v}");
            id_of(v)
        })
        .collect();
    assert_eq!(raced.len(), 1, "{racing:?}");
    let raced = raced.into_iter().next().unwrap();
    let mut expected = vec![id.clone(), raced.clone()];
    expected.sort();
    assert_eq!(request_ids(&s, WS1, &alice).await, expected);

    // A retry after the request moved on is answered with it as it is now.
    s.action(WS1, &id, "cancel", &alice, None).await;
    let (code, later) = create_with_key(&s, WS1, &alice, b"key-1", "Results").await;
    assert_eq!(code, 201);
    assert_eq!(later["airlockRequest"]["id"], json!(id));
    assert_eq!(later["airlockRequest"]["status"], "cancelled");

    // The key with a different body: refused, nothing made.
    let (code, v) = create_with_key(&s, WS1, &alice, b"key-1", "Other results").await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["error"]["code"], "Conflict");
    assert!(error_message(&v).contains("new key"), "{v}");
    assert_eq!(request_ids(&s, WS1, &alice).await, expected);

    // Another user's key, or the key in another workspace, is another request: a key
    // neither finds nor blocks anyone else's.
    let bob = s.token("bob", &[RESEARCHER], WS1);
    let (code, bobs) = create_with_key(&s, WS1, &bob, b"key-1", "Other results").await;
    assert_eq!(code, 201, "{bobs}");
    assert_ne!(id_of(&bobs), id);
    assert_eq!(bobs["airlockRequest"]["createdBy"]["id"], "bob");
    let alice2 = s.token("alice", &[RESEARCHER], WS2);
    let (code, other_ws) = create_with_key(&s, WS2, &alice2, b"key-1", "Results").await;
    assert_eq!(code, 201, "{other_ws}");
    assert_ne!(id_of(&other_ws), id);

    // Bad keys: a clear 400, nothing made.
    let before = request_ids(&s, WS1, &alice).await;
    let too_long = vec![b'k'; 256];
    for bad in [
        &b""[..],
        b"\"\"",
        b"\"unterminated",
        b"\"a\\\"b\"",
        b"caf\xc3\xa9",
        &too_long,
    ] {
        let (code, v) = create_with_key(&s, WS1, &alice, bad, "Results").await;
        assert_eq!(code, 400, "{:?}: {v}", String::from_utf8_lossy(bad));
        assert!(error_message(&v).contains("Idempotency-Key"), "{v}");
    }
    assert_eq!(request_ids(&s, WS1, &alice).await, before);

    // Without a key each create is a new request, as before.
    let a = s.create(WS1, &alice, "export").await;
    let b = s.create(WS1, &alice, "export").await;
    assert_ne!(a, b);

    // A key does not let a role that may not create make anything.
    let mike = s.token("mike", &[MANAGER], WS1);
    let (code, _) = create_with_key(&s, WS1, &mike, b"key-9", "Results").await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn a_comment_with_an_idempotency_key_is_written_once_however_often_it_is_sent() {
    let s = Stack::start(json!({})).await;
    let id = in_review(&s).await;
    let mike = s.token("mike", &[MANAGER], WS1);
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let comments = format!("/api/workspaces/{WS1}/requests/{id}/comments");
    let stack = &s;
    let send = |token: &str, key: &'static str, text: &'static str| {
        let (token, comments) = (token.to_string(), comments.clone());
        async move {
            stack
                .call_with(
                    "POST",
                    &comments,
                    Some(&token),
                    &[("Idempotency-Key", key.as_bytes())],
                    Some(json!({"text": text})),
                )
                .await
        }
    };
    let (status, first) = send(&mike, "c-1", "Which years?").await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = send(&mike, "\"c-1\"", " Which years? ").await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first, "answered with the comment the key wrote");
    assert_eq!(s.record(&id).comments.len(), 1);
    let trail = s
        .ok(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/history"),
            &mike,
            None,
            200,
        )
        .await;
    let written = trail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "commented")
        .count();
    assert_eq!(written, 1, "one trail entry: {trail}");

    // The key with another comment: refused, nothing written.
    let (status, other) = send(&mike, "c-1", "Which months?").await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(s.record(&id).comments.len(), 1);

    // The same key from someone else is their own comment; without a key, each is new.
    assert_eq!(send(&alice, "c-1", "2019 to 2023").await.0, 201);
    for _ in 0..2 {
        s.ok(
            "POST",
            &comments,
            &mike,
            Some(json!({"text": "Thanks"})),
            201,
        )
        .await;
    }
    assert_eq!(s.record(&id).comments.len(), 4);
    assert_eq!(send(&mike, "\"", "x").await.0, 400);
}
