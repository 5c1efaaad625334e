//! Helpers for tests on the real emulators and the whole local stack: start Azurite, the
//! Cosmos emulator or the stack for one test, and talk to them as a user's client would.
//!
//! TLS trust: the test process trusts the local CA through `SSL_CERT_FILE`, which
//! `.cargo/config.toml` points at `target/airlock-local/tls/ca.pem` for every `cargo test`;
//! the CA itself is made here, before any TLS client exists, when it is missing.

use crate::emulators::{Azurite, COSMOS_EMULATOR_KEY, CosmosEmulator, ensure_tls, repo_root};
use crate::identity::LocalEntraCredential;
use crate::stack::{LocalStack, StackOptions};
use airlock::adapters::azure::AzureBlobStore;
use airlock::adapters::azure::cosmos::{CosmosAuth, CosmosStores};
use airlock::api::view::RequestView;
use airlock::domain::Workspace;
use airlock::domain::url::encode_path;
use airlock_testkit::delivery::DeliveryOptions;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobClient;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

pub fn tls_dir() -> PathBuf {
    let dir = std::env::var_os("AIRLOCK_LOCAL_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/airlock-local/tls"));
    static TLS: Once = Once::new();
    TLS.call_once(|| {
        ensure_tls(&dir).expect("local CA");
        let expected = dir.join("ca.pem");
        let set = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        assert!(
            set.as_deref() == Some(expected.as_path()),
            "tests on the emulators need SSL_CERT_FILE={} (TLS trust is read at process start); .cargo/config.toml sets it for cargo test",
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
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tls = tls_dir();
    let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let data = log_dir().join(format!("azurite-data-{n}"));
    Azurite::start(&tls, &accounts, &log_dir(), &data).expect("azurite starts")
}

pub fn blob_store(azurite: &Azurite) -> AzureBlobStore {
    AzureBlobStore::new(
        &azurite.endpoint_template,
        Arc::new(LocalEntraCredential::function_app()),
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
        let url = Url::parse(&format!("{base}/{}?{query}", encode_path(name))).unwrap();
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

    /// Uploads with content headers of the uploader's choosing (as any SDK or AzCopy can).
    pub async fn upload_with_headers(
        &self,
        name: &str,
        data: Vec<u8>,
        headers: &airlock::ports::ContentHeaders,
    ) -> Result<(), u16> {
        let options = azure_storage_blob::models::BlobClientUploadOptions {
            blob_content_type: headers.content_type.clone(),
            blob_cache_control: headers.cache_control.clone(),
            blob_content_disposition: headers.content_disposition.clone(),
            blob_content_encoding: headers.content_encoding.clone(),
            blob_content_language: headers.content_language.clone(),
            ..Default::default()
        };
        self.blob(name)
            .upload(RequestContent::from(data), Some(options))
            .await
            .map(|_| ())
            .map_err(Self::status)
    }

    /// Uploads `total` bytes made by `fill(offset, chunk)` in blocks of `block` bytes, as
    /// AzCopy does (Put Block, then Put Block List), never holding more than one block in
    /// memory. Returns the sha256 (hex) of what was uploaded.
    pub async fn upload_blocks(
        &self,
        name: &str,
        total: u64,
        block: usize,
        fill: impl Fn(u64, &mut [u8]),
    ) -> Result<String, String> {
        use base64::Engine;
        use sha2::Digest;
        let (base, query) = self.container_url.split_once('?').expect("a SAS query");
        let url = format!("{base}/{}?{query}", encode_path(name));
        let http = reqwest::Client::new();
        let mut hasher = sha2::Sha256::new();
        let mut ids = Vec::new();
        let mut buffer = vec![0u8; block];
        let mut offset = 0u64;
        while offset < total {
            let n = usize::try_from((total - offset).min(block as u64)).unwrap();
            fill(offset, &mut buffer[..n]);
            hasher.update(&buffer[..n]);
            let id = base64::engine::general_purpose::STANDARD
                .encode(format!("block-{:010}", ids.len()));
            let response = http
                .put(format!(
                    "{url}&comp=block&blockid={}",
                    airlock::domain::url::encode_component(&id)
                ))
                .header("x-ms-version", "2021-08-06")
                .body(buffer[..n].to_vec())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("put block: {}", response.status()));
            }
            ids.push(id);
            offset += n as u64;
        }
        let list: String = ids
            .iter()
            .map(|id| format!("<Latest>{id}</Latest>"))
            .collect();
        let response = http
            .put(format!("{url}&comp=blocklist"))
            .header("x-ms-version", "2021-08-06")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>"
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("put block list: {}", response.status()));
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Downloads streaming, returning the sha256 (hex) and size without keeping the bytes.
    pub async fn download_sha256(&self, name: &str) -> Result<(String, u64), u16> {
        use futures::StreamExt;
        use sha2::Digest;
        let mut body = self
            .blob(name)
            .download(None)
            .await
            .map_err(Self::status)?
            .body;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Self::status)?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), size))
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

pub fn cosmos() -> CosmosEmulator {
    let tls = tls_dir();
    CosmosEmulator::start(&tls, &log_dir()).expect("cosmos emulator starts")
}

pub async fn cosmos_stores(emulator: &CosmosEmulator) -> CosmosStores {
    CosmosStores::connect(
        &emulator.endpoint,
        CosmosAuth::Key(COSMOS_EMULATOR_KEY.into()),
        "airlock",
        true,
    )
    .await
    .expect("connects to the emulator")
}

/// The Function App package the tests run: `AIRLOCK_PACKAGE` when set (`infra/local/test`
/// builds it first), otherwise built here by `infra/package` (a release build for glibc 2.28;
/// its own build directories, so it does not wait on the test build's lock).
pub fn function_package() -> PathBuf {
    static PACKAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PACKAGE
        .get_or_init(|| {
            if let Some(zip) = std::env::var_os("AIRLOCK_PACKAGE") {
                return PathBuf::from(zip);
            }
            let out = repo_root().join("target/airlock-functionapp.zip");
            let status = std::process::Command::new("bash")
                .arg(repo_root().join("infra/package"))
                .arg("--out")
                .arg(&out)
                .current_dir(repo_root())
                .status()
                .expect("infra/package runs");
            assert!(status.success(), "infra/package failed");
            out
        })
        .clone()
}

/// The `handler` inside [`function_package`], extracted (mode kept) once per test process:
/// the binary the Functions host would start, not the test build.
pub fn packaged_handler() -> PathBuf {
    static HANDLER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HANDLER
        .get_or_init(|| {
            let zip = function_package();
            let dir = std::env::temp_dir().join(format!(
                "airlock-packaged-handler-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let status = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\ni=z.getinfo('handler')\np=os.path.join(sys.argv[2],'handler')\nopen(p,'wb').write(z.read(i))\nos.chmod(p,(i.external_attr>>16)&0o777)",
                ])
                .arg(&zip)
                .arg(&dir)
                .status()
                .expect("python3 runs");
            assert!(status.success(), "extracting handler from {}", zip.display());
            dir.join("handler")
        })
        .clone()
}

/// Starts the whole local stack for a test, reusing the test command's CA (`SSL_CERT_FILE`
/// is read at process start, so the stack must use the same one).
pub async fn start_stack(
    handler_bin: &Path,
    tre_id: &str,
    delivery: DeliveryOptions,
    workspaces: Vec<Workspace>,
    reconcile_every: std::time::Duration,
    handler_env: Vec<(String, String)>,
) -> LocalStack {
    let options = stack_options(
        handler_bin,
        tre_id,
        delivery,
        workspaces,
        reconcile_every,
        handler_env,
    );
    start_stack_with(options).await
}

/// Starts the local stack with options a test has adjusted (see [`stack_options`]).
pub async fn start_stack_with(options: StackOptions) -> LocalStack {
    // A port picked free can be taken by another process before a server binds it (ports
    // are picked, then bound by child processes): a stack whose ports were all picked here
    // starts again with new ones.
    let picked = options.api_port.is_none() && options.router_port.is_none();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match LocalStack::start(options.clone()).await {
            Ok(stack) => return stack,
            Err(e) if picked && e.kind() == std::io::ErrorKind::AddrInUse && attempt < 3 => {
                eprintln!("the local stack did not start ({e}); again with other ports");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the local stack starts: {e}"),
        }
    }
}

/// A test's stack options: a fresh state directory under the temporary directory, free
/// ports, data removed when the stack stops, clamd scanning as much as it can.
pub fn stack_options(
    handler_bin: &Path,
    tre_id: &str,
    delivery: DeliveryOptions,
    workspaces: Vec<Workspace>,
    reconcile_every: std::time::Duration,
    handler_env: Vec<(String, String)>,
) -> StackOptions {
    let dir = std::env::temp_dir().join(format!(
        "airlock-{tre_id}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(tls_dir(), dir.join("tls")).unwrap();
    StackOptions {
        state_dir: dir,
        handler_bin: handler_bin.to_path_buf(),
        tre_id: tre_id.into(),
        api_port: None,
        router_port: None,
        delivery,
        workspaces,
        workspace_records: vec![],
        reconcile_every,
        handler_env,
        keep_data: false,
        scanner_max_bytes: crate::clamav::CLAMD_MAX_BYTES,
        fault_proxies: false,
        revoked_roles: vec![],
        provisioned_short_ids: vec![],
        front_header_timeout: crate::front::HEADER_TIMEOUT,
    }
}

/// `v` read as the API declares a request; panics naming what does not fit.
pub fn typed(v: &serde_json::Value) -> RequestView {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("not a request as the API declares one ({e}): {v}"))
}

/// The API of a running local stack, as a researcher's or manager's client sees it. Every
/// request document it reads is parsed as the API's own type ([`RequestView`]) before a test
/// looks into it, so a change of shape fails here, naming the field, and not as a `Null`
/// somewhere later.
pub struct StackClient<'a> {
    pub stack: &'a LocalStack,
    http: reqwest::Client,
}

impl<'a> StackClient<'a> {
    pub fn new(stack: &'a LocalStack) -> Self {
        StackClient {
            stack,
            http: reqwest::Client::new(),
        }
    }

    /// `(0, error text)` when the handler cannot be reached at all.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call_with(method, path, token, &[], body).await
    }

    /// [`StackClient::call`] with extra headers (`Idempotency-Key`, `If-Match`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/api{path}", self.stack.api_url),
            )
            .bearer_auth(token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(serde_json::Value::Null))
            }
            Err(e) => (0, serde_json::Value::String(e.to_string())),
        }
    }

    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, v) = self.call(method, path, token, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn create(&self, ws: &str, token: &str, kind: &str) -> String {
        let body =
            serde_json::json!({"type": kind, "title": "e2e", "businessJustification": "testing"});
        let v = self
            .ok(
                "POST",
                &format!("/workspaces/{ws}/requests"),
                token,
                Some(body),
            )
            .await;
        v["airlockRequest"]["id"].as_str().unwrap().to_string()
    }

    pub async fn link(&self, ws: &str, id: &str, token: &str) -> SasOnly {
        let v = self
            .ok(
                "GET",
                &format!("/workspaces/{ws}/requests/{id}/link"),
                token,
                None,
            )
            .await;
        SasOnly::new(v["containerUrl"].as_str().unwrap())
    }

    pub async fn act(
        &self,
        ws: &str,
        id: &str,
        action: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        self.ok(
            "POST",
            &format!("/workspaces/{ws}/requests/{id}/{action}"),
            token,
            body,
        )
        .await
    }

    /// The request as the API shows it now (`airlockRequest`).
    pub async fn request(&self, ws: &str, id: &str, token: &str) -> serde_json::Value {
        let v = self
            .ok(
                "GET",
                &format!("/workspaces/{ws}/requests/{id}"),
                token,
                None,
            )
            .await["airlockRequest"]
            .clone();
        typed(&v);
        v
    }

    /// The request as the API's own type.
    pub async fn view(&self, ws: &str, id: &str, token: &str) -> RequestView {
        typed(&self.request(ws, id, token).await)
    }

    /// The request's audit trail as the API shows it (`history`, `verified`, ...).
    pub async fn history(&self, ws: &str, id: &str, token: &str) -> serde_json::Value {
        self.ok(
            "GET",
            &format!("/workspaces/{ws}/requests/{id}/history"),
            token,
            None,
        )
        .await
    }

    /// Creates a request, uploads `files` through its link and submits it.
    pub async fn submitted(
        &self,
        ws: &str,
        token: &str,
        kind: &str,
        files: &[(&str, &[u8])],
    ) -> String {
        let id = self.create(ws, token, kind).await;
        let upload = self.link(ws, &id, token).await;
        for (name, data) in files {
            upload
                .upload(name, data.to_vec())
                .await
                .expect("upload through the link");
        }
        self.act(ws, &id, "submit", token, None).await;
        id
    }

    /// Waits for `status` (riding out a handler restart); fails at once if the request
    /// settles in another terminal status.
    pub async fn wait(&self, ws: &str, id: &str, token: &str, status: &str) -> serde_json::Value {
        self.wait_for(ws, id, token, status, std::time::Duration::from_secs(90))
            .await
    }

    /// [`StackClient::wait`] for up to an hour (benchmarks of large files).
    pub async fn wait_long(
        &self,
        ws: &str,
        id: &str,
        token: &str,
        status: &str,
    ) -> serde_json::Value {
        self.wait_for(ws, id, token, status, std::time::Duration::from_secs(3600))
            .await
    }

    async fn wait_for(
        &self,
        ws: &str,
        id: &str,
        token: &str,
        status: &str,
        patience: std::time::Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let (code, v) = self
                .call(
                    "GET",
                    &format!("/workspaces/{ws}/requests/{id}"),
                    token,
                    None,
                )
                .await;
            if code == 200 {
                let now = typed(&v["airlockRequest"]).status;
                if now.as_str() == status {
                    return v["airlockRequest"].clone();
                }
                assert!(
                    !now.is_terminal(),
                    "expected {status}, got {}: {v}",
                    now.as_str()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {status}: {code} {v}"
            );
            // Polling is an API caller like any other: slowed down when rate limited.
            let pause = if code == 429 { 1000 } else { 100 };
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
    }
}
