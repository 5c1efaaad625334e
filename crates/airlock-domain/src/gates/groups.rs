//! Small groups on identifying columns: k-anonymity over the quasi-identifier columns of a
//! record-level table (one row per person: no count column). Each combination of the
//! quasi-identifiers' values must be shared by at least `k` rows, or the people in the
//! smaller groups can be picked out by what is known about them (age band, sex, region).
//!
//! Quasi-identifiers are the columns a gate declares, or else those whose header names one
//! (`age_band`, `sex`, `region`, `ethnicity`, dates, ...) when there are at least two. Memory:
//! one count per distinct combination, at most [`MAX_GROUPS`]; a table with more is said to
//! be too varied to judge (`uncertain`), never passed.

/// Distinct combinations counted per table and gate.
pub const MAX_GROUPS: usize = 100_000;
/// A combination's values are cut to this many characters in the key and the finding.
const MAX_VALUE_CHARS: usize = 40;

/// Words in a header that make it a quasi-identifier (the header split at `_`, `-`, spaces).
const QUASI_WORDS: &[&str] = &[
    "age",
    "ageband",
    "agegroup",
    "sex",
    "gender",
    "region",
    "ethnicity",
    "ethnic",
    "race",
    "postcode",
    "lsoa",
    "msoa",
    "ward",
    "imd",
    "deprivation",
    "dob",
    "birth",
    "marital",
    "occupation",
    "religion",
    "date",
];

/// Whether a (lower-case) header names a quasi-identifier.
pub fn is_quasi_identifier(header: &str) -> bool {
    header
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| QUASI_WORDS.contains(&word))
}

/// The quasi-identifier columns of a table for one gate: the declared ones present, or the
/// detected ones when there are at least two; empty when k-anonymity does not apply.
pub(super) fn quasi_identifier_columns(lower: &[String], declared: &[String]) -> Vec<usize> {
    if !declared.is_empty() {
        return (0..lower.len())
            .filter(|&i| declared.iter().any(|d| d.eq_ignore_ascii_case(&lower[i])))
            .collect();
    }
    let found: Vec<usize> = (0..lower.len())
        .filter(|&i| is_quasi_identifier(&lower[i]))
        .collect();
    if found.len() >= 2 { found } else { Vec::new() }
}

/// One group too small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SmallGroup {
    /// The row of its first record (the header being row 1).
    pub first_row: u64,
    pub size: u64,
    /// `column=value` for each quasi-identifier.
    pub values: Vec<String>,
}

/// Counts the rows of each combination of one gate's quasi-identifiers.
#[derive(Debug)]
pub(super) struct Groups {
    columns: Vec<usize>,
    names: Vec<String>,
    counts: std::collections::HashMap<Vec<String>, (u64, u64)>,
    too_varied: bool,
}

impl Groups {
    pub(super) fn new(columns: Vec<usize>, header: &[String]) -> Groups {
        let names = columns
            .iter()
            .map(|&i| header.get(i).cloned().unwrap_or_default())
            .collect();
        Groups {
            columns,
            names,
            counts: Default::default(),
            too_varied: false,
        }
    }

    pub(super) fn row(&mut self, row: u64, cells: &[String]) {
        if self.too_varied {
            return;
        }
        let key: Vec<String> = self
            .columns
            .iter()
            .map(|&i| {
                cells
                    .get(i)
                    .map(|c| c.trim().chars().take(MAX_VALUE_CHARS).collect())
                    .unwrap_or_default()
            })
            .collect();
        if let Some((n, _)) = self.counts.get_mut(&key) {
            *n += 1;
        } else if self.counts.len() >= MAX_GROUPS {
            self.too_varied = true;
            self.counts = Default::default();
        } else {
            self.counts.insert(key, (1, row));
        }
    }

    /// The groups smaller than `k`, by their first row; `Err` when the table had more than
    /// [`MAX_GROUPS`] combinations.
    pub(super) fn finish(self, k: u64) -> Result<Vec<SmallGroup>, String> {
        if self.too_varied {
            return Err(format!(
                "the table has more than {MAX_GROUPS} distinct combinations of its quasi-identifiers ({}): too varied to check for small groups",
                self.names.join(", ")
            ));
        }
        let mut small: Vec<SmallGroup> = self
            .counts
            .into_iter()
            .filter(|(_, (n, _))| *n < k)
            .map(|(values, (size, first_row))| SmallGroup {
                first_row,
                size,
                values: self
                    .names
                    .iter()
                    .zip(values)
                    .map(|(name, v)| format!("{name}={v}"))
                    .collect(),
            })
            .collect();
        small.sort_by_key(|g| g.first_row);
        Ok(small)
    }

    pub(super) fn first_column(&self) -> usize {
        self.columns.first().copied().unwrap_or(0)
    }
}
