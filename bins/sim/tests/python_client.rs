//! Wire compatibility with a Binance client nobody here wrote: Binance's own Python connector
//! (`binance-futures-connector`, pinned in `scripts/python-requirements.txt`) trades against the
//! simulator over loopback, and what it reads must equal the simulator's own state.
//!
//! Needs `python3` with the `venv` module, and PyPI the first time (`scripts/python-env.sh`
//! creates the virtualenv under `target/` once and reuses it).

// Helpers of these tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use acctmon_sim::server::{Config, run};
use acctmon_testkit::python::{python_venv as python, run_with_timeout};
use rust_decimal::Decimal;
use serde_json::Value;

/// From start to the connector script's one line of JSON.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the connector script against `base`; its one line of JSON.
fn client_compat(python: &Path, base: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_compat.py");
    let mut command = Command::new(python);
    // -I: no user site-packages or PYTHON* variables; -B: no __pycache__ beside the script.
    command
        .arg("-I")
        .arg("-B")
        .arg(&script)
        .arg(base)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let out = run_with_timeout(command, "client_compat.py", CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Binance connector failed against the simulator ({}).\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client_compat.py printed no JSON object ({e}):\n{stdout}"))
}

/// Runs `f` off the runtime (the server keeps serving meanwhile); its panic is the test's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a decimal string"))
        .parse()
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn ids(v: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn binance_python_connector_reads_what_the_simulator_holds() {
    let python = blocking(python).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::from_args([
        "--listen",
        &addr.to_string(),
        "--fills-per-sec",
        "0",
        "--account",
        "main",
    ])
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(config, listener, async {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");

    let client = {
        let base = base.clone();
        blocking(move || client_compat(&python, &base)).await
    };
    println!("connector read: {client}");

    let state: Value = reqwest::get(format!("{base}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let main = state["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == "main")
        .expect("account main in /_sim/state");

    // Nothing trades but the connector: every BTCUSDT trade is a fill of its market order.
    let truth_trades: Vec<&Value> = main["trades"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["symbol"] == "BTCUSDT")
        .collect();
    let truth_ids = ids(&Value::from(
        truth_trades
            .iter()
            .map(|t| t["id"].clone())
            .collect::<Vec<_>>(),
    ));
    assert!(!truth_ids.is_empty(), "the market order made no trade");
    assert_eq!(ids(&client["trade_ids"]), truth_ids, "userTrades ids");
    assert_eq!(
        ids(&client["market_trade_ids"]),
        truth_ids,
        "fills of the order"
    );
    assert_eq!(client["trade_count"], truth_ids.len());
    assert!(
        truth_trades
            .iter()
            .all(|t| t["orderId"] == client["market_order_id"])
    );
    let filled: Decimal = truth_trades.iter().map(|t| dec(&t["qty"])).sum();
    assert_eq!(dec(&client["market_executed_qty"]), filled, "executedQty");

    let position = main["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "BTCUSDT" && p["side"] == "BOTH")
        .expect("a BTCUSDT position in /_sim/state");
    assert_eq!(
        dec(&client["position_amt"]),
        dec(&position["qty"]),
        "positionRisk"
    );
    assert_eq!(
        dec(&client["account_position_amt"]),
        dec(&position["qty"]),
        "account positions"
    );
    assert_eq!(dec(&position["qty"]), filled);
    assert_eq!(client["position_side"], "BOTH");
    assert_eq!(
        dec(&client["entry_price"]),
        dec(&position["entry_price"]),
        "entryPrice"
    );

    let wallet = dec(&main["wallets"]["USDT"]);
    assert_eq!(dec(&client["wallet_usdt"]), wallet, "account walletBalance");
    assert_eq!(dec(&client["balance_usdt"]), wallet, "balance");

    assert_eq!(main["open_orders"], 0, "the limit order was cancelled");
    assert_eq!(client["limit_status_after_cancel"], "CANCELED");
    assert_ne!(client["limit_order_id"], client["market_order_id"]);
    assert_eq!(main["leverage"]["BTCUSDT"], 10);
    assert_eq!(client["leverage"], 10);
    assert_eq!(dec(&client["leverage_after"]), Decimal::from(10));

    let listen_key = client["listen_key"].as_str().unwrap();
    assert!(!listen_key.is_empty());
    assert_eq!(client["renewed"]["listenKey"], listen_key);
    assert_eq!(client["error_status"], 400);
    assert_eq!(client["error_code"], -1121);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful stop")
        .unwrap()
        .unwrap();
}
