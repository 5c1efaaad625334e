//! `airlock admin`: the workspace registry for TRE admins. Every change reads the record
//! first and is sent conditional on that version (`If-Match`), so two admins never overwrite
//! each other; the airlock keeps each change, with its diff, in the workspace's audit trail.

use crate::cli::{AdminCommand, PolicyCommand, StatsArgs, WorkspaceCommand};
use crate::client::Api;
use crate::commands::Outcome;
use crate::error::{CliError, CliResult};
use reqwest::Method;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

pub async fn run(api: &Api, command: AdminCommand) -> CliResult<Outcome> {
    match command {
        AdminCommand::Workspace(WorkspaceCommand::List) => {
            let all = api.registry(Method::GET, "", None, None).await?;
            let mut text = String::new();
            for ws in all["workspaces"].as_array().into_iter().flatten() {
                let r = &ws["record"];
                let _ = writeln!(
                    text,
                    "{:<24} {:<10} {:<8} policy {}  {}",
                    str_of(&r["id"]),
                    str_of(&r["shortId"]),
                    if r["airlockEnabled"] == Value::Bool(false) {
                        "disabled"
                    } else {
                        "enabled"
                    },
                    str_of(&ws["policyVersion"]),
                    str_of(&r["displayName"]),
                );
            }
            Ok(Outcome::Message(text.trim_end().to_string(), all))
        }
        AdminCommand::Workspace(WorkspaceCommand::Show { id }) => {
            let ws = api.registry(Method::GET, &tail(&id), None, None).await?;
            Ok(Outcome::Message(pretty(&ws), ws))
        }
        AdminCommand::Workspace(WorkspaceCommand::Register { file }) => {
            let record = read_json(&file)?;
            let ws = api.registry(Method::POST, "", None, Some(&record)).await?;
            Ok(Outcome::Message(
                format!(
                    "registered workspace {} (policy {})",
                    str_of(&ws["record"]["id"]),
                    str_of(&ws["policyVersion"])
                ),
                ws,
            ))
        }
        AdminCommand::Workspace(WorkspaceCommand::Disable { id }) => enable(api, &id, false).await,
        AdminCommand::Workspace(WorkspaceCommand::Enable { id }) => enable(api, &id, true).await,
        AdminCommand::Policy(PolicyCommand::Get { id, in_force }) => {
            let ws = api.registry(Method::GET, &tail(&id), None, None).await?;
            let policy = if in_force {
                ws["policyInForce"].clone()
            } else {
                ws["record"]
                    .get("policy")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Default::default()))
            };
            Ok(Outcome::Message(pretty(&policy), policy))
        }
        AdminCommand::Policy(PolicyCommand::Set { id, file }) => {
            let policy = read_json(&file)?;
            let ws = api.registry(Method::GET, &tail(&id), None, None).await?;
            let before = str_of(&ws["policyVersion"]).to_string();
            let changed = api
                .registry(
                    Method::PUT,
                    &format!("{}/policy", tail(&id)),
                    Some(str_of(&ws["etag"])),
                    Some(&policy),
                )
                .await?;
            let after = str_of(&changed["policyVersion"]);
            let text = if changed["changes"] == ws["changes"] {
                format!("nothing changed: policy {after}")
            } else if after == before {
                format!("the record changed; the policy in force is still {after}")
            } else {
                format!("policy of {id}: {before} → {after}")
            };
            Ok(Outcome::Message(text, changed))
        }
        AdminCommand::Policy(PolicyCommand::History { id }) => {
            let trail = trail(api, &id).await?;
            let mut text = String::new();
            for e in trail["history"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    text,
                    "#{} {} {} {}: policy {}",
                    e["seq"],
                    str_of(&e["at"]),
                    str_of(&e["by"]),
                    str_of(&e["action"]),
                    str_of(&e["details"]["policyVersion"]),
                );
                for c in e["details"]["changes"].as_array().into_iter().flatten() {
                    let _ = writeln!(text, "    {}", change_line(c));
                }
            }
            text.push_str(if trail["verified"] == Value::Bool(true) {
                "the trail's hash chain verifies"
            } else {
                "THE TRAIL'S HASH CHAIN DOES NOT VERIFY"
            });
            if trail["verified"] != Value::Bool(true) {
                return Err(CliError::Failed(format!(
                    "{text}: it was changed outside the airlock"
                )));
            }
            Ok(Outcome::Message(text, trail))
        }
        AdminCommand::Policy(PolicyCommand::Diff { id, from, to }) => {
            let trail = trail(api, &id).await?;
            let entries: Vec<&Value> = trail["history"].as_array().into_iter().flatten().collect();
            let version = |seq: Option<u64>, default: usize| -> CliResult<&Value> {
                let index = seq.map_or(default, |s| s as usize);
                entries.get(index).copied().ok_or_else(|| {
                    CliError::Usage(format!(
                        "workspace {id} has changes #0 to #{}",
                        entries.len().saturating_sub(1)
                    ))
                })
            };
            let last = entries.len().saturating_sub(1);
            if from.is_none() && to.is_none() {
                // The latest change, against the policy in force before it (defaults
                // included), as the airlock recorded it.
                let latest = version(None, last)?;
                let changes = latest["details"]["changes"].clone();
                let mut text = format!(
                    "#{} {} {}: policy {} → {}\n",
                    latest["seq"],
                    str_of(&latest["at"]),
                    str_of(&latest["by"]),
                    str_of(&latest["details"]["policyVersionBefore"]),
                    str_of(&latest["details"]["policyVersion"])
                );
                for c in changes.as_array().into_iter().flatten() {
                    let _ = writeln!(text, "    {}", change_line(c));
                }
                return Ok(Outcome::Message(
                    text.trim_end().to_string(),
                    serde_json::json!({"to": latest["seq"], "changes": changes}),
                ));
            }
            let to = version(to, last)?;
            let from = version(from, last.saturating_sub(1))?;
            let (a, b) = (&from["details"]["policy"], &to["details"]["policy"]);
            let changes = diff_objects(a, b);
            let mut text = format!(
                "policy as set at #{} ({}) → #{} ({})\n",
                from["seq"],
                str_of(&from["details"]["policyVersion"]),
                to["seq"],
                str_of(&to["details"]["policyVersion"])
            );
            if changes.is_empty() {
                text.push_str("    no difference");
            }
            for c in &changes {
                let _ = writeln!(text, "    {}", change_line(c));
            }
            Ok(Outcome::Message(
                text.trim_end().to_string(),
                serde_json::json!({"from": from["seq"], "to": to["seq"], "changes": changes}),
            ))
        }
    }
}

async fn trail(api: &Api, id: &str) -> CliResult<Value> {
    api.registry(Method::GET, &format!("{}/history", tail(id)), None, None)
        .await
}

async fn enable(api: &Api, id: &str, on: bool) -> CliResult<Outcome> {
    let ws = api.registry(Method::GET, &tail(id), None, None).await?;
    let mut record = ws["record"].clone();
    record["airlockEnabled"] = Value::Bool(on);
    let changed = api
        .registry(
            Method::PUT,
            &tail(id),
            Some(str_of(&ws["etag"])),
            Some(&record),
        )
        .await?;
    let state = if on { "enabled" } else { "disabled" };
    Ok(Outcome::Message(
        format!("the airlock of workspace {id} is {state}"),
        changed,
    ))
}

/// The path of one workspace; ids are checked here so nothing else reaches the URL.
fn tail(id: &str) -> String {
    format!("/{}", percent_encode(id))
}

fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn read_json(file: &Path) -> CliResult<Value> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("reading {}: {e}", file.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", file.display())))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `field: before → after`, values as JSON.
fn change_line(c: &Value) -> String {
    let side = |v: Option<&Value>| v.map_or("(not set)".to_string(), Value::to_string);
    format!(
        "{}: {} → {}",
        str_of(&c["field"]),
        side(c.get("before")),
        side(c.get("after"))
    )
}

/// The fields of two policies as set that differ.
fn diff_objects(a: &Value, b: &Value) -> Vec<Value> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let mut c = serde_json::json!({"field": format!("policy.{k}")});
            if let Some(v) = a.get(k) {
                c["before"] = v.clone();
            }
            if let Some(v) = b.get(k) {
                c["after"] = v.clone();
            }
            c
        })
        .collect()
}

/// `airlock stats`: a workspace's statistics (or every workspace's with `--all`), as text.
pub async fn stats(api: &Api, args: StatsArgs) -> CliResult<Outcome> {
    let mut range = Vec::new();
    if let Some(from) = args.from {
        range.push(("from", from));
    }
    if let Some(to) = args.to {
        range.push(("to", to));
    }
    let workspace = if args.all {
        None
    } else {
        Some(api.settings.workspace()?)
    };
    let s = api.stats(workspace, &range).await?;
    let count = |v: &Value| -> String {
        let parts: Vec<String> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    };
    let took = |d: &Value| -> String {
        if d["count"] == 0 {
            return "none yet".into();
        }
        format!(
            "{} (median {}, 90% within {}, longest {})",
            d["count"],
            span(d["p50Seconds"].as_i64().unwrap_or(0)),
            span(d["p90Seconds"].as_i64().unwrap_or(0)),
            span(d["maxSeconds"].as_i64().unwrap_or(0))
        )
    };
    let workspaces: Vec<&str> = s["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut text = format!(
        "{}: {} request(s) created from {} to {}\n",
        workspaces.join(", "),
        s["requests"],
        str_of(&s["from"]),
        s["to"].as_str().unwrap_or("now")
    );
    let _ = writeln!(text, "  by type:           {}", count(&s["byType"]));
    let _ = writeln!(text, "  by status now:     {}", count(&s["byStatus"]));
    let _ = writeln!(
        text,
        "  reviews decided:   {}",
        took(&s["reviewTurnaround"])
    );
    for (status, d) in s["timeInStatus"].as_object().into_iter().flatten() {
        let _ = writeln!(text, "  time {status:<14} {}", took(d));
    }
    let _ = writeln!(
        text,
        "  overrides:         {} ({})",
        s["overrides"],
        count(&s["overridesByRule"])
    );
    let _ = writeln!(text, "  findings by rule:  {}", count(&s["findingsByRule"]));
    let _ = writeln!(
        text,
        "  released:          {} file(s), {} bytes",
        s["releasedFiles"], s["releasedBytes"]
    );
    let _ = writeln!(
        text,
        "  review deadlines:  {} reminder(s), {} escalation(s)",
        s["reviewReminders"], s["reviewEscalations"]
    );
    if s["truncated"] == Value::Bool(true) {
        text.push_str("  (more requests than one call reads: narrow the range)\n");
    }
    Ok(Outcome::Message(text.trim_end().to_string(), s))
}

/// Seconds as a person reads them: `45s`, `12m`, `3h 20m`, `2d 4h`.
fn span(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}
