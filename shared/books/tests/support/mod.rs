//! Builders for events in book tests.
// Test helpers: a malformed literal here is a bug in the test, so panicking is the right report.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use acctmon_domain::*;
use rust_decimal::Decimal;

/// The time base of [`fill`]'s times (fill `id` is stamped `BASE + id` seconds).
pub const BASE: i64 = 1_700_000_000_000;

pub fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

pub fn account() -> Account {
    Account::new("main").unwrap()
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

pub fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

/// A full fill report (`ORDER_TRADE_UPDATE`) with a commission in USDT and no `rp`.
pub fn fill(
    id: u64,
    symbol: &str,
    side: Side,
    ps: PositionSide,
    qty: &str,
    price: &str,
    fee: &str,
) -> Fill {
    Fill {
        account: account(),
        symbol: sym(symbol),
        trade_id: id,
        order_id: id * 10,
        client_order_id: None,
        side,
        position_side: Some(ps),
        price: d(price),
        qty: d(qty),
        commission: Some(Commission {
            asset: asset("USDT"),
            amount: d(fee),
        }),
        realized_pnl: None,
        margin_asset: None,
        maker: false,
        time: Timestamp(BASE + id as i64 * 1000),
        event_time: Timestamp(BASE + id as i64 * 1000),
        source: FillSource::OrderUpdate,
    }
}

pub fn with_rp(mut f: Fill, rp: &str) -> Fill {
    f.realized_pnl = Some(d(rp));
    f
}

pub fn lite(f: &Fill) -> Fill {
    Fill {
        position_side: None,
        commission: None,
        realized_pnl: None,
        source: FillSource::TradeLite,
        ..f.clone()
    }
}

pub fn position_row(
    symbol: &str,
    ps: PositionSide,
    qty: &str,
    entry: &str,
    time: Timestamp,
) -> Event {
    Event::Position(PositionUpdate {
        account: account(),
        symbol: sym(symbol),
        side: ps,
        qty: d(qty),
        entry_price: d(entry),
        breakeven_price: None,
        accumulated_realized: None,
        unrealized: None,
        margin_type: Some(MarginType::Cross),
        isolated_wallet: None,
        margin_asset: Some(asset("USDT")),
        reason: "ORDER".into(),
        time,
        event_time: time,
    })
}

pub fn balance_row(a: &str, wallet: &str, time: Timestamp) -> Event {
    Event::Balance(BalanceUpdate {
        account: account(),
        asset: asset(a),
        wallet: d(wallet),
        cross_wallet: None,
        reason: "ORDER".into(),
        time,
        event_time: time,
    })
}

pub fn mark(symbol: &str, price: &str, time: i64) -> Event {
    Event::Mark(MarkPrice {
        symbol: sym(symbol),
        mark_price: d(price),
        index_price: None,
        funding_rate: None,
        next_funding_time: None,
        time: Timestamp(time),
    })
}

pub fn funding(a: &str, symbol: Option<&str>, amount: &str, time: i64) -> Event {
    Event::Funding(Funding {
        account: account(),
        asset: asset(a),
        symbol: symbol.map(sym),
        amount: d(amount),
        tran_id: None,
        time: Timestamp(time),
        event_time: Timestamp(time),
    })
}

pub fn transfer(a: &str, amount: &str, external: bool, time: i64) -> Event {
    Event::Transfer(Transfer {
        account: account(),
        asset: asset(a),
        amount: d(amount),
        reason: if external { "DEPOSIT" } else { "ADMIN_DEPOSIT" }.into(),
        external,
        tran_id: None,
        time: Timestamp(time),
        event_time: Timestamp(time),
    })
}
