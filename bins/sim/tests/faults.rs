//! Trading and fault injection through the public protocol of a running simulator: limit orders,
//! cancels, leverage, margin calls and funding seen on the user stream; request weights with 429 and
//! 418; injected REST errors and delays; dropped, paused and duplicating streams; silent drift.

// Helpers of these tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use acctmon_binance::decode_json;
use acctmon_binance::rest::SymbolLeverageBrackets;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;
use support::{Running, Ws, read};

const QUIET: &[&str] = &[
    "--fills-per-sec",
    "0",
    "--account",
    "main",
    "--account",
    "other",
];

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn events(texts: &[String]) -> Vec<Value> {
    texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect()
}

async fn user_stream(sim: &Running) -> Ws {
    let key = sim.listen_key("main").await;
    sim.ws(&format!("/private/ws?listenKey={key}")).await
}

#[tokio::test]
async fn limit_orders_rest_fill_as_maker_on_a_crossing_mark_and_cancel() {
    let sim = Running::start(QUIET).await;
    let mut ws = user_stream(&sim).await;
    let order = sim
        .ok(
            Method::POST,
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=49000&newClientOrderId=dip%3A1",
        )
        .await;
    assert_eq!(
        (order["status"].as_str(), order["type"].as_str()),
        (Some("NEW"), Some("LIMIT"))
    );
    let id = order["orderId"].as_u64().unwrap();
    let open = sim
        .ok(Method::GET, "/fapi/v1/openOrders", "symbol=BTCUSDT")
        .await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    let by_client = sim
        .ok(
            Method::GET,
            "/fapi/v1/order",
            "symbol=BTCUSDT&origClientOrderId=dip%3A1",
        )
        .await;
    assert_eq!(by_client["orderId"].as_u64(), Some(id));
    // The mark crosses the limit until the order is filled, in parts, as maker, at its price.
    let mut status = String::new();
    for _ in 0..40 {
        sim.admin("mark?symbol=BTCUSDT&price=48900").await;
        let o = sim
            .ok(
                Method::GET,
                "/fapi/v1/order",
                &format!("symbol=BTCUSDT&orderId={id}"),
            )
            .await;
        status = o["status"].as_str().unwrap().to_owned();
        if status == "FILLED" {
            assert_eq!(
                (o["executedQty"].as_str(), o["avgPrice"].as_str()),
                (Some("0.5"), Some("49000"))
            );
            break;
        }
    }
    assert_eq!(status, "FILLED");
    let got = read(&mut ws, 3, |r| {
        r.texts.iter().any(|t| t.contains("\"X\":\"FILLED\""))
    })
    .await;
    let fills: Vec<Value> = events(&got.texts)
        .into_iter()
        .filter(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["x"] == "TRADE")
        .collect();
    assert!(!fills.is_empty());
    for f in &fills {
        assert_eq!(
            (
                f["o"]["m"].as_bool(),
                f["o"]["L"].as_str(),
                f["o"]["c"].as_str()
            ),
            (Some(true), Some("49000"), Some("dip:1"))
        );
    }
    let trades = sim
        .ok(Method::GET, "/fapi/v1/userTrades", "symbol=BTCUSDT")
        .await;
    assert!(
        trades
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["maker"] == true)
    );
    // A resting sell, canceled: CANCELED on the stream, gone from the open orders.
    let sell = sim
        .ok(
            Method::POST,
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.1&price=60000",
        )
        .await;
    let sell_id = sell["orderId"].as_u64().unwrap();
    let canceled = sim
        .ok(
            Method::DELETE,
            "/fapi/v1/order",
            &format!("symbol=BTCUSDT&orderId={sell_id}"),
        )
        .await;
    assert_eq!(canceled["status"], "CANCELED");
    let (status, _, body) = sim
        .signed_as(
            "main",
            Method::DELETE,
            "/fapi/v1/order",
            &format!("symbol=BTCUSDT&orderId={sell_id}"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("-2011"), "{body}");
    let (status, _, body) = sim
        .signed_as(
            "main",
            Method::GET,
            "/fapi/v1/order",
            "symbol=BTCUSDT&orderId=1",
        )
        .await;
    assert!(status == 400 && body.contains("-2013"), "{body}");
    let got = read(&mut ws, 2, |r| {
        r.texts.iter().any(|t| t.contains("\"x\":\"CANCELED\""))
    })
    .await;
    assert!(got.texts.iter().any(|t| t.contains("\"x\":\"CANCELED\"")));
    assert!(
        sim.ok(Method::GET, "/fapi/v1/openOrders", "")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    sim.stop().await;
}

#[tokio::test]
async fn leverage_brackets_position_mode_margin_call_and_funding_reach_the_stream() {
    let sim = Running::start(QUIET).await;
    let mut ws = user_stream(&sim).await;
    let r = sim
        .ok(
            Method::POST,
            "/fapi/v1/leverage",
            "symbol=BTCUSDT&leverage=50",
        )
        .await;
    assert_eq!(
        (r["leverage"].as_u64(), r["maxNotionalValue"].as_str()),
        (Some(50), Some("8000000"))
    );
    let (status, _, body) = sim
        .signed_as(
            "main",
            Method::POST,
            "/fapi/v1/leverage",
            "symbol=BTCUSDT&leverage=200",
        )
        .await;
    assert!(status == 400 && body.contains("-4028"), "{body}");
    let (_, _, body) = sim
        .signed_as(
            "main",
            Method::GET,
            "/fapi/v1/leverageBracket",
            "symbol=BTCUSDT",
        )
        .await;
    let one: SymbolLeverageBrackets = decode_json(&body).unwrap();
    assert_eq!(one.brackets.len(), 5);
    let (_, _, body) = sim
        .signed_as("main", Method::GET, "/fapi/v1/leverageBracket", "")
        .await;
    assert_eq!(
        decode_json::<Vec<SymbolLeverageBrackets>>(&body)
            .unwrap()
            .len(),
        4
    );
    // Position mode: a no-op change and a change with a position are refused; flat, it switches.
    let (_, _, body) = sim
        .signed_as(
            "main",
            Method::POST,
            "/fapi/v1/positionSide/dual",
            "dualSidePosition=false",
        )
        .await;
    assert!(body.contains("-4059"), "{body}");
    // 2 BTC with only 5000 USDT behind it (drifted away silently), then the mark falls.
    sim.admin("drift?account=main&asset=USDT&amount=-95000")
        .await;
    sim.market("BTCUSDT", "BUY", "2").await;
    let (_, _, body) = sim
        .signed_as(
            "main",
            Method::POST,
            "/fapi/v1/positionSide/dual",
            "dualSidePosition=true",
        )
        .await;
    assert!(body.contains("-4068"), "{body}");
    sim.admin("mark?symbol=BTCUSDT&price=47900").await;
    sim.admin("mark?symbol=BTCUSDT&price=47600").await;
    sim.admin("funding").await;
    let got = read(&mut ws, 3, |r| {
        r.texts.iter().any(|t| t.contains("FUNDING_FEE"))
    })
    .await;
    let all = events(&got.texts);
    let config = all
        .iter()
        .find(|e| e["e"] == "ACCOUNT_CONFIG_UPDATE")
        .unwrap();
    assert_eq!(config["ac"]["l"], 50);
    let calls: Vec<&Value> = all.iter().filter(|e| e["e"] == "MARGIN_CALL").collect();
    assert_eq!(calls.len(), 1, "{:?}", got.texts);
    assert_eq!(
        (
            calls[0]["p"][0]["s"].as_str(),
            calls[0]["p"][0]["pa"].as_str()
        ),
        (Some("BTCUSDT"), Some("2"))
    );
    let funding = all.iter().find(|e| e["a"]["m"] == "FUNDING_FEE").unwrap();
    assert_eq!(funding["a"]["S"], "BTCUSDT");
    // Close, and the mode can change.
    sim.ok(
        Method::POST,
        "/fapi/v1/order",
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=2&reduceOnly=true",
    )
    .await;
    sim.ok(
        Method::POST,
        "/fapi/v1/positionSide/dual",
        "dualSidePosition=true",
    )
    .await;
    assert_eq!(
        sim.ok(Method::GET, "/fapi/v1/positionSide/dual", "").await["dualSidePosition"],
        true
    );
    sim.stop().await;
}

#[tokio::test]
async fn request_weight_is_counted_then_429_then_418() {
    let sim = Running::start(&[
        "--fills-per-sec",
        "0",
        "--account",
        "main",
        "--weight-limit",
        "20",
    ])
    .await;
    for used in [5, 10, 15, 20] {
        let (status, headers, _) = sim
            .signed_as("main", Method::GET, "/fapi/v3/account", "")
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-mbx-used-weight-1m"], used.to_string().as_str());
    }
    let (status, headers, body) = sim
        .signed_as("main", Method::GET, "/fapi/v3/account", "")
        .await;
    assert_eq!(status, 429);
    assert!(body.contains("-1003"), "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let mut last = 0;
    for _ in 0..6 {
        last = sim
            .signed_as("main", Method::GET, "/fapi/v1/time", "")
            .await
            .0;
    }
    assert_eq!(last, 418, "ignoring 429 gets the client banned");
    sim.stop().await;
}

#[tokio::test]
async fn injected_rest_errors_and_delays() {
    let sim = Running::start(QUIET).await;
    sim.admin("rest-error?status=503&count=2").await;
    for _ in 0..2 {
        let (status, _, body) = sim
            .signed_as("main", Method::GET, "/fapi/v2/balance", "")
            .await;
        assert_eq!(status, 503);
        assert!(body.contains("-1008"), "{body}");
    }
    assert_eq!(
        sim.signed_as("main", Method::GET, "/fapi/v2/balance", "")
            .await
            .0,
        200
    );
    sim.admin("rest-error?status=429").await;
    for _ in 0..3 {
        let (status, headers, _) = sim
            .signed_as("main", Method::GET, "/fapi/v2/balance", "")
            .await;
        assert_eq!(status, 429);
        assert!(headers.contains_key("retry-after"));
    }
    let faults: Value = sim
        .http
        .get(format!("{}/_sim/faults", sim.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["rest_error"]["status"], 429);
    sim.admin("rest-error?status=0").await;
    assert_eq!(
        sim.signed_as("main", Method::GET, "/fapi/v2/balance", "")
            .await
            .0,
        200
    );
    sim.admin("rest-delay?ms=300").await;
    let start = Instant::now();
    assert_eq!(
        sim.signed_as("main", Method::GET, "/fapi/v1/time", "")
            .await
            .0,
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}

#[tokio::test]
async fn dropped_paused_and_duplicating_streams() {
    let sim = Running::start(QUIET).await;
    // Dropping another account's streams leaves this one alone; dropping this one cuts it.
    let mut ws = user_stream(&sim).await;
    sim.admin("drop?account=other").await;
    sim.market("BTCUSDT", "BUY", "0.01").await;
    let got = read(&mut ws, 2, |r| {
        r.texts.iter().any(|t| t.contains("TRADE_LITE"))
    })
    .await;
    assert!(!got.ended && got.texts.iter().any(|t| t.contains("TRADE_LITE")));
    sim.admin("drop?account=main").await;
    let got = read(&mut ws, 2, |r| r.ended).await;
    assert!(
        got.ended && !got.closed,
        "dropped without a close frame: {got:?}"
    );

    // Paused: trading goes on, the stream misses it, REST has it.
    let mut ws = user_stream(&sim).await;
    sim.admin("pause?account=main").await;
    let paused = sim
        .ok(
            Method::POST,
            "/fapi/v1/order",
            "symbol=ETHUSDT&side=BUY&type=MARKET&quantity=0.1",
        )
        .await["orderId"]
        .as_u64()
        .unwrap();
    let got = read(&mut ws, 1, |r| !r.texts.is_empty()).await;
    assert!(got.texts.is_empty(), "{:?}", got.texts);
    let trades = sim
        .ok(Method::GET, "/fapi/v1/userTrades", "symbol=ETHUSDT")
        .await;
    assert!(
        trades
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["orderId"].as_u64() == Some(paused))
    );
    assert!(!trades.as_array().unwrap().is_empty());
    sim.admin("resume?account=main").await;
    let after = sim
        .ok(
            Method::POST,
            "/fapi/v1/order",
            "symbol=ETHUSDT&side=SELL&type=MARKET&quantity=0.1",
        )
        .await["orderId"]
        .as_u64()
        .unwrap();
    let got = read(&mut ws, 2, |r| r.texts.iter().any(|t| t.contains("FILLED"))).await;
    let orders: Vec<u64> = events(&got.texts)
        .iter()
        .filter_map(|e| e["o"]["i"].as_u64())
        .collect();
    assert!(
        !orders.is_empty() && orders.iter().all(|i| *i == after),
        "{orders:?}"
    );

    // Duplicated: every event twice.
    sim.admin("duplicate?pct=100").await;
    sim.market("SOLUSDT", "BUY", "1").await;
    let got = read(&mut ws, 2, |r| {
        r.texts
            .iter()
            .filter(|t| t.contains("\"X\":\"FILLED\""))
            .count()
            == 2
    })
    .await;
    let lite: Vec<&String> = got
        .texts
        .iter()
        .filter(|t| t.contains("TRADE_LITE"))
        .collect();
    assert!(!lite.is_empty() && lite.len().is_multiple_of(2));
    assert_eq!(lite[0], lite[1]);
    sim.stop().await;
}

#[tokio::test]
async fn silent_drift_changes_rest_figures_without_an_event() {
    let sim = Running::start(QUIET).await;
    let mut ws = user_stream(&sim).await;
    sim.market("BTCUSDT", "BUY", "0.01").await;
    // Everything of the order (its last account update may follow the FILLED report).
    let got = read(&mut ws, 1, |_| false).await;
    assert!(got.texts.iter().any(|t| t.contains("\"X\":\"FILLED\"")));
    let before = sim.ok(Method::GET, "/fapi/v2/balance", "").await;
    let wallet = |b: &Value| {
        d(b.as_array()
            .unwrap()
            .iter()
            .find(|r| r["asset"] == "USDT")
            .unwrap()["balance"]
            .as_str()
            .unwrap())
    };
    sim.admin("drift?account=main&asset=USDT&amount=-1.5").await;
    sim.admin("drift?account=main&symbol=BTCUSDT&qty=0.002")
        .await;
    assert_eq!(
        wallet(&sim.ok(Method::GET, "/fapi/v2/balance", "").await),
        wallet(&before) - d("1.5")
    );
    let risk = sim
        .ok(Method::GET, "/fapi/v3/positionRisk", "symbol=BTCUSDT")
        .await;
    assert_eq!(risk[0]["positionAmt"], "0.012");
    let got = read(&mut ws, 1, |r| !r.texts.is_empty()).await;
    assert!(got.texts.is_empty(), "drift is silent: {:?}", got.texts);
    let state = sim.state().await;
    assert_eq!(state["accounts"][0]["positions"][0]["qty"], "0.012");
    sim.stop().await;
}

#[tokio::test]
async fn generated_activity_starts_and_stops_at_run_time() {
    let sim = Running::start(QUIET).await;
    assert_eq!(sim.faults().await["activity_per_sec"], 0);
    // Quiet: nothing trades on its own.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.trade_count().await,
        0,
        "no activity at --fills-per-sec 0"
    );
    // A bad or missing rate is refused like any other admin parameter.
    for bad in [
        "activity",
        "activity?per_sec=",
        "activity?per_sec=-1",
        "activity?per_sec=x",
    ] {
        let r = sim
            .http
            .post(format!("{}/_sim/{bad}", sim.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(sim.faults().await["activity_per_sec"], 0);

    assert_eq!(sim.admin("activity?per_sec=200").await["ok"], true);
    assert_eq!(sim.faults().await["activity_per_sec"], 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut trades = 0;
    while trades == 0 {
        assert!(Instant::now() < deadline, "no trades after per_sec=200");
        tokio::time::sleep(Duration::from_millis(25)).await;
        trades = sim.trade_count().await;
    }

    // Once the call returns the driver sees 0 on its next tick: the count holds still.
    sim.admin("activity?per_sec=0").await;
    assert_eq!(sim.faults().await["activity_per_sec"], 0);
    let stopped = sim.trade_count().await;
    assert!(stopped >= trades);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.trade_count().await, stopped, "trades after per_sec=0");
    sim.stop().await;
}

#[tokio::test]
async fn a_burst_places_its_orders_at_once_within_the_per_account_limit() {
    let sim = Running::start(QUIET).await;
    let accounts = sim.state().await["accounts"].as_array().unwrap().len() as u64;
    let limit = acctmon_sim::admin::MAX_BURST_PER_ACCOUNT * accounts;
    let r = sim
        .http
        .post(format!("{}/_sim/burst?orders={}", sim.base, limit + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a burst above the limit is refused");

    let mut ws = user_stream(&sim).await;
    assert_eq!(sim.admin("burst?orders=300").await["orders"], 300);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.trade_count().await == 0 {
        assert!(Instant::now() < deadline, "no trades after a burst");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Placed on one tick: every market order is filled by the time the first trade shows.
    let trades = sim.trade_count().await;
    assert!(trades >= 300, "{trades} trades from 300 market orders");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.trade_count().await, trades, "a burst happens once");
    // The first account's share (one order in `accounts`) reaches its stream as fills.
    let got = read(&mut ws, 5, |r| {
        events(&r.texts)
            .iter()
            .filter(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["x"] == "TRADE")
            .count() as u64
            >= 300 / accounts
    })
    .await;
    let fills = events(&got.texts)
        .iter()
        .filter(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["x"] == "TRADE")
        .count() as u64;
    assert!(
        fills >= 300 / accounts,
        "{fills} fills on the first account's stream"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_burst_longer_than_one_socket_write_reaches_the_stream_whole() {
    let sim = Running::start(QUIET).await;
    let accounts = sim.state().await["accounts"].as_array().unwrap().len() as u64;
    let mut ws = user_stream(&sim).await;
    // About 300 market orders on the first account: more frames than the socket writer sends in one
    // go, so the stream is cut into several writes.
    sim.admin(&format!("burst?orders={}", 300 * accounts)).await;
    let ids = |texts: &[String], kind: &str| -> std::collections::BTreeSet<(String, u64)> {
        events(texts)
            .iter()
            .filter(|e| e["e"] == kind && (kind == "TRADE_LITE" || e["o"]["x"] == "TRADE"))
            .map(|e| {
                let o = if kind == "TRADE_LITE" { e } else { &e["o"] };
                (
                    o["s"].as_str().unwrap().to_owned(),
                    o["t"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // The exchange's own record of the first account's trades, once the burst is done.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.trade_count().await == 0 {
        assert!(Instant::now() < deadline, "no trades after a burst");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let state = sim.state().await;
    let orders: std::collections::BTreeSet<u64> = state["accounts"][0]["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["orderId"].as_u64().unwrap())
        .collect();
    let expected: std::collections::BTreeSet<(String, u64)> = state["accounts"][0]["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["symbol"].as_str().unwrap().to_owned(),
                t["id"].as_u64().unwrap(),
            )
        })
        .collect();
    // Counted as they come (the predicate sees every frame received so far).
    let (seen, trades) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let got = read(&mut ws, 20, |r| {
        for t in &r.texts[seen.get()..] {
            if t.contains("\"ORDER_TRADE_UPDATE\"") && t.contains("\"x\":\"TRADE\"") {
                trades.set(trades.get() + 1);
            }
        }
        seen.set(r.texts.len());
        trades.get() >= expected.len() && r.texts.len() >= orders.len() + 3 * expected.len()
    })
    .await;
    let (lite, full) = (
        ids(&got.texts, "TRADE_LITE"),
        ids(&got.texts, "ORDER_TRADE_UPDATE"),
    );
    assert!(got.texts.len() > 600, "{} frames", got.texts.len());
    assert!(expected.len() >= 200, "{} trades", expected.len());
    let missing = |got: &std::collections::BTreeSet<(String, u64)>| {
        expected
            .difference(got)
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(missing(&lite), vec![], "trades without a TRADE_LITE");
    assert_eq!(
        missing(&full),
        vec![],
        "trades without an ORDER_TRADE_UPDATE"
    );
    assert_eq!((lite.len(), full.len()), (expected.len(), expected.len()));
    // A market order is one NEW report, then per fill a TRADE_LITE, an ORDER_TRADE_UPDATE and an
    // ACCOUNT_UPDATE: not one frame more or less.
    assert_eq!(got.texts.len(), orders.len() + 3 * expected.len());
    sim.stop().await;
}
