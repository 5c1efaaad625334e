//! `airlock-local`: runs the whole airlock on this machine (see `infra/local/run`).
//! Prints the API URL, the CA certificate and ready tokens, writes them to
//! `<state>/stack.json`, and stops every process it started on Ctrl-C.

use airlock::local::router::RouterOptions;
use airlock::local::stack::{LocalStack, StackOptions, demo_workspaces};
use std::path::PathBuf;

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
    if flag("--help") {
        println!(
            "airlock-local [--port API_PORT] [--router-port PORT] [--state DIR] [--duplicate] [--reorder] [--notify WEBHOOK_URL]..."
        );
        return;
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
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/airlock-local"));
    let ca = state_dir.join("tls/ca.pem");
    if std::env::var_os("SSL_CERT_FILE").map(PathBuf::from) != Some(ca.clone()) {
        eprintln!(
            "SSL_CERT_FILE must be {} (TLS trust is read at start-up): use infra/local/run",
            ca.display()
        );
        std::process::exit(2);
    }
    let port = |name: &str| {
        value(name).map(|p| {
            p.parse::<u16>()
                .unwrap_or_else(|_| panic!("{name} takes a port number"))
        })
    };
    let options = StackOptions {
        state_dir: state_dir.clone(),
        handler_bin,
        tre_id: "local".into(),
        api_port: port("--port").or(Some(8080)),
        router_port: port("--router-port").or(Some(8090)),
        router: RouterOptions {
            duplicate: flag("--duplicate"),
            reorder: flag("--reorder"),
            max_attempts: 8,
            notification_webhooks: args
                .iter()
                .enumerate()
                .filter(|(_, a)| *a == "--notify")
                .filter_map(|(i, _)| args.get(i + 1).cloned())
                .collect(),
        },
        workspaces: demo_workspaces(),
        reconcile_every: std::time::Duration::from_secs(60),
        handler_env: vec![],
    };
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
    println!("  CA cert:       {}", summary["caCert"].as_str().unwrap());
    println!("  details:       {}", file.display());
    println!(
        "  mint a token:  {}",
        summary["mintToken"].as_str().unwrap()
    );
    println!();
    println!("Tokens for ws-alpha (researcher, second researcher, owner, two airlock managers):");
    for key in ["researcher", "researcher2", "owner", "manager1", "manager2"] {
        println!(
            "export {}={}",
            format!("TOKEN_{key}").to_uppercase(),
            t[key].as_str().unwrap()
        );
    }
    println!();
    println!("Ctrl-C stops everything.");
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping…");
    drop(stack);
}
