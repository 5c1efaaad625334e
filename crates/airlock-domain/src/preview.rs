//! What a page shows of a file, from its first bytes: a table's first rows (numbered as the
//! gates number them, so a finding's cell is the cell shown), a text's first characters, an
//! image's type, or only the metadata. Pure: the API reads at most [`MAX_PREVIEW_BYTES`] of
//! the file and asks this.
//!
//! Nothing here is ever markup: cells and text are strings for a page to show as text, and an
//! image is named only when its bytes are PNG or JPEG (never SVG, whatever its name says).

use crate::gates::{Finding, Sniffed, is_table, sniff};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most bytes of a file a preview reads.
pub const MAX_PREVIEW_BYTES: usize = 8 * 1024 * 1024;
/// Most rows a preview holds (a 100,000-row table of short rows fits whole).
pub const MAX_PREVIEW_ROWS: usize = 100_000;
/// Most characters of a text a preview holds.
pub const MAX_PREVIEW_CHARS: usize = 1024 * 1024;
/// Most bytes of one cell kept (the rest is cut, and the preview says so).
pub const MAX_CELL_CHARS: usize = 1000;

/// How a file is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewKind {
    Table,
    Text,
    Image,
    /// Metadata only (archives, PDFs, binaries, programs).
    None,
}

/// One row of a table: `row` counts the file's records from 1 (the header is row 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewRow {
    pub row: u64,
    pub cells: Vec<String>,
}

/// What a column holds, over the rows shown (`rowsSeen`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSummary {
    pub column: String,
    pub rows_seen: u64,
    /// Cells that are numbers.
    pub numbers: u64,
    /// Empty cells, and the usual marks of a suppressed or missing value (`NA`, `*`, `-`, `.`).
    pub missing: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The smallest number above zero (the smallest count a table discloses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_above_zero: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Whole numbers that are multiples of 5, and of 10 (rounding shows here).
    pub multiples_of_5: u64,
    pub multiples_of_10: u64,
    /// Whole numbers in all.
    pub whole_numbers: u64,
}

/// A file as a page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilePreview {
    pub name: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub kind: PreviewKind,
    /// `image/png` or `image/jpeg` for an image (from its bytes, not its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Only part of the file is shown.
    pub truncated: bool,
    /// Why the preview is partial or absent, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A table's header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<PreviewRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summaries: Vec<ColumnSummary>,
    /// A text's first characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What the gates found in the file (cells named where they are about one).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// The part of a preview that comes from the bytes: `head` is the file's first bytes,
/// `whole` whether they are all of it.
pub fn read(name: &str, head: &[u8], whole: bool) -> FilePreview {
    let mut preview = FilePreview {
        name: name.to_string(),
        size: 0,
        sha256: None,
        kind: PreviewKind::None,
        content_type: None,
        truncated: false,
        note: None,
        columns: Vec::new(),
        rows: Vec::new(),
        summaries: Vec::new(),
        text: None,
        findings: Vec::new(),
    };
    match sniff(&head[..head.len().min(8192)]) {
        Sniffed::Png | Sniffed::Jpeg if !whole => {
            preview.note = Some("the image is too large to show here; download it".into());
        }
        Sniffed::Png => {
            preview.kind = PreviewKind::Image;
            preview.content_type = Some("image/png".into());
        }
        Sniffed::Jpeg => {
            preview.kind = PreviewKind::Image;
            preview.content_type = Some("image/jpeg".into());
        }
        Sniffed::Text => match is_table(name) {
            Some(separator) => table(&mut preview, head, whole, separator),
            None => text(&mut preview, head, whole),
        },
        Sniffed::Executable(what) => {
            preview.note = Some(format!("not shown: the content is {what}"));
        }
        Sniffed::Archive(kind) => {
            preview.note = Some(format!("not shown: a {kind} archive"));
        }
        Sniffed::Pdf | Sniffed::Parquet | Sniffed::Binary => {
            preview.note = Some("not shown: not text, a table or an image".into());
        }
    }
    preview
}

fn text(preview: &mut FilePreview, head: &[u8], whole: bool) {
    let text = String::from_utf8_lossy(head);
    let kept: String = text.chars().take(MAX_PREVIEW_CHARS).collect();
    preview.truncated = !whole || kept.len() < text.len();
    if preview.truncated {
        preview.note = Some(format!(
            "the first {} characters are shown",
            kept.chars().count()
        ));
    }
    preview.kind = PreviewKind::Text;
    preview.text = Some(kept);
}

fn table(preview: &mut FilePreview, head: &[u8], whole: bool, separator: u8) {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut reader = csv_core::ReaderBuilder::new().delimiter(separator).build();
    let mut input = head;
    let mut out = vec![0u8; 64 * 1024];
    let mut cell: Vec<u8> = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut row: u64 = 0;
    let mut cut = false;
    let mut full = false;
    let mut at_end = false;
    loop {
        let (result, read, written) = reader.read_field(input, &mut out);
        input = &input[read..];
        let room = (MAX_CELL_CHARS * 4).saturating_sub(cell.len());
        cut |= written > room;
        cell.extend_from_slice(&out[..written.min(room)]);
        match result {
            csv_core::ReadFieldResult::InputEmpty => {
                if at_end {
                    break;
                }
                // The bytes given are all there is (of the file, or of what was read).
                at_end = true;
                input = &[];
            }
            csv_core::ReadFieldResult::OutputFull => {}
            csv_core::ReadFieldResult::End => break,
            csv_core::ReadFieldResult::Field { record_end } => {
                let text = String::from_utf8_lossy(&cell);
                let mut value: String = text.chars().take(MAX_CELL_CHARS).collect();
                if value.len() < text.len() {
                    cut = true;
                    value.push('…');
                }
                cells.push(value);
                cell.clear();
                if record_end {
                    row += 1;
                    let record = std::mem::take(&mut cells);
                    // A record cut by the end of what was read is not shown as if whole.
                    if at_end && !whole {
                        break;
                    }
                    if record.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    if preview.columns.is_empty() && row == 1 {
                        preview.columns = record.iter().map(|c| c.trim().to_string()).collect();
                        continue;
                    }
                    if preview.rows.len() >= MAX_PREVIEW_ROWS {
                        full = true;
                        break;
                    }
                    preview.rows.push(PreviewRow { row, cells: record });
                }
            }
        }
    }
    preview.kind = PreviewKind::Table;
    preview.truncated = !whole || full;
    let mut notes = Vec::new();
    if preview.truncated {
        notes.push(format!(
            "the first {} rows are shown; summaries are over these rows",
            preview.rows.len()
        ));
    }
    if cut {
        notes.push(format!(
            "cells longer than {MAX_CELL_CHARS} characters are cut"
        ));
    }
    if !notes.is_empty() {
        preview.note = Some(notes.join("; "));
    }
    preview.summaries = summaries(&preview.columns, &preview.rows);
}

/// A cell read as a number: digits with an optional sign, decimal point, exponent and
/// thousands separators (`1,234`).
fn number(cell: &str) -> Option<f64> {
    let t = cell.trim();
    if t.is_empty() || !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let plain: String = t.chars().filter(|c| *c != ',' && *c != '_').collect();
    plain.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn is_missing(cell: &str) -> bool {
    matches!(
        cell.trim().to_ascii_lowercase().as_str(),
        "" | "na" | "n/a" | "nan" | "null" | "*" | "-" | "." | "[redacted]" | "suppressed"
    )
}

fn summaries(columns: &[String], rows: &[PreviewRow]) -> Vec<ColumnSummary> {
    let width = rows
        .iter()
        .map(|r| r.cells.len())
        .max()
        .unwrap_or(0)
        .max(columns.len());
    (0..width)
        .map(|i| {
            let mut s = ColumnSummary {
                column: columns.get(i).cloned().unwrap_or_default(),
                ..ColumnSummary::default()
            };
            for r in rows {
                s.rows_seen += 1;
                let cell = r.cells.get(i).map(String::as_str).unwrap_or("");
                if is_missing(cell) {
                    s.missing += 1;
                    continue;
                }
                let Some(v) = number(cell) else { continue };
                s.numbers += 1;
                s.min = Some(s.min.map_or(v, |m| m.min(v)));
                s.max = Some(s.max.map_or(v, |m| m.max(v)));
                s.sum = Some(s.sum.unwrap_or(0.0) + v);
                if v > 0.0 {
                    s.min_above_zero = Some(s.min_above_zero.map_or(v, |m| m.min(v)));
                }
                if v.fract() == 0.0 {
                    s.whole_numbers += 1;
                    if v % 5.0 == 0.0 {
                        s.multiples_of_5 += 1;
                    }
                    if v % 10.0 == 0.0 {
                        s.multiples_of_10 += 1;
                    }
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_numbered_as_the_gates_number_it() {
        let csv = b"\xEF\xBB\xBFgroup,n\r\nA,120\r\n\r\n\"B, C\",3\r\n\"multi\nline\",7\r\nD,*\r\n";
        let p = read("t.csv", csv, true);
        assert_eq!(p.kind, PreviewKind::Table);
        assert_eq!(p.columns, vec!["group", "n"]);
        // The blank line is no record (csv-core skips it, for the gates too).
        let rows: Vec<(u64, Vec<&str>)> = p
            .rows
            .iter()
            .map(|r| (r.row, r.cells.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (2, vec!["A", "120"]),
                (3, vec!["B, C", "3"]),
                (4, vec!["multi\nline", "7"]),
                (5, vec!["D", "*"]),
            ]
        );
        assert!(!p.truncated && p.note.is_none());
        let n = &p.summaries[1];
        assert_eq!(
            (n.numbers, n.missing, n.min, n.min_above_zero, n.max, n.sum),
            (3, 1, Some(3.0), Some(3.0), Some(120.0), Some(130.0))
        );
        assert_eq!(
            (n.whole_numbers, n.multiples_of_5, n.multiples_of_10),
            (3, 1, 1)
        );
        // The gates name the same cells.
        let gates: Vec<crate::gates::Gate> = serde_json::from_value(serde_json::json!([
            {"name": "sdc", "kind": "disclosure", "threshold": 10}
        ]))
        .unwrap();
        let mut runner = crate::gates::GateRunner::new(&gates, "t.csv").unwrap();
        runner.feed(csv);
        let findings = runner.finish().findings;
        let cells: Vec<(u64, usize)> = findings
            .iter()
            .filter_map(|f| f.cell.as_ref().map(|c| (c.row, c.column_index)))
            .collect();
        assert_eq!(cells, vec![(3, 1), (4, 1)]);
        for (row, column) in cells {
            let shown = p.rows.iter().find(|r| r.row == row).unwrap();
            assert!(shown.cells[column].parse::<u32>().unwrap() < 10);
        }
    }

    #[test]
    fn a_partial_read_never_shows_a_cut_row_as_whole() {
        let csv = b"a,b\n1,2\n3,4\n5,6";
        let p = read("t.csv", &csv[..csv.len() - 2], false);
        assert_eq!(p.rows.len(), 2, "{:?}", p.rows);
        assert!(p.truncated);
        assert!(p.note.as_deref().unwrap().contains("first 2 rows"));
        let tsv = read("t.tsv", b"x\ty\n1\t2\n", true);
        assert_eq!(tsv.columns, vec!["x", "y"]);
        assert_eq!(tsv.rows[0].cells, vec!["1", "2"]);
    }

    #[test]
    fn markup_is_only_ever_text_and_images_are_known_by_their_bytes() {
        let p = read(
            "<img src=x onerror=alert(1)>.csv",
            b"name,n\n<script>alert(1)</script>,5\n",
            true,
        );
        assert_eq!(p.rows[0].cells[0], "<script>alert(1)</script>");
        let svg = read(
            "plot.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            true,
        );
        assert_eq!(
            (svg.kind, svg.content_type.as_deref()),
            (PreviewKind::Text, None)
        );
        let fake = read("plot.png", b"<svg onload='alert(1)'/>", true);
        assert_eq!(fake.kind, PreviewKind::Text);
        let png = read("x.bin", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", true);
        assert_eq!(
            (png.kind, png.content_type.as_deref()),
            (PreviewKind::Image, Some("image/png"))
        );
        let elf = read("tool", b"\x7fELF\x02\x01\x01", true);
        assert_eq!(elf.kind, PreviewKind::None);
        assert!(elf.note.unwrap().contains("ELF"));
        let md = read(
            "notes.md",
            "[x](javascript:alert(1)) \u{202e}txt.exe".as_bytes(),
            true,
        );
        assert_eq!(
            md.text.as_deref(),
            Some("[x](javascript:alert(1)) \u{202e}txt.exe")
        );
    }

    #[test]
    fn long_cells_and_long_texts_are_cut_and_say_so() {
        let mut csv = b"a\n".to_vec();
        csv.extend(std::iter::repeat_n(b'x', 5000));
        csv.push(b'\n');
        let p = read("t.csv", &csv, true);
        assert_eq!(p.rows[0].cells[0].chars().count(), MAX_CELL_CHARS + 1);
        assert!(p.note.unwrap().contains("cut"));
        let text = "é".repeat(MAX_PREVIEW_CHARS + 10);
        let t = read("log.txt", text.as_bytes(), true);
        assert!(t.truncated);
        assert_eq!(t.text.unwrap().chars().count(), MAX_PREVIEW_CHARS);
    }
}
