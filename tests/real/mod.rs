//! Helpers for tests on the real emulators. The README's test command
//! (`infra/local/test`) makes the local CA and exports `SSL_CERT_FILE`; when a test binary
//! runs without it, the CA is made here before any TLS client exists.
#![allow(dead_code)]

use airlock::adapters::azure::{AzureBlobStore, LocalEntraCredential};
use airlock::local::emulators::{Azurite, ensure_tls};
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobClient;
use std::path::PathBuf;
use std::sync::{Arc, Once};

pub fn tls_dir() -> PathBuf {
    let dir = std::env::var_os("AIRLOCK_LOCAL_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/airlock-local/tls")
        });
    static TLS: Once = Once::new();
    TLS.call_once(|| {
        ensure_tls(&dir).expect("local CA");
        let expected = dir.join("ca.pem");
        let set = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        assert!(
            set.as_deref() == Some(expected.as_path()),
            "tests on the emulators need SSL_CERT_FILE={} (TLS trust is read at process start): run the README's test command, infra/local/test",
            expected.display()
        );
    });
    dir
}

pub fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn azurite(accounts: &[&str]) -> Azurite {
    let tls = tls_dir();
    let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
    Azurite::start(&tls, &accounts, &log_dir()).expect("azurite starts")
}

pub fn blob_store(azurite: &Azurite) -> AzureBlobStore {
    AzureBlobStore::new(
        &azurite.endpoint_template,
        Arc::new(LocalEntraCredential::default()),
    )
    .unwrap()
}

/// A client that holds nothing but a container link, as AzCopy or Storage Explorer would.
pub struct SasOnly {
    pub container_url: String,
}

impl SasOnly {
    pub fn new(container_url: &str) -> SasOnly {
        SasOnly {
            container_url: container_url.to_string(),
        }
    }

    fn blob(&self, name: &str) -> BlobClient {
        let (base, query) = self.container_url.split_once('?').expect("a SAS query");
        let url = Url::parse(&format!(
            "{base}/{}?{query}",
            airlock::functions::inbound::percent_encode_path(name)
        ))
        .unwrap();
        BlobClient::new(url, None, None).unwrap()
    }

    fn status(e: azure_core::Error) -> u16 {
        e.http_status().map(u16::from).unwrap_or(0)
    }

    pub async fn upload(&self, name: &str, data: Vec<u8>) -> Result<(), u16> {
        self.blob(name)
            .upload(RequestContent::from(data), None)
            .await
            .map(|_| ())
            .map_err(Self::status)
    }

    pub async fn download(&self, name: &str) -> Result<Vec<u8>, u16> {
        use futures::StreamExt;
        let mut body = self
            .blob(name)
            .download(None)
            .await
            .map_err(Self::status)?
            .body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.map_err(Self::status)?);
        }
        Ok(out)
    }
}

pub fn cosmos() -> airlock::local::emulators::CosmosEmulator {
    let tls = tls_dir();
    airlock::local::emulators::CosmosEmulator::start(&tls, &log_dir())
        .expect("cosmos emulator starts")
}

pub async fn cosmos_stores(
    emulator: &airlock::local::emulators::CosmosEmulator,
) -> airlock::adapters::azure::cosmos::CosmosStores {
    airlock::adapters::azure::cosmos::CosmosStores::connect(
        &emulator.endpoint,
        airlock::adapters::azure::cosmos::CosmosAuth::Key(
            airlock::local::emulators::COSMOS_EMULATOR_KEY.into(),
        ),
        "airlock",
        true,
    )
    .await
    .expect("connects to the emulator")
}
