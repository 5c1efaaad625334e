//! The CLI's transfers against AzCopy's, on the same machine, the same local stack and the
//! same file: upload through an upload link, download an approved copy through a read link.
//! Prints seconds, MB/s, the ratio to AzCopy, and each process's peak RSS (sampled VmHWM).
//!
//! `cargo bench -p airlock-cli --bench transfer` (`AIRLOCK_BENCH_GIB`, default 1). AzCopy
//! comes from npm (`@azure-tools/azcopy-linux`, into `target/azcopy`) unless `AZCOPY` names a
//! binary; it needs Debian's `libsecret-1-0`.

use airlock_local::testing::{StackClient, start_stack};
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WS: &str = "ws-alpha";
const MIB: f64 = 1024.0 * 1024.0;

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_airlock"))
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/airlock")
        .to_path_buf()
}

/// The release `handler`, brought up to date (another package's binary is not built for
/// this bench by cargo itself).
fn handler_bin() -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "airlock-handler",
            "--bin",
            "handler",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success());
    PathBuf::from(env!("CARGO_BIN_EXE_airlock")).with_file_name("handler")
}

fn azcopy() -> PathBuf {
    if let Ok(path) = std::env::var("AZCOPY") {
        return PathBuf::from(path);
    }
    let prefix = target_dir().join("azcopy");
    let bin = prefix.join("node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64");
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg("@azure-tools/azcopy-linux")
            .status()
            .expect("npm runs");
        assert!(status.success(), "installing AzCopy from npm failed");
    }
    // The package ships the binary without its execute bit.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Deterministic, incompressible data on disk (kept between runs).
fn data_file(bytes: u64) -> PathBuf {
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("transfer-{bytes}.bin"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes) {
        return path;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 8 * 1024 * 1024];
    let mut left = bytes;
    while left > 0 {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    path
}

/// Runs a command to completion, sampling its peak RSS; returns (time, peak MiB).
fn measure(mut command: Command) -> (Duration, f64) {
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let pid = child.id();
    let mut peak_kb = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let took = started.elapsed();
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            assert!(status.success(), "{command:?} failed: {err}");
            return (took, peak_kb as f64 / 1024.0);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn line(step: &str, took: Duration, bytes: u64, rss: f64) {
    let secs = took.as_secs_f64();
    println!(
        "{step:<34} {secs:>8.2} s {:>8.1} MB/s   peak RSS {rss:>6.1} MiB",
        bytes as f64 / MIB / secs
    );
}

fn blob_url(container_url: &str, name: &str) -> String {
    let (base, sas) = container_url.split_once('?').unwrap();
    format!("{base}/{name}?{sas}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let gib: u64 = std::env::var("AIRLOCK_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let size = gib * 1024 * 1024 * 1024;
    let file = data_file(size);
    let azcopy = azcopy();
    let stack = start_stack(
        &handler_bin(),
        "clibench",
        DeliveryOptions::default(),
        demo::workspaces(),
        Duration::from_secs(60),
        vec![],
    )
    .await;
    let api = StackClient::new(&stack);
    let rita = stack.token("rita", &["WorkspaceResearcher"], WS);
    let mona = stack.token("mona", &["AirlockManager"], WS);
    let scratch = std::env::temp_dir().join(format!("airlock-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let cli = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_airlock"));
        c.args(args)
            .env("AIRLOCK_CONFIG_DIR", scratch.join("config"))
            .env("AIRLOCK_API", format!("{}/api", stack.api_url))
            .env("AIRLOCK_WORKSPACE", WS)
            .env("AIRLOCK_CA_CERT", &stack.ca_cert)
            .env("AIRLOCK_TOKEN", &rita);
        c
    };
    let az = |args: &[&str]| {
        let mut c = Command::new(&azcopy);
        c.args(args)
            .env("SSL_CERT_FILE", &stack.ca_cert)
            .env("AZCOPY_LOG_LOCATION", scratch.join("azcopy-logs"))
            .env("AZCOPY_JOB_PLAN_LOCATION", scratch.join("azcopy-plans"));
        c
    };
    println!("{gib} GiB, local stack (Azurite on disk), same machine, same file");

    // Upload: the CLI into one draft, AzCopy into another.
    let ours = api.create(WS, &rita, "export").await;
    let theirs = api.create(WS, &rita, "export").await;
    let file_arg = file.to_str().unwrap();
    let (t_cli_up, rss_cli_up) =
        tokio::task::block_in_place(|| measure(cli(&["upload", &ours, file_arg, "--quiet"])));
    line("upload: airlock", t_cli_up, size, rss_cli_up);
    let (_, link) = api
        .call(
            "GET",
            &format!("/workspaces/{WS}/requests/{theirs}/link"),
            &rita,
            None,
        )
        .await;
    let target = blob_url(link["containerUrl"].as_str().unwrap(), "data.bin");
    let (t_az_up, rss_az_up) = tokio::task::block_in_place(|| {
        measure(az(&[
            "copy",
            file_arg,
            &target,
            "--from-to",
            "LocalBlob",
            "--check-length=false",
            "--log-level",
            "ERROR",
        ]))
    });
    line("upload: azcopy", t_az_up, size, rss_az_up);

    // Approve the CLI's request, then download its approved copy both ways.
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    api.act(WS, &ours, "submit", &rita, None).await;
    api.wait_long(WS, &ours, &mona, "in_review").await;
    api.act(
        WS,
        &ours,
        "review",
        &mona,
        Some(json!({"decision": "approved", "explanation": "bench", "revision": 1})),
    )
    .await;
    api.wait_long(WS, &ours, &rita, "approved").await;
    let out = scratch.join("cli-out");
    let (t_cli_down, rss_cli_down) = tokio::task::block_in_place(|| {
        measure(cli(&["download", &ours, out.to_str().unwrap(), "--quiet"]))
    });
    line(
        "download + sha256 verify: airlock",
        t_cli_down,
        size,
        rss_cli_down,
    );
    assert_eq!(std::fs::metadata(out.join(&name)).unwrap().len(), size);
    let (_, link) = api
        .call(
            "GET",
            &format!("/workspaces/{WS}/requests/{ours}/link"),
            &rita,
            None,
        )
        .await;
    let source = blob_url(link["containerUrl"].as_str().unwrap(), &name);
    let az_out = scratch.join("azcopy-out.bin");
    let (t_az_down, rss_az_down) = tokio::task::block_in_place(|| {
        measure(az(&[
            "copy",
            &source,
            az_out.to_str().unwrap(),
            "--from-to",
            "BlobLocal",
            "--log-level",
            "ERROR",
        ]))
    });
    line(
        "download: azcopy (no sha256 check)",
        t_az_down,
        size,
        rss_az_down,
    );
    println!(
        "airlock's speed relative to AzCopy's: upload {:.2}x, download {:.2}x (above 1 is faster)",
        t_az_up.as_secs_f64() / t_cli_up.as_secs_f64(),
        t_az_down.as_secs_f64() / t_cli_down.as_secs_f64()
    );
    std::fs::remove_dir_all(&scratch).ok();
}
