//! Direct identifiers and secrets in a file's content, read as it streams through the seal:
//! text line by line (at most [`MAX_LINE_BYTES`] of a line at once; a longer one is read in
//! overlapping windows), and the first [`HEAD_BYTES`] of a file for what sits in its header
//! (DICOM's patient tags, an image's EXIF GPS position). Memory: one line, the head, and the
//! capped findings.
//!
//! - **`identifiers`** gates: NHS numbers (10 digits, spaced 3-3-4 or not, passing the
//!   modulus-11 check digit), CHI numbers (a date of birth DDMMYY and 4 digits, passing the same
//!   check), National Insurance numbers, e-mail addresses, full UK postcodes, a date on the same
//!   line as one of those, per-sample genotype columns in a VCF, DICOM patient tags, GPS
//!   positions in EXIF.
//! - **`secrets`** gates: private key blocks, cloud access keys and connection strings (AWS,
//!   Azure storage keys and SAS signatures, GitHub, Slack, Google), bearer tokens and JWTs,
//!   passwords and API keys assigned in JSON, YAML, `.env`, INI files and scripts.
//!
//! Each finding names the line (`line 12`) or the header field, never the value itself: the
//! finding is shown to people who must not see the identifier either.

use super::*;
use aho_corasick::AhoCorasick;
use std::sync::LazyLock;

/// A line is read at most this much at once; a longer one in windows overlapping by
/// [`OVERLAP`] bytes, so a token across a window's edge is still seen.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
const OVERLAP: usize = 256;
/// The head kept for header fields (DICOM, EXIF).
pub const HEAD_BYTES: usize = 64 * 1024;
/// Findings listed per rule and file; the rest are counted in one more finding.
const MAX_PER_RULE: usize = 20;
/// Files where a value is assigned to a name: configuration and scripts.
const ASSIGNING_EXTENSIONS: &[&str] = &[
    "json",
    "yaml",
    "yml",
    "env",
    "ini",
    "cfg",
    "conf",
    "toml",
    "properties",
    "py",
    "r",
    "rmd",
    "sh",
    "bash",
    "ps1",
    "js",
    "ts",
    "rb",
    "ipynb",
    "sql",
    "do",
    "sas",
    "m",
    "jl",
];

/// Parameters of an `identifiers` or `secrets` gate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentRules {
    /// Rules of this gate not to run (`postcode`, `email`, ...).
    pub ignore: Vec<String>,
}

/// Which family a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Identifiers,
    Secrets,
}

/// Reads one file's bytes for the `identifiers` and `secrets` gates.
pub(super) struct ContentScan {
    gates: Vec<(Gate, Family, ContentRules)>,
    /// Configuration files and scripts, where `password: ...` is an assignment (in a table or
    /// prose it is words).
    assigns: bool,
    line: Vec<u8>,
    line_no: u64,
    /// The line being read is longer than [`MAX_LINE_BYTES`]: its windows are being read.
    windowed: bool,
    head: Vec<u8>,
    /// A NUL in the first bytes: not text, no line rules.
    binary: bool,
    seen: u64,
    found: Vec<(Family, &'static str, String, String)>,
    counts: std::collections::BTreeMap<(u8, &'static str), usize>,
}

impl ContentScan {
    /// `None` when no `identifiers` or `secrets` gate is on.
    pub(super) fn new(gates: &[Gate], name: &str) -> Option<ContentScan> {
        let gates: Vec<(Gate, Family, ContentRules)> = gates
            .iter()
            .filter(|g| g.mode != GateMode::Off)
            .filter_map(|g| match &g.kind {
                GateKind::Identifiers(r) => Some((g.clone(), Family::Identifiers, r.clone())),
                GateKind::Secrets(r) => Some((g.clone(), Family::Secrets, r.clone())),
                _ => None,
            })
            .collect();
        (!gates.is_empty()).then(|| ContentScan {
            gates,
            assigns: ASSIGNING_EXTENSIONS.contains(&extension(name).as_str()),
            line: Vec::new(),
            line_no: 0,
            windowed: false,
            head: Vec::new(),
            binary: false,
            seen: 0,
            found: Vec::new(),
            counts: Default::default(),
        })
    }

    fn wants(&self, family: Family) -> bool {
        self.gates.iter().any(|(_, f, _)| *f == family)
    }

    pub(super) fn feed(&mut self, mut chunk: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if self.seen < SNIFF_BYTES as u64 {
            let look = (SNIFF_BYTES - self.seen as usize).min(chunk.len());
            if chunk[..look].contains(&0) {
                self.binary = true;
            }
        }
        self.seen += chunk.len() as u64;
        if self.binary {
            return;
        }
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.push_bytes(&chunk[..end]);
                    self.end_line();
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.push_bytes(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// Adds to the line; a full line is read as a window and its tail kept for the next.
    fn push_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE_BYTES - self.line.len();
            let take = room.min(bytes.len());
            self.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.line.len() >= MAX_LINE_BYTES {
                if !self.windowed {
                    self.line_no += 1;
                    self.windowed = true;
                }
                self.read_line();
                let keep = self.line.split_off(self.line.len() - OVERLAP);
                self.line = keep;
            }
        }
    }

    fn end_line(&mut self) {
        if !self.windowed {
            self.line_no += 1;
        }
        self.read_line();
        self.line.clear();
        self.windowed = false;
    }

    fn add(&mut self, family: Family, rule: &'static str, message: String, location: String) {
        let key = (family as u8, rule);
        let n = self.counts.entry(key).or_default();
        *n += 1;
        if *n <= MAX_PER_RULE
            && !self
                .found
                .iter()
                .any(|(f, r, _, l)| *f == family && *r == rule && *l == location)
        {
            self.found.push((family, rule, message, location));
        }
    }

    fn read_line(&mut self) {
        // Lent out (not copied) while its findings are added; named only when there is one.
        let line = std::mem::take(&mut self.line);
        // Valid UTF-8 (nearly every line) is read as it is, without a lossy copy.
        let lossy;
        let text = match std::str::from_utf8(&line) {
            Ok(valid) => valid,
            Err(_) => {
                lossy = String::from_utf8_lossy(&line);
                &lossy
            }
        };
        let text = text.trim_end_matches('\r');
        let line_no = self.line_no;
        let at = || format!("line {line_no}");
        if self.wants(Family::Identifiers) {
            let mut identified = false;
            for (rule, what) in identifiers_in(text) {
                identified = true;
                self.add(Family::Identifiers, rule, what, at());
            }
            if identified && has_date(text) {
                self.add(
                    Family::Identifiers,
                    "date_with_identifier",
                    "a date on the same line as a direct identifier (a date of birth?)".into(),
                    at(),
                );
            }
            if let Some(samples) = vcf_samples(text) {
                self.add(
                    Family::Identifiers,
                    "vcf_genotypes",
                    format!("a VCF with per-sample genotype columns for {samples} sample(s)"),
                    at(),
                );
            }
        }
        if self.wants(Family::Secrets) {
            for (rule, what) in secrets_in(text, self.assigns) {
                self.add(Family::Secrets, rule, what, at());
            }
        }
        self.line = line;
    }

    /// Every finding, per gate (a gate's `ignore` leaves its rules out).
    pub(super) fn finish(mut self) -> Vec<Finding> {
        if !self.binary && !self.line.is_empty() {
            self.end_line();
        }
        // Only a header was read of a file that is not text: an image's EXIF, a DICOM
        // file's tags. Anything else binary (compressed, a spreadsheet, a PDF, UTF-16 text)
        // was not read by the line rules, and saying nothing would read as a pass.
        let header_only = matches!(sniff(&self.head), Sniffed::Png | Sniffed::Jpeg)
            || self.head.get(128..132) == Some(b"DICM".as_slice());
        if self.binary && !header_only {
            let what = describe(sniff(&self.head));
            for family in [Family::Identifiers, Family::Secrets] {
                if self.wants(family) {
                    self.add(
                        family,
                        UNCERTAIN,
                        format!(
                            "the content is {what}, not text: it could not be read for {}",
                            match family {
                                Family::Identifiers => "identifiers",
                                Family::Secrets => "credentials",
                            }
                        ),
                        "whole file".into(),
                    );
                }
            }
        }
        if self.wants(Family::Identifiers) {
            if let Some(tags) = dicom_patient_tags(&self.head) {
                self.add(
                    Family::Identifiers,
                    "dicom",
                    format!(
                        "a DICOM file whose header names the patient: {}",
                        tags.join(", ")
                    ),
                    "DICOM header, group 0010".into(),
                );
            }
            if exif_has_gps(&self.head) {
                self.add(
                    Family::Identifiers,
                    "exif_gps",
                    "the image's EXIF metadata gives the GPS position where it was taken".into(),
                    "EXIF GPS tags".into(),
                );
            }
        }
        let mut findings = Vec::new();
        for (gate, family, rules) in &self.gates {
            for (f, rule, message, location) in &self.found {
                if f == family && !rules.ignore.iter().any(|r| r == rule) {
                    findings.push(Finding {
                        gate: gate.name.clone(),
                        mode: gate.mode_of(rule),
                        rule: (*rule).into(),
                        message: message.clone(),
                        location: Some(location.clone()),
                        cell: None,
                        remediation: (*rule == UNCERTAIN).then(|| {
                            "export the content as UTF-8 text (CSV, TXT, JSON) so that it can be checked, or ask a reviewer to read it".into()
                        }),
                        needs_justification: gate.needs_justification(),
                    });
                }
            }
            for ((f, rule), n) in &self.counts {
                if *f == *family as u8
                    && *n > MAX_PER_RULE
                    && !rules.ignore.iter().any(|r| r == rule)
                {
                    findings.push(Finding {
                        gate: gate.name.clone(),
                        mode: gate.mode,
                        rule: (*rule).into(),
                        message: format!(
                            "and {} more {rule} finding(s) not listed",
                            n - MAX_PER_RULE
                        ),
                        location: None,
                        cell: None,
                        remediation: None,
                        needs_justification: gate.needs_justification(),
                    });
                }
            }
        }
        findings
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `s[start..end]` stands alone: no letter, digit or `_` (nor a `.` next to a digit:
/// a decimal) right before or after it.
fn standalone(s: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).map(|i| s[i]);
    let after = s.get(end).copied();
    let decimal = |b: Option<u8>, next: Option<u8>| {
        b == Some(b'.') && next.is_some_and(|n| n.is_ascii_digit())
    };
    !before.is_some_and(is_word_byte)
        && !after.is_some_and(is_word_byte)
        && !decimal(before, start.checked_sub(2).map(|i| s[i]))
        && !decimal(after, s.get(end + 1).copied())
}

/// The modulus-11 check of NHS and CHI numbers: weights 10 to 2 on the first nine digits;
/// 11 minus the remainder is the check digit (11 is 0, 10 is never issued).
pub fn modulus_11_valid(digits: &[u8; 10]) -> bool {
    let sum: u32 = digits[..9]
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (10 - i as u32))
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    u32::from(digits[9]) == check
}

/// `ddmmyy` is a date.
fn is_ddmmyy(d: &[u8]) -> bool {
    let day = d[0] * 10 + d[1];
    let month = d[2] * 10 + d[3];
    (1..=31).contains(&day) && (1..=12).contains(&month)
}

/// NHS or CHI numbers, National Insurance numbers, e-mail addresses and postcodes in a line.
fn identifiers_in(text: &str) -> Vec<(&'static str, String)> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    // Ten digits, alone or spaced 3-3-4.
    let mut i = 0;
    while i < s.len() {
        if !s[i].is_ascii_digit() || (i > 0 && s[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // Glued to a word before it (`g0123456789`): never standalone, whatever follows.
        if i > 0 && is_word_byte(s[i - 1]) {
            i += 1;
            continue;
        }
        for spaced in [false, true] {
            let len = if spaced { 12 } else { 10 };
            let Some(window) = s.get(i..i + len) else {
                continue;
            };
            let mut digits = [0u8; 10];
            let mut n = 0;
            let mut ok = true;
            for (k, &b) in window.iter().enumerate() {
                if spaced && (k == 3 || k == 7) {
                    ok &= b == b' ' || b == b'-';
                } else if b.is_ascii_digit() {
                    digits[n] = b - b'0';
                    n += 1;
                } else {
                    ok = false;
                }
            }
            if !ok || n != 10 || !standalone(s, i, i + len) {
                continue;
            }
            if digits.iter().all(|d| *d == digits[0]) || !modulus_11_valid(&digits) {
                continue;
            }
            if is_ddmmyy(&digits[..6]) && digits[0] <= 3 {
                out.push((
                    "chi_number",
                    "a CHI number (a date of birth and 4 digits passing the check digit)".into(),
                ));
            } else {
                out.push((
                    "nhs_number",
                    "an NHS number (10 digits passing the modulus-11 check digit)".into(),
                ));
            }
        }
        i += 1;
    }
    // National Insurance numbers (AB 12 34 56 C) and full postcodes both start with an
    // upper-case letter: only those places are tried.
    let capitals: Vec<usize> = (0..s.len())
        .filter(|&i| s[i].is_ascii_uppercase())
        .collect();
    for &start in &capitals {
        if let Some(end) = ni_number_at(s, start)
            && standalone(s, start, end)
        {
            out.push(("ni_number", "a National Insurance number".into()));
        }
    }
    // E-mail addresses.
    for (at, _) in text.match_indices('@') {
        let local = s[..at]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(b))
            .count();
        let domain: &[u8] = &s[at + 1..];
        let dlen = domain
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || b".-".contains(b))
            .count();
        let domain = std::str::from_utf8(&domain[..dlen])
            .unwrap_or("")
            .trim_end_matches('.');
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
        });
        if local > 0 && tld_ok {
            out.push(("email", "an e-mail address".into()));
        }
    }
    // Full UK postcodes: outward code, a space or none, inward code.
    for &start in &capitals {
        if let Some(end) = postcode_at(s, start)
            && standalone(s, start, end)
        {
            out.push(("postcode", "a full UK postcode".into()));
        }
    }
    out
}

/// The end of a National Insurance number starting at `start`.
fn ni_number_at(s: &[u8], start: usize) -> Option<usize> {
    const FIRST_NOT: &[u8] = b"DFIQUV";
    const SECOND_NOT: &[u8] = b"DFIQUVO";
    const PREFIX_NOT: [&[u8]; 7] = [b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"];
    let a = *s.get(start)?;
    let b = *s.get(start + 1)?;
    if !a.is_ascii_uppercase()
        || !b.is_ascii_uppercase()
        || FIRST_NOT.contains(&a)
        || SECOND_NOT.contains(&b)
    {
        return None;
    }
    if PREFIX_NOT.contains(&&s[start..start + 2]) {
        return None;
    }
    let mut i = start + 2;
    for _ in 0..3 {
        if s.get(i) == Some(&b' ') {
            i += 1;
        }
        if !(s.get(i)?.is_ascii_digit() && s.get(i + 1)?.is_ascii_digit()) {
            return None;
        }
        i += 2;
    }
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    matches!(s.get(i)?, b'A'..=b'D').then_some(i + 1)
}

/// The end of a full UK postcode starting at `start` (upper case, as written on letters).
fn postcode_at(s: &[u8], start: usize) -> Option<usize> {
    let letter = |i: usize| s.get(i).is_some_and(|b| b.is_ascii_uppercase());
    let digit = |i: usize| s.get(i).is_some_and(|b| b.is_ascii_digit());
    // Outward: A9, A99, A9A, AA9, AA99, AA9A.
    let mut i = start;
    if !letter(i) {
        return None;
    }
    i += 1;
    if letter(i) {
        i += 1;
    }
    if !digit(i) {
        return None;
    }
    i += 1;
    if digit(i) || letter(i) {
        // A second digit or a letter, unless it starts the inward code (9AA) right away.
        let inward_here = digit(i)
            && letter(i + 1)
            && letter(i + 2)
            && !s.get(i + 3).is_some_and(|b| b.is_ascii_alphanumeric());
        if !inward_here {
            i += 1;
        }
    }
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    // Inward: 9AA, without C I K M O V.
    const NOT_INWARD: &[u8] = b"CIKMOV";
    if digit(i)
        && letter(i + 1)
        && letter(i + 2)
        && !NOT_INWARD.contains(&s[i + 1])
        && !NOT_INWARD.contains(&s[i + 2])
    {
        Some(i + 3)
    } else {
        None
    }
}

/// A date (`31/12/1980`, `1980-12-31`) anywhere in the line.
fn has_date(text: &str) -> bool {
    let s = text.as_bytes();
    let digits = |i: usize, n: usize| {
        s.get(i..i + n)
            .is_some_and(|w| w.iter().all(u8::is_ascii_digit))
    };
    (0..s.len()).any(|i| {
        (digits(i, 4)
            && s.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && s.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2))
            || (digits(i, 2)
                && s.get(i + 2) == Some(&b'/')
                && digits(i + 3, 2)
                && s.get(i + 5) == Some(&b'/')
                && digits(i + 6, 4))
    })
}

/// The number of sample columns of a VCF's `#CHROM` header line (after `FORMAT`).
fn vcf_samples(text: &str) -> Option<usize> {
    let columns: Vec<&str> = text.strip_prefix("#CHROM")?.split('\t').collect();
    let format = columns.iter().position(|c| *c == "FORMAT")?;
    let samples = columns.len() - format - 1;
    (samples > 0).then_some(samples)
}

/// The PEM markers are put together at run time (once): the production binary must not carry
/// them itself (a test checks it holds no private-key marker).
static BEGIN: LazyLock<String> = LazyLock::new(|| format!("{}BEGIN ", "-".repeat(5)));

/// Every credential rule but the assignments needs one of these words in the line. They are
/// looked for ignoring case (a superset of what the rules match), all in one pass by one
/// automaton built once: most lines have none and are passed over, where the rules would
/// search each line for each word in turn.
static SECRET_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let mut words = vec![
        BEGIN.clone(),
        "bearer ".to_string(),
        "sig=".to_string(),
        "eyJ".to_string(),
    ];
    words.extend(
        CLOUD_KEY_PREFIXES
            .iter()
            .chain(SLACK_PREFIXES)
            .chain(CONNECTION_KEYS)
            .map(|w| w.to_string()),
    );
    words_automaton(&words)
});

/// The names a password or key is assigned to, for [`assigned_secret`].
static ASSIGNED_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| words_automaton(&ASSIGNED_KEYS));

fn words_automaton<W: AsRef<[u8]>>(words: &[W]) -> AhoCorasick {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(words)
        .expect("a fixed list of words builds")
}

const CLOUD_KEY_PREFIXES: &[&str] = &["AKIA", "ASIA", "ghp_", "gho_", "github_pat_", "AIza"];
const SLACK_PREFIXES: &[&str] = &["xoxb-", "xoxp-", "xoxa-"];
const CONNECTION_KEYS: &[&str] = &["AccountKey=", "SharedAccessKey="];
const ASSIGNED_KEYS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "client_secret",
    "auth_token",
];

/// Credentials in a line.
fn secrets_in(text: &str, assigns: bool) -> Vec<(&'static str, String)> {
    if !(SECRET_WORDS.is_match(text) || (assigns && ASSIGNED_WORDS.is_match(text))) {
        return Vec::new();
    }
    let s = text.as_bytes();
    let mut out = Vec::new();
    if let Some(at) = text.find(BEGIN.as_str()) {
        let dashes = &BEGIN[..5];
        let rest = &text[at + BEGIN.len()..];
        let label = &rest[..rest.find(dashes).unwrap_or(rest.len())];
        if label.split(' ').any(|w| w == "PRIVATE") && label.ends_with("KEY") {
            out.push(("private_key", "a private key block".into()));
        }
    }
    let token_chars = |from: usize, allowed: &dyn Fn(u8) -> bool| {
        s[from.min(s.len())..]
            .iter()
            .take_while(|b| allowed(**b))
            .count()
    };
    let upper_digit = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b"+/=".contains(&b);
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b"-_".contains(&b);
    for (prefix, len, allowed, what) in [
        (
            "AKIA",
            16,
            &upper_digit as &dyn Fn(u8) -> bool,
            "an AWS access key id",
        ),
        ("ASIA", 16, &upper_digit, "an AWS temporary access key id"),
        ("ghp_", 36, &alnum, "a GitHub token"),
        ("gho_", 36, &alnum, "a GitHub token"),
        ("github_pat_", 40, &url_safe, "a GitHub token"),
        ("AIza", 35, &url_safe, "a Google API key"),
    ] {
        for (at, _) in text.match_indices(prefix) {
            if (at == 0 || !is_word_byte(s[at - 1]))
                && token_chars(at + prefix.len(), allowed) >= len
            {
                out.push(("cloud_key", what.into()));
            }
        }
    }
    for prefix in SLACK_PREFIXES {
        if text.contains(prefix) {
            out.push(("cloud_key", "a Slack token".into()));
        }
    }
    for key in CONNECTION_KEYS {
        for (at, _) in text.match_indices(key) {
            if token_chars(at + key.len(), &base64) >= 20 {
                out.push((
                    "cloud_key",
                    "an Azure storage or service bus key (connection string)".into(),
                ));
            }
        }
    }
    if let Some(at) = text.find("sig=")
        && text.contains("sv=")
        && token_chars(at + 4, &|b| base64(b) || b == b'%') >= 20
    {
        out.push((
            "cloud_key",
            "a signed link (Azure SAS) with its signature".into(),
        ));
    }
    // JWTs (bearer tokens) and bearer headers.
    for (at, _) in text.match_indices("eyJ") {
        let rest = &s[at..];
        let parts: Vec<usize> = rest
            .split(|b| !url_safe(*b) && *b != b'.')
            .next()
            .map(|t| t.split(|b| *b == b'.').map(|p| p.len()).collect())
            .unwrap_or_default();
        if parts.len() == 3
            && parts.iter().all(|n| *n >= 10)
            && (at == 0 || !is_word_byte(s[at - 1]))
        {
            out.push((
                "bearer_token",
                "a JSON web token (a bearer credential)".into(),
            ));
        }
    }
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find("bearer ")
        && token_chars(at + 7, &|b| url_safe(b) || b"./+=".contains(&b)) >= 20
        && !out.iter().any(|(r, _)| *r == "bearer_token")
    {
        out.push(("bearer_token", "a bearer token".into()));
    }
    if assigns && let Some(key) = assigned_secret(&lower, text) {
        out.push(("password", format!("a value assigned to {key:?}")));
    }
    out
}

/// A password or key assigned a literal value (`password=...`, `"api_key": "..."`,
/// `secret: ...`), not a placeholder or a lookup (`${VAR}`, `<password>`, `os.getenv(...)`).
fn assigned_secret(lower: &str, text: &str) -> Option<String> {
    for key in ASSIGNED_KEYS {
        for (at, _) in lower.match_indices(key) {
            let before = lower.as_bytes()[..at].last().copied();
            if before.is_some_and(|b| b.is_ascii_alphanumeric()) {
                continue;
            }
            // The key may be quoted and end a longer name (`db_password`); then `=` or `:`.
            let rest = &lower[at + key.len()..];
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let rest = rest.trim_start_matches(['"', '\'']).trim_start();
            let Some(value) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) else {
                continue;
            };
            let start = text.len() - value.len();
            let value = text[start..]
                .trim()
                .trim_end_matches([',', ';'])
                .trim_matches(['"', '\''])
                .trim();
            let placeholder = value.is_empty()
                || value.len() < 4
                || value.starts_with(['$', '<', '{', '%', '*', '[', '('])
                || value.contains('(')
                || value.chars().all(|c| c == '*' || c == 'x' || c == 'X')
                || [
                    "null",
                    "none",
                    "true",
                    "false",
                    "required",
                    "changeme_placeholder",
                ]
                .contains(&value.to_ascii_lowercase().as_str());
            if !placeholder {
                return Some(key.to_string());
            }
        }
    }
    None
}

/// The patient tags (group 0010) a DICOM file's header fills in, by name; `None` when the head
/// is not DICOM's (`DICM` after the 128-byte preamble) or names nobody.
fn dicom_patient_tags(head: &[u8]) -> Option<Vec<&'static str>> {
    if head.get(128..132) != Some(b"DICM") {
        return None;
    }
    const NAMES: [(u16, &str); 6] = [
        (0x0010, "PatientName"),
        (0x0020, "PatientID"),
        (0x0030, "PatientBirthDate"),
        (0x0040, "PatientSex"),
        (0x1010, "PatientAge"),
        (0x1040, "PatientAddress"),
    ];
    let mut found = Vec::new();
    // Explicit VR little endian elements (the file meta group always is); an implicit VR body
    // is read the same way when its values look like one.
    let mut i = 132;
    while i + 8 <= head.len() {
        let group = u16::from_le_bytes([head[i], head[i + 1]]);
        let element = u16::from_le_bytes([head[i + 2], head[i + 3]]);
        let vr = &head[i + 4..i + 6];
        let explicit = vr.iter().all(u8::is_ascii_uppercase);
        let (len, value_at) = if explicit {
            if [b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"]
                .iter()
                .any(|v| v.as_slice() == vr)
            {
                if i + 12 > head.len() {
                    break;
                }
                (
                    u32::from_le_bytes([head[i + 8], head[i + 9], head[i + 10], head[i + 11]])
                        as usize,
                    i + 12,
                )
            } else {
                (
                    u16::from_le_bytes([head[i + 6], head[i + 7]]) as usize,
                    i + 8,
                )
            }
        } else {
            (
                u32::from_le_bytes([head[i + 4], head[i + 5], head[i + 6], head[i + 7]]) as usize,
                i + 8,
            )
        };
        if len == 0xFFFF_FFFF {
            break;
        }
        if group == 0x0010
            && let Some((_, name)) = NAMES.iter().find(|(e, _)| *e == element)
        {
            let value = head
                .get(value_at..(value_at + len).min(head.len()))
                .unwrap_or(&[]);
            if value.iter().any(|b| !b.is_ascii_whitespace() && *b != 0) {
                found.push(*name);
            }
        }
        if group > 0x0010 && group != 0xFFFE {
            break;
        }
        i = value_at.saturating_add(len);
    }
    (!found.is_empty()).then_some(found)
}

/// Whether an image's EXIF block (JPEG APP1, PNG `eXIf`, or a TIFF file itself) within `head`
/// has a GPS directory with a position in it.
fn exif_has_gps(head: &[u8]) -> bool {
    let tiff: Option<&[u8]> = if head.starts_with(&[0xFF, 0xD8]) {
        // JPEG segments up to the image data.
        let mut i = 2;
        let mut found = None;
        while i + 4 <= head.len() && head[i] == 0xFF {
            let marker = head[i + 1];
            let len = u16::from_be_bytes([head[i + 2], head[i + 3]]) as usize;
            if marker == 0xDA {
                break;
            }
            if marker == 0xE1 && head.get(i + 4..i + 10) == Some(b"Exif\0\0") {
                found = head.get(i + 10..(i + 2 + len).min(head.len()));
                break;
            }
            i += 2 + len;
        }
        found
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut i = 8;
        let mut found = None;
        while i + 8 <= head.len() {
            let len = u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]) as usize;
            let kind = &head[i + 4..i + 8];
            if kind == b"eXIf" {
                found = head.get(i + 8..(i + 8 + len).min(head.len()));
                break;
            }
            if kind == b"IDAT" || kind == b"IEND" {
                break;
            }
            i += 12 + len;
        }
        found
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Some(head)
    } else {
        None
    };
    tiff.is_some_and(tiff_has_gps)
}

fn tiff_has_gps(t: &[u8]) -> bool {
    let little = t.starts_with(b"II");
    let u16_at = |i: usize| -> Option<u16> {
        let b = t.get(i..i + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = t.get(i..i + 4)?;
        Some(if little {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let entries = |ifd: usize| -> Vec<(u16, usize)> {
        let n = u16_at(ifd).unwrap_or(0) as usize;
        (0..n.min(512))
            .filter_map(|k| {
                let e = ifd + 2 + 12 * k;
                Some((u16_at(e)?, u32_at(e + 8)? as usize))
            })
            .collect()
    };
    let Some(ifd0) = u32_at(4) else {
        return false;
    };
    let Some((_, gps)) = entries(ifd0 as usize)
        .into_iter()
        .find(|(tag, _)| *tag == 0x8825)
    else {
        return false;
    };
    // GPSLatitude (2) or GPSLongitude (4).
    entries(gps).iter().any(|(tag, _)| *tag == 2 || *tag == 4)
}

#[cfg(test)]
mod tests;
