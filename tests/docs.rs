//! The docs' state diagram is generated from the transition table; this keeps them equal.
//! Regenerate with `AIRLOCK_WRITE_DOCS=1 cargo test --test docs`.

#[test]
fn state_diagram_matches_the_transition_table() {
    let path = format!("{}/docs/lifecycle.md", env!("CARGO_MANIFEST_DIR"));
    let mut expected = String::from(
        "# Request lifecycle\n\nGenerated from `handlers/domain/lifecycle.rs` (`TRANSITIONS`); do not edit by hand.\n\n```mermaid\n",
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
        "docs/lifecycle.md is stale: run AIRLOCK_WRITE_DOCS=1 cargo test --test docs"
    );
}

#[test]
fn the_committed_openapi_document_is_the_served_one() {
    let path = format!("{}/docs/openapi.json", env!("CARGO_MANIFEST_DIR"));
    let generated = serde_json::to_string_pretty(&airlock::api::openapi_document()).unwrap() + "\n";
    if std::env::var_os("AIRLOCK_WRITE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run AIRLOCK_WRITE_DOCS=1 cargo test --test docs"
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
                    .any(|k| k.starts_with('2')),
                "{method} {path}"
            );
        }
    }
}
