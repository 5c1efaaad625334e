//! A table compared with the previous revision's, cell by cell: rows matched by their label
//! columns (the columns none of whose cells is a number, in either table: region, sex, age
//! band), every other column compared by its header, whatever the column or row order.
//! What a reviewer wants to see after "round the counts in column n": which cells moved.

use crate::gates::table::{TableSnapshot, parse_number};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cells, rows and columns listed at most; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// One cell whose text changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CellChange {
    /// The row's labels, joined with ` | ` (`north | F`).
    pub row: String,
    pub column: String,
    pub before: String,
    pub after: String,
}

/// How a table changed since the previous revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableDiff {
    /// The columns rows were matched by (empty: by position).
    pub label_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_removed: Vec<String>,
    /// Labels of rows only in this revision (the first [`MAX_LISTED`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows_removed: Vec<String>,
    /// Cells whose text changed (the first [`MAX_LISTED`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<CellChange>,
    /// All of them, listed or not.
    pub rows_added_count: usize,
    pub rows_removed_count: usize,
    pub cells_changed: usize,
    /// False when either table was larger than the airlock keeps (5,000 rows, 1 MiB): only
    /// their first rows were compared.
    pub complete: bool,
}

fn normalise(header: &str) -> String {
    header.trim().to_lowercase()
}

/// `after` (this revision's table) against `before` (the previous revision's).
pub fn table_diff(before: &TableSnapshot, after: &TableSnapshot) -> TableDiff {
    let columns =
        |t: &TableSnapshot| -> Vec<String> { t.header.iter().map(|h| normalise(h)).collect() };
    let (old_cols, new_cols) = (columns(before), columns(after));
    let shared: Vec<&String> = new_cols.iter().filter(|c| old_cols.contains(c)).collect();
    let column_of = |cols: &[String], name: &str| cols.iter().position(|c| c == name);
    // Label columns: shared columns where no cell of either table is a number.
    let numeric = |t: &TableSnapshot, i: usize| {
        t.rows
            .iter()
            .any(|r| r.get(i).is_some_and(|c| parse_number(c).is_some()))
    };
    let labels: Vec<String> = shared
        .iter()
        .filter(|c| {
            let (Some(o), Some(n)) = (column_of(&old_cols, c), column_of(&new_cols, c)) else {
                return false;
            };
            !numeric(before, o) && !numeric(after, n)
        })
        .map(|c| (*c).clone())
        .collect();
    let (old_rows, new_rows) = (
        keyed(before, &old_cols, &labels),
        keyed(after, &new_cols, &labels),
    );
    let mut diff = TableDiff {
        label_columns: labels.clone(),
        columns_added: new_cols
            .iter()
            .filter(|c| !old_cols.contains(c))
            .cloned()
            .collect(),
        columns_removed: old_cols
            .iter()
            .filter(|c| !new_cols.contains(c))
            .cloned()
            .collect(),
        complete: before.complete && after.complete,
        ..TableDiff::default()
    };
    // In this revision's row order.
    let mut new_in_order: Vec<(&String, &(usize, &Vec<String>))> = new_rows.iter().collect();
    new_in_order.sort_by_key(|(_, (position, _))| *position);
    for (key, (_, row)) in new_in_order {
        let Some((_, old)) = old_rows.get(key) else {
            diff.rows_added_count += 1;
            if diff.rows_added.len() < MAX_LISTED {
                diff.rows_added.push(key.clone());
            }
            continue;
        };
        for column in shared.iter().filter(|c| !labels.contains(c)) {
            let cell = |r: &Vec<String>, cols: &[String]| {
                column_of(cols, column)
                    .and_then(|i| r.get(i))
                    .cloned()
                    .unwrap_or_default()
            };
            let (was, now) = (cell(old, &old_cols), cell(row, &new_cols));
            if was != now {
                diff.cells_changed += 1;
                if diff.cells.len() < MAX_LISTED {
                    diff.cells.push(CellChange {
                        row: key.clone(),
                        column: (*column).clone(),
                        before: was,
                        after: now,
                    });
                }
            }
        }
    }
    let mut old_in_order: Vec<(&String, &(usize, &Vec<String>))> = old_rows.iter().collect();
    old_in_order.sort_by_key(|(_, (position, _))| *position);
    for (key, _) in old_in_order {
        if !new_rows.contains_key(key) {
            diff.rows_removed_count += 1;
            if diff.rows_removed.len() < MAX_LISTED {
                diff.rows_removed.push(key.clone());
            }
        }
    }
    diff
}

/// Each row by its key: its labels, and which occurrence of them it is (a table may repeat
/// one), with its position.
fn keyed<'a>(
    t: &'a TableSnapshot,
    cols: &[String],
    labels: &[String],
) -> BTreeMap<String, (usize, &'a Vec<String>)> {
    let idx: Vec<Option<usize>> = labels
        .iter()
        .map(|l| cols.iter().position(|c| c == l))
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (position, row) in t.rows.iter().enumerate() {
        let label = if labels.is_empty() {
            format!("row {}", position + 2)
        } else {
            idx.iter()
                .map(|i| i.and_then(|i| row.get(i)).map_or("", |c| c.as_str()))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let n = seen.entry(label.clone()).or_default();
        *n += 1;
        let key = if *n > 1 {
            format!("{label} (#{n})")
        } else {
            label
        };
        out.insert(key, (position, row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> TableSnapshot {
        let mut lines = text
            .lines()
            .map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
        TableSnapshot {
            header: lines.next().unwrap(),
            rows: lines.collect(),
            complete: true,
        }
    }

    fn changes(d: &TableDiff) -> Vec<String> {
        d.cells
            .iter()
            .map(|c| format!("{}/{}: {} -> {}", c.row, c.column, c.before, c.after))
            .collect()
    }

    #[test]
    fn cells_rows_and_columns_table() {
        let before = "region,sex,n,mean\nnorth,F,23,4.5\nnorth,M,7,2.0\nsouth,F,40,3.1\n";
        // (label, after, label columns, changed cells, rows added, rows removed, columns added/removed)
        type Case<'a> = (&'a str, &'a str, [Vec<&'a str>; 6]);
        let cases: Vec<Case> = vec![
            (
                "identical",
                before,
                [
                    vec!["region", "sex"],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                "rounded to 5, the small cell suppressed",
                "region,sex,n,mean\nnorth,F,25,4.5\nnorth,M,<10,2.0\nsouth,F,40,3.1\n",
                [
                    vec!["region", "sex"],
                    vec!["north | F/n: 23 -> 25", "north | M/n: 7 -> <10"],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                "rows and columns reordered, nothing else",
                "mean,n,sex,region\n3.1,40,F,south\n2.0,7,M,north\n4.5,23,F,north\n",
                [
                    vec!["sex", "region"],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
            (
                "a group merged away and a column added",
                "region,sex,n,mean,sd\nnorth,F,30,4.1,1.0\nsouth,F,40,3.1,0.9\n",
                [
                    vec!["region", "sex"],
                    vec!["north | F/n: 23 -> 30", "north | F/mean: 4.5 -> 4.1"],
                    vec![],
                    vec!["north | M"],
                    vec!["sd"],
                    vec![],
                ],
            ),
            (
                "a new group",
                "region,sex,n,mean\nnorth,F,23,4.5\nnorth,M,7,2.0\nsouth,F,40,3.1\nsouth,M,12,3.3\n",
                [
                    vec!["region", "sex"],
                    vec![],
                    vec!["south | M"],
                    vec![],
                    vec![],
                    vec![],
                ],
            ),
        ];
        for (label, after, [labels, cells, added, removed, cols_added, cols_removed]) in cases {
            let d = table_diff(&table(before), &table(after));
            let mut got_labels = d.label_columns.clone();
            got_labels.sort();
            let mut want: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got_labels, want, "{label}");
            // Row keys are the labels in this revision's column order.
            let mut got = changes(&d);
            got.sort();
            let mut want: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{label}");
            assert_eq!(d.cells_changed, cells.len(), "{label}");
            assert_eq!(d.rows_added, added, "{label}");
            assert_eq!(d.rows_removed, removed, "{label}");
            assert_eq!(d.columns_added, cols_added, "{label}");
            assert_eq!(d.columns_removed, cols_removed, "{label}");
            assert!(d.complete);
        }
    }

    #[test]
    fn repeated_labels_unlabelled_tables_and_long_lists() {
        // Rows with the same labels are matched in order.
        let d = table_diff(
            &table("site,n\na,10\na,20\n"),
            &table("site,n\na,10\na,25\n"),
        );
        assert_eq!(changes(&d), ["a (#2)/n: 20 -> 25"]);
        // No label column: rows by position.
        let d = table_diff(&table("x,y\n1,2\n3,4\n"), &table("x,y\n1,2\n3,5\n"));
        assert!(d.label_columns.is_empty());
        assert_eq!(changes(&d), ["row 3/y: 4 -> 5"]);
        // Many changes: the first 50 listed, all counted.
        let rows = |v: u32| -> String {
            let mut t = String::from("g,n\n");
            for i in 0..200 {
                t.push_str(&format!("g{i},{}\n", i + v));
            }
            t
        };
        let d = table_diff(&table(&rows(0)), &table(&rows(1)));
        assert_eq!((d.cells.len(), d.cells_changed), (MAX_LISTED, 200));
        // A table larger than what is kept says so.
        let mut big = table(&rows(0));
        big.complete = false;
        assert!(!table_diff(&big, &table(&rows(0))).complete);
    }
}
