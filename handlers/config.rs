//! Start-up configuration from environment variables (the Function App's app settings),
//! validated once with messages that name the bad or missing setting.

use crate::app::Settings;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// In-memory adapters, an in-process event loop and a development token issuer.
    Memory,
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
        let backend = match get("AIRLOCK_BACKEND").as_deref() {
            None | Some("memory") => Backend::Memory,
            Some(other) => {
                return Err(ConfigError(format!(
                    "AIRLOCK_BACKEND must be \"memory\" (the Azure adapters are not built yet), not {other:?}"
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
            (None, None) => None,
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
        if let Some(v) = get("AIRLOCK_MAX_BODY_BYTES") {
            settings.max_body_bytes = v.parse().map_err(|_| {
                ConfigError(format!(
                    "AIRLOCK_MAX_BODY_BYTES must be a number, not {v:?}"
                ))
            })?;
        }
        Ok(Config {
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
            (vec![("AIRLOCK_TRE_ID", "My-TRE")], "AIRLOCK_TRE_ID"),
            (vec![("AIRLOCK_AUTH_ISSUER", "x")], "AIRLOCK_AUTH_JWKS_URL"),
            (vec![("AIRLOCK_LOG_FORMAT", "xml")], "AIRLOCK_LOG_FORMAT"),
        ];
        for (pairs, needle) in cases {
            let err = Config::from_map(&env(&pairs)).unwrap_err();
            assert!(err.0.contains(needle), "{err} should name {needle}");
        }
    }

    #[test]
    fn host_port_is_used() {
        let c = Config::from_map(&env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "7071")])).unwrap();
        assert_eq!(c.port, 7071);
    }
}
