//! The admin API under `/_sim/`: ground truth and fault injection. Parameters go in the query string;
//! `account` is an account's name. Every answer is JSON.
//!
//! | Call | Effect |
//! |---|---|
//! | `GET /_sim/state` | ground truth: per account wallets, positions, realized gross, commission, funding, trades |
//! | `GET /_sim/faults` | the faults in force, and the rate of generated activity (`activity_per_sec`) |
//! | `POST /_sim/drop[?account=A]` | drop the WebSocket connections (of one account's user streams, or all) |
//! | `POST /_sim/expire?account=A` | expire the account's listenKey now (`listenKeyExpired` is pushed) |
//! | `POST /_sim/pause?account=A` / `POST /_sim/resume?account=A` | stop / restart delivering the account's user events; trading goes on, so the gap only REST can fill |
//! | `POST /_sim/duplicate?pct=N` | send each user event twice with probability N % (0 stops) |
//! | `POST /_sim/drift?account=A&asset=X&amount=D` | change a wallet by D with no event |
//! | `POST /_sim/drift?account=A&symbol=S[&positionSide=P]&qty=D` | change a position by D with no event |
//! | `POST /_sim/rest-error?status=N[&count=K]` | answer the next K (default: every) `/fapi` requests with HTTP N and Binance's body (`status=0` stops) |
//! | `POST /_sim/rest-delay?ms=N` | delay every `/fapi` answer by N ms (0 stops) |
//! | `POST /_sim/mark?symbol=S&price=P` | set a mark price now |
//! | `POST /_sim/funding` | pay funding now on every symbol, at its announced rate |
//! | `POST /_sim/activity?per_sec=N` | generate N actions per second from now on, as `--fills-per-sec` does (0 stops; no effect with `--firehose`) |
//! | `POST /_sim/burst?orders=N` | place N market orders at once, round-robin over the accounts, delivered as one burst (at most `MAX_BURST_PER_ACCOUNT` per account; no effect with `--firehose`) |

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::auth::{Request, param};
use crate::exchange::Leg;
use crate::limits::RestFault;
use crate::rest::{ApiError, Control, Shared, Sim, lock, now_ms};

/// Faults in force.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Accounts whose user events are not delivered.
    pub paused: BTreeSet<usize>,
    /// Probability, in percent, that a user event is sent twice.
    pub duplicate_pct: u64,
    /// REST answers replaced by an error.
    pub rest_error: Option<RestFault>,
    /// Delay added to every REST answer, ms.
    pub rest_delay_ms: u64,
}

impl Faults {
    /// The faults as JSON, with the run-time rate of generated activity (`activity_per_sec`).
    pub fn to_json(&self, sim: &Sim) -> Value {
        let names: Vec<&str> = self
            .paused
            .iter()
            .map(|a| sim.exchange.accounts()[*a].spec.name.as_str())
            .collect();
        json!({"paused": names, "duplicate_pct": self.duplicate_pct,
               "rest_error": self.rest_error.as_ref().map(|f| json!({"status": f.status, "remaining": f.remaining})),
               "rest_delay_ms": self.rest_delay_ms,
               "activity_per_sec": sim.activity_per_sec})
    }
}

/// Market orders per account one burst may hold: each brings up to four user events (the order's
/// `NEW`, `TRADE_LITE`, the fill, `ACCOUNT_UPDATE`), and a stream client must be able to take the whole
/// burst without lagging out of the stream buffer.
pub const MAX_BURST_PER_ACCOUNT: u64 = (crate::rest::STREAM_BUFFER / 8) as u64;

async fn burst(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let orders: u64 = q.number("orders")?;
    let mut sim = lock(&sim);
    let limit = MAX_BURST_PER_ACCOUNT * sim.exchange.accounts().len() as u64;
    if sim.burst + orders > limit {
        return Err(ApiError::from_code(
            400,
            -1130,
            format!("a burst holds at most {limit} orders ({MAX_BURST_PER_ACCOUNT} per account)"),
        ));
    }
    sim.burst += orders;
    Ok(axum::Json(json!({"ok": true, "orders": sim.burst})))
}

/// The admin routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/faults", get(faults))
        .route("/_sim/drop", post(drop_connections))
        .route("/_sim/expire", post(expire))
        .route("/_sim/pause", post(pause))
        .route("/_sim/resume", post(resume))
        .route("/_sim/duplicate", post(duplicate))
        .route("/_sim/drift", post(drift))
        .route("/_sim/rest-error", post(rest_error))
        .route("/_sim/rest-delay", post(rest_delay))
        .route("/_sim/mark", post(mark))
        .route("/_sim/funding", post(funding))
        .route("/_sim/activity", post(activity))
        .route("/_sim/burst", post(burst))
}

type AdminResult = Result<axum::Json<Value>, ApiError>;

struct Query(String);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
        param(
            &Request {
                api_key: None,
                query: &self.0,
                body: "",
            },
            name,
        )
    }

    fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::missing(name))
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ApiError> {
        self.required(name)?
            .parse()
            .map_err(|_| ApiError::missing(name))
    }

    fn account(&self, sim: &Sim) -> Result<usize, ApiError> {
        let name = self.required("account")?;
        sim.account_index(name)
            .ok_or_else(|| ApiError::from_code(400, -2015, format!("no account named {name:?}")))
    }
}

fn query(q: Option<String>) -> Query {
    Query(q.unwrap_or_default())
}

async fn state(State(sim): State<Shared>) -> axum::Json<Value> {
    axum::Json(lock(&sim).exchange.state())
}

async fn faults(State(sim): State<Shared>) -> axum::Json<Value> {
    let sim = lock(&sim);
    axum::Json(sim.faults.to_json(&sim))
}

async fn drop_connections(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let sim = lock(&sim);
    let account = match q.get("account") {
        Some(_) => Some(q.account(&sim)?),
        None => None,
    };
    let told = sim.send_control(Control::Drop(account));
    Ok(axum::Json(json!({"ok": true, "connections_told": told})))
}

async fn expire(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let mut sim = lock(&sim);
    let a = q.account(&sim)?;
    let keys = sim.expire_listen_keys(now_ms(), Some(a));
    Ok(axum::Json(json!({"ok": true, "expired": keys.len()})))
}

async fn pause(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let mut sim = lock(&sim);
    let a = q.account(&sim)?;
    sim.publish();
    sim.faults.paused.insert(a);
    Ok(axum::Json(json!({"ok": true})))
}

async fn resume(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let mut sim = lock(&sim);
    let a = q.account(&sim)?;
    // Events of the pause are lost to the stream, as on a real outage.
    let _ = sim.exchange.take_events(a);
    sim.faults.paused.remove(&a);
    Ok(axum::Json(json!({"ok": true})))
}

async fn duplicate(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let pct: u64 = q.number("pct")?;
    lock(&sim).faults.duplicate_pct = pct.min(100);
    Ok(axum::Json(json!({"ok": true})))
}

async fn drift(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let mut sim = lock(&sim);
    let a = q.account(&sim)?;
    if let Some(asset) = q.get("asset") {
        let amount: Decimal = q.number("amount")?;
        sim.exchange.drift_wallet(a, asset, amount);
    } else {
        let symbol = q.required("symbol")?.to_owned();
        let qty: Decimal = q.number("qty")?;
        let leg = match q.get("positionSide") {
            None | Some("BOTH") => Leg::Both,
            Some("LONG") => Leg::Long,
            Some("SHORT") => Leg::Short,
            Some(_) => return Err(ApiError::missing("positionSide")),
        };
        sim.exchange.drift_position(a, &symbol, leg, qty);
    }
    Ok(axum::Json(json!({"ok": true})))
}

async fn rest_error(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let status: u16 = q.number("status")?;
    let count: Option<u64> = match q.get("count") {
        Some(_) => Some(q.number("count")?),
        None => None,
    };
    let fault = match status {
        0 => None,
        400..=599 => Some(RestFault {
            status,
            remaining: count,
        }),
        _ => return Err(ApiError::missing("status")),
    };
    lock(&sim).faults.rest_error = fault;
    Ok(axum::Json(json!({"ok": true})))
}

async fn rest_delay(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let ms: u64 = q.number("ms")?;
    lock(&sim).faults.rest_delay_ms = ms;
    Ok(axum::Json(json!({"ok": true})))
}

async fn mark(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let symbol = q.required("symbol")?.to_owned();
    let price: Decimal = q.number("price")?;
    if price <= Decimal::ZERO {
        return Err(ApiError::missing("price"));
    }
    let mut sim = lock(&sim);
    sim.exchange.set_mark(&symbol, price, now_ms());
    sim.publish();
    Ok(axum::Json(json!({"ok": true})))
}

async fn funding(State(sim): State<Shared>) -> AdminResult {
    let mut sim = lock(&sim);
    let now = now_ms();
    let symbols: Vec<String> = sim.exchange.marks().keys().cloned().collect();
    for s in symbols {
        let rate = sim.exchange.funding_rate(&s);
        sim.exchange.pay_funding(&s, rate, now);
    }
    sim.publish();
    Ok(axum::Json(json!({"ok": true})))
}

async fn activity(State(sim): State<Shared>, RawQuery(q): RawQuery) -> AdminResult {
    let q = query(q);
    let per_sec: u32 = q.number("per_sec")?;
    lock(&sim).activity_per_sec = per_sec;
    Ok(axum::Json(json!({"ok": true})))
}
