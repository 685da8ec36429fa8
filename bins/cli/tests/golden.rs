//! Golden replays: real and scenario frame sequences through `acctmon books` / `acctmon decode`,
//! compared with checked-in expected documents. Each expected document was checked by hand against the
//! figures the exchange reported in the input (see the comments per case).
//!
//! To regenerate after an intended change: `UPDATE_GOLDEN=1 cargo test -p acctmon-cli --test golden`,
//! then review the diff.

// Helpers of these tests panic on malformed fixtures: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    root().join("shared/binance/test_data").join(name)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn acctmon() -> Command {
    Command::cargo_bin("acctmon").expect("binary built")
}

/// Runs `acctmon <args>` with `stdin`, returns (exit code, stdout, stderr).
fn run(args: &[&str], stdin: Option<Vec<u8>>) -> (i32, String, String) {
    let mut cmd = acctmon();
    cmd.args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().expect("run acctmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn check_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(
        actual,
        &expected,
        "{name} differs from the golden document:\n{}",
        serde_json::to_string_pretty(actual).unwrap()
    );
}

fn books(input: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["books", input.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, None);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(&out).expect("books prints one JSON document")
}

/// Real maker fill, 2026: TRADE_LITE → ACCOUNT_UPDATE → ORDER_TRADE_UPDATE. Binance reported
/// `pa 0.02`, `ep 2317.3`, `rp 0`, fee 0 and `wb 37.87866827`: the books must show exactly that, with
/// no discrepancy although the position row came before the fill's order update.
#[test]
fn real_usdc_fill_sequence_gives_binance_figures() {
    let v = books(
        &fixture("user_stream_fill_sequence.real_usdc_2026.json"),
        &[],
    );
    assert_eq!(v["positions"][0]["qty"], "0.02");
    assert_eq!(v["positions"][0]["entry_price"], "2317.3");
    assert_eq!(v["balances"][0]["wallet"], "37.87866827");
    assert_eq!(v["discrepancies"], Value::Array(vec![]));
    check_golden("user_stream_fill_sequence.real_usdc_2026.json", &v);
}

/// Real taker market order, 2026: TRADE_LITE → ORDER_TRADE_UPDATE(NEW) → ACCOUNT_UPDATE. Binance
/// reported `pa 0.1`, `ep 80.19`. The capture has no ORDER_TRADE_UPDATE of the fill, so the fill comes
/// from TRADE_LITE alone (one-way mode learned from the position row).
#[test]
fn real_market_order_sequence_gives_binance_figures() {
    let v = books(
        &fixture("user_stream_market_order_sequence.real_2026.json"),
        &[],
    );
    assert_eq!(v["positions"][0]["qty"], "0.1");
    assert_eq!(v["positions"][0]["entry_price"], "80.19");
    assert_eq!(v["discrepancies"], Value::Array(vec![]));
    check_golden("user_stream_market_order_sequence.real_2026.json", &v);
}

/// Real algo (stop-market) trigger, 2025: the fill comes from the spawned order's
/// ORDER_TRADE_UPDATE: BUY 0.05 @ 3113.87, fee 0.07784675 USDT, `rp 0`.
#[test]
fn real_algo_trigger_sequence_books_the_spawned_fill() {
    let v = books(&fixture("algo_trigger_sequence.real_2025.json"), &[]);
    let p = &v["positions"][0];
    assert_eq!(
        (p["qty"].as_str(), p["entry_price"].as_str()),
        (Some("0.05"), Some("3113.87"))
    );
    assert_eq!(p["commission"], "0.07784675");
    assert_eq!(p["realized_net"], "-0.07784675");
    check_golden("algo_trigger_sequence.real_2025.json", &v);
}

/// A real bot's log from July 2023, in time order, with gaps: the books cannot know what happened
/// between these events, and say so. The BTCUSDT short of -0.001 is adopted from the exchange; the
/// XEMUSDT sell realized -0.3623 on the exchange (it closed a long we never saw) and the wallet moved
/// by more than the rebate in between. Every disagreement is reported with both figures.
#[test]
fn real_log_with_gaps_reports_every_disagreement() {
    let parts = [
        "account_update.real_order_oneway_2023.json",
        "account_update.real_admin_deposit_2023.json",
        "account_update.real_position_closed_2023.json",
        "order_trade_update.real_trade_filled_2023.json",
    ];
    let mut input = String::new();
    for p in parts {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(fixture(p)).unwrap()).unwrap();
        input.push_str(&serde_json::to_string(&v).unwrap());
        input.push('\n');
    }
    let (code, out, err) = run(&["books", "-"], Some(input.into_bytes()));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = v["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    // Rows are judged once decidable: the wallet rows when the next wallet change (the XEM fill)
    // arrives, the BTCUSDT row at the end of the input (no later BTCUSDT fill ever came).
    assert_eq!(kinds, ["realized", "wallet", "wallet", "position"]);
    assert_eq!(v["discrepancies"][0]["exchange"], "-0.3623");
    assert_eq!(v["discrepancies"][3]["exchange"], "-0.001");
    check_golden("real_log_2023.json", &v);
}

/// A hand-computed scenario in Binance's wire format: open 1 @ 50000 (fee 25), add 1 @ 52000 (fee
/// 0.04 BNB at a BNB mark of 600 = 24, position row before the fill), funding -10.3 naming the symbol,
/// sell 3 @ 53000 (TRADE_LITE first; flip: rp 4000, fee 79.5 split 53 / 26.5), buy 1 @ 52000 (rp 1000,
/// fee 26, repeated after a "reconnect"), sell 0.5 @ 52500 the next day (fee 13.125), mark 52000.
/// Expected: -0.5 @ 52500, unrealized 250, gross 5000, commission 167.625, funding -10.3,
/// net 4822.075, two winning cycles (3887.7 and 947.5), USDT 14846.075, BNB 0.96, no discrepancy.
#[test]
fn scenario_one_way_matches_the_hand_computation() {
    let v = books(&data("scenario_oneway.ndjson"), &["--details"]);
    let p = &v["positions"][0];
    for (k, want) in [
        ("qty", "-0.5"),
        ("entry_price", "52500"),
        ("unrealized", "250"),
        ("realized_gross", "5000"),
        ("commission", "167.625"),
        ("funding", "-10.3"),
        ("realized_net", "4822.075"),
    ] {
        assert_eq!(p[k], want, "{k}");
    }
    assert_eq!(v["stats"]["cycles"], 2);
    assert_eq!(v["stats"]["gross_profit"], "4835.2");
    assert_eq!(v["cycles"][0]["commission"], "102");
    assert_eq!(v["cycles"][1]["commission"], "52.5");
    assert_eq!(v["discrepancies"], Value::Array(vec![]));
    check_golden("scenario_oneway.json", &v);
}

/// The same scenario with a silent drift on the exchange (wallet 0.075 lower, position -0.6):
/// both are reported with our figure and the exchange's, and the books adopt the exchange's.
#[test]
fn scenario_drift_is_reported_and_adopted() {
    let v = books(&data("scenario_drift.ndjson"), &[]);
    assert_eq!(v["positions"][0]["qty"], "-0.6");
    assert_eq!(v["balances"][1]["wallet"], "14846");
    check_golden("scenario_drift.json", &v);
}

#[test]
fn day_boundary_changes_daily_pnl() {
    let utc = books(&data("scenario_oneway.ndjson"), &["--details"]);
    let late = books(
        &data("scenario_oneway.ndjson"),
        &["--details", "--day-boundary", "05:00"],
    );
    assert_eq!(utc["accounts"][0]["daily_pnl"], "236.875");
    // With days starting at 05:00 UTC, the last day runs from Jan 1 05:00 and includes fills 3 and 4.
    assert_ne!(
        utc["accounts"][0]["daily_pnl"],
        late["accounts"][0]["daily_pnl"]
    );
    assert_eq!(
        utc["positions"], late["positions"],
        "the boundary moves nothing else"
    );
}

#[test]
fn decode_prints_normalized_events_as_json_lines() {
    let (code, out, err) = run(
        &[
            "decode",
            fixture("user_stream_fill_sequence.real_usdc_2026.json")
                .to_str()
                .unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["fill", "position", "balance", "fill", "order"]);
    assert_eq!(events[0]["source"], "trade_lite");
    assert_eq!(events[3]["trade_id"], 702423109);
    check_golden(
        "decode_user_stream_fill_sequence.json",
        &Value::Array(events),
    );
}
