//! The docs' state diagram is generated from the transition table; this keeps them equal.
//! Regenerate with `AIRLOCK_WRITE_DOCS=1 cargo test -p airlock --test fast docs`.

#[test]
fn state_diagram_matches_the_transition_table() {
    let path = format!("{}/docs/lifecycle.md", crate::common::REPO);
    let mut expected = String::from(
        "# Request lifecycle\n\nGenerated from `crates/airlock-domain/src/lifecycle.rs` (`TRANSITIONS`); do not edit by hand.\n\n```mermaid\n",
    );
    expected.push_str(&airlock::domain::lifecycle::mermaid());
    expected.push_str("```\n\n| from | to | by | when |\n|---|---|---|---|\n");
    for t in airlock::domain::TRANSITIONS {
        expected.push_str(&format!(
            "| {} | {} | {:?} | {} |\n",
            t.from, t.to, t.by, t.when
        ));
    }
    if std::env::var_os("AIRLOCK_WRITE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed, expected,
        "docs/lifecycle.md is stale: run AIRLOCK_WRITE_DOCS=1 cargo test -p airlock --test fast docs"
    );
}

#[test]
fn the_committed_openapi_document_is_the_served_one() {
    let path = format!("{}/docs/openapi.json", crate::common::REPO);
    let generated = serde_json::to_string_pretty(&airlock::api::openapi_document()).unwrap() + "\n";
    if std::env::var_os("AIRLOCK_WRITE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run AIRLOCK_WRITE_DOCS=1 cargo test -p airlock --test fast docs"
    );
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    // Every schema reference resolves.
    let text = committed.clone();
    for piece in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with('2') || k.starts_with('3')),
                "{method} {path}"
            );
        }
    }
}

/// `docs/roles.md` is generated from the access rules, so it cannot drift from the code.
#[test]
fn roles_doc_matches_the_access_rules() {
    use airlock::domain::access::{allowed_user_actions, link_grant};
    use airlock::domain::request::Ctx;
    use airlock::domain::{AirlockRequest, Caller, RequestType, Role, Status, User, Workspace};
    let ws: Workspace = serde_json::from_value(
        serde_json::json!({"id": "w", "displayName": "w", "shortId": "w", "tokenAudience": "a"}),
    )
    .unwrap();
    let user = |id: &str| User {
        id: id.into(),
        name: id.into(),
        email: None,
    };
    let ctx = Ctx {
        now: chrono::Utc::now(),
        workspace: &ws,
    };
    let base = AirlockRequest::create(
        "r".into(),
        RequestType::Export,
        "t".into(),
        "j".into(),
        user("creator"),
        &ctx,
    )
    .unwrap();
    let callers = [
        (
            "WorkspaceResearcher (creator)",
            Role::WorkspaceResearcher,
            "creator",
        ),
        (
            "WorkspaceResearcher (other)",
            Role::WorkspaceResearcher,
            "other",
        ),
        ("WorkspaceOwner", Role::WorkspaceOwner, "owner"),
        ("AirlockManager", Role::AirlockManager, "manager"),
        ("TREAdmin", Role::TreAdmin, "admin"),
        ("AirlockAuditor", Role::AirlockAuditor, "auditor"),
    ];
    let mut doc = String::from(
        "# Roles: who may do what\n\nGenerated from `crates/airlock-domain/src/access.rs` by `crates/airlock/tests/fast/docs.rs`; do not edit by hand.\n\n\
         Roles are Entra ID app roles in the caller's token for a workspace. Nobody reviews a request they created, and a\n\
         reviewer counts once per revision. Creating requests: `WorkspaceResearcher` and `WorkspaceOwner`. Reading: owners,\n\
         airlock managers, TRE admins and auditors read every request of the workspace; researchers read their own and approved ones.\n\
         `AirlockAuditor` reads every request, its trail, gate report and comments (reviewers-only ones too), never the\n\
         data (no links, no previews), and does nothing else; each request it reads is on that request's record.\n\
         `AirlockGate` is for service identities: it answers for an external gate (`POST .../gates/{name}`, docs/gates.md)\n\
         while the request is `submitted` and waits for it, and may do nothing else.\n\n\
         Actions offered in `allowedUserActions`, per status (link permissions: `acwdl` upload without read, `rl` read):\n\n",
    );
    doc.push_str("| status |");
    for (name, _, _) in &callers {
        doc.push_str(&format!(" {name} |"));
    }
    doc.push_str("\n|---|");
    for _ in &callers {
        doc.push_str("---|");
    }
    doc.push('\n');
    for status in Status::ALL {
        let mut r = base.clone();
        r.status = status;
        doc.push_str(&format!("| `{status}` |"));
        for (_, role, id) in &callers {
            let caller = Caller {
                user: user(id),
                roles: vec![*role],
            };
            let actions: Vec<String> = allowed_user_actions(&caller, &r)
                .into_iter()
                .map(|a| match a {
                    airlock::domain::UserAction::Link => format!(
                        "link ({})",
                        link_grant(&caller, &r).unwrap().permissions.as_sas()
                    ),
                    other => serde_json::to_value(other)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                })
                .collect();
            doc.push_str(&format!(
                " {} |",
                if actions.is_empty() {
                    "—".to_string()
                } else {
                    actions.join(", ")
                }
            ));
        }
        doc.push('\n');
    }
    let path = format!("{}/docs/roles.md", crate::common::REPO);
    if std::env::var_os("AIRLOCK_WRITE_DOCS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        doc,
        "docs/roles.md is stale: run AIRLOCK_WRITE_DOCS=1 cargo test -p airlock --test fast docs"
    );
}

/// Every error code the API sends is in the OpenAPI document, with the status it comes with,
/// and is sent under the name the document gives it.
#[test]
fn the_openapi_document_lists_every_error_code() {
    use airlock::api::types::ErrorCode;
    let doc = airlock::api::openapi_document();
    // Documented variant by variant (`oneOf` of one-value enums), or as one enum.
    let schema = &doc["components"]["schemas"]["ErrorCode"];
    let listed: Vec<String> = match schema["oneOf"].as_array() {
        Some(variants) => variants
            .iter()
            .flat_map(|v| v["enum"].as_array().cloned().unwrap_or_default())
            .collect(),
        None => schema["enum"].as_array().cloned().unwrap_or_default(),
    }
    .iter()
    .map(|v| v.as_str().unwrap().to_string())
    .collect();
    let sent: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(listed, sent);
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        let status = code.http_status().to_string();
        let documented = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|p| p.as_object().unwrap().values())
            .any(|op| op["responses"].get(&status).is_some());
        assert!(
            documented,
            "{code:?}: no operation documents status {status}"
        );
    }
}

/// Every documented operation is served (the router and the document come from one table):
/// each answers as its own endpoint, never as the catch-all 404; what is not documented is
/// the catch-all (another path) or 405 (another method on a documented path).
#[tokio::test]
async fn every_documented_operation_is_served_and_nothing_else() {
    use crate::common::{Stack, WS1};
    let s = Stack::start(serde_json::json!({})).await;
    let doc = airlock::api::openapi_document();
    let mut served = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{workspaceId}", WS1)
            .replace("{requestId}", "5e1f0c1d-0000-4000-8000-000000000000")
            .replace("{gateName}", "names")
            .replace("{asset}", "index.html");
        for (method, operation) in methods.as_object().unwrap() {
            let (status, body) = s
                .call(
                    &method.to_uppercase(),
                    &concrete,
                    None,
                    Some(serde_json::json!({})),
                )
                .await;
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if secured {
                assert_eq!(status, 401, "{method} {path}: {body}");
            } else {
                // Its documented success: 200, or the app's redirect to its page.
                let success: u16 = operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .find(|k| k.starts_with('2') || k.starts_with('3'))
                    .unwrap()
                    .parse()
                    .unwrap();
                // (a client that follows the redirect lands on the page)
                assert!(
                    status == success || (success / 100 == 3 && status == 200),
                    "{method} {path}: {status} {body}"
                );
            }
            served += 1;
        }
        // A method the document does not give this path.
        let documented: Vec<String> = methods.as_object().unwrap().keys().cloned().collect();
        if !documented.iter().any(|m| m == "delete") {
            let (status, body) = s.call("DELETE", &concrete, None, None).await;
            assert_eq!(status, 405, "DELETE {path}: {body}");
        }
    }
    assert!(served >= 17, "{served} operations");
    let (status, body) = s
        .call("GET", &format!("/api/workspaces/{WS1}/nothing"), None, None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["message"], "no such API endpoint");
}

/// The document's policy is the one the handler's parser reads: the same fields with the same
/// defaults, nothing else; every gate kind it offers parses; an IP range it calls valid is one
/// a link can carry. A client that builds a policy from the document is not refused.
#[test]
fn the_documents_policy_is_the_one_the_parser_reads() {
    use airlock::domain::policy::{WorkspacePolicy, sas_ip_range};
    use airlock::domain::workspace::parse_policy_defaults;
    use serde_json::{Value, json};
    let doc = airlock::api::openapi_document();
    let schemas = &doc["components"]["schemas"];
    let policy = &schemas["WorkspacePolicy"];
    assert_eq!(
        policy["additionalProperties"], false,
        "unknown fields are refused"
    );
    let defaults = serde_json::to_value(WorkspacePolicy::default()).unwrap();
    let documented = policy["properties"].as_object().unwrap();
    let read = defaults.as_object().unwrap();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        read.keys().collect::<Vec<_>>(),
        "the same fields"
    );
    for (field, value) in read {
        assert_eq!(&documented[field]["default"], value, "{field}'s default");
    }
    // Every kind the document offers parses with its parameters left out; one it does not
    // offer is refused.
    let kinds: Vec<String> = schemas["Gate"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["properties"]["kind"]["enum"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    for kind in &kinds {
        let text = json!({"gates": [{"name": "g", "kind": kind}]}).to_string();
        parse_policy_defaults(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    let unknown = json!({"gates": [{"name": "g", "kind": "astrology"}]}).to_string();
    assert!(parse_policy_defaults(&unknown).is_err());
    // The IP pattern, read by a regex engine: what it matches, the parser reads.
    let ranges = &policy["properties"]["allowedIpRanges"];
    assert_eq!(ranges["maxItems"], 1, "a link carries one range");
    let pattern = regex::Regex::new(ranges["items"]["pattern"].as_str().unwrap()).unwrap();
    for (text, documented) in [
        ("10.0.0.1", true),
        ("0.0.0.0/0", true),
        ("192.168.10.0/24", true),
        ("255.255.255.255/32", true),
        ("10.0.0.0/33", false),
        ("256.0.0.1", false),
        ("01.2.3.4", false),
        ("10.0.0", false),
        ("::1", false),
        ("10.0.0.0/8 ", false),
        ("10.0.0.1-10.0.0.9", false),
    ] {
        assert_eq!(pattern.is_match(text), documented, "{text}");
        if documented {
            sas_ip_range(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let policy: Value = json!({"allowedIpRanges": [text]});
            parse_policy_defaults(&policy.to_string()).unwrap();
        }
    }
    // Two ranges, which the document refuses, the parser refuses too.
    let two = json!({"allowedIpRanges": ["10.0.0.1", "10.0.0.2"]}).to_string();
    assert!(parse_policy_defaults(&two).is_err());
}
