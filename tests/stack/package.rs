//! The Function App package: `infra/package` lays out host.json, one folder per function with
//! its function.json, and an executable `handler` that starts on every image the Functions
//! host uses (glibc 2.28 at most, no library outside the base image), exactly as
//! `function-manifests/` says. The stack tests run the handler from this zip
//! (`stack_rbac`).

use airlock_local::testing::{function_package, packaged_handler};
use std::collections::BTreeSet;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn the_zip_matches_the_manifests() {
    let out = function_package();
    let listing = Command::new("python3")
        .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); [print(i.filename, oct(i.external_attr >> 16)) for i in z.infolist()]"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8(listing.stdout).unwrap();
    let entries: BTreeSet<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let mut expected: BTreeSet<String> = ["host.json".to_string(), "handler".to_string()].into();
    for f in std::fs::read_dir(format!("{ROOT}/function-manifests")).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        expected.insert(format!("{name}/function.json"));
    }
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(entries, expected);
    let handler_mode = text.lines().find(|l| l.starts_with("handler ")).unwrap();
    assert!(
        handler_mode.ends_with("755"),
        "the handler is executable: {handler_mode}"
    );
    for name in ["StatusChanged", "Api", "Reconcile", "Work"] {
        let unzip = Command::new("python3")
            .args(["-c", "import sys,zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())"])
            .arg(&out)
            .arg(format!("{name}/function.json"))
            .output()
            .unwrap();
        let packed = String::from_utf8(unzip.stdout).unwrap();
        let source =
            std::fs::read_to_string(format!("{ROOT}/function-manifests/{name}/function.json"))
                .unwrap();
        assert_eq!(packed.trim_end(), source.trim_end(), "{name}");
    }
}

/// `infra/check_binary.py` on `binary` with glibc 2.28 as the limit: (passed, what it said).
fn check(binary: &std::path::Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/infra/check_binary.py"))
        .args(["--max-glibc", "2.28"])
        .arg(binary)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The image behind an empty `linuxFxVersion` may carry an older glibc than the machine that
/// builds (Debian 10: 2.28). The packaged handler needs nothing newer, and no shared library
/// outside glibc and libgcc.
#[test]
fn the_packaged_handler_starts_on_glibc_2_28_images() {
    let (ok, said) = check(&packaged_handler());
    assert!(ok, "{said}");
    assert!(
        said.contains("highest glibc symbol version GLIBC_2."),
        "{said}"
    );
    // The check reads the binary for real: the test build, linked against this machine's
    // glibc, fails it when that glibc is newer than 2.28.
    let host = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout);
    let minor: u32 = host
        .trim()
        .rsplit('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor >= 34 {
        let (ok, said) = check(&airlock_system_tests::handler_bin());
        assert!(!ok, "{said}");
        assert!(said.contains("GLIBC_2.34"), "{said}");
    }
    // And something that is not a program at all is refused, not waved through.
    let (ok, _) = check(format!("{ROOT}/host.json").as_ref());
    assert!(!ok);
}
