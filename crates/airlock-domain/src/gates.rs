//! Security gates beyond malware: checks a workspace's policy lists, run over each sealed copy
//! while it is hashed (the same single streaming read, so a gate costs no extra pass over the
//! data and holds a bounded amount of it in memory), each with a mode:
//!
//! - `block`: a finding stops the request before review (it is blocked, with the finding as
//!   the reason);
//! - `warn`: the request goes to review with the finding on the file for the reviewer;
//! - `off`: the gate does not run.
//!
//! Built-in kinds:
//!
//! - **`filePolicy`**: what a file really is, from its leading bytes, against its name: an
//!   executable (PE, ELF, Mach-O, Java class, a `#!` script) is always a finding; a file whose
//!   content does not match its extension (`.csv` that is a zip) is one; extensions outside
//!   `allowedExtensions` (when set) are; archives are when `archives` is `block`; CSV/TSV files
//!   with more than `maxCsvRows` data rows are.
//! - **`disclosure`**: statistical disclosure control on CSV/TSV tables, on the columns whose
//!   header names a count (`countColumns`): counts below `threshold` (ACRO's default 10),
//!   counts not rounded to `roundingBase` when one is set, and zeros when `zerosDisclose`
//!   is on; on magnitude columns `X` that come with their largest contributions (`X_top1`,
//!   `X_top2`, ...): dominance (the largest `dominanceN` make up more than
//!   `dominanceKPercent` of the total; ACRO's n = 2, k = 0.9) and p-percent (the rest is
//!   less than `pPercent` of the largest; ACRO's p = 0.1); residual degrees of freedom below
//!   `dofThreshold` (ACRO's 10) in a `df`/`df_resid` column. Each finding names the row, the
//!   column and the value. See [`table`].
//! - **`releaseLedger`**: compares each file with what the workspace released before: an
//!   exact re-release, and a table whose cells differ from a released one's by a small count
//!   (differencing).
//! - **`external`**: another system's check, asked through an `Airlock.GateRequested` event
//!   and answered through the API (see [`External`]).
//!
//! A leaf of the domain: the policy and the request name these types, not the other way round.

use serde::{Deserialize, Serialize};

pub mod table;
pub use table::TableCells;
use table::TableScan;

/// What a finding of a gate does to the request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    #[default]
    Block,
    Warn,
    Off,
}

/// One gate in a workspace's policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Shown to people, and on every finding.
    pub name: String,
    #[serde(default)]
    pub mode: GateMode,
    /// In `warn` mode: the researcher must justify each file this gate found something in
    /// before a reviewer may approve.
    #[serde(default)]
    pub require_justification: bool,
    #[serde(flatten)]
    pub kind: GateKind,
}

impl Gate {
    /// Whether this gate's findings hold approval until the researcher justifies the file.
    pub fn needs_justification(&self) -> bool {
        self.mode == GateMode::Warn && self.require_justification
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum GateKind {
    FilePolicy(FilePolicy),
    Disclosure(Disclosure),
    /// Compares each file with what the workspace released before (see [`ledger_findings`]).
    ReleaseLedger {},
    External(External),
}

/// A gate run by another system (an organisation's Logic App or function): once every file is
/// sealed and scanned, the airlock publishes `Airlock.GateRequested` with read links valid
/// until the deadline; the gate answers with a verdict per file through
/// `POST .../requests/{id}/gates/{name}` as a service identity with the `AirlockGate` role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct External {
    /// How long the gate has to answer; then the request fails, naming the gate.
    pub deadline_minutes: u32,
    /// Object ids (`oid`) of the identities allowed to answer for this gate; empty allows any
    /// caller with the `AirlockGate` role in the workspace.
    pub answered_by: Vec<String>,
}

impl Default for External {
    fn default() -> Self {
        External {
            deadline_minutes: 60,
            answered_by: Vec::new(),
        }
    }
}

/// What an external gate says about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateResult {
    Pass,
    Fail,
}

/// An external gate's verdict on one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileVerdict {
    pub name: String,
    pub result: GateResult,
    /// Why (shown to the reviewer and the researcher on a `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where in the file (`row 4`, `sheet 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The external gates that are on.
pub fn external_gates(gates: &[Gate]) -> impl Iterator<Item = (&Gate, &External)> {
    gates.iter().filter_map(|g| match &g.kind {
        GateKind::External(e) if g.mode != GateMode::Off => Some((g, e)),
        _ => None,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archives {
    #[default]
    Allow,
    Block,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FilePolicy {
    /// Lower-case extensions without the dot (`csv`, `png`); empty allows any.
    pub allowed_extensions: Vec<String>,
    /// Data rows (after the header) a CSV or TSV file may have.
    pub max_csv_rows: Option<u64>,
    pub archives: Archives,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Disclosure {
    /// Counts from 1 to `threshold - 1` disclose (ACRO's default minimum cell count: 10).
    pub threshold: u64,
    /// Counts must be multiples of this when set (e.g. 5).
    pub rounding_base: Option<u64>,
    /// Zeros disclose too (e.g. "nobody in this group has the condition").
    pub zeros_disclose: bool,
    /// Headers of the columns holding counts, compared case-insensitively; a header ending
    /// in `_count` or `_n` counts as well.
    pub count_columns: Vec<String>,
    /// Dominance (n, k): the largest `dominance_n` contributions to a magnitude may make up
    /// at most `dominance_k_percent` of its total (ACRO: n = 2, k = 0.9). 0 turns it off.
    pub dominance_n: u32,
    pub dominance_k_percent: u32,
    /// p-percent: the total less its two largest contributions must be at least this
    /// percentage of the largest (ACRO: p = 0.1). 0 turns it off.
    pub p_percent: u32,
    /// Residual degrees of freedom a model's output must have (ACRO: 10). 0 turns it off.
    pub dof_threshold: u64,
}

impl Default for Disclosure {
    fn default() -> Self {
        Disclosure {
            threshold: 10,
            rounding_base: None,
            zeros_disclose: false,
            count_columns: ["n", "count", "counts", "frequency", "freq", "total"]
                .map(String::from)
                .to_vec(),
            dominance_n: 2,
            dominance_k_percent: 90,
            p_percent: 10,
            dof_threshold: 10,
        }
    }
}

/// One thing a gate found in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub gate: String,
    pub mode: GateMode,
    /// Which rule: `executable`, `type_mismatch`, `extension`, `archive`, `csv_rows`,
    /// `small_count`, `unrounded`, `zero`.
    pub rule: String,
    pub message: String,
    /// Where: `row 4, column "n"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A warning the researcher must justify before the request can be approved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_justification: bool,
}

/// Leading bytes kept to tell what a file is.
const SNIFF_BYTES: usize = 8192;
/// The last bytes of a zip kept to read its directory (entries beyond what fits are reported
/// as not inspected).
const ZIP_TAIL_BYTES: usize = 1024 * 1024;
/// Extensions of archives (an archive inside an archive is not inspected, so it is a finding).
const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "gz", "tgz", "7z", "rar", "tar", "bz2", "xz", "zst", "jar", "war", "whl",
];
/// Extensions of programs and scripts that run when opened.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "so", "dylib", "com", "scr", "msi", "bat", "cmd", "ps1", "sh", "vbs", "js",
    "app", "elf", "bin",
];

/// What a file's leading bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Executable(&'static str),
    Archive(&'static str),
    Png,
    Jpeg,
    Pdf,
    Parquet,
    Text,
    Binary,
}

/// Classifies leading bytes (up to [`SNIFF_BYTES`]).
pub fn sniff(head: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"MZ") {
        Sniffed::Executable("a Windows executable (PE)")
    } else if starts(b"\x7fELF") {
        Sniffed::Executable("an ELF executable")
    } else if starts(&[0xCF, 0xFA, 0xED, 0xFE])
        || starts(&[0xCE, 0xFA, 0xED, 0xFE])
        || starts(&[0xFE, 0xED, 0xFA, 0xCF])
        || starts(&[0xFE, 0xED, 0xFA, 0xCE])
    {
        Sniffed::Executable("a Mach-O executable")
    } else if starts(&[0xCA, 0xFE, 0xBA, 0xBE]) {
        Sniffed::Executable("a Java class or universal binary")
    } else if starts(b"#!") {
        Sniffed::Executable("a script with an interpreter line (#!)")
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Sniffed::Archive("zip")
    } else if starts(&[0x1F, 0x8B]) {
        Sniffed::Archive("gzip")
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        Sniffed::Archive("7z")
    } else if starts(b"Rar!") {
        Sniffed::Archive("rar")
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        Sniffed::Archive("tar")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Sniffed::Png
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Sniffed::Jpeg
    } else if starts(b"%PDF-") {
        Sniffed::Pdf
    } else if starts(b"PAR1") {
        Sniffed::Parquet
    } else if head.contains(&0) || std::str::from_utf8(trim_partial_utf8(head)).is_err() {
        Sniffed::Binary
    } else {
        Sniffed::Text
    }
}

/// `head` without a UTF-8 sequence cut at its end.
fn trim_partial_utf8(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        Err(_) => head,
    }
}

fn extension(name: &str) -> String {
    name.rsplit('/')
        .next()
        .and_then(|file| file.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether content of this kind may carry this extension.
fn matches_extension(sniffed: Sniffed, ext: &str) -> bool {
    match ext {
        "csv" | "tsv" | "txt" | "md" | "json" | "log" | "xml" | "html" | "r" | "py" | "sql" => {
            sniffed == Sniffed::Text
        }
        "png" => sniffed == Sniffed::Png,
        "jpg" | "jpeg" => sniffed == Sniffed::Jpeg,
        "pdf" => sniffed == Sniffed::Pdf,
        "parquet" => sniffed == Sniffed::Parquet,
        "zip" => sniffed == Sniffed::Archive("zip"),
        "gz" | "tgz" => sniffed == Sniffed::Archive("gzip"),
        "7z" => sniffed == Sniffed::Archive("7z"),
        "tar" => sniffed == Sniffed::Archive("tar"),
        // Extensions we know nothing about: only what the content says (executables) counts.
        _ => true,
    }
}

fn is_table(name: &str) -> Option<u8> {
    match extension(name).as_str() {
        "csv" => Some(b','),
        "tsv" => Some(b'\t'),
        _ => None,
    }
}

/// Runs a workspace's gates over one file's bytes as they stream past.
pub struct GateRunner {
    name: String,
    gates: Vec<Gate>,
    head: Vec<u8>,
    table: Option<TableScan>,
    /// The last bytes of a file that starts like a zip (its directory is at the end).
    tail: Option<Vec<u8>>,
    total: u64,
}

impl GateRunner {
    /// `None` when no gate is on (nothing to run, nothing to keep).
    pub fn new(gates: &[Gate], name: &str) -> Option<GateRunner> {
        let gates: Vec<Gate> = gates
            .iter()
            .filter(|g| g.mode != GateMode::Off)
            .cloned()
            .collect();
        if gates.is_empty() {
            return None;
        }
        let needs_table = gates.iter().any(|g| match &g.kind {
            GateKind::Disclosure(_) | GateKind::ReleaseLedger {} => true,
            GateKind::FilePolicy(p) => p.max_csv_rows.is_some(),
            GateKind::External(_) => false,
        });
        let table = is_table(name)
            .filter(|_| needs_table)
            .map(|separator| TableScan::new(separator, &gates));
        // The end of every file is kept when a file policy runs: a zip's directory is there,
        // also when the zip is appended to a file of another type (a polyglot).
        let inspects_archives = gates
            .iter()
            .any(|g| matches!(&g.kind, GateKind::FilePolicy(_)));
        Some(GateRunner {
            name: name.to_string(),
            gates,
            head: Vec::new(),
            table,
            tail: inspects_archives.then(Vec::new),
            total: 0,
        })
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.total += chunk.len() as u64;
        if let Some(tail) = &mut self.tail {
            tail.extend_from_slice(chunk);
            if tail.len() > 2 * ZIP_TAIL_BYTES {
                tail.drain(..tail.len() - ZIP_TAIL_BYTES);
            }
        }
        if let Some(table) = &mut self.table {
            table.feed(chunk);
        }
    }

    /// Every finding, in gate order, and the table's cells when a release-ledger gate wants
    /// them.
    pub fn finish(mut self) -> (Vec<Finding>, Option<TableCells>) {
        let sniffed = sniff(&self.head);
        let ext = extension(&self.name);
        let table = self.table.take().map(TableScan::finish);
        let tail = self.tail.take();
        // A zip behind other content: both things at once.
        let appended_zip = sniffed != Sniffed::Archive("zip")
            && tail.as_deref().is_some_and(crate::archive::ends_like_a_zip);
        let zip = (sniffed == Sniffed::Archive("zip") || appended_zip)
            .then_some(tail)
            .flatten()
            .map(|tail| crate::archive::central_directory(&tail, self.total));
        let mut findings = Vec::new();
        for gate in &self.gates {
            let mut add = |rule: &str, message: String, location: Option<String>| {
                findings.push(Finding {
                    gate: gate.name.clone(),
                    mode: gate.mode,
                    rule: rule.into(),
                    message,
                    location,
                    needs_justification: gate.needs_justification(),
                });
            };
            match &gate.kind {
                GateKind::FilePolicy(p) => {
                    if let Sniffed::Executable(what) = sniffed {
                        add("executable", format!("the content is {what}"), None);
                    } else if !matches_extension(sniffed, &ext) {
                        add(
                            "type_mismatch",
                            format!(
                                "the name says .{ext} but the content is {}",
                                describe(sniffed)
                            ),
                            None,
                        );
                    }
                    if !p.allowed_extensions.is_empty()
                        && !p
                            .allowed_extensions
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(&ext))
                    {
                        add(
                            "extension",
                            format!(
                                "files ending .{ext} are not allowed here (allowed: {})",
                                p.allowed_extensions.join(", ")
                            ),
                            None,
                        );
                    }
                    if let (Archives::Block, Sniffed::Archive(kind)) = (p.archives, sniffed) {
                        add(
                            "archive",
                            format!("archives ({kind}) are not allowed here"),
                            None,
                        );
                    }
                    if appended_zip {
                        add(
                            "polyglot",
                            format!(
                                "the file is {} and also a zip archive appended after it: its contents are not what the name and first bytes say",
                                describe(sniffed)
                            ),
                            None,
                        );
                        if p.archives == Archives::Block {
                            add(
                                "archive",
                                "archives (zip, appended to the file) are not allowed here".into(),
                                None,
                            );
                        }
                    }
                    if p.archives == Archives::Allow {
                        match &zip {
                            Some(Ok(entries)) => zip_findings(entries, p, &mut add),
                            Some(Err(why)) => add(
                                "archive_unchecked",
                                format!("the archive's contents could not be inspected: {why}"),
                                None,
                            ),
                            None => {}
                        }
                    }
                    if let (Some(max), Some(t)) = (p.max_csv_rows, &table)
                        && t.data_rows > max
                    {
                        add(
                            "csv_rows",
                            format!("{} data rows; at most {max} are allowed", t.data_rows),
                            None,
                        );
                    }
                }
                // Not a property of the bytes alone: the workflow asks the ledger, and other
                // systems answer for external gates.
                GateKind::ReleaseLedger {} | GateKind::External(_) => {}
                GateKind::Disclosure(_) => {
                    if let Some(t) = &table {
                        for f in t.findings.iter().filter(|f| f.gate == gate.name) {
                            add(&f.rule, f.message.clone(), f.location.clone());
                        }
                    }
                }
            }
        }
        (findings, table.and_then(|t| t.cells))
    }
}

/// What is wrong with a zip's entries: names that climb out or hide, encrypted entries (they
/// cannot be scanned or checked), archives inside, programs, extensions outside the list.
fn zip_findings(
    entries: &[crate::archive::ZipEntry],
    policy: &FilePolicy,
    add: &mut impl FnMut(&str, String, Option<String>),
) {
    for e in entries {
        let at = Some(format!("entry {:?}", e.name));
        if e.name.ends_with('/') {
            continue;
        }
        let unsafe_name = e.name.starts_with('/')
            || e.name.contains('\\')
            || e.name.split('/').any(|s| s == "..")
            || e.name.as_bytes().get(1) == Some(&b':')
            || e.name.chars().any(|c| c.is_control());
        if unsafe_name {
            add(
                "archive_entry_name",
                "an entry's name would write outside the folder it is unpacked into".into(),
                at.clone(),
            );
        }
        if e.encrypted {
            add(
                "encrypted_entry",
                "an encrypted entry cannot be scanned or checked".into(),
                at.clone(),
            );
        }
        let ext = extension(&e.name);
        if ARCHIVE_EXTENSIONS.contains(&ext.as_str()) {
            add(
                "nested_archive",
                "an archive inside the archive is not inspected".into(),
                at.clone(),
            );
        } else if EXECUTABLE_EXTENSIONS.contains(&ext.as_str()) {
            add(
                "executable",
                format!("a program (.{ext}) inside the archive"),
                at.clone(),
            );
        }
        if !policy.allowed_extensions.is_empty()
            && !policy
                .allowed_extensions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&ext))
        {
            add(
                "extension",
                format!("files ending .{ext} are not allowed here"),
                at,
            );
        }
    }
}

fn describe(sniffed: Sniffed) -> String {
    match sniffed {
        Sniffed::Executable(what) => what.into(),
        Sniffed::Archive(kind) => format!("a {kind} archive"),
        Sniffed::Png => "a PNG image".into(),
        Sniffed::Jpeg => "a JPEG image".into(),
        Sniffed::Pdf => "a PDF document".into(),
        Sniffed::Parquet => "a Parquet file".into(),
        Sniffed::Text => "text".into(),
        Sniffed::Binary => "binary data".into(),
    }
}

/// An earlier release of the same bytes, as the ledger has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarlierRelease {
    pub request_id: String,
    pub file: String,
    pub released_at: chrono::DateTime<chrono::Utc>,
}

/// A table the workspace released before, with its cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarlierTable {
    pub release: EarlierRelease,
    pub cells: TableCells,
}

/// Differences listed per earlier table; the rest are counted.
const MAX_DIFFERENCES: usize = 10;

/// The release-ledger gates' findings for a file of `request_id`: an exact re-release of
/// bytes released before (by other requests) is shown as such; a table whose cells differ
/// from a released table's by less than the disclosure threshold (the first disclosure
/// gate's, else ACRO's 10) is differencing, each cell named.
pub fn ledger_findings(
    gates: &[Gate],
    request_id: &str,
    earlier: &[EarlierRelease],
    cells: Option<&TableCells>,
    tables: &[EarlierTable],
) -> Vec<Finding> {
    let ledgers: Vec<&Gate> = gates
        .iter()
        .filter(|g| g.mode != GateMode::Off && matches!(g.kind, GateKind::ReleaseLedger {}))
        .collect();
    let mut found: Vec<(&str, String, Option<String>)> = Vec::new();
    let earlier: Vec<&EarlierRelease> = earlier
        .iter()
        .filter(|e| e.request_id != request_id)
        .collect();
    if let Some(first) = earlier.iter().min_by_key(|e| e.released_at) {
        found.push((
            "already_released",
            format!(
                "identical to {:?}, released by request {} on {}{}",
                first.file,
                first.request_id,
                first.released_at.format("%Y-%m-%d"),
                if earlier.len() > 1 {
                    format!(" (released {} times in all)", earlier.len())
                } else {
                    String::new()
                }
            ),
            None,
        ));
    } else if let Some(cells) = cells {
        let threshold = gates
            .iter()
            .find_map(|g| match &g.kind {
                GateKind::Disclosure(d) if g.mode != GateMode::Off => Some(d.threshold),
                _ => None,
            })
            .unwrap_or(10);
        for t in tables.iter().filter(|t| t.release.request_id != request_id) {
            let diffs = table::small_differences(cells, &t.cells, threshold, MAX_DIFFERENCES);
            for d in diffs {
                found.push((
                    "differencing",
                    format!(
                        "{} is {} here and {} in {:?}, released by request {} on {}: the difference, {}, is below {threshold}",
                        d.column,
                        d.now,
                        d.before,
                        t.release.file,
                        t.release.request_id,
                        t.release.released_at.format("%Y-%m-%d"),
                        d.now.abs_diff(d.before),
                    ),
                    Some(format!("row {:?}, column {:?}", d.key, d.column)),
                ));
            }
        }
    }
    ledgers
        .iter()
        .flat_map(|g| {
            found.iter().map(|(rule, message, location)| Finding {
                gate: g.name.clone(),
                mode: g.mode,
                rule: rule.to_string(),
                message: message.clone(),
                location: location.clone(),
                needs_justification: g.needs_justification(),
            })
        })
        .collect()
}

/// Whether any release-ledger gate is on.
pub fn consults_ledger(gates: &[Gate]) -> bool {
    gates
        .iter()
        .any(|g| g.mode != GateMode::Off && matches!(g.kind, GateKind::ReleaseLedger {}))
}

/// The block-mode findings, as a request's status message.
pub fn blocking_message(findings: &[(String, &Finding)]) -> Option<String> {
    let blocking: Vec<String> = findings
        .iter()
        .filter(|(_, f)| f.mode == GateMode::Block)
        .map(|(file, f)| {
            format!(
                "{file}: {} ({}{})",
                f.message,
                f.gate,
                f.location
                    .as_deref()
                    .map(|l| format!(", {l}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    (!blocking.is_empty()).then(|| format!("blocked by policy: {}", blocking.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates(json: serde_json::Value) -> Vec<Gate> {
        serde_json::from_value(json).unwrap()
    }

    fn run(gates: &[Gate], name: &str, data: &[u8], chunk: usize) -> Vec<Finding> {
        checked(gates, name, data, chunk).0
    }

    fn checked(
        gates: &[Gate],
        name: &str,
        data: &[u8],
        chunk: usize,
    ) -> (Vec<Finding>, Option<TableCells>) {
        let mut runner = GateRunner::new(gates, name).expect("a gate is on");
        for piece in data.chunks(chunk.max(1)) {
            runner.feed(piece);
        }
        runner.finish()
    }

    fn rules(findings: &[Finding]) -> Vec<(&str, Option<&str>)> {
        findings
            .iter()
            .map(|f| (f.rule.as_str(), f.location.as_deref()))
            .collect()
    }

    #[test]
    fn file_policy_table() {
        let g = gates(
            serde_json::json!([{"name": "types", "kind": "filePolicy", "mode": "block",
            "allowedExtensions": ["csv", "png", "txt", "zip"], "maxCsvRows": 3, "archives": "block"}]),
        );
        let png = b"\x89PNG\r\n\x1a\n....";
        let cases: Vec<(&str, &[u8], Vec<&str>)> = vec![
            ("table.csv", b"a,b\n1,2\n", vec![]),
            ("plot.png", png, vec![]),
            ("notes.txt", "r\u{e9}sum\u{e9}".as_bytes(), vec![]),
            // A disguised executable, whatever its name says.
            ("table.csv", b"MZ\x90\x00\x03", vec!["executable"]),
            ("run.txt", b"#!/bin/sh\nrm -rf /\n", vec!["executable"]),
            ("tool.png", b"\x7fELF\x02\x01", vec!["executable"]),
            // A .csv that is a zip: wrong type, and archives are blocked.
            (
                "table.csv",
                b"PK\x03\x04rest",
                vec!["type_mismatch", "archive"],
            ),
            ("data.zip", b"PK\x03\x04rest", vec!["archive"]),
            ("plot.png", b"not a png", vec!["type_mismatch"]),
            ("notes.txt", b"\x00\x01\x02", vec!["type_mismatch"]),
            ("model.pkl", b"\x80\x04\x95", vec!["extension"]),
            ("big.csv", b"h\n1\n2\n3\n4\n", vec!["csv_rows"]),
            ("ok.csv", b"h\n1\n2\n3\n", vec![]),
        ];
        for (name, data, expected) in cases {
            for chunk in [1, 3, 4096] {
                let got = run(&g, name, data, chunk);
                assert_eq!(
                    got.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
                    expected,
                    "{name} {data:?} in chunks of {chunk}: {got:?}"
                );
            }
        }
    }

    /// Attack: a PDF with a zip appended (`cat report.pdf tools.zip`) passed the documented
    /// example policy (pdf allowed, archives blocked) with no finding, since only the first
    /// bytes decided the type. The end of the stream is read too.
    #[test]
    fn a_zip_appended_to_another_file_is_seen() {
        use crate::archive::tests::zip;
        let mut polyglot = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec();
        polyglot.extend(zip(&[("tool.exe", b"MZ\x90\x00", false)]));
        let documented = gates(serde_json::json!([{"name": "types", "kind": "filePolicy",
            "allowedExtensions": ["csv", "tsv", "png", "pdf", "txt"], "archives": "block"}]));
        let inspecting = gates(serde_json::json!([{"name": "types", "kind": "filePolicy",
            "allowedExtensions": ["pdf", "zip", "txt"], "archives": "allow"}]));
        for chunk in [1, 7, 4096] {
            let got = run(&documented, "report.pdf", &polyglot, chunk);
            assert_eq!(
                rules(&got),
                vec![("polyglot", None), ("archive", None)],
                "chunks of {chunk}: {got:?}"
            );
            let got = run(&inspecting, "report.pdf", &polyglot, chunk);
            let names: Vec<&str> = got.iter().map(|f| f.rule.as_str()).collect();
            assert_eq!(names[0], "polyglot", "{got:?}");
            assert!(
                got.iter().any(|f| f.rule == "executable"
                    && f.location.as_deref() == Some("entry \"tool.exe\"")),
                "the appended zip's entries are inspected: {got:?}"
            );
        }
        // A PDF that merely contains the end-of-directory signature somewhere is a PDF.
        let mut plain = b"%PDF-1.7\nstream PK\x05\x06 and more\n".to_vec();
        plain.extend(std::iter::repeat_n(b'x', 100));
        assert_eq!(rules(&run(&documented, "report.pdf", &plain, 64)), vec![]);
        // A real zip is still an archive, not a polyglot.
        let real = zip(&[("a.txt", b"hi", false)]);
        assert_eq!(
            rules(&run(&inspecting, "a.zip", &real, 64)),
            Vec::<(&str, Option<&str>)>::new()
        );
    }

    #[test]
    fn zip_entries_are_checked() {
        use crate::archive::tests::zip;
        let g = gates(serde_json::json!([{"name": "types", "kind": "filePolicy",
            "allowedExtensions": ["zip", "csv", "txt"]}]));
        let clean = zip(&[
            ("results/a.csv", b"x,y\n", false),
            ("notes.txt", b"hi", false),
        ]);
        assert!(run(&g, "out.zip", &clean, 7).is_empty());
        let bad = zip(&[
            ("inner.zip", b"PK\x03\x04", false),
            ("secret.csv", b"??", true),
            ("../../etc/cron.d/x.txt", b"x", false),
            ("tool.exe", b"MZ", false),
            ("model.pkl", b"x", false),
        ]);
        let got = run(&g, "out.zip", &bad, 5);
        assert_eq!(
            rules(&got),
            vec![
                ("nested_archive", Some("entry \"inner.zip\"")),
                ("encrypted_entry", Some("entry \"secret.csv\"")),
                (
                    "archive_entry_name",
                    Some("entry \"../../etc/cron.d/x.txt\"")
                ),
                ("executable", Some("entry \"tool.exe\"")),
                ("extension", Some("entry \"tool.exe\"")),
                ("extension", Some("entry \"model.pkl\"")),
            ],
            "{got:?}"
        );
        // A zip whose directory cannot be read is not waved through.
        let mut damaged = clean.clone();
        let n = damaged.len();
        damaged.truncate(n - 10);
        assert_eq!(
            rules(&run(&g, "out.zip", &damaged, 5)),
            vec![("archive_unchecked", None)]
        );
    }

    #[test]
    fn disclosure_table() {
        let g = gates(
            serde_json::json!([{"name": "sdc", "kind": "disclosure", "mode": "warn",
            "threshold": 10, "roundingBase": 5, "zerosDisclose": true}]),
        );
        let csv = b"group,n,mean_age,deaths_count\r\nA,120,43.5,15\r\nB,3,51.0,0\r\n\"C, D\",\"45\",40,12\r\n";
        let got = run(&g, "t.csv", csv, 7);
        assert_eq!(
            rules(&got),
            vec![
                ("small_count", Some("row 3, column \"n\"")),
                ("unrounded", Some("row 3, column \"n\"")),
                ("zero", Some("row 3, column \"deaths_count\"")),
                ("unrounded", Some("row 4, column \"deaths_count\"")),
            ],
            "{got:?}"
        );
        assert!(
            got.iter()
                .all(|f| f.mode == GateMode::Warn && f.gate == "sdc")
        );
        assert_eq!(got[0].message, "count 3 is below the threshold of 10");
        // Not counts: ids, decimals, text, and files that are not tables.
        let plain = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        assert!(run(&plain, "t.csv", b"id,value\n1,0.25\n2,3\n", 5).is_empty());
        assert!(run(&plain, "t.txt", b"n\n3\n", 5).is_empty());
        let tsv = run(&plain, "t.tsv", b"area\tn\nX\t4\n", 2);
        assert_eq!(
            rules(&tsv),
            vec![("small_count", Some("row 2, column \"n\""))]
        );
        assert_eq!(tsv[0].mode, GateMode::Block, "block is the default mode");
    }

    #[test]
    fn dominance_and_p_percent_on_magnitudes_with_their_largest_contributions() {
        let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        // income with its two largest contributions; the defaults are ACRO's (n=2, k=90 %,
        // p=10 %).
        let csv = b"region,income,income_top1,income_top2\n\
North,1000,400,300\n\
South,1000,950,20\n\
East,1000,500,380\n";
        let got = run(&g, "t.csv", csv, 5);
        assert_eq!(
            rules(&got),
            vec![
                ("dominance", Some("row 3, column \"income\"")),
                ("p_percent", Some("row 3, column \"income\"")),
            ],
            "{got:?}"
        );
        assert_eq!(
            got[0].message,
            "the largest 2 contribution(s) make up 97% of the total 1000; at most 90% is allowed"
        );
        // p-percent alone (dominance off): 1000 - 880 - 100 = 20 < 10 % of 880.
        let p_only =
            gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "dominanceN": 0}]));
        let csv = b"g,cost,cost_max,cost_max2\nA,1000,880,100\nB,1000,500,100\n";
        assert_eq!(
            rules(&run(&p_only, "t.csv", csv, 64)),
            vec![("p_percent", Some("row 2, column \"cost\""))]
        );
        // One contribution only: dominance by the largest alone still shows.
        let csv = b"g,cost,cost_top1\nA,100,95\nB,100,50\n";
        assert_eq!(
            rules(&run(&g, "t.csv", csv, 64)),
            vec![("dominance", Some("row 2, column \"cost\""))]
        );
        // A magnitude without its contributions is not judged (nothing to judge it by).
        assert!(run(&g, "t.csv", b"g,cost\nA,100\n", 64).is_empty());
    }

    #[test]
    fn residual_degrees_of_freedom() {
        let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        let csv = b"term,estimate,df_resid\nage,0.51,4\nsex,0.20,250\n";
        let got = run(&g, "model.csv", csv, 3);
        assert_eq!(
            rules(&got),
            vec![("degrees_of_freedom", Some("row 2, column \"df_resid\""))]
        );
        assert_eq!(
            got[0].message,
            "4 residual degrees of freedom; at least 10 are needed"
        );
        let off =
            gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "dofThreshold": 0}]));
        assert!(run(&off, "model.csv", csv, 3).is_empty());
    }

    #[test]
    fn differencing_against_a_released_table() {
        let g = gates(serde_json::json!([
            {"name": "ledger", "kind": "releaseLedger", "mode": "warn"},
            {"name": "sdc", "kind": "disclosure", "mode": "warn", "threshold": 10},
        ]));
        let (_, released) = checked(
            &g,
            "before.csv",
            b"region,sex,n,mean_age\nNorth,F,47,40.1\nSouth,F,120,39.0\nEast,F,200,41\n",
            9,
        );
        let released = released.expect("a table with counts has cells");
        assert_eq!(released.key_columns, vec!["region", "sex"]);
        assert_eq!(released.count_columns, vec!["n"]);
        // The same table a week later, columns reordered and spaced: North gained 3 people
        // (the difference discloses them), South 15 (safe), East none.
        let (_, now) = checked(
            &g,
            "after.csv",
            b" n , Sex ,Region,mean_age\n50,f,north,40.0\n135,F,South,39\n200,F,East,41\n",
            4,
        );
        let now = now.unwrap();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let earlier = EarlierTable {
            release: EarlierRelease {
                request_id: "r-1".into(),
                file: "before.csv".into(),
                released_at: at,
            },
            cells: released.clone(),
        };
        let got = ledger_findings(&g, "r-2", &[], Some(&now), std::slice::from_ref(&earlier));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].rule, "differencing");
        assert_eq!(
            got[0].location.as_deref(),
            Some("row \"north | f\", column \"n\"")
        );
        assert_eq!(
            got[0].message,
            "n is 50 here and 47 in \"before.csv\", released by request r-1 on 2027-01-15: the difference, 3, is below 10"
        );
        // Labelled by other columns: not the same table, not compared.
        let (_, other) = checked(&g, "x.csv", b"site,n\nNorth,50\n", 64);
        assert!(
            ledger_findings(
                &g,
                "r-2",
                &[],
                other.as_ref(),
                std::slice::from_ref(&earlier)
            )
            .is_empty()
        );
        // Its own earlier release (a resubmission) is not differencing.
        assert!(ledger_findings(&g, "r-1", &[], Some(&now), &[earlier]).is_empty());
        // Tables without counts have no cells; without a ledger gate none are kept.
        assert!(checked(&g, "x.csv", b"a,b\n1,2\n", 64).1.is_none());
        let sdc_only = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        assert!(checked(&sdc_only, "t.csv", b"g,n\nA,50\n", 64).1.is_none());
    }

    /// Tables read as RFC 4180 readers (Python's csv, Excel) read them, in any chunking: a
    /// quote inside an unquoted cell is a character, quoted cells may hold separators, line
    /// ends and doubled quotes, a byte-order mark is not part of the first header, and a table
    /// that cannot be read to its end is `uncertain`, never silence.
    #[test]
    fn tables_are_read_as_csv_readers_read_them() {
        let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        type Expected<'a> = Vec<(&'a str, Option<&'a str>)>;
        let cases: Vec<(&[u8], Expected)> = vec![
            // Attack: `5" screen` used to open a quote that swallowed every later row.
            (
                b"product,n\n5\" screen,3\nphone,4\n",
                vec![
                    ("small_count", Some("row 2, column \"n\"")),
                    ("small_count", Some("row 3, column \"n\"")),
                ],
            ),
            (
                b"product,n\r\n5\" screen,3\r\nphone,40\r\n",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
            // Excel's "CSV UTF-8": the count column first, its header after the BOM.
            (
                b"\xEF\xBB\xBFn,group\n3,A\n50,B\n",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
            // Quoted cells with a separator, a line end and doubled quotes.
            (
                b"group,n\n\"North, \"\"inner\"\"\nwest\",4\n\"South\",50\n",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
            // A quote right after a closing quote's text carries on (lenient readers do).
            (
                b"group,n\n\"a\"b,2\n",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
            // Never closed: the rows after it cannot be checked.
            (b"group,n\n\"open,30\nx,2\n", vec![("uncertain", None)]),
            // Still open at the end after an escaped quote; closed by a quote at the very end.
            (
                b"group,n\nA,3\n\"ab\"\"",
                vec![
                    ("small_count", Some("row 2, column \"n\"")),
                    ("uncertain", None),
                ],
            ),
            (
                b"group,n\nA,3\n\"ab\"\"\"",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
            // Blank lines are skipped, and the last row needs no line end.
            (
                b"group,n\n\n\r\nA,3",
                vec![("small_count", Some("row 2, column \"n\""))],
            ),
        ];
        for (data, expected) in cases {
            for chunk in [1, 2, 3, 4096] {
                let got = run(&g, "t.csv", data, chunk);
                assert_eq!(
                    rules(&got),
                    expected,
                    "{:?} in chunks of {chunk}: {got:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
        // A cell longer than the reader's buffer is read whole, in one chunk or many.
        let long = format!("group,n\n\"{}\",3\n", "x".repeat(20_000));
        for chunk in [1, 4096, 1 << 20] {
            let got = run(&g, "t.csv", long.as_bytes(), chunk);
            assert_eq!(
                rules(&got),
                vec![("small_count", Some("row 2, column \"n\""))],
                "chunks of {chunk}"
            );
        }
        // A file that is only part of a byte-order mark is read, not lost.
        assert_eq!(rules(&run(&g, "t.csv", b"\xEF\xBB", 1)), vec![]);
    }

    /// Attack: a wide table kept every count of 5,000 rows (a 15.8 MB CSV took the handler to
    /// 488 MiB). The fingerprint is bounded by its stored size, whatever the width.
    #[test]
    fn a_wide_table_fingerprint_is_bounded_by_bytes() {
        let g = gates(serde_json::json!([{"name": "ledger", "kind": "releaseLedger"}]));
        let columns = 2_000;
        let mut csv = String::from("id");
        for c in 0..columns {
            csv.push_str(&format!(",c{c}_n"));
        }
        csv.push('\n');
        for r in 0..600 {
            csv.push_str(&format!("row{r}"));
            for c in 0..columns {
                csv.push_str(&format!(",{}", 100 + (r * c) % 900));
            }
            csv.push('\n');
        }
        let cells = checked(&g, "wide.csv", csv.as_bytes(), 65536).1.unwrap();
        let stored = serde_json::to_vec(&cells).unwrap().len();
        assert!(
            stored <= table::MAX_FINGERPRINT_BYTES,
            "{stored} bytes stored for a {} byte table",
            csv.len()
        );
        assert!(
            cells.rows.len() < 600 && !cells.complete,
            "{}",
            cells.rows.len()
        );
        assert!(cells.rows.len() > 50, "{}", cells.rows.len());
    }

    #[test]
    fn a_table_fingerprint_is_bounded() {
        let g = gates(serde_json::json!([{"name": "ledger", "kind": "releaseLedger"}]));
        let mut csv = b"id,n\n".to_vec();
        for i in 0..(table::MAX_FINGERPRINT_ROWS + 10) {
            csv.extend_from_slice(format!("{i},{}\n", i % 100 + 10).as_bytes());
        }
        let cells = checked(&g, "big.csv", &csv, 4096).1.unwrap();
        assert_eq!(cells.rows.len(), table::MAX_FINGERPRINT_ROWS);
        assert!(!cells.complete);
    }

    #[test]
    fn findings_are_capped_and_gates_can_be_off() {
        let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
        let mut csv = b"n\n".to_vec();
        for _ in 0..50 {
            csv.extend_from_slice(b"1\n");
        }
        let got = run(&g, "t.csv", &csv, 64);
        assert_eq!(got.len(), table::MAX_FINDINGS_PER_RULE + 1);
        assert_eq!(
            got.last().unwrap().message,
            "and 30 more small_count finding(s) not listed"
        );
        let off = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "mode": "off"}]));
        assert!(GateRunner::new(&off, "t.csv").is_none());
        assert!(GateRunner::new(&[], "t.csv").is_none());
    }

    #[test]
    fn an_exact_re_release_is_shown_as_such() {
        let g =
            gates(serde_json::json!([{"name": "ledger", "kind": "releaseLedger", "mode": "warn"}]));
        let at = |d: u32| {
            chrono::DateTime::from_timestamp(1_800_000_000 + i64::from(d) * 86_400, 0).unwrap()
        };
        let earlier = vec![
            EarlierRelease {
                request_id: "r-2".into(),
                file: "b.csv".into(),
                released_at: at(3),
            },
            EarlierRelease {
                request_id: "r-1".into(),
                file: "a.csv".into(),
                released_at: at(1),
            },
            EarlierRelease {
                request_id: "r-now".into(),
                file: "a.csv".into(),
                released_at: at(5),
            },
        ];
        let got = ledger_findings(&g, "r-now", &earlier, None, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].rule.as_str(), got[0].mode, got[0].message.as_str()),
            (
                "already_released",
                GateMode::Warn,
                "identical to \"a.csv\", released by request r-1 on 2027-01-16 (released 2 times in all)"
            )
        );
        // Only this request's own release (a resubmission of it): nothing to say.
        assert!(ledger_findings(&g, "r-now", &earlier[2..], None, &[]).is_empty());
        assert!(!consults_ledger(&gates(
            serde_json::json!([{"name": "ledger", "kind": "releaseLedger", "mode": "off"}])
        )));
        assert!(consults_ledger(&g));
    }

    #[test]
    fn the_blocking_message_names_file_gate_and_cell() {
        let f = Finding {
            gate: "sdc".into(),
            mode: GateMode::Block,
            rule: "small_count".into(),
            message: "count 3 is below the threshold of 10".into(),
            location: Some("row 3, column \"n\"".into()),
            needs_justification: false,
        };
        let warn = Finding {
            mode: GateMode::Warn,
            ..f.clone()
        };
        assert_eq!(
            blocking_message(&[("t.csv".into(), &f), ("u.csv".into(), &warn)]).unwrap(),
            "blocked by policy: t.csv: count 3 is below the threshold of 10 (sdc, row 3, column \"n\")"
        );
        assert_eq!(blocking_message(&[("u.csv".into(), &warn)]), None);
    }
}
