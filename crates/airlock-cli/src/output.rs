//! How requests read on a terminal; `--json` prints the API's own documents instead.
//!
//! Everything shown on a terminal passes [`inert`] on its way out: titles, justifications,
//! comments, findings and error messages come from other people, and a terminal obeys the
//! escape sequences in them (erasing a line, rewriting what the reviewer sees, writing to the
//! clipboard with OSC 52).

use airlock_api::types::{AuditTrail, RequestEnvelope};
use airlock_api::view::RequestView;

/// `text` made safe to print on a terminal: line breaks and tabs are kept; every other control
/// character (ESC, BEL, CR, backspace, DEL, the C1 set) and the Unicode bidirectional and
/// invisible formatting characters are shown escaped (`\u{1b}`), so they are seen, not obeyed.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden_format = matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        );
        if (c.is_control() && c != '\n' && c != '\t') || hidden_format {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub fn request(envelope: &RequestEnvelope) -> String {
    let r: &RequestView = &envelope.airlock_request;
    let mut out = format!(
        "{}  {} {}  \"{}\"  revision {}\n  created by {} on {}; last change by {} on {}\n",
        r.id,
        r.request_type.as_str(),
        r.status.as_str(),
        r.title,
        r.revision,
        r.created_by.name,
        r.created_at.format("%Y-%m-%d %H:%M UTC"),
        r.updated_by.name,
        r.updated_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(message) = &r.status_message {
        out.push_str(&format!("  {message}\n"));
    }
    if let Some(purpose) = &r.purpose {
        out.push_str(&format!("  purpose: {purpose}\n"));
    }
    if r.files.is_empty() {
        out.push_str("  no files recorded yet\n");
    }
    if r.status == airlock_domain::Status::Draft && r.revision > 1 && r.files.is_empty() {
        out.push_str(&resubmission_hint(r));
    }
    for f in &r.files {
        out.push_str(&format!(
            "  {}  {}  sha256 {}  scan: {}\n",
            f.name,
            bytes(f.size),
            f.sha256.as_deref().map_or("(not sealed yet)", short),
            f.scan.as_ref().map_or("(none yet)", |s| s.result.as_str()),
        ));
        for finding in &f.findings {
            out.push_str(&format!(
                "      {} {:?}: {}{}{}\n",
                finding.gate,
                finding.mode,
                finding.message,
                finding
                    .location
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                if finding.needs_justification {
                    " [needs justification]"
                } else {
                    ""
                }
            ));
        }
        if f.supporting {
            out.push_str("      supporting file: reviewed, never released\n");
        }
        if let Some(acro) = &f.acro {
            out.push_str(&format!("      ACRO {}: {}", acro.uid, acro.status));
            if !acro.failed_checks.is_empty() {
                let checks: Vec<String> = acro
                    .failed_checks
                    .iter()
                    .map(|(check, cells)| format!("{check} {cells}"))
                    .collect();
                out.push_str(&format!(" ({})", checks.join(", ")));
            }
            out.push('\n');
            if let Some(e) = &acro.exception {
                out.push_str(&format!("      ACRO exception: {e}\n"));
            }
        }
        if let Some(j) = &f.justification {
            out.push_str(&format!("      justified by {}: {}\n", j.by, j.text));
        }
        if let Some(d) = &f.description {
            out.push_str(&format!("      about: {d}\n"));
        }
        if let Some(c) = &f.disclosure_controls {
            out.push_str(&format!("      disclosure controls: {c}\n"));
        }
        if f.withheld() && r.status != airlock_domain::Status::Rejected {
            out.push_str("      withheld (rejected in review)\n");
        }
    }
    for review in &r.reviews {
        out.push_str(&format!(
            "  {} by {} (revision {}): {:?}: {}\n",
            if review.consolidation {
                "consolidation"
            } else {
                "review"
            },
            review.reviewer.name,
            review.revision,
            review.decision,
            review.explanation
        ));
        for d in &review.files {
            out.push_str(&format!(
                "      {}: {:?}{}\n",
                d.name,
                d.decision,
                d.comment
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ));
        }
    }
    for c in &r.comments {
        out.push_str(&format!(
            "  {} {} (revision {}{}{}): {}\n",
            c.at.format("%Y-%m-%d %H:%M"),
            c.by.name,
            c.revision,
            c.file
                .as_deref()
                .map(|f| format!(", on {f}"))
                .unwrap_or_default(),
            if c.visibility == airlock_domain::request::Visibility::Reviewers {
                ", reviewers only"
            } else {
                ""
            },
            c.text
        ));
    }
    let actions: Vec<String> = envelope
        .allowed_user_actions
        .iter()
        .map(|a| format!("{a:?}").to_lowercase())
        .collect();
    if !actions.is_empty() {
        out.push_str(&format!("  you can: {}\n", actions.join(", ")));
    }
    out
}

/// One line per request.
pub fn list(requests: &[RequestEnvelope]) -> String {
    if requests.is_empty() {
        return "no requests\n".into();
    }
    let mut out = String::new();
    for e in requests {
        let r = &e.airlock_request;
        out.push_str(&format!(
            "{}  {:<11} {:<6} {:<21} {:<10} {}  {}\n",
            r.id,
            r.workspace_id,
            r.request_type.as_str(),
            r.status.as_str(),
            r.created_by.name,
            r.updated_at.format("%Y-%m-%d %H:%M"),
            r.title
        ));
    }
    out
}

/// One line per gate (state, mode, kind; deadline or who answered), then its findings.
pub fn gates(report: &airlock_domain::request::GateReport) -> String {
    let mut out = format!(
        "request {} revision {} ({})\n",
        report.request_id,
        report.revision,
        report.status.as_str()
    );
    for g in &report.gates {
        let state = serde_json::to_value(g.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let mode = serde_json::to_value(g.mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let mut extra = String::new();
        if let Some(by) = &g.answered_by {
            extra = format!(" (answered by {by})");
        } else if let Some(deadline) = g.deadline {
            extra = format!(" (due {})", deadline.format("%Y-%m-%d %H:%M UTC"));
        }
        out.push_str(&format!(
            "{:<10} {:<24} {} {}{extra}\n",
            state, g.name, mode, g.kind
        ));
        for f in &g.files {
            if let Some(v) = &f.verdict {
                out.push_str(&format!("           {}: {v}\n", f.name));
            }
            for x in &f.findings {
                out.push_str(&format!(
                    "           {}: {} [{}]{}\n",
                    f.name,
                    x.message,
                    x.rule,
                    x.location
                        .as_deref()
                        .map(|l| format!(" at {l}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out
}

/// A changed table, cell by cell, indented under its file.
fn table_changes(t: &airlock_domain::request::table_diff::TableDiff) -> String {
    let mut out = String::new();
    for c in &t.cells {
        out.push_str(&format!(
            "             {} / {}: {} -> {}\n",
            inert(&c.row),
            inert(&c.column),
            inert(&c.before),
            inert(&c.after)
        ));
    }
    let more = t.cells_changed.saturating_sub(t.cells.len());
    if more > 0 {
        out.push_str(&format!("             and {more} more changed cell(s)\n"));
    }
    for (what, rows, count) in [
        ("new row", &t.rows_added, t.rows_added_count),
        ("row removed", &t.rows_removed, t.rows_removed_count),
    ] {
        for r in rows {
            out.push_str(&format!("             {what}: {}\n", inert(r)));
        }
        if count > rows.len() {
            out.push_str(&format!(
                "             and {} more ({what})\n",
                count - rows.len()
            ));
        }
    }
    for c in &t.columns_added {
        out.push_str(&format!("             new column: {}\n", inert(c)));
    }
    for c in &t.columns_removed {
        out.push_str(&format!("             column removed: {}\n", inert(c)));
    }
    if t.cells_changed + t.rows_added_count + t.rows_removed_count == 0
        && t.columns_added.is_empty()
        && t.columns_removed.is_empty()
    {
        out.push_str("             no cell changed (only spacing, quoting or order)\n");
    }
    if !t.complete {
        out.push_str("             (only the first rows were compared: the table is larger than the airlock keeps)\n");
    }
    out
}

/// What changed in a revision, file by file.
pub fn diff(diff: &airlock_domain::request::RevisionDiff) -> String {
    use airlock_domain::request::{FileChange, FileDiff};
    let word = |c: FileChange| match c {
        FileChange::Added => "added",
        FileChange::Changed => "changed",
        FileChange::Identical => "unchanged",
        FileChange::Removed => "removed",
    };
    let list = |files: &[FileDiff], out: &mut String| {
        for f in files {
            let yours = f
                .your_decision
                .map(|d| {
                    let d = serde_json::to_value(d)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    if f.change == FileChange::Identical {
                        format!(" (your vote {d} carries over)")
                    } else {
                        format!(" (you voted {d})")
                    }
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:<10} {}{yours}\n",
                word(f.change),
                inert(&f.name)
            ));
            if let Some(t) = &f.table {
                out.push_str(&table_changes(t));
            }
        }
    };
    let mut out = format!("revision {}\n", diff.revision);
    match &diff.since_previous {
        Some(files) => {
            out.push_str(&format!("since revision {}:\n", diff.revision - 1));
            list(files, &mut out);
        }
        None => out.push_str("the first revision: nothing to compare with\n"),
    }
    if let Some(mine) = &diff.since_your_vote {
        out.push_str(&format!("since your vote on revision {}:\n", mine.revision));
        list(&mine.files, &mut out);
    }
    out
}

/// A pre-flight report: each file's findings, each with what to do about it.
pub fn preflight(report: &airlock_api::types::PreflightReport) -> String {
    let findings: usize = report.files.iter().map(|f| f.findings.len()).sum();
    let mut out = format!(
        "request {}: {} file(s) checked, {findings} finding(s){}\n",
        report.request_id,
        report.files.len(),
        if report.would_block {
            "; a submit now would be BLOCKED"
        } else {
            ""
        }
    );
    for p in &report.problems {
        out.push_str(&format!(
            "  refused by the workspace's limits: {}\n",
            inert(p)
        ));
    }
    for f in report.files.iter().filter(|f| !f.findings.is_empty()) {
        out.push_str(&format!("  {}\n", inert(&f.name)));
        for x in &f.findings {
            let mode = serde_json::to_value(x.mode)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            out.push_str(&format!(
                "    {mode} {} [{}]: {}{}\n",
                inert(&x.gate),
                x.rule,
                inert(&x.message),
                x.location
                    .as_deref()
                    .map(|l| format!(" at {}", inert(l)))
                    .unwrap_or_default()
            ));
            if let Some(fix) = &x.remediation {
                out.push_str(&format!("      what to do: {}\n", inert(fix)));
            }
        }
    }
    for n in &report.not_checked {
        out.push_str(&format!("  not checked before submit: {}\n", inert(n)));
    }
    out
}

pub fn history(trail: &AuditTrail) -> String {
    let mut out = String::new();
    for e in &trail.history {
        let change = match (e.from, e.to) {
            (Some(from), Some(to)) => format!(" {} -> {}", from.as_str(), to.as_str()),
            (None, Some(to)) => format!(" -> {}", to.as_str()),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:>3}  {}  {:<12} {}{}{}\n",
            e.seq,
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.by,
            e.action,
            change,
            e.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    out.push_str(&if trail.verified {
        format!("hash chain: verified ({} entries)\n", trail.history.len())
    } else {
        format!(
            "hash chain: BROKEN at entry {}: the trail was altered\n",
            trail.broken_at.map_or("?".into(), |n| n.to_string())
        )
    });
    out
}

/// What a researcher whose request came back for changes does next: the files are still in the
/// draft; replace or add the ones the reviewers asked about, then submit again.
fn resubmission_hint(r: &RequestView) -> String {
    let previous = r.revision - 1;
    let mut asked: Vec<String> = r
        .reviews
        .iter()
        .filter(|v| v.revision == previous)
        .flat_map(|v| v.files.iter())
        .filter(|d| d.decision != airlock_domain::Decision::Approved)
        .map(|d| match &d.comment {
            Some(c) => format!("{} ({c})", d.name),
            None => d.name.clone(),
        })
        .collect();
    asked.sort();
    asked.dedup();
    let mut hint = format!(
        "  changes were requested in revision {previous}: its files are still in the draft; upload the changed or new ones (`airlock upload {id} PATH...` replaces a file of the same name), then `airlock submit {id}`\n",
        id = r.id
    );
    if !asked.is_empty() {
        hint.push_str(&format!(
            "  the reviewers asked about: {}\n",
            asked.join("; ")
        ));
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::inert;

    /// A changed table reads cell by cell under its file; a cell's text cannot drive the
    /// terminal.
    #[test]
    fn a_changed_table_is_shown_cell_by_cell() {
        use airlock_domain::request::table_diff::{CellChange, TableDiff};
        use airlock_domain::request::{FileChange, FileDiff, RevisionDiff};
        let diff = RevisionDiff {
            revision: 2,
            since_previous: Some(vec![FileDiff {
                name: "counts.csv".into(),
                change: FileChange::Changed,
                sha256: Some("b".into()),
                previous_sha256: Some("a".into()),
                your_decision: None,
                table: Some(TableDiff {
                    label_columns: vec!["region".into()],
                    cells: vec![CellChange {
                        row: "north".into(),
                        column: "n".into(),
                        before: "7\u{1b}[2K".into(),
                        after: "<10".into(),
                    }],
                    cells_changed: 3,
                    rows_removed: vec!["west".into()],
                    rows_removed_count: 1,
                    complete: true,
                    ..TableDiff::default()
                }),
            }]),
            since_your_vote: None,
        };
        let shown = inert(&super::diff(&diff));
        assert!(shown.contains("changed    counts.csv\n"), "{shown}");
        assert!(shown.contains("north / n: 7\\u{1b}[2K -> <10\n"), "{shown}");
        assert!(shown.contains("and 2 more changed cell(s)"), "{shown}");
        assert!(shown.contains("row removed: west"), "{shown}");
    }

    /// Attack: a justification or comment that erases the gate finding's line on the
    /// reviewer's screen and writes to their clipboard.
    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let attack = "fine\r\u{1b}[2K\u{1b}[1A\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{9b}31m\u{7f}\u{8}";
        let shown = inert(attack);
        assert!(
            !shown.chars().any(|c| c.is_control()),
            "nothing a terminal would act on: {shown:?}"
        );
        assert!(shown.starts_with("fine\\u{d}\\u{1b}[2K"), "{shown}");
        assert!(shown.contains("\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}"), "{shown}");
        // Right-to-left overrides that would reorder what is read.
        assert_eq!(inert("a\u{202e}cod.exe"), "a\\u{202e}cod.exe");
        // Ordinary text, line breaks, tabs and non-Latin scripts are untouched.
        let plain = "Région B:\tn = 12\n第二行 — ok";
        assert_eq!(inert(plain), plain);
    }
}
