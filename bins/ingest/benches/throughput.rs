//! Ingest throughput with the simulator's firehose, beside the raw JetStream publish rate measured on the
//! same nats-server in the same run.
//!
//! `cargo bench -p acctmon-ingest --bench throughput [-- ROUNDS [ACCOUNTS]]` (defaults: 4 rounds, 8
//! accounts) starts a nats-server (JetStream in a temporary directory), the simulator on a thread of its
//! own and ingest in this process, then prints:
//!
//! - `ingest/burst`: events stored on `EVENTS` per second while ingest drains bursts of the simulator's
//!   market orders (`POST /_sim/burst`, the most each account's stream buffer holds). The exchange
//!   generates each burst before delivering it, so the figure is ingest's own rate (WebSocket frames →
//!   decoded events → acknowledged JetStream publishes), not the simulator's, which a real exchange would
//!   not run on ingest's cores;
//! - `ingest/live`: the same while the simulator generates orders as fast as ingest takes them (as
//!   its `--firehose` does), sharing the two cores, for comparison;
//! - `jetstream/raw`: a bare async-nats publisher on the same server once ingest has stopped, messages of
//!   the average stored event size with a `Nats-Msg-Id` each and as many acks in flight as ingest allows
//!   itself (its publish window), to a file stream with the same duplicate window;
//! - the ratio of ingest's rate to the raw rate (target: at least 50 %).
#![allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "rates printed by a benchmark, not amounts of money"
)]

use std::time::{Duration, Instant};

use acctmon_bus::topology::names;
use acctmon_ingest::config::Config;
use acctmon_testkit::{NatsServer, wait_until};
use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

/// How long the stream's count must hold still for a burst to count as drained.
const SETTLED: Duration = Duration::from_millis(750);

/// The allocator of the binaries whose work this measures (ingest runs in this process).
#[global_allocator]
static ALLOCATOR: acctmon_service::Allocator = acctmon_service::Allocator;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let rounds = args.next().unwrap_or(4).max(1);
    let accounts = args.next().unwrap_or(8).max(1);
    let nats = NatsServer::start();

    // The exchange stand-in gets a thread of its own: a real exchange does not share ingest's runtime.
    let names: Vec<String> = (0..accounts).map(|i| format!("bench{i}")).collect();
    let mut sim_args = vec!["--fills-per-sec".to_owned(), "0".to_owned()];
    for name in &names {
        sim_args.extend(["--account".to_owned(), name.clone()]);
    }
    let sim = acctmon_sim::server::Background::start(sim_args).map_err(anyhow::Error::msg)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ingest")
        .enable_all()
        .build()?;
    let result = rt.block_on(measure(&nats, &sim.base, &names, rounds));
    sim.stop().map_err(anyhow::Error::msg)?;
    result
}

/// Events stored on `EVENTS` and when they were counted.
#[derive(Clone, Copy)]
struct Count {
    at: Instant,
    messages: u64,
    bytes: u64,
}

async fn count(js: &jetstream::Context) -> anyhow::Result<Count> {
    let state = js
        .get_stream(names::EVENTS)
        .await?
        .info()
        .await?
        .state
        .clone();
    Ok(Count {
        at: Instant::now(),
        messages: state.messages,
        bytes: state.bytes,
    })
}

/// Waits for the count to grow by at least `at_least` past `base` and then hold still; returns the
/// first and the last count that differ from their predecessor.
async fn drain(
    js: &jetstream::Context,
    base: u64,
    at_least: u64,
) -> anyhow::Result<(Count, Count)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = None;
    let mut last = count(js).await?;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a burst did not drain within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = count(js).await?;
        if now.messages != last.messages {
            if first.is_none() && now.messages > base {
                first = Some(now);
            }
            last = now;
        } else if let Some(first) = first
            && last.messages >= base + at_least
            && now.at.duration_since(last.at) >= SETTLED
        {
            return Ok((first, last));
        }
    }
}

/// Asks the simulator for a burst of `orders` market orders.
async fn burst(http: &reqwest::Client, sim: &str, orders: u64) -> anyhow::Result<()> {
    let r = http
        .post(format!("{sim}/_sim/burst?orders={orders}"))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "burst refused: {}",
        r.text().await?
    );
    Ok(())
}

async fn measure(
    nats: &NatsServer,
    sim: &str,
    names: &[String],
    rounds: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let ws = sim.replacen("http://", "ws://", 1);
    let mut config = Config::default();
    config.nats.urls = vec![nats.url()];
    config.accounts = names
        .iter()
        .map(|n| acctmon_ingest::sim_account(n, sim, &ws))
        .collect();
    config.marks.enabled = false;
    let window = config.stream.publish_window;
    let duplicate_window = config.topology.duplicate_window;

    let stop = CancellationToken::new();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let readyz = format!("http://{}/readyz", admin.local_addr()?);
    let ingest = tokio::spawn(acctmon_ingest::run_with_listener(
        config,
        admin,
        stop.clone(),
    ));
    wait_until(Duration::from_secs(30), "ingest ready", || {
        let (http, readyz) = (http.clone(), readyz.clone());
        async move {
            http.get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let client = async_nats::connect(nats.url()).await?;
    let js = jetstream::new(client);

    // Bursts: the exchange's work done before delivery, ingest's measured alone.
    let per_burst = acctmon_sim::admin::MAX_BURST_PER_ACCOUNT * names.len() as u64;
    let fills_before = count_fills(&js).await?;
    let (mut events, mut bytes, mut busy) = (0u64, 0u64, Duration::ZERO);
    for round in 1..=rounds {
        let base = count(&js).await?.messages;
        burst(&http, sim, per_burst).await?;
        let (first, last) = drain(&js, base, per_burst).await?;
        let n = last.messages - first.messages;
        let took = last.at.duration_since(first.at);
        eprintln!(
            "… round {round}/{rounds}: {n} events in {:.2} s ({:.0}/s)",
            took.as_secs_f64(),
            per_sec(n, took)
        );
        events += n;
        bytes += last.bytes - first.bytes;
        busy += took;
        anyhow::ensure!(!ingest.is_finished(), "ingest stopped");
    }
    let fills = count_fills(&js).await? - fills_before;
    anyhow::ensure!(events > 0, "ingest stored no events");
    let avg_bytes = usize::try_from(bytes / events)?;
    let burst_rate = per_sec(events, busy);
    println!(
        "ingest/burst: {burst_rate:.0} events/s ({events} events in {:.2} s of draining, {fills} fills in all, {} accounts, {avg_bytes} B stored per event)",
        busy.as_secs_f64(),
        names.len(),
    );

    // Live: generation and ingest on the same cores, the simulator never more than a burst ahead
    // (the next burst is asked for once the stream has grown by at least one event per order).
    let live = Duration::from_secs(5);
    let chunk = names.len() as u64 * 128;
    let start = count(&js).await?;
    let fills_start = count_fills(&js).await?;
    let mut asked = start.messages;
    while start.at.elapsed() < live {
        if count(&js).await?.messages >= asked {
            burst(&http, sim, chunk).await?;
            asked += chunk;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let end = count(&js).await?;
    let live_rate = per_sec(
        end.messages - start.messages,
        end.at.duration_since(start.at),
    );
    println!(
        "ingest/live: {live_rate:.0} events/s, {:.0} fills/s (simulator generating on the same cores)",
        per_sec(
            count_fills(&js).await? - fills_start,
            end.at.duration_since(start.at)
        ),
    );
    let metrics = http
        .get(readyz.replace("/readyz", "/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("acctmon_ingest_reconnects_total")
            || l.starts_with("acctmon_ingest_gaps_total")
    }) {
        anyhow::ensure!(
            line.ends_with(" 0"),
            "the stream broke during the run, the figures mix in backfills: {line}"
        );
    }
    stop.cancel();
    ingest.await??;

    let raw_rate = raw_publish(&js, avg_bytes, window, duplicate_window, live).await?;
    println!(
        "jetstream/raw: {raw_rate:.0} msgs/s ({avg_bytes} B, Nats-Msg-Id on each, {window} acks in flight)"
    );
    println!(
        "ingest/raw: {:.1} % bursts, {:.1} % live (target: at least 50 %)",
        burst_rate / raw_rate * 100.0,
        live_rate / raw_rate * 100.0
    );
    Ok(())
}

/// Fills on `EVENTS`, from the per-subject counts of the `fill` kind.
async fn count_fills(js: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(acctmon_testkit::jetstream::count(js, names::EVENTS, "trading.events.*.*.fill").await)
}

/// Messages per second stored by a bare publisher keeping `window` acks in flight.
async fn raw_publish(
    js: &jetstream::Context,
    size: usize,
    window: usize,
    duplicate_window: Duration,
    seconds: Duration,
) -> anyhow::Result<f64> {
    let run =
        acctmon_testkit::jetstream::raw_publish(js, size, window, duplicate_window, seconds).await;
    Ok(per_sec(run.messages, run.elapsed))
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}
