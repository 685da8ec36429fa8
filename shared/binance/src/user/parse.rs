//! Pure parsers: user-data wire events + the account alias → domain events.

use acctmon_domain::{
    Account, BalanceUpdate, Commission, ConfigChange, ConfigUpdate, Event, Fill, FillSource,
    Funding, MarginCall, MarginCallPosition, OrderUpdate, PositionUpdate, StreamNotice,
    StreamStatus, Timestamp, Transfer,
};
use rust_decimal::Decimal;

use super::wire::{
    ACCOUNT_CONFIG_UPDATE, ACCOUNT_UPDATE, AccountConfigUpdateEvent, AccountUpdateEvent,
    MARGIN_CALL, MarginCallEvent, ORDER_TRADE_UPDATE, OrderTradeUpdateEvent, TRADE_LITE,
    TradeLiteEvent, UserEvent,
};
use crate::ParseError;
use crate::names::{
    asset, margin_type, opt_asset, opt_symbol, order_status, position_side, side, symbol,
};

/// `ORDER_TRADE_UPDATE` → the fill it reports, if any, and the order update.
///
/// A fill is reported when the execution type `x` is `TRADE` (or `CALCULATED`, a liquidation) and the
/// quantity of this event `l` is positive. Its time is the trade time `o.T`; the order update's time is the
/// transaction time `T`. Both carry the event time `E`.
pub fn parse_order_trade_update(
    account: &Account,
    event: &OrderTradeUpdateEvent<'_>,
) -> Result<(Option<Fill>, OrderUpdate), ParseError> {
    const P: &str = ORDER_TRADE_UPDATE;
    let o = &event.order;
    let symbol = symbol(P, "o.s", &o.symbol)?;
    let side = side(P, "o.S", &o.side)?;
    let position_side = position_side(P, "o.ps", &o.position_side)?;
    let event_time = Timestamp(event.event_time);

    let is_fill =
        matches!(&*o.execution_type, "TRADE" | "CALCULATED") && o.last_filled_qty > Decimal::ZERO;
    let fill = if is_fill {
        let commission = match (&o.commission_asset, o.commission) {
            (Some(asset_name), Some(amount)) => Some(Commission {
                asset: asset(P, "o.N", asset_name)?,
                amount,
            }),
            _ => None,
        };
        Some(Fill {
            account: account.clone(),
            symbol: symbol.clone(),
            trade_id: o.trade_id,
            order_id: o.order_id,
            client_order_id: Some(o.client_order_id.to_string()),
            side,
            position_side: Some(position_side),
            price: o.last_filled_price,
            qty: o.last_filled_qty,
            commission,
            realized_pnl: o.realized_profit,
            margin_asset: None,
            maker: o.is_maker,
            time: Timestamp(o.trade_time),
            event_time,
            source: FillSource::OrderUpdate,
        })
    } else {
        None
    };

    let order = OrderUpdate {
        account: account.clone(),
        symbol,
        order_id: o.order_id,
        client_order_id: o.client_order_id.to_string(),
        side,
        position_side,
        order_type: o.order_type.to_string(),
        execution: o.execution_type.to_string(),
        status: order_status(&o.status),
        orig_qty: o.orig_qty,
        price: o.price,
        avg_price: o.avg_price,
        filled_qty: o.cumulative_filled_qty,
        reduce_only: o.reduce_only,
        time: Timestamp(event.transaction_time),
        event_time,
    };
    Ok((fill, order))
}

/// `TRADE_LITE` → a fill without commission, realized P&L or position side (the event has none).
pub fn parse_trade_lite(account: &Account, event: &TradeLiteEvent<'_>) -> Result<Fill, ParseError> {
    const P: &str = TRADE_LITE;
    Ok(Fill {
        account: account.clone(),
        symbol: symbol(P, "s", &event.symbol)?,
        trade_id: event.trade_id,
        order_id: event.order_id,
        client_order_id: Some(event.client_order_id.to_string()),
        side: side(P, "S", &event.side)?,
        position_side: None,
        price: event.last_filled_price,
        qty: event.last_filled_qty,
        commission: None,
        realized_pnl: None,
        margin_asset: None,
        maker: event.is_maker,
        time: Timestamp(event.transaction_time),
        event_time: Timestamp(event.event_time),
        source: FillSource::TradeLite,
    })
}

/// `ACCOUNT_UPDATE` reasons for money the owner moved in or out; daily P&L excludes them. Every other
/// reason (rebates, insurance clearance, adjustments, options, auto-exchange, unknown ones) is income.
const EXTERNAL_REASONS: [&str; 8] = [
    "DEPOSIT",
    "WITHDRAW",
    "WITHDRAW_REJECT",
    "MARGIN_TRANSFER",
    "ASSET_TRANSFER",
    "ADMIN_WITHDRAW",
    "COIN_SWAP_DEPOSIT",
    "COIN_SWAP_WITHDRAW",
];

/// `ACCOUNT_UPDATE` → in this order: one money movement per balance row with a non-zero `bc`
/// ([`Funding`] for `FUNDING_FEE`, else [`Transfer`]), one [`PositionUpdate`] per `P` row, one
/// [`BalanceUpdate`] per `B` row.
///
/// `bc` excludes realized P&L and commission, so for `m = ORDER` it is normally zero and nothing is
/// emitted as a movement: the fills carry those.
pub fn parse_account_update(
    account: &Account,
    event: &AccountUpdateEvent<'_>,
) -> Result<Vec<Event>, ParseError> {
    let mut out =
        Vec::with_capacity(event.update.balances.len() * 2 + event.update.positions.len());
    push_account_update(account, event, &mut out)?;
    Ok(out)
}

pub(crate) fn push_account_update(
    account: &Account,
    event: &AccountUpdateEvent<'_>,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    const P: &str = ACCOUNT_UPDATE;
    let a = &event.update;
    let reason = &*a.reason;
    let time = Timestamp(event.transaction_time);
    let event_time = Timestamp(event.event_time);

    for row in &a.balances {
        let Some(amount) = row.balance_change.filter(|bc| !bc.is_zero()) else {
            continue;
        };
        let asset = asset(P, "a.B[].a", &row.asset)?;
        out.push(if reason == "FUNDING_FEE" {
            Event::Funding(Funding {
                account: account.clone(),
                asset,
                symbol: opt_symbol(P, "a.S", a.symbol.as_deref())?,
                amount,
                tran_id: None,
                time,
                event_time,
            })
        } else {
            Event::Transfer(Transfer {
                account: account.clone(),
                asset,
                amount,
                reason: reason.to_owned(),
                external: EXTERNAL_REASONS.contains(&reason),
                tran_id: None,
                time,
                event_time,
            })
        });
    }

    for row in &a.positions {
        out.push(Event::Position(PositionUpdate {
            account: account.clone(),
            symbol: symbol(P, "a.P[].s", &row.symbol)?,
            side: position_side(P, "a.P[].ps", &row.position_side)?,
            qty: row.position_amount,
            entry_price: row.entry_price,
            breakeven_price: row.breakeven_price,
            accumulated_realized: row.accumulated_realized,
            unrealized: row.unrealized_pnl,
            margin_type: margin_type(P, "a.P[].mt", row.margin_type.as_deref())?,
            isolated_wallet: row.isolated_wallet,
            margin_asset: opt_asset(P, "a.P[].ma", row.margin_asset.as_deref())?,
            reason: reason.to_owned(),
            time,
            event_time,
        }));
    }

    for row in &a.balances {
        out.push(Event::Balance(BalanceUpdate {
            account: account.clone(),
            asset: asset(P, "a.B[].a", &row.asset)?,
            wallet: row.wallet_balance,
            cross_wallet: row.cross_wallet_balance,
            reason: reason.to_owned(),
            time,
            event_time,
        }));
    }
    Ok(())
}

/// `MARGIN_CALL` → [`MarginCall`]. Its margin types are upper-case (`CROSSED` / `ISOLATED`).
pub fn parse_margin_call(
    account: &Account,
    event: &MarginCallEvent<'_>,
) -> Result<MarginCall, ParseError> {
    const P: &str = MARGIN_CALL;
    let positions = event
        .positions
        .iter()
        .map(|row| {
            Ok(MarginCallPosition {
                symbol: symbol(P, "p[].s", &row.symbol)?,
                side: position_side(P, "p[].ps", &row.position_side)?,
                qty: row.position_amount,
                margin_type: margin_type(P, "p[].mt", row.margin_type.as_deref())?,
                isolated_wallet: row.isolated_wallet,
                mark_price: row.mark_price,
                unrealized: row.unrealized_pnl,
                maint_margin: row.maint_margin,
            })
        })
        .collect::<Result<_, ParseError>>()?;
    Ok(MarginCall {
        account: account.clone(),
        cross_wallet: event.cross_wallet_balance,
        positions,
        event_time: Timestamp(event.event_time),
    })
}

/// `ACCOUNT_CONFIG_UPDATE` → a leverage change (`ac`) and/or a multi-assets mode change (`ai`).
/// An event with neither is refused.
pub fn parse_account_config_update(
    account: &Account,
    event: &AccountConfigUpdateEvent<'_>,
) -> Result<Vec<ConfigUpdate>, ParseError> {
    const P: &str = ACCOUNT_CONFIG_UPDATE;
    let update = |change| ConfigUpdate {
        account: account.clone(),
        change,
        time: Timestamp(event.transaction_time),
        event_time: Timestamp(event.event_time),
    };
    let mut out = Vec::with_capacity(1);
    if let Some(ac) = &event.symbol_config {
        out.push(update(ConfigChange::Leverage {
            symbol: symbol(P, "ac.s", &ac.symbol)?,
            leverage: ac.leverage,
        }));
    }
    if let Some(ai) = &event.account_config {
        out.push(update(ConfigChange::MultiAssets {
            enabled: ai.multi_assets,
        }));
    }
    if out.is_empty() {
        return Err(ParseError::Missing {
            payload: P,
            what: "both `ac` (symbol config) and `ai` (account config)".to_owned(),
        });
    }
    Ok(out)
}

/// A stream event this crate reads but the books do not use (`ALGO_UPDATE`,
/// `CONDITIONAL_ORDER_TRIGGER_REJECT`, `STRATEGY_UPDATE`, `GRID_UPDATE`, unknown names) → a notice that
/// keeps its name. Fills of algo orders are not lost: they arrive as `ORDER_TRADE_UPDATE` of the
/// triggered order.
pub fn other_event_notice(account: &Account, name: &str, event_time: i64) -> StreamNotice {
    StreamNotice {
        account: account.clone(),
        status: StreamStatus::Other {
            event: name.to_owned(),
        },
        time: Timestamp(event_time),
    }
}

/// Any user-data event → its domain events, in the order described on each `parse_*` function.
pub fn parse_user_event(
    account: &Account,
    event: &UserEvent<'_>,
) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::with_capacity(2);
    push_user_event(account, event, &mut out)?;
    Ok(out)
}

pub(crate) fn push_user_event(
    account: &Account,
    event: &UserEvent<'_>,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    match event {
        UserEvent::OrderTradeUpdate(e) => {
            let (fill, order) = parse_order_trade_update(account, e)?;
            if let Some(fill) = fill {
                out.push(Event::Fill(fill));
            }
            out.push(Event::Order(order));
        }
        UserEvent::TradeLite(e) => out.push(Event::Fill(parse_trade_lite(account, e)?)),
        UserEvent::AccountUpdate(e) => push_account_update(account, e, out)?,
        UserEvent::MarginCall(e) => out.push(Event::MarginCall(parse_margin_call(account, e)?)),
        UserEvent::AccountConfigUpdate(e) => out.extend(
            parse_account_config_update(account, e)?
                .into_iter()
                .map(Event::Config),
        ),
        UserEvent::ListenKeyExpired(e) => out.push(Event::Stream(StreamNotice {
            account: account.clone(),
            status: StreamStatus::Expired,
            time: Timestamp(e.event_time),
        })),
        UserEvent::AlgoUpdate(_)
        | UserEvent::ConditionalOrderTriggerReject(_)
        | UserEvent::StrategyUpdate(_)
        | UserEvent::GridUpdate(_)
        | UserEvent::Unknown(_) => out.push(Event::Stream(other_event_notice(
            account,
            event.name(),
            event.event_time(),
        ))),
    }
    Ok(())
}
