//! `acctmon demo` as a newcomer runs it: the real nats-server, `acctmon-sim`, `acctmon-ingest` and
//! `acctmon-processor` binaries, checked through `acctmon status --json` against the simulator's
//! ground truth, then stopped by SIGINT or `--for` with nothing left behind.
//!
//! The demo looks for its sibling binaries next to the `acctmon` under test; a test of this crate
//! cannot name other crates' binaries, so [`siblings`] builds them into that directory first with the
//! cargo running the tests (a no-op when they are up to date).

// Integration tests: a panic with its message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;

/// Builds `acctmon-sim`, `acctmon-ingest` and `acctmon-processor` (once per test run) into the
/// directory of the `acctmon` under test, with its profile.
fn siblings() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let acctmon = assert_cmd::cargo::cargo_bin("acctmon");
        let dir = acctmon.parent().unwrap().to_path_buf();
        let profile = match dir.file_name().unwrap().to_str().unwrap() {
            "debug" => "dev".to_owned(),
            other => other.to_owned(),
        };
        let mut build = Command::new(env!("CARGO"));
        // Cargo describes the package under test in the environment of its tests; build scripts
        // watching those variables (ring's does) would rebuild, and so would the next `cargo test`.
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy().into_owned();
            let about_this_package = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
                .iter()
                .any(|p| var.starts_with(p))
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&var.as_str());
            if about_this_package {
                build.env_remove(&var);
            }
        }
        let status = build
            .args(["build", "--locked", "--bins", "--profile", &profile])
            .args([
                "-p",
                "acctmon-sim",
                "-p",
                "acctmon-ingest",
                "-p",
                "acctmon-processor",
            ])
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the sibling binaries failed");
        for name in ["acctmon-sim", "acctmon-ingest", "acctmon-processor"] {
            assert!(dir.join(name).is_file(), "{name} not built in {dir:?}");
        }
        dir
    })
}

/// A running `acctmon demo`, its output collected line by line.
struct Demo {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        siblings();
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("acctmon"))
            .arg("demo")
            .args(args)
            .env_remove("BINANCE_API_KEY")
            .env_remove("BINANCE_API_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Demo {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Reads output until a line contains `text`; returns that line.
    fn wait_line(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {timeout:?}; {}",
                    self.output()
                ),
            }
        }
    }

    /// Reads the rest of the output (until the demo closes it).
    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(line);
        }
    }

    /// The value after `label` on a line of the ready banner (`  NATS       nats://…`).
    fn banner(&self, label: &str) -> String {
        let prefix = format!("  {label} ");
        let line = self
            .seen
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {label} line; {}", self.output()));
        line[prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// Process ids of the children it started.
    fn pids(&self) -> Vec<(String, u32)> {
        self.seen
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix("started ")?;
                let (name, rest) = rest.split_once(" (pid ")?;
                let pid = rest.split_once(')')?.0.parse().ok()?;
                Some((name.to_owned(), pid))
            })
            .collect()
    }

    fn interrupt(&self) {
        let child = self.child.as_ref().unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::INT,
        )
        .unwrap();
    }

    /// Waits for the demo to exit; panics after `timeout`.
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                self.drain();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "demo still running after {timeout:?}; {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    /// A failed test still stops the demo cleanly, so that it stops its children.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::INT,
            );
            let deadline = Instant::now() + Duration::from_secs(40);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// After the demo exited: none of its children runs, and its temporary directory is gone.
fn assert_nothing_left(demo: &Demo, dir: &str) {
    let pids = demo.pids();
    assert!(pids.len() >= 3, "{pids:?}; {}", demo.output());
    for (name, pid) in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} (pid {pid}) is still there"
        );
    }
    assert!(!Path::new(dir).exists(), "{dir} was not removed");
    // No process anywhere still refers to the directory (a nats-server store, a config).
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(dir),
                "process {:?} still refers to {dir}",
                entry.file_name()
            );
        }
    }
}

fn status_json(nats: &str) -> Option<Value> {
    let out = Command::new(assert_cmd::cargo::cargo_bin("acctmon"))
        .args(["status", "--json", "--nats-url", nats])
        .env_remove("ACCTMON_NATS_URL")
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// `account → status entry` of an `acctmon status --json` document.
fn by_account(doc: &Value) -> BTreeMap<String, Value> {
    doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["account"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

fn open_legs(account: &Value) -> Vec<&Value> {
    account["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !dec(&p["qty"]).is_zero())
        .collect()
}

/// Differences between the simulator's ground truth and what `acctmon status --json` shows:
/// wallets, and every open position's quantity and entry price.
fn differences(truth: &Value, status: &Value) -> Vec<String> {
    let ours = by_account(status);
    let mut diffs = Vec::new();
    for acct in truth["accounts"].as_array().unwrap() {
        let name = acct["account"].as_str().unwrap();
        let Some(mine) = ours.get(name) else {
            diffs.push(format!("{name}: not in status"));
            continue;
        };
        for (asset, wallet) in acct["wallets"].as_object().unwrap() {
            let shown = &mine["summary"]["balances"][asset];
            if shown.as_str().map(|s| s.parse::<Decimal>().unwrap()) != Some(dec(wallet)) {
                diffs.push(format!(
                    "{name} wallet {asset}: status {shown}, exchange {wallet}"
                ));
            }
        }
        let mut exchange: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        for p in acct["positions"].as_array().unwrap() {
            if !dec(&p["qty"]).is_zero() {
                exchange.insert(
                    format!(
                        "{} {}",
                        p["symbol"].as_str().unwrap(),
                        p["side"].as_str().unwrap()
                    ),
                    (dec(&p["qty"]), dec(&p["entry_price"])),
                );
            }
        }
        // The exchange rounds its entry price (`ep`); the books keep the exact average. Compared at
        // the exchange's precision.
        let shown: BTreeMap<String, (Decimal, Decimal)> = open_legs(mine)
            .into_iter()
            .map(|p| {
                let key = format!(
                    "{} {}",
                    p["symbol"].as_str().unwrap(),
                    p["side"].as_str().unwrap()
                );
                let entry = dec(&p["entry_price"]);
                let entry = exchange
                    .get(&key)
                    .map_or(entry, |(_, theirs)| entry.round_dp(theirs.scale()));
                (key, (dec(&p["qty"]), entry))
            })
            .collect();
        if exchange != shown {
            diffs.push(format!(
                "{name} positions: status {shown:?}, exchange {exchange:?}"
            ));
        }
    }
    diffs
}

/// The simulator's admin API, from a synchronous test.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        Http {
            rt: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn get(&self, url: &str) -> Value {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.unwrap();
            assert!(r.status().is_success(), "GET {url}: {}", r.status());
            r.json().await.unwrap()
        })
    }

    fn post(&self, url: &str) {
        self.rt.block_on(async {
            let r = self.client.post(url).send().await.unwrap();
            assert!(r.status().is_success(), "POST {url}: {}", r.status());
        });
    }
}

fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting until {what}: {why}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

const ACCOUNTS: [&str; 3] = ["main", "hedged", "bnb-fees"];

#[test]
fn demo_runs_the_pipeline_shows_it_in_status_and_stops_cleanly_on_sigint() {
    let mut demo = Demo::start(&["--for", "10m"]);
    demo.wait_line("acctmon demo: ready", Duration::from_secs(300));
    demo.wait_line(
        "Stops by itself in 10m, or at Ctrl-C.",
        Duration::from_secs(10),
    );
    let nats = demo.banner("NATS");
    let sim = demo.banner("simulator");
    let dir = demo.banner("logs");
    assert!(Path::new(&dir).is_dir(), "{dir}");
    assert!(
        demo.seen
            .iter()
            .any(|l| l.contains(&format!("status --nats-url {nats}"))),
        "{}",
        demo.output()
    );

    // The generated activity reaches KV: every account has open positions, the hedge-mode account
    // has legs, the BNB account pays fees in BNB.
    let doc = wait_for(
        Duration::from_secs(120),
        "every account has positions",
        || {
            let doc = status_json(&nats).ok_or("status failed")?;
            let accounts = by_account(&doc);
            for name in ACCOUNTS {
                let a = accounts.get(name).ok_or(format!("{name} missing"))?;
                if open_legs(a).is_empty() {
                    return Err(format!("{name} has no open position"));
                }
            }
            let hedged = accounts["hedged"]["positions"].as_array().unwrap();
            if !hedged.iter().any(|p| p["side"] != "BOTH") {
                return Err("no hedge-mode leg".into());
            }
            let bnb: Decimal = accounts["bnb-fees"]["positions"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["commission_native"]["BNB"].as_str())
                .map(|s| s.parse::<Decimal>().unwrap())
                .sum();
            if bnb.is_zero() {
                return Err("no fee paid in BNB".into());
            }
            Ok(doc)
        },
    );
    assert_eq!(doc["accounts"][0]["summary"]["schema"], "pnl.summary/1");

    // Quiet the exchange; the books shown must then equal its ground truth exactly.
    let http = Http::new();
    http.post(&format!("{sim}/_sim/activity?per_sec=0"));
    let status = wait_for(
        Duration::from_secs(90),
        "status equals the exchange",
        || {
            let truth = http.get(&format!("{sim}/_sim/state"));
            let status = status_json(&nats).ok_or("status failed")?;
            let diffs = differences(&truth, &status);
            if diffs.is_empty() {
                Ok(status)
            } else {
                Err(format!("{diffs:#?}"))
            }
        },
    );

    // The table shows the same figures, verbatim.
    let table = Command::new(assert_cmd::cargo::cargo_bin("acctmon"))
        .args(["status", "--nats-url", &nats, "--account", "main"])
        .env_remove("ACCTMON_NATS_URL")
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    let main = &by_account(&status)["main"];
    let wallet = main["summary"]["balances"]["USDT"].as_str().unwrap();
    assert!(
        table.contains(&format!("  wallet       USDT {wallet}")),
        "{table}"
    );
    for leg in open_legs(main) {
        let symbol = leg["symbol"].as_str().unwrap();
        let cells: Vec<&str> = table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.len() == 10 && cells[0] == symbol && cells[1] == "BOTH")
            .unwrap_or_else(|| panic!("no row for {symbol} in {table}"));
        assert_eq!(cells[2], leg["qty"].as_str().unwrap(), "{cells:?}");
        assert_eq!(cells[3], leg["entry_price"].as_str().unwrap(), "{cells:?}");
        assert_eq!(cells[9], leg["realized_net"].as_str().unwrap(), "{cells:?}");
    }
    assert!(!table.contains("account hedged"), "{table}");

    // Ctrl-C: everything stops, nothing is left.
    demo.interrupt();
    let exit = demo.wait(Duration::from_secs(90));
    assert!(exit.success(), "{exit}; {}", demo.output());
    let out = demo.output();
    for name in [
        "acctmon-ingest",
        "acctmon-processor",
        "acctmon-sim",
        "nats-server",
    ] {
        assert!(
            out.contains(&format!("stopped {name} (exit status: 0)")),
            "{out}"
        );
    }
    assert!(out.contains(&format!("removed {dir}")), "{out}");
    assert_nothing_left(&demo, &dir);
}

#[test]
fn demo_uses_a_running_nats_server_and_stops_by_itself_after_for() {
    let nats = acctmon_testkit::NatsServer::start();
    let url = nats.url();
    let mut demo = Demo::start(&["--nats-url", &url, "--for", "4s"]);
    demo.wait_line("acctmon demo: ready", Duration::from_secs(300));
    let exit = demo.wait(Duration::from_secs(120));
    assert!(exit.success(), "{exit}; {}", demo.output());
    let out = demo.output();
    assert!(out.contains(&format!("using NATS at {url}")), "{out}");
    assert!(!out.contains("started nats-server"), "{out}");
    assert!(out.contains("--for elapsed, stopping"), "{out}");
    let dir = demo.banner("logs");
    assert_nothing_left(&demo, &dir);

    // The server it was given keeps what the pipeline wrote: every account's books.
    let doc = status_json(&url).expect("status on the server the demo used");
    let accounts = by_account(&doc);
    for name in ACCOUNTS {
        let a = accounts
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {doc}"));
        assert!(
            dec(&a["summary"]["balances"]["USDT"]) > Decimal::ZERO,
            "{a}"
        );
    }
}

#[test]
fn demo_without_its_sibling_binaries_says_how_to_build_them() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lonely = dir.path().join("acctmon");
    let acctmon = assert_cmd::cargo::cargo_bin("acctmon");
    if std::fs::hard_link(&acctmon, &lonely).is_err() {
        std::fs::copy(&acctmon, &lonely).unwrap();
    }
    let out = Command::new(&lonely)
        .args(["demo", "--for", "1s"])
        .env("PATH", "")
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("not found next to this executable")
            && err.contains("cargo build --release --workspace"),
        "{err}"
    );
}

#[test]
fn demo_refuses_half_a_key_pair() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("acctmon"))
        .args(["demo", "--for", "1s"])
        .env("BINANCE_API_KEY", "not-a-real-key")
        .env_remove("BINANCE_API_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("BINANCE_API_KEY is set but BINANCE_API_SECRET is not"),
        "{err}"
    );
    assert!(!err.contains("not-a-real-key"), "{err}");
}
