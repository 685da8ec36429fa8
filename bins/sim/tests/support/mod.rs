//! A whole simulator on a loopback port, as the binary runs it, and a Binance-style client for it.

#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use acctmon_sim::auth::{Secret, sign};
use acctmon_sim::rest::now_ms;
use acctmon_sim::server::{Config, run};
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running simulator.
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// HTTP client.
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Running {
    /// Starts a simulator with these flags (plus `--listen`).
    pub async fn start(args: &[&str]) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut all = vec!["--listen", &addr];
        all.extend_from_slice(args);
        let config = Config::from_args(all).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(config, listener, async {
            let _ = stopped.await;
        }));
        Running {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// A quiet simulator (no generated activity) with the one account `main`, its clock `scale`
    /// times faster than Binance's.
    pub async fn scaled(scale: &str) -> Running {
        Running::start(&[
            "--time-scale",
            scale,
            "--fills-per-sec",
            "0",
            "--account",
            "main",
        ])
        .await
    }

    /// A market order of account `main`; its answer.
    pub async fn market(&self, symbol: &str, side: &str, qty: &str) -> serde_json::Value {
        let params = format!("symbol={symbol}&side={side}&type=MARKET&quantity={qty}");
        self.ok(reqwest::Method::POST, "/fapi/v1/order", &params)
            .await
    }

    /// Stops it and waits for the graceful end.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .expect("graceful stop")
                .unwrap()
                .unwrap();
        }
    }

    /// A signed request for account `name` (key `sim-key-<name>`): status, headers and body.
    pub async fn signed_as(
        &self,
        name: &str,
        method: reqwest::Method,
        path: &str,
        params: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let sep = if params.is_empty() { "" } else { "&" };
        let query = format!("{params}{sep}timestamp={}", now_ms());
        let signature = sign(&Secret::new(format!("sim-secret-{name}")), &query);
        let r = self
            .http
            .request(
                method,
                format!("{}{path}?{query}&signature={signature}", self.base),
            )
            .header("X-MBX-APIKEY", format!("sim-key-{name}"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// A signed request for account `main`, answered 200: the JSON body.
    pub async fn ok(&self, method: reqwest::Method, path: &str, params: &str) -> serde_json::Value {
        let (status, _, body) = self.signed_as("main", method, path, params).await;
        assert_eq!(status, 200, "{path} {params}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// An admin call under `/_sim/`.
    pub async fn admin(&self, path_and_query: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}/_sim/{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path_and_query}");
        r.json().await.unwrap()
    }

    /// The ground truth.
    pub async fn state(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/_sim/state", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Trades of every account in the ground truth so far.
    pub async fn trade_count(&self) -> usize {
        self.state().await["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["trades"].as_array().unwrap().len())
            .sum()
    }

    /// The faults in force (`GET /_sim/faults`).
    pub async fn faults(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/_sim/faults", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A new (or the current) listenKey of account `name`.
    pub async fn listen_key(&self, name: &str) -> String {
        let r: serde_json::Value = self
            .http
            .post(format!("{}/fapi/v1/listenKey", self.base))
            .header("X-MBX-APIKEY", format!("sim-key-{name}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["listenKey"].as_str().unwrap().to_owned()
    }

    /// A WebSocket on `path` (with query).
    pub async fn ws(&self, path: &str) -> Ws {
        connect_async(format!("ws://{}{path}", self.addr))
            .await
            .unwrap()
            .0
    }
}

/// What a socket delivered until `until` held or the time ran out.
#[derive(Debug, Default)]
pub struct Received {
    /// Text frames.
    pub texts: Vec<String>,
    /// Ping frames.
    pub pings: usize,
    /// A close frame came.
    pub closed: bool,
    /// The connection ended (closed, reset, or EOF).
    pub ended: bool,
}

/// Reads until `until` holds, the connection ends or `secs` pass.
pub async fn read(ws: &mut Ws, secs: u64, until: impl Fn(&Received) -> bool) -> Received {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut got = Received::default();
    while !until(&got) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Text(t)))) => got.texts.push(t.to_string()),
            Ok(Some(Ok(Message::Ping(_)))) => got.pings += 1,
            Ok(Some(Ok(Message::Close(_)))) => got.closed = true,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => {
                got.ended = true;
                break;
            }
        }
    }
    got
}
