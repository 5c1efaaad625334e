//! Where the airlock is and who is calling: the API URL, the workspace and the CA to trust come
//! from flags, then the environment (`AIRLOCK_API`, `AIRLOCK_WORKSPACE`, `AIRLOCK_CA_CERT`),
//! then the config file; tokens from `AIRLOCK_TOKEN`, else the token cache that `airlock
//! login` fills. Both files live in the config directory (`AIRLOCK_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/airlock`, else `~/.config/airlock`); the token cache is readable by its
//! owner only.

use crate::error::{CliError, CliResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `config.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's: the local stack's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Entra ID device-code login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraConfig>,
    /// Set by `airlock login --local`: who to mint tokens for when one expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalLogin>,
}

/// The app registration the CLI signs in with. Each workspace has its own API (audience), so
/// each workspace has its own scope; `scope` is the one for workspaces not listed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraConfig {
    pub tenant: String,
    pub client_id: String,
    /// `https://login.microsoftonline.com` unless a sovereign cloud's.
    #[serde(default = "default_authority")]
    pub authority: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub scopes: BTreeMap<String, String>,
}

pub fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}

impl EntraConfig {
    pub fn scope_for(&self, workspace: &str) -> Option<&str> {
        self.scopes
            .get(workspace)
            .or(self.scope.as_ref())
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalLogin {
    pub router_url: String,
    pub user: String,
    pub roles: Vec<String>,
}

/// One cached token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    pub access_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl CachedToken {
    /// Still good for at least a minute (a long command refreshes between calls).
    pub fn fresh(&self) -> bool {
        self.expires_at > chrono::Utc::now() + chrono::Duration::seconds(60)
    }
}

/// `tokens.json`: one token per workspace (each workspace is its own audience).
pub type TokenCache = BTreeMap<String, CachedToken>;

/// The config directory.
pub fn config_dir() -> CliResult<PathBuf> {
    if let Some(dir) = std::env::var_os("AIRLOCK_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("airlock"));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".config").join("airlock"))
        .ok_or_else(|| {
            CliError::Usage(
                "no HOME: set AIRLOCK_CONFIG_DIR to a directory for the CLI's settings".into(),
            )
        })
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> CliResult<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "{} is not valid: {e} (fix it or delete it)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(CliError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes a file readable by its owner only (created so, never widened later), replacing it
/// atomically so a crash never leaves half a file.
pub fn write_private(path: &Path, value: &impl Serialize) -> CliResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(value).expect("settings serialise");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| CliError::io(format!("writing {}", path.display()), e))
}

/// Everything a command needs to find and call the airlock.
#[derive(Clone, Debug)]
pub struct Settings {
    pub dir: PathBuf,
    pub file: ConfigFile,
    pub api: Option<String>,
    pub workspace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// `AIRLOCK_TOKEN`: used as is for every call.
    pub token: Option<String>,
}

/// What the flags said (the environment is read by the argument parser).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub api: Option<String>,
    pub workspace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub token: Option<String>,
}

impl Settings {
    pub fn load(overrides: Overrides) -> CliResult<Settings> {
        let dir = config_dir()?;
        let file: ConfigFile = read_json(&dir.join("config.json"))?;
        Ok(Settings {
            api: overrides
                .api
                .or_else(|| file.api.clone())
                .map(|a| a.trim_end_matches('/').to_string()),
            workspace: overrides.workspace.or_else(|| file.workspace.clone()),
            ca_cert: overrides.ca_cert.or_else(|| file.ca_cert.clone()),
            token: overrides.token.filter(|t| !t.is_empty()),
            dir,
            file,
        })
    }

    pub fn api(&self) -> CliResult<&str> {
        self.api.as_deref().ok_or_else(|| {
            CliError::Usage(
                "which airlock? pass --api URL, set AIRLOCK_API, or run `airlock login`".into(),
            )
        })
    }

    pub fn workspace(&self) -> CliResult<&str> {
        self.workspace.as_deref().ok_or_else(|| {
            CliError::Usage(
                "which workspace? pass --workspace ID, set AIRLOCK_WORKSPACE, or run `airlock login`"
                    .into(),
            )
        })
    }

    pub fn save(&self) -> CliResult<()> {
        write_private(&self.dir.join("config.json"), &self.file)
    }

    pub fn tokens(&self) -> CliResult<TokenCache> {
        read_json(&self.dir.join("tokens.json"))
    }

    pub fn save_tokens(&self, tokens: &TokenCache) -> CliResult<()> {
        write_private(&self.dir.join("tokens.json"), tokens)
    }

    /// Where interrupted transfers keep their progress.
    pub fn transfers_dir(&self) -> PathBuf {
        self.dir.join("transfers")
    }
}
