//! What a workspace accepts: file names and size limits, checked synchronously on submit so a
//! bad submit is a 400 and never a later failure.

use serde::{Deserialize, Serialize};

/// Per-workspace airlock policy (stored on the workspace record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
// The parser refuses fields it does not know (see `parse_policy_defaults`).
#[schemars(deny_unknown_fields)]
pub struct WorkspacePolicy {
    /// Distinct airlock managers whose approval (in one revision) is needed.
    pub approvals_required: u32,
    pub max_files: u32,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub link_expiry_minutes: u32,
    /// Lifetime of upload links (to a draft), when it should differ from
    /// `linkExpiryMinutes`: a large upload may need longer. At most
    /// [`MAX_UPLOAD_LINK_MINUTES`]; a researcher may also ask for a new link at any time.
    pub upload_link_expiry_minutes: Option<u32>,
    /// CIDR ranges or single addresses; a link is restricted to the first when set.
    pub allowed_ip_ranges: Vec<String>,
    pub scan_required: bool,
    /// Minutes a submitted request may wait for scan verdicts before `Reconcile` fails it.
    pub scan_timeout_minutes: u32,
    /// What a scan that ends without judging the content means (see [`UnscannedFiles`]).
    pub unscanned_files: UnscannedFiles,
    /// Checks beyond malware, run over each sealed copy as it is hashed (see
    /// [`super::gates`]); none by default.
    pub gates: Vec<super::gates::Gate>,
    /// Submit needs the request's purpose.
    pub require_purpose: bool,
    /// Submit needs a description of every file.
    pub require_file_descriptions: bool,
    /// Submitting an export needs the disclosure controls applied to every file.
    pub require_disclosure_controls: bool,
    /// When reviewers approve some files and reject others, release the approved ones (the
    /// rest are withheld); otherwise such a review rejects the request.
    pub partial_release: bool,
    /// At a resubmission, a reviewer's decision on a file whose name and bytes (sha256) are
    /// unchanged since they decided it is carried over (marked as carried): they decide only
    /// what changed. Request-level decisions are never carried.
    pub carry_over_votes: bool,
    /// How many different reviewers must each record an override before a file is released
    /// over a statistical disclosure warning (a `disclosure` gate's, or ACRO's `acro_fail`).
    /// 1: the reviewer who approves it; 2: a second airlock manager must agree, also when
    /// one review would otherwise decide the request.
    pub disclosure_override_reviewers: u32,
    /// Hours a request may wait in review before `Reconcile` reminds the airlock managers
    /// (`reviewOverdue` notification); at twice this it escalates to the workspace's owners
    /// too. 0: no deadline.
    pub review_deadline_hours: u32,
}

/// What a scan verdict that is neither clean nor malicious means for a request: the scanner
/// could not judge the file (an error, larger than it scans, an encrypted or password-protected
/// archive, throttled, timed out). Never a silent wait: either way the outcome is explicit.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnscannedFiles {
    /// Fail safe: the request is blocked like malware, with the scanner's words.
    #[default]
    Block,
    /// The request goes to review with the verdict on the file for the reviewer to weigh.
    Review,
    /// The request fails (its data stays where it is for investigation), naming the files.
    Fail,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for WorkspacePolicy {
    fn default() -> Self {
        WorkspacePolicy {
            approvals_required: 1,
            max_files: 100,
            max_file_bytes: 50 * GIB,
            max_total_bytes: 200 * GIB,
            link_expiry_minutes: 60,
            upload_link_expiry_minutes: None,
            allowed_ip_ranges: Vec::new(),
            scan_required: true,
            scan_timeout_minutes: 30,
            unscanned_files: UnscannedFiles::Block,
            gates: Vec::new(),
            require_purpose: false,
            require_file_descriptions: false,
            require_disclosure_controls: false,
            partial_release: false,
            carry_over_votes: true,
            disclosure_override_reviewers: 1,
            review_deadline_hours: 0,
        }
    }
}

impl WorkspacePolicy {
    /// The policy's version: the first 16 hex digits of the sha256 of its JSON (every field,
    /// defaults included, in the order the type declares them), so the same rules always
    /// have the same version and any change to a rule gives another. Recorded where the
    /// gates read a file.
    pub fn version(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))[..16].to_string()
    }
}

/// The longest an upload link may live: the stage accounts' SAS expiration policy (1 day).
pub const MAX_UPLOAD_LINK_MINUTES: u32 = 24 * 60;

impl WorkspacePolicy {
    /// Minutes a link lives: upload links by `uploadLinkExpiryMinutes` (capped at a day),
    /// others by `linkExpiryMinutes`; at least one minute.
    pub fn link_minutes(&self, upload: bool) -> u32 {
        let minutes = match self.upload_link_expiry_minutes {
            Some(m) if upload => m.min(MAX_UPLOAD_LINK_MINUTES),
            _ => self.link_expiry_minutes,
        };
        minutes.max(1)
    }

    /// The signed IP range (`sip`) every link of this workspace carries: `None` when links are
    /// not restricted. A SAS carries one IPv4 address or range, so a policy with an IPv6
    /// range, a malformed one, or several is refused with what to fix.
    pub fn link_ip_range(&self) -> Result<Option<String>, String> {
        match self.allowed_ip_ranges.as_slice() {
            [] => Ok(None),
            [one] => sas_ip_range(one).map(Some),
            several => Err(format!(
                "the workspace allows {} IP ranges ({}), but a link can be restricted to one: a TRE admin must merge them into one IPv4 range",
                several.len(),
                several.join(", ")
            )),
        }
    }
}

/// `a.b.c.d`, `a.b.c.d/n` or `a.b.c.d-e.f.g.h` as a SAS `sip` value (a single address or a
/// `from-to` range; CIDR is expanded).
pub fn sas_ip_range(range: &str) -> Result<String, String> {
    let bad = |why: &str| format!("the allowed IP range {range:?} {why}");
    let v4 = |s: &str| {
        s.trim().parse::<std::net::Ipv4Addr>().map_err(|_| {
            if s.contains(':') {
                bad("is IPv6: Azure Storage links take IPv4 addresses only")
            } else {
                bad("is not an IPv4 address, CIDR range or from-to range")
            }
        })
    };
    if let Some((net, bits)) = range.split_once('/') {
        let ip = v4(net)?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| bad("has a prefix length that is not 0 to 32"))?;
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        let start = u32::from(ip) & mask;
        let end = start | !mask;
        return Ok(format!(
            "{}-{}",
            std::net::Ipv4Addr::from(start),
            std::net::Ipv4Addr::from(end)
        ));
    }
    match range.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (v4(from)?, v4(to)?);
            if from > to {
                return Err(bad("ends before it starts"));
            }
            Ok(format!("{from}-{to}"))
        }
        None => Ok(v4(range)?.to_string()),
    }
}

/// The content type a copy made by the airlock carries: from the file name's extension on an
/// allowlist, else `application/octet-stream`. Never the uploader's: a header set on the
/// draft blob is data nobody reviewed (and a type like `text/html` changes how a browser
/// treats the download).
pub fn content_type_for(name: &str) -> &'static str {
    let extension = name
        .rsplit('/')
        .next()
        .and_then(|file| file.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "txt" | "log" | "md" => "text/plain",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "parquet" => "application/vnd.apache.parquet",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Longest file name (blob name) accepted, in bytes; Azure's own limit.
pub const MAX_FILE_NAME_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name is longer than {MAX_FILE_NAME_BYTES} bytes")]
    TooLong,
    #[error("the file name must be relative, not start with '/'")]
    Absolute,
    #[error("the file name has an empty path segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("the file name has a '.' or '..' path segment")]
    DotSegment,
    #[error("the file name contains a backslash")]
    Backslash,
    #[error("the file name contains a control character")]
    ControlCharacter,
    /// Bidirectional overrides, zero-width and other invisible formatting characters make a
    /// name display as something it is not (`invoice\u{202E}gpj.exe` shows as `invoiceexe.jpg`).
    #[error("the file name contains an invisible formatting character (U+{0:04X})")]
    FormatCharacter(u32),
    /// Names Windows cannot hold (`CON`, `aux.txt`, `x:stream`, a trailing dot): a recipient
    /// on Windows would get another file, an alternate data stream, or nothing.
    #[error("the file name has a segment Windows reserves or cannot store: {0:?}")]
    ReservedOnWindows(String),
}

/// Invisible characters that change how a name reads: Unicode's bidirectional controls,
/// zero-width characters, and the other format (Cf) characters a name has no use for.
fn is_format_character(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x061C
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xE0000..=0xE007F
    )
}

/// Windows' reserved device names, matched without case and whatever the extension.
const WINDOWS_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

fn reserved_on_windows(segment: &str) -> bool {
    if segment.contains(['<', '>', ':', '"', '|', '?', '*']) || segment.ends_with(['.', ' ']) {
        return true;
    }
    let stem = segment
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|n| n.len() == 1 && n.chars().all(|c| c.is_ascii_digit()))
    };
    WINDOWS_DEVICES.contains(&stem.as_str()) || numbered("COM") || numbered("LPT")
}

/// Accepts nested relative names (`dir/file.csv`) and refuses anything that could escape or
/// confuse a path on the reviewer's or recipient's machine.
pub fn validate_file_name(name: &str) -> Result<(), FileNameError> {
    if name.is_empty() {
        return Err(FileNameError::Empty);
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(FileNameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(FileNameError::ControlCharacter);
    }
    if let Some(c) = name.chars().find(|c| is_format_character(*c)) {
        return Err(FileNameError::FormatCharacter(c as u32));
    }
    if name.contains('\\') {
        return Err(FileNameError::Backslash);
    }
    if name.starts_with('/') {
        return Err(FileNameError::Absolute);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(FileNameError::EmptySegment),
            "." | ".." => return Err(FileNameError::DotSegment),
            s if reserved_on_windows(s) => {
                return Err(FileNameError::ReservedOnWindows(s.to_string()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every problem with a draft's files, in one message a researcher can act on.
pub fn check_files(files: &[(String, u64)], policy: &WorkspacePolicy) -> Result<(), String> {
    let mut problems = Vec::new();
    if files.is_empty() {
        problems
            .push("the request has no files: upload at least one before submitting".to_string());
    }
    if files.len() > policy.max_files as usize {
        problems.push(format!(
            "the request has {} files; the workspace allows at most {}",
            files.len(),
            policy.max_files
        ));
    }
    for (name, size) in files {
        if let Err(e) = validate_file_name(name) {
            problems.push(format!("{:?}: {e}", truncate(name)));
        }
        if *size > policy.max_file_bytes {
            problems.push(format!(
                "{:?} is {size} bytes; the workspace allows at most {} bytes per file",
                truncate(name),
                policy.max_file_bytes
            ));
        }
    }
    // Two names that differ only in case are one file on Windows and macOS.
    let mut seen: std::collections::BTreeMap<String, &str> = Default::default();
    for (name, _) in files {
        if let Some(first) = seen.insert(name.to_lowercase(), name) {
            problems.push(format!(
                "{:?} and {:?} differ only in letter case",
                truncate(first),
                truncate(name)
            ));
        }
    }
    let total: u64 = files.iter().map(|(_, s)| *s).sum();
    if total > policy.max_total_bytes {
        problems.push(format!(
            "the files total {total} bytes; the workspace allows at most {} bytes",
            policy.max_total_bytes
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let long_ok = "a".repeat(MAX_FILE_NAME_BYTES);
        let too_long = "a".repeat(MAX_FILE_NAME_BYTES + 1);
        let table: &[(&str, Result<(), FileNameError>)] = &[
            ("results.csv", Ok(())),
            ("dir/file.csv", Ok(())),
            ("a/b/c/d.txt", Ok(())),
            ("..hidden", Ok(())),
            ("file..csv", Ok(())),
            ("ünïcode/数据.csv", Ok(())),
            (&long_ok, Ok(())),
            ("", Err(FileNameError::Empty)),
            (&too_long, Err(FileNameError::TooLong)),
            ("/etc/passwd", Err(FileNameError::Absolute)),
            ("../secret", Err(FileNameError::DotSegment)),
            ("dir/../../x", Err(FileNameError::DotSegment)),
            ("./x", Err(FileNameError::DotSegment)),
            ("dir/.", Err(FileNameError::DotSegment)),
            ("dir//x", Err(FileNameError::EmptySegment)),
            ("dir/", Err(FileNameError::EmptySegment)),
            ("dir\\x", Err(FileNameError::Backslash)),
            ("..\\x", Err(FileNameError::Backslash)),
            ("a\nb", Err(FileNameError::ControlCharacter)),
            ("a\0b", Err(FileNameError::ControlCharacter)),
            ("a\u{7f}b", Err(FileNameError::ControlCharacter)),
            // Invisible formatting: bidi overrides and isolates, zero-width, BOM, tags.
            (
                "invoice\u{202E}gpj.exe",
                Err(FileNameError::FormatCharacter(0x202E)),
            ),
            ("a\u{2066}b", Err(FileNameError::FormatCharacter(0x2066))),
            (
                "a\u{200B}b.csv",
                Err(FileNameError::FormatCharacter(0x200B)),
            ),
            (
                "re\u{200D}sults.csv",
                Err(FileNameError::FormatCharacter(0x200D)),
            ),
            ("\u{FEFF}x.csv", Err(FileNameError::FormatCharacter(0xFEFF))),
            (
                "soft\u{AD}hyphen",
                Err(FileNameError::FormatCharacter(0xAD)),
            ),
            ("x\u{E0041}", Err(FileNameError::FormatCharacter(0xE0041))),
            // What Windows reserves or cannot store.
            ("CON", Err(FileNameError::ReservedOnWindows("CON".into()))),
            (
                "dir/aux.txt",
                Err(FileNameError::ReservedOnWindows("aux.txt".into())),
            ),
            (
                "Nul.tar.gz",
                Err(FileNameError::ReservedOnWindows("Nul.tar.gz".into())),
            ),
            ("com1", Err(FileNameError::ReservedOnWindows("com1".into()))),
            (
                "lpt9.log",
                Err(FileNameError::ReservedOnWindows("lpt9.log".into())),
            ),
            (
                "x:stream",
                Err(FileNameError::ReservedOnWindows("x:stream".into())),
            ),
            (
                "what?.csv",
                Err(FileNameError::ReservedOnWindows("what?.csv".into())),
            ),
            ("a<b", Err(FileNameError::ReservedOnWindows("a<b".into()))),
            (
                "dir./x",
                Err(FileNameError::ReservedOnWindows("dir.".into())),
            ),
            (
                "trailing ",
                Err(FileNameError::ReservedOnWindows("trailing ".into())),
            ),
            // ... and what it does not.
            ("console.csv", Ok(())),
            ("com10.txt", Ok(())),
            ("auxiliary/data.csv", Ok(())),
            ("a.b.c", Ok(())),
            ("naïve café.csv", Ok(())),
        ];
        for (name, expected) in table {
            assert_eq!(&validate_file_name(name), expected, "{name:?}");
        }
    }

    fn files(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn limits() {
        let policy = WorkspacePolicy {
            max_files: 2,
            max_file_bytes: 10,
            max_total_bytes: 15,
            ..Default::default()
        };
        assert!(check_files(&files(&[("a", 10), ("b", 5)]), &policy).is_ok());
        let cases: &[(&[(&str, u64)], &str)] = &[
            (&[], "no files"),
            (
                &[("a", 1), ("b", 1), ("c", 1)],
                "has 3 files; the workspace allows at most 2",
            ),
            (&[("a", 11)], "\"a\" is 11 bytes"),
            (&[("a", 10), ("b", 6)], "total 16 bytes"),
            (&[("../a", 1)], "'.' or '..'"),
            (
                &[("Results.csv", 1), ("results.csv", 1)],
                "\"Results.csv\" and \"results.csv\" differ only in letter case",
            ),
            (
                &[("inv\u{202E}gpj.exe", 1)],
                "\"inv\\u{202e}gpj.exe\": the file name contains an invisible formatting character (U+202E)",
            ),
        ];
        for (list, needle) in cases {
            let err = check_files(&files(list), &policy).unwrap_err();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn link_ip_ranges() {
        let policy = |ranges: &[&str]| WorkspacePolicy {
            allowed_ip_ranges: ranges.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        /// (ranges, the `sip` expected, or a phrase of the refusal)
        type Case<'a> = (&'a [&'a str], Result<Option<&'a str>, &'a str>);
        let table: &[Case] = &[
            (&[], Ok(None)),
            (&["10.1.2.3"], Ok(Some("10.1.2.3"))),
            (&["10.1.2.0/24"], Ok(Some("10.1.2.0-10.1.2.255"))),
            (&["10.1.2.77/24"], Ok(Some("10.1.2.0-10.1.2.255"))),
            (&["0.0.0.0/0"], Ok(Some("0.0.0.0-255.255.255.255"))),
            (&["10.0.0.1-10.0.0.9"], Ok(Some("10.0.0.1-10.0.0.9"))),
            (&["2001:db8::/32"], Err("IPv6")),
            (&["2001:db8::1"], Err("IPv6")),
            (&["10.0.0.9-10.0.0.1"], Err("ends before it starts")),
            (&["10.0.0.0/33"], Err("prefix length")),
            (&["example.org"], Err("not an IPv4 address")),
            (&["10.0.0.0/8", "192.168.0.0/16"], Err("2 IP ranges")),
        ];
        for (ranges, expected) in table {
            match (policy(ranges).link_ip_range(), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), *want, "{ranges:?}"),
                (Err(got), Err(needle)) => assert!(got.contains(needle), "{ranges:?}: {got}"),
                (got, want) => panic!("{ranges:?}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn all_problems_reported_at_once() {
        let policy = WorkspacePolicy {
            max_files: 1,
            ..Default::default()
        };
        let err = check_files(&files(&[("/a", 1), ("b\\c", 1)]), &policy).unwrap_err();
        assert!(err.contains("at most 1"), "{err}");
        assert!(err.contains("relative"), "{err}");
        assert!(err.contains("backslash"), "{err}");
    }

    #[test]
    fn policy_defaults_fill_missing_fields() {
        let p: WorkspacePolicy = serde_json::from_str(r#"{"approvalsRequired": 2}"#).unwrap();
        assert_eq!(p.approvals_required, 2);
        assert_eq!(p.link_expiry_minutes, 60);
        assert!(p.scan_required);
    }

    #[test]
    fn upload_links_may_live_longer_up_to_a_day() {
        let table = [
            (60, None, false, 60),
            (60, None, true, 60),
            (30, Some(480), true, 480),
            (30, Some(480), false, 30),
            (30, Some(100_000), true, MAX_UPLOAD_LINK_MINUTES),
            (0, Some(0), true, 1),
            (0, None, false, 1),
        ];
        for (links, uploads, upload, expected) in table {
            let p = WorkspacePolicy {
                link_expiry_minutes: links,
                upload_link_expiry_minutes: uploads,
                ..Default::default()
            };
            assert_eq!(
                p.link_minutes(upload),
                expected,
                "{links} {uploads:?} {upload}"
            );
        }
    }
}
