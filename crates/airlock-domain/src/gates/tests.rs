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
    let checked = runner.finish();
    (checked.findings, checked.cells)
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
            got.iter()
                .any(|f| f.rule == "executable"
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
    // Each says what to do about it, with the gate's own numbers.
    assert_eq!(
        got[0].remediation.as_deref(),
        Some(
            "suppress or merge the cells below 10 in column \"n\" (combine the small groups with others, or show them as \"<10\")"
        )
    );
    assert_eq!(
        got[1].remediation.as_deref(),
        Some("round the counts in column \"n\" to a multiple of 5")
    );
    assert!(got.iter().all(|f| f.remediation.is_some()));
    // Each says which cell, for a page that highlights it: the same place as its words.
    assert_eq!(
        got.iter()
            .map(|f| f.cell.clone().map(|c| (c.row, c.column_index, c.column)))
            .collect::<Vec<_>>(),
        vec![
            Some((3, 1, "n".to_string())),
            Some((3, 1, "n".to_string())),
            Some((3, 3, "deaths_count".to_string())),
            Some((4, 3, "deaths_count".to_string())),
        ]
    );
    assert!(
        got.iter()
            .all(|f| f.location == f.cell.as_ref().map(Cell::describe))
    );
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
    let p_only = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "dominanceN": 0}]));
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
    let off = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "dofThreshold": 0}]));
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
    let g = gates(serde_json::json!([{"name": "ledger", "kind": "releaseLedger", "mode": "warn"}]));
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
        cell: None,
        remediation: None,
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

#[test]
fn the_seal_keeps_a_small_tables_cells_for_the_next_revisions_diff() {
    let feed = |name: &str, data: &[u8]| {
        let mut runner = GateRunner::for_seal(&[], name)?;
        for piece in data.chunks(5) {
            runner.feed(piece);
        }
        runner.finish().snapshot
    };
    let s = feed("t.csv", b"region,n\n\"north, upper\",25\nsouth,<10\n").unwrap();
    assert_eq!(s.header, ["region", "n"]);
    assert_eq!(s.rows, [["north, upper", "25"], ["south", "<10"]]);
    assert!(s.complete);
    let tsv = feed("t.tsv", b"a\tb\n1\t2\n").unwrap();
    assert_eq!(tsv.rows, [["1", "2"]]);
    // Not a table: nothing kept, and with no gate on no runner at all.
    assert!(GateRunner::for_seal(&[], "notes.txt").is_none());
    // Beyond 5,000 rows: the first ones, marked incomplete.
    let mut big = b"g,n\n".to_vec();
    for i in 0..6000 {
        big.extend_from_slice(format!("g{i},{i}\n").as_bytes());
    }
    let s = feed("big.csv", &big).unwrap();
    assert_eq!(
        (s.rows.len(), s.complete),
        (table::MAX_FINGERPRINT_ROWS, false)
    );
    // The preflight's runner keeps none.
    let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
    let mut runner = GateRunner::new(&g, "t.csv").unwrap();
    runner.feed(b"g,n\na,20\n");
    assert!(runner.finish().snapshot.is_none());
}

/// Suppression that subtracts back: a suppressed cell that a total column or a total row
/// gives back exactly, or several narrowed below the threshold together; and tables whose
/// totals do not reveal anything (two unknowns wide enough, a "total" that is not the sum,
/// a blank that is just an empty zero, no total at all).
#[test]
fn suppressed_cells_that_totals_give_back() {
    let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
    type Case<'a> = (&'a str, &'a [u8], Vec<(&'a str, Option<&'a str>)>);
    let at = |r: &'static str| Some(r);
    let cases: Vec<Case> = vec![
        (
            "one suppressed cell beside a row total",
            b"region,male,female,total\nNorth,12,*,30\nSouth,20,15,35\n",
            vec![("suppression_recoverable", at("row 2, column \"female\""))],
        ),
        (
            "a suppressed total is the sum of its row",
            b"region,male,female,total\nNorth,12,18,<10\nSouth,20,15,35\n",
            vec![("suppression_recoverable", at("row 2, column \"total\""))],
        ),
        (
            "a column against its total row",
            b"region,cases\nNorth,[REDACTED]\nSouth,40\nEast,35\nTotal,80\n",
            vec![("suppression_recoverable", at("row 2, column \"cases\""))],
        ),
        (
            "two suppressed cells narrowed below the threshold together",
            b"region,a,b,c,total\nNorth,*,*,40,47\nSouth,20,15,30,65\n",
            vec![("suppression_recoverable", at("row 2, column \"a\""))],
        ),
        (
            "two suppressed cells that together hold enough",
            b"region,a,b,c,total\nNorth,*,*,40,60\nSouth,20,15,30,65\n",
            vec![],
        ),
        (
            "a total that the table shows is not the sum",
            b"region,a,b,total\nNorth,12,*,30\nSouth,20,15,99\n",
            vec![],
        ),
        (
            "a blank that recomputes to 0 is an empty zero",
            b"region,a,b,total\nNorth,30,,30\nSouth,20,15,35\n",
            vec![],
        ),
        (
            "a blank that recomputes to a count is suppression",
            b"region,a,b,total\nNorth,30,,33\nSouth,20,15,35\n",
            vec![("suppression_recoverable", at("row 2, column \"b\""))],
        ),
        (
            "no total, nothing to subtract from",
            b"region,a,b\nNorth,30,*\nSouth,20,15\n",
            vec![],
        ),
        (
            "a label column with a marker-like value is not a count",
            b"grade,n,total\nx,40,40\nA,50,50\n",
            vec![],
        ),
        (
            "subtotals: several total rows are not judged by column",
            b"region,cases\nNorth,*\nSouth,40\nTotal,80\nAll,80\n",
            vec![],
        ),
    ];
    for (label, data, expected) in cases {
        for chunk in [3, 4096] {
            let got = run(&g, "t.csv", data, chunk);
            let got: Vec<_> = rules(&got)
                .into_iter()
                .filter(|(r, _)| *r != "small_count")
                .collect();
            assert_eq!(got, expected, "{label} in chunks of {chunk}");
        }
    }
    // The finding says what the cell is, and how it was found.
    let got = run(
        &g,
        "t.csv",
        b"region,male,female,total\nNorth,12,*,30\nSouth,20,15,35\n",
        64,
    );
    let f = got
        .iter()
        .find(|f| f.rule == "suppression_recoverable")
        .unwrap();
    assert!(f.message.contains("it is 18"), "{}", f.message);
    assert!(f.remediation.as_deref().unwrap().contains("total"), "{f:?}");
    // Off when the gate says so.
    let off =
        gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "checkTotals": false}]));
    assert!(
        run(&off, "t.csv", b"region,a,b,total\nNorth,30,*,40\n", 64)
            .iter()
            .all(|f| f.rule != "suppression_recoverable")
    );
    // A table too large to keep, with suppressed cells, is uncertain; without, it is not.
    let mut big = String::from("region,a,b,total\n");
    for i in 0..(super::totals::MAX_KEPT_CELLS / 4 + 10) {
        big.push_str(&format!("r{i},20,20,40\n"));
    }
    assert!(run(&g, "t.csv", big.as_bytes(), 1 << 16).is_empty());
    big.push_str("last,*,20,40\nTotal,*,*,*\n");
    let got = run(&g, "t.csv", big.as_bytes(), 1 << 16);
    let got = rules(&got);
    assert!(
        got.contains(&("suppression_recoverable", Some("row 50012, column \"a\""))),
        "{got:?}"
    );
    assert!(got.contains(&("uncertain", None)), "{got:?}");
}

/// k-anonymity on record-level tables: each combination of the quasi-identifiers must be
/// shared by k rows; tables with counts, with fewer than two detected quasi-identifiers, or
/// whose small groups are large enough say nothing.
#[test]
fn small_groups_on_quasi_identifiers() {
    let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "threshold": 3}]));
    let mut records = String::from("person,age_band,sex,region,score\n");
    for i in 0..6 {
        records.push_str(&format!("p{i},30-39,F,North,{i}\n"));
    }
    records.push_str("p9,80+,M,Orkney,7\n");
    let got = run(&g, "r.csv", records.as_bytes(), 5);
    assert_eq!(
        rules(&got),
        vec![("k_anonymity", Some("row 8, column \"age_band\""))]
    );
    assert!(
        got[0]
            .message
            .contains("1 row(s) share age_band=80+, sex=M, region=Orkney"),
        "{}",
        got[0].message
    );
    // Enough in every group.
    let fine = records.replace("p9,80+,M,Orkney,7\n", "");
    assert!(run(&g, "r.csv", fine.as_bytes(), 5).is_empty());
    // An aggregate (a count column) is judged by its counts, not its rows.
    let aggregate = "age_band,sex,n\n30-39,F,40\n80+,M,12\n";
    assert!(run(&g, "a.csv", aggregate.as_bytes(), 5).is_empty());
    // One detected quasi-identifier is not enough (a results table by region).
    let by_region = "region,estimate\nNorth,0.3\nSouth,0.4\n";
    assert!(run(&g, "e.csv", by_region.as_bytes(), 5).is_empty());
    // ... unless the gate declares it.
    let declared = gates(
        serde_json::json!([{"name": "sdc", "kind": "disclosure", "threshold": 3, "quasiIdentifiers": ["Region"]}]),
    );
    assert_eq!(
        rules(&run(&declared, "e.csv", by_region.as_bytes(), 5)),
        vec![
            ("k_anonymity", Some("row 2, column \"region\"")),
            ("k_anonymity", Some("row 3, column \"region\""))
        ]
    );
    // k of 0 turns it off; a larger k than the threshold is honoured.
    let off = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "kAnonymity": 0}]));
    assert!(run(&off, "r.csv", records.as_bytes(), 5).is_empty());
    let strict = gates(
        serde_json::json!([{"name": "sdc", "kind": "disclosure", "threshold": 3, "kAnonymity": 7}]),
    );
    assert_eq!(
        rules(&run(&strict, "r.csv", records.as_bytes(), 5)).len(),
        2
    );
    // Words inside other words are not quasi-identifiers.
    assert!(super::groups::is_quasi_identifier("age_band"));
    assert!(super::groups::is_quasi_identifier("admission_date"));
    assert!(!super::groups::is_quasi_identifier("average"));
    assert!(!super::groups::is_quasi_identifier("usage"));
    // Too many combinations to count: uncertain, never a pass.
    let mut varied = String::from("dob,postcode,x\n");
    for i in 0..(super::groups::MAX_GROUPS + 1) {
        varied.push_str(&format!("d{i},p{i},1\n"));
    }
    let got = run(&g, "v.csv", varied.as_bytes(), 1 << 16);
    assert_eq!(rules(&got), vec![("uncertain", None)]);
}

/// Linked tables: the seal reads each table's label columns (not its counts, measures or
/// totals); two tables of a request that share some and each add one can be joined into a
/// finer table, and both are flagged for the reviewer (warn, whatever the gate's mode).
#[test]
fn tables_that_join_into_a_finer_table_are_linked() {
    let g = gates(serde_json::json!([{"name": "sdc", "kind": "disclosure"}]));
    let labels = |data: &[u8]| {
        let mut runner = GateRunner::new(&g, "t.csv").unwrap();
        runner.feed(data);
        runner.finish().labels
    };
    let by_sex = labels(b"age_band,sex,n,mean_bmi,total\n30-39,F,40,25.1,40\n").unwrap();
    assert_eq!(by_sex, ["age_band", "sex"]);
    let by_region = labels(b"Age_Band,Region,count\n30-39,North,40\n").unwrap();
    assert_eq!(by_region, ["age_band", "region"]);
    // A year is a label though it is a number; a column of numbers is not.
    assert_eq!(
        labels(b"year,sex,score\n2020,F,0.5\n").unwrap(),
        ["year", "sex"]
    );
    assert_eq!(labels(b"n\n40\n"), None, "no label column");
    let again = by_sex.clone();
    let only_age = vec!["age_band".to_string()];
    let other = vec!["site".to_string()];
    let gate = &g[0];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [String])>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "two breakdowns sharing a column",
            vec![("a.csv", &by_sex), ("b.csv", &by_region)],
            vec!["a.csv", "b.csv"],
        ),
        (
            "the same breakdown twice is not finer",
            vec![("a.csv", &by_sex), ("c.csv", &again)],
            vec![],
        ),
        (
            "a coarser table inside a finer one is not finer",
            vec![("a.csv", &by_sex), ("d.csv", &only_age)],
            vec![],
        ),
        (
            "nothing shared, nothing to join on",
            vec![("a.csv", &by_sex), ("e.csv", &other)],
            vec![],
        ),
    ];
    for (label, tables, expected) in cases {
        let found = linked_tables(&tables, gate);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, expected, "{label}");
        for (_, f) in &found {
            assert_eq!((f.rule.as_str(), f.mode), (LINKED_TABLES, GateMode::Warn));
            assert!(
                f.message.contains("by age_band, region, sex"),
                "{}",
                f.message
            );
            assert!(f.remediation.is_some());
        }
    }
    let off =
        gates(serde_json::json!([{"name": "sdc", "kind": "disclosure", "linkedTables": false}]));
    assert!(linking_gate(&off).is_none());
    let mut runner = GateRunner::new(&off, "t.csv").unwrap();
    runner.feed(b"age_band,sex,n\n30-39,F,40\n");
    assert_eq!(runner.finish().labels, None);
}
