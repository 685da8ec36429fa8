//! The public P&L payloads (`trading.pnl.>`) and the KV entries of `positions` and `accounts` (DESIGN §3).
//!
//! Other services decode these in any language: every amount is a decimal **string** (exact, never a
//! float), times are milliseconds since the Unix epoch, absent figures are `nil`/`null`. The README lists
//! the fields. MessagePack (named fields) by default; a deployment may choose JSON for `trading.pnl.>`.

use std::collections::BTreeMap;

use acctmon_domain::{Account, Asset, PositionSide, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Schema tag of [`PositionPnl`].
pub const POSITION_SCHEMA: &str = "pnl.position/1";
/// Schema tag of [`AccountPnl`].
pub const SUMMARY_SCHEMA: &str = "pnl.summary/1";
/// Schema tag of [`AccountEntry`].
pub const ACCOUNT_ENTRY_SCHEMA: &str = "account/1";

/// One position leg: `trading.pnl.<account>.position.<symbol>.<side>` and KV `positions`
/// `<account>.<symbol>.<side>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionPnl {
    /// `pnl.position/1`.
    pub schema: String,
    /// Account alias.
    pub account: Account,
    /// Symbol as Binance publishes it.
    pub symbol: Symbol,
    /// `BOTH`, `LONG` or `SHORT`.
    pub side: PositionSide,
    /// Signed quantity, as Binance's `pa` (negative for a short).
    pub qty: Decimal,
    /// Average entry price (0 when flat).
    pub entry_price: Decimal,
    /// Latest mark price, when known.
    pub mark_price: Option<Decimal>,
    /// `qty × (mark − entry)`, when a mark is known.
    pub unrealized: Option<Decimal>,
    /// Realized P&L before fees and funding (Binance's `rp` summed).
    pub realized_gross: Decimal,
    /// Commission paid, valued in the margin asset.
    pub commission: Decimal,
    /// Commission paid in assets other than the margin asset (e.g. BNB), in those assets.
    pub commission_native: BTreeMap<Asset, Decimal>,
    /// Funding received (negative when paid).
    pub funding: Decimal,
    /// `realized_gross − commission + funding`.
    pub realized_net: Decimal,
    /// Margin asset (e.g. `USDT`).
    pub margin_asset: Asset,
    /// Fills applied.
    pub fills: u64,
    /// The `EVENTS` sequence these figures reflect.
    pub applied_seq: u64,
    /// Exchange time (`E`, ms) of the latest event applied to the account.
    pub event_time: i64,
    /// When the processor computed these figures (ms).
    pub updated_at: i64,
}

/// One account: `trading.pnl.<account>.summary`, and the `summary` of its KV `accounts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPnl {
    /// `pnl.summary/1`.
    pub schema: String,
    /// Account alias.
    pub account: Account,
    /// Hedge mode, when known.
    pub hedge_mode: Option<bool>,
    /// Wallet balance per asset.
    pub balances: BTreeMap<Asset, Decimal>,
    /// Sum of wallet balances valued in the quote (stablecoins at 1).
    pub wallet: Option<Decimal>,
    /// Unrealized P&L of every leg with a mark.
    pub unrealized: Decimal,
    /// Equity (margin balance) `= wallet + unrealized`.
    pub equity: Option<Decimal>,
    /// Maintenance margin at mark notional.
    pub maint_margin: Option<Decimal>,
    /// `maint_margin / equity` (liquidation at 1).
    pub margin_ratio: Option<Decimal>,
    /// Realized gross over every leg.
    pub realized_gross: Decimal,
    /// Commission over every leg (margin asset).
    pub commission: Decimal,
    /// Funding over every leg, and funding the books could not put on one leg (a symbol held both long
    /// and short in hedge mode).
    pub funding: Decimal,
    /// `realized_gross − commission + funding`.
    pub realized_net: Decimal,
    /// Equity now − equity at the day boundary − net transfers since.
    pub daily_pnl: Option<Decimal>,
    /// Running peak of equity minus equity now.
    pub drawdown: Option<Decimal>,
    /// Largest drawdown seen.
    pub max_drawdown: Decimal,
    /// Open position legs.
    pub open_positions: u64,
    /// The `EVENTS` sequence these figures reflect.
    pub applied_seq: u64,
    /// Exchange time (`E`, ms) of the latest event applied.
    pub event_time: i64,
    /// When the processor computed these figures (ms).
    pub updated_at: i64,
}

/// The KV `accounts` entry of one account: the summary for readers, the books' whole state for the
/// processor that owns the account (readers may ignore `state`).
#[derive(Debug, Serialize, Deserialize)]
pub struct AccountEntry<S> {
    /// `account/1`.
    pub schema: String,
    /// The `EVENTS` sequence the entry reflects: events at or below it are already in.
    pub applied_seq: u64,
    /// Exchange time (`E`, ms) of the latest event applied.
    pub event_time: i64,
    /// Figures for readers.
    pub summary: AccountPnl,
    /// The books' state (`acctmon_books::AccountState` when read back).
    pub state: S,
}

/// An [`AccountEntry`] read without its state.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountView {
    /// The `EVENTS` sequence the entry reflects.
    pub applied_seq: u64,
    /// Figures for readers.
    pub summary: AccountPnl,
}

/// A discrepancy between the books and the exchange: `trading.recon.<account>.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconReport {
    /// `recon/1`.
    pub schema: String,
    /// Account alias.
    pub account: Account,
    /// What disagreed (`realized`, `position`, `entry_price`, `wallet`).
    pub kind: String,
    /// Symbol or asset concerned.
    pub subject: String,
    /// Our figure before the correction.
    pub ours: Decimal,
    /// The exchange's figure, now adopted.
    pub exchange: Decimal,
    /// Exchange time of the figure (ms).
    pub time: i64,
    /// The `EVENTS` sequence that revealed it (0 when found by a periodic settlement).
    pub seq: u64,
}

/// Schema tag of [`ReconReport`].
pub const RECON_SCHEMA: &str = "recon/1";
