//! Configuration: a TOML file in the XDG config directory, each key overridable from the
//! environment (`PERCH_*`). A bad file is reported with its path, line and problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::costs::{Budgets, Prices, Pricing};
use crate::domain::Secret;

mod keys;
pub use keys::{KeyEntry, KeysConfig};
pub mod theme;
pub use theme::{ThemeBase, ThemeSettings};

pub const DEFAULT_API_BASE: &str = "https://api.x.com";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://api.x.com/2/oauth2/token";
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
/// While the stream is live, polls are this many times further apart.
pub const DEFAULT_STREAM_RECONCILE_FACTOR: u32 = 4;

pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 60;

/// The file as written by a person. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    data_dir: Option<PathBuf>,
    client_id: Option<String>,
    /// A `Secret` already here: this struct derives `Debug`.
    client_secret: Option<Secret>,
    api_base: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    redirect_uri: Option<String>,
    poll_interval_secs: Option<u64>,
    max_in_flight: Option<usize>,
    backfill_cap: Option<usize>,
    backoff_base_secs: Option<u64>,
    backoff_cap_secs: Option<u64>,
    /// The handle of the account that owns the developer app (`"@handle"`): its mentions are
    /// owned reads ($0.001 instead of $0.005).
    app_owner: Option<String>,
    /// The app-only Bearer token (usage reconciliation, the Activity stream).
    app_bearer_token: Option<Secret>,
    /// The consumer API key and secret: perch mints the app Bearer with them when
    /// `app_bearer_token` is not set.
    api_key: Option<Secret>,
    api_secret: Option<Secret>,
    /// Seals account tokens at rest (32 bytes, base64; `perch team keygen` makes one).
    token_key: Option<Secret>,
    /// A team's shared PostgreSQL database (`postgres://…`; it may hold a password).
    database_url: Option<Secret>,
    /// While the Activity stream is live, accounts are polled this many times less often.
    stream_reconcile_factor: Option<u32>,
    /// What all accounts together may spend per UTC calendar month, in dollars.
    monthly_budget_usd: Option<f64>,
    #[serde(default)]
    prices: PricesFile,
    #[serde(default)]
    accounts: BTreeMap<String, AccountConfig>,
    /// Where the service also serves its HTTP API on TCP (`"127.0.0.1:8080"`); the Unix socket
    /// is always there.
    api_listen: Option<String>,
    /// Allow a non-loopback `api_listen` (then put TLS in front: a reverse proxy).
    api_allow_remote: Option<bool>,
    #[serde(default)]
    service: ServiceFile,
    /// `[notify]`: bell, title, desktop notifications, the hook, quiet hours (`notify/config.rs`).
    #[serde(default)]
    notify: crate::notify::NotifyFile,
    /// `[keys]`: the key preset and the user's bindings (see `app::keymap_config`).
    #[serde(default)]
    keys: keys::KeysFile,
    /// Clicks select rows and panes, the wheel scrolls (off by default: mouse capture stops the
    /// terminal's own text selection).
    mouse: Option<bool>,
    /// `keys` with its lines resolved (filled by `parse_file`).
    #[serde(skip)]
    keys_resolved: KeysConfig,
    /// `[theme]`: read with its spans by `theme::parse_theme_section` (into `theme_settings`).
    #[serde(rename = "theme")]
    _theme: Option<serde::de::IgnoredAny>,
    #[serde(skip)]
    theme_settings: ThemeSettings,
}

/// `[service]`: how the background service lives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    /// End the service when the dashboard that started it quits.
    stop_with_dashboard: Option<bool>,
}

/// `[prices]`: dollars per unit of each kind (COSTS.md's prices by default) and the date they
/// were taken from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesFile {
    date: Option<String>,
    post_read: Option<f64>,
    owned_read: Option<f64>,
    user_read: Option<f64>,
    dm_read: Option<f64>,
    reply: Option<f64>,
    reply_with_url: Option<f64>,
    reply_unsummoned: Option<f64>,
    dm_sent: Option<f64>,
    stream_event: Option<f64>,
}

impl PricesFile {
    fn to_prices(&self) -> Result<Prices, String> {
        use crate::costs::CostKind as K;
        let mut prices = Prices::default();
        if let Some(date) = &self.date {
            if chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").is_err() {
                return Err(format!(
                    "[prices] date = {date:?} is not a date like \"2026-08-13\""
                ));
            }
            prices.date = date.trim().to_string();
        }
        for (kind, value) in [
            (K::PostRead, self.post_read),
            (K::OwnedRead, self.owned_read),
            (K::UserRead, self.user_read),
            (K::DmRead, self.dm_read),
            (K::Reply, self.reply),
            (K::ReplyWithUrl, self.reply_with_url),
            (K::ReplyUnsummoned, self.reply_unsummoned),
            (K::DmSent, self.dm_sent),
            (K::StreamEvent, self.stream_event),
        ] {
            if let Some(usd) = value {
                prices
                    .set_usd(kind, usd)
                    .map_err(|e| format!("[prices] {e}"))?;
            }
        }
        Ok(prices)
    }
}

/// Per-account settings, keyed by handle (without `@`) in `[accounts.<handle>]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub poll_interval_secs: Option<u64>,
    /// What this account may spend per UTC calendar month, in dollars.
    pub monthly_budget_usd: Option<f64>,
    /// Saved replies, with `{sender}`, `{sender_name}` and `{account}` placeholders.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `notify = false` or `{ bell = .., desktop = .., hook = .., on_new_mentions = .. }`: this
    /// account's notifications, over `[notify]` (`notify/config.rs`).
    pub notify: Option<crate::notify::AccountNotify>,
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file that was read (or would be), for messages.
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub api_base: String,
    pub authorize_url: String,
    pub token_url: String,
    pub redirect_uri: String,
    pub poll_interval_secs: u64,
    pub max_in_flight: usize,
    pub backfill_cap: usize,
    /// First retry delay after a transient sync failure (doubles per failure, with jitter).
    pub backoff_base_secs: u64,
    /// The longest delay between two retries.
    pub backoff_cap_secs: u64,
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Prices and the app owner: what the cost meter charges.
    pub pricing: Pricing,
    /// The monthly budgets (global and per account).
    pub budgets: Budgets,
    /// The app-only Bearer token (`app_bearer_token`, `PERCH_APP_BEARER_TOKEN`).
    pub app_bearer_token: Option<Secret>,
    /// The consumer API key and secret (`api_key`/`api_secret`, `PERCH_API_KEY` /
    /// `PERCH_API_SECRET`): to mint the app Bearer with client_credentials when none is set.
    pub api_key: Option<Secret>,
    pub api_secret: Option<Secret>,
    /// Seals account tokens at rest (`token_key`, `PERCH_TOKEN_KEY`; `store/sealed.rs`).
    pub token_key: Option<crate::domain::TokenKey>,
    /// The team's PostgreSQL database (`database_url`, `PERCH_DATABASE_URL`; issue 16). A
    /// secret: the URL may carry the database password.
    pub database_url: Option<Secret>,
    /// While the Activity stream is live, accounts are polled this many times less often
    /// (`stream_reconcile_factor`, default 4).
    pub stream_reconcile_factor: u32,
    /// The TCP address the service's HTTP API also listens on (`api_listen`, `PERCH_API_LISTEN`).
    pub api_listen: Option<std::net::SocketAddr>,
    /// A non-loopback `api_listen` is allowed (`api_allow_remote`, `PERCH_API_ALLOW_REMOTE`).
    pub api_allow_remote: bool,
    /// End the service when the dashboard quits (`[service] stop_with_dashboard`,
    /// `PERCH_SERVICE_STOP_WITH_DASHBOARD`).
    pub stop_with_dashboard: bool,
    /// What perch does when new mentions arrive (`[notify]`, `[accounts.<handle>] notify`).
    pub notify: crate::notify::NotifySettings,
    /// `[keys]` as written (validated when the dashboard or `perch keys` builds the key map).
    pub keys: KeysConfig,
    /// The dashboard captures the mouse (`mouse = true`, `PERCH_MOUSE`).
    pub mouse: bool,
    /// `[theme]`: the base theme and the style overrides (`PERCH_THEME` sets the base).
    pub theme: ThemeSettings,
    /// Things about the configuration the user should hear once (on stderr and in the log),
    /// none of them an error: e.g. `PERCH_CONFIG` names a file that does not exist.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error(
        "cannot find a home directory to keep perch's files in; set PERCH_CONFIG and PERCH_DATA_DIR"
    )]
    NoHome,
}

/// Where perch keeps things by default (XDG on Linux).
pub struct Dirs {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
}

pub fn default_dirs() -> Result<Dirs, ConfigError> {
    let dirs = directories::ProjectDirs::from("", "", "perch").ok_or(ConfigError::NoHome)?;
    let state_dir = dirs
        .state_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dirs.data_local_dir().join("state"));
    Ok(Dirs {
        config_file: dirs.config_dir().join("config.toml"),
        data_dir: dirs.data_dir().to_path_buf(),
        state_dir,
    })
}

impl Config {
    /// Reads the config file (if any) and applies the environment on top.
    pub fn load() -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PERCH_"))
            .collect();
        Config::load_from(&env)
    }

    /// As [`Config::load`], with the environment given (tests).
    pub fn load_from(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let dirs = default_dirs()?;
        let config_path = env
            .get("PERCH_CONFIG")
            .map(PathBuf::from)
            .unwrap_or(dirs.config_file);
        let mut warnings = Vec::new();
        let file = match std::fs::read_to_string(&config_path) {
            Ok(text) => parse_file(&config_path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No file at the default place is normal; one named on purpose is a typo to hear
                // of (and perch carries on with the defaults).
                if env.contains_key("PERCH_CONFIG") {
                    warnings.push(format!(
                        "PERCH_CONFIG names {}, which does not exist; using the default settings",
                        config_path.display()
                    ));
                }
                ConfigFile::default()
            }
            Err(e) => {
                return Err(ConfigError::File {
                    path: config_path,
                    message: format!("cannot read it: {e}"),
                });
            }
        };
        let pick = |name: &str, file_value: Option<String>, default: &str| -> String {
            env.get(name)
                .cloned()
                .or(file_value)
                .unwrap_or_else(|| default.to_string())
        };
        let parse_num =
            |name: &str, file_value: Option<u64>, default: u64| -> Result<u64, ConfigError> {
                match env.get(name) {
                    Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError::Env {
                        name: name.to_string(),
                        message: format!("expected a whole number, got {v:?}"),
                    }),
                    None => Ok(file_value.unwrap_or(default)),
                }
            };
        let poll_interval_secs = parse_num(
            "PERCH_POLL_INTERVAL",
            file.poll_interval_secs,
            DEFAULT_POLL_INTERVAL_SECS,
        )?
        .max(1);
        let file_error = |message: String| ConfigError::File {
            path: config_path.clone(),
            message,
        };
        let prices = file.prices.to_prices().map_err(file_error)?;
        let app_owner = match env.get("PERCH_APP_OWNER").cloned().or(file.app_owner) {
            None => None,
            Some(h) if h.trim().trim_start_matches('@').is_empty() => None,
            Some(h) => {
                let handle = h.trim().trim_start_matches('@').to_lowercase();
                if !handle
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(file_error(format!(
                        "app_owner = {h:?} is not an X handle (write it as \"@handle\")"
                    )));
                }
                Some(handle)
            }
        };
        let budget_micros = |name: &str, usd: f64| -> Result<u64, ConfigError> {
            crate::costs::usd_to_micros(usd).ok_or_else(|| {
                file_error(format!(
                    "{name} = {usd}: a budget is a number of dollars, 0 or more"
                ))
            })
        };
        let monthly = match env.get("PERCH_MONTHLY_BUDGET_USD") {
            Some(v) => Some(v.trim().parse::<f64>().map_err(|_| ConfigError::Env {
                name: "PERCH_MONTHLY_BUDGET_USD".into(),
                message: format!("expected a number of dollars, got {v:?}"),
            })?),
            None => file.monthly_budget_usd,
        };
        let mut budgets = Budgets {
            monthly_micros: monthly
                .map(|usd| budget_micros("monthly_budget_usd", usd))
                .transpose()?,
            ..Budgets::default()
        };
        for (handle, account) in &file.accounts {
            if let Some(usd) = account.monthly_budget_usd {
                let micros =
                    budget_micros(&format!("[accounts.{handle}] monthly_budget_usd"), usd)?;
                budgets
                    .per_account_micros
                    .insert(handle.trim_start_matches('@').to_lowercase(), micros);
            }
        }
        let app_bearer_token = env
            .get("PERCH_APP_BEARER_TOKEN")
            .map(Secret::new)
            .or(file.app_bearer_token)
            .filter(|s| !s.expose().trim().is_empty());
        let secret = |name: &str, from_file: Option<Secret>| {
            env.get(name)
                .map(Secret::new)
                .or(from_file)
                .filter(|s| !s.expose().trim().is_empty())
        };
        let api_key = secret("PERCH_API_KEY", file.api_key);
        let api_secret = secret("PERCH_API_SECRET", file.api_secret);
        // Set but empty is a mistake (`$(cat missing-file)`), not "no key": tokens would be
        // written in the clear.
        if env
            .get("PERCH_TOKEN_KEY")
            .is_some_and(|v| v.trim().is_empty())
        {
            return Err(ConfigError::Env {
                name: "PERCH_TOKEN_KEY".into(),
                message: "is set but empty; set it to a key from `perch team keygen`, or unset it"
                    .into(),
            });
        }
        let token_key = match secret("PERCH_TOKEN_KEY", file.token_key.clone()) {
            None => None,
            Some(text) => Some(crate::domain::TokenKey::from_base64(text.expose()).map_err(
                |problem| {
                    let message = format!("token_key {problem}");
                    if env.contains_key("PERCH_TOKEN_KEY") {
                        ConfigError::Env {
                            name: "PERCH_TOKEN_KEY".into(),
                            message,
                        }
                    } else {
                        ConfigError::File {
                            path: config_path.clone(),
                            message,
                        }
                    }
                },
            )?),
        };
        let parse_bool = |name: &str, file_value: Option<bool>| -> Result<bool, ConfigError> {
            match env.get(name).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(file_value.unwrap_or(false)),
                Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
                Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off" | "") => Ok(false),
                Some(v) => Err(ConfigError::Env {
                    name: name.to_string(),
                    message: format!("expected true or false, got {v:?}"),
                }),
            }
        };
        let api_allow_remote = parse_bool("PERCH_API_ALLOW_REMOTE", file.api_allow_remote)?;
        let stop_with_dashboard = parse_bool(
            "PERCH_SERVICE_STOP_WITH_DASHBOARD",
            file.service.stop_with_dashboard,
        )?;
        let mouse = parse_bool("PERCH_MOUSE", file.mouse)?;
        let api_listen = match env.get("PERCH_API_LISTEN").cloned().or(file.api_listen) {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => {
                let addr = v.trim().parse::<std::net::SocketAddr>().map_err(|_| {
                    file_error(format!(
                        "api_listen = {v:?} is not an address like \"127.0.0.1:8080\" (set it in the file or as PERCH_API_LISTEN)"
                    ))
                })?;
                if !addr.ip().is_loopback() && !api_allow_remote {
                    return Err(file_error(format!(
                        "api_listen = {v:?} is not a loopback address: the API would be reachable from other machines without TLS. Set api_allow_remote = true (PERCH_API_ALLOW_REMOTE=true) only behind a TLS reverse proxy, or listen on 127.0.0.1"
                    )));
                }
                Some(addr)
            }
        };
        let notify = crate::notify::NotifySettings::from_file(
            &file.notify,
            file.accounts.iter().map(|(h, a)| (h, a.notify.as_ref())),
        )
        .map_err(file_error)?;
        let mut theme = file.theme_settings;
        if let Some(base) = env.get("PERCH_THEME") {
            theme.base = ThemeBase::parse(base).ok_or_else(|| ConfigError::Env {
                name: "PERCH_THEME".into(),
                message: format!("expected dark, light or auto, got {base:?}"),
            })?;
        }
        let config = Config {
            notify,
            theme,
            api_listen,
            api_allow_remote,
            stop_with_dashboard,
            keys: file.keys_resolved.clone(),
            mouse,
            pricing: Pricing { prices, app_owner },
            budgets,
            app_bearer_token,
            api_key,
            api_secret,
            token_key,
            database_url: secret("PERCH_DATABASE_URL", file.database_url.clone())
                .filter(|url| !url.expose().trim().is_empty()),
            stream_reconcile_factor: file
                .stream_reconcile_factor
                .unwrap_or(DEFAULT_STREAM_RECONCILE_FACTOR)
                .clamp(1, 60),
            warnings,
            data_dir: env
                .get("PERCH_DATA_DIR")
                .map(PathBuf::from)
                .or(file.data_dir)
                .unwrap_or(dirs.data_dir),
            state_dir: dirs.state_dir,
            client_id: env
                .get("PERCH_CLIENT_ID")
                .cloned()
                .or(file.client_id)
                .filter(|s| !s.is_empty()),
            client_secret: env
                .get("PERCH_CLIENT_SECRET")
                .map(Secret::new)
                .or(file.client_secret)
                .filter(|s| !s.expose().is_empty()),
            api_base: pick("PERCH_API_BASE", file.api_base, DEFAULT_API_BASE),
            authorize_url: pick(
                "PERCH_AUTHORIZE_URL",
                file.authorize_url,
                DEFAULT_AUTHORIZE_URL,
            ),
            token_url: pick("PERCH_TOKEN_URL", file.token_url, DEFAULT_TOKEN_URL),
            redirect_uri: pick(
                "PERCH_REDIRECT_URI",
                file.redirect_uri,
                DEFAULT_REDIRECT_URI,
            ),
            poll_interval_secs,
            max_in_flight: file.max_in_flight.unwrap_or(4).max(1),
            backfill_cap: file.backfill_cap.unwrap_or(800),
            backoff_base_secs: file.backoff_base_secs.unwrap_or(5).max(1),
            backoff_cap_secs: file.backoff_cap_secs.unwrap_or(300).max(1),
            accounts: file.accounts,
            config_path,
        };
        for (name, value) in [
            ("api_base", &config.api_base),
            ("authorize_url", &config.authorize_url),
            ("token_url", &config.token_url),
            ("redirect_uri", &config.redirect_uri),
        ] {
            if url::Url::parse(value).is_err() {
                return Err(ConfigError::File {
                    path: config.config_path.clone(),
                    message: format!(
                        "{name} = {value:?} is not a URL (set it in the file or as PERCH_{})",
                        name.to_uppercase()
                    ),
                });
            }
        }
        Ok(config)
    }

    /// The settings of one account (by handle, without `@`, case-insensitive).
    pub fn account(&self, username: &str) -> AccountConfig {
        self.accounts
            .iter()
            .find(|(k, _)| k.trim_start_matches('@').eq_ignore_ascii_case(username))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The poll interval of one account: its own override, else the default.
    pub fn poll_interval_for(&self, username: &str) -> u64 {
        self.account(username)
            .poll_interval_secs
            .unwrap_or(self.poll_interval_secs)
            .max(1)
    }
}

pub(crate) fn parse_file(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let error_at = |span: Option<std::ops::Range<usize>>, message: &str| {
        let line = span.map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(line) => format!("line {line}: {message}"),
            None => message.to_string(),
        };
        ConfigError::File {
            path: path.to_path_buf(),
            message,
        }
    };
    let mut file =
        toml::from_str::<ConfigFile>(text).map_err(|e| error_at(e.span(), e.message()))?;
    file.keys_resolved = file.keys.resolve(text);
    file.theme_settings =
        theme::parse_theme_section(text).map_err(|e| error_at(Some(e.span), &e.message))?;
    Ok(file)
}

/// Creates `dir` (and its parents) readable by the owner only (0700 on Unix): perch's data and
/// state directories hold tokens and logs.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` if it is missing, and makes it readable by the owner only (0600 on Unix)
/// either way. For files that others open later with the default umask (the log appender).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenKey;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "api_base = \"http://127.0.0.1:1\"\npoll_interval_secs = 30\n",
        )
        .unwrap();
        let cfg = Config::load_from(&env(&[
            ("PERCH_CONFIG", path.to_str().unwrap()),
            ("PERCH_API_BASE", "http://127.0.0.1:2"),
        ]))
        .unwrap();
        assert_eq!(cfg.api_base, "http://127.0.0.1:2");
        assert_eq!(cfg.poll_interval_secs, 30);
        assert_eq!(cfg.token_url, DEFAULT_TOKEN_URL);
    }

    #[test]
    fn token_key_is_read_from_the_file_or_the_environment_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let (file_key, env_key) = (TokenKey::generate(), TokenKey::generate());
        std::fs::write(&path, format!("token_key = \"{}\"\n", file_key.to_base64())).unwrap();
        let at = path.to_str().unwrap();
        let cfg = Config::load_from(&env(&[("PERCH_CONFIG", at)])).unwrap();
        assert_eq!(cfg.token_key, Some(file_key.clone()));
        assert!(
            !format!("{cfg:?}").contains(&file_key.to_base64()),
            "Debug redacts it"
        );
        let cfg = Config::load_from(&env(&[
            ("PERCH_CONFIG", at),
            ("PERCH_TOKEN_KEY", &env_key.to_base64()),
        ]))
        .unwrap();
        assert_eq!(cfg.token_key, Some(env_key));
        let err = Config::load_from(&env(&[
            ("PERCH_CONFIG", at),
            ("PERCH_TOKEN_KEY", "c2hvcnQ="),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("PERCH_TOKEN_KEY") && err.contains("perch team keygen"),
            "{err}"
        );
        std::fs::write(&path, "token_key = \"abc\"\n").unwrap();
        let err = Config::load_from(&env(&[("PERCH_CONFIG", at)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("token_key"),
            "{err}"
        );
    }

    #[test]
    fn backoff_settings_reach_the_sync_engine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "backoff_base_secs = 2\nbackoff_cap_secs = 60\n").unwrap();
        let cfg = Config::load_from(&env(&[("PERCH_CONFIG", path.to_str().unwrap())])).unwrap();
        let settings = crate::sync::SyncSettings::from_config(&cfg);
        assert_eq!(settings.backoff_base, std::time::Duration::from_secs(2));
        assert_eq!(settings.backoff_cap, std::time::Duration::from_secs(60));
    }

    #[test]
    fn bad_file_names_file_line_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "client_id = \"abc\"\npoll_interval_secs = \"soon\"\n",
        )
        .unwrap();
        let err = Config::load_from(&env(&[("PERCH_CONFIG", path.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let path2 = dir.path().join("typo.toml");
        std::fs::write(&path2, "clientid = \"abc\"\n").unwrap();
        let err = Config::load_from(&env(&[("PERCH_CONFIG", path2.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("clientid"), "{err}");
    }

    #[test]
    fn the_client_secret_from_the_file_never_shows_in_debug() {
        let file = parse_file(
            Path::new("config.toml"),
            "client_secret = \"s3cr3t-from-file\"\n",
        )
        .unwrap();
        assert!(!format!("{file:?}").contains("s3cr3t"), "{file:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "client_secret = \"s3cr3t-from-file\"\n").unwrap();
        let cfg = Config::load_from(&env(&[("PERCH_CONFIG", path.to_str().unwrap())])).unwrap();
        assert_eq!(
            cfg.client_secret.as_ref().map(Secret::expose),
            Some("s3cr3t-from-file")
        );
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
    }

    #[cfg(unix)]
    #[test]
    fn private_file_is_owner_only_whether_new_or_already_there() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("perch.log");
        let old = dir.path().join("old.log");
        std::fs::write(&old, "kept\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        for path in [&fresh, &old] {
            create_private_file(path).unwrap();
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept\n");
    }

    #[test]
    fn prices_budgets_and_the_app_owner_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "app_owner = \"@NimbusNotes\"\nmonthly_budget_usd = 25\n\
             app_bearer_token = \"AAAA-bearer-secret\"\n\
             [prices]\ndate = \"2026-12-01\"\nreply_with_url = 0.25\n\
             [accounts.mara_quill]\nmonthly_budget_usd = 2.5\n",
        )
        .unwrap();
        let cfg = Config::load_from(&env(&[("PERCH_CONFIG", path.to_str().unwrap())])).unwrap();
        use crate::costs::CostKind;
        assert_eq!(cfg.pricing.app_owner.as_deref(), Some("nimbusnotes"));
        assert_eq!(cfg.pricing.prices.date, "2026-12-01");
        assert_eq!(cfg.pricing.prices.of(CostKind::ReplyWithUrl), 250_000);
        // Every price not overridden keeps COSTS.md's.
        assert_eq!(cfg.pricing.prices.of(CostKind::PostRead), 5_000);
        assert_eq!(cfg.budgets.monthly_micros, Some(25_000_000));
        assert_eq!(cfg.budgets.for_account("@Mara_Quill"), Some(2_500_000));
        assert_eq!(
            cfg.app_bearer_token.as_ref().map(Secret::expose),
            Some("AAAA-bearer-secret")
        );
        assert!(!format!("{cfg:?}").contains("bearer-secret"), "{cfg:?}");
        let from_env = Config::load_from(&env(&[
            ("PERCH_CONFIG", path.to_str().unwrap()),
            ("PERCH_APP_BEARER_TOKEN", "env-bearer-secret"),
            ("PERCH_MONTHLY_BUDGET_USD", "0.05"),
        ]))
        .unwrap();
        assert_eq!(from_env.budgets.monthly_micros, Some(50_000));
        assert_eq!(
            from_env.app_bearer_token.as_ref().map(Secret::expose),
            Some("env-bearer-secret")
        );
    }

    #[test]
    fn bad_prices_and_budgets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("[prices]\npost_read = -1\n", "post_read"),
            ("[prices]\ndate = \"last week\"\n", "date"),
            ("[prices]\npost_reads = 0.1\n", "post_reads"),
            ("monthly_budget_usd = -5\n", "monthly_budget_usd"),
            ("app_owner = \"not a handle\"\n", "app_owner"),
        ] {
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, text).unwrap();
            let err = Config::load_from(&env(&[("PERCH_CONFIG", path.to_str().unwrap())]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.contains("bad.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn bad_environment_number_is_named() {
        let err = Config::load_from(&env(&[
            ("PERCH_CONFIG", "/nonexistent/perch.toml"),
            ("PERCH_POLL_INTERVAL", "fast"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("PERCH_POLL_INTERVAL"), "{err}");
    }

    /// Issue 9: a `PERCH_CONFIG` naming a missing file was silently ignored.
    #[test]
    fn a_missing_perch_config_file_is_a_warning_not_an_error() {
        let cfg = Config::load_from(&env(&[("PERCH_CONFIG", "/nonexistent/perch.toml")])).unwrap();
        assert_eq!(cfg.warnings.len(), 1);
        assert!(
            cfg.warnings[0].contains("/nonexistent/perch.toml"),
            "{:?}",
            cfg.warnings
        );
        assert!(cfg.warnings[0].contains("default settings"));
        assert_eq!(cfg.poll_interval_secs, DEFAULT_POLL_INTERVAL_SECS);
    }
}
