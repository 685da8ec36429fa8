//! Normalized events: what ingest publishes on `EVENTS` and what the books apply.
//!
//! Every account-scoped event carries its account, the exchange's times (`time` = transaction time `T`,
//! `event_time` = `E`) and, where the exchange supplies them, the figures the books check themselves against.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::names::{Account, Asset, OrderId, PositionSide, Side, Symbol, Timestamp, TradeId};

/// Where a fill report came from. The same fill may be reported by several sources; the books apply it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillSource {
    /// `TRADE_LITE`: fast, but without commission, realized P&L or position side.
    TradeLite,
    /// `ORDER_TRADE_UPDATE` with execution type `TRADE` (or `CALCULATED` for liquidations).
    OrderUpdate,
    /// `GET /fapi/v1/userTrades` (a backfill after a gap).
    Rest,
}

/// A commission charge: a positive amount is a fee paid, a negative one a rebate received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    /// The asset the commission was charged in (`USDT`, or `BNB` with BNB fee discount).
    pub asset: Asset,
    /// Amount in that asset.
    pub amount: Decimal,
}

/// One execution of an order against the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// Account alias.
    pub account: Account,
    /// Symbol traded.
    pub symbol: Symbol,
    /// Exchange trade id; `(account, symbol, trade_id)` identifies the fill.
    pub trade_id: TradeId,
    /// Exchange order id.
    pub order_id: OrderId,
    /// Client order id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
    /// Buy or sell.
    pub side: Side,
    /// Position side (`None` when the source does not say, as with `TRADE_LITE`).
    pub position_side: Option<PositionSide>,
    /// Fill price.
    pub price: Decimal,
    /// Filled quantity, always positive.
    pub qty: Decimal,
    /// Commission, when the source reports it.
    pub commission: Option<Commission>,
    /// The exchange's realized P&L for this fill (`rp` / `realizedPnl`), gross of fees.
    pub realized_pnl: Option<Decimal>,
    /// Margin asset of the position, when the source says (`marginAsset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_asset: Option<Asset>,
    /// Maker side of the trade.
    pub maker: bool,
    /// Trade (transaction) time `T`.
    pub time: Timestamp,
    /// Event time `E` (equal to `time` for REST).
    pub event_time: Timestamp,
    /// Which report this is.
    pub source: FillSource,
}

/// Order status after an order update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Accepted, nothing filled.
    New,
    /// Partly filled, still working.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled.
    Canceled,
    /// Expired (time in force, liquidation …).
    Expired,
    /// Expired by self-trade prevention.
    ExpiredInMatch,
    /// A status this version does not know.
    Other,
}

/// Lifecycle of an order (every `ORDER_TRADE_UPDATE`, fill or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// Account alias.
    pub account: Account,
    /// Symbol.
    pub symbol: Symbol,
    /// Exchange order id.
    pub order_id: OrderId,
    /// Client order id.
    pub client_order_id: String,
    /// Buy or sell.
    pub side: Side,
    /// Position side.
    pub position_side: PositionSide,
    /// Order type as sent by the exchange (`LIMIT`, `MARKET`, `LIQUIDATION` …).
    pub order_type: String,
    /// Execution type of this update (`NEW`, `TRADE`, `CANCELED`, `AMENDMENT` …).
    pub execution: String,
    /// Status after this update.
    pub status: OrderStatus,
    /// Original quantity.
    pub orig_qty: Decimal,
    /// Limit price (`0` for market orders).
    pub price: Decimal,
    /// Average fill price so far.
    pub avg_price: Decimal,
    /// Cumulative filled quantity.
    pub filled_qty: Decimal,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// An exchange-reported balance row (`ACCOUNT_UPDATE.a.B[]`, or a REST snapshot row): a figure to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdate {
    /// Account alias.
    pub account: Account,
    /// Asset.
    pub asset: Asset,
    /// Wallet balance after the change (`wb`).
    pub wallet: Decimal,
    /// Cross wallet balance (`cw`).
    pub cross_wallet: Option<Decimal>,
    /// Reason of the update (`a.m`: `ORDER`, `FUNDING_FEE`, `DEPOSIT` …).
    pub reason: String,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// Margin type of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginType {
    /// Cross margin.
    Cross,
    /// Isolated margin.
    Isolated,
}

/// An exchange-reported position row (`ACCOUNT_UPDATE.a.P[]`): a figure to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionUpdate {
    /// Account alias.
    pub account: Account,
    /// Symbol.
    pub symbol: Symbol,
    /// Position side.
    pub side: PositionSide,
    /// Signed position amount (`pa`).
    pub qty: Decimal,
    /// Entry price (`ep`), zero when flat.
    pub entry_price: Decimal,
    /// Breakeven price (`bep`).
    pub breakeven_price: Option<Decimal>,
    /// Pre-fee accumulated realized P&L (`cr`).
    pub accumulated_realized: Option<Decimal>,
    /// Unrealized P&L at event time (`up`).
    pub unrealized: Option<Decimal>,
    /// Margin type (`mt`).
    pub margin_type: Option<MarginType>,
    /// Isolated wallet (`iw`).
    pub isolated_wallet: Option<Decimal>,
    /// Margin asset (`ma`, undocumented but always present in real payloads).
    pub margin_asset: Option<Asset>,
    /// Reason of the update (`a.m`).
    pub reason: String,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// A funding payment: negative when paid, positive when received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    /// Account alias.
    pub account: Account,
    /// Asset the funding was settled in.
    pub asset: Asset,
    /// Symbol, when the source names it (`a.S`, income `symbol`); otherwise funding only moves the wallet.
    pub symbol: Option<Symbol>,
    /// Signed amount.
    pub amount: Decimal,
    /// Exchange transaction id, when known (income `tranId`).
    pub tran_id: Option<u64>,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// A wallet movement that is not a fill or funding: deposits, withdrawals, transfers, rebates, adjustments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Account alias.
    pub account: Account,
    /// Asset.
    pub asset: Asset,
    /// Signed amount (positive = into the futures wallet).
    pub amount: Decimal,
    /// The exchange's reason (`DEPOSIT`, `WITHDRAW`, `ADMIN_DEPOSIT`, income type …).
    pub reason: String,
    /// True for money moved in or out by the owner (deposits, withdrawals, transfers), which daily P&L
    /// excludes; false for income such as rebates or insurance clearance, which counts as P&L.
    pub external: bool,
    /// Exchange transaction id, when known.
    pub tran_id: Option<u64>,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// An account configuration change (`ACCOUNT_CONFIG_UPDATE`, or a position-mode read from REST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdate {
    /// Account alias.
    pub account: Account,
    /// What changed.
    pub change: ConfigChange,
    /// Transaction time `T`.
    pub time: Timestamp,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// The configuration item that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ConfigChange {
    /// Leverage of one symbol.
    Leverage {
        /// Symbol.
        symbol: Symbol,
        /// New leverage.
        leverage: u32,
    },
    /// Multi-assets margin mode on or off.
    MultiAssets {
        /// Whether multi-assets mode is on.
        enabled: bool,
    },
    /// Position mode: hedge (`dualSidePosition = true`) or one-way.
    PositionMode {
        /// Whether hedge mode is on.
        hedge: bool,
    },
}

/// One position of a margin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginCallPosition {
    /// Symbol.
    pub symbol: Symbol,
    /// Position side.
    pub side: PositionSide,
    /// Signed position amount.
    pub qty: Decimal,
    /// Margin type.
    pub margin_type: Option<MarginType>,
    /// Isolated wallet.
    pub isolated_wallet: Option<Decimal>,
    /// Mark price.
    pub mark_price: Decimal,
    /// Unrealized P&L.
    pub unrealized: Decimal,
    /// Maintenance margin required.
    pub maint_margin: Decimal,
}

/// A `MARGIN_CALL`: the exchange's risk warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginCall {
    /// Account alias.
    pub account: Account,
    /// Cross wallet balance (cross margin calls only).
    pub cross_wallet: Option<Decimal>,
    /// Positions at risk.
    pub positions: Vec<MarginCallPosition>,
    /// Event time `E`.
    pub event_time: Timestamp,
}

/// A balance in a REST snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBalance {
    /// Asset.
    pub asset: Asset,
    /// Wallet balance.
    pub wallet: Decimal,
}

/// A position in a REST snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPosition {
    /// Symbol.
    pub symbol: Symbol,
    /// Position side.
    pub side: PositionSide,
    /// Signed quantity.
    pub qty: Decimal,
    /// Entry price.
    pub entry_price: Decimal,
    /// Margin asset, when the source says.
    pub margin_asset: Option<Asset>,
    /// Last update time of the position on the exchange.
    pub update_time: Timestamp,
}

/// The exchange's view of an account at one moment, from REST (`account`, `positionRisk`, `balance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Account alias.
    pub account: Account,
    /// Hedge mode, when known.
    pub hedge_mode: Option<bool>,
    /// Wallet balances.
    pub balances: Vec<SnapshotBalance>,
    /// Open positions (flat rows may be omitted: a position not listed is flat).
    pub positions: Vec<SnapshotPosition>,
    /// The time the snapshot reflects: the server time when the last of its requests was answered, so
    /// no change after it is in the figures.
    pub time: Timestamp,
    /// When the snapshot's requests were taken over an interval: the server time before the first one.
    /// Each figure is then the state at some moment between `since` and `time` (changes in between
    /// may or may not be in it); `None` for a snapshot of one instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// A correction proposed by the reconciler: adopt the exchange's figure for one position or balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// Account alias.
    pub account: Account,
    /// What to correct.
    pub target: CorrectionTarget,
    /// Why (free text for operators).
    pub reason: String,
    /// Time of the exchange figure.
    pub time: Timestamp,
}

/// The figure a correction sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CorrectionTarget {
    /// Set a position's quantity and entry price.
    Position {
        /// Symbol.
        symbol: Symbol,
        /// Side.
        side: PositionSide,
        /// Signed quantity.
        qty: Decimal,
        /// Entry price.
        entry_price: Decimal,
    },
    /// Set a wallet balance.
    Wallet {
        /// Asset.
        asset: Asset,
        /// Wallet balance.
        wallet: Decimal,
    },
}

/// Connection lifecycle of an account's user-data stream, and payloads that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNotice {
    /// Account alias.
    pub account: Account,
    /// What happened.
    pub status: StreamStatus,
    /// Exchange event time when there is one, else the receive time.
    pub time: Timestamp,
}

/// What happened to a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum StreamStatus {
    /// Connected with a listenKey.
    Connected,
    /// Disconnected; events may have been missed until the backfill.
    Gap,
    /// The listenKey expired (`listenKeyExpired`).
    Expired,
    /// Everything the exchange sent for the account up to `time` (exchange time, less an allowance for
    /// the network's delay) was published before this notice. An exchange row stamped at or before it
    /// that still waits for the change that decides it is judged now: that change is not coming. (Judging
    /// by this notice, rather than by a reader's own clock, makes every reader of the stream judge alike.)
    Heard,
    /// An event type this version does not model (ALGO_UPDATE, STRATEGY_UPDATE …), kept by name.
    Other {
        /// The event name `e`.
        event: String,
    },
    /// A payload that could not be decoded, with its raw text.
    Undecodable {
        /// The raw payload.
        raw: String,
        /// Why it failed.
        error: String,
    },
}

/// A mark price update (`markPriceUpdate`, `premiumIndex`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkPrice {
    /// Symbol.
    pub symbol: Symbol,
    /// Mark price.
    pub mark_price: Decimal,
    /// Index price.
    pub index_price: Option<Decimal>,
    /// Current funding rate.
    pub funding_rate: Option<Decimal>,
    /// Next funding time.
    pub next_funding_time: Option<Timestamp>,
    /// Event time.
    pub time: Timestamp,
}

/// One notional bracket of a symbol (`GET /fapi/v1/leverageBracket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bracket {
    /// Bracket number (1 = smallest notional).
    pub bracket: u32,
    /// Maximum initial leverage in this bracket.
    pub initial_leverage: u32,
    /// Notional floor (inclusive).
    pub notional_floor: Decimal,
    /// Notional cap (exclusive).
    pub notional_cap: Decimal,
    /// Maintenance margin rate.
    pub maint_margin_ratio: Decimal,
    /// Maintenance amount ("cum"), subtracted from `notional × rate`.
    pub cum: Decimal,
}

/// The leverage brackets of one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeverageBrackets {
    /// Symbol.
    pub symbol: Symbol,
    /// Brackets ordered by notional.
    pub brackets: Vec<Bracket>,
}

/// The kind of an event, as used in the subject `trading.events.<p>.<account>.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A fill.
    Fill,
    /// An order update.
    Order,
    /// An exchange balance row.
    Balance,
    /// An exchange position row.
    Position,
    /// A funding payment.
    Funding,
    /// A transfer or other wallet movement.
    Transfer,
    /// A configuration change.
    Config,
    /// A margin call.
    MarginCall,
    /// A REST snapshot.
    Snapshot,
    /// A correction.
    Correction,
    /// Stream lifecycle or an undecodable payload.
    Stream,
    /// A mark price (market data, not account-scoped).
    Mark,
    /// Leverage brackets (market data, not account-scoped).
    Brackets,
}

impl EventKind {
    /// The subject token of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fill => "fill",
            EventKind::Order => "order",
            EventKind::Balance => "balance",
            EventKind::Position => "position",
            EventKind::Funding => "funding",
            EventKind::Transfer => "transfer",
            EventKind::Config => "config",
            EventKind::MarginCall => "margin_call",
            EventKind::Snapshot => "snapshot",
            EventKind::Correction => "correction",
            EventKind::Stream => "stream",
            EventKind::Mark => "mark",
            EventKind::Brackets => "brackets",
        }
    }
}

/// Any normalized event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A fill.
    Fill(Fill),
    /// An order update.
    Order(OrderUpdate),
    /// An exchange balance row.
    Balance(BalanceUpdate),
    /// An exchange position row.
    Position(PositionUpdate),
    /// A funding payment.
    Funding(Funding),
    /// A transfer or other wallet movement.
    Transfer(Transfer),
    /// A configuration change.
    Config(ConfigUpdate),
    /// A margin call.
    MarginCall(MarginCall),
    /// A REST snapshot.
    Snapshot(Snapshot),
    /// A correction.
    Correction(Correction),
    /// Stream lifecycle or an undecodable payload.
    Stream(StreamNotice),
    /// A mark price.
    Mark(MarkPrice),
    /// Leverage brackets.
    Brackets(LeverageBrackets),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Fill(_) => EventKind::Fill,
            Event::Order(_) => EventKind::Order,
            Event::Balance(_) => EventKind::Balance,
            Event::Position(_) => EventKind::Position,
            Event::Funding(_) => EventKind::Funding,
            Event::Transfer(_) => EventKind::Transfer,
            Event::Config(_) => EventKind::Config,
            Event::MarginCall(_) => EventKind::MarginCall,
            Event::Snapshot(_) => EventKind::Snapshot,
            Event::Correction(_) => EventKind::Correction,
            Event::Stream(_) => EventKind::Stream,
            Event::Mark(_) => EventKind::Mark,
            Event::Brackets(_) => EventKind::Brackets,
        }
    }

    /// The account of an account-scoped event; `None` for market data.
    pub fn account(&self) -> Option<&Account> {
        match self {
            Event::Fill(e) => Some(&e.account),
            Event::Order(e) => Some(&e.account),
            Event::Balance(e) => Some(&e.account),
            Event::Position(e) => Some(&e.account),
            Event::Funding(e) => Some(&e.account),
            Event::Transfer(e) => Some(&e.account),
            Event::Config(e) => Some(&e.account),
            Event::MarginCall(e) => Some(&e.account),
            Event::Snapshot(e) => Some(&e.account),
            Event::Correction(e) => Some(&e.account),
            Event::Stream(e) => Some(&e.account),
            Event::Mark(_) | Event::Brackets(_) => None,
        }
    }

    /// The exchange time the event reflects (transaction time where there is one).
    pub fn time(&self) -> Timestamp {
        match self {
            Event::Fill(e) => e.time,
            Event::Order(e) => e.time,
            Event::Balance(e) => e.time,
            Event::Position(e) => e.time,
            Event::Funding(e) => e.time,
            Event::Transfer(e) => e.time,
            Event::Config(e) => e.time,
            Event::MarginCall(e) => e.event_time,
            Event::Snapshot(e) => e.time,
            Event::Correction(e) => e.time,
            Event::Stream(e) => e.time,
            Event::Mark(e) => e.time,
            Event::Brackets(_) => Timestamp(0),
        }
    }
}
