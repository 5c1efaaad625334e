//! Suppression that subtracts back: a table with a suppressed cell (blank, `*`, `<10`,
//! `[REDACTED]`, ...) and a total from which the cell can be recomputed exactly, or the
//! suppressed cells of a line narrowed to less than the threshold together.
//!
//! Rows are checked against a total column as they stream past (one row in memory);
//! columns against a total row need the whole table, so the cells of at most
//! [`MAX_KEPT_CELLS`] are kept (as numbers, 16 bytes each), and a larger table with
//! suppressed cells is said to be too large to judge (`uncertain`), never passed.
//!
//! A total is only believed where the table bears it out: if any line without a
//! suppressed cell does not add up to its total, the header's "total" means something
//! else and that direction is not judged.

use super::table::parse_count;

/// Cells kept for the column-wise check: 5,000 rows of 40 columns.
pub const MAX_KEPT_CELLS: usize = 200_000;
/// Candidates kept per direction before the table is known to bear its totals out.
const MAX_CANDIDATES: usize = 100;

/// Headers of a total column, and labels of a total row (lower case).
const TOTAL_NAMES: &[&str] = &[
    "total",
    "totals",
    "all",
    "overall",
    "grand total",
    "sum",
    "all persons",
    "all people",
    "all ages",
];

/// What a suppressed cell says instead of its count (any case).
const SUPPRESSION_MARKERS: &[&str] = &[
    "*",
    "**",
    "***",
    "c",
    "x",
    "s",
    "~",
    "supp",
    "suppressed",
    "[suppressed]",
    "redacted",
    "[redacted]",
    "[c]",
    "[x]",
    "n/p",
];

/// The longest of [`SUPPRESSION_MARKERS`], in bytes.
const LONGEST_MARKER: usize = 12;

/// Headers of columns that hold labels even when their cells are numbers.
const LABEL_HEADERS: &[&str] = &[
    "year", "age", "id", "code", "month", "week", "day", "quarter", "period", "rank", "order",
];

/// A cell as the totals check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Known(u64),
    /// Suppressed; `blank` when the cell is empty (an empty cell that recomputes to 0 is a
    /// zero left out, not a suppression).
    Suppressed {
        blank: bool,
    },
    /// Text: a label, or a value this check does not add up.
    Other,
}

fn value(cell: &str) -> Value {
    if let Some(n) = parse_count(cell) {
        return Value::Known(n);
    }
    let c = super::table::bare(cell);
    if c.is_empty() {
        return Value::Suppressed { blank: true };
    }
    // Compared without a lower-case copy: this runs on every label cell of every row, so a
    // cell longer than every marker is not compared at all.
    let marker = c.len() <= LONGEST_MARKER
        && SUPPRESSION_MARKERS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(c));
    // `<10`, `< 5`, `<=7`, `≤7`: the usual way of showing a suppressed small count.
    let bound = (c.starts_with('<') || c.starts_with('≤'))
        && ["<=", "<", "≤"].iter().any(|p| {
            c.strip_prefix(p)
                .is_some_and(|rest| parse_count(rest.trim()).is_some())
        });
    if marker || bound {
        Value::Suppressed { blank: false }
    } else {
        Value::Other
    }
}

/// Whether a header names a column of labels even when its cells are numbers.
pub(super) fn is_label_header(h: &str) -> bool {
    LABEL_HEADERS.contains(&h) || h.ends_with("_id") || h.ends_with("_code")
}

/// Whether a header names a total.
pub(super) fn is_total_header(h: &str) -> bool {
    TOTAL_NAMES.contains(&h) || h.starts_with("total_") || h.ends_with("_total")
}

/// A suppressed cell that a total gives back, or the suppressed cells of a line that it
/// narrows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Recovered {
    /// Row (counting the header as 1) and column index of the (first) suppressed cell.
    pub row: u64,
    pub column: usize,
    /// How many cells of the line are suppressed.
    pub suppressed: usize,
    /// The cell's value (one suppressed cell), or what the suppressed cells hold together.
    pub value: u64,
    /// The total of the line, and whether the line is a row (against the total column) or a
    /// column (against the total row).
    pub total: u64,
    pub along_row: bool,
    /// The suppressed cell is the total itself (recomputed as the sum of the others).
    pub is_total: bool,
}

impl Recovered {
    /// Whether this recovery discloses under a threshold: one cell given back exactly (a
    /// blank giving back 0 was an empty zero), or several narrowed below it together.
    pub fn discloses(&self, threshold: u64, blank: bool) -> bool {
        if self.suppressed == 1 {
            !(blank && self.value == 0)
        } else {
            self.value < threshold
        }
    }

    pub fn message(&self, threshold: u64) -> String {
        let (line, against) = if self.along_row {
            ("row", "the row's total")
        } else {
            ("column", "the column's total row")
        };
        match (self.suppressed, self.is_total) {
            (1, true) => format!(
                "the suppressed total of this {line} is the sum of its other cells: {}",
                self.value
            ),
            (1, false) => format!(
                "the suppressed cell can be recomputed from {against} ({}) less the other cells: it is {}",
                self.total, self.value
            ),
            (n, _) => format!(
                "the {n} suppressed cells of this {line} together hold {} ({against} {} less the other cells), less than the threshold of {threshold}",
                self.value, self.total
            ),
        }
    }
}

/// What the totals check has seen of one table.
#[derive(Debug, Default)]
pub(super) struct Totals {
    total_column: Option<usize>,
    /// Columns never added up (labels by their header, measures, contributions).
    skipped: Vec<usize>,
    /// Columns where a number was seen: only those can hold a suppressed count.
    numeric: Vec<bool>,
    rows_inconsistent: u64,
    row_found: Vec<(Recovered, bool)>,
    /// Each data row: its number, whether a cell labels it a total, its values.
    kept: Vec<(u64, bool, Vec<Value>)>,
    kept_cells: usize,
    complete: bool,
    any_suppressed: bool,
    /// The current row's values and its parts, in buffers kept from row to row.
    values: Vec<Value>,
    parts: Vec<Slot>,
}

/// A cell with where it is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    row: u64,
    column: usize,
    value: Value,
}

impl Totals {
    /// `lower`: the headers in lower case; `skipped`: columns the table's other rules know
    /// are not counts (measures, contributions, degrees of freedom).
    pub(super) fn new(lower: &[String], skipped: &[usize]) -> Totals {
        let totals: Vec<usize> = (0..lower.len())
            .filter(|&i| is_total_header(&lower[i]))
            .collect();
        let mut skipped: Vec<usize> = skipped.to_vec();
        skipped.extend((0..lower.len()).filter(|&i| is_label_header(&lower[i])));
        Totals {
            // Several "total" columns (totals of different groups): no single row total.
            total_column: (totals.len() == 1).then(|| totals[0]),
            skipped,
            numeric: vec![false; lower.len()],
            complete: true,
            ..Default::default()
        }
    }

    /// One data row (`row` counts the header as 1).
    pub(super) fn row(&mut self, row: u64, cells: &[String]) {
        // Into a buffer kept from row to row; a copy is kept only while the table is small
        // enough to be checked against a total row.
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        values.extend(cells.iter().enumerate().map(|(i, c)| {
            if self.skipped.contains(&i) {
                Value::Other
            } else {
                value(c)
            }
        }));
        // Each cell trimmed once, not once per name compared.
        let labelled_total = cells.iter().any(|c| {
            let c = super::table::trim(c);
            TOTAL_NAMES.iter().any(|t| t.eq_ignore_ascii_case(c))
        });
        for (i, v) in values.iter().enumerate() {
            if let (Value::Known(_), Some(seen)) = (v, self.numeric.get_mut(i)) {
                *seen = true;
            }
            if matches!(v, Value::Suppressed { .. }) {
                self.any_suppressed = true;
            }
        }
        if let Some(t) = self.total_column
            && let Some(total) = values.get(t).copied()
        {
            let slot = |column: usize, value: Value| Slot { row, column, value };
            let mut parts = std::mem::take(&mut self.parts);
            parts.clear();
            parts.extend(
                values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != t)
                    .map(|(i, v)| slot(i, *v)),
            );
            let judged = line(slot(t, total), &parts, true);
            self.parts = parts;
            match judged {
                Line::Inconsistent => self.rows_inconsistent += 1,
                Line::Recovered(r, blank) if self.row_found.len() < MAX_CANDIDATES => {
                    self.row_found.push((r, blank));
                }
                _ => {}
            }
        }
        if self.complete {
            if self.kept_cells + values.len() > MAX_KEPT_CELLS {
                self.complete = false;
                self.kept = Vec::new();
            } else {
                self.kept_cells += values.len();
                self.kept.push((row, labelled_total, values.clone()));
            }
        }
        self.values = values;
    }

    /// Everything recovered (each with whether its cells were blank), and whether the table
    /// was too large to check its columns against a total row (it has suppressed cells and
    /// more than [`MAX_KEPT_CELLS`] cells).
    pub(super) fn finish(self) -> (Vec<(Recovered, bool)>, bool) {
        let numeric = |i: usize| self.numeric.get(i).copied().unwrap_or(false);
        let mut out: Vec<(Recovered, bool)> = Vec::new();
        let mut add = |found: Vec<(Recovered, bool)>| {
            for (r, blank) in found {
                let seen = out
                    .iter()
                    .any(|(o, _)| (o.row, o.column) == (r.row, r.column));
                if numeric(r.column) && !seen {
                    out.push((r, blank));
                }
            }
        };
        if self.rows_inconsistent == 0 {
            add(self.row_found.clone());
        }
        if !self.complete {
            return (out, self.any_suppressed);
        }
        // The total row: the one row labelled as a total (several are subtotals: not judged).
        let total_rows: Vec<&(u64, bool, Vec<Value>)> =
            self.kept.iter().filter(|(_, total, _)| *total).collect();
        let [(total_row, _, totals)] = total_rows.as_slice() else {
            return (out, false);
        };
        let (mut inconsistent, mut found) = (0, Vec::new());
        for (column, total) in totals.iter().enumerate() {
            if !numeric(column) {
                continue;
            }
            let parts: Vec<Slot> = self
                .kept
                .iter()
                .filter(|(row, _, _)| row != total_row)
                .filter_map(|(row, _, values)| {
                    values.get(column).map(|v| Slot {
                        row: *row,
                        column,
                        value: *v,
                    })
                })
                .collect();
            let total = Slot {
                row: *total_row,
                column,
                value: *total,
            };
            match line(total, &parts, false) {
                Line::Inconsistent => inconsistent += 1,
                Line::Recovered(r, blank) => found.push((r, blank)),
                Line::Consistent | Line::Nothing => {}
            }
        }
        if inconsistent == 0 {
            add(found);
        }
        (out, false)
    }
}

/// What one line (a row against its total column, a column against the total row) says.
enum Line {
    /// No suppressed cell, and the parts add up to the total.
    Consistent,
    /// No suppressed cell, and they do not: this total is not their sum.
    Inconsistent,
    /// A suppressed cell given back (with whether the suppressed cells were blank), or
    /// several narrowed.
    Recovered(Recovered, bool),
    /// Nothing to say (no total, no parts, or the total and a part both suppressed).
    Nothing,
}

fn line(total: Slot, parts: &[Slot], along_row: bool) -> Line {
    let mut known: u64 = 0;
    let mut suppressed = Vec::new();
    let mut counted = 0;
    for part in parts {
        match part.value {
            Value::Known(n) => {
                let Some(sum) = known.checked_add(n) else {
                    return Line::Nothing;
                };
                known = sum;
                counted += 1;
            }
            Value::Suppressed { blank } => {
                suppressed.push((part, blank));
                counted += 1;
            }
            Value::Other => {}
        }
    }
    if counted == 0 {
        return Line::Nothing;
    }
    let all_blank = suppressed.iter().all(|(_, blank)| *blank);
    match total.value {
        Value::Other => Line::Nothing,
        Value::Known(t) if suppressed.is_empty() => {
            if known == t {
                Line::Consistent
            } else {
                Line::Inconsistent
            }
        }
        Value::Known(t) if known > t => Line::Inconsistent,
        Value::Known(t) => {
            let (first, _) = suppressed[0];
            Line::Recovered(
                Recovered {
                    row: first.row,
                    column: first.column,
                    suppressed: suppressed.len(),
                    value: t - known,
                    total: t,
                    along_row,
                    is_total: false,
                },
                all_blank,
            )
        }
        Value::Suppressed { blank } if suppressed.is_empty() => Line::Recovered(
            Recovered {
                row: total.row,
                column: total.column,
                suppressed: 1,
                value: known,
                total: known,
                along_row,
                is_total: true,
            },
            blank,
        ),
        Value::Suppressed { .. } => Line::Nothing,
    }
}
