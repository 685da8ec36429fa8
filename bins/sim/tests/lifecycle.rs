//! Binance's connection lifecycle on the scaled clock, over real sockets: listenKey expiry and
//! keepalive, `listenKeyExpired`, pings and the pong timeout, the 24-hour cut; the mark-price streams.

// Helpers of these tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use acctmon_binance::decode_frame;
use acctmon_domain::{Account, Event};
use reqwest::Method;
use support::{Running, read};

#[tokio::test]
async fn a_listen_key_expires_unless_kept_alive_and_its_stream_is_told() {
    // 60 minutes become one second.
    let sim = Running::scaled("3600").await;
    let key = sim.listen_key("main").await;
    assert_eq!(
        sim.listen_key("main").await,
        key,
        "one key per account while valid"
    );
    let mut ws = sim.ws(&format!("/private/ws?listenKey={key}")).await;
    let got = read(&mut ws, 5, |r| !r.texts.is_empty()).await;
    let expired: serde_json::Value = serde_json::from_str(&got.texts[0]).unwrap();
    assert_eq!(expired["e"], "listenKeyExpired");
    assert_eq!(expired["listenKey"], key.as_str());
    // After it, nothing more on that connection, even while the account trades.
    sim.market("BTCUSDT", "BUY", "0.01").await;
    let after = read(&mut ws, 1, |r| !r.texts.is_empty()).await;
    assert!(after.texts.is_empty(), "{:?}", after.texts);
    // The key is gone: keepalive says -1125, connecting is refused, POST makes a new one.
    let r = sim
        .http
        .put(format!("{}/fapi/v1/listenKey", sim.base))
        .header("X-MBX-APIKEY", "sim-key-main")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("-1125"));
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/private/ws/{key}", sim.addr))
            .await
            .is_err()
    );
    let fresh = sim.listen_key("main").await;
    assert_ne!(fresh, key);
    // Kept alive every 400 ms, it outlives its hour (reading meanwhile answers the pings).
    let mut ws = sim.ws(&format!("/private/ws/{fresh}")).await;
    let keepalive = {
        let (http, base) = (sim.http.clone(), sim.base.clone());
        tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let r = http
                    .put(format!("{base}/fapi/v1/listenKey"))
                    .header("X-MBX-APIKEY", "sim-key-main")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    };
    let quiet = read(&mut ws, 3, |_| false).await;
    keepalive.await.unwrap();
    // Funding (every 8 s at this scale) may come; expiry must not.
    assert!(
        quiet.texts.iter().all(|t| t.contains("FUNDING_FEE")) && !quiet.ended,
        "{quiet:?}"
    );
    sim.market("BTCUSDT", "BUY", "0.01").await;
    let got = read(&mut ws, 2, |r| {
        r.texts.iter().any(|t| t.contains("TRADE_LITE"))
    })
    .await;
    assert!(got.texts.iter().all(|t| !t.contains("listenKeyExpired")));
    assert!(
        got.texts.iter().any(|t| t.contains("TRADE_LITE")),
        "{got:?}"
    );
    // The admin API expires it now.
    sim.admin("expire?account=main").await;
    let got = read(&mut ws, 2, |r| {
        r.texts.iter().any(|t| t.contains("listenKeyExpired"))
    })
    .await;
    assert!(
        got.texts.last().unwrap().contains("listenKeyExpired"),
        "{got:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn pings_every_three_minutes_and_a_silent_client_is_dropped() {
    // 3 minutes become 0.5 s; the 10-minute pong timeout 1.67 s.
    let sim = Running::scaled("360").await;
    let key = sim.listen_key("main").await;
    let mut live = sim.ws(&format!("/private/ws?listenKey={key}")).await;
    let mut silent = sim.ws(&format!("/private/ws?listenKey={key}")).await;
    // Reading answers pings (the client library pongs on read); 4 s is past the pong timeout.
    let got = read(&mut live, 4, |_| false).await;
    assert!(got.pings >= 6, "{} pings", got.pings);
    assert!(!got.ended && !got.closed);
    // The other never read, so never answered: the server dropped it.
    let got = read(&mut silent, 2, |r| r.ended).await;
    assert!(got.ended, "{got:?}");
    assert!(got.pings >= 1);
    sim.stop().await;
}

#[tokio::test]
async fn connections_are_cut_at_24_hours() {
    // 24 hours become 2 s.
    let sim = Running::scaled("43200").await;
    let mut ws = sim.ws("/market/ws/btcusdt@markPrice").await;
    let start = tokio::time::Instant::now();
    let got = read(&mut ws, 6, |r| r.closed || r.ended).await;
    let lived = start.elapsed();
    assert!(got.closed, "{got:?}");
    assert!(
        lived >= Duration::from_millis(1_800) && lived < Duration::from_secs(4),
        "{lived:?}"
    );
    assert!(!got.texts.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn mark_price_streams_single_combined_and_all_market() {
    // Every 3 s becomes 50 ms; every second 20 ms (the floor).
    let sim = Running::scaled("60").await;
    let market = Account::new("market").unwrap();
    let mut single = sim.ws("/market/ws/btcusdt@markPrice@1s").await;
    let got = read(&mut single, 3, |r| r.texts.len() >= 5).await;
    assert_eq!(got.texts.len(), 5);
    for t in &got.texts {
        match &decode_frame(&market, t).unwrap()[..] {
            [Event::Mark(m)] => {
                assert_eq!(m.symbol.as_str(), "BTCUSDT");
                assert_eq!(m.mark_price, "50000".parse().unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
    let mut combined = sim
        .ws("/market/stream?streams=ethusdt@markPrice/!markPrice@arr")
        .await;
    let got = read(&mut combined, 3, |r| {
        r.texts
            .iter()
            .any(|t| t.contains("\"stream\":\"!markPrice@arr\""))
            && r.texts
                .iter()
                .any(|t| t.contains("\"stream\":\"ethusdt@markPrice\""))
    })
    .await;
    let all = got
        .texts
        .iter()
        .find(|t| t.contains("!markPrice@arr"))
        .unwrap();
    let marks = decode_frame(&market, all).unwrap();
    // BNBUSDT (for fees in BNB) and the three traded symbols.
    assert_eq!(marks.len(), 4, "{all}");
    let v: serde_json::Value = serde_json::from_str(all).unwrap();
    let next = v["data"][0]["T"].as_i64().unwrap();
    // Funding every 8 hours scaled by 60: every 8 minutes, on the multiple.
    assert_eq!(next % 480_000, 0);
    let premium: serde_json::Value = sim
        .http
        .get(format!("{}/fapi/v1/premiumIndex?symbol=ETHUSDT", sim.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(premium["nextFundingTime"].as_i64(), Some(next));
    assert_eq!(premium["markPrice"], "3000.00000000");
    // An unknown stream name is refused.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/market/ws/btcusdt@bogus", sim.addr))
            .await
            .is_err()
    );
    sim.stop().await;
}

#[tokio::test]
async fn funding_is_paid_at_each_scaled_funding_time_with_an_income_row() {
    // 8 hours become one second.
    let sim = Running::scaled("28800").await;
    sim.market("BTCUSDT", "BUY", "0.5").await;
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    // Flat again: no more funding from here on.
    sim.market("BTCUSDT", "SELL", "0.5").await;
    let rows = sim
        .ok(Method::GET, "/fapi/v1/income", "incomeType=FUNDING_FEE")
        .await;
    let rows = rows.as_array().unwrap();
    assert!((2..=3).contains(&rows.len()), "{rows:?}");
    let mut paid = rust_decimal::Decimal::ZERO;
    for r in rows {
        assert_eq!(
            r["time"].as_i64().unwrap() % 1000,
            0,
            "at funding times: {r}"
        );
        assert_eq!(
            (r["symbol"].as_str(), r["tradeId"].as_str()),
            (Some("BTCUSDT"), Some(""))
        );
        paid += r["income"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap();
    }
    let state = sim.state().await;
    let truth: rust_decimal::Decimal = state["accounts"][0]["funding"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(paid, truth);
    let trades = sim
        .ok(Method::GET, "/fapi/v1/income", "incomeType=COMMISSION")
        .await;
    assert!(
        trades
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tradeId"] != "")
    );
    sim.stop().await;
}
