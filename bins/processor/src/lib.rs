//! `acctmon-processor`: `EVENTS` → the books in JetStream KV, exactly once, partitioned over any number of
//! replicas (DESIGN §3–5).
//!
//! Partitions are owned through KV `leases` ([`lease`]); each owned partition has a worker
//! ([`partition`]) with its durable pull consumer. A worker batches what is pending, applies it in order
//! with `acctmon-books`, publishes P&L on `trading.pnl.>` and discrepancies on `trading.recon.>` and writes
//! the changed `positions` views with compare-and-set; at each checkpoint it writes the changed accounts'
//! books to `accounts` with compare-and-set and the `applied_seq` they reflect, then acknowledges what they
//! reflect. Books are loaded from KV when a partition first meets an account, so a restarted or new
//! replica resumes where the last writer stopped. Mark prices come from KV `marks`.

pub mod config;
pub mod lease;
pub mod metrics;
pub mod partition;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use acctmon_bus::subject::parse_mark_key;
use acctmon_bus::topology::names;
use acctmon_domain::MarkPrice;
use acctmon_service::health::Health;
use anyhow::Context as _;
use async_nats::jetstream::kv::Operation;
use clap::Parser;
use futures_util::StreamExt as _;
use prometheus::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use config::Config;

use crate::lease::Leases;
use crate::metrics::Metrics;
use crate::partition::{Marks, Partition, Scope, Shared};

/// The readiness check that is ok once the first lease round has registered the partitions owned.
const LEASES_CHECK: &str = "leases";
/// The readiness check of the connection that writes the books to KV `accounts`.
const BOOKS_CONNECTION_CHECK: &str = "nats_books";
/// The readiness check of the connection that publishes the P&L and the discrepancies.
const OUTPUTS_CONNECTION_CHECK: &str = "nats_outputs";

/// Command-line flags; they override the file and the environment.
#[derive(Debug, Parser)]
#[command(
    name = "acctmon-processor",
    version,
    about = "EVENTS → the books in JetStream KV"
)]
pub struct Args {
    /// The flags every service takes.
    #[command(flatten)]
    pub service: acctmon_service::process::ServiceArgs,
    /// This replica's name in the leases.
    #[arg(long)]
    pub instance: Option<String>,
}

#[derive(Serialize)]
struct Own<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
}

impl Args {
    /// The layered configuration: defaults → file → environment → these flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let own = Own {
            instance: self.instance.as_deref(),
        };
        Ok(self.service.load(own)?)
    }
}

/// Binds the admin port and runs until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("bind admin address {}", config.admin_listen))?;
    run_with_listener(config, admin, shutdown).await
}

/// Runs the processor with its admin endpoints on `admin` until `shutdown`: partitions are released
/// after their current batch, leases deleted, and the process may exit.
pub async fn run_with_listener(
    config: Config,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.topology.validate()?;
    acctmon_books::BooksConfig::parse_day_boundary(&config.day_boundary)
        .map_err(anyhow::Error::msg)?;
    let instance = lease::sanitize(
        &config
            .instance
            .clone()
            .unwrap_or_else(lease::default_instance),
    );
    let registry = Registry::new();
    let health = Health::new();
    let metrics = Metrics::register(&registry)?;
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    {
        let (registry, health, stop) = (registry.clone(), health.clone(), stop.clone());
        tasks.spawn(async move {
            acctmon_service::admin::serve(admin, registry, health, stop)
                .await
                .context("admin server")
        });
    }
    // Not ready before the first lease round has registered the partitions owned (NATS connected
    // alone is not the service).
    health.set(LEASES_CHECK, false);
    let client = acctmon_bus::connect(&config.nats, "acctmon-processor", &health).await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_topology(&config, &js, &stop).await?;
    let bucket = |js: &async_nats::jetstream::Context, name: &'static str| {
        let js = js.clone();
        async move {
            js.get_key_value(name)
                .await
                .with_context(|| format!("bind KV {name}"))
        }
    };
    // The checkpoints' books (some kilobytes per account, all changed accounts at once) go on a
    // connection of their own: the server reads and stores a connection's messages in turn, and the P&L
    // sent behind them would wait.
    let books_client = acctmon_bus::connect::connect_checked(
        &config.nats,
        "acctmon-processor-books",
        &health,
        BOOKS_CONNECTION_CHECK,
    )
    .await?;
    let books_js = async_nats::jetstream::new(books_client);
    let outputs = acctmon_bus::Link::connect(
        &config.nats,
        "acctmon-processor-outputs",
        &health,
        OUTPUTS_CONNECTION_CHECK,
    )
    .await?;
    let (accounts, positions, marks_kv, leases_kv) = (
        bucket(&books_js, names::ACCOUNTS).await?,
        bucket(&js, names::POSITIONS).await?,
        bucket(&js, names::MARKS).await?,
        bucket(&js, names::LEASES).await?,
    );
    let (marks_tx, marks_rx) = watch::channel(Arc::new(Marks::default()));
    tasks.spawn(follow_marks(marks_kv, marks_tx, stop.clone()));

    let (leases, mut owned) = Leases::new(
        leases_kv,
        instance.clone(),
        config.topology.partitions,
        config.topology.lease_ttl,
    );
    let leases_stop = CancellationToken::new();
    let leases_task = tokio::spawn(leases.run(leases_stop.clone()));
    info!(
        instance,
        partitions = config.topology.partitions,
        "processor started"
    );
    let shared = Shared {
        client: client.clone(),
        outputs,
        js: js.clone(),
        accounts,
        positions,
        config: Arc::new(config.clone()),
        metrics,
        health: health.clone(),
        marks: marks_rx,
    };

    // One worker per partition held, or one for them all while this replica holds every partition.
    let mut workers: BTreeMap<Scope, (CancellationToken, tokio::task::JoinHandle<()>)> =
        BTreeMap::new();
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = owned.changed() => {
                if changed.is_err() {
                    break;
                }
                let wanted = Scope::for_owned(&owned.borrow_and_update(), config.topology.partitions);
                // The workers that go stop first (their last checkpoint written and acknowledged), so
                // that the ones that come start from where they left off.
                for p in workers.keys().copied().collect::<Vec<_>>() {
                    if !wanted.contains(&p)
                        && let Some((token, handle)) = workers.remove(&p)
                    {
                        token.cancel();
                        let _ = handle.await;
                    }
                }
                for p in wanted {
                    if let std::collections::btree_map::Entry::Vacant(slot) = workers.entry(p) {
                        let worker = Partition::new(p, shared.clone())?;
                        let token = stop.child_token();
                        let handle = tokio::spawn(worker.run(config.topology.clone(), token.clone()));
                        slot.insert((token, handle));
                    }
                }
                health.set(LEASES_CHECK, true);
            }
            Some(done) = tasks.join_next() => {
                let failed = match done {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(e) => Some(anyhow::anyhow!("task panicked: {e}")),
                };
                if let Some(e) = failed {
                    error!(error = format!("{e:#}"), "a task failed; stopping");
                    result = Err(e);
                    break;
                }
            }
        }
    }
    // Drain: every worker finishes its batch (acked), then the leases go.
    stop.cancel();
    for (_, (token, handle)) in std::mem::take(&mut workers) {
        token.cancel();
        let _ = handle.await;
    }
    leases_stop.cancel();
    let _ = leases_task.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    tasks.shutdown().await;
    info!("processor stopped");
    result
}

/// Creates or checks the topology, retrying while NATS is unreachable.
async fn ensure_topology(
    config: &Config,
    js: &async_nats::jetstream::Context,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut wait = Duration::from_millis(200);
    loop {
        match config.topology.ensure(js).await {
            Ok(_) => return Ok(()),
            Err(acctmon_bus::topology::TopologyError::Invalid(why)) => anyhow::bail!(why),
            Err(e) => warn!(error = %e, "topology not ready yet"),
        }
        tokio::select! {
            () = stop.cancelled() => anyhow::bail!("shut down before the topology was ready"),
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Follows KV `marks` (current values, then updates) into `tx`; re-opens the watch when it ends.
async fn follow_marks(
    store: async_nats::jetstream::kv::Store,
    tx: watch::Sender<Arc<Marks>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut prices = BTreeMap::new();
    loop {
        let mut watch = match store.watch_with_history(">").await {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "cannot watch KV marks; retrying");
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let entry = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                e = watch.next() => e,
            };
            match entry {
                Some(Ok(e)) if e.operation == Operation::Put => {
                    let Ok(symbol) = parse_mark_key(&e.key) else {
                        continue;
                    };
                    match rmp_serde::from_slice::<MarkPrice>(&e.value) {
                        Ok(mark) => {
                            prices.insert(symbol, mark);
                            tx.send_replace(Arc::new(Marks {
                                prices: prices.clone(),
                            }));
                        }
                        Err(err) => {
                            warn!(key = %e.key, error = %err, "undecodable mark price skipped")
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    warn!(error = %e, "KV marks watch failed; re-opening");
                    break;
                }
                None => break,
            }
        }
    }
}
