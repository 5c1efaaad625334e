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

/// Largest stream clamd accepts; larger files get an error verdict.
pub const STREAM_MAX_BYTES: u64 = 256 * 1024 * 1024;

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
    pub port: u16,
    pub child: ChildGuard,
}

impl Clamd {
    pub fn start(state_dir: &Path, log_dir: &Path) -> std::io::Result<Clamd> {
        Self::start_with_limit(state_dir, log_dir, STREAM_MAX_BYTES)
    }

    /// `max_bytes`: clamd's own stream and file size limits.
    pub fn start_with_limit(
        state_dir: &Path,
        log_dir: &Path,
        max_bytes: u64,
    ) -> std::io::Result<Clamd> {
        let clamd = ensure_clamd()?;
        let port = free_port()?;
        let conf = state_dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground true\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {}\nLogFile {}\n\
                 StreamMaxLength {max}\nMaxFileSize {max}\nMaxScanSize {max}\nSelfCheck 0\n",
                infra_local().join("clamav").display(),
                log_dir.join("clamd-scans.log").display(),
                max = max_bytes
            ),
        )?;
        let mut command = Command::new(clamd);
        command.arg("-c").arg(&conf);
        let log = log_dir.join("clamd.log");
        let mut child = ChildGuard::spawn("clamd", command, &log)?;
        wait_for_port(&mut child, port, &log, Duration::from_secs(30))?;
        Ok(Clamd { port, child })
    }
}

/// Scans a byte stream over clamd's INSTREAM protocol.
pub async fn scan(port: u16, mut data: ByteStream) -> Verdict {
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
        if sent > STREAM_MAX_BYTES {
            return Verdict::error(format!(
                "not scanned: larger than the scanner's {STREAM_MAX_BYTES}-byte limit"
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
    let read = tokio::time::timeout(Duration::from_secs(300), socket.read_to_end(&mut reply)).await;
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
        Verdict {
            result: "Malicious".into(),
            malware_names: vec![name.trim().to_string()],
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
    }
}
