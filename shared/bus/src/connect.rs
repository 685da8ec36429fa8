//! Connecting to NATS: servers, credentials, TLS, reconnecting forever, and the connection state as a
//! readiness check.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use acctmon_service::config::{Secret, resolve_secret};
use acctmon_service::health::Health;
use async_nats::{Client, ConnectOptions, Event, Statistics};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

/// The name of the readiness check this module maintains.
pub const NATS_CHECK: &str = "nats";

/// How to reach NATS. Exactly one way to authenticate may be given (or none).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs, tried in turn (`nats://host:4222`, `tls://host:4222`).
    pub urls: Vec<String>,
    /// User name (with `password` or `password_file`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Token.
    pub token: Option<Secret>,
    /// File holding the token.
    pub token_file: Option<PathBuf>,
    /// File holding an nkey seed.
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file (JWT and nkey seed).
    pub creds_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server with; implies TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub tls_cert_file: Option<PathBuf>,
    /// Client key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Require TLS even without a CA file.
    pub tls_required: bool,
    /// Time allowed for one connection attempt.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            urls: vec!["nats://127.0.0.1:4222".into()],
            user: None,
            password: None,
            password_file: None,
            token: None,
            token_file: None,
            nkey_file: None,
            creds_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection that could not be set up.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The settings are contradictory or incomplete.
    #[error("nats settings: {0}")]
    Config(String),
    /// A credential file could not be read (its path is named, never its content).
    #[error("nats credentials: {0}")]
    Credentials(String),
    /// The client refused the options.
    #[error("nats connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
}

/// The delay before reconnect attempt `n`: exponential from 100 ms, capped at 5 s.
pub fn reconnect_delay(attempts: usize) -> Duration {
    let exp = u32::try_from(attempts.min(6)).unwrap_or(6);
    Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(5))
}

async fn options(config: &NatsConfig) -> Result<ConnectOptions, ConnectError> {
    let password = resolve_secret(config.password.clone(), config.password_file.as_deref())
        .map_err(|e| ConnectError::Credentials(e.to_string()))?;
    let token = resolve_secret(config.token.clone(), config.token_file.as_deref())
        .map_err(|e| ConnectError::Credentials(e.to_string()))?;
    let methods = [
        config.user.is_some() || password.is_some(),
        token.is_some(),
        config.nkey_file.is_some(),
        config.creds_file.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(ConnectError::Config(
            "give one of user/password, token, nkey_file or creds_file".into(),
        ));
    }
    let mut opts = ConnectOptions::new();
    if let (Some(user), Some(pass)) = (&config.user, &password) {
        opts = opts.user_and_password(user.clone(), pass.expose().to_owned());
    } else if config.user.is_some() || password.is_some() {
        return Err(ConnectError::Config("user and password go together".into()));
    }
    if let Some(token) = token {
        opts = opts.token(token.expose().to_owned());
    }
    if let Some(path) = &config.nkey_file {
        let seed = Secret::from_file(path).map_err(|e| {
            ConnectError::Credentials(format!("cannot read {}: {}", path.display(), e.kind()))
        })?;
        opts = opts.nkey(seed.expose().to_owned());
    }
    if let Some(path) = &config.creds_file {
        opts = opts.credentials_file(path).await.map_err(|e| {
            ConnectError::Credentials(format!("cannot read {}: {}", path.display(), e.kind()))
        })?;
    }
    if let Some(ca) = &config.tls_ca_file {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        (None, None) => {}
        _ => {
            return Err(ConnectError::Config(
                "tls_cert_file and tls_key_file go together".into(),
            ));
        }
    }
    if config.tls_required {
        opts = opts.require_tls(true);
    }
    Ok(opts
        .connection_timeout(config.connect_timeout)
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay)
        .retry_on_initial_connect())
}

/// Connects as `name`, reconnecting forever with backoff. Returns at once even if no server answers yet
/// (the client keeps trying); `health`'s [`NATS_CHECK`] is true exactly while connected.
pub async fn connect(
    config: &NatsConfig,
    name: &str,
    health: &Health,
) -> Result<Client, ConnectError> {
    connect_checked(config, name, health, NATS_CHECK).await
}

/// [`connect`] for a process's second connection, whose state `health` tells under `check` (a process
/// that is ready only while both are connected).
pub async fn connect_checked(
    config: &NatsConfig,
    name: &str,
    health: &Health,
    check: &'static str,
) -> Result<Client, ConnectError> {
    open(config, name, health, check, None).await
}

/// How long a connection that must not reconnect waits before its next attempt: for ever, in effect
/// (see [`crate::link`]).
const DORMANT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A connection that never reconnects once it has been connected: after it drops, its client keeps
/// whatever it had not written yet and never sends it. `epoch` is its number in its link and `current`
/// the link's newest number; its events are told to `health` only while the two are equal, so that a
/// replaced connection's last events cannot mark its successor down.
#[derive(Clone)]
pub(crate) struct Once {
    pub(crate) epoch: u64,
    pub(crate) current: Arc<AtomicU64>,
}

/// Opens a connection as `name`, told to `health` under `check`; reconnecting for ever, or, with `once`,
/// never after the first connect.
pub(crate) async fn open(
    config: &NatsConfig,
    name: &str,
    health: &Health,
    check: &'static str,
    once: Option<Once>,
) -> Result<Client, ConnectError> {
    if config.urls.is_empty() {
        return Err(ConnectError::Config("no server url".into()));
    }
    health.set(check, false);
    let events = health.clone();
    let gate = once.clone();
    let mut opts = options(config).await?.name(name);
    // Filled once the client exists; until it has connected, attempts follow the usual backoff.
    let stats: Arc<OnceLock<Arc<Statistics>>> = Arc::new(OnceLock::new());
    if once.is_some() {
        let stats = stats.clone();
        opts = opts.reconnect_delay_callback(move |attempts| {
            if stats
                .get()
                .is_some_and(|s| s.connects.load(Ordering::Relaxed) > 0)
            {
                DORMANT
            } else {
                reconnect_delay(attempts)
            }
        });
    }
    let opts = opts.event_callback(move |event| {
        let health = events.clone();
        let replaced = gate.is_some();
        let live = gate
            .as_ref()
            .is_none_or(|g| g.current.load(Ordering::Acquire) == g.epoch);
        async move {
            match event {
                Event::Connected if live => {
                    info!(check, "connected to nats");
                    health.set(check, true);
                }
                Event::Disconnected if live => {
                    if replaced {
                        warn!(
                            check,
                            "disconnected from nats; a new connection will replace this one"
                        );
                    } else {
                        warn!(check, "disconnected from nats; reconnecting");
                    }
                    health.set(check, false);
                }
                Event::Connected | Event::Disconnected => {}
                Event::SlowConsumer(sid) => warn!(sid, "nats slow consumer"),
                other => info!(event = %other, "nats"),
            }
        }
    });
    let urls: Vec<async_nats::ServerAddr> = config
        .urls
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| ConnectError::Config(format!("bad url `{u}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let client = opts.connect(urls).await?;
    let _ = stats.set(client.statistics());
    if client.connection_state() == async_nats::connection::State::Connected {
        health.set(check, true);
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(2), Duration::from_millis(400));
        assert_eq!(reconnect_delay(100), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn contradictory_credentials_are_refused_without_echoing_them() {
        let config = NatsConfig {
            token: Some(Secret::new("tok-very-secret".into())),
            user: Some("u".into()),
            password: Some(Secret::new("pw-very-secret".into())),
            ..NatsConfig::default()
        };
        let Err(err) = options(&config).await else {
            panic!("contradictory credentials accepted")
        };
        let text = format!("{err} {err:?}");
        assert!(text.contains("one of"));
        assert!(!text.contains("very-secret"));
        let half = NatsConfig {
            user: Some("u".into()),
            ..NatsConfig::default()
        };
        assert!(options(&half).await.is_err());
        let missing = NatsConfig {
            nkey_file: Some("/nonexistent/seed.nk".into()),
            ..NatsConfig::default()
        };
        let Err(err) = options(&missing).await else {
            panic!("a missing nkey file accepted")
        };
        assert!(err.to_string().contains("/nonexistent/seed.nk"));
    }
}
