//! The whole simulator as the binary runs it: generated activity reaches a user stream, and REST
//! shows the same trades.

// Helpers of these tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use acctmon_sim::auth::{Secret, sign};
use acctmon_sim::rest::now_ms;
use acctmon_sim::server::{Config, run};
use futures_util::StreamExt;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn generated_activity_streams_to_clients_and_shows_over_rest() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::from_args([
        "--listen",
        &addr.to_string(),
        "--seed",
        "9",
        "--fills-per-sec",
        "400",
        "--account",
        "main",
        "--account",
        "hedged:hedge",
    ])
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(config, listener, async {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );

    let key: serde_json::Value = http
        .post(format!("{base}/fapi/v1/listenKey"))
        .header("X-MBX-APIKEY", "sim-key-main")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "ws://{addr}/private/ws?listenKey={}",
        key["listenKey"].as_str().unwrap()
    );
    let (mut ws, _) = connect_async(url).await.unwrap();
    let mut fills = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fills < 20 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("fills in time");
        if let Some(Ok(Message::Text(t))) = msg
            && t.contains("\"x\":\"TRADE\"")
        {
            fills += 1;
        }
    }

    let query = format!("symbol=BTCUSDT&timestamp={}", now_ms());
    let signature = sign(&Secret::new("sim-secret-main"), &query);
    let trades: Vec<serde_json::Value> = http
        .get(format!(
            "{base}/fapi/v1/userTrades?{query}&signature={signature}"
        ))
        .header("X-MBX-APIKEY", "sim-key-main")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state: serde_json::Value = http
        .get(format!("{base}/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let in_state = state["accounts"][0]["trades"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["symbol"] == "BTCUSDT")
        .count();
    assert!(in_state >= trades.len() && !trades.is_empty());

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful stop")
        .unwrap()
        .unwrap();
}
