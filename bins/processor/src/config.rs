//! Configuration of `acctmon-processor`: defaults → TOML file → `ACCTMON__…` environment → flags.

use std::net::SocketAddr;
use std::time::Duration;

use acctmon_bus::{NatsConfig, Topology};
use acctmon_service::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

/// Everything the processor reads at start.
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
    /// This replica's name in the leases (default: host name and process id).
    pub instance: Option<String>,
    /// Most events applied in one batch.
    pub batch_max: usize,
    /// Publishes in flight before waiting for acks.
    pub publish_window: usize,
    /// Idle heartbeat asked of the server on each partition's pull requests. Kept short on purpose:
    /// nats-server 2.9 wakes a consumer whose filter matched nothing new only at its heartbeat, and it
    /// then reads every message stored since under the stream's lock, holding up every publisher to
    /// `EVENTS` meanwhile; the shorter the heartbeat, the shorter each of those pauses. A stream silent
    /// for [`SILENT_LIMIT`](crate::partition::SILENT_LIMIT) (no message, no heartbeat) is opened again.
    #[serde(with = "humantime_serde")]
    pub pull_heartbeat: Duration,
    /// How often the books of the accounts that changed are written to KV `accounts` (a checkpoint),
    /// and the events they reflect acknowledged. Position views and P&L go out with every batch; a
    /// restart applies again what came after the last checkpoint.
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// P&L publishing.
    pub pnl: PnlConfig,
    /// Trade ids remembered per (account, symbol) to apply a fill once however late it is repeated.
    pub seen_ids_per_symbol: usize,
    /// Start of the trading day, `HH:MM` UTC.
    pub day_boundary: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            topology: Topology::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9102)),
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            instance: None,
            batch_max: 2048,
            publish_window: 1024,
            pull_heartbeat: Duration::from_millis(100),
            checkpoint_every: Duration::from_millis(200),
            pnl: PnlConfig::default(),
            seen_ids_per_symbol: 1024,
            day_boundary: "00:00".into(),
        }
    }
}

/// How `trading.pnl.>` is published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PnlConfig {
    /// `msgpack` (named fields) or `json`.
    pub encoding: Encoding,
    /// Mark-price updates republish a key at most this often (changes by events publish at once).
    #[serde(with = "humantime_serde")]
    pub mark_interval: Duration,
}

impl Default for PnlConfig {
    fn default() -> Self {
        PnlConfig {
            encoding: Encoding::Msgpack,
            mark_interval: Duration::from_millis(250),
        }
    }
}

/// Encoding of the public P&L payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// MessagePack with named fields (`application/msgpack`).
    #[default]
    Msgpack,
    /// JSON (`application/json`).
    Json,
}

impl Encoding {
    /// The `Content-Type` header.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Msgpack => acctmon_bus::envelope::CONTENT_TYPE,
            Encoding::Json => "application/json",
        }
    }

    /// Encodes a payload.
    pub fn encode<T: Serialize>(self, value: &T) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Encoding::Msgpack => rmp_serde::to_vec_named(value)?,
            Encoding::Json => serde_json::to_vec(value)?,
        })
    }
}

impl acctmon_service::process::Logging for Config {
    fn log_format(&self) -> LogFormat {
        self.log_format
    }

    fn log_filter(&self) -> &str {
        &self.log_filter
    }
}
