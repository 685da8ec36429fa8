//! Serde mirrors of the user-data stream events (PROTOCOL §2), field for field.
//!
//! Rules for every type here:
//! - Field names are Binance's one-letter keys, renamed to words; the doc of each field names its key.
//! - Unknown fields are ignored (Binance adds fields without notice: `ma`, `st`, `a.S`, `er` …).
//! - A field is required only when the parsers need it to build a correct domain event; every other field
//!   is `Option` and may be absent (`bc`, `bep`, `N`, `n` are missing from older payloads).
//! - Strings borrow from the input text (`Cow`), decimals are [`Decimal`], ids are `u64`, times are `i64`
//!   milliseconds.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::reader::{GiveUp, Object, read_object, set};
use crate::scalar::{opt_str, read, read_opt};

/// Event name of [`OrderTradeUpdateEvent`].
pub const ORDER_TRADE_UPDATE: &str = "ORDER_TRADE_UPDATE";
/// Event name of [`TradeLiteEvent`].
pub const TRADE_LITE: &str = "TRADE_LITE";
/// Event name of [`AccountUpdateEvent`].
pub const ACCOUNT_UPDATE: &str = "ACCOUNT_UPDATE";
/// Event name of [`MarginCallEvent`].
pub const MARGIN_CALL: &str = "MARGIN_CALL";
/// Event name of [`AccountConfigUpdateEvent`].
pub const ACCOUNT_CONFIG_UPDATE: &str = "ACCOUNT_CONFIG_UPDATE";
/// Event name of [`AlgoUpdateEvent`].
pub const ALGO_UPDATE: &str = "ALGO_UPDATE";
/// Event name of [`ConditionalOrderTriggerRejectEvent`].
pub const CONDITIONAL_ORDER_TRIGGER_REJECT: &str = "CONDITIONAL_ORDER_TRIGGER_REJECT";
/// Event name of [`StrategyUpdateEvent`].
pub const STRATEGY_UPDATE: &str = "STRATEGY_UPDATE";
/// Event name of [`GridUpdateEvent`].
pub const GRID_UPDATE: &str = "GRID_UPDATE";
/// Event name of [`ListenKeyExpiredEvent`].
pub const LISTEN_KEY_EXPIRED: &str = "listenKeyExpired";

/// `ORDER_TRADE_UPDATE` (PROTOCOL §2.2): an order was created, changed state or filled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderTradeUpdateEvent<'a> {
    /// `e`: `"ORDER_TRADE_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction (matching) time, ms.
    #[serde(rename = "T", deserialize_with = "read")]
    pub transaction_time: i64,
    /// `o`: the order.
    #[serde(rename = "o", borrow)]
    pub order: OrderTradeData<'a>,
}

/// `ORDER_TRADE_UPDATE.o`: the order and, for `x = TRADE`/`CALCULATED`, the fill.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderTradeData<'a> {
    /// `s`: symbol (may be non-ASCII since 2025-10).
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `c`: client order id (`autoclose-…` liquidation, `adl_autoclose` ADL, the algo's id for triggered
    /// algo orders).
    #[serde(rename = "c", borrow)]
    pub client_order_id: Cow<'a, str>,
    /// `S`: side, `BUY` / `SELL`.
    #[serde(rename = "S", borrow)]
    pub side: Cow<'a, str>,
    /// `o`: order type (`LIMIT`, `MARKET`, `STOP`, `LIQUIDATION` …).
    #[serde(rename = "o", borrow)]
    pub order_type: Cow<'a, str>,
    /// `f`: time in force (`GTC`, `IOC`, `FOK`, `GTX`, `GTD`).
    #[serde(rename = "f", default, borrow, deserialize_with = "opt_str")]
    pub time_in_force: Option<Cow<'a, str>>,
    /// `q`: original quantity.
    #[serde(rename = "q", deserialize_with = "read")]
    pub orig_qty: Decimal,
    /// `p`: original price (`0` for market orders).
    #[serde(rename = "p", deserialize_with = "read")]
    pub price: Decimal,
    /// `ap`: average fill price.
    #[serde(rename = "ap", deserialize_with = "read")]
    pub avg_price: Decimal,
    /// `sp`: stop price.
    #[serde(rename = "sp", default, deserialize_with = "read_opt")]
    pub stop_price: Option<Decimal>,
    /// `x`: execution type of this event (`NEW`, `CANCELED`, `CALCULATED`, `EXPIRED`, `TRADE`, `AMENDMENT`).
    #[serde(rename = "x", borrow)]
    pub execution_type: Cow<'a, str>,
    /// `X`: order status after this event.
    #[serde(rename = "X", borrow)]
    pub status: Cow<'a, str>,
    /// `i`: order id (can exceed 2^53).
    #[serde(rename = "i", deserialize_with = "read")]
    pub order_id: u64,
    /// `l`: quantity filled by this event.
    #[serde(rename = "l", deserialize_with = "read")]
    pub last_filled_qty: Decimal,
    /// `z`: cumulative filled quantity.
    #[serde(rename = "z", deserialize_with = "read")]
    pub cumulative_filled_qty: Decimal,
    /// `L`: price of this fill.
    #[serde(rename = "L", deserialize_with = "read")]
    pub last_filled_price: Decimal,
    /// `N`: commission asset (absent in older payloads when there was no commission).
    #[serde(rename = "N", default, borrow, deserialize_with = "opt_str")]
    pub commission_asset: Option<Cow<'a, str>>,
    /// `n`: commission of this fill; positive = paid, negative = rebate.
    #[serde(rename = "n", default, deserialize_with = "read_opt")]
    pub commission: Option<Decimal>,
    /// `T`: trade time, ms.
    #[serde(rename = "T", deserialize_with = "read")]
    pub trade_time: i64,
    /// `t`: trade id (0 when this event is not a fill).
    #[serde(rename = "t", deserialize_with = "read")]
    pub trade_id: u64,
    /// `b`: bids notional.
    #[serde(rename = "b", default, deserialize_with = "read_opt")]
    pub bids_notional: Option<Decimal>,
    /// `a`: ask notional.
    #[serde(rename = "a", default, deserialize_with = "read_opt")]
    pub ask_notional: Option<Decimal>,
    /// `m`: this fill was on the maker side.
    #[serde(rename = "m")]
    pub is_maker: bool,
    /// `R`: reduce-only.
    #[serde(rename = "R")]
    pub reduce_only: bool,
    /// `wt`: stop price working type (`MARK_PRICE` / `CONTRACT_PRICE`).
    #[serde(rename = "wt", default, borrow, deserialize_with = "opt_str")]
    pub working_type: Option<Cow<'a, str>>,
    /// `ot`: original order type.
    #[serde(rename = "ot", default, borrow, deserialize_with = "opt_str")]
    pub original_order_type: Option<Cow<'a, str>>,
    /// `ps`: position side, `BOTH` / `LONG` / `SHORT`.
    #[serde(rename = "ps", borrow)]
    pub position_side: Cow<'a, str>,
    /// `cp`: close-all (conditional order with closePosition).
    #[serde(rename = "cp", default)]
    pub close_position: Option<bool>,
    /// `AP`: activation price (trailing stop only).
    #[serde(rename = "AP", default, deserialize_with = "read_opt")]
    pub activation_price: Option<Decimal>,
    /// `cr`: callback rate (trailing stop only).
    #[serde(rename = "cr", default, deserialize_with = "read_opt")]
    pub callback_rate: Option<Decimal>,
    /// `pP`: price protection.
    #[serde(rename = "pP", default)]
    pub price_protect: Option<bool>,
    /// `si`: documented "ignore"; the algo id on algo-triggered orders.
    #[serde(rename = "si", default, deserialize_with = "read_opt")]
    pub si: Option<i64>,
    /// `ss`: documented "ignore"; `-1` on algo-triggered orders.
    #[serde(rename = "ss", default, deserialize_with = "read_opt")]
    pub ss: Option<i64>,
    /// `rp`: realized profit of this trade, gross of fees.
    #[serde(rename = "rp", default, deserialize_with = "read_opt")]
    pub realized_profit: Option<Decimal>,
    /// `V`: self-trade prevention mode.
    #[serde(rename = "V", default, borrow, deserialize_with = "opt_str")]
    pub stp_mode: Option<Cow<'a, str>>,
    /// `pm`: price match mode.
    #[serde(rename = "pm", default, borrow, deserialize_with = "opt_str")]
    pub price_match: Option<Cow<'a, str>>,
    /// `gtd`: GTD auto-cancel time (0 if none).
    #[serde(rename = "gtd", default, deserialize_with = "read_opt")]
    pub good_till_date: Option<i64>,
    /// `er`: expiry reason code (since 2025-10), as text (`"0"` … `"9"`).
    #[serde(rename = "er", default, borrow, deserialize_with = "opt_str")]
    pub expiry_reason: Option<Cow<'a, str>>,
    /// `M`: modify id, on `AMENDMENT` events when the request supplied one.
    #[serde(rename = "M", default, borrow, deserialize_with = "opt_str")]
    pub modify_id: Option<Cow<'a, str>>,
    /// `st`: undocumented; `"ALGO_CONDITION"` on orders spawned by an algo trigger.
    #[serde(rename = "st", default, borrow, deserialize_with = "opt_str")]
    pub strategy_type: Option<Cow<'a, str>>,
}

impl<'a> OrderTradeUpdateEvent<'a> {
    /// Reads the event by hand, field by field: the hot path (see [`crate::reader`]). `None` for anything
    /// outside Binance's usual encoding, or invalid: the caller then reads the text through serde, which
    /// decides. Must agree with the derived `Deserialize` whenever it succeeds (tested on every fixture).
    pub(crate) fn read_fast(text: &'a str) -> Option<Self> {
        read_object(text, |event| {
            let (mut event_type, mut event_time, mut transaction_time, mut order) =
                (None, None, None, None);
            while let Some(key) = event.next_key()? {
                match key {
                    b"e" => set(&mut event_type, event.str()?)?,
                    b"E" => set(&mut event_time, event.i64()?)?,
                    b"T" => set(&mut transaction_time, event.i64()?)?,
                    b"o" => set(&mut order, event.object(OrderTradeData::read_fields)?)?,
                    _ => event.skip()?,
                }
            }
            Ok(OrderTradeUpdateEvent {
                event_type: Cow::Borrowed(event_type.ok_or(GiveUp)?),
                event_time: event_time.ok_or(GiveUp)?,
                transaction_time: transaction_time.ok_or(GiveUp)?,
                order: order.ok_or(GiveUp)?,
            })
        })
    }
}

impl<'a> OrderTradeData<'a> {
    fn read_fields(o: &mut Object<'_, 'a>) -> Result<Self, GiveUp> {
        let (mut symbol, mut client_order_id, mut side, mut order_type) = (None, None, None, None);
        let (mut time_in_force, mut orig_qty, mut price, mut avg_price) = (None, None, None, None);
        let (mut stop_price, mut execution_type, mut status, mut order_id) =
            (None, None, None, None);
        let (mut last_filled_qty, mut cumulative_filled_qty) = (None, None);
        let (mut last_filled_price, mut commission_asset, mut commission) = (None, None, None);
        let (mut trade_time, mut trade_id, mut bids_notional, mut ask_notional) =
            (None, None, None, None);
        let (mut is_maker, mut reduce_only, mut working_type) = (None, None, None);
        let (mut original_order_type, mut position_side, mut close_position) = (None, None, None);
        let (mut activation_price, mut callback_rate, mut price_protect) = (None, None, None);
        let (mut si, mut ss, mut realized_profit, mut stp_mode) = (None, None, None, None);
        let (mut price_match, mut good_till_date, mut expiry_reason) = (None, None, None);
        let (mut modify_id, mut strategy_type) = (None, None);
        while let Some(key) = o.next_key()? {
            match key {
                b"s" => set(&mut symbol, o.str()?)?,
                b"c" => set(&mut client_order_id, o.str()?)?,
                b"S" => set(&mut side, o.str()?)?,
                b"o" => set(&mut order_type, o.str()?)?,
                b"f" => set(&mut time_in_force, o.str()?)?,
                b"q" => set(&mut orig_qty, o.decimal()?)?,
                b"p" => set(&mut price, o.decimal()?)?,
                b"ap" => set(&mut avg_price, o.decimal()?)?,
                b"sp" => set(&mut stop_price, o.decimal()?)?,
                b"x" => set(&mut execution_type, o.str()?)?,
                b"X" => set(&mut status, o.str()?)?,
                b"i" => set(&mut order_id, o.u64()?)?,
                b"l" => set(&mut last_filled_qty, o.decimal()?)?,
                b"z" => set(&mut cumulative_filled_qty, o.decimal()?)?,
                b"L" => set(&mut last_filled_price, o.decimal()?)?,
                b"N" => set(&mut commission_asset, o.str()?)?,
                b"n" => set(&mut commission, o.decimal()?)?,
                b"T" => set(&mut trade_time, o.i64()?)?,
                b"t" => set(&mut trade_id, o.u64()?)?,
                b"b" => set(&mut bids_notional, o.decimal()?)?,
                b"a" => set(&mut ask_notional, o.decimal()?)?,
                b"m" => set(&mut is_maker, o.bool()?)?,
                b"R" => set(&mut reduce_only, o.bool()?)?,
                b"wt" => set(&mut working_type, o.str()?)?,
                b"ot" => set(&mut original_order_type, o.str()?)?,
                b"ps" => set(&mut position_side, o.str()?)?,
                b"cp" => set(&mut close_position, o.bool()?)?,
                b"AP" => set(&mut activation_price, o.decimal()?)?,
                b"cr" => set(&mut callback_rate, o.decimal()?)?,
                b"pP" => set(&mut price_protect, o.bool()?)?,
                b"si" => set(&mut si, o.i64()?)?,
                b"ss" => set(&mut ss, o.i64()?)?,
                b"rp" => set(&mut realized_profit, o.decimal()?)?,
                b"V" => set(&mut stp_mode, o.str()?)?,
                b"pm" => set(&mut price_match, o.str()?)?,
                b"gtd" => set(&mut good_till_date, o.i64()?)?,
                b"er" => set(&mut expiry_reason, o.str()?)?,
                b"M" => set(&mut modify_id, o.str()?)?,
                b"st" => set(&mut strategy_type, o.str()?)?,
                _ => o.skip()?,
            }
        }
        // Optional strings: serde reads `""` as `Some("")` for them too, so no special case here.
        let text = |value: Option<&'a str>| value.map(Cow::Borrowed);
        let required = |value: Option<&'a str>| value.map(Cow::Borrowed).ok_or(GiveUp);
        Ok(OrderTradeData {
            symbol: required(symbol)?,
            client_order_id: required(client_order_id)?,
            side: required(side)?,
            order_type: required(order_type)?,
            time_in_force: text(time_in_force),
            orig_qty: orig_qty.ok_or(GiveUp)?,
            price: price.ok_or(GiveUp)?,
            avg_price: avg_price.ok_or(GiveUp)?,
            stop_price,
            execution_type: required(execution_type)?,
            status: required(status)?,
            order_id: order_id.ok_or(GiveUp)?,
            last_filled_qty: last_filled_qty.ok_or(GiveUp)?,
            cumulative_filled_qty: cumulative_filled_qty.ok_or(GiveUp)?,
            last_filled_price: last_filled_price.ok_or(GiveUp)?,
            commission_asset: text(commission_asset),
            commission,
            trade_time: trade_time.ok_or(GiveUp)?,
            trade_id: trade_id.ok_or(GiveUp)?,
            bids_notional,
            ask_notional,
            is_maker: is_maker.ok_or(GiveUp)?,
            reduce_only: reduce_only.ok_or(GiveUp)?,
            working_type: text(working_type),
            original_order_type: text(original_order_type),
            position_side: required(position_side)?,
            close_position,
            activation_price,
            callback_rate,
            price_protect,
            si,
            ss,
            realized_profit,
            stp_mode: text(stp_mode),
            price_match: text(price_match),
            good_till_date,
            expiry_reason: text(expiry_reason),
            modify_id: text(modify_id),
            strategy_type: text(strategy_type),
        })
    }
}

/// `TRADE_LITE` (PROTOCOL §2.3): a fast fill notice without commission, realized P&L or position side.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TradeLiteEvent<'a> {
    /// `e`: `"TRADE_LITE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", deserialize_with = "read")]
    pub transaction_time: i64,
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `q`: original order quantity.
    #[serde(rename = "q", deserialize_with = "read")]
    pub orig_qty: Decimal,
    /// `p`: original order price (`0` for market orders).
    #[serde(rename = "p", deserialize_with = "read")]
    pub price: Decimal,
    /// `m`: maker side.
    #[serde(rename = "m")]
    pub is_maker: bool,
    /// `c`: client order id.
    #[serde(rename = "c", borrow)]
    pub client_order_id: Cow<'a, str>,
    /// `S`: side.
    #[serde(rename = "S", borrow)]
    pub side: Cow<'a, str>,
    /// `L`: fill price.
    #[serde(rename = "L", deserialize_with = "read")]
    pub last_filled_price: Decimal,
    /// `l`: fill quantity.
    #[serde(rename = "l", deserialize_with = "read")]
    pub last_filled_qty: Decimal,
    /// `t`: trade id.
    #[serde(rename = "t", deserialize_with = "read")]
    pub trade_id: u64,
    /// `i`: order id (can exceed 2^53).
    #[serde(rename = "i", deserialize_with = "read")]
    pub order_id: u64,
}

/// `ACCOUNT_UPDATE` (PROTOCOL §2.1): balances and positions that changed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdateEvent<'a> {
    /// `e`: `"ACCOUNT_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", deserialize_with = "read")]
    pub transaction_time: i64,
    /// `a`: the update.
    #[serde(rename = "a", borrow)]
    pub update: AccountUpdateData<'a>,
}

/// `ACCOUNT_UPDATE.a`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdateData<'a> {
    /// `m`: reason (`ORDER`, `FUNDING_FEE`, `DEPOSIT`, `WITHDRAW`, `ADMIN_DEPOSIT` …; an open set).
    #[serde(rename = "m", borrow)]
    pub reason: Cow<'a, str>,
    /// `S`: symbol of a `FUNDING_FEE` update (new in 2026; absent before).
    #[serde(rename = "S", default, borrow, deserialize_with = "opt_str")]
    pub symbol: Option<Cow<'a, str>>,
    /// `B`: balances that changed.
    #[serde(rename = "B", default, borrow)]
    pub balances: Vec<AccountUpdateBalance<'a>>,
    /// `P`: positions that changed.
    #[serde(rename = "P", default, borrow)]
    pub positions: Vec<AccountUpdatePosition<'a>>,
}

/// `ACCOUNT_UPDATE.a.B[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdateBalance<'a> {
    /// `a`: asset.
    #[serde(rename = "a", borrow)]
    pub asset: Cow<'a, str>,
    /// `wb`: wallet balance after the change.
    #[serde(rename = "wb", deserialize_with = "read")]
    pub wallet_balance: Decimal,
    /// `cw`: cross wallet balance (wallet balance without isolated margin).
    #[serde(rename = "cw", default, deserialize_with = "read_opt")]
    pub cross_wallet_balance: Option<Decimal>,
    /// `bc`: balance change other than realized P&L and commission (transfers, funding, rebates);
    /// absent in older payloads.
    #[serde(rename = "bc", default, deserialize_with = "read_opt")]
    pub balance_change: Option<Decimal>,
}

/// `ACCOUNT_UPDATE.a.P[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdatePosition<'a> {
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `pa`: signed position amount.
    #[serde(rename = "pa", deserialize_with = "read")]
    pub position_amount: Decimal,
    /// `ep`: entry price (`0` when flat).
    #[serde(rename = "ep", deserialize_with = "read")]
    pub entry_price: Decimal,
    /// `bep`: breakeven price (added 2023).
    #[serde(rename = "bep", default, deserialize_with = "read_opt")]
    pub breakeven_price: Option<Decimal>,
    /// `cr`: pre-fee accumulated realized P&L.
    #[serde(rename = "cr", default, deserialize_with = "read_opt")]
    pub accumulated_realized: Option<Decimal>,
    /// `up`: unrealized P&L at event time.
    #[serde(rename = "up", default, deserialize_with = "read_opt")]
    pub unrealized_pnl: Option<Decimal>,
    /// `mt`: margin type, lower-case `cross` / `isolated`.
    #[serde(rename = "mt", default, borrow, deserialize_with = "opt_str")]
    pub margin_type: Option<Cow<'a, str>>,
    /// `iw`: isolated wallet.
    #[serde(rename = "iw", default, deserialize_with = "read_opt")]
    pub isolated_wallet: Option<Decimal>,
    /// `ps`: position side.
    #[serde(rename = "ps", borrow)]
    pub position_side: Cow<'a, str>,
    /// `ma`: margin asset (undocumented, present in real payloads since 2021).
    #[serde(rename = "ma", default, borrow, deserialize_with = "opt_str")]
    pub margin_asset: Option<Cow<'a, str>>,
}

/// `MARGIN_CALL` (PROTOCOL §2.4): the exchange's risk warning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MarginCallEvent<'a> {
    /// `e`: `"MARGIN_CALL"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `cw`: cross wallet balance (cross margin calls only).
    #[serde(rename = "cw", default, deserialize_with = "read_opt")]
    pub cross_wallet_balance: Option<Decimal>,
    /// `p`: positions at risk.
    #[serde(rename = "p", default, borrow)]
    pub positions: Vec<MarginCallPositionRow<'a>>,
}

/// `MARGIN_CALL.p[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MarginCallPositionRow<'a> {
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `ps`: position side.
    #[serde(rename = "ps", borrow)]
    pub position_side: Cow<'a, str>,
    /// `pa`: signed position amount.
    #[serde(rename = "pa", deserialize_with = "read")]
    pub position_amount: Decimal,
    /// `mt`: margin type, upper-case `CROSSED` / `ISOLATED` here.
    #[serde(rename = "mt", default, borrow, deserialize_with = "opt_str")]
    pub margin_type: Option<Cow<'a, str>>,
    /// `iw`: isolated wallet.
    #[serde(rename = "iw", default, deserialize_with = "read_opt")]
    pub isolated_wallet: Option<Decimal>,
    /// `mp`: mark price.
    #[serde(rename = "mp", deserialize_with = "read")]
    pub mark_price: Decimal,
    /// `up`: unrealized P&L.
    #[serde(rename = "up", deserialize_with = "read")]
    pub unrealized_pnl: Decimal,
    /// `mm`: maintenance margin required.
    #[serde(rename = "mm", deserialize_with = "read")]
    pub maint_margin: Decimal,
}

/// `ACCOUNT_CONFIG_UPDATE` (PROTOCOL §2.5): a symbol's leverage (`ac`) or the multi-assets mode (`ai`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountConfigUpdateEvent<'a> {
    /// `e`: `"ACCOUNT_CONFIG_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", deserialize_with = "read")]
    pub transaction_time: i64,
    /// `ac`: symbol configuration (leverage).
    #[serde(rename = "ac", default, borrow)]
    pub symbol_config: Option<SymbolConfig<'a>>,
    /// `ai`: account configuration (multi-assets mode).
    #[serde(rename = "ai", default)]
    pub account_config: Option<AccountConfig>,
}

/// `ACCOUNT_CONFIG_UPDATE.ac`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SymbolConfig<'a> {
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `l`: leverage (a JSON integer).
    #[serde(rename = "l", deserialize_with = "read")]
    pub leverage: u32,
}

/// `ACCOUNT_CONFIG_UPDATE.ai`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountConfig {
    /// `j`: multi-assets mode on.
    #[serde(rename = "j")]
    pub multi_assets: bool,
}

/// `ALGO_UPDATE` (PROTOCOL §2.6): a conditional (algo) order changed state. Fills of the order it
/// triggers arrive as `ORDER_TRADE_UPDATE` of a new order id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlgoUpdateEvent<'a> {
    /// `e`: `"ALGO_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", default, deserialize_with = "read_opt")]
    pub transaction_time: Option<i64>,
    /// `o`: the algo order.
    #[serde(rename = "o", borrow)]
    pub order: AlgoOrderData<'a>,
}

/// `ALGO_UPDATE.o`. Only the identity and status are required; the rest is informational.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlgoOrderData<'a> {
    /// `caid`: client algo id (the triggered order carries it as its client order id).
    #[serde(rename = "caid", borrow)]
    pub client_algo_id: Cow<'a, str>,
    /// `aid`: algo id.
    #[serde(rename = "aid", deserialize_with = "read")]
    pub algo_id: u64,
    /// `at`: algo type (`CONDITIONAL`).
    #[serde(rename = "at", default, borrow, deserialize_with = "opt_str")]
    pub algo_type: Option<Cow<'a, str>>,
    /// `o`: order type.
    #[serde(rename = "o", default, borrow, deserialize_with = "opt_str")]
    pub order_type: Option<Cow<'a, str>>,
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `S`: side.
    #[serde(rename = "S", default, borrow, deserialize_with = "opt_str")]
    pub side: Option<Cow<'a, str>>,
    /// `ps`: position side.
    #[serde(rename = "ps", default, borrow, deserialize_with = "opt_str")]
    pub position_side: Option<Cow<'a, str>>,
    /// `f`: time in force.
    #[serde(rename = "f", default, borrow, deserialize_with = "opt_str")]
    pub time_in_force: Option<Cow<'a, str>>,
    /// `q`: quantity.
    #[serde(rename = "q", default, deserialize_with = "read_opt")]
    pub qty: Option<Decimal>,
    /// `X`: algo status (`NEW`, `CANCELED`, `TRIGGERING`, `TRIGGERED`, `FINISHED`, `REJECTED`, `EXPIRED`).
    #[serde(rename = "X", borrow)]
    pub status: Cow<'a, str>,
    /// `ai`: id of the matching-engine order created on trigger, **as a string**; `""` before.
    #[serde(rename = "ai", default, borrow, deserialize_with = "opt_str")]
    pub triggered_order_id: Option<Cow<'a, str>>,
    /// `ap`: average fill price in the matching engine.
    #[serde(rename = "ap", default, deserialize_with = "read_opt")]
    pub avg_price: Option<Decimal>,
    /// `aq`: executed quantity in the matching engine.
    #[serde(rename = "aq", default, deserialize_with = "read_opt")]
    pub executed_qty: Option<Decimal>,
    /// `act`: actual order type in the matching engine (`"0"` before trigger).
    #[serde(rename = "act", default, borrow, deserialize_with = "opt_str")]
    pub actual_order_type: Option<Cow<'a, str>>,
    /// `tp`: trigger price.
    #[serde(rename = "tp", default, deserialize_with = "read_opt")]
    pub trigger_price: Option<Decimal>,
    /// `p`: price.
    #[serde(rename = "p", default, deserialize_with = "read_opt")]
    pub price: Option<Decimal>,
    /// `V`: self-trade prevention mode.
    #[serde(rename = "V", default, borrow, deserialize_with = "opt_str")]
    pub stp_mode: Option<Cow<'a, str>>,
    /// `wt`: working type.
    #[serde(rename = "wt", default, borrow, deserialize_with = "opt_str")]
    pub working_type: Option<Cow<'a, str>>,
    /// `pm`: price match mode.
    #[serde(rename = "pm", default, borrow, deserialize_with = "opt_str")]
    pub price_match: Option<Cow<'a, str>>,
    /// `cp`: close position.
    #[serde(rename = "cp", default)]
    pub close_position: Option<bool>,
    /// `pP`: price protection.
    #[serde(rename = "pP", default)]
    pub price_protect: Option<bool>,
    /// `R`: reduce-only.
    #[serde(rename = "R", default)]
    pub reduce_only: Option<bool>,
    /// `tt`: trigger time (0 before trigger).
    #[serde(rename = "tt", default, deserialize_with = "read_opt")]
    pub trigger_time: Option<i64>,
    /// `gtd`: GTD auto-cancel time.
    #[serde(rename = "gtd", default, deserialize_with = "read_opt")]
    pub good_till_date: Option<i64>,
    /// `rm`: failure or reject reason.
    #[serde(rename = "rm", default, borrow, deserialize_with = "opt_str")]
    pub reject_reason: Option<Cow<'a, str>>,
    /// `ia`: trailing order activated (added 2026-08).
    #[serde(rename = "ia", default)]
    pub is_activated: Option<bool>,
}

impl AlgoOrderData<'_> {
    /// The triggered order's id parsed from the string `ai`, `None` before the trigger (`""`).
    pub fn triggered_order_id(&self) -> Option<u64> {
        self.triggered_order_id.as_deref()?.parse().ok()
    }
}

/// `CONDITIONAL_ORDER_TRIGGER_REJECT` (PROTOCOL §2.7, deprecated 2025-12-15).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConditionalOrderTriggerRejectEvent<'a> {
    /// `e`: `"CONDITIONAL_ORDER_TRIGGER_REJECT"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: message send time, ms.
    #[serde(rename = "T", default, deserialize_with = "read_opt")]
    pub transaction_time: Option<i64>,
    /// `or`: the rejected order.
    #[serde(rename = "or", borrow)]
    pub reject: OrderReject<'a>,
}

/// `CONDITIONAL_ORDER_TRIGGER_REJECT.or`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderReject<'a> {
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `i`: order id.
    #[serde(rename = "i", deserialize_with = "read")]
    pub order_id: u64,
    /// `r`: reject reason.
    #[serde(rename = "r", default, borrow, deserialize_with = "opt_str")]
    pub reason: Option<Cow<'a, str>>,
}

/// `STRATEGY_UPDATE` (PROTOCOL §2.8): Binance's own grid strategies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StrategyUpdateEvent<'a> {
    /// `e`: `"STRATEGY_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", default, deserialize_with = "read_opt")]
    pub transaction_time: Option<i64>,
    /// `su`: the strategy.
    #[serde(rename = "su", borrow)]
    pub strategy: StrategyData<'a>,
}

/// `STRATEGY_UPDATE.su`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StrategyData<'a> {
    /// `si`: strategy id.
    #[serde(rename = "si", deserialize_with = "read")]
    pub strategy_id: u64,
    /// `st`: strategy type (`GRID`).
    #[serde(rename = "st", default, borrow, deserialize_with = "opt_str")]
    pub strategy_type: Option<Cow<'a, str>>,
    /// `ss`: strategy status (`NEW`, `WORKING`, `CANCELLED`, `EXPIRED`).
    #[serde(rename = "ss", default, borrow, deserialize_with = "opt_str")]
    pub status: Option<Cow<'a, str>>,
    /// `s`: symbol.
    #[serde(rename = "s", default, borrow, deserialize_with = "opt_str")]
    pub symbol: Option<Cow<'a, str>>,
    /// `ut`: update time, ms.
    #[serde(rename = "ut", default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
    /// `c`: op code (8001–8015).
    #[serde(rename = "c", default, deserialize_with = "read_opt")]
    pub op_code: Option<i64>,
}

/// `GRID_UPDATE` (PROTOCOL §2.8, deprecated).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GridUpdateEvent<'a> {
    /// `e`: `"GRID_UPDATE"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `T`: transaction time, ms.
    #[serde(rename = "T", default, deserialize_with = "read_opt")]
    pub transaction_time: Option<i64>,
    /// `gu`: the grid.
    #[serde(rename = "gu", borrow)]
    pub grid: GridData<'a>,
}

/// `GRID_UPDATE.gu`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GridData<'a> {
    /// `si`: strategy id.
    #[serde(rename = "si", deserialize_with = "read")]
    pub strategy_id: u64,
    /// `st`: strategy type.
    #[serde(rename = "st", default, borrow, deserialize_with = "opt_str")]
    pub strategy_type: Option<Cow<'a, str>>,
    /// `ss`: strategy status.
    #[serde(rename = "ss", default, borrow, deserialize_with = "opt_str")]
    pub status: Option<Cow<'a, str>>,
    /// `s`: symbol.
    #[serde(rename = "s", default, borrow, deserialize_with = "opt_str")]
    pub symbol: Option<Cow<'a, str>>,
    /// `r`: realized P&L.
    #[serde(rename = "r", default, deserialize_with = "read_opt")]
    pub realized_pnl: Option<Decimal>,
    /// `up`: unmatched average price.
    #[serde(rename = "up", default, deserialize_with = "read_opt")]
    pub unmatched_avg_price: Option<Decimal>,
    /// `uq`: unmatched quantity.
    #[serde(rename = "uq", default, deserialize_with = "read_opt")]
    pub unmatched_qty: Option<Decimal>,
    /// `uf`: unmatched fee.
    #[serde(rename = "uf", default, deserialize_with = "read_opt")]
    pub unmatched_fee: Option<Decimal>,
    /// `mp`: matched P&L.
    #[serde(rename = "mp", default, deserialize_with = "read_opt")]
    pub matched_pnl: Option<Decimal>,
    /// `ut`: update time, ms.
    #[serde(rename = "ut", default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
}

/// `listenKeyExpired` (PROTOCOL §1.5): no more user events on this connection until a new key is used.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListenKeyExpiredEvent<'a> {
    /// `e`: `"listenKeyExpired"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `listenKey`: the key that expired.
    #[serde(rename = "listenKey", default, borrow, deserialize_with = "opt_str")]
    pub listen_key: Option<Cow<'a, str>>,
}

/// Any event whose name this version does not know: only the name and the event time are read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnknownEvent<'a> {
    /// `e`: the event name, kept.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
}

/// One user-data stream event, chosen by its `e`.
// The variants differ in size, but a `UserEvent` lives on the stack for one decode and is never stored in
// bulk; boxing the large variants would put an allocation on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent<'a> {
    /// `ORDER_TRADE_UPDATE`.
    OrderTradeUpdate(OrderTradeUpdateEvent<'a>),
    /// `TRADE_LITE`.
    TradeLite(TradeLiteEvent<'a>),
    /// `ACCOUNT_UPDATE`.
    AccountUpdate(AccountUpdateEvent<'a>),
    /// `MARGIN_CALL`.
    MarginCall(MarginCallEvent<'a>),
    /// `ACCOUNT_CONFIG_UPDATE`.
    AccountConfigUpdate(AccountConfigUpdateEvent<'a>),
    /// `ALGO_UPDATE`.
    AlgoUpdate(AlgoUpdateEvent<'a>),
    /// `CONDITIONAL_ORDER_TRIGGER_REJECT`.
    ConditionalOrderTriggerReject(ConditionalOrderTriggerRejectEvent<'a>),
    /// `STRATEGY_UPDATE`.
    StrategyUpdate(StrategyUpdateEvent<'a>),
    /// `GRID_UPDATE`.
    GridUpdate(GridUpdateEvent<'a>),
    /// `listenKeyExpired`.
    ListenKeyExpired(ListenKeyExpiredEvent<'a>),
    /// Any other event name.
    Unknown(UnknownEvent<'a>),
}

impl UserEvent<'_> {
    /// The event name `e`.
    pub fn name(&self) -> &str {
        match self {
            UserEvent::OrderTradeUpdate(e) => &e.event_type,
            UserEvent::TradeLite(e) => &e.event_type,
            UserEvent::AccountUpdate(e) => &e.event_type,
            UserEvent::MarginCall(e) => &e.event_type,
            UserEvent::AccountConfigUpdate(e) => &e.event_type,
            UserEvent::AlgoUpdate(e) => &e.event_type,
            UserEvent::ConditionalOrderTriggerReject(e) => &e.event_type,
            UserEvent::StrategyUpdate(e) => &e.event_type,
            UserEvent::GridUpdate(e) => &e.event_type,
            UserEvent::ListenKeyExpired(e) => &e.event_type,
            UserEvent::Unknown(e) => &e.event_type,
        }
    }

    /// The event time `E`, ms.
    pub fn event_time(&self) -> i64 {
        match self {
            UserEvent::OrderTradeUpdate(e) => e.event_time,
            UserEvent::TradeLite(e) => e.event_time,
            UserEvent::AccountUpdate(e) => e.event_time,
            UserEvent::MarginCall(e) => e.event_time,
            UserEvent::AccountConfigUpdate(e) => e.event_time,
            UserEvent::AlgoUpdate(e) => e.event_time,
            UserEvent::ConditionalOrderTriggerReject(e) => e.event_time,
            UserEvent::StrategyUpdate(e) => e.event_time,
            UserEvent::GridUpdate(e) => e.event_time,
            UserEvent::ListenKeyExpired(e) => e.event_time,
            UserEvent::Unknown(e) => e.event_time,
        }
    }
}
