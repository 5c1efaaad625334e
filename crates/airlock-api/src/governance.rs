//! The governance record of a finished request: one self-contained document that says what
//! crossed (or did not), why, under which rules and who decided, and that anyone can check
//! offline. As JSON (what `airlock verify` checks), as a print-ready HTML page, and as a Five
//! Safes RO-Crate (`ro-crate-metadata.json`, RO-Crate 1.1, one `AssessAction` per gate and
//! per review), the form DARE UK TREs exchange such records in.
//!
//! Pure: the server builds it from the request as the caller may see it, its gate report and
//! its whole trail; the command line verifies it with the same chain rule.

use crate::view::RequestView;
use airlock_domain::request::{GateReport, HistoryEntry, HistoryHead, verify_history};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The record as JSON (`GET .../record`, `airlock record ID`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GovernanceRecord {
    /// `1`: the shape of this document.
    pub record_version: u32,
    pub generated_at: DateTime<Utc>,
    /// Who asked for it: the record shows what they may see (a researcher's copy has no
    /// reviewers-only comments).
    pub generated_for: String,
    pub workspace: RecordWorkspace,
    /// The request: its files (names, sizes, sealed sha256, findings, decisions), the reviews
    /// with their per-file votes and overrides, the comments the caller may see.
    pub request: RequestView,
    /// Each gate's result, with the evidence per file and the policy version it ran under.
    pub gates: GateReport,
    /// The versions of the workspace policy the gates and reviews ran under.
    pub policy_versions: Vec<String>,
    /// The whole audit trail, hash-chained.
    pub history: Vec<HistoryEntry>,
    /// How to check the trail offline.
    pub verification: Verification,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordWorkspace {
    pub id: String,
    pub display_name: String,
}

/// What a reader needs to check the trail without the airlock.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The chain's start: the request's id.
    pub genesis: String,
    /// Where the request's record says the chain ends.
    pub head: HistoryHead,
    /// The rule, in words.
    pub algorithm: String,
    /// Whether the trail verified when the record was made.
    pub verified: bool,
}

pub const CHAIN_RULE: &str = "entry i has seq i; its hash is the hex sha256 of the compact JSON array [previous hash (the request id for entry 0), at, by, action, from, to, message] (with details appended when present); the last hash and the length equal head";

/// Why a record does not check out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("the audit trail does not verify from entry {0}: it was changed after it was written")]
    Trail(usize),
    /// A part of the record outside the trail (a file's hash, the status, a review) that the
    /// trail does not bear out: the record was edited.
    #[error("the record's {0} is not what its audit trail says: it was changed after it was made")]
    Unsupported(String),
    #[error("{0:?} is not in the record")]
    UnknownFile(String),
    #[error("{name:?}: sha256 {actual} is not the {recorded} the record holds")]
    FileChanged {
        name: String,
        recorded: String,
        actual: String,
    },
}

impl GovernanceRecord {
    /// Builds the record and checks its trail.
    pub fn new(
        request: RequestView,
        workspace: RecordWorkspace,
        gates: GateReport,
        history: Vec<HistoryEntry>,
        generated_for: &str,
        now: DateTime<Utc>,
    ) -> GovernanceRecord {
        let head = request.history_head.clone();
        let verified = verify_history(&request.id, &history, &head).is_ok();
        let mut versions: Vec<String> = gates
            .gates
            .iter()
            .flat_map(|g| g.files.iter().filter_map(|f| f.policy_version.clone()))
            .chain(
                request
                    .reviews
                    .iter()
                    .filter_map(|r| r.policy_version.clone()),
            )
            .collect();
        versions.sort();
        versions.dedup();
        GovernanceRecord {
            record_version: 1,
            generated_at: now,
            generated_for: generated_for.to_string(),
            workspace,
            verification: Verification {
                genesis: request.id.clone(),
                head,
                algorithm: CHAIN_RULE.into(),
                verified,
            },
            request,
            gates,
            policy_versions: versions,
            history,
        }
    }

    /// Checks the record from itself alone: the trail's hash chain, from the request's id to
    /// the head; then that what the record says beside the trail is what the trail says (each
    /// file's sealed sha256, the status, each review's reviewer), so an edit anywhere shows.
    pub fn verify(&self) -> Result<(), RecordProblem> {
        if self.verification.genesis != self.request.id {
            return Err(RecordProblem::Unsupported("request id".into()));
        }
        verify_history(
            &self.verification.genesis,
            &self.history,
            &self.verification.head,
        )
        .map_err(RecordProblem::Trail)?;
        for file in &self.request.files {
            let Some(sha) = &file.sha256 else { continue };
            let sealed = self.history.iter().any(|h| {
                h.action == "sealed"
                    && h.message.as_deref().is_some_and(|m| {
                        m.starts_with(&format!("{} (", file.name))
                            && m.contains(&format!("sha256 {sha}"))
                    })
            });
            if !sealed {
                return Err(RecordProblem::Unsupported(format!(
                    "sha256 of {:?}",
                    file.name
                )));
            }
        }
        let last_status = self.history.iter().rev().find_map(|h| h.to);
        if last_status != Some(self.request.status) {
            return Err(RecordProblem::Unsupported("status".into()));
        }
        for review in &self.request.reviews {
            let in_trail = self
                .history
                .iter()
                .any(|h| h.by == review.reviewer.id && h.action.starts_with("review"));
            if !in_trail {
                return Err(RecordProblem::Unsupported(format!(
                    "review by {}",
                    review.reviewer.id
                )));
            }
        }
        Ok(())
    }

    /// Checks a file's bytes against the sealed sha256 the record holds.
    pub fn check_file(&self, name: &str, sha256_hex: &str) -> Result<(), RecordProblem> {
        let file = self
            .request
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| RecordProblem::UnknownFile(name.to_string()))?;
        match &file.sha256 {
            Some(recorded) if recorded.eq_ignore_ascii_case(sha256_hex) => Ok(()),
            recorded => Err(RecordProblem::FileChanged {
                name: name.to_string(),
                recorded: recorded.clone().unwrap_or_else(|| "(none)".into()),
                actual: sha256_hex.to_string(),
            }),
        }
    }

    /// The Five Safes RO-Crate's metadata file (`ro-crate-metadata.json`): the request as the
    /// root dataset, its files, and one `AssessAction` per gate and per review.
    ///
    /// The released files are data entities named by their path, so that the metadata file
    /// saved beside the downloaded files is a complete RO-Crate 1.1 (every local data entity
    /// present). A file that was not released (withheld by the review, a supporting file, or
    /// any file of a request that was not approved) is described under a local identifier
    /// (`#unreleased/NAME`): it is part of the record, but no holder of the release has it.
    pub fn ro_crate(&self) -> Value {
        let r = &self.request;
        let root = "./".to_string();
        let approved = r.status == airlock_domain::lifecycle::Status::Approved;
        let crate_id = |f: &airlock_domain::request::FileView| {
            if approved && !f.withheld() && !f.supporting {
                file_id(&f.name)
            } else {
                format!("#unreleased/{}", file_id(&f.name))
            }
        };
        let mut graph = vec![
            json!({
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
                "about": {"@id": root},
            }),
            json!({
                "@id": root,
                "@type": "Dataset",
                "name": format!("Airlock {} request {}: {}", r.request_type.as_str(), r.id, r.title),
                "description": r.business_justification,
                "datePublished": self.generated_at,
                "dateCreated": r.created_at,
                "dateModified": r.updated_at,
                "identifier": r.id,
                "creativeWorkStatus": r.status.to_string(),
                "license": {"@id": "#terms"},
                "author": {"@id": format!("#person-{}", r.created_by.id)},
                "sourceOrganization": {"@id": format!("#workspace-{}", self.workspace.id)},
                "hasPart": one_or_many(r.files.iter().map(|f| json!({"@id": crate_id(f)})).collect()),
                "mentions": one_or_many(self.actions_ids()),
            }),
            json!({
                "@id": "#terms",
                "@type": "CreativeWork",
                "name": format!("Data access agreement of workspace {}", self.workspace.id),
                "description": "The released files may be used only under the data access agreement of the workspace they crossed the airlock for; this record grants no other right to them.",
            }),
            json!({
                "@id": format!("#workspace-{}", self.workspace.id),
                "@type": "Project",
                "name": self.workspace.display_name,
                "identifier": self.workspace.id,
            }),
            json!({
                "@id": format!("#person-{}", r.created_by.id),
                "@type": "Person",
                "name": r.created_by.name,
            }),
        ];
        for f in &r.files {
            let id = crate_id(f);
            let status = if id.starts_with('#') {
                "not released"
            } else {
                "released"
            };
            let mut file = json!({
                "@id": id,
                "@type": "File",
                "name": f.name,
                "contentSize": f.size,
                "encodingFormat": "application/octet-stream",
                "creativeWorkStatus": status,
            });
            if let Some(sha) = &f.sha256 {
                file["sha256"] = json!(sha);
            }
            if let Some(d) = &f.description {
                file["description"] = json!(d);
            }
            graph.push(file);
        }
        for (i, gate) in self.gates.gates.iter().enumerate() {
            let findings = gate
                .files
                .iter()
                .flat_map(|f| {
                    f.findings
                        .iter()
                        .map(move |x| format!("{}: {} {}", f.name, x.rule, x.message))
                })
                .collect::<Vec<_>>();
            let mut action = json!({
                "@id": format!("#gate-{i}"),
                "@type": "AssessAction",
                "additionalType": {"@id": "shp:DisclosureCheck"},
                "name": format!("{} ({})", gate.name, gate.kind),
                "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
                "agent": {"@id": "#airlock"},
                "object": one_or_many(r.files.iter().filter(|f| gate.files.iter().any(|g| g.checked && g.name == f.name)).map(|f| json!({"@id": crate_id(f)})).collect()),
                "result": format!("{:?}", gate.state).to_lowercase(),
            });
            if !findings.is_empty() {
                action["description"] = json!(findings.join("; "));
            }
            graph.push(action);
        }
        for (i, review) in r.reviews.iter().enumerate() {
            let mut action = json!({
                "@id": format!("#review-{i}"),
                "@type": "AssessAction",
                "additionalType": {"@id": "shp:DisclosureCheck"},
                "name": format!("review of revision {} by {}", review.revision, review.reviewer.name),
                "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
                "agent": {"@id": format!("#person-{}", review.reviewer.id)},
                "endTime": review.created_when,
                "object": one_or_many(r.files.iter().filter(|f| review.files.iter().any(|d| d.name == f.name)).map(|f| json!({"@id": crate_id(f)})).collect()),
                "result": format!("{:?}", review.decision).to_lowercase(),
            });
            if !review.explanation.is_empty() {
                action["description"] = json!(review.explanation);
            }
            graph.push(action);
            graph.push(json!({
                "@id": format!("#person-{}", review.reviewer.id),
                "@type": "Person",
                "name": review.reviewer.name,
            }));
        }
        graph.push(json!({
            "@id": "#airlock",
            "@type": "SoftwareApplication",
            "name": "Airlock",
            "softwareVersion": env!("CARGO_PKG_VERSION"),
        }));
        // One entity per @id: a person who reviewed twice is listed once.
        let mut seen = std::collections::HashSet::new();
        graph.retain(|e| seen.insert(e["@id"].to_string()));
        json!({
            "@context": [
                "https://w3id.org/ro/crate/1.1/context",
                {"shp": "https://w3id.org/shp#", "sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}
            ],
            "@graph": graph,
        })
    }

    fn actions_ids(&self) -> Vec<Value> {
        (0..self.gates.gates.len())
            .map(|i| json!({"@id": format!("#gate-{i}")}))
            .chain((0..self.request.reviews.len()).map(|i| json!({"@id": format!("#review-{i}")})))
            .collect()
    }

    /// A print-ready page: everything escaped, no script, no outside resource.
    pub fn html(&self) -> String {
        let r = &self.request;
        let mut page = String::new();
        let e = escape;
        page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        page.push_str(&format!(
            "<title>Governance record: {}</title>",
            e(&r.title)
        ));
        page.push_str("<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}code{font-size:12px;word-break:break-all}code.hash{color:#555}h1{font-size:1.5em}@media print{body{margin:0}}</style></head><body>\n");
        page.push_str(&format!(
            "<h1>Governance record: {} request {}</h1>\n",
            e(r.request_type.as_str()),
            e(&r.id)
        ));
        page.push_str("<table>");
        for (k, v) in [
            ("Title", r.title.clone()),
            (
                "Workspace",
                format!("{} ({})", self.workspace.display_name, self.workspace.id),
            ),
            ("Status", r.status.to_string()),
            ("Requested by", r.created_by.name.clone()),
            (
                "Created",
                r.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("Justification", r.business_justification.clone()),
            ("Purpose", r.purpose.clone().unwrap_or_default()),
            ("Policy versions", self.policy_versions.join(", ")),
            (
                "Record made",
                format!(
                    "{} for {}",
                    self.generated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    self.generated_for
                ),
            ),
            (
                "Audit trail",
                if self.verification.verified {
                    format!("{} entries; the hash chain verifies", self.history.len())
                } else {
                    "THE HASH CHAIN DOES NOT VERIFY".into()
                },
            ),
        ] {
            page.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", e(k), e(&v)));
        }
        page.push_str("</table>\n<h2>Files</h2><table><tr><th>Name</th><th>Bytes</th><th>Sealed sha256</th><th>Decision</th><th>Findings</th></tr>");
        for f in &r.files {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                e(&f.name),
                f.size,
                e(f.sha256.as_deref().unwrap_or("")),
                e(&f.decision
                    .map(|d| format!("{d:?}").to_lowercase())
                    .unwrap_or_default()),
                e(&f.findings
                    .iter()
                    .map(|x| format!("{} ({:?}): {}", x.rule, x.mode, x.message))
                    .collect::<Vec<_>>()
                    .join("; ")),
            ));
        }
        page.push_str("</table>\n<h2>Gates</h2><table><tr><th>Gate</th><th>Result</th><th>Files read</th></tr>");
        for g in &self.gates.gates {
            page.push_str(&format!(
                "<tr><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
                e(&g.name),
                e(&g.kind),
                e(&format!("{:?}", g.state).to_lowercase()),
                e(&g.files
                    .iter()
                    .filter(|f| f.checked)
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")),
            ));
        }
        page.push_str("</table>\n<h2>Reviews</h2><table><tr><th>Reviewer</th><th>When</th><th>Decision</th><th>Explanation, votes and overrides</th></tr>");
        for rv in &r.reviews {
            let votes: Vec<String> = rv
                .files
                .iter()
                .map(|d| {
                    let overrides: Vec<String> = d
                        .overrides
                        .iter()
                        .map(|o| format!(" over {} (\u{201c}{}\u{201d})", o.rule, o.rationale))
                        .collect();
                    format!("{}: {:?}{}", d.name, d.decision, overrides.join(""))
                })
                .collect();
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<br>{}</td></tr>",
                e(&rv.reviewer.name),
                e(&rv
                    .created_when
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                e(&format!("{:?}", rv.decision).to_lowercase()),
                e(&rv.explanation),
                e(&votes.join("; ")),
            ));
        }
        page.push_str(
            "</table>\n<h2>Comments</h2><table><tr><th>By</th><th>When</th><th>Text</th></tr>",
        );
        for c in &r.comments {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&c.by.name),
                e(&c.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                e(&c.text)
            ));
        }
        // The hash goes under the step, across the whole width: a column of its own is
        // squeezed to a character per line on a printed page.
        page.push_str("</table>\n<h2>Audit trail</h2><table><tr><th>#</th><th>When (UTC)</th><th>By</th><th>Action</th><th>Message and entry hash</th></tr>");
        for h in &self.history {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}<br><code class=\"hash\">{}</code></td></tr>",
                h.seq,
                e(&h.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                e(&h.by),
                e(&h.action),
                e(h.message.as_deref().unwrap_or("")),
                e(&h.hash),
            ));
        }
        page.push_str(&format!(
            "</table>\n<p>Check this record offline: <code>airlock verify record.json</code>. {}</p>\n</body></html>\n",
            e(CHAIN_RULE)
        ));
        page
    }
}

/// RO-Crate 1.1 writes a property with one value as that value, not as a list of one.
fn one_or_many(mut values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.pop().unwrap_or_default()
    } else {
        Value::Array(values)
    }
}

fn file_id(name: &str) -> String {
    // A relative URI for the file: its path, percent-encoded where URIs need it.
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Text as HTML text: nothing in it can become markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
