//! The production binary carries production only and refuses to start half-configured.

use airlock_system_tests::handler_bin;
use std::process::Command;

/// rustls-pki-types' table of PEM section labels ("CERTIFICATE", "PUBLIC KEY",
/// "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", ...): every TLS client that reads a CA
/// bundle links it. It names kinds of PEM sections; it holds no key.
const PEM_LABEL_TABLE: &[u8] = b"RSA PRIVATE KEYPRIVATE KEYEC PRIVATE KEY";

/// Every offset of `needle` (memchr's searcher: the binaries are ~100 MB).
fn find(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    memchr::memmem::find_iter(haystack, needle).collect()
}

/// Where "PRIVATE KEY" occurs outside the PEM label table.
fn private_key_markers(bytes: &[u8]) -> Vec<usize> {
    let table: Vec<std::ops::Range<usize>> = find(bytes, PEM_LABEL_TABLE)
        .into_iter()
        .map(|i| i..i + PEM_LABEL_TABLE.len())
        .collect();
    find(bytes, b"PRIVATE KEY")
        .into_iter()
        .filter(|i| !table.iter().any(|t| t.contains(i)))
        .collect()
}

#[test]
fn the_handler_holds_no_private_key_or_development_issuer() {
    let handler = handler_bin();
    let bytes = std::fs::read(&handler).expect("the handler binary");
    assert_eq!(
        private_key_markers(&bytes),
        Vec::<usize>::new(),
        "{} has 'PRIVATE KEY' markers outside rustls' PEM label table",
        handler.display()
    );
    // The development key's body, line by line, and everything else only development has.
    let dev_key_lines = airlock_testkit::tokens::DEV_SIGNING_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"));
    for needle in dev_key_lines.chain([
        "-----BEGIN",
        airlock_testkit::DEV_ISSUER,
        airlock_testkit::DEV_KEY_ID,
        airlock_testkit::builders::EICAR,
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE",
    ]) {
        assert!(
            find(&bytes, needle.as_bytes()).is_empty(),
            "{} contains {needle:?}",
            handler.display()
        );
    }
    // The check can fail: this test binary links the test kit, and so the development key.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(!private_key_markers(&me).is_empty());
    assert!(!find(&me, airlock_testkit::DEV_ISSUER.as_bytes()).is_empty());
}

/// Runs the handler with only `env` set (no inherited settings).
fn run_with(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(handler_bin());
    command.env_clear().envs(env.iter().copied());
    command.output().expect("the handler runs")
}

#[test]
fn without_its_backend_setting_the_handler_stops_at_once_naming_it() {
    for env in [
        vec![],
        vec![("AIRLOCK_BACKEND", "memory")],
        vec![("AIRLOCK_BACKEND", "")],
        vec![("AIRLOCK_BACKEND", "Azure")],
    ] {
        let started = std::time::Instant::now();
        let out = run_with(&env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains("AIRLOCK_BACKEND"), "{env:?}: {stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

#[test]
fn a_missing_azure_setting_is_named_and_nothing_is_served() {
    let out = run_with(&[
        ("AIRLOCK_BACKEND", "azure"),
        (
            "AIRLOCK_BLOB_ENDPOINT",
            "https://{account}.blob.core.windows.net",
        ),
        (
            "AIRLOCK_COSMOS_ENDPOINT",
            "https://acct.documents.azure.com:443/",
        ),
        (
            "AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT",
            "https://t1.uksouth-1.eventgrid.azure.net/api/events",
        ),
        (
            "AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT",
            "https://t2.uksouth-1.eventgrid.azure.net/api/events",
        ),
        (
            "AIRLOCK_WORK_QUEUE_URL",
            "https://stalfuncdev.queue.core.windows.net/airlock-work",
        ),
        (
            "AIRLOCK_AUTH_ISSUER",
            "https://login.microsoftonline.com/t/v2.0",
        ),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AIRLOCK_AUTH_JWKS_URL"), "{stderr}");
}
