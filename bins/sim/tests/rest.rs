//! The simulator's REST surface over real HTTP on loopback: Binance's auth rules and error bodies, and
//! response shapes that acctmon's own Binance REST types read.

// Helpers of these tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use acctmon_binance::decode_json;
use acctmon_binance::rest::{
    AccountBalance, AccountInformation, ApiError, ListenKeyResponse, PositionRisk, ServerTime,
    UserTrade,
};
use acctmon_sim::auth::{Secret, sign};
use acctmon_sim::exchange::{AccountSpec, Exchange, ExchangeConfig};
use acctmon_sim::rest::{ApiKey, Sim, now_ms, router};
use rust_decimal::Decimal;

const KEY: &str = "sim-key-main";
const SECRET: &str = "sim-secret-main";
const HEDGE_KEY: &str = "sim-key-hedged";

struct Server {
    base: String,
    http: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let accounts = vec![
            AccountSpec {
                name: "main".into(),
                hedge: false,
                fees_in_bnb: false,
            },
            AccountSpec {
                name: "hedged".into(),
                hedge: true,
                fees_in_bnb: false,
            },
        ];
        let mut exchange = Exchange::new(ExchangeConfig::default(), accounts);
        exchange.set_mark("BTCUSDT", "50000".parse().unwrap(), now_ms());
        exchange.transfer(0, "USDT", "10000".parse().unwrap(), now_ms());
        let keys = vec![
            ApiKey {
                key: KEY.into(),
                secret: Secret::new(SECRET),
                account: 0,
            },
            ApiKey {
                key: HEDGE_KEY.into(),
                secret: Secret::new("sim-secret-hedged"),
                account: 1,
            },
        ];
        let sim = Arc::new(Mutex::new(Sim::new(exchange, keys)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(sim)).await.unwrap() });
        Server {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// A signed request, as Binance clients send it: params, `timestamp`, then `signature`.
    async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &str,
        timestamp: i64,
    ) -> (u16, String) {
        let sep = if params.is_empty() { "" } else { "&" };
        let query = format!("{params}{sep}recvWindow=5000&timestamp={timestamp}");
        let signature = sign(&Secret::new(SECRET), &query);
        let url = format!("{}{path}?{query}&signature={signature}", self.base);
        let r = self
            .http
            .request(method, url)
            .header("X-MBX-APIKEY", KEY)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get(&self, path: &str, params: &str) -> (u16, String) {
        self.signed(reqwest::Method::GET, path, params, now_ms())
            .await
    }

    async fn key_only(&self, method: reqwest::Method, key: Option<&str>) -> (u16, String) {
        let mut r = self
            .http
            .request(method, format!("{}/fapi/v1/listenKey", self.base));
        if let Some(k) = key {
            r = r.header("X-MBX-APIKEY", k);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn error(body: &str) -> ApiError {
    decode_json::<ApiError>(body).unwrap()
}

#[tokio::test]
async fn server_time_is_the_simulators_clock() {
    let s = Server::start().await;
    let body = s
        .http
        .get(format!("{}/fapi/v1/time", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let t: ServerTime = decode_json(&body).unwrap();
    assert!((t.server_time - now_ms()).abs() < 5_000);
}

#[tokio::test]
async fn signed_requests_good_stale_ahead_bad_signature_and_unknown_key() {
    let s = Server::start().await;
    let (status, body) = s.get("/fapi/v2/balance", "").await;
    assert_eq!(status, 200, "{body}");
    let rows: Vec<AccountBalance> = decode_json(&body).unwrap();
    assert_eq!(rows[0].balance, "10000".parse::<Decimal>().unwrap());

    let (status, body) = s
        .signed(
            reqwest::Method::GET,
            "/fapi/v2/balance",
            "",
            now_ms() - 60_000,
        )
        .await;
    assert_eq!((status, error(&body).code), (400, -1021), "stale");
    let (status, body) = s
        .signed(
            reqwest::Method::GET,
            "/fapi/v2/balance",
            "",
            now_ms() + 30_000,
        )
        .await;
    assert_eq!((status, error(&body).code), (400, -1021), "ahead");

    let url = format!(
        "{}/fapi/v2/balance?timestamp={}&signature=deadbeef",
        s.base,
        now_ms()
    );
    let r = s
        .http
        .get(&url)
        .header("X-MBX-APIKEY", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(error(&r.text().await.unwrap()).code, -1022);

    let r = s
        .http
        .get(&url)
        .header("X-MBX-APIKEY", "nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(error(&r.text().await.unwrap()).code, -2015);
}

#[tokio::test]
async fn listen_key_lifecycle_with_the_api_key_only() {
    let s = Server::start().await;
    let (status, body) = s.key_only(reqwest::Method::POST, Some(KEY)).await;
    assert_eq!(status, 200);
    let first: ListenKeyResponse = decode_json(&body).unwrap();
    assert_eq!(first.listen_key.len(), 64);
    let again: ListenKeyResponse =
        decode_json(&s.key_only(reqwest::Method::POST, Some(KEY)).await.1).unwrap();
    assert_eq!(
        again.listen_key, first.listen_key,
        "POST returns the account's existing key"
    );
    let kept: ListenKeyResponse =
        decode_json(&s.key_only(reqwest::Method::PUT, Some(KEY)).await.1).unwrap();
    assert_eq!(kept.listen_key, first.listen_key);
    assert_eq!(
        s.key_only(reqwest::Method::DELETE, Some(KEY)).await,
        (200, "{}".to_owned())
    );
    let (status, body) = s.key_only(reqwest::Method::PUT, Some(KEY)).await;
    assert_eq!((status, error(&body).code), (400, -1125));
    let (status, body) = s.key_only(reqwest::Method::POST, None).await;
    assert_eq!((status, error(&body).code), (401, -2015));
}

#[tokio::test]
async fn an_order_placed_over_rest_shows_in_trades_positions_account_and_state() {
    let s = Server::start().await;
    let (status, body) = s
        .signed(
            reqwest::Method::POST,
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.25&newOrderRespType=RESULT",
            now_ms(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let order: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(order["status"], "FILLED");
    assert_eq!(order["executedQty"], "0.25");
    // Binance's default answer (ACK) is the order as accepted, before it filled.
    let (_, body) = s
        .signed(
            reqwest::Method::POST,
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.25",
            now_ms(),
        )
        .await;
    let ack: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (ack["status"].as_str(), ack["executedQty"].as_str()),
        (Some("NEW"), Some("0"))
    );
    let (_, body) = s
        .signed(
            reqwest::Method::POST,
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.25",
            now_ms(),
        )
        .await;
    assert!(body.contains("\"status\":\"NEW\""), "{body}");

    let (_, body) = s.get("/fapi/v1/userTrades", "symbol=BTCUSDT").await;
    let trades: Vec<UserTrade> = decode_json(&body).unwrap();
    let first = order["orderId"].as_u64().unwrap();
    let qty: Decimal = trades
        .iter()
        .filter(|t| t.order_id == first)
        .map(|t| t.qty)
        .sum();
    assert_eq!(qty, "0.25".parse::<Decimal>().unwrap());
    let net: Decimal = trades
        .iter()
        .map(|t| if t.side == "BUY" { t.qty } else { -t.qty })
        .sum();
    assert_eq!(net, "0.25".parse::<Decimal>().unwrap());
    let from = trades.last().unwrap().id;
    let (_, body) = s
        .get(
            "/fapi/v1/userTrades",
            &format!("symbol=BTCUSDT&fromId={from}"),
        )
        .await;
    assert_eq!(
        decode_json::<Vec<UserTrade>>(&body).unwrap().len(),
        1,
        "fromId is inclusive"
    );

    for path in ["/fapi/v2/positionRisk", "/fapi/v3/positionRisk"] {
        let (_, body) = s.get(path, "").await;
        let rows: Vec<PositionRisk> = decode_json(&body).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].position_amt, "0.25".parse::<Decimal>().unwrap());
    }
    for path in ["/fapi/v2/account", "/fapi/v3/account"] {
        let (_, body) = s.get(path, "").await;
        let info: AccountInformation = decode_json(&body).unwrap();
        assert_eq!(info.positions.len(), 1);
    }

    let state: serde_json::Value = s
        .http
        .get(format!("{}/_sim/state", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["accounts"][0]["trades"].as_array().unwrap().len(),
        trades.len()
    );
    assert_eq!(state["accounts"][0]["positions"][0]["qty"], "0.25");
}

#[tokio::test]
async fn orders_are_refused_with_binance_codes() {
    let s = Server::start().await;
    let cases = [
        ("symbol=NOPEUSDT&side=BUY&type=MARKET&quantity=1", -1121),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&positionSide=LONG",
            -4061,
        ),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0", -4003),
        ("symbol=BTCUSDT&side=BUY&quantity=1", -1102),
    ];
    for (params, code) in cases {
        let (status, body) = s
            .signed(reqwest::Method::POST, "/fapi/v1/order", params, now_ms())
            .await;
        assert_eq!((status, error(&body).code), (400, code), "{params}");
    }
    let (_, body) = s.get("/fapi/v1/positionSide/dual", "").await;
    assert_eq!(body, r#"{"dualSidePosition":false}"#);
}

mod user_stream {
    use super::*;
    use futures_util::StreamExt;
    use tokio_tungstenite::connect_async;
    use tokio_tungstenite::tungstenite::Message;

    async fn listen_key(s: &Server) -> String {
        decode_json::<ListenKeyResponse>(&s.key_only(reqwest::Method::POST, Some(KEY)).await.1)
            .unwrap()
            .listen_key
    }

    /// Reads text frames until `until` says stop, with a deadline so a missing event fails the test.
    async fn read_until<S>(ws: &mut S, until: impl Fn(&[String]) -> bool) -> Vec<String>
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !until(&got) {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("events in time");
            if let Some(Ok(Message::Text(t))) = msg {
                got.push(t.to_string());
            }
        }
        got
    }

    #[tokio::test]
    async fn an_order_placed_over_rest_arrives_on_every_user_stream_form() {
        let s = Server::start().await;
        let key = listen_key(&s).await;
        let ws_base = s.base.replace("http://", "ws://");
        let (mut by_query, _) = connect_async(format!("{ws_base}/private/ws?listenKey={key}"))
            .await
            .unwrap();
        let (mut by_path, _) = connect_async(format!("{ws_base}/private/ws/{key}"))
            .await
            .unwrap();
        let (mut combined, _) = connect_async(format!("{ws_base}/private/stream?listenKey={key}"))
            .await
            .unwrap();
        let (status, body) = s
            .signed(
                reqwest::Method::POST,
                "/fapi/v1/order",
                "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.5",
                now_ms(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let filled = |got: &[String]| got.iter().any(|t| t.contains("\"X\":\"FILLED\""));
        let account = acctmon_domain::Account::new("main").unwrap();
        for (name, ws) in [
            ("query", &mut by_query),
            ("path", &mut by_path),
            ("combined", &mut combined),
        ] {
            let frames = read_until(ws, filled).await;
            let mut fills = Decimal::ZERO;
            for f in &frames {
                if name == "combined" {
                    let v: serde_json::Value = serde_json::from_str(f).unwrap();
                    assert_eq!(
                        v["stream"],
                        key.as_str(),
                        "combined framing names the stream"
                    );
                }
                for e in acctmon_binance::decode_frame(&account, f).unwrap() {
                    if let acctmon_domain::Event::Fill(fill) = e
                        && fill.source == acctmon_domain::FillSource::OrderUpdate
                    {
                        fills += fill.qty;
                    }
                }
            }
            assert_eq!(
                fills,
                "0.5".parse::<Decimal>().unwrap(),
                "{name}: the fills of the order"
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_listen_key_is_refused() {
        let s = Server::start().await;
        let ws_base = s.base.replace("http://", "ws://");
        let err = connect_async(format!("{ws_base}/private/ws?listenKey=nope"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
    }
}
