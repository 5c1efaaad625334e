//! Disclosure checks on a CSV/TSV table, read line by line as it streams past: rows counted,
//! count cells checked against the threshold, rounding and zero rules, magnitude cells checked
//! for dominance and p-percent where the table carries the largest contributions, degrees of
//! freedom checked, and the cells kept (bounded) as the table's fingerprint for the release
//! ledger. Memory is one row plus the capped findings and fingerprint.
//!
//! Cells are read as RFC 4180 readers (Python's `csv`, Excel) read them: a quote opens a
//! quoted cell only as a cell's first character, `""` inside one is a quote, and a quote inside
//! an unquoted cell (`5" screen`) is just a character. A UTF-8 byte-order mark (Excel's "CSV
//! UTF-8") is not part of the first header. A table that cannot be read to its end (a quoted
//! cell never closed) is an `uncertain` finding, never a silent pass. The reading is
//! csv-core's (the `csv` crate's engine: streaming, no allocation); blank lines are skipped as
//! it and Python's `csv` skip them, and `\r\n`, `\n` and `\r` all end a row.

use super::{Disclosure, Finding, Gate, GateKind, GateMode, UNCERTAIN};
use serde::{Deserialize, Serialize};

/// Findings kept per rule and file; beyond this, one more finding says how many were left out.
pub(super) const MAX_FINDINGS_PER_RULE: usize = 20;
/// A row longer than this in a table is not checked (its finding says so).
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Rows kept in a table's fingerprint (OpenSAFELY's row limit for released tables is 5,000;
/// the ledger keeps the first this many).
pub const MAX_FINGERPRINT_ROWS: usize = 5_000;
/// The fingerprint's size as stored (JSON), at most: rows beyond it are not kept, however
/// wide the table. Well under Cosmos DB's 2 MB item limit, and the handler's memory for it
/// stays a small multiple of this whatever the file's size.
pub const MAX_FINGERPRINT_BYTES: usize = 1024 * 1024;
/// A row's label longer than this is cut (it identifies the row; it is not the data).
const MAX_KEY_CHARS: usize = 160;

/// A small table as it was sealed, every cell as text (trimmed), for comparing a revision's
/// table with the previous one's cell by cell: at most [`MAX_FINGERPRINT_ROWS`] rows and
/// [`MAX_FINGERPRINT_BYTES`] of cells; beyond either it is marked incomplete and no more is
/// kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSnapshot {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// False when the table had more rows or bytes than were kept, or could not be read to
    /// its end.
    pub complete: bool,
}

/// The cells of a table that matter for differencing: each row's label (its non-count cells)
/// and its counts, normalised (trimmed, lower-case headers), so the same table written with
/// other spacing or column order compares equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableCells {
    /// Headers of the label columns, lower-case, sorted.
    pub key_columns: Vec<String>,
    /// Headers of the count columns, lower-case, in the order of each row's `counts`.
    pub count_columns: Vec<String>,
    pub rows: Vec<TableRow>,
    /// False when the table had more rows than were kept.
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    /// The label cells in `key_columns` order, joined with ` | `.
    pub key: String,
    /// `None` where the cell is not a count (suppressed, `*`, `<5`).
    pub counts: Vec<Option<u64>>,
}

/// Columns whose header names degrees of freedom (ACRO checks residual degrees of freedom).
const DOF_COLUMNS: &[&str] = &[
    "df",
    "dof",
    "df_resid",
    "df_residual",
    "residual_df",
    "degrees_of_freedom",
];

/// A table's magnitude column with the columns giving its largest contributions.
#[derive(Clone, Debug)]
struct Magnitude {
    total: usize,
    /// `X_top1`, `X_top2`, ... (or `X_max`, `X_max2`) in rank order.
    top: Vec<usize>,
}

/// Follows a cell's raw bytes as csv-core consumes them, for the one thing csv-core does not
/// say: whether the stream ended inside a quoted cell (it then hands back the rest of the
/// stream as that one cell, and every row after the quote would go unchecked).
#[derive(Clone, Copy, Debug, Default)]
struct QuoteWatch {
    /// No byte of the cell seen yet (line ends skipped between records don't count).
    started: bool,
    /// The cell opened with a quote.
    quoted: bool,
    /// A quote that was not one of a doubled pair has closed it.
    closed: bool,
    /// Quotes in the current run: an even run inside a quoted cell is escaped quotes.
    run: usize,
}

impl QuoteWatch {
    /// Whether this byte opened a quoted cell.
    fn byte(&mut self, b: u8) -> bool {
        if !self.started {
            if b == b'\r' || b == b'\n' {
                return false;
            }
            self.started = true;
            self.quoted = b == b'"';
            return self.quoted;
        }
        if self.quoted && !self.closed {
            if b == b'"' {
                self.run += 1;
            } else {
                self.closed = self.run % 2 == 1;
                self.run = 0;
            }
        }
        false
    }

    /// Whether these bytes opened a quoted cell. Once a cell has started without a quote, or
    /// its quotes have closed, nothing more can change until the next cell: the bytes are
    /// not looked at one by one.
    fn bytes(&mut self, bytes: &[u8]) -> bool {
        let mut opened = false;
        for &b in bytes {
            if self.started && (!self.quoted || self.closed) {
                break;
            }
            opened |= self.byte(b);
        }
        opened
    }

    fn left_open(&self) -> bool {
        self.quoted && !self.closed && self.run % 2 == 0
    }
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(super) struct TableScan {
    rules: Vec<(String, Disclosure)>,
    /// The CSV reader (RFC 4180, as lenient as Python's `csv`).
    reader: csv_core::Reader,
    /// The row being read: its finished cells (the first `row_len` of `row_cells`, whose
    /// buffers are reused row after row), the cell being read, and its size.
    row_cells: Vec<Vec<u8>>,
    row_len: usize,
    cell: Vec<u8>,
    /// The row's cells as trimmed text, reused row after row like `row_cells`.
    texts: Vec<String>,
    row_bytes: usize,
    quotes: QuoteWatch,
    /// The row number where the quoted cell being read opened.
    quote_opened_on: u64,
    /// The first bytes of the stream while it may still be a byte-order mark.
    start: Option<Vec<u8>>,
    fingerprint_bytes: usize,
    too_long: bool,
    header: Option<Vec<String>>,
    /// For each disclosure gate, the indices of its count columns.
    columns: Vec<Vec<usize>>,
    magnitudes: Vec<Magnitude>,
    dof: Vec<usize>,
    rows: u64,
    pub(super) data_rows: u64,
    pub(super) findings: Vec<Finding>,
    left_out: std::collections::BTreeMap<(String, String), usize>,
    /// Kept when a release-ledger gate is on.
    pub(super) cells: Option<TableCells>,
    key_indices: Vec<usize>,
    count_indices: Vec<usize>,
    /// Kept for a revision's cell-level diff, with its size so far.
    pub(super) snapshot: Option<TableSnapshot>,
    snapshot_bytes: usize,
    /// Suppressed cells a total gives back, when a gate checks totals.
    totals: Option<super::totals::Totals>,
    /// Per disclosure gate, its k-anonymity count when the table is record-level.
    groups: Vec<Option<super::groups::Groups>>,
    /// Per column: a number was seen in it (the label columns are the others).
    numeric: Vec<bool>,
    /// The columns that may be labels (by their headers) when a gate links tables; those
    /// whose cells turn out to be numbers are not.
    label_candidates: Option<Vec<usize>>,
    /// The table's label columns (lower case), for linking the tables of one request.
    pub(super) labels: Option<Vec<String>>,
}

impl TableScan {
    pub(super) fn new(separator: u8, gates: &[Gate], snapshot: bool) -> TableScan {
        let rules = gates
            .iter()
            .filter_map(|g| match &g.kind {
                GateKind::Disclosure(d) => Some((g.name.clone(), d.clone())),
                _ => None,
            })
            .collect();
        let fingerprint = gates
            .iter()
            .any(|g| matches!(g.kind, GateKind::ReleaseLedger {}));
        TableScan {
            rules,
            reader: csv_core::ReaderBuilder::new().delimiter(separator).build(),
            row_cells: Vec::new(),
            row_len: 0,
            texts: Vec::new(),
            cell: Vec::new(),
            row_bytes: 0,
            quotes: QuoteWatch::default(),
            quote_opened_on: 0,
            start: Some(Vec::new()),
            fingerprint_bytes: 0,
            too_long: false,
            header: None,
            columns: Vec::new(),
            magnitudes: Vec::new(),
            dof: Vec::new(),
            rows: 0,
            data_rows: 0,
            findings: Vec::new(),
            left_out: Default::default(),
            cells: fingerprint.then(|| TableCells {
                complete: true,
                ..Default::default()
            }),
            key_indices: Vec::new(),
            count_indices: Vec::new(),
            snapshot: snapshot.then(|| TableSnapshot {
                complete: true,
                ..Default::default()
            }),
            snapshot_bytes: 0,
            totals: None,
            groups: Vec::new(),
            numeric: Vec::new(),
            label_candidates: None,
            labels: None,
        }
    }

    /// Whether a snapshot is all this scan is for and it is already full: reading on would
    /// add nothing.
    pub(super) fn only_a_full_snapshot(&self) -> bool {
        self.rules.is_empty()
            && self.cells.is_none()
            && self.snapshot.as_ref().is_some_and(|s| !s.complete)
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        let mut chunk = chunk;
        // Hold the first bytes until they are known not to be, or to be, a byte-order mark.
        if let Some(start) = &mut self.start {
            let take = (BOM.len() - start.len()).min(chunk.len());
            start.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if start.len() < BOM.len() && BOM.starts_with(start) {
                return;
            }
            let held = self.start.take().unwrap_or_default();
            if held != BOM {
                self.read(&held);
            }
        }
        if !chunk.is_empty() {
            self.read(chunk);
        }
    }

    /// Bytes of the table through the reader; an empty input is the end of the stream.
    fn read(&mut self, mut input: &[u8]) {
        let end = input.is_empty();
        let mut out = [0u8; 8 * 1024];
        loop {
            // csv-core reads an empty input as the end of the stream.
            if input.is_empty() && !end {
                return;
            }
            let (result, read, written) = self.reader.read_field(input, &mut out);
            if self.quotes.bytes(&input[..read]) {
                self.quote_opened_on = self.rows + 1;
            }
            input = &input[read..];
            let room = MAX_LINE_BYTES.saturating_sub(self.row_bytes);
            if written > room {
                self.too_long = true;
            }
            let kept = written.min(room);
            self.cell.extend_from_slice(&out[..kept]);
            self.row_bytes += kept;
            match result {
                csv_core::ReadFieldResult::InputEmpty | csv_core::ReadFieldResult::End => return,
                csv_core::ReadFieldResult::OutputFull => {}
                csv_core::ReadFieldResult::Field { record_end } => {
                    if end && self.quotes.left_open() {
                        self.unreadable_to_the_end();
                    }
                    if self.row_len == self.row_cells.len() {
                        self.row_cells.push(Vec::new());
                    }
                    let finished = &mut self.row_cells[self.row_len];
                    finished.clear();
                    finished.extend_from_slice(&self.cell);
                    self.cell.clear();
                    self.row_len += 1;
                    self.quotes = QuoteWatch::default();
                    if record_end {
                        self.end_line();
                    }
                }
            }
        }
    }

    /// A quoted cell never closed: the reader took the rest of the stream as that cell.
    fn unreadable_to_the_end(&mut self) {
        let message = format!(
            "the table could not be read to its end: a quoted cell opened on row {} is never closed, so the rows after it were not checked",
            self.quote_opened_on
        );
        self.uncertain(
            message,
            "fix the quoting (a quoted cell is never closed) so that every row can be checked",
        );
        if let Some(cells) = &mut self.cells {
            cells.complete = false;
        }
        if let Some(snapshot) = &mut self.snapshot {
            snapshot.complete = false;
        }
    }

    pub(super) fn finish(mut self) -> TableScan {
        if let Some(held) = self.start.take()
            && held != BOM
            && !held.is_empty()
        {
            self.read(&held);
        }
        self.read(&[]);
        self.whole_table_rules();
        for ((gate, rule), n) in std::mem::take(&mut self.left_out) {
            self.findings.push(Finding {
                gate,
                mode: GateMode::Block,
                rule: rule.clone(),
                message: format!("and {n} more {rule} finding(s) not listed"),
                location: None,
                cell: None,
                remediation: None,
                needs_justification: false,
            });
        }
        if let Some(cells) = &mut self.cells
            && cells.count_columns.is_empty()
        {
            // No counts, nothing to difference.
            self.cells = None;
        }
        self
    }

    fn header_row(&mut self, cells: Vec<String>) {
        let lower: Vec<String> = cells
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        self.columns = self
            .rules
            .iter()
            .map(|(_, d)| {
                lower
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| is_count_column(h, &d.count_columns))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        // `X` with `X_top1` (or `X_max`): a magnitude and its largest contributions.
        self.magnitudes = lower
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let rank =
                    |names: &[String]| names.iter().find_map(|n| lower.iter().position(|x| x == n));
                let top: Vec<usize> = (1..=5)
                    .map_while(|k| {
                        let mut names = vec![format!("{h}_top{k}")];
                        names.push(if k == 1 {
                            format!("{h}_max")
                        } else {
                            format!("{h}_max{k}")
                        });
                        rank(&names)
                    })
                    .collect();
                (!top.is_empty()).then_some(Magnitude { total: i, top })
            })
            .collect();
        self.dof = lower
            .iter()
            .enumerate()
            .filter(|(_, h)| DOF_COLUMNS.contains(&h.as_str()))
            .map(|(i, _)| i)
            .collect();
        if let Some(fp) = &mut self.cells {
            let is_count = |i: usize| self.columns.iter().any(|c| c.contains(&i));
            let contribution = |i: usize| {
                self.magnitudes
                    .iter()
                    .any(|m| m.total == i || m.top.contains(&i))
            };
            let default_counts = Disclosure::default().count_columns;
            let mut keys: Vec<usize> = (0..lower.len())
                .filter(|&i| !is_count(i) && !is_count_column(&lower[i], &default_counts))
                .filter(|&i| !contribution(i) && !self.dof.contains(&i))
                .filter(|&i| !looks_numeric_header(&lower[i]))
                .collect();
            keys.sort_by(|a, b| lower[*a].cmp(&lower[*b]));
            let default_counts = Disclosure::default().count_columns;
            let mut counts: Vec<usize> = (0..lower.len())
                .filter(|&i| is_count(i) || is_count_column(&lower[i], &default_counts))
                .collect();
            counts.sort_by(|a, b| lower[*a].cmp(&lower[*b]));
            fp.key_columns = keys.iter().map(|&i| lower[i].clone()).collect();
            fp.count_columns = counts.iter().map(|&i| lower[i].clone()).collect();
            self.key_indices = keys;
            self.count_indices = counts;
        }
        // Columns that are not counts whatever their cells hold.
        let mut not_counts: Vec<usize> = self.dof.clone();
        for m in &self.magnitudes {
            not_counts.push(m.total);
            not_counts.extend(&m.top);
        }
        not_counts.extend((0..lower.len()).filter(|&i| looks_numeric_header(&lower[i])));
        if self.rules.iter().any(|(_, d)| d.check_totals) {
            self.totals = Some(super::totals::Totals::new(&lower, &not_counts));
        }
        self.groups = self
            .rules
            .iter()
            .enumerate()
            .map(|(g, (_, d))| {
                // Record-level only: a table with counts is checked by its counts.
                if d.k().is_none() || !self.columns[g].is_empty() {
                    return None;
                }
                let columns = super::groups::quasi_identifier_columns(&lower, &d.quasi_identifiers);
                (!columns.is_empty()).then(|| super::groups::Groups::new(columns, &cells))
            })
            .collect();
        self.numeric = vec![false; lower.len()];
        if self.rules.iter().any(|(_, d)| d.linked_tables) {
            let counts: Vec<usize> = (0..lower.len())
                .filter(|&i| {
                    self.columns.iter().any(|c| c.contains(&i))
                        || is_count_column(&lower[i], &Disclosure::default().count_columns)
                        || super::totals::is_total_header(&lower[i])
                })
                .collect();
            self.label_candidates = Some(
                (0..lower.len())
                    .filter(|i| !counts.contains(i) && !not_counts.contains(i))
                    .collect(),
            );
        }
        self.header = Some(cells);
    }

    /// The rules that need the whole table (totals, small groups) and the table's labels,
    /// once it has been read.
    fn whole_table_rules(&mut self) {
        let header = self.header.clone().unwrap_or_default();
        if let Some(totals) = self.totals.take() {
            let (found, too_large) = totals.finish();
            for (gate, d) in self.rules.clone() {
                if !d.check_totals {
                    continue;
                }
                for (r, blank) in &found {
                    if r.discloses(d.threshold, *blank) {
                        let cell = cell_at(&header, r.row, r.column);
                        self.push(
                            &gate,
                            "suppression_recoverable",
                            r.message(d.threshold),
                            Some(cell),
                        );
                    }
                }
                if too_large {
                    self.push_uncertain(
                        &gate,
                        format!(
                            "the table has suppressed cells and is too large (over {} cells) to check whether a total row gives them back",
                            super::totals::MAX_KEPT_CELLS
                        ),
                        "split the table into smaller ones so that its totals can be checked, or remove the total row",
                    );
                }
            }
        }
        for (g, groups) in std::mem::take(&mut self.groups).into_iter().enumerate() {
            let Some(groups) = groups else { continue };
            let (gate, d) = self.rules[g].clone();
            let Some(k) = d.k() else { continue };
            let column = groups.first_column();
            match groups.finish(k) {
                Ok(small) => {
                    for group in small {
                        let cell = cell_at(&header, group.first_row, column);
                        self.push(
                            &gate,
                            "k_anonymity",
                            format!(
                                "{} row(s) share {}: fewer than {k}",
                                group.size,
                                group.values.join(", ")
                            ),
                            Some(cell),
                        );
                    }
                }
                Err(why) => self.push_uncertain(
                    &gate,
                    why,
                    "export an aggregate (counts by the identifying columns) rather than record-level rows",
                ),
            }
        }
        // Label columns are those whose cells are not numbers (or are years, ages, codes).
        if let Some(candidates) = self.label_candidates.take() {
            let labels: Vec<String> = candidates
                .into_iter()
                .filter_map(|i| {
                    let name = header.get(i)?.trim().to_ascii_lowercase();
                    let numeric = self.numeric.get(i).copied().unwrap_or(false);
                    (!numeric || super::totals::is_label_header(&name)).then_some(name)
                })
                .collect();
            self.labels = (!labels.is_empty() && self.data_rows > 0).then_some(labels);
        }
    }

    fn end_line(&mut self) {
        let n = std::mem::take(&mut self.row_len);
        self.row_bytes = 0;
        self.rows += 1;
        if std::mem::take(&mut self.too_long) {
            let message = format!(
                "row {} is longer than {MAX_LINE_BYTES} bytes and was not checked",
                self.rows
            );
            self.uncertain(
                message,
                "shorten the row's cells or split the table, so that every row can be checked",
            );
            return;
        }
        let raw = &self.row_cells[..n];
        if raw.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            return;
        }
        // The cells as text, in buffers kept from row to row: no allocation per cell.
        let mut texts = std::mem::take(&mut self.texts);
        if texts.len() < n {
            texts.resize(n, String::new());
        }
        for (text, c) in texts.iter_mut().zip(raw) {
            text.clear();
            // Valid UTF-8 (nearly every cell) is checked without building a lossy copy.
            match std::str::from_utf8(c) {
                Ok(valid) => text.push_str(trim(valid)),
                Err(_) => text.push_str(trim(&String::from_utf8_lossy(c))),
            }
        }
        self.row(&texts[..n]);
        self.texts = texts;
    }

    /// One row's cells, read.
    fn row(&mut self, cells: &[String]) {
        if let Some(snapshot) = &mut self.snapshot
            && snapshot.complete
        {
            // Each cell's text with JSON's quotes and comma.
            let bytes: usize = cells.iter().map(|c| c.len() + 3).sum::<usize>() + 2;
            if snapshot.rows.len() >= MAX_FINGERPRINT_ROWS
                || self.snapshot_bytes + bytes > MAX_FINGERPRINT_BYTES
            {
                snapshot.complete = false;
            } else if self.header.is_none() {
                self.snapshot_bytes += bytes;
                snapshot.header = cells.to_vec();
            } else {
                self.snapshot_bytes += bytes;
                snapshot.rows.push(cells.to_vec());
            }
        }
        if self.header.is_none() {
            self.header_row(cells.to_vec());
            return;
        }
        self.data_rows += 1;
        if let Some(totals) = &mut self.totals {
            totals.row(self.rows, cells);
        }
        for groups in self.groups.iter_mut().flatten() {
            groups.row(self.rows, cells);
        }
        if self.label_candidates.is_some() {
            for (i, c) in cells.iter().enumerate() {
                if let Some(seen) = self.numeric.get_mut(i)
                    && !*seen
                    && parse_number(c).is_some()
                {
                    *seen = true;
                }
            }
        }
        // Lent out for the row (`push` needs `self`), rather than copied for every row.
        let header = self.header.take().unwrap_or_default();
        let rules = std::mem::take(&mut self.rules);
        let columns = std::mem::take(&mut self.columns);
        let magnitudes = std::mem::take(&mut self.magnitudes);
        let dof = std::mem::take(&mut self.dof);
        let row = self.rows;
        // A finding's cell is named only when there is a finding.
        let at = |column: usize| Some(cell_at(&header, row, column));
        for (g, (gate, d)) in rules.iter().enumerate() {
            for &column in &columns[g] {
                let Some(value) = cells.get(column).and_then(|c| parse_count(c)) else {
                    continue;
                };
                if value == 0 {
                    if d.zeros_disclose {
                        self.push(gate, "zero", "a zero count".into(), at(column));
                    }
                    continue;
                }
                if value < d.threshold {
                    self.push(
                        gate,
                        "small_count",
                        format!("count {value} is below the threshold of {}", d.threshold),
                        at(column),
                    );
                }
                if let Some(base) = d.rounding_base.filter(|b| *b > 1)
                    && value % base != 0
                {
                    self.push(
                        gate,
                        "unrounded",
                        format!("count {value} is not rounded to a multiple of {base}"),
                        at(column),
                    );
                }
            }
            for m in &magnitudes {
                self.magnitude_rules(gate, d, m, cells, || at(m.total));
            }
            if d.dof_threshold > 0 {
                for &column in &dof {
                    let Some(df) = cells.get(column).and_then(|c| parse_number(c)) else {
                        continue;
                    };
                    if df < d.dof_threshold as f64 {
                        self.push(
                            gate,
                            "degrees_of_freedom",
                            format!(
                                "{df} residual degrees of freedom; at least {} are needed",
                                d.dof_threshold
                            ),
                            at(column),
                        );
                    }
                }
            }
        }
        self.header = Some(header);
        self.rules = rules;
        self.columns = columns;
        self.magnitudes = magnitudes;
        self.dof = dof;
        if let Some(fp) = &mut self.cells {
            // What the row adds to the stored fingerprint: its label, and each count (at most
            // 20 digits) or null, with JSON's punctuation.
            let row_bytes = 24
                + self
                    .key_indices
                    .iter()
                    .map(|&i| cells.get(i).map_or(0, |c| c.len() + 3))
                    .sum::<usize>()
                    .min(MAX_KEY_CHARS * 4)
                + self
                    .count_indices
                    .iter()
                    .map(|&i| cells.get(i).map_or(5, |c| c.len().clamp(4, 20) + 1))
                    .sum::<usize>();
            if fp.rows.len() >= MAX_FINGERPRINT_ROWS
                || self.fingerprint_bytes + row_bytes > MAX_FINGERPRINT_BYTES
            {
                fp.complete = false;
            } else {
                self.fingerprint_bytes += row_bytes;
                let key: String = self
                    .key_indices
                    .iter()
                    .map(|&i| {
                        cells
                            .get(i)
                            .map(|c| c.trim().to_lowercase())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
                    .chars()
                    .take(MAX_KEY_CHARS)
                    .collect();
                let counts = self
                    .count_indices
                    .iter()
                    .map(|&i| cells.get(i).and_then(|c| parse_count(c)))
                    .collect();
                fp.rows.push(TableRow { key, counts });
            }
        }
    }

    /// Dominance (n, k) and p-percent on a magnitude cell whose largest contributions are in
    /// the row (ACRO's `safe_nk_n`/`safe_nk_k` and `safe_pratio_p`).
    fn magnitude_rules(
        &mut self,
        gate: &str,
        d: &Disclosure,
        m: &Magnitude,
        cells: &[String],
        location: impl Fn() -> Option<super::Cell>,
    ) {
        let Some(total) = cells.get(m.total).and_then(|c| parse_number(c)) else {
            return;
        };
        let top: Vec<f64> = m
            .top
            .iter()
            .map_while(|&i| cells.get(i).and_then(|c| parse_number(c)))
            .map(f64::abs)
            .collect();
        if total <= 0.0 || top.is_empty() {
            return;
        }
        if d.dominance_n > 0 && d.dominance_k_percent > 0 {
            let n = (d.dominance_n as usize).min(top.len());
            let share: f64 = top[..n].iter().sum::<f64>() / total;
            if share * 100.0 > d.dominance_k_percent as f64 {
                self.push(
                    gate,
                    "dominance",
                    format!(
                        "the largest {n} contribution(s) make up {:.0}% of the total {total}; at most {}% is allowed",
                        share * 100.0,
                        d.dominance_k_percent
                    ),
                    location(),
                );
            }
        }
        if d.p_percent > 0 && top.len() >= 2 {
            // The second largest contributor can estimate the largest to within the rest.
            let rest = total - top[0] - top[1];
            if rest < top[0] * d.p_percent as f64 / 100.0 {
                self.push(
                    gate,
                    "p_percent",
                    format!(
                        "the rest of the total ({rest}) is less than {}% of the largest contribution ({}): the second largest contributor could estimate it",
                        d.p_percent, top[0]
                    ),
                    location(),
                );
            }
        }
    }

    /// A rule could not run: an `uncertain` finding for every disclosure gate, with what to
    /// do about it (known here, where the reason is).
    fn uncertain(&mut self, message: String, remediation: &str) {
        for (gate, _) in self.rules.clone() {
            self.push_uncertain(&gate, message.clone(), remediation);
        }
    }

    /// One gate's `uncertain` finding, with its remediation.
    fn push_uncertain(&mut self, gate: &str, message: String, remediation: &str) {
        self.push(gate, UNCERTAIN, message, None);
        if let Some(f) = self.findings.last_mut().filter(|f| f.rule == UNCERTAIN) {
            f.remediation = Some(remediation.into());
        }
    }

    fn push(&mut self, gate: &str, rule: &str, message: String, cell: Option<super::Cell>) {
        let listed = self
            .findings
            .iter()
            .filter(|f| f.gate == gate && f.rule == rule)
            .count();
        if listed >= MAX_FINDINGS_PER_RULE {
            *self
                .left_out
                .entry((gate.to_string(), rule.to_string()))
                .or_default() += 1;
            return;
        }
        self.findings.push(Finding {
            gate: gate.to_string(),
            mode: GateMode::Block,
            rule: rule.to_string(),
            message,
            location: cell.as_ref().map(super::Cell::describe),
            cell,
            remediation: None,
            needs_justification: false,
        });
    }
}

/// The cell at `row` (the header being row 1) and `column`, named by its header.
fn cell_at(header: &[String], row: u64, column: usize) -> super::Cell {
    super::Cell {
        row,
        column_index: column,
        column: header.get(column).cloned().unwrap_or_else(|| "?".into()),
    }
}

/// Headers that hold measurements rather than labels (a mean is not what names a row).
fn looks_numeric_header(h: &str) -> bool {
    [
        "mean", "median", "sd", "std", "se", "min", "max", "sum", "rate", "percent", "pct", "ratio",
    ]
    .iter()
    .any(|m| h == *m || h.ends_with(&format!("_{m}")) || h.starts_with(&format!("{m}_")))
}

fn is_count_column(header: &str, names: &[String]) -> bool {
    let h = header.trim().to_ascii_lowercase();
    names.iter().any(|n| n.eq_ignore_ascii_case(&h)) || h.ends_with("_count") || h.ends_with("_n")
}

/// A cell as a non-negative whole number (`12`, `"12"`, ` 12 `); anything else is not a count.
/// Read in one pass (digits checked and summed together): this runs on several cells of every
/// row, and a table's seal is bounded by it.
pub(crate) fn parse_count(cell: &str) -> Option<u64> {
    let c = bare(cell);
    if c.is_empty() {
        return None;
    }
    c.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A cell as a finite number (`12`, `-3.5`, `1e3`).
pub(crate) fn parse_number(cell: &str) -> Option<f64> {
    bare(cell).parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A cell without the white space and quotes around it. The reader hands cells over trimmed
/// and unquoted, so a cell that starts and ends with a visible ASCII character other than a
/// quote is returned as it is, without the (Unicode-aware) trimming.
pub(crate) fn bare(cell: &str) -> &str {
    let plain = |b: &u8| b.is_ascii_graphic() && *b != b'"';
    let bytes = cell.as_bytes();
    if bytes.first().is_none_or(plain) && bytes.last().is_none_or(plain) {
        cell
    } else {
        trim(trim(cell).trim_matches('"'))
    }
}

/// `str::trim`, with ASCII white space taken off byte by byte first: the Unicode-aware trim
/// is needed only when the text then starts or ends with a character outside ASCII.
pub(crate) fn trim(text: &str) -> &str {
    let t = text.trim_ascii();
    let bytes = t.as_bytes();
    if bytes.first().is_some_and(|b| !b.is_ascii()) || bytes.last().is_some_and(|b| !b.is_ascii()) {
        t.trim()
    } else {
        t
    }
}

/// A difference between this table and an earlier released one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    pub column: String,
    pub now: u64,
    pub before: u64,
}

/// Cells of `new` whose row (same label) and column (same count header) are in `earlier`
/// with a count that differs by less than `threshold` (but not zero): subtracting one table
/// from the other discloses that small count. Only tables labelled by the same columns are
/// compared. At most `limit` are returned.
pub fn small_differences(
    new: &TableCells,
    earlier: &TableCells,
    threshold: u64,
    limit: usize,
) -> Vec<Difference> {
    if new.key_columns != earlier.key_columns || new.key_columns.is_empty() {
        return Vec::new();
    }
    let before: std::collections::HashMap<&str, &TableRow> =
        earlier.rows.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut out = Vec::new();
    for row in &new.rows {
        let Some(old) = before.get(row.key.as_str()) else {
            continue;
        };
        for (i, column) in new.count_columns.iter().enumerate() {
            let Some(j) = earlier.count_columns.iter().position(|c| c == column) else {
                continue;
            };
            let (Some(Some(now)), Some(Some(then))) = (row.counts.get(i), old.counts.get(j)) else {
                continue;
            };
            let diff = now.abs_diff(*then);
            if diff > 0 && diff < threshold {
                out.push(Difference {
                    key: row.key.clone(),
                    column: column.clone(),
                    now: *now,
                    before: *then,
                });
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod quote_watch_tests {
    use super::QuoteWatch;

    /// Reading a cell's bytes a slice at a time says what reading them one by one says,
    /// however the slices fall.
    #[test]
    fn slices_read_as_bytes_do() {
        for cell in [
            &b"plain"[..],
            b"\"quoted\"",
            b"\"esc\"\"aped\" tail",
            b"\"never closed",
            b"\"\"",
            b"\r\n\"after a line end\"",
            b"x\"y\"",
            b"\"a\"\"\"",
        ] {
            for split in 0..=cell.len() {
                let mut one = QuoteWatch::default();
                let opened_one = cell.iter().fold(false, |o, &b| one.byte(b) | o);
                let mut sliced = QuoteWatch::default();
                let opened = sliced.bytes(&cell[..split]) | sliced.bytes(&cell[split..]);
                assert_eq!(opened, opened_one, "{cell:?} split at {split}");
                assert_eq!(
                    sliced.left_open(),
                    one.left_open(),
                    "{cell:?} split at {split}"
                );
            }
        }
    }
}
