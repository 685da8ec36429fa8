//! The real `acctmon-ingest` binary against a real nats-server and the in-process simulator, and a
//! reader of what reached `EVENTS`.

#![allow(dead_code)] // each test file uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acctmon_bus::envelope::Envelope;
use acctmon_bus::subject::EventSubject;
use acctmon_domain::{Event, FillSource};
use acctmon_testkit::Sim;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures_util::StreamExt;

/// One `acctmon-ingest` process.
pub struct Ingest {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    /// `http://127.0.0.1:<admin port>`.
    pub admin: String,
    _dir: tempfile::TempDir,
}

/// The ingest configuration of `accounts` of `sim`, publishing to `nats`.
pub fn config(nats: &str, sim: &Sim, accounts: &[&str], admin_port: u16) -> String {
    let ws = sim.base.replacen("http://", "ws://", 1);
    let mut text = format!(
        r#"admin_listen = "127.0.0.1:{admin_port}"
log_filter = "info,acctmon_ingest=debug"
[nats]
urls = ["{nats}"]
[topology]
partitions = 4
[stream]
reconnect_min = "50ms"
reconnect_max = "500ms"
silence_timeout = "5s"
backfill_slack = "10s"
audit_every = "1s"
audit_grace = "500ms"
[marks]
check_every = "200ms"
"#
    );
    for a in accounts {
        text.push_str(&format!(
            r#"[[accounts]]
name = "{a}"
venue = "custom"
rest_url = "{}"
ws_url = "{ws}"
api_key = "{}"
api_secret = "{}"
"#,
            sim.base,
            Sim::api_key(a),
            Sim::api_secret(a)
        ));
    }
    text
}

impl Ingest {
    /// Starts the binary with `config` (a TOML text) and waits until /readyz says ready.
    pub async fn start(config: &str) -> Ingest {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.toml");
        std::fs::write(&path, config).unwrap();
        let admin = config
            .lines()
            .find_map(|l| l.strip_prefix("admin_listen = \""))
            .and_then(|l| l.strip_suffix('"'))
            .map(|a| format!("http://{a}"))
            .unwrap();
        let mut ingest = Ingest {
            child: None,
            config: path,
            log: dir.path().join("ingest.log"),
            admin,
            _dir: dir,
        };
        ingest.spawn().await;
        ingest
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_acctmon-ingest"))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Waits until /readyz answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.admin);
        let log = self.log.clone();
        let http = reqwest::Client::new();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Ok(r) = http.get(&url).send().await
                    && r.status().is_success()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            ready.is_ok(),
            "ingest not ready; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// SIGKILL, then start again with the same configuration.
    pub async fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn().await;
    }

    /// The process's metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        for _ in 0..200 {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        c.kill().unwrap();
        panic!("ingest did not stop on SIGTERM; log:\n{}", self.log());
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every message of `EVENTS`, in stream order: (subject, envelope).
pub async fn read_events(nats: &str) -> Vec<(String, Envelope)> {
    read_stored_events(nats)
        .await
        .into_iter()
        .map(|(subject, envelope, _)| (subject, envelope))
        .collect()
}

/// Every message of `EVENTS`, in stream order: (subject, envelope, when the stream stored it in Unix
/// ms).
pub async fn read_stored_events(nats: &str) -> Vec<(String, Envelope, i64)> {
    let client = async_nats::connect(nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("EVENTS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let info = m.info().unwrap();
        let seq = info.stream_sequence;
        let stored = i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap();
        let envelope = Envelope::decode(&m.payload).unwrap();
        out.push((m.subject.to_string(), envelope, stored));
        if seq >= last {
            break;
        }
    }
    out
}

/// The sim's trades of each account after its first snapshot on `EVENTS` (what came before is in the
/// snapshot): (symbol, id) in its order.
pub async fn sim_trades(
    sim: &Sim,
    events: &[(String, Envelope)],
) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut first_snapshot: BTreeMap<String, i64> = BTreeMap::new();
    for (_, e) in events {
        if let Event::Snapshot(s) = &e.event {
            first_snapshot
                .entry(s.account.as_str().to_owned())
                .or_insert(s.time.0);
        }
    }
    let state = sim.state().await;
    state["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let name = a["account"].as_str().unwrap();
            let after = first_snapshot.get(name).copied().unwrap_or(i64::MIN);
            let trades = a["trades"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["time"].as_i64().unwrap() > after)
                .map(|t| {
                    (
                        t["symbol"].as_str().unwrap().to_owned(),
                        t["id"].as_u64().unwrap(),
                    )
                })
                .collect();
            (a["account"].as_str().unwrap().to_owned(), trades)
        })
        .collect()
}

/// The complete fills (not `TRADE_LITE` notices) on `EVENTS` per account, in stream order, with
/// whether each came from the live stream.
pub fn stream_fills(events: &[(String, Envelope)]) -> BTreeMap<String, Vec<(String, u64, bool)>> {
    let mut out: BTreeMap<String, Vec<(String, u64, bool)>> = BTreeMap::new();
    for (subject, e) in events {
        if let Event::Fill(f) = &e.event
            && f.source != FillSource::TradeLite
        {
            let parsed = EventSubject::parse(subject).unwrap();
            assert_eq!(
                parsed.account, f.account,
                "fill on another account's subject"
            );
            out.entry(f.account.as_str().to_owned()).or_default().push((
                f.symbol.as_str().to_owned(),
                f.trade_id,
                f.source == FillSource::OrderUpdate,
            ));
        }
    }
    out
}

/// Waits until every sim trade of `accounts` is on `EVENTS`, then checks: each exactly once, none
/// foreign, and with `ordered` trade ids increasing per symbol (exchange order). Returns the number of fills checked.
pub async fn assert_exact_trade_list(
    nats: &str,
    sim: &Sim,
    accounts: &[&str],
    ordered: bool,
) -> usize {
    let expected = sim_trades(sim, &read_events(nats).await).await;
    // Everything the exchange made, including what the first snapshot already holds.
    let made = sim_trades(sim, &[]).await;
    let want: BTreeSet<(String, String, u64)> = accounts
        .iter()
        .flat_map(|a| {
            expected[*a]
                .iter()
                .map(move |(s, id)| (a.to_string(), s.clone(), *id))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let events = read_events(nats).await;
        let got: BTreeSet<(String, String, u64)> = stream_fills(&events)
            .into_iter()
            .flat_map(|(a, v)| v.into_iter().map(move |(s, id, _)| (a.clone(), s, id)))
            .collect();
        if want.is_subset(&got) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<_> = want.difference(&got).take(10).collect();
            panic!(
                "after 60s, {} trades are not on EVENTS, e.g. {missing:?}",
                want.difference(&got).count()
            );
        }
        // Each look reads the whole stream: not so often that the reading slows what it waits for.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = read_events(nats).await;
    for (_, e) in &events {
        if let Event::Stream(n) = &e.event
            && let acctmon_domain::StreamStatus::Undecodable { raw, error } = &n.status
        {
            panic!("undecodable on EVENTS: {error}: {raw}");
        }
    }
    let fills = stream_fills(&events);
    let mut checked = 0;
    for a in accounts {
        let got = fills.get(*a).cloned().unwrap_or_default();
        let mut unique = BTreeSet::new();
        for (symbol, id, _) in &got {
            let f = (symbol.clone(), *id);
            assert!(
                unique.insert(f.clone()),
                "{a}: fill {f:?} is on EVENTS twice"
            );
        }
        let want: BTreeSet<(String, u64)> = expected[*a].iter().cloned().collect();
        let missing: Vec<_> = want.difference(&unique).collect();
        let made: BTreeSet<(String, u64)> = made[*a].iter().cloned().collect();
        let extra: Vec<_> = unique.difference(&made).collect();
        assert!(
            missing.is_empty(),
            "{a}: {} fills missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(
            extra.is_empty(),
            "{a}: fills the exchange never made: {extra:?}"
        );
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        // Live fills come in exchange order. A fill recovered through REST (after a reconnect, or by the
        // audit when the socket lost it while staying open) can come after newer live ones.
        for (symbol, id, _) in got.iter().filter(|(_, _, live)| *live && ordered) {
            if let Some(prev) = last.insert(symbol, *id) {
                let how = |want: u64| {
                    events
                        .iter()
                        .filter_map(|(_, e)| match &e.event {
                            Event::Fill(f)
                                if f.trade_id == want && f.symbol.as_str() == *symbol =>
                            {
                                let order = f.order_id;
                                let updates: Vec<String> = events
                                    .iter()
                                    .filter_map(|(_, x)| match &x.event {
                                        Event::Order(o) if o.order_id == order => Some(format!(
                                            "{:?}/{}/{}@{}",
                                            o.status, o.execution, o.filled_qty, x.received_at
                                        )),
                                        _ => None,
                                    })
                                    .collect();
                                let fills: Vec<String> = events
                                    .iter()
                                    .filter_map(|(_, x)| match &x.event {
                                        Event::Fill(g) if g.order_id == order => Some(format!(
                                            "{:?}#{}/{}@{}",
                                            g.source, g.trade_id, g.qty, x.received_at
                                        )),
                                        _ => None,
                                    })
                                    .collect();
                                Some(format!(
                                    "{:?} T={} received={} order {order}: {updates:?} {fills:?}",
                                    f.source, f.time.0, e.received_at
                                ))
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                };
                assert!(
                    prev < *id,
                    "{a} {symbol}: trade {id} ({:?}) after {prev} ({:?}): not in exchange order",
                    how(*id),
                    how(prev)
                );
            }
        }
        checked += got.len();
    }
    // TRADE_LITE notices are never doubled either.
    let mut lite = BTreeSet::new();
    for (_, e) in &events {
        if let Event::Fill(f) = &e.event
            && f.source == FillSource::TradeLite
        {
            assert!(
                lite.insert((f.account.clone(), f.symbol.clone(), f.trade_id)),
                "a TRADE_LITE notice twice"
            );
        }
    }
    checked
}
