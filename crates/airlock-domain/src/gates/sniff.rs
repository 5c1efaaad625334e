//! What a file is, from its first bytes and its name: the sniffed type, the extension, and
//! whether the disclosure rules read it as a table.

/// Leading bytes kept to tell what a file is.
pub(super) const SNIFF_BYTES: usize = 8192;
/// The last bytes of a zip kept to read its directory (entries beyond what fits are reported
/// as not inspected).
pub(super) const ZIP_TAIL_BYTES: usize = 1024 * 1024;
/// Extensions of archives (an archive inside an archive is not inspected, so it is a finding).
pub(super) const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "gz", "tgz", "7z", "rar", "tar", "bz2", "xz", "zst", "jar", "war", "whl",
];
/// Extensions of programs and scripts that run when opened.
pub(super) const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "so", "dylib", "com", "scr", "msi", "bat", "cmd", "ps1", "sh", "vbs", "js",
    "app", "elf", "bin",
];

/// What a file's leading bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Executable(&'static str),
    Archive(&'static str),
    Png,
    Jpeg,
    Pdf,
    Parquet,
    Text,
    Binary,
}

/// Classifies leading bytes (up to [`SNIFF_BYTES`]).
pub fn sniff(head: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"MZ") {
        Sniffed::Executable("a Windows executable (PE)")
    } else if starts(b"\x7fELF") {
        Sniffed::Executable("an ELF executable")
    } else if starts(&[0xCF, 0xFA, 0xED, 0xFE])
        || starts(&[0xCE, 0xFA, 0xED, 0xFE])
        || starts(&[0xFE, 0xED, 0xFA, 0xCF])
        || starts(&[0xFE, 0xED, 0xFA, 0xCE])
    {
        Sniffed::Executable("a Mach-O executable")
    } else if starts(&[0xCA, 0xFE, 0xBA, 0xBE]) {
        Sniffed::Executable("a Java class or universal binary")
    } else if starts(b"#!") {
        Sniffed::Executable("a script with an interpreter line (#!)")
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Sniffed::Archive("zip")
    } else if starts(&[0x1F, 0x8B]) {
        Sniffed::Archive("gzip")
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        Sniffed::Archive("7z")
    } else if starts(b"Rar!") {
        Sniffed::Archive("rar")
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        Sniffed::Archive("tar")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Sniffed::Png
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Sniffed::Jpeg
    } else if starts(b"%PDF-") {
        Sniffed::Pdf
    } else if starts(b"PAR1") {
        Sniffed::Parquet
    } else if head.contains(&0) || std::str::from_utf8(trim_partial_utf8(head)).is_err() {
        Sniffed::Binary
    } else {
        Sniffed::Text
    }
}

/// `head` without a UTF-8 sequence cut at its end.
pub(super) fn trim_partial_utf8(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        Err(_) => head,
    }
}

pub(super) fn extension(name: &str) -> String {
    name.rsplit('/')
        .next()
        .and_then(|file| file.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether content of this kind may carry this extension.
pub(super) fn matches_extension(sniffed: Sniffed, ext: &str) -> bool {
    match ext {
        "csv" | "tsv" | "txt" | "md" | "json" | "log" | "xml" | "html" | "r" | "py" | "sql" => {
            sniffed == Sniffed::Text
        }
        "png" => sniffed == Sniffed::Png,
        "jpg" | "jpeg" => sniffed == Sniffed::Jpeg,
        "pdf" => sniffed == Sniffed::Pdf,
        "parquet" => sniffed == Sniffed::Parquet,
        "zip" => sniffed == Sniffed::Archive("zip"),
        "gz" | "tgz" => sniffed == Sniffed::Archive("gzip"),
        "7z" => sniffed == Sniffed::Archive("7z"),
        "tar" => sniffed == Sniffed::Archive("tar"),
        // Extensions we know nothing about: only what the content says (executables) counts.
        _ => true,
    }
}

pub fn is_table(name: &str) -> Option<u8> {
    match extension(name).as_str() {
        "csv" => Some(b','),
        "tsv" => Some(b'\t'),
        _ => None,
    }
}
