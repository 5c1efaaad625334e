//! The release ledger's check: a table that differs from an earlier released one by a few
//! cells can be subtracted back to small counts.

use super::*;

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
pub(super) const MAX_DIFFERENCES: usize = 10;

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
        let threshold = workspace_threshold(gates);
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
    let mut findings: Vec<Finding> = ledgers
        .iter()
        .flat_map(|g| {
            found.iter().map(|(rule, message, location)| Finding {
                gate: g.name.clone(),
                mode: g.mode,
                rule: rule.to_string(),
                message: message.clone(),
                location: location.clone(),
                cell: None,
                remediation: None,
                needs_justification: g.needs_justification(),
            })
        })
        .collect();
    super::add_remediation(&mut findings, gates);
    findings
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
