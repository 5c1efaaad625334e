use super::*;
use crate::request::verify_history;
use serde_json::json;

fn record() -> Value {
    json!({"id": "ws-three", "displayName": "Three", "shortId": "three",
           "tokenAudience": "api://ws-three", "policy": {"approvalsRequired": 1}})
}

fn at(minute: u32) -> Author<'static> {
    Author {
        user_id: "tina",
        now: format!("2026-12-05T10:{minute:02}:00Z").parse().unwrap(),
    }
}

fn none() -> Map<String, Value> {
    Map::new()
}

#[test]
fn a_registration_is_refused_with_what_to_fix() {
    let with = |field: &str, value: Value| {
        let mut r = record();
        r[field] = value;
        r
    };
    let without = |field: &str| {
        let mut r = record();
        r.as_object_mut().unwrap().remove(field);
        r
    };
    for (doc, needle) in [
        (json!([]), "JSON object"),
        (without("id"), "id is required"),
        (with("id", json!("a/b")), "letters, digits"),
        (with("id", json!("tre")), "reserved"),
        (with("id", json!("x".repeat(65))), "1 to 64"),
        (without("shortId"), "shortId is required"),
        (with("shortId", json!("Three")), "lower-case"),
        (with("shortId", json!("waytoolongid")), "1 to 9"),
        (with("displayName", json!("   ")), "displayName"),
        (with("tokenAudience", json!("")), "tokenAudience"),
        (with("colour", json!("red")), "unknown field \"colour\""),
        (
            with("historyHead", json!({})),
            "unknown field \"historyHead\"",
        ),
        (
            with("policy", json!({"maxFiles": "many"})),
            "policy: invalid",
        ),
        (
            with("policy", json!({"approvalSRequired": 2})),
            "approvalSRequired",
        ),
        (
            with("policy", json!({"allowedIpRanges": ["10.0.0.0/8", "::1"]})),
            "one IPv4 range",
        ),
        (
            with("policy", json!({"gates": [{"name": "g", "kind": "nope"}]})),
            "policy",
        ),
        (
            with("contacts", json!({"airlockManager": ["not an address"]})),
            "not an e-mail",
        ),
    ] {
        let err = apply(None, &doc, &none(), at(0)).unwrap_err();
        assert!(err.to_string().contains(needle), "{doc}: {err}");
    }
}

#[test]
fn each_change_is_an_entry_chained_onto_the_last_with_its_diff_and_version() {
    let defaults = parse(r#"{"linkExpiryMinutes": 30}"#);
    let registered = apply(None, &record(), &defaults, at(0)).unwrap();
    assert_eq!(registered.entry.action, "workspace registered");
    assert_eq!(registered.entry.seq, 0);
    assert_eq!(
        registered.workspace.policy.link_expiry_minutes, 30,
        "the operator's default fills what the record leaves out"
    );
    assert_eq!(
        registered.record.get("policy"),
        Some(&json!({"approvalsRequired": 1})),
        "the record is kept as written, not with the defaults in it"
    );

    let stored = registered.record.clone();
    let new_policy =
        json!({"approvalsRequired": 2, "gates": [{"name": "sdc", "kind": "disclosure"}]});
    let changed = apply(
        Some(&stored),
        &with_policy(&stored, &new_policy),
        &defaults,
        at(5),
    )
    .unwrap();
    assert_eq!(changed.entry.action, "policy changed");
    assert_eq!(changed.entry.seq, 1);
    let details: ChangeDetails =
        serde_json::from_value(changed.entry.details.clone().unwrap()).unwrap();
    let fields: Vec<&str> = details.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["policy.approvalsRequired", "policy.gates"]);
    assert_eq!(details.changes[0].before, Some(json!(1)));
    assert_eq!(details.changes[0].after, Some(json!(2)));
    assert_eq!(
        details.policy_version_before.as_deref(),
        Some(registered.workspace.policy.version().as_str())
    );
    assert_eq!(details.policy_version, changed.workspace.policy.version());
    assert_ne!(
        details.policy_version_before.unwrap(),
        details.policy_version
    );
    assert_eq!(details.policy, new_policy);
    let message = changed.entry.message.clone().unwrap();
    assert!(
        message.starts_with("policy ") && message.contains("policy.approvalsRequired 1 → 2"),
        "{message}"
    );

    // Disabling is named as such; the trail verifies from the workspace's own start.
    let mut off = as_written(&changed.record);
    off["airlockEnabled"] = json!(false);
    let disabled = apply(Some(&changed.record), &off, &defaults, at(9)).unwrap();
    assert_eq!(disabled.entry.action, "airlock disabled");
    let (head, tail) = trail_of(&disabled.record);
    assert_eq!(head.length, 3);
    let trail = vec![registered.entry, changed.entry, disabled.entry];
    assert_eq!(tail, trail);
    assert_eq!(
        verify_history(&trail_id("ws-three"), &trail, &head),
        Ok(()),
        "chained from workspace:ws-three"
    );
    assert!(
        verify_history("ws-three", &trail, &head).is_err(),
        "a request's trail of the same id is another chain"
    );
}

#[test]
fn details_are_part_of_the_chain() {
    let registered = apply(None, &record(), &none(), at(0)).unwrap();
    let mut forged = registered.entry.clone();
    forged.details = Some(json!({"policy": {"approvalsRequired": 0}}));
    assert_ne!(
        forged.chain_hash(&trail_id("ws-three")),
        registered.entry.hash,
        "editing the evidence breaks the chain"
    );
}

#[test]
fn nothing_changed_is_no_entry_and_an_id_never_changes() {
    let registered = apply(None, &record(), &none(), at(0)).unwrap();
    assert_eq!(
        apply(Some(&registered.record), &record(), &none(), at(1)).unwrap_err(),
        RegistryError::Unchanged
    );
    // Setting a field to the default it already had changes the record, not the policy.
    let explicit = with_policy(
        &registered.record,
        &json!({"approvalsRequired": 1, "maxFiles": 100}),
    );
    let change = apply(Some(&registered.record), &explicit, &none(), at(1)).unwrap();
    assert_eq!(change.entry.action, "workspace changed");
    assert!(
        change
            .entry
            .message
            .unwrap()
            .contains("nothing in force did")
    );
    let mut renamed = record();
    renamed["id"] = json!("ws-four");
    let err = apply(Some(&registered.record), &renamed, &none(), at(2)).unwrap_err();
    assert!(err.to_string().contains("cannot change"), "{err}");
    let mut moved = record();
    moved["shortId"] = json!("four");
    let err = apply(Some(&registered.record), &moved, &none(), at(2)).unwrap_err();
    assert!(err.to_string().contains("storage accounts"), "{err}");
}

#[test]
fn the_record_keeps_only_its_latest_entries() {
    let mut stored = apply(None, &record(), &none(), at(0)).unwrap().record;
    for n in 1..=(KEPT_ENTRIES as u32 + 3) {
        let next = with_policy(&stored, &json!({"approvalsRequired": n + 1}));
        stored = apply(Some(&stored), &next, &none(), at(n)).unwrap().record;
    }
    let (head, tail) = trail_of(&stored);
    assert_eq!(head.length, KEPT_ENTRIES as u64 + 4);
    assert_eq!(tail.len(), KEPT_ENTRIES);
    assert_eq!(tail.last().unwrap().seq, head.length - 1);
}

fn parse(text: &str) -> Map<String, Value> {
    crate::workspace::parse_policy_defaults(text).unwrap()
}
