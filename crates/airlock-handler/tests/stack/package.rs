//! The Function App package: `infra/package` lays out host.json, one folder per function with
//! its function.json, and an executable `handler`, exactly as `function-manifests/` says.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn the_zip_matches_the_manifests() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::env::temp_dir().join(format!("airlock-package-{}.zip", std::process::id()));
    // Pack the handler this test run already built (one build in CI); the layout is the same
    // for the release build `infra/package` makes by default.
    let status = Command::new("bash")
        .arg(format!("{root}/infra/package"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_handler"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let listing = Command::new("python3")
        .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); [print(i.filename, oct(i.external_attr >> 16)) for i in z.infolist()]"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8(listing.stdout).unwrap();
    let entries: BTreeSet<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let mut expected: BTreeSet<String> = ["host.json".to_string(), "handler".to_string()].into();
    for f in std::fs::read_dir(format!("{root}/function-manifests")).unwrap() {
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
    for name in ["StatusChanged", "Api", "Reconcile"] {
        let unzip = Command::new("python3")
            .args(["-c", "import sys,zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())"])
            .arg(&out)
            .arg(format!("{name}/function.json"))
            .output()
            .unwrap();
        let packed = String::from_utf8(unzip.stdout).unwrap();
        let source =
            std::fs::read_to_string(format!("{root}/function-manifests/{name}/function.json"))
                .unwrap();
        assert_eq!(packed.trim_end(), source.trim_end(), "{name}");
    }
    std::fs::remove_file(&out).unwrap();
}
