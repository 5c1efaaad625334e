//! Start-up configuration from environment variables (the Function App's app settings),
//! validated once with messages that name the bad or missing setting.

use crate::app::Settings;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// In-memory adapters, an in-process event loop and a development token issuer.
    Memory,
    /// Azure Blob Storage, Cosmos DB and Event Grid (or their local emulators).
    Azure(Box<AzureConfig>),
}

/// Where the Azure services are and how to reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureConfig {
    /// Blob endpoint with an `{account}` placeholder.
    pub blob_endpoint: String,
    pub cosmos_endpoint: String,
    pub cosmos_database: String,
    /// Emulator only: Azure accounts run with key auth off.
    pub cosmos_key: Option<String>,
    /// Create the database and containers at start-up.
    pub cosmos_create: bool,
    /// `managed-identity`, `developer` or `local` (emulators).
    pub credential: String,
    pub status_changed_topic: String,
    pub status_changed_topic_key: Option<String>,
    pub notification_topic: String,
    pub notification_topic_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub backend: Backend,
    pub tre_id: String,
    /// `None` in memory mode: the development issuer is used.
    pub auth: Option<crate::api::auth::AuthConfig>,
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
            get(k).ok_or_else(|| ConfigError(format!("{k} is required when AIRLOCK_BACKEND=azure")))
        };
        let backend = match get("AIRLOCK_BACKEND").as_deref() {
            None | Some("memory") => Backend::Memory,
            Some("azure") => {
                let blob_endpoint = required("AIRLOCK_BLOB_ENDPOINT")?;
                if !blob_endpoint.contains("{account}") || !blob_endpoint.starts_with("https://") {
                    return Err(ConfigError(format!(
                        "AIRLOCK_BLOB_ENDPOINT must be an https URL with an {{account}} placeholder, not {blob_endpoint:?}"
                    )));
                }
                let credential =
                    get("AIRLOCK_CREDENTIAL").unwrap_or_else(|| "managed-identity".into());
                if !["managed-identity", "developer", "local"].contains(&credential.as_str()) {
                    return Err(ConfigError(format!(
                        "AIRLOCK_CREDENTIAL must be managed-identity, developer or local, not {credential:?}"
                    )));
                }
                let flag = |k: &str| -> Result<bool, ConfigError> {
                    match get(k).as_deref() {
                        None | Some("false") => Ok(false),
                        Some("true") => Ok(true),
                        Some(v) => {
                            Err(ConfigError(format!("{k} must be true or false, not {v:?}")))
                        }
                    }
                };
                Backend::Azure(Box::new(AzureConfig {
                    blob_endpoint,
                    cosmos_endpoint: required("AIRLOCK_COSMOS_ENDPOINT")?,
                    cosmos_database: get("AIRLOCK_COSMOS_DATABASE")
                        .unwrap_or_else(|| "airlock".into()),
                    cosmos_key: get("AIRLOCK_COSMOS_KEY"),
                    cosmos_create: flag("AIRLOCK_COSMOS_CREATE")?,
                    credential,
                    status_changed_topic: required("AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT")?,
                    status_changed_topic_key: get("AIRLOCK_STATUS_CHANGED_TOPIC_KEY"),
                    notification_topic: required("AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT")?,
                    notification_topic_key: get("AIRLOCK_NOTIFICATION_TOPIC_KEY"),
                }))
            }
            Some(other) => {
                return Err(ConfigError(format!(
                    "AIRLOCK_BACKEND must be memory or azure, not {other:?}"
                )));
            }
        };
        let tre_id = get("AIRLOCK_TRE_ID").unwrap_or_else(|| "dev".into());
        if !tre_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            || tre_id.len() > 11
        {
            return Err(ConfigError(format!(
                "AIRLOCK_TRE_ID must be 1-11 lower-case letters or digits (it is part of storage account names), not {tre_id:?}"
            )));
        }
        let auth = match (get("AIRLOCK_AUTH_ISSUER"), get("AIRLOCK_AUTH_JWKS_URL")) {
            (Some(issuer), Some(jwks_url)) => Some(crate::api::auth::AuthConfig {
                issuer,
                jwks_url,
                api_audience: get("AIRLOCK_API_AUDIENCE"),
                leeway_secs: 60,
            }),
            (None, None) if backend == Backend::Memory => None,
            (None, None) => {
                return Err(ConfigError(
                    "AIRLOCK_AUTH_ISSUER and AIRLOCK_AUTH_JWKS_URL are required when AIRLOCK_BACKEND=azure".into(),
                ));
            }
            (Some(_), None) => {
                return Err(ConfigError(
                    "AIRLOCK_AUTH_JWKS_URL is missing (AIRLOCK_AUTH_ISSUER is set)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError(
                    "AIRLOCK_AUTH_ISSUER is missing (AIRLOCK_AUTH_JWKS_URL is set)".into(),
                ));
            }
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
        let mut settings = Settings::default();
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
        Ok(Config {
            policy_defaults,
            port,
            backend,
            tre_id,
            auth,
            json_logs,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_map(&env(&[])).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.backend, Backend::Memory);
        assert!(c.auth.is_none());
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            (
                vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "http")],
                "FUNCTIONS_CUSTOMHANDLER_PORT",
            ),
            (vec![("AIRLOCK_BACKEND", "cloud")], "AIRLOCK_BACKEND"),
            (vec![("AIRLOCK_BACKEND", "azure")], "AIRLOCK_BLOB_ENDPOINT"),
            (
                vec![
                    ("AIRLOCK_BACKEND", "azure"),
                    ("AIRLOCK_BLOB_ENDPOINT", "http://x/{account}"),
                ],
                "AIRLOCK_BLOB_ENDPOINT",
            ),
            (
                vec![
                    ("AIRLOCK_BACKEND", "azure"),
                    (
                        "AIRLOCK_BLOB_ENDPOINT",
                        "https://{account}.blob.core.windows.net",
                    ),
                ],
                "AIRLOCK_COSMOS_ENDPOINT",
            ),
            (vec![("AIRLOCK_TRE_ID", "My-TRE")], "AIRLOCK_TRE_ID"),
            (vec![("AIRLOCK_AUTH_ISSUER", "x")], "AIRLOCK_AUTH_JWKS_URL"),
            (vec![("AIRLOCK_LOG_FORMAT", "xml")], "AIRLOCK_LOG_FORMAT"),
            (
                vec![("AIRLOCK_REDRIVE_AFTER_SECONDS", "-1")],
                "AIRLOCK_REDRIVE_AFTER_SECONDS",
            ),
            (
                vec![("AIRLOCK_GIVE_UP_AFTER_SECONDS", "soon")],
                "AIRLOCK_GIVE_UP_AFTER_SECONDS",
            ),
            (
                vec![("AIRLOCK_POLICY_DEFAULTS", r#"{"maxFiles": -1}"#)],
                "AIRLOCK_POLICY_DEFAULTS",
            ),
        ];
        for (pairs, needle) in cases {
            let err = Config::from_map(&env(&pairs)).unwrap_err();
            assert!(err.0.contains(needle), "{err} should name {needle}");
        }
    }

    #[test]
    fn azure_backend_needs_every_endpoint_and_auth() {
        let mut pairs = vec![
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
        ];
        let err = Config::from_map(&env(&pairs)).unwrap_err();
        assert!(err.0.contains("AIRLOCK_AUTH_ISSUER"), "{err}");
        pairs.push((
            "AIRLOCK_AUTH_ISSUER",
            "https://login.microsoftonline.com/t/v2.0",
        ));
        pairs.push((
            "AIRLOCK_AUTH_JWKS_URL",
            "https://login.microsoftonline.com/t/discovery/v2.0/keys",
        ));
        let c = Config::from_map(&env(&pairs)).unwrap();
        let Backend::Azure(azure) = c.backend else {
            panic!("azure")
        };
        assert_eq!(azure.credential, "managed-identity");
        assert_eq!(azure.cosmos_database, "airlock");
        assert!(!azure.cosmos_create);
        pairs.push(("AIRLOCK_CREDENTIAL", "password"));
        assert!(
            Config::from_map(&env(&pairs))
                .unwrap_err()
                .0
                .contains("AIRLOCK_CREDENTIAL")
        );
    }

    #[test]
    fn host_port_is_used() {
        let c = Config::from_map(&env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "7071")])).unwrap();
        assert_eq!(c.port, 7071);
    }
}
