//! The whole airlock on this machine: Azurite and the Cosmos emulator, the local router, and
//! the `handler` binary started exactly as the Functions host starts it (environment, port,
//! readiness probe on `GET /`). Used by `airlock-local` and by the end-to-end tests; dropping
//! a `LocalStack` stops every process it started.

use crate::clamav::Clamd;
use crate::emulators::{
    Azurite, COSMOS_EMULATOR_KEY, ChildGuard, CosmosEmulator, ensure_npm, ensure_tls, free_port,
};
use crate::fault_proxy::FaultProxy;
use crate::front::FrontDoor;
use crate::identity::LocalEntraCredential;
use crate::rbac::{RbacProxy, ScopeKind, Service};
use crate::router::Router;
use crate::watcher::BlobWatcher;
use crate::work_queue::QueueTrigger;
use airlock::adapters::azure::AzureBlobStore;
use airlock::adapters::azure::cosmos::{CosmosAuth, CosmosStores};
use airlock::domain::stages::Scope;
use airlock::domain::{AccountNames, Stage, Workspace};
use airlock::ports::{BlobRef, BlobStore, ContainerRef};
use airlock_testkit::delivery::{DeliveryEngine, DeliveryOptions};
use airlock_testkit::demo::{PEOPLE, audience};
use airlock_testkit::{DEV_ISSUER, TokenIssuer, TokenSpec};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct StackOptions {
    pub state_dir: PathBuf,
    pub handler_bin: PathBuf,
    pub tre_id: String,
    /// Port for the handler (the API); a free one when `None`.
    pub api_port: Option<u16>,
    pub router_port: Option<u16>,
    /// How events are delivered (`handler_url` and the dead-letter file are the stack's).
    pub delivery: DeliveryOptions,
    pub workspaces: Vec<Workspace>,
    /// The records to seed, as written (a user's `infra/local/workspaces.json`: policy fields
    /// left out are filled by `AIRLOCK_POLICY_DEFAULTS`); empty: `workspaces` as typed.
    pub workspace_records: Vec<serde_json::Value>,
    /// How often the `Reconcile` timer fires (every 5 minutes on Azure).
    pub reconcile_every: Duration,
    /// Extra environment for the handler (e.g. shorter healing deadlines in tests).
    pub handler_env: Vec<(String, String)>,
    /// Keep Azurite's data (`state_dir/azurite`) when the stack stops: the developer's stack
    /// does, so a restart loses nothing; tests do not.
    pub keep_data: bool,
    /// The largest file the scanner reads ([`crate::clamav::CLAMD_MAX_BYTES`], clamd's
    /// ceiling, unless a test wants the "not scanned" path with a small file).
    pub scanner_max_bytes: u64,
    /// Put a [`FaultProxy`] between the handler and Blob storage and Cosmos DB (the chaos
    /// run makes their calls fail or slow down through [`LocalStack::faults`]).
    pub fault_proxies: bool,
    /// How long the front door waits for a request's headers ([`crate::front::HEADER_TIMEOUT`];
    /// tests shorten it).
    pub front_header_timeout: Duration,
    /// Role assignments of the Function App's identity left out of `infra/rbac.json`'s (a
    /// role not granted yet): calls they would allow fail with 403, as on Azure.
    pub revoked_roles: Vec<(ScopeKind, String)>,
    /// Short ids of workspaces whose stage accounts exist but that are not registered yet:
    /// on Azure, Terraform's `airlock-workspace` module makes the accounts and an operator
    /// then registers the workspace through the registry API (docs/deploy.md step 4).
    pub provisioned_short_ids: Vec<String>,
}

/// The proxies between the handler and its backing services, when the stack has them.
/// The local RBAC check in front of Azurite's Blob and Queue services and the Cosmos DB
/// emulator.
pub struct RbacProxies {
    pub blob: RbacProxy,
    pub queue: RbacProxy,
    pub cosmos: RbacProxy,
    /// The roles in force and every decision made.
    pub grants: Arc<crate::rbac::Grants>,
}

pub struct BackendFaults {
    /// Blob storage (and every link the handler signs, which names the proxy's address).
    pub blob: FaultProxy,
    pub cosmos: FaultProxy,
}

/// glibc's allocator settings the Function App gives the handler (Terraform's app settings
/// in `infra/azure/modules/airlock-core/function.tf`; a test keeps the two equal). A seal
/// reads in 2 MiB buffers on several threads: with glibc's defaults, a freed buffer raises the
/// mmap threshold and stays in a per-thread arena, and the handler's peak RSS grew to 72 MiB
/// over a 1 GiB seal with every gate; with these, 50 MiB (docs/operating.md).
pub const HANDLER_ALLOCATOR: [(&str, &str); 2] = [
    // Every allocation of 1 MiB or more is mmapped and given back when freed (a fixed
    // threshold also stops glibc raising it).
    ("MALLOC_MMAP_THRESHOLD_", "1048576"),
    // Two arenas for every thread, not eight per core.
    ("MALLOC_ARENA_MAX", "2"),
];

pub const TOPIC_KEY: &str = "local-topic-key";

/// How often the blob watcher lists every watched container (writes through the storage
/// check are raised at once, whatever this is).
const FULL_PASS_EVERY: Duration = Duration::from_secs(1);

pub struct LocalStack {
    /// The front door (as the Functions host's public address): `/api/...` only.
    pub api_url: String,
    /// The handler itself, on a port only the local router uses (as the Functions host's
    /// private channel to its custom handler).
    pub handler_url: String,
    pub router_url: String,
    pub ca_cert: PathBuf,
    pub blob_endpoint: String,
    pub cosmos_endpoint: String,
    pub router: Arc<Router>,
    pub engine: Arc<DeliveryEngine>,
    pub blobs: Arc<AzureBlobStore>,
    /// Set false to take the local Defender down (no verdict tags, no verdict events).
    pub defender_online: Arc<std::sync::atomic::AtomicBool>,
    /// The `Reconcile` timer: a test holds it to run Reconcile itself, one pass at a time.
    pub reconcile_timer: ReconcileTimer,
    /// clamd's time per scan of the local Defender.
    pub scan_times: crate::watcher::ScanTimes,
    pub workspaces: Vec<Workspace>,
    pub tre_id: String,
    pub log_dir: PathBuf,
    issuer: TokenIssuer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Azurite's data, removed when the stack stops (unless `keep_data`).
    discard_data: Option<PathBuf>,
    /// The handler, restarted when it exits (stopped first on drop, before the emulators).
    handler: Arc<crate::supervisor::HandlerSupervisor>,
    /// Between the handler and its backing services (only with `fault_proxies`).
    pub faults: Option<BackendFaults>,
    /// The local RBAC check (always on): the grants in force and what it decided.
    pub rbac: RbacProxies,
    _clamd: Clamd,
    _cosmos: CosmosEmulator,
    azurite: std::sync::Mutex<Azurite>,
    azurite_gates: AzuriteGates,
}

/// What stands between Azurite and every caller of the stack (the RBAC check, the watcher,
/// tests): Blob and Queue, each through a proxy that can take the service away at once.
struct AzuriteGates {
    blob: FaultProxy,
    queue: FaultProxy,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.handler.stop();
        if let Some(dir) = &self.discard_data {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts the handler and waits for its readiness probe. Its output is appended to `log`.
pub(crate) fn spawn_handler(
    command: &mut Command,
    log: &Path,
    handler_url: &str,
) -> std::io::Result<ChildGuard> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    command
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let child = command
        .spawn()
        .map_err(|e| std::io::Error::other(format!("starting the handler: {e}")))?;
    let mut guard = ChildGuard::adopt("handler", child);
    wait_ready(handler_url, &mut guard, log, Duration::from_secs(60))?;
    Ok(guard)
}

/// Every stage account of the TRE and of each workspace.
/// The local stack's `Reconcile` timer, which a test can hold to run each pass itself
/// (`DeliveryEngine::reconcile`): a timeout of zero minutes then means "at the next pass the
/// test asks for", not "whenever the next tick happens to come".
#[derive(Clone, Default)]
pub struct ReconcileTimer {
    held: Arc<tokio::sync::Mutex<bool>>,
}

impl ReconcileTimer {
    /// Stops the ticks; returns once no tick is running.
    pub async fn hold(&self) {
        *self.held.lock().await = true;
    }

    /// Lets the ticks run again.
    pub async fn release(&self) {
        *self.held.lock().await = false;
    }
}

/// Lets a browser on `origin` use the stage accounts' links (Blob service CORS rules, as
/// Terraform's `cors_rule` sets them on Azure): without them a browser refuses the answers.
async fn allow_web_origin(
    tls: &std::path::Path,
    endpoint_template: &str,
    accounts: &[String],
    origin: &str,
) -> std::io::Result<()> {
    use azure_core::credentials::TokenCredential;
    let fail = |e: String| std::io::Error::other(format!("CORS rules for the web app: {e}"));
    let http = crate::tls::trusting_local_ca(tls)?
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let token = LocalEntraCredential::azure_services()
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties><Cors><CorsRule>\
         <AllowedOrigins>{origin}</AllowedOrigins><AllowedMethods>GET,HEAD,PUT,OPTIONS</AllowedMethods>\
         <AllowedHeaders>content-type,x-ms-*</AllowedHeaders><ExposedHeaders>etag,content-length,x-ms-*</ExposedHeaders>\
         <MaxAgeInSeconds>3600</MaxAgeInSeconds></CorsRule></Cors></StorageServiceProperties>"
    );
    for account in accounts {
        let url = format!(
            "{}/?restype=service&comp=properties",
            endpoint_template.replace("{account}", account)
        );
        let response = http
            .put(&url)
            .bearer_auth(token.token.secret())
            .header("x-ms-version", "2021-08-06")
            .header("content-type", "application/xml")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(fail(format!("{account}: {status} {text}")));
        }
    }
    Ok(())
}

pub fn stage_accounts(tre_id: &str, workspaces: &[Workspace]) -> Vec<String> {
    let short_ids: Vec<&str> = workspaces.iter().map(|w| w.short_id.as_str()).collect();
    accounts_for(tre_id, &short_ids)
}

/// The TRE's stage accounts and those of the workspaces with these short ids.
fn accounts_for(tre_id: &str, short_ids: &[&str]) -> Vec<String> {
    let names = AccountNames::new(tre_id);
    let mut out = Vec::new();
    for stage in Stage::ALL {
        match stage.scope() {
            Scope::Tre => out.push(names.account(stage, "")),
            Scope::Workspace => {
                for short_id in short_ids {
                    out.push(names.account(stage, short_id));
                }
            }
        }
    }
    out
}

fn wait_ready(
    url: &str,
    handler: &mut ChildGuard,
    log: &Path,
    within: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 16];
            if s.read(&mut buf).is_ok_and(|n| n > 0) {
                // Answered, but by the handler? Another process may hold the port.
                match crate::emulators::listener_in_group(port, handler.id()) {
                    Some(true) | None => return Ok(()),
                    Some(false) => {
                        if handler.has_exited() {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::AddrInUse,
                                format!(
                                    "port {port}, picked for the handler, is held by another process"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if handler.has_exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    Err(std::io::Error::other(format!(
        "the handler did not become ready:\n{}",
        tail.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    )))
}

impl LocalStack {
    /// The handler's process id (for measuring its memory).
    pub fn handler_pid(&self) -> u32 {
        self.handler.pid().unwrap_or(0)
    }

    pub async fn start(options: StackOptions) -> std::io::Result<LocalStack> {
        let fail = |m: String| std::io::Error::other(m);
        let tls = options.state_dir.join("tls");
        let log_dir = options.state_dir.join("logs");
        std::fs::create_dir_all(&log_dir)?;
        ensure_tls(&tls)?;
        ensure_npm()?;
        let ca_cert = tls.join("ca.pem");
        // The registered workspaces' accounts, and those Terraform made for workspaces an
        // operator has not registered yet.
        let mut short_ids: Vec<&str> = options
            .workspaces
            .iter()
            .map(|w| w.short_id.as_str())
            .collect();
        for provisioned in &options.provisioned_short_ids {
            if !short_ids.contains(&provisioned.as_str()) {
                short_ids.push(provisioned);
            }
        }
        let accounts = accounts_for(&options.tre_id, &short_ids);
        // The Function App's own storage account holds the `Work` queue.
        let host_account = AccountNames::new(options.tre_id.clone()).host_account();
        let mut azurite_accounts = accounts.clone();
        azurite_accounts.push(host_account.clone());
        let data_dir = options.state_dir.join("azurite");
        let azurite = Azurite::start(&tls, &azurite_accounts, &log_dir, &data_dir)?;
        // Every caller reaches Azurite through a gate that can take it away at once, so that
        // no answer it gives while it stops reaches anyone (`FaultProxy::go_down`).
        let gates = AzuriteGates {
            blob: FaultProxy::start(0, azurite.port).await?,
            queue: FaultProxy::start(0, azurite.queue_port).await?,
        };
        let azurite_endpoint = format!("https://127.0.0.1:{}/{{account}}", gates.blob.port);
        let discard_data = (!options.keep_data).then(|| data_dir.clone());
        // Cosmos DB is reached through the RBAC check (and the fault proxy in front of it when
        // there is one): the emulator's account document names the outermost address, since
        // the SDK sends its calls wherever the account says it is.
        let cosmos_rbac_port = free_port()?;
        let cosmos_fault_port = if options.fault_proxies {
            Some(free_port()?)
        } else {
            None
        };
        let cosmos = CosmosEmulator::start_behind(
            &tls,
            &log_dir,
            Some(cosmos_fault_port.unwrap_or(cosmos_rbac_port)),
        )?;
        // Azure RBAC: the Function App's calls to Blob, Queue and Cosmos DB pass the role
        // check of infra/rbac.json first, as on Azure (the emulators check no roles).
        let grants = Arc::new(crate::rbac::Grants::new(
            &crate::rbac::Manifest::load(),
            &options.tre_id,
            &[
                ("function", crate::identity::FUNCTION_PRINCIPAL_ID),
                (
                    "azure-services",
                    crate::identity::AZURE_SERVICES_PRINCIPAL_ID,
                ),
            ],
        ));
        for (scope, role) in &options.revoked_roles {
            grants.revoke("function", *scope, role);
        }
        let changed = crate::watcher::ChangedContainers::default();
        let rbac = RbacProxies {
            blob: RbacProxy::start(
                0,
                gates.blob.port,
                Service::Blob,
                &tls,
                grants.clone(),
                Some(changed.clone()),
            )
            .await?,
            queue: RbacProxy::start(
                0,
                gates.queue.port,
                Service::Queue,
                &tls,
                grants.clone(),
                None,
            )
            .await?,
            cosmos: RbacProxy::start(
                cosmos_rbac_port,
                cosmos.port,
                Service::Cosmos,
                &tls,
                grants.clone(),
                None,
            )
            .await?,
            grants,
        };
        let work_queue_url = format!(
            "https://127.0.0.1:{}/{host_account}/airlock-work",
            rbac.queue.port
        );
        let faults = match cosmos_fault_port {
            Some(port) => Some(BackendFaults {
                blob: FaultProxy::start(0, rbac.blob.port).await?,
                cosmos: FaultProxy::start(port, cosmos_rbac_port).await?,
            }),
            None => None,
        };
        // What the handler is told: the proxies' addresses.
        let (handler_blob_endpoint, handler_cosmos_endpoint) = match &faults {
            Some(f) => (
                format!("https://127.0.0.1:{}/{{account}}", f.blob.port),
                format!("https://127.0.0.1:{}/", f.cosmos.port),
            ),
            None => (
                format!("https://127.0.0.1:{}/{{account}}", rbac.blob.port),
                format!("https://127.0.0.1:{cosmos_rbac_port}/"),
            ),
        };
        let clamd = Clamd::start(&options.state_dir, &log_dir, options.scanner_max_bytes)?;

        // Seed the workspace records (a TRE admin's job on Azure).
        let stores = CosmosStores::connect(
            &cosmos.endpoint,
            CosmosAuth::Key(COSMOS_EMULATOR_KEY.into()),
            "airlock",
            true,
        )
        .await
        .map_err(fail)?;
        if options.workspace_records.is_empty() {
            for ws in &options.workspaces {
                stores
                    .put_workspace(ws)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        for record in &options.workspace_records {
            stores
                .put_workspace_record(record.clone())
                .await
                .map_err(|e| fail(e.to_string()))?;
        }

        let api_port = match options.api_port {
            Some(p) => p,
            None => free_port()?,
        };
        let api_url = format!("http://127.0.0.1:{api_port}");
        // The web app (served at the front door) uploads and downloads through links.
        allow_web_origin(&tls, &azurite_endpoint, &accounts, &api_url).await?;
        let handler_port = free_port()?;
        let handler_url = format!("http://127.0.0.1:{handler_port}");
        let router_listener = match options.router_port {
            Some(port) => tokio::net::TcpListener::bind(("127.0.0.1", port)).await?,
            None => crate::emulators::free_listener().await?,
        };
        let router_url = format!("http://{}", router_listener.local_addr()?);
        let engine = Arc::new(DeliveryEngine::new(
            handler_url.clone(),
            DeliveryOptions {
                dead_letter_file: Some(options.state_dir.join("dead-letters.jsonl")),
                ..options.delivery.clone()
            },
        ));
        let router = Arc::new(
            Router::new(engine.clone(), TOPIC_KEY.into(), Box::new(audience))
                .with_grants(rbac.grants.clone()),
        );
        let blobs = Arc::new(
            AzureBlobStore::new(
                &azurite_endpoint,
                Arc::new(LocalEntraCredential::azure_services()),
            )
            .map_err(fail)?,
        );
        let mut tasks = Vec::new();
        let routes = router.http_routes();
        // Event Grid's topics and Resource Manager take the handler's bearer token: over TLS,
        // as on Azure (the same routes; the token issuer and MSI endpoint stay plain HTTP,
        // as App Service's identity endpoint is).
        let router_tls_listener = crate::emulators::free_listener().await?;
        let router_tls_url = format!("https://{}", router_tls_listener.local_addr()?);
        tasks.push(crate::tls::serve(
            router_tls_listener,
            crate::tls::acceptor(&tls)?,
            routes.clone(),
        ));
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(router_listener, routes).await;
        }));
        let delivering = engine.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if delivering.dispatch_due() == 0 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }));
        // Event Grid's dead-letter destination: what the engine gives up on is written, as
        // Event Grid writes it, into the host account's `deadletters` container (which
        // Terraform creates), and removed again once replayed. The handler's Reconcile counts
        // them there (`airlock.dead_letters`).
        let dead_letters = ContainerRef {
            account: host_account.clone(),
            container: "deadletters".into(),
        };
        blobs
            .create_container(&dead_letters)
            .await
            .map_err(|e| fail(e.to_string()))?;
        tasks.push(tokio::spawn(mirror_dead_letters(
            engine.clone(),
            blobs.clone(),
            dead_letters,
        )));
        // The queue trigger: what the handler queues on Azurite reaches `Work`.
        // The Functions host polls with the Function App's identity (identity-based
        // AzureWebJobsStorage), so its roles on the host account must allow it.
        let trigger = QueueTrigger::new(
            work_queue_url.clone(),
            Arc::new(LocalEntraCredential::function_app()),
        );
        let working = engine.clone();
        tasks.push(tokio::spawn(async move {
            // While the queue is unreachable (Azurite restarting), poll less often, as the
            // Functions host's queue trigger backs off, and say so once, not every poll.
            let mut failures = 0u32;
            let mut interval = crate::work_queue::PollingInterval::default();
            loop {
                let polled = trigger.poll(&working).await;
                if polled.is_ok() && failures > 0 {
                    tracing::info!(failures, "polling the work queue again");
                    failures = 0;
                }
                match polled {
                    Ok(n) => tokio::time::sleep(interval.next(n > 0)).await,
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, "polling the work queue; backing off");
                        }
                        failures += 1;
                        let backoff = Duration::from_millis(500) * 2u32.pow(failures.min(4) - 1);
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
        }));
        let names = AccountNames::new(&options.tre_id);
        let watched = accounts
            .iter()
            .filter(|a| {
                names
                    .parse(a)
                    .is_some_and(|p| engine.subscriptions().watches_stage(p.stage.prefix()))
            })
            .cloned()
            .collect();
        let mut watcher = BlobWatcher::new(blobs.clone(), names, watched);
        watcher.scanner = Some(clamd.scanner);
        watcher.rescans = router.rescans.clone();
        let defender_online = watcher.defender_online.clone();
        let scan_times = watcher.scan_times.clone();
        let watching = engine.clone();
        let timer = engine.clone();
        let every = options.reconcile_every;
        let reconcile_timer = ReconcileTimer::default();
        let ticks = reconcile_timer.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // A tick holds the lock while it runs, so `hold` returns only after it.
                let held = ticks.held.lock().await;
                // The host runs no timer while its handler is down; the next tick catches up.
                if *held || timer.is_paused() {
                    continue;
                }
                if let Err(e) = timer.reconcile().await {
                    tracing::warn!(error = %e, "Reconcile timer");
                }
            }
        }));
        let watcher = Arc::new(watcher);
        // Writes through the storage check are raised at once; the full pass still finds
        // anything written around it (the stand-ins' own writes, a restarted Azurite).
        let (fast, fast_engine) = (watcher.clone(), engine.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                changed.changed().await;
                fast.scan_changed(&changed, &fast_engine).await;
            }
        }));
        tasks.push(tokio::spawn(async move {
            loop {
                watcher.scan(&watching).await;
                // The full pass lists every container: its cost grows with the accounts, so
                // it runs less often now that writes through the check are raised at once.
                tokio::time::sleep(FULL_PASS_EVERY).await;
            }
        }));

        // The handler, started as the Functions host starts it, with the app settings
        // Terraform gives it (the allocator's included).
        let mut command = Command::new(&options.handler_bin);
        command.envs(HANDLER_ALLOCATOR);
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", handler_port.to_string())
            .env("AIRLOCK_BACKEND", "azure")
            .env("AIRLOCK_TRE_ID", &options.tre_id)
            // The production credential path: App Service's managed identity endpoint.
            .env("AIRLOCK_CREDENTIAL", "managed-identity")
            .env("IDENTITY_ENDPOINT", format!("{router_url}/msi/token"))
            .env("IDENTITY_HEADER", &router.identity_header)
            .env("AIRLOCK_BLOB_ENDPOINT", &handler_blob_endpoint)
            // Entra ID through the managed identity, as on Azure (no key: local auth is off
            // there); the database and containers exist already, as Terraform makes them.
            .env("AIRLOCK_COSMOS_ENDPOINT", &handler_cosmos_endpoint)
            .env(
                "AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT",
                format!("{router_tls_url}/topics/status-changed/api/events"),
            )
            .env("AIRLOCK_WORK_QUEUE_URL", &work_queue_url)
            // Defender's on-demand scan goes to Resource Manager, played by the router.
            .env("AIRLOCK_ARM_ENDPOINT", &router_tls_url)
            .env(
                "AIRLOCK_RESCAN_TRE_ACCOUNT_ID",
                format!("/subscriptions/local/resourceGroups/rg-{}/providers/Microsoft.Storage/storageAccounts/{{account}}", options.tre_id),
            )
            .env(
                "AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID",
                format!("/subscriptions/local/resourceGroups/rg-{}-ws-{{workspace}}/providers/Microsoft.Storage/storageAccounts/{{account}}", options.tre_id),
            )
            .env(
                "AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT",
                format!("{router_tls_url}/topics/notification/api/events"),
            )
            // Application Insights (local authentication off), played by the router: the
            // handler's custom metrics go there with its identity's token.
            .env(
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                crate::app_insights::Ingestion::connection_string(&router_tls_url),
            )
            .env("AIRLOCK_AUTH_ISSUER", DEV_ISSUER)
            .env(
                "AIRLOCK_AUTH_JWKS_URL",
                format!("{router_url}/discovery/v2.0/keys"),
            )
            .env("AIRLOCK_API_AUDIENCE", airlock_testkit::demo::TRE_API_AUDIENCE)
            // The web app signs in at the router, which answers as Entra ID (over TLS).
            .env("AIRLOCK_WEB_AUTHORITY", &router_tls_url)
            .env("AIRLOCK_WEB_CLIENT_ID", crate::sign_in::LOCAL_CLIENT_ID)
            .env("AIRLOCK_LOG_FORMAT", "json")
            .env("SSL_CERT_FILE", &ca_cert)
            .env("COSMOS_DISABLE_IMDS", "1")
            .env("AZURE_COSMOS_CONNECTION_POOL_IS_HTTP2_ALLOWED", "false")
            .env("AZURE_COSMOS_BINARY_ENCODING_ENABLED", "false")
            .envs(
                options
                    .handler_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        let handler_log = log_dir.join("handler.log");
        let child = spawn_handler(&mut command, &handler_log, &handler_url)?;
        let handler = crate::supervisor::HandlerSupervisor::watch(
            child,
            command,
            handler_log,
            handler_url.clone(),
            engine.clone(),
        );
        // Only now open the front door: the API port answers once the handler does.
        let front = Arc::new(FrontDoor::new(handler_url.clone()));
        // The host's backlog, not tokio's default of 128: a burst queues, it is not reset.
        let front_listener = airlock::host::bind(api_port)?;
        let options_header_timeout = options.front_header_timeout;
        let front_routes = front.routes();
        // Kestrel's limits: request headers in time, and a bounded number of connections,
        // so slow-header connections are cut, not held (`front::HEADER_TIMEOUT`).
        tasks.push(tokio::spawn(async move {
            let served = airlock::host::serve_app(
                front_listener,
                front_routes,
                crate::front::MAX_CONNECTIONS,
                options_header_timeout,
                std::future::pending(),
            )
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the front door stopped");
            }
        }));

        Ok(LocalStack {
            api_url,
            handler_url,
            router_url,
            ca_cert,
            blob_endpoint: azurite_endpoint,
            cosmos_endpoint: cosmos.endpoint.clone(),
            router,
            engine,
            blobs,
            defender_online,
            reconcile_timer,
            scan_times,
            workspaces: options.workspaces.clone(),
            tre_id: options.tre_id.clone(),
            log_dir,
            issuer: TokenIssuer::dev(),
            tasks,
            discard_data,
            handler,
            faults,
            rbac,
            _clamd: clamd,
            _cosmos: cosmos,
            azurite: std::sync::Mutex::new(azurite),
            azurite_gates: gates,
        })
    }

    /// Kills the handler process (as a crash or a host recycle would); the supervisor starts
    /// it again once `down` has passed. Returns when it is ready again.
    pub async fn crash_handler(&mut self, down: Duration) -> std::io::Result<()> {
        let before = self.handler.restarts();
        self.handler.crash(down);
        let handler = self.handler.clone();
        let ready = tokio::task::spawn_blocking(move || {
            handler.wait_restarted(before, down + Duration::from_secs(120))
        })
        .await
        .unwrap_or(false);
        if ready {
            Ok(())
        } else {
            Err(std::io::Error::other("the handler was not restarted"))
        }
    }

    /// Restarts Azurite (Blob and Queue) with its data kept on disk, down for `down`
    /// (blocks the calling thread: use `spawn_blocking`).
    pub fn restart_azurite(&self, down: Duration) -> std::io::Result<()> {
        // Gone for every caller first, as a crashed service is: Azurite, told to stop, still
        // answers the calls it had in hand while it saves, and no caller should hear from it
        // once it is going (nor keep it from exiting on a connection it will never answer).
        self.azurite_gates.blob.go_down();
        self.azurite_gates.queue.go_down();
        let restarted = self
            .azurite
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .restart(down);
        self.azurite_gates.blob.come_up();
        self.azurite_gates.queue.come_up();
        restarted
    }

    /// The last `max` lines of the handler's log that mention any of `needles`: what a failed
    /// system test prints, since the stack's files go when it stops.
    pub fn handler_log_about(&self, needles: &[String], max: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.log_dir.join("handler.log")).unwrap_or_default();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
            .map(str::to_string)
            .collect();
        lines.drain(..lines.len().saturating_sub(max));
        lines
    }

    /// The supervisor of the handler (restarts, pid).
    pub fn handler(&self) -> &crate::supervisor::HandlerSupervisor {
        &self.handler
    }

    pub fn token(&self, user: &str, roles: &[&str], workspace_id: &str) -> String {
        self.issuer
            .mint(&TokenSpec::new(user, roles, &audience(workspace_id)))
    }

    /// What a newcomer needs: URLs, the CA, ready tokens, and how to mint more.
    pub fn summary(&self) -> Value {
        let mut tokens = serde_json::Map::new();
        for ws in &self.workspaces {
            let mut per = serde_json::Map::new();
            for (key, user, role) in PEOPLE {
                per.insert(key.into(), Value::String(self.token(user, &[role], &ws.id)));
            }
            tokens.insert(ws.id.clone(), Value::Object(per));
        }
        json!({
            "apiUrl": format!("{}/api", self.api_url),
            "webUrl": format!("{}/api/app/", self.api_url),
            "routerUrl": self.router_url,
            "caCert": self.ca_cert,
            "blobEndpoint": self.blob_endpoint,
            "cosmosEndpoint": self.cosmos_endpoint,
            "workspaces": self.workspaces.iter().map(|w| &w.id).collect::<Vec<_>>(),
            "tokens": tokens,
            "mintToken": format!("curl -s '{}/token?user=USER&roles=WorkspaceResearcher,AirlockManager&workspace=ws-alpha'", self.router_url),
            "deadLetters": self.log_dir.parent().map(|p| p.join("dead-letters.jsonl")),
            "logs": self.log_dir,
        })
    }
}

/// Keeps the host account's `deadletters` container equal to the engine's dead letters: one
/// blob per dead letter, `{function}/{yyyy}/{mm}/{dd}/{hh}/{event id}.json`, holding what
/// Event Grid's dead letters hold (the event with `deadLetterReason`, `deliveryAttempts`,
/// `lastDeliveryOutcome`).
async fn mirror_dead_letters(
    engine: Arc<DeliveryEngine>,
    blobs: Arc<AzureBlobStore>,
    container: ContainerRef,
) {
    let mut written: std::collections::BTreeMap<String, BlobRef> = Default::default();
    loop {
        let now = chrono::Utc::now();
        let mut current = std::collections::BTreeSet::new();
        for letter in engine.dead_letters() {
            let target = match &letter.target {
                airlock_testkit::delivery::Target::Function(f) => f.clone(),
                airlock_testkit::delivery::Target::Webhook(_) => "webhook".into(),
            };
            let key = format!("{target}/{}", letter.event.id);
            current.insert(key.clone());
            if written.contains_key(&key) {
                continue;
            }
            let blob = BlobRef {
                account: container.account.clone(),
                container: container.container.clone(),
                name: format!(
                    "{target}/{}/{}.json",
                    now.format("%Y/%m/%d/%H"),
                    letter.event.id
                ),
            };
            let mut event = serde_json::to_value(&letter.event).unwrap_or_default();
            event["deadLetterReason"] = "MaxDeliveryAttemptsExceeded".into();
            event["deliveryAttempts"] = letter.attempts.into();
            event["lastDeliveryOutcome"] = letter.last_error.clone().into();
            event["lastDeliveryAttemptTime"] = now.to_rfc3339().into();
            let body = serde_json::to_vec(&[event]).unwrap_or_default();
            match blobs.put_blob(&blob, body).await {
                Ok(()) => {
                    written.insert(key, blob);
                }
                Err(e) => tracing::warn!(error = %e, "writing a dead letter to storage"),
            }
        }
        let replayed: Vec<String> = written
            .keys()
            .filter(|k| !current.contains(*k))
            .cloned()
            .collect();
        for key in replayed {
            if let Some(blob) = written.get(&key)
                && blobs.delete_blob(blob).await.is_ok()
            {
                written.remove(&key);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn terraform_gives_the_handler_the_allocator_settings_the_local_stack_does() {
        let tf = std::fs::read_to_string(
            crate::emulators::repo_root().join("infra/azure/modules/airlock-core/function.tf"),
        )
        .unwrap();
        for (name, value) in super::HANDLER_ALLOCATOR {
            let set = tf.lines().any(|l| {
                let mut parts = l.split('=');
                parts.next().map(str::trim) == Some(name)
                    && parts.next().map(str::trim) == Some(format!("\"{value}\"").as_str())
            });
            assert!(
                set,
                "function.tf's app_settings must set {name} = \"{value}\""
            );
        }
    }
}
