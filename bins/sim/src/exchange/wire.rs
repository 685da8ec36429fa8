//! The user-data payloads Binance pushes, built from the exchange's state with every field Binance sends.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Leg, Order, PositionState, margin_asset, round8};

/// One execution of an order, for its `TRADE` report.
#[derive(Debug, Clone)]
pub struct Execution<'a> {
    /// Quantity of this fill.
    pub qty: Decimal,
    /// Price of this fill.
    pub price: Decimal,
    /// Commission charged.
    pub fee: Decimal,
    /// Commission asset.
    pub fee_asset: &'a str,
    /// Trade id.
    pub trade_id: u64,
    /// Realized P&L, gross of fees.
    pub realized: Decimal,
    /// Maker side of the trade.
    pub maker: bool,
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// An `ORDER_TRADE_UPDATE` with execution type `exec` (`NEW`, `TRADE`, `CANCELED`, `EXPIRED`).
pub fn order_update(order: &Order, exec: &str, fill: Option<&Execution<'_>>, time: i64) -> String {
    let avg = order.avg_price();
    let (l, last_price, fee, fee_asset, trade_id, realized, maker) = match fill {
        Some(f) => (
            text(f.qty),
            text(f.price),
            text(f.fee),
            f.fee_asset,
            f.trade_id,
            text(f.realized),
            f.maker,
        ),
        None => (
            "0".to_owned(),
            "0".to_owned(),
            "0".to_owned(),
            margin_asset(&order.symbol),
            0,
            "0".to_owned(),
            false,
        ),
    };
    json!({"e": "ORDER_TRADE_UPDATE", "T": time, "E": time, "o": {
        "s": order.symbol, "c": order.client_id, "S": order.side.wire(), "o": order.kind.wire(),
        "f": order.tif.wire(), "q": text(order.qty), "p": text(order.price), "ap": text(avg), "sp": "0",
        "x": exec, "X": order.status.wire(), "i": order.id, "l": l, "z": text(order.filled),
        "L": last_price, "n": fee, "N": fee_asset, "T": time, "t": trade_id, "b": "0", "a": "0",
        "m": maker, "R": order.reduce_only, "wt": "CONTRACT_PRICE", "ot": order.kind.wire(),
        "ps": order.leg.wire(), "cp": false, "rp": realized, "pP": false, "si": 0, "ss": 0,
        "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0, "er": "0"}})
    .to_string()
}

/// A `TRADE_LITE` for one fill.
pub fn trade_lite(order: &Order, fill: &Execution<'_>, time: i64) -> String {
    json!({"e": "TRADE_LITE", "E": time, "T": time, "s": order.symbol, "q": text(order.qty),
           "p": text(order.price), "m": fill.maker, "c": order.client_id, "S": order.side.wire(),
           "L": text(fill.price), "l": text(fill.qty), "t": fill.trade_id, "i": order.id})
    .to_string()
}

/// A `B` row of an `ACCOUNT_UPDATE`.
pub fn balance_row(asset: &str, wallet: Decimal, change: Decimal) -> Value {
    json!({"a": asset, "wb": text(wallet), "cw": text(wallet), "bc": text(change)})
}

/// Breakeven price: the entry moved by the taker fee of closing (PROTOCOL §6.4).
pub fn breakeven(p: &PositionState, fee: Decimal) -> Decimal {
    if p.amount > Decimal::ZERO {
        round8(p.entry * (Decimal::ONE + fee))
    } else if p.amount < Decimal::ZERO {
        round8(p.entry * (Decimal::ONE - fee))
    } else {
        Decimal::ZERO
    }
}

/// A `P` row of an `ACCOUNT_UPDATE`.
pub fn position_row(
    symbol: &str,
    leg: Leg,
    p: &PositionState,
    mark: Decimal,
    fee: Decimal,
) -> Value {
    let unrealized = round8(p.amount * (mark - p.entry));
    json!({"s": symbol, "pa": text(p.amount), "ep": text(p.entry), "cr": text(p.cum_realized),
           "up": text(unrealized), "mt": "cross", "iw": "0", "ps": leg.wire(), "ma": margin_asset(symbol),
           "bep": text(breakeven(p, fee))})
}

/// An `ACCOUNT_UPDATE` with reason `m`, and `a.S` for funding.
pub fn account_update(
    time: i64,
    reason: &str,
    balances: Vec<Value>,
    positions: Vec<Value>,
    symbol: Option<&str>,
) -> String {
    let mut a = json!({"m": reason, "B": balances, "P": positions});
    if let Some(s) = symbol {
        a["S"] = json!(s);
    }
    json!({"e": "ACCOUNT_UPDATE", "T": time, "E": time, "a": a}).to_string()
}

/// An `ACCOUNT_CONFIG_UPDATE` for a leverage change (leverage as an integer).
pub fn leverage_update(symbol: &str, leverage: u32, time: i64) -> String {
    json!({"e": "ACCOUNT_CONFIG_UPDATE", "E": time, "T": time, "ac": {"s": symbol, "l": leverage}})
        .to_string()
}

/// One position of a `MARGIN_CALL`.
#[derive(Debug, Clone)]
pub struct MarginCallRow<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Leg.
    pub leg: Leg,
    /// Amount.
    pub amount: Decimal,
    /// Mark price.
    pub mark: Decimal,
    /// Unrealized P&L.
    pub unrealized: Decimal,
    /// Maintenance margin.
    pub maint: Decimal,
}

/// A `MARGIN_CALL` (cross margin: `cw` present, `mt` upper case).
pub fn margin_call(cross_wallet: Decimal, rows: &[MarginCallRow<'_>], time: i64) -> String {
    let p: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"s": r.symbol, "ps": r.leg.wire(), "pa": text(r.amount), "mt": "CROSSED", "iw": "0",
                   "mp": text(r.mark), "up": text(r.unrealized), "mm": text(round8(r.maint))})
        })
        .collect();
    json!({"e": "MARGIN_CALL", "E": time, "cw": text(cross_wallet), "p": p}).to_string()
}

/// A `markPriceUpdate`.
pub fn mark_price_update(
    symbol: &str,
    mark: Decimal,
    rate: Decimal,
    next_funding: i64,
    time: i64,
) -> String {
    let p = format!("{:.8}", mark);
    json!({"e": "markPriceUpdate", "E": time, "s": symbol, "p": p, "ap": p, "i": p, "P": p,
           "r": format!("{:.8}", rate), "T": next_funding})
    .to_string()
}
