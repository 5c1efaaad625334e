//! `airlock-local`: runs the whole airlock on this machine (see `infra/local/run`).
//! Prints the API URL, the CA certificate and ready tokens, writes them to
//! `<state>/stack.json`, and stops every process it started on Ctrl-C.
//!
//! `--memory` runs the airlock in this one process on the in-memory fakes instead (no
//! emulators; data is lost on exit): handy for poking at the API.

use airlock::app::Settings;
use airlock::ports::SystemClock;
use airlock_local::emulators::repo_root;
use airlock_local::stack::{LocalStack, StackOptions};
use airlock_testkit::delivery::DeliveryOptions;
use airlock_testkit::demo::{self, PEOPLE};
use airlock_testkit::in_memory::{InMemoryAirlock, InMemoryOptions};
use airlock_testkit::{TokenIssuer, TokenSpec};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "airlock-local [--memory] [--port API_PORT] [--router-port PORT] [--state DIR] [--duplicate] [--reorder] [--notify WEBHOOK_URL]... [--api-calls-per-minute N] [--workspaces FILE]\n       airlock-local replay-dead-letters [--router-port PORT]   (re-drive the running stack's dead letters)";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if flag("--help") || flag("-h") {
        println!("{USAGE}");
        return;
    }
    let port = |name: &str| {
        value(name).map(|p| {
            p.parse::<u16>().unwrap_or_else(|_| {
                eprintln!("{name} takes a port number, not {p:?}\n{USAGE}");
                std::process::exit(2);
            })
        })
    };
    if args.first().map(String::as_str) == Some("replay-dead-letters") {
        let port = port("--router-port").unwrap_or(8090);
        std::process::exit(replay_dead_letters(port).await);
    }
    // Event Grid's delivery as infra/azure configures it: its retry schedule, 30 attempts,
    // 24 hours to live; a dead letter can be replayed (`replay-dead-letters`).
    let delivery = DeliveryOptions {
        duplicate: flag("--duplicate"),
        reorder: flag("--reorder"),
        notification_webhooks: args
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--notify")
            .filter_map(|(i, _)| args.get(i + 1).cloned())
            .collect(),
        ..DeliveryOptions::event_grid()
    };
    if flag("--memory") {
        run_in_memory(port("--port").or(Some(8080)), delivery).await;
        return;
    }
    // A port another process holds: said before anything starts, so nothing is left running.
    for (port, flag, what) in [
        (port("--port").unwrap_or(8080), "--port", "the API"),
        (
            port("--router-port").unwrap_or(8090),
            "--router-port",
            "the event router and sign-in",
        ),
    ] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            eprintln!(
                "port {port} ({what}) is not free ({e}): stop what holds it (`ss -ltnp 'sport = :{port}'` shows it), or start on another with {flag} N"
            );
            std::process::exit(2);
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let handler_bin = exe.with_file_name("handler");
    if !handler_bin.exists() {
        eprintln!(
            "{} is missing: build it first (infra/local/run does)",
            handler_bin.display()
        );
        std::process::exit(2);
    }
    let state_dir = value("--state")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/airlock-local"));
    let ca = state_dir.join("tls/ca.pem");
    if std::env::var_os("SSL_CERT_FILE").map(PathBuf::from) != Some(ca.clone()) {
        eprintln!(
            "SSL_CERT_FILE must be {} (TLS trust is read at start-up): use infra/local/run",
            ca.display()
        );
        std::process::exit(2);
    }
    // The workspaces, as the user keeps them (infra/local/workspaces.json, or --workspaces):
    // policy fields a record leaves out come from AIRLOCK_POLICY_DEFAULTS, as on Azure.
    let workspaces_file = value("--workspaces")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("infra/local/workspaces.json"));
    let records = match std::fs::read_to_string(&workspaces_file)
        .map_err(|e| e.to_string())
        .and_then(|text| demo::records(&text))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", workspaces_file.display());
            std::process::exit(2);
        }
    };
    let policy_defaults = std::env::var("AIRLOCK_POLICY_DEFAULTS").ok();
    if let Some(text) = &policy_defaults
        && let Err(e) = airlock::domain::workspace::parse_policy_defaults(text)
    {
        eprintln!("AIRLOCK_POLICY_DEFAULTS: {e}");
        std::process::exit(2);
    }
    let workspaces = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(text) = &policy_defaults
                && let Ok(defaults) = airlock::domain::workspace::parse_policy_defaults(text)
            {
                airlock::domain::workspace::apply_policy_defaults(&mut r, &defaults);
            }
            serde_json::from_value(r).expect("checked")
        })
        .collect();
    let mut handler_env: Vec<(String, String)> = value("--api-calls-per-minute")
        .map(|n| vec![("AIRLOCK_API_CALLS_PER_MINUTE".to_string(), n)])
        .unwrap_or_default();
    if let Some(text) = policy_defaults {
        handler_env.push(("AIRLOCK_POLICY_DEFAULTS".into(), text));
    }
    let options = StackOptions {
        state_dir: state_dir.clone(),
        handler_bin,
        tre_id: "local".into(),
        api_port: port("--port").or(Some(8080)),
        router_port: port("--router-port").or(Some(8090)),
        delivery,
        workspaces,
        workspace_records: records,
        reconcile_every: std::time::Duration::from_secs(60),
        // The handler's own settings that a developer may want to change here.
        handler_env,
        // Every start is a clean one: the Cosmos DB emulator keeps nothing across a restart,
        // so the files and queued work of its requests are cleared with it (below and when
        // the stack stops), never left behind without their requests.
        keep_data: false,
        scanner_max_bytes: airlock_local::clamav::CLAMD_MAX_BYTES,
        fault_proxies: false,
        revoked_roles: vec![],
        provisioned_short_ids: vec![],
        front_header_timeout: airlock_local::front::HEADER_TIMEOUT,
    };
    for stale in ["azurite", "dead-letters.jsonl"] {
        let path = state_dir.join(stale);
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    let stack = match LocalStack::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the local stack did not start: {e}");
            std::process::exit(1);
        }
    };
    let summary = stack.summary();
    let file = state_dir.join("stack.json");
    std::fs::write(&file, serde_json::to_string_pretty(&summary).unwrap())
        .expect("write stack.json");
    let t = &summary["tokens"]["ws-alpha"];
    println!("Airlock is running.");
    println!("  API:           {}", summary["apiUrl"].as_str().unwrap());
    println!(
        "  web app:       {} (your browser must trust the CA cert below: docs/web.md)",
        summary["webUrl"].as_str().unwrap()
    );
    println!("  CA cert:       {}", summary["caCert"].as_str().unwrap());
    println!("  details:       {}", file.display());
    println!(
        "  mint a token:  {}",
        summary["mintToken"].as_str().unwrap()
    );
    println!();
    println!("Tokens for ws-alpha (researcher, second researcher, owner, two airlock managers):");
    for (key, _, _) in PEOPLE {
        println!(
            "export {}={}",
            format!("TOKEN_{key}").to_uppercase(),
            t[key].as_str().unwrap()
        );
    }
    println!();
    println!("Ctrl-C (or SIGTERM) stops everything.");
    stop_signal().await;
    println!("stopping…");
    drop(stack);
}

/// Ctrl-C or SIGTERM: either stops the stack and every process it started.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Asks the running stack's router to re-drive its dead letters; the exit code.
async fn replay_dead_letters(router_port: u16) -> i32 {
    let url = format!("http://127.0.0.1:{router_port}/dead-letters/replay");
    let sent = reqwest::Client::new()
        .post(&url)
        .header("aeg-sas-key", airlock_local::stack::TOPIC_KEY)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            println!("replayed {} dead letter(s)", body["replayed"]);
            0
        }
        Ok(r) => {
            eprintln!("the router answered {}", r.status());
            1
        }
        Err(e) => {
            eprintln!("no local stack at {url}: {e}");
            1
        }
    }
}

/// The airlock on the in-memory fakes, in this process: the same server and the same
/// delivery engine as the tests use, on the demo workspaces, with development tokens.
async fn run_in_memory(port: Option<u16>, delivery: DeliveryOptions) {
    let airlock = match InMemoryAirlock::start(InMemoryOptions {
        tre_id: "local".into(),
        workspaces: demo::workspaces(),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
        port,
        jwks_url: None,
        leeway_secs: 60,
    })
    .await
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("the in-memory airlock did not start: {e}");
            std::process::exit(1);
        }
    };
    airlock.engine.set_options(DeliveryOptions {
        retry_base: Duration::ZERO,
        ..delivery
    });
    let airlock = Arc::new(airlock);
    let issuer = TokenIssuer::dev();
    println!("Airlock is running in memory (no emulators; data is lost on exit).");
    println!("  API:           {}/api", airlock.base);
    println!();
    println!("Tokens for ws-alpha (researcher, second researcher, owner, two airlock managers):");
    for (key, user, role) in PEOPLE {
        let token = issuer.mint(&TokenSpec::new(user, &[role], &demo::audience("ws-alpha")));
        println!("export {}={token}", format!("TOKEN_{key}").to_uppercase());
    }
    println!();
    println!("Ctrl-C stops it.");
    let delivering = airlock.clone();
    let loop_task = tokio::spawn(async move {
        let mut last_reconcile = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Err(e) = delivering.settle().await {
                tracing::warn!(error = %e, "local delivery");
            }
            if last_reconcile.elapsed() >= Duration::from_secs(60) {
                last_reconcile = std::time::Instant::now();
                if let Err(e) = delivering.engine.reconcile().await {
                    tracing::warn!(error = %e, "Reconcile timer");
                }
            }
        }
    });
    let _ = tokio::signal::ctrl_c().await;
    loop_task.abort();
    println!("stopping…");
}
