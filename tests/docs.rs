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
