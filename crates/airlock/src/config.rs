//! Start-up configuration from environment variables (the Function App's app settings),
//! validated once with messages that name the bad or missing setting.

use crate::adapters::jwks::AuthConfig;
use crate::app::Settings;
use std::collections::HashMap;

/// Where the Azure services are and how to reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureConfig {
    /// Blob endpoint with an `{account}` placeholder.
    pub blob_endpoint: String,
    pub cosmos_endpoint: String,
    pub cosmos_database: String,
    /// `managed-identity` or `developer`: the one identity for storage, Cosmos DB and Event
    /// Grid (their keys are off on Azure, and the handler has no way to use one).
    pub credential: String,
    pub status_changed_topic: String,
    pub notification_topic: String,
    /// The `Work` queue: `https://{account}.queue.core.windows.net/airlock-work`.
    pub work_queue_url: String,
    /// Defender's on-demand scan, asked for before a missing verdict fails a request; `None`
    /// when not configured (a missing verdict then fails as soon as it is overdue).
    pub rescan: Option<crate::adapters::azure::defender::RescanConfig>,
    /// Application Insights (`APPLICATIONINSIGHTS_CONNECTION_STRING`, which the Function App
    /// is given for the host's own telemetry): where `Reconcile`'s gauges go as custom
    /// metrics. `None`: only the log has them.
    pub app_insights: Option<crate::adapters::azure::app_insights::ConnectionString>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub azure: AzureConfig,
    pub tre_id: String,
    pub auth: AuthConfig,
    pub json_logs: bool,
    pub settings: Settings,
    /// Operator defaults for workspace policy fields (`AIRLOCK_POLICY_DEFAULTS`).
    pub policy_defaults: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let port = match get("FUNCTIONS_CUSTOMHANDLER_PORT")
            .or_else(|| get("FUNCTIONS_HTTPWORKER_PORT"))
        {
            None => 8080,
            Some(p) => p.parse().map_err(|_| {
                ConfigError(format!(
                    "FUNCTIONS_CUSTOMHANDLER_PORT must be a port number, not {p:?}"
                ))
            })?,
        };
        let required = |k: &str| {
            get(k).ok_or_else(|| {
                ConfigError(format!(
                    "{k} is required (the handler has no default for it)"
                ))
            })
        };
        // Event Grid, the queue and Resource Manager take our identity's bearer token, which
        // is never sent in clear (the SDK's pipeline refuses to, so say it at start-up).
        let required_https = |k: &str| {
            let url = required(k)?;
            if url.starts_with("https://") {
                Ok(url)
            } else {
                Err(ConfigError(format!(
                    "{k} must be an https URL (our identity's token goes with every call), not {url:?}"
                )))
            }
        };
        // The one backend is Azure (or its emulators); there is no fallback. Requiring the
        // setting means a Function App whose settings were lost stops at once instead of
        // starting in some other mode.
        match get("AIRLOCK_BACKEND").as_deref() {
            Some("azure") => {}
            None => {
                return Err(ConfigError(
                    "AIRLOCK_BACKEND is required: set it to azure (Azure Blob Storage, Cosmos DB and Event Grid, or their emulators)".into(),
                ));
            }
            Some(other) => {
                return Err(ConfigError(format!(
                    "AIRLOCK_BACKEND must be azure, not {other:?} (the in-memory mode is `airlock-local --memory`, never the handler)"
                )));
            }
        }
        let blob_endpoint = required("AIRLOCK_BLOB_ENDPOINT")?;
        if !blob_endpoint.contains("{account}") || !blob_endpoint.starts_with("https://") {
            return Err(ConfigError(format!(
                "AIRLOCK_BLOB_ENDPOINT must be an https URL with an {{account}} placeholder, not {blob_endpoint:?}"
            )));
        }
        let credential = get("AIRLOCK_CREDENTIAL").unwrap_or_else(|| "managed-identity".into());
        if !["managed-identity", "developer"].contains(&credential.as_str()) {
            return Err(ConfigError(format!(
                "AIRLOCK_CREDENTIAL must be managed-identity or developer, not {credential:?}"
            )));
        }
        // Keys and creating the database were for the emulators; the local stack now gives
        // the handler an identity as Azure does. A leftover setting is named, not ignored.
        for retired in [
            "AIRLOCK_COSMOS_KEY",
            "AIRLOCK_COSMOS_CREATE",
            "AIRLOCK_STATUS_CHANGED_TOPIC_KEY",
            "AIRLOCK_NOTIFICATION_TOPIC_KEY",
        ] {
            if get(retired).is_some() {
                return Err(ConfigError(format!(
                    "{retired} is no longer read: Cosmos DB and Event Grid are reached with the Function App's identity (AIRLOCK_CREDENTIAL), and Terraform creates the database; remove it"
                )));
            }
        }
        let azure = AzureConfig {
            blob_endpoint,
            cosmos_endpoint: required("AIRLOCK_COSMOS_ENDPOINT")?,
            cosmos_database: get("AIRLOCK_COSMOS_DATABASE").unwrap_or_else(|| "airlock".into()),
            credential,
            status_changed_topic: required_https("AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT")?,
            notification_topic: required_https("AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT")?,
            work_queue_url: required_https("AIRLOCK_WORK_QUEUE_URL")?,
            rescan: rescan_config(&get)?,
            app_insights: match get("APPLICATIONINSIGHTS_CONNECTION_STRING") {
                None => None,
                Some(text) => Some(
                    crate::adapters::azure::app_insights::ConnectionString::parse(&text).map_err(
                        |e| ConfigError(format!("APPLICATIONINSIGHTS_CONNECTION_STRING: {e}")),
                    )?,
                ),
            },
        };
        let tre_id = get("AIRLOCK_TRE_ID").unwrap_or_else(|| "dev".into());
        if !tre_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            || tre_id.len() > crate::domain::stages::MAX_TRE_ID
        {
            return Err(ConfigError(format!(
                "AIRLOCK_TRE_ID must be 1-11 lower-case letters or digits (it is part of storage account names), not {tre_id:?}"
            )));
        }
        let auth = AuthConfig {
            issuer: required("AIRLOCK_AUTH_ISSUER")?,
            jwks_url: required("AIRLOCK_AUTH_JWKS_URL")?,
            leeway_secs: 60,
        };
        let json_logs = match get("AIRLOCK_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError(format!(
                    "AIRLOCK_LOG_FORMAT must be text or json, not {other:?}"
                )));
            }
        };
        let mut settings = Settings {
            api_audience: get("AIRLOCK_API_AUDIENCE"),
            ..Settings::default()
        };
        let seconds = |k: &str, target: &mut chrono::Duration| -> Result<(), ConfigError> {
            if let Some(v) = get(k) {
                let n: i64 = v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ConfigError(format!("{k} must be a whole number of seconds, not {v:?}"))
                })?;
                *target = chrono::Duration::seconds(n);
            }
            Ok(())
        };
        seconds("AIRLOCK_REDRIVE_AFTER_SECONDS", &mut settings.redrive_after)?;
        seconds("AIRLOCK_GIVE_UP_AFTER_SECONDS", &mut settings.give_up_after)?;
        seconds("AIRLOCK_OUTBOX_GRACE_SECONDS", &mut settings.outbox_grace)?;
        if let Some(v) = get("AIRLOCK_API_CALLS_PER_MINUTE") {
            settings.api_calls_per_minute = v.parse().map_err(|_| {
                ConfigError(format!(
                    "AIRLOCK_API_CALLS_PER_MINUTE must be a whole number (0 for no limit), not {v:?}"
                ))
            })?;
        }
        if let Some(v) = get("AIRLOCK_INLINE_HASH_MAX_BYTES") {
            settings.inline_hash_max_bytes = v.parse().map_err(|_| {
                ConfigError(format!(
                    "AIRLOCK_INLINE_HASH_MAX_BYTES must be a whole number of bytes (0 queues every hash), not {v:?}"
                ))
            })?;
        }
        settings.web = web_settings(&get, &azure.blob_endpoint, settings.api_audience.as_deref())?;
        if let Some(v) = get("AIRLOCK_MAX_CONNECTIONS") {
            settings.max_connections = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError(format!(
                    "AIRLOCK_MAX_CONNECTIONS must be a whole number above 0, not {v:?}"
                ))
            })?;
        }
        if let Some(v) = get("AIRLOCK_MAX_BODY_BYTES") {
            settings.max_body_bytes = v.parse().map_err(|_| {
                ConfigError(format!(
                    "AIRLOCK_MAX_BODY_BYTES must be a number, not {v:?}"
                ))
            })?;
        }
        let policy_defaults = match get("AIRLOCK_POLICY_DEFAULTS") {
            None => Default::default(),
            Some(text) => crate::domain::workspace::parse_policy_defaults(&text)
                .map_err(|e| ConfigError(format!("AIRLOCK_POLICY_DEFAULTS: {e}")))?,
        };
        settings.policy_defaults = policy_defaults.clone();
        Ok(Config {
            policy_defaults,
            port,
            azure,
            tre_id,
            auth,
            json_logs,
            settings,
        })
    }
}

/// `AIRLOCK_RESCAN_TRE_ACCOUNT_ID` and `AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID` (both or
/// neither), and `AIRLOCK_ARM_ENDPOINT` (Resource Manager, https: a bearer token is never
/// sent in clear, not even on loopback).
fn rescan_config(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::adapters::azure::defender::RescanConfig>, ConfigError> {
    let (tre, workspace) = match (
        get("AIRLOCK_RESCAN_TRE_ACCOUNT_ID"),
        get("AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID"),
    ) {
        (None, None) => return Ok(None),
        (Some(t), Some(w)) => (t, w),
        _ => {
            return Err(ConfigError(
                "AIRLOCK_RESCAN_TRE_ACCOUNT_ID and AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID go together (the resource ids of the TRE's and of a workspace's stage accounts)".into(),
            ));
        }
    };
    let resource_id =
        |t: &str| t.starts_with("/subscriptions/") && t.ends_with("/storageAccounts/{account}");
    if !resource_id(&tre) || !resource_id(&workspace) || !workspace.contains("{workspace}") {
        return Err(ConfigError(format!(
            "AIRLOCK_RESCAN_*_ACCOUNT_ID must be storage account resource ids ending in /storageAccounts/{{account}} (the workspace one with a {{workspace}} placeholder), not {tre:?} and {workspace:?}"
        )));
    }
    let arm_endpoint =
        get("AIRLOCK_ARM_ENDPOINT").unwrap_or_else(|| "https://management.azure.com".into());
    if !arm_endpoint.starts_with("https://") {
        return Err(ConfigError(format!(
            "AIRLOCK_ARM_ENDPOINT must be an https URL, not {arm_endpoint:?}"
        )));
    }
    Ok(Some(crate::adapters::azure::defender::RescanConfig {
        arm_endpoint,
        tre_account_id: tre,
        workspace_account_id: workspace,
    }))
}

/// The origin (`scheme://host[:port]`) of a URL, with `{account}` in the host as `*`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{}", host.replace("{account}", "*")))
}

/// `AIRLOCK_WEB_AUTHORITY`, `AIRLOCK_WEB_CLIENT_ID` (both or neither) and
/// `AIRLOCK_WEB_API_SCOPE` (default: the API audience's `/.default`).
fn web_settings(
    get: &dyn Fn(&str) -> Option<String>,
    blob_endpoint: &str,
    api_audience: Option<&str>,
) -> Result<crate::app::WebSettings, ConfigError> {
    let mut web = crate::app::WebSettings {
        sign_in: None,
        connect_origins: origin(blob_endpoint).into_iter().collect(),
    };
    match (get("AIRLOCK_WEB_AUTHORITY"), get("AIRLOCK_WEB_CLIENT_ID")) {
        (None, None) => {}
        (Some(authority), Some(client_id)) => {
            let authority = authority.trim_end_matches('/').to_string();
            let Some(authority_origin) = origin(&authority).filter(|o| o.starts_with("https://"))
            else {
                return Err(ConfigError(format!(
                    "AIRLOCK_WEB_AUTHORITY must be an https URL (the identity provider, https://login.microsoftonline.com/TENANT), not {authority:?}"
                )));
            };
            let scope = match (get("AIRLOCK_WEB_API_SCOPE"), api_audience) {
                (Some(scope), _) => scope,
                (None, Some(audience)) => format!("{audience}/.default"),
                (None, None) => {
                    return Err(ConfigError(
                        "the web app's sign-in needs AIRLOCK_WEB_API_SCOPE or AIRLOCK_API_AUDIENCE (the TRE-wide API it lists workspaces with)".into(),
                    ));
                }
            };
            web.connect_origins.push(authority_origin);
            web.sign_in = Some((authority, client_id, scope));
        }
        _ => {
            return Err(ConfigError(
                "AIRLOCK_WEB_AUTHORITY and AIRLOCK_WEB_CLIENT_ID go together (the web app's identity provider and its client id)".into(),
            ));
        }
    }
    Ok(web)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete set of settings for Azure.
    fn azure() -> Vec<(&'static str, &'static str)> {
        vec![
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
            (
                "AIRLOCK_AUTH_JWKS_URL",
                "https://login.microsoftonline.com/t/discovery/v2.0/keys",
            ),
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `azure()` with `key` replaced by `value` (or removed when `value` is `None`).
    fn with(key: &str, value: Option<&'static str>) -> HashMap<String, String> {
        let mut pairs = env(&azure());
        match value {
            Some(v) => pairs.insert(key.to_string(), v.to_string()),
            None => pairs.remove(key),
        };
        pairs
    }

    #[test]
    fn defaults() {
        let c = Config::from_map(&env(&azure())).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.tre_id, "dev");
        assert_eq!(c.azure.credential, "managed-identity");
        assert_eq!(c.azure.cosmos_database, "airlock");
        assert!(!c.json_logs);
    }

    #[test]
    fn nothing_set_is_refused_with_the_setting_named() {
        let err = Config::from_map(&HashMap::new()).unwrap_err();
        assert!(err.0.contains("AIRLOCK_BACKEND is required"), "{err}");
        for other in ["memory", "cloud", "Azure"] {
            let err = Config::from_map(&with("AIRLOCK_BACKEND", Some(other))).unwrap_err();
            assert!(err.0.contains("AIRLOCK_BACKEND must be azure"), "{err}");
        }
    }

    #[test]
    fn every_required_setting_is_named_when_missing() {
        for (key, _) in azure() {
            let err = Config::from_map(&with(key, None)).unwrap_err();
            assert!(err.0.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "http"),
            ("AIRLOCK_BLOB_ENDPOINT", "http://x/{account}"),
            (
                "AIRLOCK_BLOB_ENDPOINT",
                "https://acct.blob.core.windows.net",
            ),
            ("AIRLOCK_TRE_ID", "My-TRE"),
            ("AIRLOCK_LOG_FORMAT", "xml"),
            ("AIRLOCK_REDRIVE_AFTER_SECONDS", "-1"),
            ("AIRLOCK_GIVE_UP_AFTER_SECONDS", "soon"),
            ("AIRLOCK_POLICY_DEFAULTS", r#"{"maxFiles": -1}"#),
            ("AIRLOCK_CREDENTIAL", "password"),
            (
                "AIRLOCK_POLICY_DEFAULTS",
                r#"{"allowedIpRanges": ["2001:db8::/32"]}"#,
            ),
            ("AIRLOCK_API_CALLS_PER_MINUTE", "lots"),
            ("AIRLOCK_COSMOS_CREATE", "true"),
            ("AIRLOCK_COSMOS_KEY", "C2y6yDjf5"),
            ("AIRLOCK_STATUS_CHANGED_TOPIC_KEY", "k"),
            (
                "AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT",
                "http://127.0.0.1:7071/api/events",
            ),
            ("AIRLOCK_WORK_QUEUE_URL", "http://127.0.0.1:10001/a/q"),
        ];
        for (key, value) in cases {
            let err = Config::from_map(&with(key, Some(value))).unwrap_err();
            assert!(err.0.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn resource_manager_is_reached_over_tls_only() {
        let mut settings = env(&azure());
        for (k, v) in [
            (
                "AIRLOCK_RESCAN_TRE_ACCOUNT_ID",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}",
            ),
            (
                "AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID",
                "/subscriptions/s/resourceGroups/rg-{workspace}/providers/Microsoft.Storage/storageAccounts/{account}",
            ),
        ] {
            settings.insert(k.into(), v.into());
        }
        let c = Config::from_map(&settings).unwrap();
        assert_eq!(
            c.azure.rescan.unwrap().arm_endpoint,
            "https://management.azure.com"
        );
        // Not even on loopback: the local stack serves its stand-in over TLS too.
        settings.insert(
            "AIRLOCK_ARM_ENDPOINT".into(),
            "http://127.0.0.1:7072".into(),
        );
        let err = Config::from_map(&settings).unwrap_err();
        assert!(err.0.contains("AIRLOCK_ARM_ENDPOINT"), "{err}");
    }

    #[test]
    fn the_web_app_signs_in_only_when_told_how() {
        let c = Config::from_map(&env(&azure())).unwrap();
        assert_eq!(c.settings.web.sign_in, None);
        assert_eq!(
            c.settings.web.connect_origins,
            vec!["https://*.blob.core.windows.net"]
        );
        let mut settings = env(&azure());
        settings.insert(
            "AIRLOCK_WEB_AUTHORITY".into(),
            "https://login.microsoftonline.com/t/".into(),
        );
        // Half a registration is named, not ignored.
        let err = Config::from_map(&settings).unwrap_err();
        assert!(err.0.contains("AIRLOCK_WEB_CLIENT_ID"), "{err}");
        settings.insert("AIRLOCK_WEB_CLIENT_ID".into(), "c1".into());
        let err = Config::from_map(&settings).unwrap_err();
        assert!(err.0.contains("AIRLOCK_WEB_API_SCOPE"), "{err}");
        settings.insert("AIRLOCK_API_AUDIENCE".into(), "api://airlock".into());
        let c = Config::from_map(&settings).unwrap();
        assert_eq!(
            c.settings.web.sign_in,
            Some((
                "https://login.microsoftonline.com/t".into(),
                "c1".into(),
                "api://airlock/.default".into()
            ))
        );
        assert!(
            c.settings
                .web
                .connect_origins
                .contains(&"https://login.microsoftonline.com".to_string())
        );
        settings.insert(
            "AIRLOCK_WEB_AUTHORITY".into(),
            "http://login.example".into(),
        );
        let err = Config::from_map(&settings).unwrap_err();
        assert!(err.0.contains("AIRLOCK_WEB_AUTHORITY"), "{err}");
    }

    #[test]
    fn application_insights_is_optional_and_checked_when_given() {
        assert_eq!(
            Config::from_map(&with("AIRLOCK_TRE_ID", None))
                .unwrap()
                .azure
                .app_insights,
            None
        );
        let c = Config::from_map(&with(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            Some("InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://x.in.applicationinsights.azure.com/"),
        ))
        .unwrap();
        assert_eq!(
            c.azure.app_insights.unwrap().ingestion_endpoint,
            "https://x.in.applicationinsights.azure.com"
        );
        let err = Config::from_map(&with(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            Some("InstrumentationKey=abc"),
        ))
        .unwrap_err();
        assert!(
            err.0.contains("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            "{err}"
        );
    }

    #[test]
    fn there_is_no_local_credential() {
        // The local stack serves the managed identity endpoint instead: the production
        // credential path is the only one.
        let err = Config::from_map(&with("AIRLOCK_CREDENTIAL", Some("local"))).unwrap_err();
        assert!(err.0.contains("managed-identity or developer"), "{err}");
    }

    #[test]
    fn host_port_is_used() {
        let c = Config::from_map(&with("FUNCTIONS_CUSTOMHANDLER_PORT", Some("7071"))).unwrap();
        assert_eq!(c.port, 7071);
    }
}
