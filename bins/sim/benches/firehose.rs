//! The firehose: how many fill events per second the simulator pushes to one connected user-stream
//! client, generating orders as fast as that client takes them.
//!
//! `cargo bench -p acctmon-sim --bench firehose [-- SECONDS]` prints fills/s (distinct trades, each
//! reported by `TRADE_LITE`, `ORDER_TRADE_UPDATE` and `ACCOUNT_UPDATE`) and messages/s.

use std::time::{Duration, Instant};

use acctmon_sim::server::{Config, run};
use futures_util::StreamExt;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = Config::from_args(["--firehose", "--account", "bench"])?;
    let config = Config {
        listen: addr,
        ..config
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(config, listener, async {
        let _ = stopped.await;
    }));
    let key: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/fapi/v1/listenKey"))
        .header("X-MBX-APIKEY", "sim-key-bench")
        .send()
        .await?
        .json()
        .await?;
    let key = key["listenKey"].as_str().ok_or("no listenKey")?.to_owned();
    let (mut ws, _) = connect_async(format!("ws://{addr}/private/ws?listenKey={key}")).await?;

    let warm_up = Instant::now() + Duration::from_secs(1);
    let mut start = None;
    let (mut fills, mut messages) = (0u64, 0u64);
    let mut next_report = Instant::now() + Duration::from_secs(2);
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let now = Instant::now();
        match start {
            None if now >= warm_up => start = Some(now),
            None => continue,
            Some(_) => {}
        }
        messages += 1;
        if text.contains("\"x\":\"TRADE\"") {
            fills += 1;
        }
        if now >= next_report {
            eprintln!("… {fills} fills, {messages} messages");
            next_report = now + Duration::from_secs(2);
        }
        if start.is_some_and(|s| now.duration_since(s) >= Duration::from_secs(seconds)) {
            break;
        }
    }
    let elapsed = start
        .map_or(Duration::ZERO, |s| s.elapsed())
        .as_millis()
        .max(1);
    let per_sec = |n: u64| u128::from(n) * 1000 / elapsed;
    println!(
        "firehose/one_client: {} fills/s, {} messages/s ({fills} fills, {messages} messages in {elapsed} ms)",
        per_sec(fills),
        per_sec(messages)
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
