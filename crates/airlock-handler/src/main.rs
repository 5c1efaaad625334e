//! The `handler` binary the Functions host starts. `main` only wires: configuration,
//! logging, the Azure adapters, and the server. It has no other mode: without its settings
//! it stops with a message naming the one that is missing.

use airlock::adapters::azure::app_insights::AppInsightsMetrics;
use airlock::adapters::azure::cosmos::{CosmosAuth, CosmosStores};
use airlock::adapters::azure::defender::DefenderRescans;
use airlock::adapters::azure::eventgrid::{EventGridPublisher, TopicEndpoint};
use airlock::adapters::azure::queue::AzureWorkQueue;
use airlock::adapters::azure::{AzureBlobStore, credential_from_mode};
use airlock::adapters::jwks::JwksVerifier;
use airlock::app::Deps;
use airlock::app::limits::RateLimiter;
use airlock::config::Config;
use airlock::domain::{AccountNames, Topic};
use airlock::ports::{NoMetrics, NoRescans, SystemClock};
use std::collections::HashMap;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("handler: {e}");
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

/// Azure Blob Storage, Cosmos DB, Event Grid and Entra ID (or their emulators).
async fn run(config: Config) -> std::io::Result<()> {
    let azure = &config.azure;
    let fail = |m: String| std::io::Error::other(m);
    let credential = credential_from_mode(&azure.credential).map_err(fail)?;
    let blobs = AzureBlobStore::new(&azure.blob_endpoint, credential.clone()).map_err(fail)?;
    // The database and containers are Terraform's (creating them is not a data-plane action
    // the identity holds).
    let stores = Arc::new(
        CosmosStores::connect(
            &azure.cosmos_endpoint,
            CosmosAuth::Credential(credential.clone()),
            &azure.cosmos_database,
            false,
        )
        .await
        .map_err(fail)?
        .with_policy_defaults(config.policy_defaults.clone()),
    );
    let topic = |url: &str| TopicEndpoint {
        url: url.to_string(),
        credential: credential.clone(),
    };
    let http = reqwest::Client::new();
    let publisher = EventGridPublisher::new(HashMap::from([
        (Topic::StatusChanged, topic(&azure.status_changed_topic)),
        (Topic::Notification, topic(&azure.notification_topic)),
    ]));
    let deps = Arc::new(Deps {
        blobs: Arc::new(blobs),
        requests: stores.clone(),
        history: stores.clone(),
        releases: stores.clone(),
        workspaces: stores,
        publisher: Arc::new(publisher),
        work: Arc::new(AzureWorkQueue::new(
            azure.work_queue_url.clone(),
            credential.clone(),
        )),
        scans: match &azure.rescan {
            Some(rescan) => Arc::new(DefenderRescans::new(
                rescan.clone(),
                AccountNames::new(config.tre_id.clone()),
                credential.clone(),
            )),
            None => {
                tracing::warn!(
                    "AIRLOCK_RESCAN_*_ACCOUNT_ID not set: an overdue malware scan verdict fails its request without asking for a rescan"
                );
                Arc::new(NoRescans)
            }
        },
        metrics: match &azure.app_insights {
            Some(connection) => Arc::new(AppInsightsMetrics::new(
                connection.clone(),
                credential.clone(),
                // App Service names the instance; the host name stands in elsewhere.
                std::env::var("WEBSITE_INSTANCE_ID")
                    .or_else(|_| std::env::var("HOSTNAME"))
                    .unwrap_or_else(|_| "handler".into()),
            )),
            None => {
                tracing::warn!(
                    "APPLICATIONINSIGHTS_CONNECTION_STRING not set: Reconcile's gauges go to the log only, not to Application Insights custom metrics"
                );
                Arc::new(NoMetrics)
            }
        },
        clock: Arc::new(SystemClock),
        tokens: Arc::new(JwksVerifier::new(config.auth.clone(), http)),
        names: AccountNames::new(config.tre_id.clone()),
        limiter: RateLimiter::new(config.settings.api_calls_per_minute),
        inline_hashes: airlock::app::limits::InlineHashes::new(
            config.settings.inline_hash_max_bytes,
        ),
        settings: config.settings.clone(),
    });
    let listener = airlock::host::bind(config.port)?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "handler ready");
    airlock::host::serve(listener, deps, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // An error here means no signal handler could be installed: wait for SIGTERM instead.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
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
