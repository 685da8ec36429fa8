//! The public subjects read by a consumer in another language: a Python client (`nats-py` and
//! `msgpack`, pinned in `scripts/python-requirements.txt`; the script is `tests/python/pnl_client.py`)
//! subscribes to `trading.pnl.>` and `trading.recon.>` while a real nats-server, the simulator, ingest
//! and `acctmon-processor` run. It decodes every message by its `Content-Type`, checks each field the
//! README documents (presence, type, no undocumented field) and the figures against each other, and
//! prints what it saw as JSON. Here that JSON is checked, and what Python decoded is compared with the
//! same KV entries read from Rust, decimal string for decimal string. Once with the default encoding
//! (MessagePack), once with `pnl.encoding = "json"`.
//!
//! Needs `python3` with the `venv` module, and PyPI the first time (`scripts/python-env.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use acctmon_bus::pnl::{AccountEntry, PositionPnl};
use acctmon_testkit::{NatsServer, Sim};
use futures_util::StreamExt as _;
use serde::de::IgnoredAny;
use serde_json::Value;
use support::*;

/// One test at a time: each runs a server, the simulator, ingest, a processor and Python on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// From the stop message to the client's JSON on stdout.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Prefix of the subjects the test and the client coordinate on (`.ready`, `.stop`).
const CONTROL: &str = "pnl-client";

/// `pnl_client.py`, running.
struct PyClient(acctmon_testkit::python::Captured);

impl PyClient {
    fn start(python: &Path, nats_url: &str) -> PyClient {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pnl_client.py");
        // -I: no user site-packages or PYTHON* variables; -B: no __pycache__ beside the script.
        let mut command = Command::new(python);
        command
            .arg("-I")
            .arg("-B")
            .arg(&script)
            .arg(nats_url)
            .arg(CONTROL);
        PyClient(acctmon_testkit::python::Captured::spawn(
            command,
            "pnl_client.py",
        ))
    }

    /// Waits for the client to exit (after the stop message); its one JSON object.
    fn finish(self) -> Value {
        let out = self.0.wait(CLIENT_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "pnl_client.py failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("pnl_client.py printed no JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
        })
    }
}

/// Runs `f` off the runtime; its panic is the test's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Generated activity, two bursts of market orders, funding, and a position changed behind the
/// books' back (found on the next row of that position, reported on RECON).
async fn trade(sim: &Sim) {
    sim.admin("activity?per_sec=100").await;
    sim.admin("burst?orders=150").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.admin("drift?account=a&symbol=BTCUSDT&qty=0.001").await;
    sim.admin("funding").await;
    sim.admin("burst?orders=150").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.admin("activity?per_sec=0").await;
}

/// Every entry of KV `positions`: as the Rust type, and as a generic value (every field as stored).
async fn kv_positions(js: &async_nats::jetstream::Context) -> Vec<(PositionPnl, Value)> {
    let kv = js.get_key_value("positions").await.unwrap();
    let mut out = Vec::new();
    for (_, entry) in acctmon_bus::kv::latest(&kv, ">").await.unwrap() {
        let bytes = entry.value;
        out.push((
            rmp_serde::from_slice(&bytes).unwrap(),
            rmp_serde::from_slice(&bytes).unwrap(),
        ));
    }
    out
}

/// Decodes a message by its `Content-Type`.
fn decode(headers: &async_nats::HeaderMap, payload: &[u8]) -> Value {
    match headers.get("Content-Type").map(|v| v.as_str()) {
        Some("application/json") => serde_json::from_slice(payload).unwrap(),
        Some("application/msgpack") => rmp_serde::from_slice(payload).unwrap(),
        other => panic!("Content-Type {other:?}"),
    }
}

/// Waits until the `PNL` stream holds, for every KV entry in `positions`, its publication (or a
/// later one); panics after 30 s with the entries that were never published.
async fn published(js: &async_nats::jetstream::Context, positions: &[(PositionPnl, Value)]) {
    let stream = js.get_stream("PNL").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut missing = Vec::new();
        for (typed, stored) in positions {
            let subject =
                acctmon_bus::subject::pnl_position(&typed.account, &typed.symbol, typed.side);
            let last = match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => decode(&m.headers, &m.payload)["updated_at"].as_i64(),
                Err(_) => None,
            };
            if last < stored["updated_at"].as_i64() {
                missing.push(subject);
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "KV entries whose P&L message is not on PNL after 30 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The summary of every KV `accounts` entry (read as Rust's type, then as a generic value).
async fn kv_summaries(js: &async_nats::jetstream::Context) -> BTreeMap<String, Value> {
    let kv = js.get_key_value("accounts").await.unwrap();
    let mut out = BTreeMap::new();
    for (key, stored) in acctmon_bus::kv::latest(&kv, ">").await.unwrap() {
        let entry: AccountEntry<IgnoredAny> = rmp_serde::from_slice(&stored.value).unwrap();
        out.insert(key, serde_json::to_value(&entry.summary).unwrap());
    }
    out
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn count_of(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or(0)
}

/// The whole run, with `extra` TOML in the processor's configuration; `content_type` is what the
/// P&L messages must carry.
async fn python_reads_the_public_subjects(extra: &str, content_type: &str) {
    let _serial = SERIAL.lock().await;
    let python = blocking(acctmon_testkit::python::python_venv).await;
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&nats, &sim).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());

    // The client subscribes before the processor starts: it sees every message ever published.
    let mut ready = client.subscribe(format!("{CONTROL}.ready")).await.unwrap();
    client.flush().await.unwrap();
    let py = PyClient::start(&python, &nats.url());
    if tokio::time::timeout(Duration::from_secs(30), ready.next())
        .await
        .is_err()
    {
        let out = blocking(move || py.finish()).await;
        panic!("pnl_client.py never said ready: {out}");
    }
    let processor = Processor::start(&nats, "one", extra);
    processor.ready().await;

    trade(&sim).await;
    converge(&nats, &sim, Duration::from_secs(60), &[&processor]).await;
    let positions = kv_positions(&js).await;
    let summaries = kv_summaries(&js).await;
    // The processor writes KV, then publishes: once PNL holds the publication of every entry read,
    // the server has also passed it to the client's connection, ahead of the stop message.
    published(&js, &positions).await;
    let pnl_before = count(&js, "PNL", "trading.pnl.>").await;
    let recon_before = count(&js, "RECON", "trading.recon.>").await;
    client
        .publish(format!("{CONTROL}.stop"), "".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let out = blocking(move || py.finish()).await;
    let pnl_after = count(&js, "PNL", "trading.pnl.>").await;
    let recon_after = count(&js, "RECON", "trading.recon.>").await;

    let counts = &out["counts"];
    let checks = &out["checks"];
    eprintln!(
        "python client: counts {counts}, checks {checks}, content types {}, recon {}",
        out["content_types"], out["recon"]
    );
    assert_eq!(
        out["error_count"], 0,
        "the Python client found messages that contradict the README: {:#}",
        out["errors"]
    );

    // Every message reached the client, once, in the configured encoding.
    let (n_pos, n_sum) = (count_of(counts, "positions"), count_of(counts, "summaries"));
    let n_recon = count_of(counts, "recon");
    assert!(n_pos >= 100, "only {n_pos} position messages");
    assert!(n_sum >= 30, "only {n_sum} summaries");
    assert!(
        (pnl_before..=pnl_after).contains(&(n_pos + n_sum)),
        "the client decoded {} distinct P&L messages; the PNL stream held {pnl_before} before the stop \
         and {pnl_after} after",
        n_pos + n_sum
    );
    assert!(
        (recon_before..=recon_after).contains(&n_recon),
        "the client decoded {n_recon} reports; RECON held {recon_before} before the stop and \
         {recon_after} after"
    );
    let pnl_types = out["content_types"]["pnl"].as_object().unwrap();
    assert_eq!(
        pnl_types.keys().collect::<Vec<_>>(),
        [content_type],
        "P&L Content-Type headers: {pnl_types:?}"
    );
    assert_eq!(
        pnl_types[content_type].as_u64().unwrap(),
        n_pos + n_sum + count_of(counts, "duplicates")
    );
    let recon_types = out["content_types"]["recon"].as_object().unwrap();
    assert!(
        recon_types.keys().all(|k| k == "application/msgpack"),
        "RECON Content-Type headers: {recon_types:?}"
    );

    // The consistency checks ran, on many messages.
    assert_eq!(count_of(checks, "realized_net"), n_pos);
    assert!(count_of(checks, "with_funding") > 0, "no funding: {checks}");
    assert!(count_of(checks, "unrealized") >= 50, "checks: {checks}");
    assert!(count_of(checks, "equity") >= 30, "checks: {checks}");
    assert_eq!(count_of(checks, "summary_vs_legs"), n_sum);

    // One-way, hedge mode, fees in BNB: as the accounts are configured.
    assert_eq!(strings(&out["sides"]["a"]), ["BOTH"]);
    assert_eq!(strings(&out["sides"]["c"]), ["BOTH"]);
    assert_eq!(strings(&out["sides"]["b"]), ["LONG", "SHORT"]);
    assert_eq!(strings(&out["native_assets"]["c"]), ["BNB"]);
    assert!(strings(&out["native_assets"]["a"]).is_empty());
    for (account, hedge) in [("a", false), ("b", true), ("c", false)] {
        assert_eq!(out["summaries"][account]["hedge_mode"], hedge, "{account}");
    }

    // The drifted position was found and reported.
    let reports = out["recon"].as_array().unwrap();
    assert!(
        reports
            .iter()
            .any(|r| r["account"] == "a" && r["kind"] == "position"),
        "no position report for account a among {reports:#?}"
    );

    // What Python decoded is what KV holds, to the last digit.
    assert!(!positions.is_empty());
    for (typed, stored) in &positions {
        let key = format!(
            "{}.{}.{}",
            typed.account.as_str(),
            typed.symbol.as_str(),
            typed.side.as_str()
        );
        let recent = out["recent_positions"][&key]
            .as_array()
            .unwrap_or_else(|| panic!("the client saw no message for {key}"));
        let seen = recent
            .iter()
            .find(|p| p["updated_at"] == stored["updated_at"])
            .unwrap_or_else(|| {
                panic!(
                    "KV {key} (updated_at {}) is not among the {} messages the client saw",
                    stored["updated_at"],
                    recent.len()
                )
            });
        assert_eq!(seen, stored, "{key}: Python's decoding differs from KV");
        let figures = [
            ("qty", Some(typed.qty)),
            ("entry_price", Some(typed.entry_price)),
            ("mark_price", typed.mark_price),
            ("unrealized", typed.unrealized),
            ("realized_gross", Some(typed.realized_gross)),
            ("commission", Some(typed.commission)),
            ("funding", Some(typed.funding)),
            ("realized_net", Some(typed.realized_net)),
        ];
        for (name, ours) in figures {
            assert_eq!(
                seen[name].as_str(),
                ours.map(|d| d.to_string()).as_deref(),
                "{key} {name}"
            );
        }
        for (asset, fee) in &typed.commission_native {
            assert_eq!(
                seen["commission_native"][asset.as_str()].as_str(),
                Some(fee.to_string().as_str()),
                "{key} commission_native {}",
                asset.as_str()
            );
        }
        assert_eq!(seen["fills"].as_u64(), Some(typed.fills), "{key} fills");
        assert_eq!(seen["applied_seq"].as_u64(), Some(typed.applied_seq));
    }
    assert!(
        positions.iter().any(|(p, _)| !p.qty.is_zero()),
        "no open position to compare"
    );

    // The summaries Python decoded agree with KV `accounts` (which agreed with the exchange above).
    for account in ACCOUNTS {
        let stored = &summaries[account];
        let recent = out["recent_summaries"][account].as_array().unwrap();
        let seen = recent
            .iter()
            .find(|s| s["applied_seq"] == stored["applied_seq"])
            .unwrap_or_else(|| {
                panic!(
                    "{account}: no summary at applied_seq {} among the client's last {}",
                    stored["applied_seq"],
                    recent.len()
                )
            });
        for field in [
            "schema",
            "account",
            "hedge_mode",
            "balances",
            "realized_gross",
            "commission",
            "funding",
            "realized_net",
            "open_positions",
            "event_time",
        ] {
            assert_eq!(seen[field], stored[field], "{account} summary {field}");
        }
    }
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_decodes_msgpack_pnl_and_recon() {
    python_reads_the_public_subjects("", "application/msgpack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_decodes_json_pnl_when_configured() {
    python_reads_the_public_subjects("[pnl]\nencoding = \"json\"\n", "application/json").await;
}
