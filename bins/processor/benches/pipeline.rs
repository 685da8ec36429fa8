//! The whole pipeline, exchange to published P&L: the simulator, ingest, `EVENTS`, the processor (its
//! own process, the release binary), KV and `trading.pnl.>`, on one nats-server.
//!
//! `cargo bench -p acctmon-processor --bench pipeline [-- [ROUNDS [ACCOUNTS]] [partitions=P] [burst|latency|rss …]]`
//! (defaults: 3 rounds, 8 accounts, the deployment's default partition count, every part) prints:
//!
//! - `pipeline/burst`: fills and events per second from the simulator's bursts of market orders
//!   (`POST /_sim/burst`, the most each account's stream buffer holds) to the processor having applied
//!   every event and published its last P&L: timed from the last check before the burst's first event
//!   is stored on `EVENTS` (the exchange generates a burst before delivering it) to the last change of
//!   `EVENTS`, of the processor's applied count or of the `PNL` stream, once the applied count has
//!   reached the stream's. Ingest and the processor share the machine's cores;
//! - `jetstream/raw`: a bare publisher on the same server for 5 s right after each round, while the
//!   pipeline is idle, as ingest's benchmark measures it (messages of the round's average stored event
//!   size, a `Nats-Msg-Id` each, as many acks in flight as ingest's publish window), the mean of these
//!   runs, and the ratio of the pipeline's events per second to it (target: at least 30 %);
//! - `pipeline/latency`: generated activity (`POST /_sim/activity`) at the rate that gives about
//!   1 000 fills per second (measured on `EVENTS` fill subjects), mark prices followed; for ~20 s every
//!   fill a core subscriber sees on `EVENTS` gives the time from its exchange time to the arrival of
//!   the first `trading.pnl.*.position.>` message of its leg that reflects it (`applied_seq` at or past
//!   the fill's `EVENTS` sequence, read back from the stream), in ms (target: p99 under 10 ms), split
//!   into the simulator, ingest and the processor; and, for comparison, `receive time − event_time` of
//!   every position message but the mark-driven ones (`Nats-Msg-Id` ending in `:m<ms>`);
//! - `processor/rss`: the processor's resident memory (`VmRSS`, and its peak `VmHWM`) once 100
//!   hedge-mode accounts hold 20 position legs each (10 symbols long and short: the simulator's own
//!   symbols, and more given marks through `POST /_sim/mark`, opened by signed REST orders) after a
//!   burst of history (target: under 100 MB).
#![allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "rates, latencies and megabytes printed by a benchmark, not amounts of money"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acctmon_bus::pnl::PositionPnl;
use acctmon_bus::topology::names;
use acctmon_domain::Event;
use acctmon_testkit::{NatsServer, free_port, wait_until};
use async_nats::jetstream;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

/// How often a burst's progress is read: a burst is timed to within it, and every read costs the server
/// two stream info requests and the processor a `/metrics` scrape, on top of what is being measured.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);
/// How long every count must hold still for a burst to count as done.
const SETTLED: Duration = Duration::from_millis(750);
/// Fills per second the latency run aims at.
const LATENCY_FILLS_PER_SEC: f64 = 1000.0;
/// How long the latency run listens.
const LATENCY_WINDOW: Duration = Duration::from_secs(20);
/// How long each raw reference run publishes.
const RAW_ROUND: Duration = Duration::from_secs(5);
/// Accounts of the memory run.
const RSS_ACCOUNTS: usize = 100;
/// Market orders per account in the memory run's burst of history.
const RSS_HISTORY_PER_ACCOUNT: u64 = 200;
/// Symbols of the memory run: name, mark to give it (`None`: the simulator has one), quantity per order.
const RSS_SYMBOLS: [(&str, Option<&str>, &str); 10] = [
    ("BTCUSDT", None, "0.002"),
    ("ETHUSDT", None, "0.03"),
    ("SOLUSDT", None, "0.5"),
    ("BNBUSDT", None, "0.2"),
    ("XRPUSDT", Some("0.6"), "150"),
    ("DOGEUSDT", Some("0.15"), "600"),
    ("ADAUSDT", Some("0.45"), "200"),
    ("AVAXUSDT", Some("35"), "3"),
    ("LINKUSDT", Some("15"), "6"),
    ("DOTUSDT", Some("7"), "15"),
];

/// The allocator of the binaries whose work this measures (ingest runs in this process).
#[global_allocator]
static ALLOCATOR: acctmon_service::Allocator = acctmon_service::Allocator;

fn main() -> anyhow::Result<()> {
    let (numbers, mut parts): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .partition(|a| a.parse::<u64>().is_ok());
    let mut numbers = numbers.iter().filter_map(|a| a.parse::<u64>().ok());
    let rounds = numbers.next().unwrap_or(3).max(1);
    let accounts = usize::try_from(numbers.next().unwrap_or(8).max(1))?;
    let mut partitions = acctmon_bus::Topology::default().partitions;
    if let Some(at) = parts.iter().position(|p| p.starts_with("partitions=")) {
        let value = parts.remove(at);
        partitions = value
            .strip_prefix("partitions=")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                anyhow::anyhow!("{value:?}: the partition count is a whole number above 0")
            })?;
    }
    const PARTS: [&str; 3] = ["burst", "latency", "rss"];
    if let Some(unknown) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        anyhow::bail!(
            "unknown part {unknown:?}: the parts are {}",
            PARTS.join(", ")
        );
    }
    if parts.is_empty() {
        parts = PARTS.map(String::from).into();
    }
    let runs = |part: &str| parts.iter().any(|p| p == part);
    println!(
        "pipeline: simulator → ingest → EVENTS → acctmon-processor (own process) → KV + trading.pnl, one nats-server\n\
         - pipeline/burst: fills/s and events/s from a burst's first stored event to the processor's last P&L\n\
         - jetstream/raw: bare publisher on the same server, same message size, ids and acks in flight; pipeline/raw target ≥ 30 %\n\
         - pipeline/latency: a fill's exchange time to the first trading.pnl position message reflecting it, at ~1 000 fills/s (target p99 < 10 ms)\n\
         - processor/rss: processor resident memory with {RSS_ACCOUNTS} accounts × 20 legs (target < 100 MB)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench")
        .enable_all()
        .build()?;
    rt.block_on(async {
        if runs("burst") {
            burst(rounds, accounts, partitions).await?;
        }
        if runs("latency") {
            latency(accounts, partitions).await?;
        }
        if runs("rss") {
            rss(partitions).await?;
        }
        Ok(())
    })
}

/// The `acctmon-processor` binary running against one nats-server.
struct Processor {
    child: Child,
    admin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Processor {
    fn start(nats_url: &str, partitions: u32) -> anyhow::Result<Processor> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let config = dir.path().join("processor.toml");
        std::fs::write(
            &config,
            format!(
                "admin_listen = \"127.0.0.1:{port}\"\nlog_filter = \"warn\"\ninstance = \"bench\"\n[nats]\nurls = [\"{nats_url}\"]\n[topology]\npartitions = {partitions}\n"
            ),
        )?;
        let log = dir.path().join("processor.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_acctmon-processor"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()?;
        Ok(Processor {
            child,
            admin: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        })
    }

    /// Its resident memory and the peak of it, in bytes, from `/proc/<pid>/status`.
    fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/<pid>/status"))?;
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .ok_or_else(|| anyhow::anyhow!("malformed {line:?}"))?
                .parse()?;
            Ok(kb * 1024)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything of one run: nats-server, simulator, ingest (in this process), the processor.
struct Pipeline {
    nats: NatsServer,
    sim: acctmon_sim::server::Background,
    ingest_stop: CancellationToken,
    ingest: tokio::task::JoinHandle<anyhow::Result<()>>,
    ingest_admin: String,
    processor: Processor,
    js: jetstream::Context,
    http: reqwest::Client,
    publish_window: usize,
    duplicate_window: Duration,
}

impl Pipeline {
    /// Starts every part; `accounts` are the simulator's `NAME[:hedge][:bnb]`, their events spread
    /// over `partitions`.
    async fn start(accounts: &[String], marks: bool, partitions: u32) -> anyhow::Result<Pipeline> {
        let nats = NatsServer::start();
        let mut sim_args: Vec<String> = ["--fills-per-sec", "0", "--weight-limit", "100000000"]
            .map(String::from)
            .into();
        for a in accounts {
            sim_args.extend(["--account".to_owned(), a.clone()]);
        }
        let sim = acctmon_sim::server::Background::start(sim_args).map_err(anyhow::Error::msg)?;
        let http = reqwest::Client::new();
        let ws = sim.base.replacen("http://", "ws://", 1);
        let mut config = acctmon_ingest::config::Config::default();
        config.nats.urls = vec![nats.url()];
        config.accounts = accounts
            .iter()
            .map(|a| acctmon_ingest::sim_account(name_of(a), &sim.base, &ws))
            .collect();
        config.marks.enabled = marks;
        config.topology.partitions = partitions;
        let publish_window = config.stream.publish_window;
        let duplicate_window = config.topology.duplicate_window;
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ingest_admin = format!("http://{}", admin.local_addr()?);
        let ingest_stop = CancellationToken::new();
        let ingest = tokio::spawn(acctmon_ingest::run_with_listener(
            config,
            admin,
            ingest_stop.clone(),
        ));
        ready(&http, &format!("{ingest_admin}/readyz"), "ingest ready").await;
        let processor = Processor::start(&nats.url(), partitions)?;
        ready(
            &http,
            &format!("{}/readyz", processor.admin),
            "processor ready",
        )
        .await;
        let js = jetstream::new(async_nats::connect(nats.url()).await?);
        Ok(Pipeline {
            nats,
            sim,
            ingest_stop,
            ingest,
            ingest_admin,
            processor,
            js,
            http,
            publish_window,
            duplicate_window,
        })
    }

    /// Stops the simulator, ingest and the processor; the nats-server goes on.
    async fn stop(self) -> anyhow::Result<NatsServer> {
        anyhow::ensure!(!self.ingest.is_finished(), "ingest stopped during the run");
        drop(self.processor);
        self.ingest_stop.cancel();
        self.ingest.await??;
        self.sim.stop().map_err(anyhow::Error::msg)?;
        Ok(self.nats)
    }

    async fn sim_post(&self, path_and_query: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/_sim/{path_and_query}", self.sim.base))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "/_sim/{path_and_query}: {}",
            r.text().await?
        );
        Ok(())
    }

    /// The counts a burst is timed by (one stream info request per stream: they take the stream's lock
    /// that the publishers being measured need too).
    async fn progress(&self) -> anyhow::Result<Progress> {
        let events = self
            .js
            .get_stream(names::EVENTS)
            .await?
            .cached_info()
            .state
            .clone();
        let pnl = self
            .js
            .get_stream(names::PNL)
            .await?
            .cached_info()
            .state
            .messages;
        let metrics = self.metrics(&self.processor.admin).await?;
        let processed = [
            "acctmon_processor_events_applied_total",
            "acctmon_processor_events_skipped_total",
            "acctmon_processor_undecodable_total",
        ]
        .iter()
        .map(|name| metric(&metrics, name))
        .sum();
        Ok(Progress {
            at: Instant::now(),
            events: events.messages,
            bytes: events.bytes,
            processed,
            pnl,
        })
    }

    async fn metrics(&self, admin: &str) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{admin}/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Waits until `EVENTS` has grown by at least `at_least` past `base`, the processor has applied
    /// every event and every count has held still; returns the last check before the first new event
    /// and the last change.
    async fn settle(
        &self,
        base: u64,
        at_least: u64,
    ) -> anyhow::Result<(Progress, Progress, Instant)> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut before = self.progress().await?;
        let mut start = None;
        let mut last = before;
        let mut stored = before.at;
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the pipeline did not settle within 300 s (processor log: {})",
                self.processor.log_tail()
            );
            tokio::time::sleep(PROGRESS_EVERY).await;
            let now = self.progress().await?;
            if start.is_none() {
                if now.events > base {
                    start = Some(before);
                } else {
                    before = now;
                }
            }
            if now.events != last.events {
                stored = now.at;
            }
            if (now.events, now.processed, now.pnl) != (last.events, last.processed, last.pnl) {
                last = now;
            } else if let Some(start) = start
                && last.events >= base + at_least
                && last.processed >= last.events
                && now.at.duration_since(last.at) >= SETTLED
            {
                return Ok((start, last, stored));
            }
        }
    }

    /// Fills on `EVENTS`, from the per-subject counts of the `fill` kind.
    async fn fills(&self) -> anyhow::Result<u64> {
        Ok(
            acctmon_testkit::jetstream::count(&self.js, names::EVENTS, "trading.events.*.*.fill")
                .await,
        )
    }

    /// Fails when ingest's streams broke (the figures would then mix in backfills).
    async fn check_ingest(&self) -> anyhow::Result<()> {
        let metrics = self.metrics(&self.ingest_admin).await?;
        for name in [
            "acctmon_ingest_reconnects_total",
            "acctmon_ingest_gaps_total",
        ] {
            anyhow::ensure!(
                metric(&metrics, name) == 0,
                "{name} is not 0: the stream broke during the run, the figures mix in backfills"
            );
        }
        Ok(())
    }
}

/// The counts of one check.
#[derive(Clone, Copy)]
struct Progress {
    at: Instant,
    /// Messages and bytes on `EVENTS`.
    events: u64,
    bytes: u64,
    /// Events the processor applied, skipped as already applied, or could not decode.
    processed: u64,
    /// Messages on `PNL`.
    pnl: u64,
}

/// `pipeline/burst`, `jetstream/raw` and their ratio.
async fn burst(rounds: u64, accounts: usize, partitions: u32) -> anyhow::Result<()> {
    let names: Vec<String> = (0..accounts).map(|i| format!("bench{i}")).collect();
    // No mark prices: their republishes would keep `PNL` growing after a burst.
    let p = Pipeline::start(&names, false, partitions).await?;
    let per_burst = acctmon_sim::admin::MAX_BURST_PER_ACCOUNT * accounts as u64;
    let (window, duplicate_window) = (p.publish_window, p.duplicate_window);
    let (mut events, mut fills, mut bytes, mut busy) = (0u64, 0u64, 0u64, Duration::ZERO);
    let mut raw_rates = Vec::new();
    for round in 1..=rounds {
        let base = p.progress().await?;
        let fills_before = p.fills().await?;
        p.sim_post(&format!("burst?orders={per_burst}")).await?;
        let (start, last, stored) = p.settle(base.events, per_burst).await?;
        let n = last.events - base.events;
        let f = p.fills().await? - fills_before;
        let took = last.at.duration_since(start.at);
        events += n;
        fills += f;
        bytes += last.bytes - base.bytes;
        busy += took;
        // The reference right after the round, on the same server, while the pipeline is idle: the
        // machine's speed moves from minute to minute, and a reference taken minutes away would
        // carry that into the ratio.
        let avg_bytes = usize::try_from((last.bytes - base.bytes) / n.max(1))?;
        let raw = raw_publish(&p.js, avg_bytes, window, duplicate_window, RAW_ROUND).await?;
        raw_rates.push(raw);
        eprintln!(
            "… round {round}/{rounds}: {n} events, {f} fills, {} P&L messages in {:.2} s ({:.0} events/s, {:.0} fills/s; the last event stored on EVENTS after {:.2} s); raw {raw:.0} msgs/s after it ({:.1} %)",
            last.pnl - base.pnl,
            took.as_secs_f64(),
            per_sec(n, took),
            per_sec(f, took),
            stored.duration_since(start.at).as_secs_f64(),
            per_sec(n, took) / raw * 100.0,
        );
    }
    p.check_ingest().await?;
    p.stop().await?;
    anyhow::ensure!(events > 0, "no events stored");
    let avg_bytes = usize::try_from(bytes / events)?;
    let events_rate = per_sec(events, busy);
    let raw_rate = raw_rates.iter().sum::<f64>() / raw_rates.len() as f64;
    println!(
        "pipeline/burst: {:.0} fills/s, {events_rate:.0} events/s ({fills} fills, {events} events in {:.2} s until the processor's last P&L, {accounts} accounts, {partitions} partition{})",
        per_sec(fills, busy),
        busy.as_secs_f64(),
        if partitions == 1 { "" } else { "s" }
    );
    println!(
        "jetstream/raw: {raw_rate:.0} msgs/s (mean of {} runs of {} s, one after each round: {}; {avg_bytes} B, Nats-Msg-Id on each, {window} acks in flight)",
        raw_rates.len(),
        RAW_ROUND.as_secs(),
        raw_rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "pipeline/raw: {:.1} % (events/s of the pipeline over raw msgs/s; target: at least 30 %)",
        events_rate / raw_rate * 100.0
    );
    Ok(())
}

/// `pipeline/latency`.
async fn latency(accounts: usize, partitions: u32) -> anyhow::Result<()> {
    let names: Vec<String> = (0..accounts).map(|i| format!("lat{i}")).collect();
    let p = Pipeline::start(&names, true, partitions).await?;
    // Actions are not fills one for one: find the rate that gives the target on `EVENTS`.
    let mut per_sec_asked: u32 = 1000;
    for _ in 0..2 {
        p.sim_post(&format!("activity?per_sec={per_sec_asked}"))
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (f0, t0) = (p.fills().await?, Instant::now());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let measured = per_sec(p.fills().await? - f0, t0.elapsed());
        anyhow::ensure!(measured > 0.0, "generated activity made no fills");
        let next = (f64::from(per_sec_asked) * LATENCY_FILLS_PER_SEC / measured)
            .round()
            .clamp(10.0, 100_000.0);
        eprintln!("… {per_sec_asked} actions/s gave {measured:.0} fills/s");
        per_sec_asked = format!("{next:.0}").parse()?;
    }
    p.sim_post(&format!("activity?per_sec={per_sec_asked}"))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The receiver has a thread and a connection of its own, so that its clock is read when a message
    // arrives, not when this process's workers (which run ingest) get round to it.
    let events_before =
        p.js.get_stream(names::EVENTS)
            .await?
            .info()
            .await?
            .state
            .last_sequence;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let listener = std::thread::spawn({
        let url = p.nats.url();
        move || listen(&url, ready_tx)
    });
    ready_rx.await?;
    let (fills_before, started) = (p.fills().await?, Instant::now());
    let heard = tokio::task::spawn_blocking(move || listener.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the listener panicked"))??;
    let fills_rate = per_sec(p.fills().await? - fills_before, started.elapsed());
    let sequences = fill_sequences(&p.js, events_before + 1).await?;
    let batches = p.metrics(&p.processor.admin).await?;
    let entries = acctmon_bus::kv::latest(&p.js.get_key_value(names::ACCOUNTS).await?, ">")
        .await
        .map_err(|e| anyhow::anyhow!("read KV accounts: {e}"))?;
    let entry_bytes: Vec<usize> = entries.values().map(|e| e.value.len()).collect();
    p.sim_post("activity?per_sec=0").await?;
    p.check_ingest().await?;
    p.stop().await?;
    let mut s = heard.samples(&sequences)?;
    for figures in [
        &mut s.latencies,
        &mut s.to_events,
        &mut s.to_ingest,
        &mut s.to_computed,
        &mut s.in_processor,
        &mut s.messages,
    ] {
        figures.sort_unstable();
    }
    let quantiles = |v: &[i64]| {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms",
            v[(v.len() - 1) / 2],
            v[((v.len() - 1) * 99) / 100],
            v[v.len() - 1]
        )
    };
    println!(
        "pipeline/latency: {} ({} fills in {} s at {fills_rate:.0} fills/s from {per_sec_asked} actions/s, {accounts} accounts: each fill's exchange time to the first position message of its leg that reflects it)",
        quantiles(&s.latencies),
        s.latencies.len(),
        LATENCY_WINDOW.as_secs()
    );
    println!(
        "pipeline/latency/to-events: {} (of it, exchange time to the fill on EVENTS: the simulator and ingest)",
        quantiles(&s.to_events)
    );
    println!(
        "pipeline/latency/to-ingest: {} (of that, exchange time to ingest's receive time: the simulator and the WebSocket)",
        quantiles(&s.to_ingest)
    );
    println!(
        "pipeline/latency/in-processor: {} (of the whole, the fill on EVENTS to its position message received: the processor)",
        quantiles(&s.in_processor)
    );
    println!(
        "pipeline/latency/to-computed: {} (of the whole, exchange time to the processor's computing the figures, `updated_at`)",
        quantiles(&s.to_computed)
    );
    println!(
        "pipeline/latency/messages: {} (every position message: receive time − its `event_time`, {} messages, {} mark-driven left out; a message a later stream notice caused carries the account's last exchange time)",
        quantiles(&s.messages),
        s.messages.len(),
        heard.by_mark
    );
    println!(
        "pipeline/latency/state: KV accounts entries of {} to {} bytes ({} accounts; written at checkpoints)",
        entry_bytes.iter().min().copied().unwrap_or(0),
        entry_bytes.iter().max().copied().unwrap_or(0),
        entry_bytes.len()
    );
    let bound = |name: &str, q: f64| {
        histogram_quantile(&batches, name, q)
            .map_or_else(|| "?".to_owned(), |s| format!("{:.1}", s * 1000.0))
    };
    let batch = "acctmon_processor_batch_seconds";
    println!(
        "pipeline/latency/batch: p50 ≤ {} ms, p99 ≤ {} ms (the processor's batch time, arrival to P&L sent and position views written, from its histogram over the whole run)",
        bound(batch, 0.5),
        bound(batch, 0.99)
    );
    let checkpoint = "acctmon_processor_checkpoint_seconds";
    println!(
        "pipeline/latency/checkpoint: p50 ≤ {} ms, p99 ≤ {} ms (the changed accounts' books written and their events acknowledged, every {:?})",
        bound(checkpoint, 0.5),
        bound(checkpoint, 0.99),
        acctmon_processor::Config::default().checkpoint_every
    );
    Ok(())
}

/// A fill as the latency run's listener first saw it on `EVENTS` (ingest publishes a fill once for each
/// of the exchange's two reports of it, `TRADE_LITE` and `ORDER_TRADE_UPDATE`; the books apply the
/// first and complete it with the commission and realized P&L of the second).
struct FillSeen {
    /// Exchange time, ms.
    time: i64,
    /// Ingest's receive time, ms.
    ingest: i64,
    /// When the listener received it, ms.
    seen: i64,
}

/// A position P&L message as the latency run's listener received it.
struct PositionSeen {
    /// The `EVENTS` sequence it reflects (`applied_seq`).
    seq: u64,
    /// Receive time, ms.
    received: i64,
    event_time: i64,
    updated_at: i64,
}

/// What the latency run's listener heard: fills by (account, symbol, trade id), position messages by
/// (account, symbol) in arrival order.
#[derive(Default)]
struct Heard {
    fills: HashMap<(String, String, u64), FillSeen>,
    positions: HashMap<(String, String), Vec<PositionSeen>>,
    /// Mark-driven republishes left out.
    by_mark: u64,
}

/// The latency run's figures, in ms.
#[derive(Default)]
struct Samples {
    /// Per fill: receive time of the first position message of its leg reflecting it (`applied_seq` at
    /// or past the fill's sequence) minus its exchange time.
    latencies: Vec<i64>,
    /// Per fill: the listener's receive time of it on `EVENTS` minus its exchange time.
    to_events: Vec<i64>,
    /// Per fill: ingest's receive time minus its exchange time.
    to_ingest: Vec<i64>,
    /// Per fill: that position message's receive time minus the fill's on `EVENTS`.
    in_processor: Vec<i64>,
    /// Per fill: that position message's `updated_at` minus the fill's exchange time.
    to_computed: Vec<i64>,
    /// Per position message: receive time minus its `event_time`.
    messages: Vec<i64>,
}

impl Heard {
    /// Each fill heard matched, by its `EVENTS` sequence, with the first position message of its leg
    /// that reflects it. Fails when a fill has none: every fill changes its leg's figures (its fill
    /// count at least), so its message was lost or never sent.
    fn samples(&self, sequences: &HashMap<(String, String, u64), u64>) -> anyhow::Result<Samples> {
        let mut s = Samples::default();
        let mut unanswered = Vec::new();
        for ((account, symbol, trade), fill) in &self.fills {
            let key = (account.clone(), symbol.clone(), *trade);
            let seq = *sequences
                .get(&key)
                .ok_or_else(|| anyhow::anyhow!("fill {key:?} heard but not on EVENTS"))?;
            let first = self
                .positions
                .get(&(account.clone(), symbol.clone()))
                .and_then(|v| v.iter().find(|m| m.seq >= seq));
            let Some(message) = first else {
                unanswered.push(key);
                continue;
            };
            s.latencies.push(message.received - fill.time);
            s.to_events.push(fill.seen - fill.time);
            s.to_ingest.push(fill.ingest - fill.time);
            s.in_processor.push(message.received - fill.seen);
            s.to_computed.push(message.updated_at - fill.time);
        }
        anyhow::ensure!(
            unanswered.is_empty(),
            "{} fills had no position message reflecting them, e.g. {:?}",
            unanswered.len(),
            unanswered.first()
        );
        anyhow::ensure!(!s.latencies.is_empty(), "no fill heard on EVENTS");
        s.messages = self
            .positions
            .values()
            .flatten()
            .map(|m| m.received - m.event_time)
            .collect();
        Ok(s)
    }
}

/// Listens to `trading.pnl.*.position.>` and the fills on `EVENTS` on a runtime of its own, once
/// subscribed saying so on `ready`: fills for [`LATENCY_WINDOW`], position messages a second longer,
/// so that every fill heard has its answer.
fn listen(url: &str, ready: tokio::sync::oneshot::Sender<()>) -> anyhow::Result<Heard> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = async_nats::connect(url).await?;
        let mut sub = client.subscribe("trading.pnl.*.position.>").await?;
        // Where the time goes: the same clock read when ingest's fill reaches the server.
        let mut stored = client.subscribe("trading.events.*.*.fill").await?;
        client.flush().await?;
        let _ = ready.send(());
        let mut heard = Heard::default();
        let fills_until = tokio::time::Instant::now() + LATENCY_WINDOW;
        let deadline = fills_until + Duration::from_secs(1);
        loop {
            let msg = tokio::select! {
                m = tokio::time::timeout_at(deadline, sub.next()) => match m {
                    Ok(Some(m)) => m,
                    _ => break,
                },
                Some(fill) = stored.next(), if tokio::time::Instant::now() < fills_until => {
                    let seen = now_ms();
                    let envelope = acctmon_bus::envelope::Envelope::decode(&fill.payload)?;
                    let Event::Fill(f) = &envelope.event else {
                        anyhow::bail!("{} holds no fill", fill.subject);
                    };
                    heard
                        .fills
                        .entry((f.account.as_str().to_owned(), f.symbol.as_str().to_owned(), f.trade_id))
                        .or_insert(FillSeen {
                            time: envelope.event.time().0,
                            ingest: envelope.received_at,
                            seen,
                        });
                    continue;
                }
            };
            let received = now_ms();
            let by_mark = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .is_some_and(|id| {
                    id.as_str()
                        .rsplit(':')
                        .next()
                        .is_some_and(|t| t.starts_with('m'))
                });
            if by_mark {
                heard.by_mark += 1;
                continue;
            }
            let view: PositionPnl = rmp_serde::from_slice(&msg.payload)?;
            heard
                .positions
                .entry((view.account.as_str().to_owned(), view.symbol.as_str().to_owned()))
                .or_default()
                .push(PositionSeen {
                    seq: view.applied_seq,
                    received,
                    event_time: view.event_time,
                    updated_at: view.updated_at,
                });
        }
        Ok(heard)
    })
}

/// The `EVENTS` sequence of every fill from `from` on, by (account, symbol, trade id): the first
/// stored, as the processor applies it.
async fn fill_sequences(
    js: &jetstream::Context,
    from: u64,
) -> anyhow::Result<HashMap<(String, String, u64), u64>> {
    let consumer = js
        .get_stream(names::EVENTS)
        .await?
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "trading.events.*.*.fill".into(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut sequences = HashMap::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await? {
        let m = m?;
        let info = m.info().map_err(|e| anyhow::anyhow!("message info: {e}"))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if let Event::Fill(f) = acctmon_bus::envelope::Envelope::decode(&m.payload)?.event {
            sequences
                .entry((
                    f.account.as_str().to_owned(),
                    f.symbol.as_str().to_owned(),
                    f.trade_id,
                ))
                .or_insert(seq);
        }
        if pending == 0 {
            break;
        }
    }
    Ok(sequences)
}

/// The upper bound of the histogram bucket holding quantile `q` of `name` in a Prometheus text page.
fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            Some((le.parse().ok()?, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(le, _)| *le)
}

/// `processor/rss`.
async fn rss(partitions: u32) -> anyhow::Result<()> {
    let names: Vec<String> = (0..RSS_ACCOUNTS).map(|i| format!("rss{i}:hedge")).collect();
    let p = Pipeline::start(&names, true, partitions).await?;
    for (symbol, mark, _) in RSS_SYMBOLS {
        if let Some(price) = mark {
            p.sim_post(&format!("mark?symbol={symbol}&price={price}"))
                .await?;
        }
    }
    // History first (market orders on the simulator's own symbols), then every leg opened, so that
    // every leg ends open.
    let base = p.progress().await?;
    let history = RSS_HISTORY_PER_ACCOUNT * RSS_ACCOUNTS as u64;
    p.sim_post(&format!("burst?orders={history}")).await?;
    p.settle(base.events, history).await?;
    let base = p.progress().await?;
    let orders: Vec<(String, String)> = names
        .iter()
        .flat_map(|n| {
            RSS_SYMBOLS.iter().flat_map(move |(symbol, _, qty)| {
                ["side=BUY&positionSide=LONG", "side=SELL&positionSide=SHORT"].map(|leg| {
                    (
                        name_of(n).to_owned(),
                        format!("symbol={symbol}&{leg}&type=MARKET&quantity={qty}"),
                    )
                })
            })
        })
        .collect();
    let count = orders.len() as u64;
    let mut placed = futures_util::stream::iter(orders)
        .map(|(name, params)| order(&p.http, &p.sim.base, name, params))
        .buffer_unordered(16);
    while let Some(r) = placed.next().await {
        r?;
    }
    drop(placed);
    p.settle(base.events, count).await?;
    let last = p.progress().await?;
    let legs = open_legs(&p.js).await?;
    let total: usize = legs.values().sum();
    let (fewest, most) = (
        legs.values().min().copied().unwrap_or(0),
        legs.values().max().copied().unwrap_or(0),
    );
    let (rss, peak) = p.processor.memory()?;
    println!(
        "processor/rss: {:.1} MB resident, peak {:.1} MB ({} accounts, {total} open legs in KV, {fewest}–{most} per account over {} symbols, {} events applied; target: under 100 MB)",
        mb(rss),
        mb(peak),
        legs.len(),
        RSS_SYMBOLS.len(),
        last.processed
    );
    p.check_ingest().await?;
    p.stop().await?;
    Ok(())
}

/// A signed market order for account `name`.
async fn order(
    http: &reqwest::Client,
    base: &str,
    name: String,
    params: String,
) -> anyhow::Result<()> {
    use acctmon_sim::auth::{Secret, sign};
    let query = format!("{params}&timestamp={}", now_ms());
    let signature = sign(&Secret::new(format!("sim-secret-{name}")), &query);
    let r = http
        .post(format!(
            "{base}/fapi/v1/order?{query}&signature={signature}"
        ))
        .header("X-MBX-APIKEY", format!("sim-key-{name}"))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "order {params} of {name}: {}",
        r.text().await?
    );
    Ok(())
}

/// Open legs (non-zero quantity) per account in KV `positions`.
async fn open_legs(js: &jetstream::Context) -> anyhow::Result<BTreeMap<String, usize>> {
    let positions = js.get_key_value("positions").await?;
    let mut legs = BTreeMap::new();
    let entries = acctmon_bus::kv::latest(&positions, ">")
        .await
        .map_err(|e| anyhow::anyhow!("read KV positions: {e}"))?;
    for entry in entries.into_values() {
        let view: PositionPnl = rmp_serde::from_slice(&entry.value)?;
        let n = legs.entry(view.account.as_str().to_owned()).or_insert(0);
        if !view.qty.is_zero() {
            *n += 1;
        }
    }
    Ok(legs)
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

/// Waits until `url` answers 200.
async fn ready(http: &reqwest::Client, url: &str, what: &str) {
    wait_until(Duration::from_secs(60), what, || {
        let (http, url) = (http.clone(), url.to_owned());
        async move {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
}

/// A counter's value summed over its label sets (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The account name of a simulator account spec `NAME[:hedge][:bnb]`.
fn name_of(spec: &str) -> &str {
    spec.split(':').next().unwrap_or(spec)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
