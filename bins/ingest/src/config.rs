//! Configuration of `acctmon-ingest`: defaults → TOML file → `ACCTMON__…` environment → flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use acctmon_bus::{NatsConfig, Topology};
use acctmon_service::config::{Secret, resolve_secret};
use acctmon_service::telemetry::LogFormat;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// Everything ingest reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// NATS connection.
    pub nats: NatsConfig,
    /// The JetStream topology (created or checked at start).
    pub topology: Topology,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    pub admin_listen: SocketAddr,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// `tracing` filter (overridden by `RUST_LOG`).
    pub log_filter: String,
    /// The accounts to follow.
    pub accounts: Vec<AccountConfig>,
    /// User-data stream handling.
    pub stream: StreamConfig,
    /// Mark prices.
    pub marks: MarksConfig,
}

impl acctmon_service::process::Logging for Config {
    fn log_format(&self) -> LogFormat {
        self.log_format
    }

    fn log_filter(&self) -> &str {
        &self.log_filter
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            topology: Topology::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9101)),
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            accounts: Vec::new(),
            stream: StreamConfig::default(),
            marks: MarksConfig::default(),
        }
    }
}

/// Which Binance environment an account lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Venue {
    /// `https://fapi.binance.com`, `wss://fstream.binance.com`.
    #[default]
    Production,
    /// Demo trading (the documented testnet): `https://demo-fapi.binance.com`,
    /// `wss://fstream.binancefuture.com`.
    Demo,
    /// The legacy testnet: `https://testnet.binancefuture.com`, `wss://fstream.binancefuture.com`.
    Testnet,
    /// Explicit `rest_url` and `ws_url` (the simulator, a proxy).
    Custom,
}

/// One account: an alias bound to an API key pair and an exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    /// Alias, `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// Environment.
    pub venue: Venue,
    /// REST base URL (overrides the venue's).
    pub rest_url: Option<String>,
    /// WebSocket base URL (overrides the venue's); user data is read from `<ws_url>/private/ws`.
    pub ws_url: Option<String>,
    /// API key (prefer `api_key_file` or `api_key_env`).
    pub api_key: Option<Secret>,
    /// File holding the API key.
    pub api_key_file: Option<PathBuf>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// API secret (prefer `api_secret_file` or `api_secret_env`).
    pub api_secret: Option<Secret>,
    /// File holding the API secret.
    pub api_secret_file: Option<PathBuf>,
    /// Environment variable holding the API secret.
    pub api_secret_env: Option<String>,
    /// `recvWindow` of signed calls, ms.
    pub recv_window: u64,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            name: String::new(),
            venue: Venue::Production,
            rest_url: None,
            ws_url: None,
            api_key: None,
            api_key_file: None,
            api_key_env: None,
            api_secret: None,
            api_secret_file: None,
            api_secret_env: None,
            recv_window: 5000,
        }
    }
}

/// An account with its endpoints and credentials resolved.
#[derive(Debug, Clone)]
pub struct ResolvedAccount {
    /// Alias.
    pub name: String,
    /// REST base.
    pub rest_url: String,
    /// WebSocket base.
    pub ws_url: String,
    /// API key.
    pub api_key: Secret,
    /// API secret.
    pub api_secret: Secret,
    /// `recvWindow`.
    pub recv_window: u64,
}

fn from_env(var: &Option<String>) -> anyhow::Result<Option<Secret>> {
    match var {
        Some(name) => std::env::var(name)
            .map(|v| Some(Secret::new(v)))
            .with_context(|| format!("environment variable {name} is not set")),
        None => Ok(None),
    }
}

impl AccountConfig {
    /// Resolves URLs and secrets; errors name what is missing, never a secret.
    pub fn resolve(&self) -> anyhow::Result<ResolvedAccount> {
        acctmon_domain::Account::new(&self.name)
            .map_err(|e| anyhow::anyhow!("account name `{}`: {e}", self.name))?;
        let (rest, ws) = match self.venue {
            Venue::Production => ("https://fapi.binance.com", "wss://fstream.binance.com"),
            Venue::Demo => (
                "https://demo-fapi.binance.com",
                "wss://fstream.binancefuture.com",
            ),
            Venue::Testnet => (
                "https://testnet.binancefuture.com",
                "wss://fstream.binancefuture.com",
            ),
            Venue::Custom => ("", ""),
        };
        let rest_url = self.rest_url.clone().unwrap_or_else(|| rest.to_owned());
        let ws_url = self.ws_url.clone().unwrap_or_else(|| ws.to_owned());
        if rest_url.is_empty() || ws_url.is_empty() {
            bail!(
                "account {}: venue `custom` needs rest_url and ws_url",
                self.name
            );
        }
        let key = match resolve_secret(self.api_key.clone(), self.api_key_file.as_deref())? {
            Some(k) => Some(k),
            None => from_env(&self.api_key_env)?,
        };
        let secret = match resolve_secret(self.api_secret.clone(), self.api_secret_file.as_deref())?
        {
            Some(s) => Some(s),
            None => from_env(&self.api_secret_env)?,
        };
        let (Some(api_key), Some(api_secret)) = (key, secret) else {
            bail!(
                "account {}: an API key and secret are needed (api_key[_file|_env], api_secret[_file|_env])",
                self.name
            );
        };
        Ok(ResolvedAccount {
            name: self.name.clone(),
            rest_url: rest_url.trim_end_matches('/').to_owned(),
            ws_url: ws_url.trim_end_matches('/').to_owned(),
            api_key,
            api_secret,
            recv_window: self.recv_window,
        })
    }
}

/// How the user-data stream is kept alive and recovered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// listenKey keepalive period (Binance: at most 60 min; DESIGN: at most 30 min).
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// Reconnect with a new key after this long (before Binance's 24 h cut).
    #[serde(with = "humantime_serde")]
    pub rotate_after: Duration,
    /// A socket silent this long (no event, no ping) is considered dead.
    #[serde(with = "humantime_serde")]
    pub silence_timeout: Duration,
    /// First reconnect delay.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// How far before the last published event a backfill starts (events published twice inside the
    /// duplicate window are dropped by JetStream).
    #[serde(with = "humantime_serde")]
    pub backfill_slack: Duration,
    /// Publish acks in flight per account.
    pub publish_window: usize,
    /// How often the income history is compared with what was published, to catch events a socket that
    /// stayed open never delivered (0: never).
    #[serde(with = "humantime_serde")]
    pub audit_every: Duration,
    /// How old an income row must be before the audit expects its live event; also how long after
    /// receiving everything up to a time ingest waits before declaring that time heard.
    #[serde(with = "humantime_serde")]
    pub audit_grace: Duration,
    /// How often, while an account has published something not yet declared heard, a `heard` notice
    /// says up to which exchange time everything was published (readers judge rows still waiting by it).
    #[serde(with = "humantime_serde")]
    pub heard_every: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            keepalive: Duration::from_secs(25 * 60),
            rotate_after: Duration::from_secs(23 * 3600),
            silence_timeout: Duration::from_secs(5 * 60),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(30),
            backfill_slack: Duration::from_secs(60),
            publish_window: 1024,
            audit_every: Duration::from_secs(60),
            audit_grace: Duration::from_secs(5),
            heard_every: Duration::from_secs(1),
        }
    }
}

/// Which mark prices are followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarksConfig {
    /// Follow mark prices at all.
    pub enabled: bool,
    /// WebSocket base of the market streams (default: the first account's `ws_url`).
    pub ws_url: Option<String>,
    /// Symbols always followed (commission assets' pairs such as `BNBUSDT` are added when seen).
    pub symbols: Vec<String>,
    /// A symbol with a fill this recent is followed even when flat.
    #[serde(with = "humantime_serde")]
    pub recent: Duration,
    /// How often the followed set is re-evaluated.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
}

impl Default for MarksConfig {
    fn default() -> Self {
        MarksConfig {
            enabled: true,
            ws_url: None,
            symbols: Vec::new(),
            recent: Duration::from_secs(3600),
            check_every: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venues_give_binance_urls_and_custom_needs_its_own() {
        let mut a = AccountConfig {
            name: "main".into(),
            api_key: Some(Secret::new("k".into())),
            api_secret: Some(Secret::new("s".into())),
            ..AccountConfig::default()
        };
        let r = a.resolve().expect("production");
        assert_eq!(r.rest_url, "https://fapi.binance.com");
        assert_eq!(r.ws_url, "wss://fstream.binance.com");
        a.venue = Venue::Custom;
        assert!(a.resolve().is_err());
        a.rest_url = Some("http://127.0.0.1:1/".into());
        a.ws_url = Some("ws://127.0.0.1:1".into());
        assert_eq!(a.resolve().expect("custom").rest_url, "http://127.0.0.1:1");
        a.name = "bad name".into();
        assert!(a.resolve().is_err());
    }

    #[test]
    fn missing_credentials_are_named_without_values() {
        let a = AccountConfig {
            name: "main".into(),
            api_key: Some(Secret::new("very-secret-key".into())),
            api_secret_env: Some("ACCTMON_TEST_SURELY_UNSET_SECRET".into()),
            ..AccountConfig::default()
        };
        let err = format!("{:#}", a.resolve().expect_err("no secret"));
        assert!(err.contains("ACCTMON_TEST_SURELY_UNSET_SECRET"), "{err}");
        assert!(!err.contains("very-secret-key"));
    }
}
