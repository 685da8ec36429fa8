//! The REST surface of the simulator, with Binance's paths, parameters, JSON shapes (decimals as strings,
//! ids and times as numbers) and error bodies (`{"code":…,"msg":…}`).
//!
//! Served so far: `GET /fapi/v1/time`, `GET /fapi/v1/exchangeInfo`, `POST|PUT|DELETE /fapi/v1/listenKey`,
//! `GET /fapi/v2|v3/account`, `GET /fapi/v2|v3/balance`, `GET /fapi/v2|v3/positionRisk`,
//! `GET /fapi/v1/userTrades`, `GET /fapi/v1/premiumIndex`, `GET /fapi/v1/positionSide/dual`,
//! `POST /fapi/v1/order` (MARKET), and the ground truth `GET /_sim/state`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{FromRequest, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{self, AuthError, Request, Secret};
use crate::exchange::{Exchange, Leg, Reject, Side, margin_asset};

/// An API key pair bound to one account of the exchange.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// The key sent in `X-MBX-APIKEY`.
    pub key: String,
    /// The secret that signs requests.
    pub secret: Secret,
    /// Index of the account in the exchange.
    pub account: usize,
}

/// The simulator's shared state: the exchange, the keys, the listen keys and the stream fan-out.
#[derive(Debug)]
pub struct Sim {
    /// The exchange model.
    pub exchange: Exchange,
    keys: Vec<ApiKey>,
    /// listenKey → (account, expiry in ms).
    listen_keys: BTreeMap<String, (usize, i64)>,
    /// Per account, the user-data events for connected streams.
    user_streams: Vec<broadcast::Sender<Arc<str>>>,
    /// Draws listen keys; separate from the exchange's generator so that clients connecting do not
    /// change the seeded trading history.
    key_rng: crate::rng::Rng,
}

/// Events a slow stream client may lag behind before it is disconnected (as Binance drops slow sockets).
const STREAM_BUFFER: usize = 1 << 16;

/// A listenKey is valid this long after its creation or last keepalive (PROTOCOL §1.1).
pub const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;

impl Sim {
    /// A simulator over `exchange` accepting `keys`.
    pub fn new(exchange: Exchange, keys: Vec<ApiKey>) -> Self {
        let user_streams = (0..exchange.accounts().len())
            .map(|_| broadcast::channel(STREAM_BUFFER).0)
            .collect();
        let key_rng = crate::rng::Rng::new(exchange.seed() ^ 0x6c69_7374_656e_6b79);
        Self {
            exchange,
            keys,
            listen_keys: BTreeMap::new(),
            user_streams,
            key_rng,
        }
    }

    /// Sends every event the exchange emitted since the last call to the connected user streams.
    pub fn publish(&mut self) {
        for (account, tx) in self.user_streams.iter().enumerate() {
            for event in self.exchange.take_events(account) {
                // No connected stream is not an error: Binance drops events nobody listens to.
                let _ = tx.send(Arc::from(event));
            }
        }
    }

    /// A receiver of an account's user-data events.
    pub fn subscribe(&self, account: usize) -> broadcast::Receiver<Arc<str>> {
        self.user_streams[account].subscribe()
    }

    /// The account holding a valid listenKey at `now`.
    pub fn listen_key_account(&self, listen_key: &str, now: i64) -> Option<usize> {
        self.listen_keys
            .get(listen_key)
            .filter(|(_, expires)| *expires > now)
            .map(|(a, _)| *a)
    }
}

/// Shared handle to the simulator.
pub type Shared = Arc<Mutex<Sim>>;

/// The simulator's clock: milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An error answered with Binance's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: i64,
    msg: String,
}

impl ApiError {
    /// An error with Binance's HTTP status, code and message.
    pub fn from_code(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self::new(status, code, msg)
    }

    fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            msg: msg.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(e.http_status(), e.code(), e.message())
    }
}

impl From<Reject> for ApiError {
    fn from(r: Reject) -> Self {
        match r {
            Reject::NoMarkPrice => ApiError::new(400, -1121, "Invalid symbol."),
            Reject::PositionSideMismatch => ApiError::new(
                400,
                -4061,
                "Order's position side does not match user's setting.",
            ),
            Reject::ReduceTooLarge => ApiError::new(400, -2022, "ReduceOnly Order is rejected."),
            Reject::BadQuantity => {
                ApiError::new(400, -4003, "Quantity less than or equal to zero.")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.code, "msg": self.msg})),
        )
            .into_response()
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

/// The router of every REST path.
pub fn router(sim: Shared) -> Router {
    Router::new()
        .route("/fapi/v1/time", get(time))
        .route("/fapi/v1/exchangeInfo", get(exchange_info))
        .route(
            "/fapi/v1/listenKey",
            axum::routing::post(listen_key_create)
                .put(listen_key_keepalive)
                .delete(listen_key_close),
        )
        .route("/fapi/v2/account", get(account))
        .route("/fapi/v3/account", get(account))
        .route("/fapi/v2/balance", get(balance))
        .route("/fapi/v3/balance", get(balance))
        .route("/fapi/v2/positionRisk", get(position_risk))
        .route("/fapi/v3/positionRisk", get(position_risk))
        .route("/fapi/v1/userTrades", get(user_trades))
        .route("/fapi/v1/premiumIndex", get(premium_index))
        .route("/fapi/v1/positionSide/dual", get(position_mode))
        .route("/fapi/v1/order", axum::routing::post(new_order))
        .route("/_sim/state", get(state))
        .merge(crate::stream::routes())
        .with_state(sim)
}

pub(crate) fn lock(sim: &Shared) -> MutexGuard<'_, Sim> {
    // A panic while holding the lock is a bug in the simulator; keep serving what is there.
    sim.lock().unwrap_or_else(|e| e.into_inner())
}

/// The parts of a request that authentication and parameters read: the API key header, the raw
/// query string and the raw form body. One extractor for every Binance endpoint.
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    api_key: Option<String>,
    query: String,
    body: String,
}

/// Largest request body accepted (Binance's forms are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

impl RawRequest {
    /// The view [`auth`] works on.
    pub fn view(&self) -> Request<'_> {
        Request {
            api_key: self.api_key.as_deref(),
            query: &self.query,
            body: &self.body,
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for RawRequest {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let api_key = parts
            .headers
            .get("x-mbx-apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let query = parts.uri.query().unwrap_or("").to_owned();
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::new(400, -1104, "Not all sent parameters were read."))?;
        let body = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::new(400, -1100, "Illegal characters found in a parameter."))?;
        Ok(Self {
            api_key,
            query,
            body,
        })
    }
}

/// Authenticates a signed request and returns the account index.
fn signed(sim: &Sim, req: &Request<'_>) -> Result<usize, ApiError> {
    let keys = &sim.keys;
    Ok(auth::check_signed(req, now_ms(), |k| {
        keys.iter()
            .find(|x| x.key == k)
            .map(|x| (x.account, x.secret.clone()))
    })?)
}

fn api_key_only(sim: &Sim, req: &Request<'_>) -> Result<usize, ApiError> {
    let keys = &sim.keys;
    Ok(auth::check_key(req, |k| {
        keys.iter().find(|x| x.key == k).map(|x| x.account)
    })?)
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

async fn time() -> axum::Json<Value> {
    axum::Json(json!({"serverTime": now_ms()}))
}

async fn exchange_info(State(sim): State<Shared>) -> axum::Json<Value> {
    let sim = lock(&sim);
    let symbols: Vec<Value> = sim
        .exchange
        .marks()
        .keys()
        .map(|s| {
            json!({"symbol": s, "pair": s, "contractType": "PERPETUAL", "status": "TRADING",
                   "marginAsset": margin_asset(s), "quoteAsset": margin_asset(s),
                   "baseAsset": s.trim_end_matches(margin_asset(s)),
                   "pricePrecision": 2, "quantityPrecision": 3})
        })
        .collect();
    axum::Json(json!({"timezone": "UTC", "serverTime": now_ms(),
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
        "symbols": symbols}))
}

fn listen_key_for(sim: &mut Sim, account: usize, now: i64, create: bool) -> Option<String> {
    let existing = sim
        .listen_keys
        .iter()
        .find(|(_, (a, exp))| *a == account && *exp > now)
        .map(|(k, _)| k.clone());
    let key = match existing {
        Some(k) => k,
        None if create => {
            let rng = &mut sim.key_rng;
            (0..64)
                .map(|_| {
                    let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        [rng.below(62) as usize];
                    char::from(c)
                })
                .collect()
        }
        None => return None,
    };
    sim.listen_keys
        .insert(key.clone(), (account, now + LISTEN_KEY_TTL_MS));
    Some(key)
}

async fn listen_key_create(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw.view())?;
    let key = listen_key_for(&mut sim, account, now_ms(), true).unwrap_or_default();
    Ok(axum::Json(json!({"listenKey": key})))
}

async fn listen_key_keepalive(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw.view())?;
    match listen_key_for(&mut sim, account, now_ms(), false) {
        Some(key) => Ok(axum::Json(json!({"listenKey": key}))),
        None => Err(ApiError::new(400, -1125, "This listenKey does not exist.")),
    }
}

async fn listen_key_close(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw.view())?;
    sim.listen_keys.retain(|_, (a, _)| *a != account);
    Ok(axum::Json(json!({})))
}

/// Unrealized P&L of a position at the mark (8 decimals, as Binance publishes it).
fn unrealized(amount: Decimal, entry: Decimal, mark: Option<Decimal>) -> Decimal {
    mark.map_or(Decimal::ZERO, |m| {
        (amount * (m - entry))
            .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    })
}

fn leg_wire(leg: Leg) -> &'static str {
    match leg {
        Leg::Both => "BOTH",
        Leg::Long => "LONG",
        Leg::Short => "SHORT",
    }
}

async fn account(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw.view())?;
    let acct = &sim.exchange.accounts()[a];
    let now = now_ms();
    let mut upnl_by_asset: BTreeMap<&str, Decimal> = BTreeMap::new();
    let positions: Vec<Value> = acct
        .positions
        .iter()
        .filter(|(_, p)| !p.amount.is_zero())
        .map(|((s, leg), p)| {
            let mark = sim.exchange.mark(s);
            let up = unrealized(p.amount, p.entry, mark);
            *upnl_by_asset.entry(margin_asset(s)).or_default() += up;
            json!({"symbol": s, "positionSide": leg_wire(*leg), "positionAmt": text(p.amount),
                   "entryPrice": text(p.entry), "unrealizedProfit": text(up), "isolatedMargin": "0",
                   "notional": text(p.amount * mark.unwrap_or(p.entry)), "isolatedWallet": "0",
                   "initialMargin": "0", "maintMargin": "0", "updateTime": now})
        })
        .collect();
    let assets: Vec<Value> = acct
        .wallets
        .iter()
        .map(|(asset, wb)| {
            let up = upnl_by_asset.get(asset.as_str()).copied().unwrap_or_default();
            json!({"asset": asset, "walletBalance": text(*wb), "unrealizedProfit": text(up),
                   "marginBalance": text(*wb + up), "maintMargin": "0", "initialMargin": "0",
                   "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                   "crossWalletBalance": text(*wb), "crossUnPnl": text(up), "availableBalance": text(*wb + up),
                   "maxWithdrawAmount": text(*wb), "updateTime": now})
        })
        .collect();
    let wallet = acct.wallets.get("USDT").copied().unwrap_or_default();
    let up = upnl_by_asset.get("USDT").copied().unwrap_or_default();
    Ok(axum::Json(json!({
        "totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": text(wallet),
        "totalUnrealizedProfit": text(up), "totalMarginBalance": text(wallet + up),
        "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0",
        "totalCrossWalletBalance": text(wallet), "totalCrossUnPnl": text(up),
        "availableBalance": text(wallet + up), "maxWithdrawAmount": text(wallet),
        "assets": assets, "positions": positions})))
}

async fn balance(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw.view())?;
    let acct = &sim.exchange.accounts()[a];
    let now = now_ms();
    let rows: Vec<Value> = acct
        .wallets
        .iter()
        .map(|(asset, wb)| {
            json!({"accountAlias": acct.spec.name, "asset": asset, "balance": text(*wb),
                   "crossWalletBalance": text(*wb), "crossUnPnl": "0", "availableBalance": text(*wb),
                   "maxWithdrawAmount": text(*wb), "marginAvailable": true, "updateTime": now})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

async fn position_risk(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let req = raw.view();
    let a = signed(&sim, &req)?;
    let only = auth::param(&req, "symbol");
    let acct = &sim.exchange.accounts()[a];
    let now = now_ms();
    let rows: Vec<Value> = acct
        .positions
        .iter()
        .filter(|((s, _), p)| !p.amount.is_zero() && only.is_none_or(|o| o == s))
        .map(|((s, leg), p)| {
            let mark = sim.exchange.mark(s).unwrap_or(p.entry);
            let up = unrealized(p.amount, p.entry, Some(mark));
            json!({"symbol": s, "positionSide": leg_wire(*leg), "positionAmt": text(p.amount),
                   "entryPrice": text(p.entry), "breakEvenPrice": text(p.entry), "markPrice": text(mark),
                   "unRealizedProfit": text(up), "liquidationPrice": "0", "isolatedMargin": "0",
                   "notional": text(p.amount * mark), "marginAsset": margin_asset(s), "isolatedWallet": "0",
                   "initialMargin": "0", "maintMargin": "0", "positionInitialMargin": "0",
                   "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
                   "leverage": "20", "marginType": "cross", "isAutoAddMargin": "false",
                   "maxNotionalValue": "1000000", "updateTime": now})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

async fn user_trades(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let req = raw.view();
    let a = signed(&sim, &req)?;
    let symbol = auth::param(&req, "symbol")
        .ok_or_else(|| ApiError::from(AuthError::MissingParameter("symbol")))?;
    let from_id: u64 = auth::param(&req, "fromId")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = auth::param(&req, "limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
        .clamp(1, 1000);
    let rows: Vec<Value> = sim.exchange.accounts()[a]
        .trades
        .iter()
        .filter(|t| t.symbol == symbol && t.id >= from_id)
        .take(limit)
        .map(|t| {
            json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id,
                   "side": if t.side == Side::Buy { "BUY" } else { "SELL" },
                   "price": text(t.price), "qty": text(t.qty), "realizedPnl": text(t.realized),
                   "marginAsset": margin_asset(&t.symbol), "quoteQty": text(t.qty * t.price),
                   "commission": text(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
                   "positionSide": leg_wire(t.leg), "buyer": t.side == Side::Buy, "maker": false})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

async fn premium_index(State(sim): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let sim = lock(&sim);
    let req = Request {
        api_key: None,
        query: q.as_deref().unwrap_or(""),
        body: "",
    };
    let row = |s: &str, p: Decimal| {
        json!({"symbol": s, "markPrice": text(p), "indexPrice": text(p), "estimatedSettlePrice": text(p),
               "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
               "nextFundingTime": now_ms() - now_ms().rem_euclid(28_800_000) + 28_800_000, "time": now_ms()})
    };
    match auth::param(&req, "symbol") {
        Some(s) => sim
            .exchange
            .mark(s)
            .map(|p| axum::Json(row(s, p)))
            .ok_or_else(|| ApiError::new(400, -1121, "Invalid symbol.")),
        None => Ok(axum::Json(Value::Array(
            sim.exchange
                .marks()
                .iter()
                .map(|(s, p)| row(s, *p))
                .collect(),
        ))),
    }
}

async fn position_mode(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw.view())?;
    Ok(axum::Json(
        json!({"dualSidePosition": sim.exchange.accounts()[a].spec.hedge}),
    ))
}

async fn new_order(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let req = raw.view();
    let a = signed(&sim, &req)?;
    let missing = |p: &'static str| ApiError::from(AuthError::MissingParameter(p));
    let symbol = auth::param(&req, "symbol")
        .ok_or_else(|| missing("symbol"))?
        .to_owned();
    let side = match auth::param(&req, "side") {
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        _ => return Err(missing("side")),
    };
    match auth::param(&req, "type") {
        Some("MARKET") => {}
        Some(_) => return Err(ApiError::new(400, -1116, "Invalid orderType.")),
        None => return Err(missing("type")),
    }
    let qty: Decimal = auth::param(&req, "quantity")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing("quantity"))?;
    let leg = match auth::param(&req, "positionSide") {
        None | Some("BOTH") => None,
        Some("LONG") => Some(Leg::Long),
        Some("SHORT") => Some(Leg::Short),
        Some(_) => {
            return Err(ApiError::new(
                400,
                -4061,
                "Order's position side does not match user's setting.",
            ));
        }
    };
    let now = now_ms();
    let order_id = sim.exchange.market_order(a, &symbol, side, qty, leg, now)?;
    sim.publish();
    let trades: Vec<_> = sim.exchange.accounts()[a]
        .trades
        .iter()
        .filter(|t| t.order_id == order_id)
        .collect();
    let filled: Decimal = trades.iter().map(|t| t.qty).sum();
    let quote: Decimal = trades.iter().map(|t| t.qty * t.price).sum();
    let avg = if filled.is_zero() {
        Decimal::ZERO
    } else {
        (quote / filled).round_dp(8)
    };
    let leg = trades.first().map_or(Leg::Both, |t| t.leg);
    Ok(axum::Json(
        json!({"orderId": order_id, "symbol": symbol, "status": "FILLED",
        "clientOrderId": auth::param(&req, "newClientOrderId").map_or_else(|| format!("sim-{order_id}"), str::to_owned),
        "price": "0", "avgPrice": text(avg), "origQty": text(qty), "executedQty": text(filled),
        "cumQty": text(filled), "cumQuote": text(quote), "timeInForce": "GTC", "type": "MARKET",
        "reduceOnly": false, "closePosition": false, "side": if side == Side::Buy { "BUY" } else { "SELL" },
        "positionSide": leg_wire(leg), "stopPrice": "0", "workingType": "CONTRACT_PRICE",
        "priceProtect": false, "origType": "MARKET", "updateTime": now}),
    ))
}

async fn state(State(sim): State<Shared>) -> axum::Json<Value> {
    axum::Json(lock(&sim).exchange.state())
}
