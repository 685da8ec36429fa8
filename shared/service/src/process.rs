//! The start of every acctmon service process: the flags all of them take, the layered load of a
//! configuration with them, and `main`'s body (logging, signals, exit codes).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, load};
use crate::shutdown::signal_token;
use crate::telemetry::{LogFormat, init_tracing};

/// Flags every service takes; they override the file and the environment. Flatten them into the
/// binary's own `clap` parser (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    /// TOML configuration file.
    #[arg(long, env = "ACCTMON_CONFIG")]
    pub config: Option<PathBuf>,
    /// NATS server URL (repeat for several).
    #[arg(long = "nats-url")]
    pub nats_urls: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Log format: text or json.
    #[arg(long)]
    pub log_format: Option<String>,
}

/// The flags as a layer of the configuration: `nats.urls`, `admin_listen`, `log_format`, then the
/// binary's own flags at the top level.
#[derive(Serialize)]
struct Flags<'a, E> {
    #[serde(skip_serializing_if = "Option::is_none")]
    nats: Option<NatsFlags<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<&'a str>,
    #[serde(flatten)]
    own: E,
}

#[derive(Serialize)]
struct NatsFlags<'a> {
    urls: &'a [String],
}

impl ServiceArgs {
    /// The layered configuration: defaults → file → environment → these flags and `own`, the
    /// binary's flags serialized with the nesting of `T` (absent ones skipped; `()` for none).
    pub fn load<T>(&self, own: impl Serialize) -> Result<T, ConfigError>
    where
        T: Default + Serialize + DeserializeOwned,
    {
        let flags = Flags {
            nats: (!self.nats_urls.is_empty()).then_some(NatsFlags {
                urls: &self.nats_urls,
            }),
            admin_listen: self.admin_listen,
            log_format: self.log_format.as_deref(),
            own,
        };
        load(self.config.as_deref(), flags)
    }
}

/// How a service's configuration says to log.
pub trait Logging {
    /// `text` or `json`.
    fn log_format(&self) -> LogFormat;
    /// The `tracing` filter (`RUST_LOG` beats it).
    fn log_filter(&self) -> &str;
}

/// The body of a service's `main`: a configuration that failed to load is printed and exits 2;
/// otherwise logging starts, `run` gets a token cancelled by the first SIGINT or SIGTERM, and an
/// error it returns is logged and exits 1.
pub async fn serve<C, F>(
    name: &str,
    config: anyhow::Result<C>,
    run: impl FnOnce(C, CancellationToken) -> F,
) -> ExitCode
where
    C: Logging,
    F: Future<Output = anyhow::Result<()>>,
{
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format(), config.log_filter());
    match run(config, signal_token()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    }
}
