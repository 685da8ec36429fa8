//! `acctmon-ingest`: Binance USDⓈ-M user data → normalized events on `EVENTS`, and mark prices → KV
//! `marks` (DESIGN §1, §2, §6).
//!
//! One task per configured account keeps its user-data stream ([`account`]): listenKey lifecycle,
//! reconnects with backoff, a REST backfill after every gap published before newer live events, and
//! deterministic message ids so that replicas and retries never double an event. One task follows the
//! mark prices of the symbols that matter ([`marks`]). The books are not kept here.

pub mod account;
pub mod config;
pub mod interest;
pub mod marks;
pub mod metrics;
pub mod rest;

use std::time::Duration;

use acctmon_bus::topology::names;
use acctmon_bus::{KvState, Topology};
use acctmon_service::health::Health;
use anyhow::Context as _;
use clap::Parser;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use config::Config;

use crate::account::AccountIngest;
use crate::config::{AccountConfig, Venue};
use crate::interest::Interest;
use crate::metrics::Metrics;

/// The readiness check that holds `/readyz` at 503 until every account's own check is registered.
const STARTUP_CHECK: &str = "startup";
/// The readiness check of the connection that publishes the events.
const EVENTS_CONNECTION_CHECK: &str = "nats_events";

/// Command-line flags; they override the file and the environment.
#[derive(Debug, Parser)]
#[command(
    name = "acctmon-ingest",
    version,
    about = "Binance user data and mark prices → JetStream"
)]
pub struct Args {
    /// The flags every service takes.
    #[command(flatten)]
    pub service: acctmon_service::process::ServiceArgs,
    /// Follow accounts of an acctmon-sim at this base URL (http://host:port), with its public test keys.
    #[arg(long)]
    pub sim: Option<String>,
    /// An account of the simulator (repeat; with --sim).
    #[arg(long = "sim-account")]
    pub sim_accounts: Vec<String>,
}

impl Args {
    /// The layered configuration: defaults → file → environment → these flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config: Config = self.service.load(())?;
        if let Some(base) = &self.sim {
            let ws = base
                .replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1);
            config.accounts = self
                .sim_accounts
                .iter()
                .map(|name| sim_account(name, base, &ws))
                .collect();
        }
        Ok(config)
    }
}

/// An account of an `acctmon-sim` at `rest`/`ws`, with the simulator's public test keys.
pub fn sim_account(name: &str, rest: &str, ws: &str) -> AccountConfig {
    use acctmon_service::config::Secret;
    AccountConfig {
        name: name.to_owned(),
        venue: Venue::Custom,
        rest_url: Some(rest.to_owned()),
        ws_url: Some(ws.to_owned()),
        api_key: Some(Secret::new(format!("sim-key-{name}"))),
        api_secret: Some(Secret::new(format!("sim-secret-{name}"))),
        ..AccountConfig::default()
    }
}

/// Binds the admin port and runs until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("bind admin address {}", config.admin_listen))?;
    run_with_listener(config, admin, shutdown).await
}

/// Creates or checks the topology, retrying while NATS is unreachable.
pub async fn ensure_topology(
    topology: &Topology,
    js: &async_nats::jetstream::Context,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut attempt = 0u32;
    loop {
        match topology.ensure(js).await {
            Ok(report) => {
                info!(created = ?report.created, updated = ?report.updated, "topology ready");
                return Ok(());
            }
            Err(acctmon_bus::topology::TopologyError::Invalid(why)) => anyhow::bail!(why),
            Err(e) => {
                attempt += 1;
                warn!(error = %e, attempt, "topology not ready yet");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => anyhow::bail!("shut down before the topology was ready"),
            () = tokio::time::sleep(account::backoff(attempt, Duration::from_millis(200), Duration::from_secs(5))) => {}
        }
    }
}

/// Runs ingest with its admin endpoints on `admin` until `shutdown`; a failing task stops everything.
pub async fn run_with_listener(
    config: Config,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if config.accounts.is_empty() {
        anyhow::bail!(
            "no account configured (accounts in the config file, or --sim with --sim-account)"
        );
    }
    let accounts = config
        .accounts
        .iter()
        .map(AccountConfig::resolve)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let marks_ws = config
        .marks
        .ws_url
        .clone()
        .unwrap_or_else(|| accounts[0].ws_url.clone());
    config.topology.validate()?;
    let registry = Registry::new();
    let health = Health::new();
    let metrics = Metrics::register(&registry)?;
    let mut tasks = JoinSet::new();
    let stop = shutdown.child_token();
    tasks.spawn(admin_task(admin, registry, health.clone(), stop.clone()));
    // Not ready before every account's check is registered: NATS alone is not the service.
    health.set(STARTUP_CHECK, false);

    let client = acctmon_bus::connect(&config.nats, "acctmon-ingest", &health).await?;
    // The events go on a connection of their own, replaced rather than reconnected when it drops, so
    // that the stream keeps each account's order through any drop (see `acctmon_bus::link`).
    let events = acctmon_bus::Link::connect(
        &config.nats,
        "acctmon-ingest-events",
        &health,
        EVENTS_CONNECTION_CHECK,
    )
    .await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_topology(&config.topology, &js, &stop).await?;
    let interest = Interest::new(&config.marks.symbols);
    for settings in accounts {
        let name = settings.name.clone();
        let ingest = AccountIngest::new(
            settings,
            config.stream.clone(),
            &client,
            &events,
            config.topology.partitions,
            metrics.clone(),
            health.clone(),
            interest.clone(),
        )?;
        let token = stop.clone();
        tasks.spawn(async move {
            ingest
                .run(token)
                .await
                .with_context(|| format!("account {name}"))
        });
    }
    health.set(STARTUP_CHECK, true);
    if config.marks.enabled {
        let store = js
            .get_key_value(names::MARKS)
            .await
            .context("bind KV marks")?;
        tasks.spawn(async move {
            marks::run(
                marks_ws,
                config.marks.clone(),
                interest,
                KvState::new(store),
                metrics,
                stop.clone(),
            )
            .await;
            Ok(())
        });
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        let failed = match done {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) if e.is_cancelled() => None,
            Err(e) => Some(anyhow::anyhow!("task panicked: {e}")),
        };
        if let Some(e) = failed {
            error!(error = format!("{e:#}"), "a task failed; stopping");
            if result.is_ok() {
                result = Err(e);
            }
            shutdown.cancel();
        }
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    tasks.shutdown().await;
    result
}

async fn admin_task(
    listener: TcpListener,
    registry: Registry,
    health: Health,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    acctmon_service::admin::serve(listener, registry, health, stop)
        .await
        .context("admin server")
}
