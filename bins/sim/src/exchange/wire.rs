//! The user-data payloads Binance pushes, built from the exchange's state with every field Binance sends.

use std::fmt::Write as _;

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

/// Appends a decimal as Binance prints it (no trailing zeros).
fn dec(out: &mut String, d: Decimal) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{}", d.normalize());
}

/// An `ORDER_TRADE_UPDATE` with execution type `exec` (`NEW`, `TRADE`, `CANCELED`, `EXPIRED`), in
/// Binance's field order. Built by hand: this is the firehose's hot path. Names and ids written
/// unescaped are validated where they enter (symbols served, client ids of Binance's alphabet).
pub fn order_update(order: &Order, exec: &str, fill: Option<&Execution<'_>>, time: i64) -> String {
    let mut s = String::with_capacity(640);
    let _ = write!(
        s,
        "{{\"e\":\"ORDER_TRADE_UPDATE\",\"T\":{time},\"E\":{time},\"o\":{{\"s\":\"{}\",\"c\":\"{}\",\"S\":\"{}\",\"o\":\"{}\",\"f\":\"{}\",\"q\":\"",
        order.symbol,
        order.client_id,
        order.side.wire(),
        order.kind.wire(),
        order.tif.wire()
    );
    dec(&mut s, order.qty);
    s.push_str("\",\"p\":\"");
    dec(&mut s, order.price);
    s.push_str("\",\"ap\":\"");
    dec(&mut s, order.avg_price());
    let _ = write!(
        s,
        "\",\"sp\":\"0\",\"x\":\"{exec}\",\"X\":\"{}\",\"i\":{},\"l\":\"",
        order.status.wire(),
        order.id
    );
    match fill {
        Some(f) => dec(&mut s, f.qty),
        None => s.push('0'),
    }
    s.push_str("\",\"z\":\"");
    dec(&mut s, order.filled);
    s.push_str("\",\"L\":\"");
    match fill {
        Some(f) => dec(&mut s, f.price),
        None => s.push('0'),
    }
    s.push_str("\",\"n\":\"");
    match fill {
        Some(f) => dec(&mut s, f.fee),
        None => s.push('0'),
    }
    let fee_asset = fill.map_or(margin_asset(&order.symbol), |f| f.fee_asset);
    let _ = write!(
        s,
        "\",\"N\":\"{fee_asset}\",\"T\":{time},\"t\":{},\"b\":\"0\",\"a\":\"0\",\"m\":{},\"R\":{},\"wt\":\"CONTRACT_PRICE\",\"ot\":\"{}\",\"ps\":\"{}\",\"cp\":false,\"rp\":\"",
        fill.map_or(0, |f| f.trade_id),
        fill.is_some_and(|f| f.maker),
        order.reduce_only,
        order.kind.wire(),
        order.leg.wire()
    );
    match fill {
        Some(f) => dec(&mut s, f.realized),
        None => s.push('0'),
    }
    s.push_str(
        "\",\"pP\":false,\"si\":0,\"ss\":0,\"V\":\"EXPIRE_MAKER\",\"pm\":\"NONE\",\"gtd\":0,\"er\":\"0\"}}",
    );
    s
}

/// A `TRADE_LITE` for one fill.
pub fn trade_lite(order: &Order, fill: &Execution<'_>, time: i64) -> String {
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "{{\"e\":\"TRADE_LITE\",\"E\":{time},\"T\":{time},\"s\":\"{}\",\"q\":\"",
        order.symbol
    );
    dec(&mut s, order.qty);
    s.push_str("\",\"p\":\"");
    dec(&mut s, order.price);
    let _ = write!(
        s,
        "\",\"m\":{},\"c\":\"{}\",\"S\":\"{}\",\"L\":\"",
        fill.maker,
        order.client_id,
        order.side.wire()
    );
    dec(&mut s, fill.price);
    s.push_str("\",\"l\":\"");
    dec(&mut s, fill.qty);
    let _ = write!(s, "\",\"t\":{},\"i\":{}}}", fill.trade_id, order.id);
    s
}

/// A `B` row of an `ACCOUNT_UPDATE`.
pub fn balance_row(asset: &str, wallet: Decimal, change: Decimal) -> String {
    let mut s = String::with_capacity(96);
    let _ = write!(s, "{{\"a\":\"{asset}\",\"wb\":\"");
    dec(&mut s, wallet);
    s.push_str("\",\"cw\":\"");
    dec(&mut s, wallet);
    s.push_str("\",\"bc\":\"");
    dec(&mut s, change);
    s.push_str("\"}");
    s
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
) -> String {
    let mut s = String::with_capacity(200);
    let _ = write!(s, "{{\"s\":\"{symbol}\",\"pa\":\"");
    dec(&mut s, p.amount);
    s.push_str("\",\"ep\":\"");
    dec(&mut s, p.entry);
    s.push_str("\",\"cr\":\"");
    dec(&mut s, p.cum_realized);
    s.push_str("\",\"up\":\"");
    dec(&mut s, round8(p.amount * (mark - p.entry)));
    let _ = write!(
        s,
        "\",\"mt\":\"cross\",\"iw\":\"0\",\"ps\":\"{}\",\"ma\":\"{}\",\"bep\":\"",
        leg.wire(),
        margin_asset(symbol)
    );
    dec(&mut s, breakeven(p, fee));
    s.push_str("\"}");
    s
}

/// An `ACCOUNT_UPDATE` with reason `m`, and `a.S` for funding.
pub fn account_update(
    time: i64,
    reason: &str,
    balances: &[String],
    positions: &[String],
    symbol: Option<&str>,
) -> String {
    let mut s = String::with_capacity(96 + balances.len() * 96 + positions.len() * 200);
    let _ = write!(
        s,
        "{{\"e\":\"ACCOUNT_UPDATE\",\"T\":{time},\"E\":{time},\"a\":{{\"m\":\"{reason}\",\"B\":[{}],\"P\":[{}]",
        balances.join(","),
        positions.join(",")
    );
    if let Some(symbol) = symbol {
        let _ = write!(s, ",\"S\":\"{symbol}\"");
    }
    s.push_str("}}");
    s
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
