//! The built-in gates run over a file's bytes as they stream through the seal: one
//! [`GateRunner`] per file, fed chunk by chunk, with bounded memory.

use super::*;

/// Runs a workspace's gates over one file's bytes as they stream past.
pub struct GateRunner {
    name: String,
    gates: Vec<Gate>,
    head: Vec<u8>,
    table: Option<TableScan>,
    /// The last bytes of a file that starts like a zip (its directory is at the end).
    tail: Option<Vec<u8>>,
    /// The bytes of a file that may be part of an ACRO record (by its name).
    acro: Option<acro::Capture>,
    /// The `identifiers` and `secrets` gates' reading.
    content: Option<identifiers::ContentScan>,
    /// The content reading was taken to be read elsewhere ([`GateRunner::take_content`]).
    content_taken: bool,
    /// Whether a gate needs the table read to its end (not only its snapshot).
    gates_read_table: bool,
    total: u64,
}

/// What the gates made of one file's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Every finding, in gate order.
    pub findings: Vec<Finding>,
    /// The table's cells, when a release-ledger gate compares tables.
    pub cells: Option<TableCells>,
    /// What the file says as part of an ACRO record.
    pub evidence: Option<Evidence>,
    /// A small table's cells, for the next revision's cell-level diff (the seal keeps them).
    pub snapshot: Option<table::TableSnapshot>,
    /// The gates that read this file (a disclosure gate reads tables only): what the gate
    /// report may call checked.
    pub read_by: Vec<String>,
    /// A table's label columns (lower case), when a disclosure gate links tables.
    pub labels: Option<Vec<String>>,
}

impl GateRunner {
    /// `None` when no gate is on for this file (nothing to run, nothing to keep).
    pub fn new(gates: &[Gate], name: &str) -> Option<GateRunner> {
        GateRunner::build(gates, name, false)
    }

    /// The runner of the seal: the gates, and a CSV/TSV table's snapshot (small tables only)
    /// for comparing the next revision's table with it cell by cell.
    pub fn for_seal(gates: &[Gate], name: &str) -> Option<GateRunner> {
        GateRunner::build(gates, name, true)
    }

    fn build(gates: &[Gate], name: &str, snapshot: bool) -> Option<GateRunner> {
        let acro = acro_gate(gates).and_then(|_| acro::Capture::new(name));
        let snapshot = snapshot && is_table(name).is_some();
        let gates: Vec<Gate> = gates
            .iter()
            .filter(|g| g.mode != GateMode::Off)
            .cloned()
            .collect();
        if gates.is_empty() && acro.is_none() && !snapshot {
            return None;
        }
        let needs_table = gates.iter().any(|g| match &g.kind {
            GateKind::Disclosure(_) | GateKind::ReleaseLedger {} => true,
            GateKind::FilePolicy(p) => p.max_csv_rows.is_some(),
            GateKind::External(_)
            | GateKind::Acro {}
            | GateKind::Identifiers(_)
            | GateKind::Secrets(_) => false,
        });
        let table = is_table(name)
            .filter(|_| needs_table || snapshot)
            .map(|separator| TableScan::new(separator, &gates, snapshot));
        // The end of every file is kept when a file policy runs: a zip's directory is there,
        // also when the zip is appended to a file of another type (a polyglot).
        let inspects_archives = gates
            .iter()
            .any(|g| matches!(&g.kind, GateKind::FilePolicy(_)));
        let content = identifiers::ContentScan::new(&gates, name);
        Some(GateRunner {
            name: name.to_string(),
            gates,
            head: Vec::new(),
            table,
            tail: inspects_archives.then(Vec::new),
            acro,
            content,
            content_taken: false,
            gates_read_table: needs_table,
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
        if let Some(table) = &mut self.table
            && (self.gates_read_table || !table.only_a_full_snapshot())
        {
            table.feed(chunk);
        }
        if let Some(acro) = &mut self.acro {
            acro.feed(chunk);
        }
        if let Some(content) = &mut self.content {
            content.feed(chunk);
        }
    }

    /// The `identifiers` and `secrets` gates' reading, taken out of this runner so that it can
    /// read the same chunks on another thread: it shares nothing with the other gates until
    /// their findings are put together by [`GateRunner::finish_with`]. `None` when neither
    /// gate is on (or it was taken already).
    pub fn take_content(&mut self) -> Option<ContentReader> {
        let taken = self.content.take().map(ContentReader);
        self.content_taken |= taken.is_some();
        taken
    }

    /// Every finding, in gate order, the table's cells when a release-ledger gate wants
    /// them, and what the file says as part of an ACRO record.
    pub fn finish(self) -> Checked {
        self.finish_with(None)
    }

    /// [`GateRunner::finish`], with the findings of the content reading taken from this
    /// runner. If it was taken and its findings are not given, the content gates say they
    /// could not read the file (`uncertain`): never a silent pass.
    pub fn finish_with(mut self, content: Option<ContentFindings>) -> Checked {
        let sniffed = sniff(&self.head);
        let ext = extension(&self.name);
        let mut table = self.table.take().map(TableScan::finish);
        let snapshot = table.as_mut().and_then(|t| t.snapshot.take());
        let tail = self.tail.take();
        // A zip behind other content: both things at once.
        let appended_zip = sniffed != Sniffed::Archive("zip")
            && tail.as_deref().is_some_and(crate::archive::ends_like_a_zip);
        let zip = (sniffed == Sniffed::Archive("zip") || appended_zip)
            .then_some(tail)
            .flatten()
            .map(|tail| crate::archive::central_directory(&tail, self.total));
        let content = match (self.content.take(), content) {
            (Some(scan), _) => scan.finish(),
            (None, Some(ContentFindings(found))) => found,
            (None, None) if self.content_taken => self
                .gates
                .iter()
                .filter(|g| matches!(g.kind, GateKind::Identifiers(_) | GateKind::Secrets(_)))
                .map(|g| Finding {
                    gate: g.name.clone(),
                    mode: g.mode_of(UNCERTAIN),
                    rule: UNCERTAIN.into(),
                    message: "the file's reading for this gate did not finish".into(),
                    location: Some("whole file".into()),
                    cell: None,
                    remediation: None,
                    needs_justification: g.needs_justification(),
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut findings = Vec::new();
        for gate in &self.gates {
            // The table's findings keep their cell (`add` knows only a location's words).
            let mut table_findings = Vec::new();
            let mut add = |rule: &str, message: String, location: Option<String>| {
                findings.push(Finding {
                    gate: gate.name.clone(),
                    mode: gate.mode_of(rule),
                    rule: rule.into(),
                    message,
                    location,
                    cell: None,
                    remediation: None,
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
                // Not a property of the bytes alone: the workflow asks the ledger, other
                // systems answer for external gates, and ACRO's record is checked against
                // every file of the request once all are sealed.
                GateKind::ReleaseLedger {} | GateKind::External(_) | GateKind::Acro {} => {}
                GateKind::Identifiers(_) | GateKind::Secrets(_) => {
                    table_findings.extend(content.iter().filter(|f| f.gate == gate.name).cloned())
                }
                GateKind::Disclosure(_) => {
                    if let Some(t) = &table {
                        for f in t.findings.iter().filter(|f| f.gate == gate.name) {
                            table_findings.push(Finding {
                                mode: gate.mode_of(&f.rule),
                                needs_justification: gate.needs_justification(),
                                ..f.clone()
                            });
                        }
                    }
                }
            }
            findings.append(&mut table_findings);
        }
        super::add_remediation(&mut findings, &self.gates);
        let read_by = self
            .gates
            .iter()
            .filter(|g| match &g.kind {
                GateKind::Disclosure(_) => table.is_some(),
                GateKind::FilePolicy(_)
                | GateKind::ReleaseLedger {}
                | GateKind::Identifiers(_)
                | GateKind::Secrets(_) => true,
                // Checked elsewhere: by another system, or against the whole request.
                GateKind::External(_) | GateKind::Acro {} => false,
            })
            // A gate one of whose rules could not run did not check the file.
            .filter(|g| {
                !findings
                    .iter()
                    .any(|f| f.gate == g.name && f.rule == UNCERTAIN)
            })
            .map(|g| g.name.clone())
            .collect();
        Checked {
            read_by,
            labels: table.as_mut().and_then(|t| t.labels.take()),
            findings,
            cells: table.and_then(|t| t.cells),
            evidence: self.acro.and_then(acro::Capture::finish),
            snapshot,
        }
    }
}

/// What is wrong with a zip's entries: names that climb out or hide, encrypted entries (they
/// cannot be scanned or checked), archives inside, programs, extensions outside the list.
pub(super) fn zip_findings(
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

pub(super) fn describe(sniffed: Sniffed) -> String {
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

/// The `identifiers` and `secrets` gates' reading of one file, on its own
/// ([`GateRunner::take_content`]).
pub struct ContentReader(identifiers::ContentScan);

impl ContentReader {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.0.feed(chunk);
    }

    pub fn finish(self) -> ContentFindings {
        ContentFindings(self.0.finish())
    }
}

/// What a [`ContentReader`] found, for [`GateRunner::finish_with`].
#[derive(Debug)]
pub struct ContentFindings(Vec<Finding>);
