//! The `handler` binary the Functions host starts. `main` only wires: configuration,
//! logging, adapters, and the server.

use airlock::adapters::memory::{
    MemoryBlobStore, MemoryPublisher, MemoryRequestStore, MemoryWorkspaceStore,
};
use airlock::adapters::{Clock, SystemClock};
use airlock::api::auth::{AuthConfig, TokenVerifier};
use airlock::app::Deps;
use airlock::config::{AzureConfig, Backend, Config};
use airlock::domain::{AccountNames, Workspace};
use airlock::local::{DEV_ISSUER, DEV_JWKS, LocalHost, TokenIssuer, TokenSpec};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_env("AIRLOCK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if config.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if let Err(e) = run(config).await {
        tracing::error!(error = %e, "the handler stopped");
        std::process::exit(1);
    }
}

async fn run(config: Config) -> std::io::Result<()> {
    match config.backend.clone() {
        Backend::Memory => run_in_memory(config).await,
        Backend::Azure(azure) => run_on_azure(config, *azure).await,
    }
}

/// Serves the development JWKS on loopback (memory mode only).
async fn serve_dev_jwks() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/discovery/v2.0/keys",
        axum::routing::get(|| async { ([("content-type", "application/json")], DEV_JWKS) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn demo_workspaces() -> Vec<Workspace> {
    ["alpha", "beta"]
        .iter()
        .map(|name| {
            serde_json::from_value(serde_json::json!({
                "id": format!("ws-{name}"),
                "displayName": format!("Demo workspace {name}"),
                "shortId": name,
                "tokenAudience": format!("api://airlock-ws-{name}"),
                "contacts": {"workspaceOwner": [format!("owner@{name}.local")], "airlockManager": [format!("manager1@{name}.local"), format!("manager2@{name}.local")]},
            }))
            .expect("demo workspace is valid")
        })
        .collect()
}

async fn run_in_memory(config: Config) -> std::io::Result<()> {
    let auth = match config.auth.clone() {
        Some(a) => a,
        None => AuthConfig {
            issuer: DEV_ISSUER.into(),
            jwks_url: serve_dev_jwks().await?,
            api_audience: Some("api://airlock".into()),
            leeway_secs: 60,
        },
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
    let publisher = Arc::new(MemoryPublisher::default());
    let workspaces = demo_workspaces();
    let names = AccountNames::new(config.tre_id.clone());
    let deps = Arc::new(Deps {
        blobs: blobs.clone(),
        requests: Arc::new(MemoryRequestStore::default()),
        workspaces: Arc::new(MemoryWorkspaceStore::new(workspaces.clone())),
        publisher: publisher.clone(),
        clock,
        tokens: Arc::new(TokenVerifier::new(auth, reqwest::Client::new())),
        names: names.clone(),
        settings: config.settings.clone(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tracing::info!(url = %base, "handler ready (in-memory adapters)");

    if config.auth.is_none() {
        let issuer = TokenIssuer::dev();
        let ws = &workspaces[0];
        println!("API: {base}/api   (in-memory adapters; data is lost on exit)");
        for (who, roles) in [
            ("researcher1", vec!["WorkspaceResearcher"]),
            ("owner1", vec!["WorkspaceOwner"]),
            ("manager1", vec!["AirlockManager"]),
        ] {
            let token = issuer.mint(&TokenSpec::new(who, &roles, &ws.token_audience));
            println!("export TOKEN_{}={token}", who.to_uppercase());
        }
    }

    // No Event Grid or Functions host in memory mode: deliver events in-process.
    let host = Arc::new(LocalHost::new(base.clone(), publisher, blobs, names));
    tokio::spawn(async move {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Err(e) = host.settle().await {
                tracing::warn!(error = %e, "local delivery");
            }
            ticks += 1;
            if ticks % 300 == 0 {
                let _ = host.reconcile().await;
            }
        }
    });

    airlock::host::serve(listener, deps, shutdown_signal()).await
}

/// The production wiring: Azure Blob, Cosmos DB, Event Grid (or their emulators).
async fn run_on_azure(config: Config, azure: AzureConfig) -> std::io::Result<()> {
    use airlock::adapters::azure::cosmos::{CosmosAuth, CosmosStores};
    use airlock::adapters::azure::eventgrid::{EventGridPublisher, TopicAuth, TopicEndpoint};
    use airlock::adapters::azure::{AzureBlobStore, credential_from_mode};
    use airlock::domain::Topic;
    let fail = |m: String| std::io::Error::other(m);
    let credential = credential_from_mode(&azure.credential).map_err(fail)?;
    let blobs = AzureBlobStore::new(&azure.blob_endpoint, credential.clone()).map_err(fail)?;
    let cosmos_auth = match &azure.cosmos_key {
        Some(key) => CosmosAuth::Key(key.clone()),
        None => CosmosAuth::Credential(credential.clone()),
    };
    let stores = Arc::new(
        CosmosStores::connect(
            &azure.cosmos_endpoint,
            cosmos_auth,
            &azure.cosmos_database,
            azure.cosmos_create,
        )
        .await
        .map_err(fail)?
        .with_policy_defaults(config.policy_defaults.clone()),
    );
    let topic = |url: &str, key: &Option<String>| TopicEndpoint {
        url: url.to_string(),
        auth: match key {
            Some(k) => TopicAuth::Key(k.clone()),
            None => TopicAuth::Credential(credential.clone()),
        },
    };
    let http = reqwest::Client::new();
    let publisher = EventGridPublisher::new(
        http.clone(),
        std::collections::HashMap::from([
            (
                Topic::StatusChanged,
                topic(&azure.status_changed_topic, &azure.status_changed_topic_key),
            ),
            (
                Topic::Notification,
                topic(&azure.notification_topic, &azure.notification_topic_key),
            ),
        ]),
    );
    let auth = config
        .auth
        .clone()
        .expect("validated: azure mode requires auth settings");
    let deps = Arc::new(Deps {
        blobs: Arc::new(blobs),
        requests: stores.clone(),
        workspaces: stores,
        publisher: Arc::new(publisher),
        clock: Arc::new(SystemClock),
        tokens: Arc::new(TokenVerifier::new(auth, http)),
        names: AccountNames::new(config.tre_id.clone()),
        settings: config.settings.clone(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "handler ready (Azure adapters)");
    airlock::host::serve(listener, deps, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing invocations in flight");
}
