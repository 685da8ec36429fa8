//! The REST surface of the simulator, with Binance's paths, parameters, JSON shapes (decimals as strings,
//! ids and times as numbers) and error bodies (`{"code":…,"msg":…}`).
//!
//! Served: `GET /fapi/v1/time`, `GET /fapi/v1/exchangeInfo`, `POST|PUT|DELETE /fapi/v1/listenKey`,
//! `GET /fapi/v2|v3/account`, `GET /fapi/v2|v3/balance`, `GET /fapi/v2|v3/positionRisk`,
//! `GET /fapi/v1/userTrades`, `GET /fapi/v1/income`, `GET /fapi/v1/premiumIndex`,
//! `GET /fapi/v1/leverageBracket`, `GET|POST /fapi/v1/positionSide/dual`, `POST /fapi/v1/leverage`,
//! `POST|DELETE|GET /fapi/v1/order`, `GET /fapi/v1/openOrders` (the last four in [`crate::orders`]); the
//! user-data stream ([`crate::stream`]), the mark-price streams ([`crate::market`]) and the admin API
//! under `/_sim/` ([`crate::admin`]) share the port.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{FromRequest, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admin::Faults;
use crate::auth::{self, AuthError, Request, Secret};
use crate::clock::{Clock, LISTEN_KEY_TTL_MS};
use crate::exchange::{Exchange, Leg, Reject, margin, margin_asset, wire};
use crate::limits::WeightMeter;

pub use crate::clock::now_ms;

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

/// What a live connection is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Drop the connection at once (no close frame), for one account's user streams or every
    /// connection (`None`).
    Drop(Option<usize>),
    /// The listenKey expired: push `listenKeyExpired`, then no more events on that connection.
    Expired(String),
}

/// The simulator's shared state: the exchange, the keys, the listen keys, the stream fan-out, the
/// weight meter, the faults to inject and the rate of generated activity.
#[derive(Debug)]
pub struct Sim {
    /// The exchange model.
    pub exchange: Exchange,
    /// Durations scale.
    pub clock: Clock,
    /// Request weight used, per Binance's window.
    pub weights: WeightMeter,
    /// Faults being injected.
    pub faults: Faults,
    /// Generated actions per second, read by the activity driver on every tick (0: none); set from
    /// `--fills-per-sec` and at run time by `POST /_sim/activity?per_sec=N`.
    pub activity_per_sec: u32,
    /// Market orders to place at once on the driver's next tick, spread over the accounts and
    /// delivered as one burst (`POST /_sim/burst`).
    pub burst: u64,
    keys: Vec<ApiKey>,
    /// listenKey → (account, expiry in ms).
    listen_keys: BTreeMap<String, (usize, i64)>,
    /// Per account, the user-data events for connected streams.
    user_streams: Vec<broadcast::Sender<Arc<str>>>,
    control: broadcast::Sender<Control>,
    /// Draws listen keys and fault decisions; separate from the exchange's generator so that clients
    /// connecting do not change the seeded trading history.
    side_rng: crate::rng::Rng,
}

/// Events a slow stream client may lag behind before it is disconnected (as Binance drops slow sockets).
pub const STREAM_BUFFER: usize = 1 << 16;

/// Binance's default request-weight limit per minute.
pub const DEFAULT_WEIGHT_LIMIT: u32 = 2400;

impl Sim {
    /// A simulator over `exchange` accepting `keys`, in real time.
    pub fn new(exchange: Exchange, keys: Vec<ApiKey>) -> Self {
        let user_streams = (0..exchange.accounts().len())
            .map(|_| broadcast::channel(STREAM_BUFFER).0)
            .collect();
        let side_rng = crate::rng::Rng::new(exchange.seed() ^ 0x6c69_7374_656e_6b79);
        Self {
            exchange,
            clock: Clock::default(),
            weights: WeightMeter::new(DEFAULT_WEIGHT_LIMIT),
            faults: Faults::default(),
            activity_per_sec: 0,
            burst: 0,
            keys,
            listen_keys: BTreeMap::new(),
            user_streams,
            control: broadcast::channel(64).0,
            side_rng,
        }
    }

    /// Sends every event the exchange emitted since the last call to the connected user streams,
    /// except for paused accounts (their events are lost to the stream; REST still shows them), and
    /// twice where duplication is injected. Returns the number of events sent.
    pub fn publish(&mut self) -> usize {
        let mut sent = 0;
        for account in 0..self.user_streams.len() {
            let events = self.exchange.take_events(account);
            if self.faults.paused.contains(&account) {
                continue;
            }
            for event in events {
                let event: Arc<str> = Arc::from(event);
                let twice = self.faults.duplicate_pct > 0
                    && self.side_rng.chance(self.faults.duplicate_pct);
                // No connected stream is not an error: Binance drops events nobody listens to.
                let _ = self.user_streams[account].send(Arc::clone(&event));
                if twice {
                    let _ = self.user_streams[account].send(event);
                }
                sent += 1;
            }
        }
        sent
    }

    /// Events queued for the slowest connected client of an account.
    pub fn backlog(&self, account: usize) -> usize {
        self.user_streams[account].len()
    }

    /// A receiver of an account's user-data events.
    pub fn subscribe(&self, account: usize) -> broadcast::Receiver<Arc<str>> {
        self.user_streams[account].subscribe()
    }

    /// A receiver of connection controls.
    pub fn control(&self) -> broadcast::Receiver<Control> {
        self.control.subscribe()
    }

    /// Tells connections to do something; returns how many listened.
    pub fn send_control(&self, c: Control) -> usize {
        self.control.send(c).unwrap_or(0)
    }

    /// The account holding a valid listenKey at `now`.
    pub fn listen_key_account(&self, listen_key: &str, now: i64) -> Option<usize> {
        self.listen_keys
            .get(listen_key)
            .filter(|(_, expires)| *expires > now)
            .map(|(a, _)| *a)
    }

    /// Expires the keys whose time has come (or every key of `account` now when given), telling
    /// their connections. Returns the keys expired.
    pub fn expire_listen_keys(&mut self, now: i64, account: Option<usize>) -> Vec<String> {
        let expired: Vec<String> = self
            .listen_keys
            .iter()
            .filter(|(_, (a, exp))| account.map_or(*exp <= now, |x| x == *a))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.listen_keys.remove(k);
            self.send_control(Control::Expired(k.clone()));
        }
        expired
    }

    /// The index of the account with this name.
    pub fn account_index(&self, name: &str) -> Option<usize> {
        self.exchange
            .accounts()
            .iter()
            .position(|a| a.spec.name == name)
    }

    fn side_rng(&mut self) -> &mut crate::rng::Rng {
        &mut self.side_rng
    }
}

/// Shared handle to the simulator.
pub type Shared = Arc<Mutex<Sim>>;

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
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            msg: msg.into(),
        }
    }

    /// A missing or malformed mandatory parameter (-1102).
    pub fn missing(name: &'static str) -> Self {
        AuthError::MissingParameter(name).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::from_code(e.http_status(), e.code(), e.message())
    }
}

impl From<Reject> for ApiError {
    fn from(r: Reject) -> Self {
        let (code, msg) = match r {
            Reject::NoMarkPrice => (-1121, "Invalid symbol."),
            Reject::PositionSideMismatch => (
                -4061,
                "Order's position side does not match user's setting.",
            ),
            Reject::ReduceOnlyRejected => (-2022, "ReduceOnly Order is rejected."),
            Reject::ReduceOnlyInHedgeMode => {
                (-1106, "Parameter 'reduceonly' sent when not required.")
            }
            Reject::BadQuantity => (-4003, "Quantity less than or equal to zero."),
            Reject::BadPrice => (
                -1102,
                "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
            ),
            Reject::UnknownOrder => (-2013, "Order does not exist."),
            Reject::OrderNotOpen => (-2011, "Unknown order sent."),
            Reject::BadLeverage => (-4028, "Leverage is not valid"),
            Reject::SameMode => (-4059, "No need to change position side."),
            Reject::ModeWithPositions => (
                -4068,
                "Position side cannot be changed if there exists position.",
            ),
            Reject::ModeWithOrders => (
                -4067,
                "Position side cannot be changed if there exists open orders.",
            ),
        };
        ApiError::from_code(400, code, msg)
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

/// A handler's answer: Binance JSON or Binance's error body.
pub type ApiResult = Result<axum::Json<Value>, ApiError>;

/// The router of every path.
pub fn router(sim: Shared) -> Router {
    let fapi = Router::new()
        .route("/fapi/v1/time", get(time))
        .route("/fapi/v1/exchangeInfo", get(exchange_info))
        .route(
            "/fapi/v1/listenKey",
            post(listen_key_create)
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
        .route("/fapi/v1/income", get(income))
        .route("/fapi/v1/premiumIndex", get(premium_index))
        .route("/fapi/v1/leverageBracket", get(leverage_bracket))
        .route("/fapi/v1/leverage", post(leverage))
        .route(
            "/fapi/v1/positionSide/dual",
            get(position_mode).post(change_position_mode),
        )
        .merge(crate::orders::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&sim),
            crate::limits::guard,
        ));
    Router::new()
        .merge(fapi)
        .merge(crate::admin::routes())
        .merge(crate::stream::routes())
        .merge(crate::market::routes())
        .with_state(sim)
}

/// Locks the simulator.
pub fn lock(sim: &Shared) -> MutexGuard<'_, Sim> {
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

    /// A parameter from the query or the body.
    pub fn param(&self, name: &str) -> Option<&str> {
        auth::param(&self.view(), name)
    }

    /// A parameter with its percent-escapes decoded (`%3A` → `:`); `None` when absent or not UTF-8.
    pub fn decoded(&self, name: &str) -> Option<String> {
        let raw = self.param(name)?.as_bytes();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (raw[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (b'+', _) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }

    /// A mandatory parameter.
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.param(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    }

    /// An optional parameter parsed; malformed is an error (-1102).
    pub fn parsed<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        self.param(name)
            .map(|v| v.parse().map_err(|_| ApiError::missing(name)))
            .transpose()
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
            .map_err(|_| ApiError::from_code(400, -1104, "Not all sent parameters were read."))?;
        let body = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::from_code(400, -1100, "Illegal characters found in a parameter.")
        })?;
        Ok(Self {
            api_key,
            query,
            body,
        })
    }
}

/// Authenticates a signed request and returns the account index.
pub fn signed(sim: &Sim, req: &RawRequest) -> Result<usize, ApiError> {
    let keys = &sim.keys;
    Ok(auth::check_signed(&req.view(), now_ms(), |k| {
        keys.iter()
            .find(|x| x.key == k)
            .map(|x| (x.account, x.secret.clone()))
    })?)
}

fn api_key_only(sim: &Sim, req: &RawRequest) -> Result<usize, ApiError> {
    let keys = &sim.keys;
    Ok(auth::check_key(&req.view(), |k| {
        keys.iter().find(|x| x.key == k).map(|x| x.account)
    })?)
}

/// A decimal as Binance prints it.
pub fn text(d: Decimal) -> String {
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
                   "pricePrecision": 2, "quantityPrecision": 3, "orderTypes": ["LIMIT", "MARKET"],
                   "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                   "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.1", "maxPrice": "1000000", "tickSize": "0.1"},
                               {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"}]})
        })
        .collect();
    axum::Json(json!({"timezone": "UTC", "serverTime": now_ms(),
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": sim.weights.limit},
                       {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}],
        "assets": [{"asset": "USDT", "marginAvailable": true}, {"asset": "BNB", "marginAvailable": true}],
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
            let rng = sim.side_rng();
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
    let ttl = sim.clock.ms(LISTEN_KEY_TTL_MS);
    sim.listen_keys.insert(key.clone(), (account, now + ttl));
    Some(key)
}

async fn listen_key_create(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw)?;
    let key = listen_key_for(&mut sim, account, now_ms(), true).unwrap_or_default();
    Ok(axum::Json(json!({"listenKey": key})))
}

async fn listen_key_keepalive(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw)?;
    match listen_key_for(&mut sim, account, now_ms(), false) {
        Some(key) => Ok(axum::Json(json!({"listenKey": key}))),
        None => Err(ApiError::from_code(
            400,
            -1125,
            "This listenKey does not exist.",
        )),
    }
}

async fn listen_key_close(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let account = api_key_only(&sim, &raw)?;
    sim.listen_keys.retain(|_, (a, _)| *a != account);
    Ok(axum::Json(json!({})))
}

/// Unrealized P&L of a position at the mark (8 decimals, as Binance publishes it).
fn unrealized(amount: Decimal, entry: Decimal, mark: Decimal) -> Decimal {
    (amount * (mark - entry))
        .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Margin figures of one open position.
struct PositionFigures {
    mark: Decimal,
    notional: Decimal,
    unrealized: Decimal,
    initial: Decimal,
    maint: Decimal,
    leverage: u32,
}

fn figures(
    sim: &Sim,
    account: usize,
    symbol: &str,
    amount: Decimal,
    entry: Decimal,
) -> PositionFigures {
    let mark = sim.exchange.mark(symbol).unwrap_or(entry);
    let notional = amount * mark;
    let leverage = sim.exchange.accounts()[account].leverage_of(symbol);
    PositionFigures {
        mark,
        notional,
        unrealized: unrealized(amount, entry, mark),
        initial: (notional.abs() / Decimal::from(leverage)).round_dp(8),
        maint: margin::maint_margin(symbol, notional).round_dp(8),
        leverage,
    }
}

async fn account(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let acct = &sim.exchange.accounts()[a];
    let now = now_ms();
    let mut by_asset: BTreeMap<&str, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    let positions: Vec<Value> = acct
        .positions
        .iter()
        .filter(|(_, p)| !p.amount.is_zero())
        .map(|((s, leg), p)| {
            let f = figures(&sim, a, s, p.amount, p.entry);
            let e = by_asset.entry(margin_asset(s)).or_default();
            e.0 += f.unrealized;
            e.1 += f.initial;
            e.2 += f.maint;
            json!({"symbol": s, "positionSide": leg.wire(), "positionAmt": text(p.amount),
                   "entryPrice": text(p.entry), "unrealizedProfit": text(f.unrealized), "isolatedMargin": "0",
                   "notional": text(f.notional), "isolatedWallet": "0", "initialMargin": text(f.initial),
                   "maintMargin": text(f.maint), "leverage": f.leverage.to_string(), "updateTime": now})
        })
        .collect();
    let assets: Vec<Value> = acct
        .wallets
        .iter()
        .map(|(asset, wb)| {
            let (up, im, mm) = by_asset.get(asset.as_str()).copied().unwrap_or_default();
            json!({"asset": asset, "walletBalance": text(*wb), "unrealizedProfit": text(up),
                   "marginBalance": text(*wb + up), "maintMargin": text(mm), "initialMargin": text(im),
                   "positionInitialMargin": text(im), "openOrderInitialMargin": "0",
                   "crossWalletBalance": text(*wb), "crossUnPnl": text(up), "availableBalance": text(*wb + up - im),
                   "maxWithdrawAmount": text(*wb - im), "updateTime": now})
        })
        .collect();
    let wallet = acct.wallets.get("USDT").copied().unwrap_or_default();
    let (up, im, mm) = by_asset.get("USDT").copied().unwrap_or_default();
    Ok(axum::Json(json!({
        "totalInitialMargin": text(im), "totalMaintMargin": text(mm), "totalWalletBalance": text(wallet),
        "totalUnrealizedProfit": text(up), "totalMarginBalance": text(wallet + up),
        "totalPositionInitialMargin": text(im), "totalOpenOrderInitialMargin": "0",
        "totalCrossWalletBalance": text(wallet), "totalCrossUnPnl": text(up),
        "availableBalance": text(wallet + up - im), "maxWithdrawAmount": text(wallet - im),
        "assets": assets, "positions": positions})))
}

async fn balance(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
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
    let a = signed(&sim, &raw)?;
    let only = raw.param("symbol");
    let acct = &sim.exchange.accounts()[a];
    let taker = sim.exchange.config().taker_fee;
    let now = now_ms();
    let rows: Vec<Value> = acct
        .positions
        .iter()
        .filter(|((s, _), p)| !p.amount.is_zero() && only.is_none_or(|o| o == s))
        .map(|((s, leg), p)| {
            let f = figures(&sim, a, s, p.amount, p.entry);
            let cap = margin::max_notional(s, f.leverage).unwrap_or(0);
            json!({"symbol": s, "positionSide": leg.wire(), "positionAmt": text(p.amount),
                   "entryPrice": text(p.entry), "breakEvenPrice": text(wire::breakeven(p, taker)),
                   "markPrice": text(f.mark), "unRealizedProfit": text(f.unrealized), "liquidationPrice": "0",
                   "isolatedMargin": "0", "notional": text(f.notional), "marginAsset": margin_asset(s),
                   "isolatedWallet": "0", "initialMargin": text(f.initial), "maintMargin": text(f.maint),
                   "positionInitialMargin": text(f.initial), "openOrderInitialMargin": "0", "adl": 0,
                   "bidNotional": "0", "askNotional": "0", "leverage": f.leverage.to_string(),
                   "marginType": "cross", "isAutoAddMargin": "false",
                   "maxNotionalValue": cap.to_string(), "updateTime": now})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

/// Binance's default look-back when no time range is given: 7 days.
const DEFAULT_LOOKBACK_MS: i64 = 7 * 24 * 3_600_000;

async fn user_trades(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.required("symbol")?;
    let from_id: Option<u64> = raw.parsed("fromId")?;
    let start: Option<i64> = raw.parsed("startTime")?;
    let end: Option<i64> = raw.parsed("endTime")?;
    let limit = raw.parsed::<usize>("limit")?.unwrap_or(500).clamp(1, 1000);
    let trades = sim.exchange.accounts()[a]
        .trades
        .iter()
        .filter(|t| t.symbol == symbol)
        .filter(|t| from_id.is_none_or(|f| t.id >= f))
        .filter(|t| start.is_none_or(|s| t.time >= s) && end.is_none_or(|e| t.time <= e));
    let rows: Vec<&crate::exchange::Trade> = if from_id.is_some() || start.is_some() {
        trades.take(limit).collect()
    } else {
        // Neither a start nor an id: the most recent trades, oldest first.
        let recent: Vec<_> = trades
            .filter(|t| t.time >= now_ms() - DEFAULT_LOOKBACK_MS)
            .collect();
        recent[recent.len().saturating_sub(limit)..].to_vec()
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|t| {
            json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "side": t.side.wire(),
                   "price": text(t.price), "qty": text(t.qty), "realizedPnl": text(t.realized),
                   "marginAsset": margin_asset(&t.symbol), "quoteQty": text(t.qty * t.price),
                   "commission": text(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
                   "positionSide": t.leg.wire(), "buyer": t.side == crate::exchange::Side::Buy,
                   "maker": t.maker})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

async fn income(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.param("symbol");
    let kind = raw.param("incomeType");
    let start: Option<i64> = raw.parsed("startTime")?;
    let end: Option<i64> = raw.parsed("endTime")?;
    let limit = raw.parsed::<usize>("limit")?.unwrap_or(100).clamp(1, 1000);
    let page = raw.parsed::<usize>("page")?.unwrap_or(1).max(1);
    let now = now_ms();
    let (start, end) = match (start, end) {
        (None, None) => (now - DEFAULT_LOOKBACK_MS, now),
        (Some(s), None) => (s, i64::MAX),
        (None, Some(e)) => (e - DEFAULT_LOOKBACK_MS, e),
        (Some(s), Some(e)) => (s, e),
    };
    let rows: Vec<Value> = sim.exchange.accounts()[a]
        .income
        .iter()
        .filter(|r| r.time >= start && r.time <= end)
        .filter(|r| symbol.is_none_or(|s| s == r.symbol) && kind.is_none_or(|k| k == r.kind))
        .skip((page - 1) * limit)
        .take(limit)
        .map(|r| {
            json!({"symbol": r.symbol, "incomeType": r.kind, "income": format!("{:.8}", r.amount),
                   "asset": r.asset, "info": r.kind, "time": r.time, "tranId": r.tran_id,
                   "tradeId": r.trade_id.map(|t| t.to_string()).unwrap_or_default()})
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

fn mark_row(sim: &Sim, s: &str, p: Decimal, now: i64) -> Value {
    json!({"symbol": s, "markPrice": format!("{p:.8}"), "indexPrice": format!("{p:.8}"),
           "estimatedSettlePrice": format!("{p:.8}"),
           "lastFundingRate": format!("{:.8}", sim.exchange.funding_rate(s)), "interestRate": "0.00010000",
           "nextFundingTime": sim.exchange.next_funding_time(now), "time": now})
}

async fn premium_index(State(sim): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let sim = lock(&sim);
    let req = Request {
        api_key: None,
        query: q.as_deref().unwrap_or(""),
        body: "",
    };
    let now = now_ms();
    match auth::param(&req, "symbol") {
        Some(s) => sim
            .exchange
            .mark(s)
            .map(|p| axum::Json(mark_row(&sim, s, p, now)))
            .ok_or_else(|| ApiError::from(Reject::NoMarkPrice)),
        None => Ok(axum::Json(Value::Array(
            sim.exchange
                .marks()
                .iter()
                .map(|(s, p)| mark_row(&sim, s, *p, now))
                .collect(),
        ))),
    }
}

async fn leverage_bracket(
    State(sim): State<Shared>,
    raw: RawRequest,
) -> Result<Response, ApiError> {
    let sim = lock(&sim);
    signed(&sim, &raw)?;
    let body = match raw.param("symbol") {
        Some(s) if sim.exchange.mark(s).is_some() => margin::brackets_json(s),
        Some(_) => return Err(Reject::NoMarkPrice.into()),
        None => {
            let all: Vec<String> = sim
                .exchange
                .marks()
                .keys()
                .map(|s| margin::brackets_json(s))
                .collect();
            format!("[{}]", all.join(","))
        }
    };
    Ok(([("content-type", "application/json")], body).into_response())
}

async fn leverage(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.required("symbol")?.to_owned();
    let lev: u32 = raw
        .parsed("leverage")?
        .ok_or_else(|| ApiError::missing("leverage"))?;
    let cap = sim.exchange.set_leverage(a, &symbol, lev, now_ms())?;
    sim.publish();
    Ok(axum::Json(
        json!({"leverage": lev, "maxNotionalValue": cap.to_string(), "symbol": symbol}),
    ))
}

async fn position_mode(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    Ok(axum::Json(
        json!({"dualSidePosition": sim.exchange.accounts()[a].spec.hedge}),
    ))
}

async fn change_position_mode(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let hedge = match raw.required("dualSidePosition")? {
        "true" | "TRUE" => true,
        "false" | "FALSE" => false,
        _ => return Err(ApiError::missing("dualSidePosition")),
    };
    sim.exchange.set_hedge_mode(a, hedge)?;
    Ok(axum::Json(json!({"code": 200, "msg": "success"})))
}

/// The leg named by `positionSide`, `None` for absent or `BOTH`.
pub fn leg_param(raw: &RawRequest) -> Result<Option<Leg>, ApiError> {
    match raw.param("positionSide") {
        None | Some("BOTH") => Ok(None),
        Some("LONG") => Ok(Some(Leg::Long)),
        Some("SHORT") => Ok(Some(Leg::Short)),
        Some(_) => Err(Reject::PositionSideMismatch.into()),
    }
}
