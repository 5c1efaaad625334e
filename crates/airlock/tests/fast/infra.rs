//! What Terraform writes, the handler reads: the typed `policy_defaults` of
//! `infra/azure/modules/policy-defaults` become `AIRLOCK_POLICY_DEFAULTS`, which the handler
//! parses at start-up and refuses if anything is off (a string where a number belongs was the
//! bug: `map(any)` turned `2` into `"2"`).

use crate::common::REPO;
use airlock::domain::WorkspacePolicy;
use airlock::domain::workspace::parse_policy_defaults;
use std::path::Path;
use std::process::Command;

/// A scratch directory for Terraform's state, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path =
            std::env::temp_dir().join(format!("airlock-terraform-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MODULE: &str = "infra/azure/modules/policy-defaults";
const CASE: &str = "infra/azure/tests/policy-defaults";

/// Runs the module with Terraform (offline: it has no provider) on the test input and
/// returns its `json` output, or `None` when Terraform is not installed.
fn terraform_output(input: &Path) -> Option<String> {
    let version = Command::new("terraform").arg("version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        eprintln!("terraform is not installed: checking the committed expected.json only");
        return None;
    }
    let dir = TempDir::new();
    std::fs::copy(
        Path::new(REPO).join(MODULE).join("main.tf"),
        dir.path().join("main.tf"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(dir.path())
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init", "-input=false", "-no-color"]);
    let var_file = format!("-var-file={}", input.display());
    run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        &var_file,
    ]);
    Some(run(&["output", "-raw", "json"]))
}

#[test]
fn the_handler_accepts_what_terraform_writes() {
    let case = Path::new(REPO).join(CASE);
    let mut expected = std::fs::read_to_string(case.join("expected.json")).unwrap();
    if let Some(written) = terraform_output(&case.join("input.tfvars.json")) {
        if std::env::var_os("AIRLOCK_WRITE_DOCS").is_some() {
            std::fs::write(case.join("expected.json"), &written).unwrap();
            expected = written;
        } else {
            assert_eq!(
                written.trim(),
                expected.trim(),
                "{CASE}/expected.json is stale: run AIRLOCK_WRITE_DOCS=1 cargo test -p airlock --test fast infra"
            );
        }
    }
    let defaults = parse_policy_defaults(&expected).expect("the handler accepts it");
    let policy: WorkspacePolicy =
        serde_json::from_value(serde_json::Value::Object(defaults)).unwrap();
    assert_eq!(policy.approvals_required, 2);
    assert_eq!(policy.max_file_bytes, 53_687_091_200);
    assert!(!policy.scan_required);
    assert_eq!(policy.allowed_ip_ranges, ["10.1.0.0/16"]);
    assert_eq!(policy.upload_link_expiry_minutes, Some(480));
    assert_eq!(
        policy.unscanned_files,
        airlock::domain::policy::UnscannedFiles::Review
    );
    assert_eq!(
        policy.max_total_bytes,
        WorkspacePolicy::default().max_total_bytes,
        "a field left out keeps the handler's default"
    );
    // Gates: typed parameters, unset ones left to the handler's defaults.
    use airlock::domain::gates::{GateKind, GateMode};
    assert_eq!(policy.gates.len(), 2);
    assert_eq!(policy.gates[0].mode, GateMode::Block);
    let GateKind::Disclosure(d) = &policy.gates[1].kind else {
        panic!("{:?}", policy.gates[1])
    };
    assert_eq!(
        (
            policy.gates[1].mode,
            d.threshold,
            d.rounding_base,
            d.zeros_disclose
        ),
        (GateMode::Warn, 10, Some(5), false)
    );
    assert!(d.count_columns.contains(&"n".to_string()));
    // What the old `map(any)` wrote is refused, naming the field.
    let stringly = parse_policy_defaults(r#"{"approvalsRequired":"2","scanRequired":"false"}"#);
    assert!(stringly.is_err(), "{stringly:?}");
}

/// Every policy field the handler knows is in the Terraform type, and nothing else; and every
/// gate parameter of every gate kind.
#[test]
fn the_terraform_type_lists_every_policy_field() {
    use airlock::domain::gates::{
        ContentRules, Disclosure, External, FilePolicy, Gate, GateKind, GateMode,
    };
    let tf = std::fs::read_to_string(Path::new(REPO).join(MODULE).join("main.tf")).unwrap();
    // Top-level fields are indented 4 spaces, a gate's 6.
    let fields_at = |indent: usize| -> Vec<String> {
        let mut fields: Vec<String> = tf
            .lines()
            .filter(|l| l.contains("= optional(") || (indent == 6 && l.contains("= string")))
            .filter(|l| l.len() - l.trim_start().len() == indent)
            .map(|l| l.split('=').next().unwrap().trim().to_string())
            .collect();
        fields.sort();
        fields.dedup();
        fields
    };
    let keys = |value: serde_json::Value| -> Vec<String> {
        let serde_json::Value::Object(fields) = value else {
            panic!("an object")
        };
        fields.keys().cloned().collect()
    };
    let mut in_handler = keys(serde_json::to_value(WorkspacePolicy::default()).unwrap());
    in_handler.sort();
    assert_eq!(fields_at(4), in_handler);
    let mut gate_fields = Vec::new();
    for kind in [
        GateKind::FilePolicy(FilePolicy::default()),
        GateKind::Disclosure(Disclosure::default()),
        GateKind::External(External::default()),
        GateKind::Acro {},
        GateKind::Identifiers(ContentRules::default()),
        GateKind::Secrets(ContentRules::default()),
    ] {
        let gate = Gate {
            name: "g".into(),
            mode: GateMode::Block,
            require_justification: false,
            uncertain: Some(airlock::domain::gates::UncertainMode::Block),
            kind,
        };
        gate_fields.extend(keys(serde_json::to_value(gate).unwrap()));
    }
    gate_fields.sort();
    gate_fields.dedup();
    assert_eq!(fields_at(6), gate_fields);
}

/// Terraform refuses at plan the ids the handler's account names could not hold.
#[test]
fn terraform_validates_the_id_limits_account_names_need() {
    use airlock::domain::stages::{MAX_TRE_ID, MAX_WORKSPACE_SHORT_ID};
    let read = |p: &str| std::fs::read_to_string(Path::new(REPO).join(p)).unwrap();
    let core = read("infra/azure/modules/airlock-core/variables.tf");
    let workspace = read("infra/azure/modules/airlock-workspace/main.tf");
    assert!(
        core.contains(&format!("^[a-z0-9]{{1,{MAX_TRE_ID}}}$")),
        "tre_id validation"
    );
    assert!(
        workspace.contains(&format!("^[a-z0-9]{{1,{MAX_WORKSPACE_SHORT_ID}}}$")),
        "workspace_short_id validation"
    );
}

/// The composite indexes Terraform declares on the `requests` container are the ones the
/// airlock creates on the emulator (and its lists need), and so are the unindexed paths.
#[test]
fn terraform_declares_the_list_indexes() {
    use airlock::adapters::azure::cosmos::{LIST_INDEXES, UNINDEXED_PATHS};
    let tf =
        std::fs::read_to_string(Path::new(REPO).join("infra/azure/modules/airlock-core/main.tf"))
            .unwrap();
    for paths in LIST_INDEXES {
        let line = format!(
            "[{}],",
            paths
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(
            tf.contains(&line),
            "main.tf lacks the composite index {line}"
        );
    }
    let declared = tf.matches("composite_index").count();
    assert!(declared >= 1);
    for path in UNINDEXED_PATHS {
        assert!(
            tf.contains(&format!("path = {path:?}")),
            "main.tf indexes {path}"
        );
    }
}

/// The `resource "TYPE" "NAME" { ... }` blocks of every `.tf` file under `infra/azure`, as
/// (name, body) pairs; bodies are the raw text between the braces.
fn terraform_blocks(resource_type: &str) -> Vec<(String, String)> {
    fn tf_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() && !name.starts_with('.') && name != "tests" {
                tf_files(&path, out);
            } else if name.ends_with(".tf") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    tf_files(&Path::new(REPO).join("infra/azure"), &mut files);
    let opener = format!("resource \"{resource_type}\" \"");
    let mut blocks = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&opener) {
            let after = &rest[start + opener.len()..];
            let name = after[..after.find('"').unwrap()].to_string();
            let open = after.find('{').unwrap();
            let mut depth = 0;
            let mut end = open;
            for (i, ch) in after[open..].char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            blocks.push((name, after[open + 1..end].to_string()));
            rest = &after[end..];
        }
    }
    blocks
}

/// `key = value` of a block body (the first line that sets it), value trimmed.
fn attribute<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The quoted strings in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// What Terraform grants the Function App's identity, as (scope kind, role) pairs, must be
/// what `infra/rbac.json` says, no more and no less; the custom role's permissions must be
/// the manifest's. (The local stack enforces the manifest; a stack test shows each storage
/// role is needed.)
#[test]
fn terraform_grants_the_function_exactly_the_roles_in_the_manifest() {
    use std::collections::BTreeSet;
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REPO).join("infra/rbac.json")).unwrap(),
    )
    .unwrap();
    let custom_roles: Vec<(String, String)> = terraform_blocks("azurerm_role_definition");
    let custom_role_name = |reference: &str| -> String {
        // azurerm_role_definition.NAME.role_definition_resource_id, or the workspace
        // module's variable that carries it.
        let name = if reference.starts_with("var.blob_tag_reader") {
            "blob_tag_reader"
        } else {
            reference.split('.').nth(1).unwrap()
        };
        let (_, body) = custom_roles
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no azurerm_role_definition {name}"));
        let full = quoted(attribute(body, "name").unwrap()).remove(0);
        full.split(" (").next().unwrap().to_string()
    };
    let mut granted = BTreeSet::new();
    for (name, body) in terraform_blocks("azurerm_role_assignment") {
        let principal = attribute(&body, "principal_id").unwrap();
        if principal != "local.function_principal" && principal != "var.function_principal_id" {
            continue;
        }
        let scope_expr = attribute(&body, "scope").unwrap();
        let for_each = attribute(&body, "for_each").unwrap_or("");
        let scope = if scope_expr.contains("module.stage[\"stalimip\"]")
            || scope_expr.contains("module.stage[\"stalexip\"]")
        {
            "in-progress"
        } else if scope_expr == "each.value.id" && for_each == "module.stage" {
            "stage"
        } else if scope_expr.starts_with("module.host_storage") {
            "host"
        } else if scope_expr.starts_with("azurerm_eventgrid_topic.airlock") {
            "topic"
        } else if scope_expr == "azurerm_application_insights.airlock.id" {
            "app-insights"
        } else {
            panic!("{name}: a scope the manifest has no kind for: {scope_expr}")
        };
        let roles: Vec<String> = match (
            attribute(&body, "role_definition_name"),
            attribute(&body, "role_definition_id"),
        ) {
            (Some("each.key"), _) => quoted(for_each),
            (Some(literal), _) => quoted(literal),
            (None, Some(reference)) => vec![custom_role_name(reference)],
            (None, None) => panic!("{name}: no role"),
        };
        for role in roles {
            granted.insert((scope.to_string(), role));
        }
    }
    // Cosmos DB's data-plane role assignments, by the containers they are scoped to.
    let cosmos_definitions = terraform_blocks("azurerm_cosmosdb_sql_role_definition");
    let core = std::fs::read_to_string(
        Path::new(REPO).join("infra/azure/modules/airlock-core/identity.tf"),
    )
    .unwrap();
    for (name, body) in terraform_blocks("azurerm_cosmosdb_sql_role_assignment") {
        if attribute(&body, "principal_id") != Some("local.function_principal") {
            continue;
        }
        // The containers: the keys of the for_each map, written here or in a local.
        let map_text = match attribute(&body, "for_each") {
            Some("{") => body[body.find("for_each").unwrap()..].to_string(),
            Some(local) if local.starts_with("local.") => {
                let key = local.trim_start_matches("local.");
                core[core.find(&format!("{key} = {{")).unwrap()..].to_string()
            }
            other => panic!("{name}: for_each {other:?}"),
        };
        let map_body = &map_text[map_text.find('{').unwrap() + 1..map_text.find('}').unwrap()];
        let containers: BTreeSet<&str> = map_body
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty())
            .collect();
        let scope = if containers == BTreeSet::from(["history", "releases"]) {
            "cosmos-append-only"
        } else if containers == BTreeSet::from(["requests", "workspaces"]) {
            "cosmos-records"
        } else {
            panic!("{name}: containers the manifest has no scope for: {containers:?}")
        };
        let role_id = attribute(&body, "role_definition_id").unwrap();
        let role = if role_id.contains("00000000-0000-0000-0000-000000000002") {
            "Cosmos DB Built-in Data Contributor".to_string()
        } else {
            let definition = role_id.split('.').nth(1).unwrap();
            let (_, def) = cosmos_definitions
                .iter()
                .find(|(n, _)| n == definition)
                .unwrap_or_else(|| panic!("no azurerm_cosmosdb_sql_role_definition {definition}"));
            let full = quoted(attribute(def, "name").unwrap()).remove(0);
            // Its permissions must be the manifest's.
            let start = def.find("data_actions").unwrap();
            let actions = quoted(&def[start..def[start..].find(']').unwrap() + start]);
            let in_manifest: Vec<String> =
                serde_json::from_value(manifest["roles"][&full]["dataActions"].clone())
                    .unwrap_or_default();
            assert_eq!(actions, in_manifest, "{full}");
            full
        };
        granted.insert((scope.to_string(), role));
    }
    let declared: BTreeSet<(String, String)> = manifest["principals"]["function"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["scope"].as_str().unwrap().to_string(),
                a["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        granted, declared,
        "Terraform's role assignments for the Function App and infra/rbac.json differ"
    );
    // Every role named has its definition in the manifest; the custom one matches Terraform.
    for (_, role) in &declared {
        assert!(manifest["roles"][role].is_object(), "{role} is not defined");
    }
    let (_, body) = custom_roles
        .iter()
        .find(|(n, _)| n == "blob_tag_reader")
        .unwrap();
    let data_actions = quoted(attribute(body, "data_actions").unwrap());
    let in_manifest: Vec<String> = serde_json::from_value(
        manifest["roles"]["Airlock blob index tag reader"]["dataActions"].clone(),
    )
    .unwrap();
    assert_eq!(data_actions, in_manifest);
    assert_eq!(
        quoted(attribute(body, "actions").unwrap()),
        Vec::<String>::new(),
        "the tag reader has no control-plane actions"
    );
}

/// The local queue trigger polls as the host does with our host.json: its longest wait is
/// host.json's `maxPollingInterval`, so on the stack a work item waits no less than on Azure.
#[test]
fn the_local_queue_trigger_polls_as_host_json_says() {
    let host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(REPO).join("host.json")).unwrap())
            .unwrap();
    let max = host["extensions"]["queues"]["maxPollingInterval"]
        .as_str()
        .expect("host.json sets maxPollingInterval");
    let parts: Vec<f64> = max.split(':').map(|p| p.parse().unwrap()).collect();
    let seconds = parts[0] * 3600.0 + parts[1] * 60.0 + parts[2];
    assert_eq!(
        std::time::Duration::from_secs_f64(seconds),
        airlock_local::work_queue::MAX_POLLING_INTERVAL,
        "host.json maxPollingInterval {max}"
    );
}

/// The example `terraform.tfvars` sets only variables the configuration declares, and every
/// variable without a default: copied and filled in, it plans.
#[test]
fn the_example_tfvars_names_the_declared_variables() {
    let main = std::fs::read_to_string(format!("{REPO}/infra/azure/main.tf")).unwrap();
    let example =
        std::fs::read_to_string(format!("{REPO}/infra/azure/terraform.tfvars.example")).unwrap();
    let declared: Vec<(String, bool)> = main
        .split("variable \"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap().to_string();
            let block = rest.split("\n}").next().unwrap();
            (name, block.contains("default"))
        })
        .collect();
    let set: Vec<String> = example
        .lines()
        .filter(|l| !l.starts_with([' ', '#', '}']) && l.contains('='))
        .map(|l| l.split('=').next().unwrap().trim().to_string())
        .collect();
    for name in &set {
        assert!(
            declared.iter().any(|(d, _)| d == name),
            "the example sets {name}, which main.tf does not declare"
        );
    }
    for (name, has_default) in &declared {
        assert!(
            *has_default || set.contains(name),
            "the example leaves out {name}, which has no default"
        );
    }
}
