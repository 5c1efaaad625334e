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
//! - **`identifiers`** and **`secrets`**: direct identifiers and credentials in a file's
//!   content and header, line by line; see [`identifiers`].
//! - **`acro`**: a researcher's ACRO record (`results.json`, `config.json`, `checksums/`)
//!   read as evidence and checked against the sealed files; see [`acro`]. On in `warn` mode
//!   when the policy does not declare it.
//! - **`external`**: another system's check, asked through an `Airlock.GateRequested` event
//!   and answered through the API (see [`External`]).
//!
//! A leaf of the domain: the policy and the request name these types, not the other way round.

use serde::{Deserialize, Serialize};

pub mod acro;
pub mod groups;
pub mod identifiers;
mod ledger;
mod runner;
mod sniff;
pub mod table;
pub mod totals;

pub use acro::*;
pub use identifiers::{ContentRules, modulus_11_valid};
pub use ledger::*;
pub use runner::*;
pub use sniff::*;
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// What an `uncertain` finding (a rule could not run on a file: unreadable, not text,
    /// too large for the rule) does: `block` or `warn`; the gate's own mode when not set.
    /// There is no `off`: a check that did not run is never a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<UncertainMode>,
    #[serde(flatten)]
    pub kind: GateKind,
}

/// What a finding that a rule could not run does (see [`Gate::uncertain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UncertainMode {
    Block,
    Warn,
}

/// The rule of a finding that says a rule could not run on the file.
pub const UNCERTAIN: &str = "uncertain";

impl Gate {
    /// The mode a finding of `rule` takes: the gate's, or for an `uncertain` finding what
    /// the gate says about those.
    pub fn mode_of(&self, rule: &str) -> GateMode {
        match (rule, self.uncertain) {
            (UNCERTAIN, Some(UncertainMode::Block)) => GateMode::Block,
            (UNCERTAIN, Some(UncertainMode::Warn)) => GateMode::Warn,
            _ => self.mode,
        }
    }

    /// Whether this gate's findings hold approval until the researcher justifies the file.
    pub fn needs_justification(&self) -> bool {
        self.mode == GateMode::Warn && self.require_justification
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum GateKind {
    FilePolicy(FilePolicy),
    Disclosure(Disclosure),
    /// Compares each file with what the workspace released before (see [`ledger_findings`]).
    ReleaseLedger {},
    External(External),
    /// ACRO's record as evidence (see [`acro`]); on in `warn` mode when not declared.
    Acro {},
    /// Direct identifiers in content: NHS, CHI and National Insurance numbers, e-mail
    /// addresses, postcodes, genotypes, DICOM patient tags, EXIF GPS (see [`identifiers`]).
    Identifiers(ContentRules),
    /// Credentials in content: private keys, cloud keys, tokens, assigned passwords.
    Secrets(ContentRules),
}

/// A gate run by another system (an organisation's Logic App or function): once every file is
/// sealed and scanned, the airlock publishes `Airlock.GateRequested` with read links valid
/// until the deadline; the gate answers with a verdict per file through
/// `POST .../requests/{id}/gates/{name}` as a service identity with the `AirlockGate` role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Archives {
    #[default]
    Allow,
    Block,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FilePolicy {
    /// Lower-case extensions without the dot (`csv`, `png`); empty allows any.
    pub allowed_extensions: Vec<String>,
    /// Data rows (after the header) a CSV or TSV file may have.
    pub max_csv_rows: Option<u64>,
    pub archives: Archives,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Suppressed cells (blank, `*`, `<10`, `[REDACTED]`, ...) that a total column or total
    /// row gives back exactly, or narrows to less than `threshold` together (see
    /// [`totals`]).
    pub check_totals: bool,
    /// k-anonymity on record-level tables (no count column): each combination of the
    /// quasi-identifier columns' values must be shared by at least this many rows. `None`:
    /// `threshold`; 0 turns it off (see [`groups`]).
    pub k_anonymity: Option<u64>,
    /// The quasi-identifier columns (headers, any case); empty: detected by their headers
    /// (`age_band`, `sex`, `region`, `ethnicity`, dates, ...) when a table has two or more.
    pub quasi_identifiers: Vec<String>,
    /// Tables of one request that share label columns, so that joining them gives a finer
    /// table than either (ACRO's linked tables): shown to the reviewer, in `warn` mode
    /// whatever the gate's mode, since only a person can judge them.
    pub linked_tables: bool,
}

impl Disclosure {
    /// The k of k-anonymity, or `None` when it is off.
    pub fn k(&self) -> Option<u64> {
        match self.k_anonymity {
            None => Some(self.threshold),
            Some(0) => None,
            Some(k) => Some(k),
        }
    }
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
            check_totals: true,
            k_anonymity: None,
            quasi_identifiers: Vec::new(),
            linked_tables: true,
        }
    }
}

/// A cell of a table: `row` counts the file's records from 1, the header being row 1 (as
/// `location` says it); `column` is the header's text and `columnIndex` its position from 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub row: u64,
    pub column_index: usize,
    pub column: String,
}

impl Cell {
    /// `row 4, column "n"`: the words a finding's `location` uses.
    pub fn describe(&self) -> String {
        format!("row {}, column {:?}", self.row, self.column)
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
    /// The table cell, when the finding is about one (the same place as `location`, for a
    /// page that highlights it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<Cell>,
    /// What the researcher can do about it, in words ("round the counts in column n to a
    /// multiple of 5").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// A warning the researcher must justify before the request can be approved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_justification: bool,
}

/// The rule of a finding that two tables of a request can be joined.
pub const LINKED_TABLES: &str = "linked_tables";

/// The disclosure gate that links tables: the first one that is on with `linkedTables`.
pub fn linking_gate(gates: &[Gate]) -> Option<(Gate, Disclosure)> {
    gates.iter().find_map(|g| match &g.kind {
        GateKind::Disclosure(d) if g.mode != GateMode::Off && d.linked_tables => {
            Some((g.clone(), d.clone()))
        }
        _ => None,
    })
}

/// Tables (name, label columns) that can be joined into a finer table than either: they
/// share at least one label column and each has one the other lacks (`age_band, sex` and
/// `age_band, region` give `age_band, sex, region` bounds). One `warn` finding per table and
/// partner, whatever the gate's mode: whether the join discloses is for a person to judge.
pub fn linked_tables(tables: &[(&str, &[String])], gate: &Gate) -> Vec<(String, Finding)> {
    let mut out = Vec::new();
    for (i, (a, la)) in tables.iter().enumerate() {
        for (j, (b, lb)) in tables.iter().enumerate() {
            if i == j {
                continue;
            }
            let shared: Vec<&String> = la.iter().filter(|c| lb.contains(c)).collect();
            let only_a = la.iter().any(|c| !lb.contains(c));
            let only_b = lb.iter().any(|c| !la.contains(c));
            if shared.is_empty() || !only_a || !only_b {
                continue;
            }
            let mut union: Vec<&String> = la.iter().collect();
            union.extend(lb.iter().filter(|c| !la.contains(c)));
            union.sort();
            let names = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let mut finding = Finding {
                gate: gate.name.clone(),
                mode: GateMode::Warn,
                rule: LINKED_TABLES.into(),
                message: format!(
                    "joins with {b} on {}: together they break counts down by {}",
                    names(&shared),
                    names(&union)
                ),
                location: Some(format!("with {b}")),
                cell: None,
                remediation: None,
                needs_justification: false,
            };
            finding.remediation = remediation(&finding, Some(gate));
            out.push((a.to_string(), finding));
        }
    }
    out
}

/// What a researcher can do about a finding, from its rule and its gate's parameters.
pub fn remediation(finding: &Finding, gate: Option<&Gate>) -> Option<String> {
    let column = finding
        .cell
        .as_ref()
        .map(|c| format!(" in column {:?}", c.column))
        .unwrap_or_default();
    let disclosure = gate.and_then(|g| match &g.kind {
        GateKind::Disclosure(d) => Some(d),
        _ => None,
    });
    let text = match finding.rule.as_str() {
        "small_count" => {
            let threshold = disclosure.map_or(10, |d| d.threshold);
            format!(
                "suppress or merge the cells below {threshold}{column} (combine the small groups with others, or show them as \"<{threshold}\")"
            )
        }
        "unrounded" => match disclosure.and_then(|d| d.rounding_base) {
            Some(base) => format!("round the counts{column} to a multiple of {base}"),
            None => format!("round the counts{column}"),
        },
        "zero" => format!(
            "a zero{column} can disclose that nobody has a characteristic: suppress it, or merge its group with another"
        ),
        "dominance" | "p_percent" => format!(
            "one or two contributors dominate this total{column}: merge the group with others or suppress the total"
        ),
        "degrees_of_freedom" => "the model has too few residual degrees of freedom: fit it on more records or with fewer parameters, or export a summary instead".into(),
        // Set where the rule stopped, which knows why; this is the fallback.
        UNCERTAIN => "make the file readable by the check (UTF-8 text, a table of a sensible size), or ask a reviewer to read it".into(),
        "executable" => "this is a program, not a result: export the results it produced instead".into(),
        "type_mismatch" => "the content is not what the name says: give the file the extension of what it is, or export it in the format its name claims".into(),
        "extension" => "this kind of file is not accepted here: export it in one of the formats the workspace allows (ask an airlock manager which)".into(),
        "archive" | "nested_archive" | "archive_unchecked" | "archive_entry_name" | "polyglot" => {
            "export the files themselves rather than an archive, so that each one is checked".into()
        }
        "encrypted_entry" => "encrypted contents cannot be checked: export them unencrypted".into(),
        "csv_rows" => "the table has more rows than this workspace accepts (record-level data?): export an aggregate instead".into(),
        "suppression_recoverable" => format!(
            "a suppressed cell{column} can be worked out from the table's totals: suppress more cells in the same row and column (secondary suppression), or leave the totals out"
        ),
        "k_anonymity" => "some combinations of the identifying columns (age band, sex, region, dates, ...) belong to fewer people than the threshold: coarsen them (wider bands, larger areas) or export an aggregate instead of rows".into(),
        "linked_tables" => "these tables share label columns and could be joined into a finer table than either: check their cells together (a small count can appear in the join), or export one table with the combined breakdown, checked as a whole".into(),
        "differencing" => "this table differs from one already released by a few cells, and subtracting the two reveals small counts: use the same groups as the earlier release, or suppress the differing cells".into(),
        "already_released" => "this exact table was released before: there is no need to export it again".into(),
        "nhs_number" | "chi_number" | "ni_number" | "email" | "postcode" | "date_with_identifier" => "remove the column or the text that identifies people (or replace it with a pseudonymous id that never leaves the workspace): outputs carry aggregates, not identifiers".into(),
        "vcf_genotypes" => "export summary statistics (allele frequencies) instead of per-sample genotype columns".into(),
        "dicom" => "de-identify the image first (remove or blank the patient tags, e.g. with the workspace's DICOM anonymiser), or export a derived result".into(),
        "exif_gps" => "strip the image's metadata (for example re-save it without EXIF) before exporting it".into(),
        "private_key" | "cloud_key" | "bearer_token" | "password" => "remove the credential from the file (read it from the environment or a key vault instead) and treat it as exposed: ask for it to be rotated".into(),
        "acro_fail" => "suppress or merge the cells ACRO flagged and run ACRO again, or record an exception with acro.add_exception() saying why the output is safe".into(),
        "acro_modified" => "export the file exactly as ACRO checked it, or run ACRO again on the version you want to export".into(),
        "acro_threshold" => "run ACRO again with its safe_threshold at least this workspace's minimum cell count (named above), and upload the config.json it writes beside results.json".into(),
        "acro_unreadable" | "acro_partial" => "upload ACRO's results.json exactly as acro.finalise() wrote it; split a very large session into several requests".into(),
        _ => return None,
    };
    Some(text)
}

/// Sets each finding's remediation from its gate (the gate named in the finding).
pub fn add_remediation(findings: &mut [Finding], gates: &[Gate]) {
    for f in findings.iter_mut().filter(|f| f.remediation.is_none()) {
        f.remediation = remediation(f, gates.iter().find(|g| g.name == f.gate));
    }
}

#[cfg(test)]
mod tests;
