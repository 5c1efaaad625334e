//! ClamAV for the local stack: `clamd` with the signature database shipped in
//! `infra/local/clamav`, and an INSTREAM client that scans a blob stream in bounded memory.
//! Anything clamd cannot scan (over its size limit, connection dropped) is an error verdict,
//! never a clean one.

use crate::emulators::{ChildGuard, free_port, infra_local, wait_for_port};
use airlock::ports::ByteStream;
use futures::StreamExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest file clamd can scan: ClamAV 1.x cannot scan files of 2 GiB or more ("scanning
/// files greater than 2147483647 bytes is not supported"; set higher, clamd lowers its file
/// limit to this, measured with 1.4.3). The local stack scans up to here by default; larger
/// files get an error verdict ("not scanned") and the workspace's `unscannedFiles` applies.
pub const CLAMD_MAX_BYTES: u64 = 2_147_483_645;

/// How long clamd may spend on one file. Its default (2 minutes) is shorter than a 2 GiB
/// scan takes on a small machine (about 50 MB/s measured on 2 cores); an exceeded time limit is
/// an error verdict, like every other limit.
const MAX_SCAN_TIME: Duration = Duration::from_secs(15 * 60);

/// Signature-name prefix clamd gives a file it stopped scanning at a limit
/// (`AlertExceedsMax yes`): without that option clamd answers `OK` for the part it never
/// read, a silent pass.
const LIMIT_EXCEEDED: &str = "Heuristics.Limits.Exceeded";

/// A Defender-shaped verdict: `scanResultType` and the malware found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub result: String,
    pub malware_names: Vec<String>,
}

impl Verdict {
    fn error(why: impl Into<String>) -> Verdict {
        Verdict {
            result: format!("Error: {}", why.into()),
            malware_names: vec![],
        }
    }
}

/// `clamd` on the PATH, or where Debian puts it (`/usr/sbin` is not always on the PATH).
fn clamd_binary() -> Option<std::path::PathBuf> {
    ["clamd", "/usr/sbin/clamd"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(std::path::PathBuf::from)
}

/// Installs `clamd` from Debian's packages when it is missing and we may.
pub fn ensure_clamd() -> std::io::Result<std::path::PathBuf> {
    if let Some(path) = clamd_binary() {
        return Ok(path);
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "clamav-daemon"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match install {
        Ok(s) if s.success() => {
            clamd_binary().ok_or_else(|| std::io::Error::other("clamd installed but not found"))
        }
        _ => Err(std::io::Error::other(
            "clamd is not installed and could not be installed: run `apt-get install clamav-daemon`",
        )),
    }
}

pub struct Clamd {
    pub scanner: Scanner,
    pub child: ChildGuard,
}

/// Where to send a stream, and how much of one clamd takes.
#[derive(Clone, Copy, Debug)]
pub struct Scanner {
    pub port: u16,
    pub max_bytes: u64,
}

impl Clamd {
    /// `max_bytes`: clamd's stream, file and scan size limits (at most [`CLAMD_MAX_BYTES`]).
    pub fn start(state_dir: &Path, log_dir: &Path, max_bytes: u64) -> std::io::Result<Clamd> {
        let max_bytes = max_bytes.min(CLAMD_MAX_BYTES);
        let clamd = ensure_clamd()?;
        let port = free_port()?;
        let conf = state_dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground true\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {}\nLogFile {}\n\
                 StreamMaxLength {max}\nMaxFileSize {max}\nMaxScanSize {max}\nMaxScanTime {ms}\n\
                 AlertExceedsMax yes\nSelfCheck 0\n",
                infra_local().join("clamav").display(),
                log_dir.join("clamd-scans.log").display(),
                max = max_bytes,
                ms = MAX_SCAN_TIME.as_millis(),
            ),
        )?;
        let mut command = Command::new(clamd);
        command.arg("-c").arg(&conf);
        let log = log_dir.join("clamd.log");
        let mut child = ChildGuard::spawn("clamd", command, &log)?;
        wait_for_port(&mut child, port, &log, Duration::from_secs(30))?;
        Ok(Clamd {
            scanner: Scanner { port, max_bytes },
            child,
        })
    }
}

impl Scanner {
    /// Scans a byte stream over clamd's INSTREAM protocol.
    pub async fn scan(&self, data: ByteStream) -> Verdict {
        scan(self.port, self.max_bytes, data).await
    }
}

/// Scans a byte stream over clamd's INSTREAM protocol; a stream longer than `max_bytes` is
/// not sent on (clamd would close the session) and gets a "not scanned" error verdict.
pub async fn scan(port: u16, max_bytes: u64, mut data: ByteStream) -> Verdict {
    let mut socket = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => return Verdict::error(format!("scanner unreachable: {e}")),
    };
    if let Err(e) = socket.write_all(b"zINSTREAM\0").await {
        return Verdict::error(format!("scanner connection: {e}"));
    }
    let mut sent: u64 = 0;
    while let Some(chunk) = data.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Verdict::error(format!("reading the blob: {e}")),
        };
        sent += chunk.len() as u64;
        if sent > max_bytes {
            return Verdict::error(format!(
                "not scanned: larger than the scanner's {max_bytes}-byte limit"
            ));
        }
        let len = (chunk.len() as u32).to_be_bytes();
        if let Err(e) = async {
            socket.write_all(&len).await?;
            socket.write_all(&chunk).await
        }
        .await
        {
            return Verdict::error(format!("the scanner dropped the connection: {e}"));
        }
    }
    if let Err(e) = socket.write_all(&0u32.to_be_bytes()).await {
        return Verdict::error(format!("the scanner dropped the connection: {e}"));
    }
    let mut reply = Vec::new();
    let answer_within = MAX_SCAN_TIME + Duration::from_secs(60);
    let read = tokio::time::timeout(answer_within, socket.read_to_end(&mut reply)).await;
    if !matches!(read, Ok(Ok(_))) {
        return Verdict::error("no answer from the scanner");
    }
    parse_reply(&String::from_utf8_lossy(&reply))
}

/// `stream: OK`, `stream: <name> FOUND`, or `... ERROR`.
pub fn parse_reply(reply: &str) -> Verdict {
    let reply = reply.trim_end_matches(['\0', '\n']).trim();
    let body = reply
        .strip_prefix("stream:")
        .map(str::trim)
        .unwrap_or(reply);
    if body == "OK" {
        Verdict {
            result: airlock::domain::request::CLEAN_VERDICT.into(),
            malware_names: vec![],
        }
    } else if let Some(name) = body.strip_suffix("FOUND") {
        let name = name.trim();
        if let Some(limit) = name.strip_prefix(LIMIT_EXCEEDED) {
            // Not malware: clamd stopped reading (a file in an archive too large, too
            // deep, too slow). The content was not judged.
            let limit = limit.trim_start_matches('.');
            return Verdict::error(format!(
                "not scanned: the scanner's {} limit was exceeded",
                if limit.is_empty() { "size" } else { limit }
            ));
        }
        Verdict {
            result: "Malicious".into(),
            malware_names: vec![name.to_string()],
        }
    } else {
        Verdict::error(if body.is_empty() {
            "empty answer from the scanner"
        } else {
            body
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK\0").result, "No threats found");
        let v = parse_reply("stream: Airlock.Test.EICAR.UNOFFICIAL FOUND\0");
        assert_eq!(
            (v.result.as_str(), v.malware_names),
            (
                "Malicious",
                vec!["Airlock.Test.EICAR.UNOFFICIAL".to_string()]
            )
        );
        let v = parse_reply("INSTREAM size limit exceeded. ERROR\0");
        assert!(
            v.result.starts_with("Error") && v.result.contains("size limit"),
            "{v:?}"
        );
        assert!(parse_reply("").result.starts_with("Error"));
        // A limit clamd stopped at is neither clean nor malware.
        let v = parse_reply("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0");
        assert_eq!(
            (v.result.as_str(), v.malware_names.len()),
            (
                "Error: not scanned: the scanner's MaxFileSize limit was exceeded",
                0
            )
        );
    }
}
