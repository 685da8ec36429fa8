//! `acctmon status` against a real nats-server: KV `accounts` and `positions` entries written as the
//! processor writes them (MessagePack, named fields), read back as a table and as JSON.

// Integration tests: a panic with its message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Output;

use acctmon_bus::pnl::{
    ACCOUNT_ENTRY_SCHEMA, AccountEntry, AccountPnl, POSITION_SCHEMA, PositionPnl, SUMMARY_SCHEMA,
};
use acctmon_bus::subject::{account_key, position_key};
use acctmon_domain::{Account, Asset, PositionSide, Symbol};
use assert_cmd::Command;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

fn status(url: &str, extra: &[&str]) -> Output {
    Command::cargo_bin("acctmon")
        .unwrap()
        .args(["status", "--nats-url", url])
        .args(extra)
        .env_remove("ACCTMON_NATS_URL")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The one line a failed command prints.
fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[allow(clippy::too_many_arguments)] // one argument per figure the test checks
fn summary(
    account: &str,
    hedge: bool,
    balances: &[(&str, &str)],
    equity: &str,
    unrealized: &str,
    margin_ratio: &str,
    daily: &str,
    realized: [&str; 4],
    drawdown: &str,
    seq: u64,
) -> AccountPnl {
    AccountPnl {
        schema: SUMMARY_SCHEMA.into(),
        account: Account::new(account).unwrap(),
        hedge_mode: Some(hedge),
        balances: balances.iter().map(|(a, v)| (asset(a), d(v))).collect(),
        wallet: Some(balances.iter().map(|(_, v)| d(v)).sum()),
        unrealized: d(unrealized),
        equity: Some(d(equity)),
        maint_margin: Some(d("41.5")),
        margin_ratio: Some(d(margin_ratio)),
        realized_gross: d(realized[0]),
        commission: d(realized[1]),
        funding: d(realized[2]),
        realized_net: d(realized[3]),
        daily_pnl: Some(d(daily)),
        drawdown: Some(d(drawdown)),
        max_drawdown: d("250.125"),
        open_positions: 1,
        applied_seq: seq,
        event_time: 1_767_225_600_000,
        updated_at: 1_767_225_600_250,
    }
}

/// A leg: qty, entry, mark, unrealized, gross, fees, funding, net.
fn leg(account: &str, symbol: &str, side: PositionSide, f: [&str; 8]) -> PositionPnl {
    PositionPnl {
        schema: POSITION_SCHEMA.into(),
        account: Account::new(account).unwrap(),
        symbol: Symbol::new(symbol).unwrap(),
        side,
        qty: d(f[0]),
        entry_price: d(f[1]),
        mark_price: Some(d(f[2])),
        unrealized: Some(d(f[3])),
        realized_gross: d(f[4]),
        commission: d(f[5]),
        commission_native: BTreeMap::new(),
        funding: d(f[6]),
        realized_net: d(f[7]),
        margin_asset: asset("USDT"),
        fills: 4,
        applied_seq: 17,
        event_time: 1_767_225_600_000,
        updated_at: 1_767_225_600_250,
    }
}

/// Writes the books of two accounts to KV as the processor does.
async fn write_books(url: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let accounts = js.get_key_value("accounts").await.unwrap();
    let positions = js.get_key_value("positions").await.unwrap();

    let alpha = summary(
        "alpha",
        false,
        &[("USDT", "100123.45678900")],
        "100135.78",
        "12.32321100",
        "0.00041443",
        "-17.0625",
        ["151.2", "3.0417", "-0.8812", "147.2771"],
        "0.5",
        17,
    );
    let mut beta = summary(
        "beta",
        true,
        &[("USDT", "99870.01"), ("BNB", "0.49871")],
        "99912.3",
        "-3.7",
        "0.0021",
        "8.75",
        ["-42", "1.125", "0", "-43.125"],
        "21.4",
        23,
    );
    beta.wallet = Some(d("100167.2"));
    for s in [alpha, beta] {
        let entry = AccountEntry {
            schema: ACCOUNT_ENTRY_SCHEMA.into(),
            applied_seq: s.applied_seq,
            event_time: s.event_time,
            // The books' own state: readers ignore it.
            state: serde_json::json!({"opaque": [1, 2, 3]}),
            summary: s,
        };
        accounts
            .put(
                account_key(&entry.summary.account),
                rmp_serde::to_vec_named(&entry).unwrap().into(),
            )
            .await
            .unwrap();
    }
    let mut bnb_leg = leg(
        "beta",
        "ETHUSDT",
        PositionSide::Short,
        [
            "-1.250", "3301.17", "3304.13", "-3.7", "-42", "1.125", "0", "-43.125",
        ],
    );
    bnb_leg.commission_native.insert(asset("BNB"), d("0.00191"));
    let legs = [
        leg(
            "alpha",
            "BTCUSDT",
            PositionSide::Both,
            [
                "0.013",
                "94387.2",
                "95335.1",
                "12.32321100",
                "151.2",
                "3.0417",
                "-0.8812",
                "147.2771",
            ],
        ),
        leg(
            "alpha",
            "SOLUSDT",
            PositionSide::Both,
            ["0", "0", "187.44", "0", "9.9", "0.31", "0", "9.59"],
        ),
        bnb_leg,
    ];
    for l in legs {
        positions
            .put(
                position_key(&l.account, &l.symbol, l.side),
                rmp_serde::to_vec_named(&l).unwrap().into(),
            )
            .await
            .unwrap();
    }
}

#[test]
fn status_prints_the_books_from_kv_exactly_as_stored() {
    let nats = acctmon_testkit::NatsServer::start();
    let url = nats.url();

    // Before the topology exists: one line saying what to run.
    let err = failure(&status(&url, &[]));
    assert!(
        err.contains("KV bucket `accounts` does not exist") && err.contains("acctmon init"),
        "{err}"
    );

    let init = Command::cargo_bin("acctmon")
        .unwrap()
        .args(["init", "--nats-url", &url])
        .output()
        .unwrap();
    assert!(init.status.success());
    assert_eq!(
        stdout(&status(&url, &[])),
        "no account in KV yet (is acctmon-processor running, and ingest feeding it?)\n"
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(write_books(&url));

    // The table: every figure as written, closed legs summed.
    let table = stdout(&status(&url, &[]));
    for expected in [
        "account alpha  (one-way mode, applied seq 17, updated 2026-01-01 00:00:00.250 UTC",
        "  wallet       USDT 100123.45678900  (total 100123.45678900)\n",
        "  equity       100135.78  (unrealized 12.32321100)\n",
        "  margin ratio 0.00041443  (maintenance margin 41.5)\n",
        "  daily P&L    -17.0625\n",
        "  drawdown     0.5  (max 250.125)\n",
        "  realized     gross 151.2  fees 3.0417  funding -0.8812  net 147.2771\n",
        "  SYMBOL   SIDE    QTY    ENTRY     MARK   UNREALIZED  GROSS    FEES  FUNDING       NET\n",
        "  BTCUSDT  BOTH  0.013  94387.2  95335.1  12.32321100  151.2  3.0417  -0.8812  147.2771\n",
        "  closed legs (qty 0): 1, realized net 9.59  (--all lists them)\n",
        "account beta  (hedge mode, applied seq 23,",
        "  wallet       BNB 0.49871  USDT 99870.01  (total 100167.2)\n",
        "  realized     gross -42  fees 1.125  funding 0  net -43.125\n",
        "  fees paid in BNB 0.00191  (valued in the fees above)\n",
        "  ETHUSDT  SHORT  -1.250  3301.17  3304.13        -3.7    -42  1.125        0  -43.125\n",
    ] {
        assert!(
            table.contains(expected),
            "missing {expected:?} in:\n{table}"
        );
    }
    assert!(!table.contains("SOLUSDT"), "{table}");
    assert!(
        table.find("account alpha").unwrap() < table.find("account beta").unwrap(),
        "{table}"
    );
    let all = stdout(&status(&url, &["--all"]));
    assert!(
        all.contains("  SOLUSDT  BOTH      0        0   187.44            0    9.9    0.31        0      9.59\n"),
        "{all}"
    );

    // --account filters.
    let beta = stdout(&status(&url, &["--account", "beta"]));
    assert!(
        beta.contains("account beta ") && beta.contains("ETHUSDT"),
        "{beta}"
    );
    assert!(
        !beta.contains("alpha") && !beta.contains("BTCUSDT"),
        "{beta}"
    );

    // JSON: one document, decimals as the strings written.
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&status(&url, &["--json"]))).unwrap();
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    let alpha = &accounts[0];
    assert_eq!(alpha["account"], "alpha");
    assert_eq!(alpha["applied_seq"], 17);
    assert_eq!(alpha["summary"]["schema"], "pnl.summary/1");
    assert_eq!(alpha["summary"]["balances"]["USDT"], "100123.45678900");
    assert_eq!(alpha["summary"]["unrealized"], "12.32321100");
    assert_eq!(alpha["summary"]["margin_ratio"], "0.00041443");
    assert_eq!(alpha["summary"]["daily_pnl"], "-17.0625");
    assert_eq!(alpha["summary"]["realized_net"], "147.2771");
    let legs = alpha["positions"].as_array().unwrap();
    assert_eq!(legs.len(), 2, "closed legs are in the JSON");
    assert_eq!(legs[0]["symbol"], "BTCUSDT");
    assert_eq!(legs[0]["qty"], "0.013");
    assert_eq!(legs[0]["entry_price"], "94387.2");
    assert_eq!(legs[0]["funding"], "-0.8812");
    assert_eq!(legs[1]["symbol"], "SOLUSDT");
    assert_eq!(legs[1]["qty"], "0");
    let beta = &accounts[1];
    assert_eq!(beta["summary"]["balances"]["BNB"], "0.49871");
    assert_eq!(beta["positions"][0]["side"], "SHORT");
    assert_eq!(beta["positions"][0]["qty"], "-1.250");
    assert_eq!(beta["positions"][0]["commission_native"]["BNB"], "0.00191");

    let only: serde_json::Value =
        serde_json::from_str(&stdout(&status(&url, &["--json", "--account", "alpha"]))).unwrap();
    let only = only["accounts"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["account"], "alpha");
    assert_eq!(only[0]["positions"].as_array().unwrap().len(), 2);

    // An account KV does not know.
    let err = failure(&status(&url, &["--account", "ghost"]));
    assert!(
        err.contains("account `ghost` is not known") && err.contains("known: alpha, beta"),
        "{err}"
    );
}

#[test]
fn status_says_when_nats_cannot_be_reached() {
    let port = acctmon_testkit::free_port();
    let err = failure(&status(&format!("nats://127.0.0.1:{port}"), &[]));
    assert!(
        err.contains("cannot reach NATS at nats://127.0.0.1:"),
        "{err}"
    );
}
