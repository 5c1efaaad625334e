//! ACRO's record as evidence in the review. A researcher who checked their outputs with ACRO
//! (the SACRO project's `acro` package) has a folder holding the outputs, `results.json` (per
//! output: its files, ACRO's status `pass`/`fail`/`review`, the checks' counts, the
//! researcher's exception text), `config.json` (the thresholds ACRO used) and `checksums/`
//! (one `<file>.txt` per output file with its sha256). Uploaded with the outputs, the airlock
//! reads them as evidence:
//!
//! - at the seal, the same streaming read keeps those three kinds of file (only those, by
//!   name, and at most [`MAX_RESULTS_BYTES`]) and parses them into [`Evidence`];
//! - once every file of the request is sealed, [`assess`] maps ACRO's outputs to the
//!   request's files (by path relative to `results.json`'s folder) and finds: an output that
//!   failed ACRO without an exception, a file whose sealed sha256 is not the one ACRO recorded
//!   (edited after checking), ACRO run with a threshold below the workspace's, and a record
//!   too large or malformed to read (never a silent pass);
//! - the record itself, its configuration and checksums, and the outputs ACRO marks
//!   `DONT_RELEASE`, are supporting files: reviewed, never released.
//!
//! The ACRO gate is on in `warn` mode without being declared; a gate of kind `acro` in the
//! policy names it, sets its mode (`block`, or `off` to not read the record) and whether a
//! finding needs the researcher's justification.

use super::*;
use std::collections::BTreeMap;

/// The largest `results.json` read; a longer one is an `acro_unreadable` finding.
pub const MAX_RESULTS_BYTES: usize = 4 * 1024 * 1024;
/// ACRO's `config.json` is a few hundred bytes.
const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// A checksum file is 64 hex digits.
const MAX_CHECKSUM_BYTES: usize = 256;
/// Outputs kept from one record (each is shown on its files): the request's record must stay
/// well under Cosmos DB's 2 MB per item.
pub const MAX_OUTPUTS: usize = 100;
/// Longest exception, summary or comment text kept, in characters.
const MAX_TEXT_CHARS: usize = 1000;
/// The name of the gate when the policy declares none.
pub const DEFAULT_ACRO_GATE: &str = "acro";
/// ACRO's marker on outputs that must not leave (its session summaries).
const DO_NOT_RELEASE: &str = "DONT_RELEASE";

/// What the seal read from a file of ACRO's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Evidence {
    /// ACRO's `results.json`.
    AcroResults(AcroRecord),
    /// ACRO's `config.json`: the minimum cell count it checked against.
    #[serde(rename_all = "camelCase")]
    AcroConfig { safe_threshold: Option<u64> },
    /// `checksums/<file>.txt`: the sha256 ACRO recorded for `<file>`.
    AcroChecksum { sha256: String },
    /// A file that says it is ACRO's record but could not be read.
    AcroUnreadable { why: String },
}

/// ACRO's `results.json`, as much of it as the review needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcroRecord {
    /// ACRO's version.
    pub version: String,
    pub outputs: Vec<AcroOutput>,
    /// Outputs in the record beyond the [`MAX_OUTPUTS`] kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outputs_not_read: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One output of ACRO's record, shown beside each of its files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcroOutput {
    /// ACRO's name for the output (`output_1`).
    pub uid: String,
    /// `pass`, `fail` or `review`.
    pub status: String,
    /// `table`, `regression`, `custom`, ...
    #[serde(rename = "type")]
    pub output_type: String,
    /// The output's files, relative to the record's folder.
    pub files: Vec<String>,
    /// The checks that flagged cells, with how many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_checks: BTreeMap<String, u64>,
    /// The researcher's reason why a failing output should be released anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
    /// ACRO's summary of its checks, in its words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The analysis command that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl AcroOutput {
    /// ACRO's own marker that an output is for the checker, not for release.
    pub fn do_not_release(&self) -> bool {
        self.uid.contains(DO_NOT_RELEASE)
    }
}

/// The gate ACRO's evidence is found under: the policy's `acro` gate, or the built-in one in
/// `warn` mode; `None` when the policy turned it off.
pub fn acro_gate(gates: &[Gate]) -> Option<Gate> {
    match gates.iter().find(|g| matches!(g.kind, GateKind::Acro {})) {
        Some(g) if g.mode == GateMode::Off => None,
        Some(g) => Some(g.clone()),
        None => Some(Gate {
            name: DEFAULT_ACRO_GATE.into(),
            mode: GateMode::Warn,
            require_justification: false,
            uncertain: None,
            kind: GateKind::Acro {},
        }),
    }
}

/// Which file of ACRO's record a name is, by its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Results,
    Config,
    Checksum,
}

fn part_of(name: &str) -> Option<Part> {
    let mut segments = name.rsplit('/');
    let file = segments.next()?;
    let parent = segments.next();
    match file {
        "results.json" => Some(Part::Results),
        "config.json" => Some(Part::Config),
        f if parent == Some("checksums") && f.ends_with(".txt") => Some(Part::Checksum),
        _ => None,
    }
}

/// The folder a name is in (`""` at the top), with its trailing `/`.
fn folder_of(name: &str) -> &str {
    name.rfind('/').map_or("", |i| &name[..=i])
}

/// Keeps the bytes of a file that may be part of ACRO's record as they stream past.
pub(super) struct Capture {
    part: Part,
    bytes: Vec<u8>,
    overflow: bool,
}

impl Capture {
    /// `None` for a file that cannot be part of ACRO's record (nothing is kept).
    pub(super) fn new(name: &str) -> Option<Capture> {
        Some(Capture {
            part: part_of(name)?,
            bytes: Vec::new(),
            overflow: false,
        })
    }

    fn limit(&self) -> usize {
        match self.part {
            Part::Results => MAX_RESULTS_BYTES,
            Part::Config => MAX_CONFIG_BYTES,
            Part::Checksum => MAX_CHECKSUM_BYTES,
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        let room = self.limit().saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.overflow = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    pub(super) fn finish(self) -> Option<Evidence> {
        let says_acro = contains(&self.bytes, b"\"ACRO\"");
        match self.part {
            Part::Results if self.overflow => says_acro.then(|| Evidence::AcroUnreadable {
                why: format!(
                    "the record is larger than the {} MiB the airlock reads",
                    MAX_RESULTS_BYTES / (1024 * 1024)
                ),
            }),
            Part::Results => match serde_json::from_slice::<serde_json::Value>(&self.bytes) {
                Ok(v) => read_results(&v),
                Err(e) => says_acro.then(|| Evidence::AcroUnreadable {
                    why: format!("it is not valid JSON ({e})"),
                }),
            },
            Part::Config if self.overflow => None,
            Part::Config => {
                let v: serde_json::Value = serde_json::from_slice(&self.bytes).ok()?;
                let config = v.as_object()?;
                config
                    .contains_key("safe_threshold")
                    .then(|| Evidence::AcroConfig {
                        safe_threshold: config.get("safe_threshold").and_then(|t| t.as_u64()),
                    })
            }
            Part::Checksum if self.overflow => None,
            Part::Checksum => {
                let text = std::str::from_utf8(&self.bytes).ok()?.trim();
                (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
                    Evidence::AcroChecksum {
                        sha256: text.to_ascii_lowercase(),
                    }
                })
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text(v: &serde_json::Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_TEXT_CHARS).collect())
}

/// ACRO's `results.json` (format of ACRO 1.x: `{"version", "tool": {"name": "ACRO"},
/// "results": {uid: {...}}}`); `None` when the JSON is someone else's `results.json`.
fn read_results(v: &serde_json::Value) -> Option<Evidence> {
    let tool = v.pointer("/tool/name").and_then(|n| n.as_str());
    let results = v.get("results").and_then(|r| r.as_object());
    let looks_like_acro = results.is_some_and(|r| {
        r.values()
            .all(|o| o.get("uid").is_some() && o.get("status").is_some())
    }) && v.get("version").is_some();
    if tool != Some("ACRO") && !looks_like_acro {
        return None;
    }
    let Some(results) = results else {
        return Some(Evidence::AcroUnreadable {
            why: "it has no \"results\" object".into(),
        });
    };
    let mut outputs = Vec::new();
    for (key, o) in results.iter().take(MAX_OUTPUTS) {
        let mut failed_checks = BTreeMap::new();
        let mut files = Vec::new();
        for f in o
            .get("files")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(name) = f.get("name").and_then(|n| n.as_str()) {
                files.push(name.to_string());
            }
            for (check, count) in f
                .pointer("/sdc/summary")
                .and_then(|s| s.as_object())
                .into_iter()
                .flatten()
            {
                let count = count.as_u64().unwrap_or(0);
                if count > 0 {
                    *failed_checks.entry(check.clone()).or_insert(0) += count;
                }
            }
        }
        outputs.push(AcroOutput {
            uid: o
                .get("uid")
                .and_then(|u| u.as_str())
                .unwrap_or(key)
                .to_string(),
            status: o
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("unknown")
                .to_ascii_lowercase(),
            output_type: o
                .get("type")
                .and_then(|s| s.as_str())
                .unwrap_or("unknown")
                .to_string(),
            files,
            failed_checks,
            exception: o.get("exception").and_then(text),
            comments: o
                .get("comments")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
                .filter_map(text)
                .take(5)
                .collect(),
            summary: o.get("summary").and_then(text),
            command: o.get("command").and_then(text),
        });
    }
    Some(Evidence::AcroResults(AcroRecord {
        version: v
            .get("version")
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_string(),
        outputs,
        outputs_not_read: results.len().saturating_sub(MAX_OUTPUTS),
    }))
}

/// A sealed file as [`assess`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct SealedFile<'a> {
    pub name: &'a str,
    pub sha256: Option<&'a str>,
    pub evidence: Option<&'a Evidence>,
}

/// What ACRO's record says about a request's files, once all are sealed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Findings, each with the file it is on.
    pub findings: Vec<(String, Finding)>,
    /// The output each file belongs to.
    pub outputs: BTreeMap<String, AcroOutput>,
    /// Files that are evidence, not results: the record, its configuration and checksums,
    /// and the outputs ACRO marks `DONT_RELEASE`.
    pub supporting: Vec<String>,
}

/// ACRO's record checked against the sealed files (see the module's words). `threshold` is
/// the workspace's disclosure threshold.
pub fn assess(files: &[SealedFile<'_>], gate: &Gate, threshold: u64) -> Assessment {
    let mut out = Assessment::default();
    let mut found: Vec<(String, Finding)> = Vec::new();
    let exists = |name: &str| files.iter().any(|f| f.name == name);
    let mut add = |file: &str, rule: &str, message: String| {
        let mut finding = Finding {
            gate: gate.name.clone(),
            mode: gate.mode,
            rule: rule.into(),
            message,
            location: None,
            cell: None,
            remediation: None,
            needs_justification: gate.needs_justification(),
        };
        finding.remediation = remediation(&finding, Some(gate));
        found.push((file.to_string(), finding));
    };
    for record_file in files {
        match record_file.evidence {
            Some(Evidence::AcroUnreadable { why }) => {
                add(
                    record_file.name,
                    "acro_unreadable",
                    format!("this looks like ACRO's record but cannot be read: {why}"),
                );
                out.supporting.push(record_file.name.to_string());
            }
            Some(Evidence::AcroResults(record)) => {
                let folder = folder_of(record_file.name);
                out.supporting.push(record_file.name.to_string());
                if record.outputs_not_read > 0 {
                    add(
                        record_file.name,
                        "acro_partial",
                        format!(
                            "ACRO's record has {} outputs; the airlock read the first {MAX_OUTPUTS}, the files of the other {} have no ACRO evidence here",
                            record.outputs.len() + record.outputs_not_read,
                            record.outputs_not_read
                        ),
                    );
                }
                let config = format!("{folder}config.json");
                match files
                    .iter()
                    .find(|f| f.name == config)
                    .and_then(|f| f.evidence)
                {
                    Some(Evidence::AcroConfig { safe_threshold }) => {
                        out.supporting.push(config.clone());
                        match safe_threshold {
                            Some(t) if *t < threshold => add(
                                record_file.name,
                                "acro_threshold",
                                format!(
                                    "ACRO checked against a minimum cell count of {t}; this workspace's is {threshold}: its passes do not hold here"
                                ),
                            ),
                            Some(_) => {}
                            None => add(
                                record_file.name,
                                "acro_threshold",
                                format!(
                                    "ACRO's configuration names no minimum cell count: its passes cannot be compared with this workspace's {threshold}"
                                ),
                            ),
                        }
                    }
                    _ => add(
                        record_file.name,
                        "acro_threshold",
                        format!(
                            "ACRO's configuration ({config}) is not in the request: whether its checks used this workspace's minimum cell count ({threshold}) cannot be told"
                        ),
                    ),
                }
                for output in &record.outputs {
                    for file in &output.files {
                        let name = format!("{folder}{file}");
                        if !exists(&name) {
                            continue;
                        }
                        out.outputs.insert(name.clone(), output.clone());
                        if output.do_not_release() {
                            out.supporting.push(name.clone());
                        }
                        if output.status == "fail" && output.exception.is_none() {
                            let checks: Vec<String> = output
                                .failed_checks
                                .iter()
                                .map(|(c, n)| format!("{c}: {n} cells"))
                                .collect();
                            add(
                                &name,
                                "acro_fail",
                                format!(
                                    "ACRO's checks failed for {} ({}) and the researcher gave no exception",
                                    output.uid,
                                    if checks.is_empty() {
                                        "no counts recorded".to_string()
                                    } else {
                                        checks.join(", ")
                                    }
                                ),
                            );
                        }
                        let checksum = format!("{folder}checksums/{file}.txt");
                        let recorded = files.iter().find(|f| f.name == checksum).and_then(|f| {
                            match f.evidence {
                                Some(Evidence::AcroChecksum { sha256 }) => Some(sha256),
                                _ => None,
                            }
                        });
                        let sealed = files.iter().find(|f| f.name == name).and_then(|f| f.sha256);
                        if let (Some(recorded), Some(sealed)) = (recorded, sealed)
                            && recorded != sealed
                        {
                            add(
                                &name,
                                "acro_modified",
                                format!(
                                    "the file is not the one ACRO checked: its sha256 is {sealed}, ACRO recorded {recorded} (edited after checking?)"
                                ),
                            );
                        }
                    }
                }
                for f in files {
                    if f.name.starts_with(&format!("{folder}checksums/"))
                        && matches!(f.evidence, Some(Evidence::AcroChecksum { .. }))
                    {
                        out.supporting.push(f.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out.findings = found;
    out.supporting.sort();
    out.supporting.dedup();
    out
}

/// The disclosure threshold ACRO's is compared with: the first disclosure gate's that is on,
/// else ACRO's own default (10), which is also the airlock's.
pub fn workspace_threshold(gates: &[Gate]) -> u64 {
    gates
        .iter()
        .find_map(|g| match &g.kind {
            GateKind::Disclosure(d) if g.mode != GateMode::Off => Some(d.threshold),
            _ => None,
        })
        .unwrap_or(Disclosure::default().threshold)
}

#[cfg(test)]
mod tests;
