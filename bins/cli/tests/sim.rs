//! `acctmon books` fed a simulated history: every account's user-data events (and the mark prices)
//! from `acctmon-sim`'s exchange, with limit and market orders, partial fills, cancels, funding,
//! transfers, leverage changes, fees in USDT and in BNB and both arrival orders of a fill's reports.
//! The report must show zero discrepancies and exactly the simulator's positions, wallets and
//! realized figures.

// Helpers of these tests panic on unexpected output: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use acctmon_sim::activity::Activity;
use acctmon_sim::exchange::{AccountSpec, Exchange, ExchangeConfig};
use assert_cmd::Command;
use rust_decimal::Decimal;
use serde_json::Value;

fn spec(name: &str, hedge: bool, fees_in_bnb: bool) -> AccountSpec {
    AccountSpec {
        name: name.into(),
        hedge,
        fees_in_bnb,
    }
}

/// Per account, the NDJSON a user stream plus the mark-price stream would have delivered.
fn simulate(seed: u64, steps: usize) -> (Exchange, Vec<String>) {
    let accounts = vec![
        spec("main", false, false),
        spec("hedged", true, false),
        spec("bnb-fees", false, true),
    ];
    let mut x = Exchange::new(
        ExchangeConfig {
            seed,
            funding_interval_ms: 600_000,
            ..ExchangeConfig::default()
        },
        accounts,
    );
    let mut time = 1_767_225_600_000i64;
    let mut logs = vec![String::new(); 3];
    let (mut activity, marks) = Activity::start(&mut x, time);
    let deliver = |x: &mut Exchange, marks: Vec<String>, logs: &mut Vec<String>| {
        for (a, log) in logs.iter_mut().enumerate() {
            for m in &marks {
                log.push_str(m);
                log.push('\n');
            }
            for e in x.take_events(a) {
                log.push_str(&e);
                log.push('\n');
            }
        }
    };
    deliver(&mut x, marks, &mut logs);
    for _ in 0..steps {
        time += 1 + x.rng().below(5_000) as i64;
        let marks = activity.step(&mut x, time);
        deliver(&mut x, marks, &mut logs);
    }
    (x, logs)
}

fn d(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn acctmon_books_on_a_simulated_history_equals_the_simulators_ground_truth() {
    let (x, logs) = simulate(11, 2_000);
    let state = x.state();
    for (i, log) in logs.iter().enumerate() {
        let truth = &state["accounts"][i];
        let name = truth["account"].as_str().unwrap();
        let mut file = scratch_file(name);
        file.1.write_all(log.as_bytes()).unwrap();
        let out = Command::cargo_bin("acctmon")
            .unwrap()
            .args(["books", file.0.to_str().unwrap(), "--account", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["discrepancies"], serde_json::json!([]), "{name}");
        // Positions: quantity and entry exactly, per leg; realized gross summed.
        let ours: Vec<&Value> = report["positions"].as_array().unwrap().iter().collect();
        let mut gross = Decimal::ZERO;
        for p in truth["positions"].as_array().unwrap() {
            let found = ours
                .iter()
                .find(|o| o["symbol"] == p["symbol"] && o["side"] == p["side"]);
            let qty = d(&p["qty"]);
            match found {
                Some(o) => {
                    assert_eq!(d(&o["qty"]), qty, "{name} {p}");
                    if !qty.is_zero() {
                        assert_eq!(d(&o["entry_price"]), d(&p["entry_price"]), "{name} {p}");
                    }
                    gross += d(&o["realized_gross"]);
                }
                None => assert!(qty.is_zero(), "{name}: missing {p}"),
            }
        }
        assert_eq!(gross, d(&truth["realized_gross"]), "{name} realized gross");
        for (asset, wallet) in truth["wallets"].as_object().unwrap() {
            let row = report["balances"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["asset"] == asset.as_str())
                .unwrap_or_else(|| panic!("{name}: no {asset} balance"));
            assert_eq!(d(&row["wallet"]), d(wallet), "{name} {asset}");
        }
        let funding: Decimal = ours.iter().map(|o| d(&o["funding"])).sum();
        assert_eq!(funding, d(&truth["funding"]), "{name} funding");
        assert!(
            !funding.is_zero(),
            "{name}: the history must include funding"
        );
    }
}

/// A file in the test's scratch directory under `target/` (overwritten by the next run).
fn scratch_file(name: &str) -> (std::path::PathBuf, std::fs::File) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("sim-{name}.ndjson"));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}
