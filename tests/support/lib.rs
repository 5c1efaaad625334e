//! What the whole-system suites share: the two binaries under test.
//!
//! The suites live in their own package (the project's top-level `tests/`), so Cargo's
//! `CARGO_BIN_EXE_*` (only given to a binary's own package) does not reach them: the binaries
//! are built here, once per test process and together (one feature resolution, one copy of
//! each dependency), exactly as `cargo build` builds them. A stale binary would test old
//! code, so this always asks Cargo, which does nothing when they are up to date.
//!
//! The stack itself (start it, talk to its API, the emulators) is `airlock_local::testing`.

use std::path::PathBuf;
use std::sync::Once;

/// Builds the `handler` and `airlock` binaries once, next to the test binary.
fn build() -> PathBuf {
    // target/{profile}/deps/{test binary} -> target/{profile}
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/{profile}/deps")
        .to_path_buf();
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "-p",
            "airlock-handler",
            "-p",
            "airlock-cli",
            "--bins",
        ]);
        if dir.file_name().is_some_and(|p| p == "release") {
            command.arg("--release");
        }
        let status = command
            .current_dir(airlock_local::emulators::repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the handler and the CLI failed");
    });
    dir
}

/// The `handler` binary the Functions host starts (this build; the packaged one, built for
/// glibc 2.28, is `airlock_local::testing::packaged_handler`).
pub fn handler_bin() -> PathBuf {
    build().join("handler")
}

/// The `airlock` command line.
pub fn airlock_bin() -> PathBuf {
    build().join("airlock")
}

/// The Python of `target/airlock-local/python-venv`, with the packages the tests make real
/// files with (tests/python/requirements.txt), installed on first use (tests/python/venv).
fn python() -> &'static PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        let root = airlock_local::emulators::repo_root();
        let made = std::process::Command::new("bash")
            .arg(root.join("tests/python/venv"))
            .arg(root.join("target/airlock-local/python-venv"))
            .output()
            .expect("bash runs");
        assert!(
            made.status.success(),
            "installing the tests' Python packages failed: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&made.stdout).trim())
    })
}

/// Runs `tests/python/SCRIPT OUT`, which writes its files into `out`.
fn python_writes(script: &str, out: &std::path::Path) {
    let root = airlock_local::emulators::repo_root();
    let made = std::process::Command::new(python())
        .arg(root.join("tests/python").join(script))
        .arg(out)
        .output()
        .expect("python runs");
    assert!(
        made.status.success(),
        "{script} did not write its files: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Checks the RO-Crate in `dir` as a receiving TRE would (tests/python/check_ro_crate.py):
/// parsed by `rocrate` and validated against RO-Crate 1.1 by `roc-validator`, offline.
/// Returns what they printed, as an error when a requirement is not met.
pub fn check_ro_crate(dir: &std::path::Path) -> Result<String, String> {
    let root = airlock_local::emulators::repo_root();
    let python = python();
    let context = python
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the venv's python is DIR/bin/python")
        .join("ro-crate-1.1-context.jsonld");
    let checked = std::process::Command::new(python)
        .arg(root.join("tests/python/check_ro_crate.py"))
        .arg(dir)
        .arg(context)
        .output()
        .expect("python runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    if checked.status.success() {
        Ok(said)
    } else {
        Err(said)
    }
}

/// Writes a real ACRO record into `out` with the `acro` package (tests/python/make_record.py).
pub fn acro_record(out: &std::path::Path) {
    python_writes("make_record.py", out);
}

/// Writes into `out` files made by the libraries that make them in the wild
/// (tests/python/make_identifying_files.py): `photo.png` with EXIF GPS tags and `plain.png`
/// without (Pillow), `scan.dcm` naming its patient and `anonymised.dcm` with the patient tags
/// emptied (pydicom), and `calls.vcf` with two samples' genotype columns.
pub fn identifying_files(out: &std::path::Path) {
    python_writes("make_identifying_files.py", out);
}
