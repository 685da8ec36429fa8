//! Order endpoints: `POST|DELETE|GET /fapi/v1/order`, `GET /fapi/v1/openOrder` and
//! `GET /fapi/v1/openOrders`, MARKET and LIMIT
//! (`GTC`, `IOC`, `FOK`, `GTX`), with `positionSide`, `reduceOnly`, `newClientOrderId` and
//! `newOrderRespType` (`ACK`, Binance's default, answers the order as accepted; `RESULT` as it stands
//! after matching).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::exchange::{Order, OrderKind, OrderRequest, OrderStatus, Side, Tif};
use crate::rest::{ApiError, ApiResult, RawRequest, Shared, leg_param, lock, now_ms, signed, text};

/// The order routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/fapi/v1/order",
            get(query_order).post(new_order).delete(cancel_order),
        )
        .route("/fapi/v1/openOrders", get(open_orders))
        .route("/fapi/v1/openOrder", get(query_open_order))
}

/// An order as Binance's order endpoints answer it; `with_time` adds the creation time (queries).
fn order_json(o: &Order, with_time: bool) -> Value {
    let mut v = json!({"orderId": o.id, "symbol": o.symbol, "status": o.status.wire(),
        "clientOrderId": o.client_id, "price": text(o.price), "avgPrice": text(o.avg_price()),
        "origQty": text(o.qty), "executedQty": text(o.filled), "cumQty": text(o.filled),
        "cumQuote": text(o.quote), "timeInForce": o.tif.wire(), "type": o.kind.wire(),
        "reduceOnly": o.reduce_only, "closePosition": false, "side": o.side.wire(),
        "positionSide": o.leg.wire(), "stopPrice": "0", "workingType": "CONTRACT_PRICE",
        "priceProtect": false, "origType": o.kind.wire(), "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "updateTime": o.update_time});
    if with_time {
        v["time"] = json!(o.time);
    }
    v
}

/// Binance's alphabet of client order ids: `^[\.A-Z\:/a-z0-9_-]{1,36}$`.
fn valid_client_id(c: &str) -> bool {
    (1..=36).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))
}

fn bool_param(raw: &RawRequest, name: &'static str) -> Result<bool, ApiError> {
    match raw.param(name) {
        None | Some("false") | Some("FALSE") => Ok(false),
        Some("true") | Some("TRUE") => Ok(true),
        Some(_) => Err(ApiError::missing(name)),
    }
}

async fn new_order(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let side = match raw.required("side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(ApiError::missing("side")),
    };
    let kind = match raw.required("type")? {
        "MARKET" => OrderKind::Market,
        "LIMIT" => OrderKind::Limit,
        _ => return Err(ApiError::from_code(400, -1116, "Invalid orderType.")),
    };
    let tif = match (kind, raw.param("timeInForce")) {
        (OrderKind::Market, _) => None,
        (OrderKind::Limit, None) => return Err(ApiError::missing("timeInForce")),
        (OrderKind::Limit, Some(t)) => Some(
            Tif::parse(t).ok_or_else(|| ApiError::from_code(400, -1115, "Invalid timeInForce."))?,
        ),
    };
    let price = match kind {
        OrderKind::Market => None,
        OrderKind::Limit => Some(
            raw.parsed("price")?
                .ok_or_else(|| ApiError::missing("price"))?,
        ),
    };
    let full = match raw.param("newOrderRespType") {
        None | Some("ACK") => false,
        Some("RESULT") => true,
        Some(_) => return Err(ApiError::from_code(400, -1116, "Invalid newOrderRespType.")),
    };
    let req = OrderRequest {
        symbol: raw.required("symbol")?.to_owned(),
        side,
        kind,
        qty: raw
            .parsed("quantity")?
            .ok_or_else(|| ApiError::missing("quantity"))?,
        price,
        tif,
        leg: leg_param(&raw)?,
        reduce_only: bool_param(&raw, "reduceOnly")?,
        client_id: raw.decoded("newClientOrderId"),
    };
    if req
        .client_id
        .as_deref()
        .is_some_and(|c| !valid_client_id(c))
    {
        return Err(ApiError::from_code(
            400,
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        ));
    }
    let now = now_ms();
    let id = sim.exchange.place_order(a, req, now)?;
    sim.publish();
    let order = &sim.exchange.accounts()[a].orders[&id];
    if full {
        return Ok(axum::Json(order_json(order, false)));
    }
    // ACK: the order as accepted, before matching.
    let accepted = Order {
        filled: rust_decimal::Decimal::ZERO,
        quote: rust_decimal::Decimal::ZERO,
        status: OrderStatus::New,
        update_time: order.time,
        ..order.clone()
    };
    Ok(axum::Json(order_json(&accepted, false)))
}

/// `orderId` or `origClientOrderId`, one of them mandatory.
fn order_ref(raw: &RawRequest) -> Result<(Option<u64>, Option<String>), ApiError> {
    let id: Option<u64> = raw.parsed("orderId")?;
    let client = raw.decoded("origClientOrderId");
    if id.is_none() && client.is_none() {
        return Err(ApiError::from_code(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    }
    Ok((id, client))
}

async fn cancel_order(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let mut sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.required("symbol")?.to_owned();
    let (id, client) = order_ref(&raw)?;
    let order = sim
        .exchange
        .cancel_order(a, &symbol, id, client.as_deref(), now_ms())
        .map_err(|_| ApiError::from_code(400, -2011, "Unknown order sent."))?;
    sim.publish();
    Ok(axum::Json(order_json(&order, false)))
}

async fn query_order(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.required("symbol")?;
    let (id, client) = order_ref(&raw)?;
    sim.exchange.accounts()[a]
        .find_order(symbol, id, client.as_deref())
        .map(|o| axum::Json(order_json(o, true)))
        .ok_or_else(|| ApiError::from_code(400, -2013, "Order does not exist."))
}

/// `GET /fapi/v1/openOrder`: one order, only while it is open.
async fn query_open_order(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.required("symbol")?;
    let (id, client) = order_ref(&raw)?;
    sim.exchange.accounts()[a]
        .find_order(symbol, id, client.as_deref())
        .filter(|o| o.status.is_open())
        .map(|o| axum::Json(order_json(o, true)))
        .ok_or_else(|| ApiError::from_code(400, -2013, "Order does not exist."))
}

async fn open_orders(State(sim): State<Shared>, raw: RawRequest) -> ApiResult {
    let sim = lock(&sim);
    let a = signed(&sim, &raw)?;
    let symbol = raw.param("symbol");
    let rows: Vec<Value> = sim.exchange.accounts()[a]
        .open_orders(symbol)
        .map(|o| order_json(o, true))
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}
