//! A real nats-server, the in-process simulator, ingest in-process, and `acctmon-processor` processes;
//! the books read back from KV and compared with the simulator's ground truth.

#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acctmon_bus::pnl::{AccountEntry, PositionPnl};
use acctmon_testkit::{NatsServer, Sim, free_port, wait_until};
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use tokio_util::sync::CancellationToken;

/// The accounts of every test: one-way, hedge mode, fees in BNB.
pub const ACCOUNTS: [&str; 3] = ["a", "b", "c"];

/// Partitions of the test topology (fewer than the default, so that replicas share them visibly).
pub const PARTITIONS: u32 = 4;

/// A simulator with the three accounts, quiet until told, funding every 8 s (time scale 3600).
pub async fn sim() -> Sim {
    Sim::start(&[
        "--fills-per-sec",
        "0",
        "--weight-limit",
        "1000000",
        "--time-scale",
        "3600",
        "--account",
        "a",
        "--account",
        "b:hedge",
        "--account",
        "c:bnb",
    ])
    .await
}

/// Ingest of the three accounts, in this process, until the token is cancelled.
pub struct Ingest {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Ingest's log lines of this test binary (ingest runs in-process), kept for a failure's report.
static INGEST_LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Writes into [`INGEST_LOG`].
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        INGEST_LOG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Routes ingest's log (its decisions about gaps, backfills and money movements) into [`INGEST_LOG`].
fn capture_ingest_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "acctmon_ingest=info,acctmon_ingest::account=debug,acctmon_bus=info",
            ))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// What ingest logged since the start of this test binary.
pub fn ingest_log() -> String {
    String::from_utf8_lossy(
        &INGEST_LOG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

/// Ingest's warnings and backfills so far (a gap it saw or thought it saw explains most discrepancies).
pub fn ingest_warnings() -> String {
    ingest_log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains("backfill"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The exchange's funding history of `account`, one line per payment: symbol, time, amount, tranId.
pub async fn funding_history(sim: &Sim, account: &str) -> String {
    let registry = prometheus::Registry::new();
    let rest = acctmon_ingest::rest::Rest::new(
        &sim.base,
        acctmon_service::config::Secret::new(Sim::api_key(account)),
        acctmon_service::config::Secret::new(Sim::api_secret(account)),
        60_000,
        acctmon_ingest::metrics::Metrics::register(&registry).unwrap(),
        account,
    )
    .unwrap();
    acctmon_ingest::account::income_since(&rest, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.income_type == "FUNDING_FEE")
        .map(|r| format!("{} {} {} {}\n", r.symbol, r.time, r.income, r.tran_id))
        .collect()
}

impl Ingest {
    /// Starts ingest against `sim` and `nats` and waits until its streams are up.
    pub async fn start(nats: &NatsServer, sim: &Sim) -> Ingest {
        capture_ingest_log();
        let ws = sim.base.replacen("http://", "ws://", 1);
        let mut config = acctmon_ingest::Config::default();
        config.nats.urls = vec![nats.url()];
        config.topology.partitions = PARTITIONS;
        config.accounts = ACCOUNTS
            .iter()
            .map(|a| acctmon_ingest::sim_account(a, &sim.base, &ws))
            .collect();
        config.marks.check_every = Duration::from_millis(200);
        config.stream.reconnect_min = Duration::from_millis(50);
        config.stream.reconnect_max = Duration::from_millis(500);
        config.stream.audit_every = Duration::from_secs(1);
        config.stream.audit_grace = Duration::from_millis(500);
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let readyz = format!("http://{}/readyz", admin.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(acctmon_ingest::run_with_listener(
            config,
            admin,
            stop.clone(),
        ));
        ready(&readyz, "ingest ready").await;
        Ingest { stop, task }
    }

    /// Stops ingest and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Waits until `url` answers 200.
pub async fn ready(url: &str, what: &str) {
    let http = reqwest::Client::new();
    wait_until(Duration::from_secs(30), what, || {
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

/// One `acctmon-processor` process.
pub struct Processor {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    /// `http://127.0.0.1:<admin port>`.
    pub admin: String,
    _dir: tempfile::TempDir,
}

impl Processor {
    /// Starts a replica named `instance` with `extra` TOML appended to its configuration.
    pub fn start(nats: &NatsServer, instance: &str, extra: &str) -> Processor {
        Self::start_with(nats, instance, "", extra)
    }

    /// Starts a replica named `instance` with top-level settings `root` and `extra` TOML appended.
    pub fn start_with(nats: &NatsServer, instance: &str, root: &str, extra: &str) -> Processor {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("processor.toml");
        std::fs::write(
            &config,
            format!(
                r#"admin_listen = "127.0.0.1:{port}"
log_filter = "info,acctmon_processor=debug"
instance = "{instance}"
{root}
[nats]
urls = ["{}"]
[topology]
partitions = {PARTITIONS}
lease_ttl = "3s"
ack_wait = "10s"
{extra}
"#,
                nats.url()
            ),
        )
        .unwrap();
        let log = dir.path().join("processor.log");
        let mut p = Processor {
            child: None,
            config,
            log,
            admin: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_acctmon-processor"))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until `/readyz` says ready.
    pub async fn ready(&self) {
        ready(&format!("{}/readyz", self.admin), "processor ready").await;
    }

    /// SIGKILL: no drain, no lease released.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again with the same configuration.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        c.wait().unwrap()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its counters of trouble and the last of its warnings, for a failing test to print.
    pub async fn explain(&self) -> String {
        let mut out = format!("processor {}:", self.admin);
        for name in [
            "acctmon_processor_consumer_resets_total",
            "acctmon_processor_cas_retries_total",
            "acctmon_processor_events_skipped_total",
            "acctmon_processor_events_applied_total",
        ] {
            let value = if self.child.is_some() {
                self.metric(name).await.to_string()
            } else {
                "(not running)".to_owned()
            };
            out.push_str(&format!("\n  {name} {value}"));
        }
        let log = self.log();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        for line in &warnings[warnings.len().saturating_sub(40)..] {
            out.push_str("\n  ");
            out.push_str(line);
        }
        out.push('\n');
        out
    }

    /// A metric's value summed over its label sets (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What KV holds for one account.
#[derive(Debug)]
pub struct KvBooks {
    /// Wallet balances.
    pub balances: BTreeMap<String, Decimal>,
    /// Realized gross, commission (margin asset) and funding of the summary.
    pub realized_gross: Decimal,
    pub commission: Decimal,
    pub funding: Decimal,
    /// `applied_seq` of the entry.
    pub applied_seq: u64,
    /// Position views by `<symbol>.<side>`.
    pub positions: BTreeMap<String, PositionPnl>,
}

/// Reads every account's books from KV `accounts` and `positions`.
pub async fn kv_books(js: &async_nats::jetstream::Context) -> BTreeMap<String, KvBooks> {
    let accounts = js.get_key_value("accounts").await.unwrap();
    let positions = js.get_key_value("positions").await.unwrap();
    let mut out = BTreeMap::new();
    for (key, stored) in acctmon_bus::kv::latest(&accounts, ">").await.unwrap() {
        let entry: AccountEntry<IgnoredAny> = rmp_serde::from_slice(&stored.value).unwrap();
        let s = entry.summary;
        out.insert(
            key.clone(),
            KvBooks {
                balances: s
                    .balances
                    .iter()
                    .map(|(a, d)| (a.as_str().to_owned(), *d))
                    .collect(),
                realized_gross: s.realized_gross,
                commission: s.commission,
                funding: s.funding,
                applied_seq: entry.applied_seq,
                positions: BTreeMap::new(),
            },
        );
    }
    for stored in acctmon_bus::kv::latest(&positions, ">")
        .await
        .unwrap()
        .into_values()
    {
        let view: PositionPnl = rmp_serde::from_slice(&stored.value).unwrap();
        if let Some(books) = out.get_mut(view.account.as_str()) {
            books.positions.insert(
                format!("{}.{}", view.symbol.as_str(), view.side.as_str()),
                view,
            );
        }
    }
    out
}

fn dec(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// Every difference between KV and the simulator's ground truth (empty: they agree).
pub fn differences(sim: &serde_json::Value, kv: &BTreeMap<String, KvBooks>) -> Vec<String> {
    let mut diffs = Vec::new();
    for acct in sim["accounts"].as_array().unwrap() {
        let name = acct["account"].as_str().unwrap();
        let Some(books) = kv.get(name) else {
            diffs.push(format!("{name}: no KV entry"));
            continue;
        };
        for (asset, wallet) in acct["wallets"].as_object().unwrap() {
            let ours = books.balances.get(asset).copied();
            if ours != Some(dec(wallet)) {
                diffs.push(format!(
                    "{name} wallet {asset}: KV {ours:?}, exchange {wallet}"
                ));
            }
        }
        for p in acct["positions"].as_array().unwrap() {
            let key = format!(
                "{}.{}",
                p["symbol"].as_str().unwrap(),
                p["side"].as_str().unwrap()
            );
            let (qty, entry) = (dec(&p["qty"]), dec(&p["entry_price"]));
            match books.positions.get(&key) {
                Some(v) if v.qty == qty && v.entry_price == entry => {}
                Some(v) => diffs.push(format!(
                    "{name} {key}: KV {} @ {}, exchange {qty} @ {entry}",
                    v.qty, v.entry_price
                )),
                None if qty.is_zero() => {}
                None => diffs.push(format!("{name} {key}: not in KV, exchange {qty}")),
            }
        }
        let gross = dec(&acct["realized_gross"]);
        if books.realized_gross != gross {
            diffs.push(format!(
                "{name} realized gross: KV {}, exchange {gross}",
                books.realized_gross
            ));
        }
        let funding = dec(&acct["funding"]);
        if books.funding != funding {
            diffs.push(format!(
                "{name} funding: KV {}, exchange {funding}",
                books.funding
            ));
        }
        // Fees in the margin asset are compared in it; fees in another asset (BNB) in that asset, as
        // the books also value them at marks into `commission`.
        let native = books
            .positions
            .values()
            .any(|p| !p.commission_native.is_empty());
        for (asset, fee) in acct["commission"].as_object().unwrap() {
            let ours: Decimal = if asset == "USDT" {
                if native {
                    continue;
                }
                books.commission
            } else {
                books
                    .positions
                    .values()
                    .filter_map(|p| p.commission_native.get(asset.as_str()).copied())
                    .sum()
            };
            if ours != dec(fee) {
                diffs.push(format!(
                    "{name} commission {asset}: KV {ours}, exchange {fee}"
                ));
            }
        }
    }
    diffs
}

/// Fills the simulator made, over every account.
pub fn sim_fills(state: &serde_json::Value) -> usize {
    state["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trades"].as_array().unwrap().len())
        .sum()
}

/// Waits until KV equals the simulator's ground truth; panics with the differences otherwise, and with
/// what the `processors` say about themselves (resets, retries, skips, their warnings).
pub async fn converge(nats: &NatsServer, sim: &Sim, within: Duration, processors: &[&Processor]) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let look = tokio::time::Instant::now();
        let state = sim.state().await;
        let sim_took = look.elapsed();
        let diffs = differences(&state, &kv_books(&js).await);
        if look.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "converge: one look at the books took {:?} (the simulator's state {sim_took:?})",
                look.elapsed()
            );
        }
        if diffs.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let mut told = String::new();
            for p in processors {
                told.push_str(&p.explain().await);
            }
            // Whether the live books are those of the events they claim to reflect.
            for account in ACCOUNTS {
                let rebuilt = replay(nats, account, true).await;
                let (live, found) = rebuilt.diff.expect("compared");
                told.push_str(&format!(
                    "replay --diff {account} up to {}: {} differences {:#?}\n",
                    live.applied_seq,
                    found.len(),
                    &found[..found.len().min(5)]
                ));
            }
            // What it takes to read the failure offline: the JetStream store (serve it with
            // `nats-server -js -sd <dir>`), the processors' logs and the exchange's state.
            let kept = tempfile::Builder::new()
                .prefix("acctmon-failed-books-")
                .tempdir()
                .map(tempfile::TempDir::keep);
            if let Ok(kept) = &kept {
                let _ = Command::new("cp")
                    .arg("-r")
                    .arg(nats.store_dir())
                    .arg(kept.join("store"))
                    .status();
                for (n, p) in processors.iter().enumerate() {
                    let _ = std::fs::write(kept.join(format!("processor-{n}.log")), p.log());
                }
                let _ = std::fs::write(kept.join("exchange-state.json"), state.to_string());
                let _ = std::fs::write(kept.join("ingest.log"), ingest_log());
                for account in ACCOUNTS {
                    let history = funding_history(sim, account).await;
                    let _ = std::fs::write(kept.join(format!("funding-{account}.txt")), history);
                }
                told.push_str(&format!("kept for reading offline: {}\n", kept.display()));
            }
            panic!(
                "KV books differ from the exchange after {within:?} ({} differences): {:#?}\n{told}",
                diffs.len(),
                &diffs[..diffs.len().min(20)]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Messages on a stream's subjects matching `filter`.
pub async fn count(js: &async_nats::jetstream::Context, stream: &str, filter: &str) -> u64 {
    acctmon_testkit::jetstream::count(js, stream, filter).await
}

/// Every RECON report on a subject matching `filter` (NATS wildcards), in stream order.
pub async fn recon_reports(
    js: &async_nats::jetstream::Context,
    filter: &str,
) -> Vec<acctmon_bus::pnl::ReconReport> {
    let stream = js.get_stream("RECON").await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await
            && subject_matches(filter, m.subject.as_str())
        {
            out.push(rmp_serde::from_slice(&m.payload).unwrap());
        }
    }
    out
}

/// Whether `subject` matches the NATS `filter` (`*` one token, `>` the rest).
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for f in filter.split('.') {
        match (f, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// `acctmon replay --account <account> [--diff]` against `nats`, without printing.
pub async fn replay(nats: &NatsServer, account: &str, diff: bool) -> acctmon_cli::replay::Rebuilt {
    use clap::Parser as _;
    let mut args = vec!["acctmon", "replay", "--account", account];
    if diff {
        args.push("--diff");
    }
    let url = nats.url();
    args.extend(["--nats-url", url.as_str()]);
    let cli = acctmon_cli::Cli::parse_from(args);
    let acctmon_cli::Command::Replay(args) = cli.command else {
        unreachable!("parsed as replay")
    };
    acctmon_cli::replay::rebuild(&args).await.unwrap()
}

/// What `EVENTS` held about a reported discrepancy around the sequence that revealed it, one line per
/// event: sequence, exchange time, time received, and the figures the books compare (for a failure
/// message). A position's symbol: its fills, rows and snapshots; a wallet's asset: its rows, money
/// movements, and the realized P&L and fees of fills.
pub async fn events_near(
    js: &async_nats::jetstream::Context,
    report: &acctmon_bus::pnl::ReconReport,
) -> String {
    use acctmon_domain::Event;
    let wallet = report.kind == "wallet";
    let name = report.subject.split('.').next().unwrap_or_default();
    let stream = js.get_stream("EVENTS").await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let before = if wallet { 800 } else { 3_000 };
    let (from, to) = (
        report.seq.saturating_sub(before).max(1),
        (report.seq + 300).min(last),
    );
    let mut out = format!("EVENTS {from}..={to} of {} about {name}:\n", report.account);
    for seq in from..=to {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let Ok(envelope) = acctmon_bus::envelope::Envelope::decode(&m.payload) else {
            continue;
        };
        let event = envelope.event;
        if event.account() != Some(&report.account) {
            continue;
        }
        let line = match &event {
            Event::Fill(f) if wallet => format!(
                "fill {} {} realized {:?} fee {:?} {:?}",
                f.symbol,
                f.trade_id,
                f.realized_pnl,
                f.commission.as_ref().map(|c| (c.amount, c.asset.as_str())),
                f.source
            ),
            Event::Fill(f) if f.symbol.as_str() == name => format!(
                "fill {} {:?} {:?} {} @ {} {:?}",
                f.trade_id, f.side, f.position_side, f.qty, f.price, f.source
            ),
            Event::Position(p) if !wallet && p.symbol.as_str() == name => {
                format!("position {:?} {} {}", p.side, p.qty, p.reason)
            }
            Event::Balance(b) if wallet && b.asset.as_str() == name => {
                format!("balance {} {}", b.wallet, b.reason)
            }
            Event::Funding(f) if wallet && f.asset.as_str() == name => {
                format!("funding {:?} {} tran {:?}", f.symbol, f.amount, f.tran_id)
            }
            Event::Transfer(t) if wallet && t.asset.as_str() == name => {
                format!("transfer {} {} tran {:?}", t.amount, t.reason, t.tran_id)
            }
            Event::Snapshot(s) => format!(
                "snapshot since {:?}: {:?}",
                s.since.map(|t| t.0),
                if wallet {
                    s.balances
                        .iter()
                        .filter(|b| b.asset.as_str() == name)
                        .map(|b| b.wallet.to_string())
                        .collect::<Vec<_>>()
                } else {
                    s.positions
                        .iter()
                        .filter(|p| p.symbol.as_str() == name)
                        .map(|p| format!("{:?} {} at {}", p.side, p.qty, p.update_time.0))
                        .collect::<Vec<_>>()
                }
            ),
            Event::Stream(n) => format!("stream {:?}", n.status),
            _ => continue,
        };
        out.push_str(&format!(
            "  {seq} {} received {}: {line}\n",
            event.time().0,
            envelope.received_at
        ));
    }
    out
}
