//! The books: acctmon's pure accounting core (DESIGN §5).
//!
//! [`Books`] is a synchronous state machine: [`Books::apply`] takes one normalized
//! [`acctmon_domain::Event`] and updates positions per (account, symbol, side), realized P&L (gross,
//! commission, funding, net), position cycles, wallets, unrealized P&L and equity at mark prices, daily
//! P&L, drawdown and return ratios. Every figure the exchange reports (`rp` per fill, `pa`/`ep` per
//! position row, `wb` per balance row, REST snapshots) is checked; a real disagreement is returned as a
//! [`Discrepancy`] and the books adopt the exchange's figure. A fill is applied once however often it is
//! reported, and a consistent stream gives no discrepancy whatever the arrival order of different event
//! types (see the `check` module).
//!
//! Exchange rows are judged once decidable: when a later change arrives, or when a stream notice of
//! status `heard` says that every change up to its time was published (a row still waiting then is
//! judged against what we have). So the books of a stream depend only on the stream, whoever reads it and
//! however fast. Callers replaying a finished input settle ([`Books::settle`]) at its end. Inside a position, cost bases and realized
//! figures are exact 16-decimal fixed point (exchange figures have at most 8 decimals); the API speaks
//! [`rust_decimal::Decimal`].
//!
//! This crate must stay pure: no IO, no async runtime, no clock (time arrives as data, in events), no
//! floating point. Given the same events it produces the same books.
//!
//! ```
//! use acctmon_books::{Books, BooksConfig};
//! use acctmon_domain::*;
//! let account = Account::new("main").unwrap();
//! let fill = |id: u64, side: Side, price: &str, fee: &str| Event::Fill(Fill {
//!     account: account.clone(), symbol: Symbol::new("BTCUSDT").unwrap(), trade_id: id, order_id: id,
//!     client_order_id: None, side, position_side: Some(PositionSide::Both), price: price.parse().unwrap(),
//!     qty: Decimal::ONE, commission: Some(Commission { asset: Asset::new("USDT").unwrap(), amount: fee.parse().unwrap() }),
//!     realized_pnl: None, margin_asset: None, maker: false, time: Timestamp(id as i64),
//!     event_time: Timestamp(id as i64), source: FillSource::OrderUpdate });
//! let mut books = Books::new(BooksConfig::default());
//! books.apply(&fill(1, Side::Buy, "50000", "25"));
//! books.apply(&fill(2, Side::Sell, "55000", "27.5"));
//! let p = books.position(&account, "BTCUSDT", PositionSide::Both).unwrap();
//! assert_eq!(p.realized_gross(), "5000".parse().unwrap());
//! assert_eq!(p.realized_net(), "4947.5".parse().unwrap());
//! ```

mod account;
mod check;
mod fixed;
mod position;
mod report;
mod risk;
mod seen;
mod stats;

use std::collections::{BTreeMap, HashMap};

use acctmon_domain::{
    Account, Asset, Bracket, Decimal, Event, PositionSide, StreamStatus, Symbol, Timestamp, TradeId,
};
use serde::{Deserialize, Serialize};

pub use account::AccountSummary;
pub use position::{CYCLES_KEPT, Cycle, ENTRY_DP, Position};
pub use report::{BalanceRow, DiscrepancyRow, PositionRow, Report, StatsRow};
pub use risk::maint_margin;
pub use stats::{DayResult, PerformanceSummary, ReturnRatios, TradeStats};

use account::{AccountBook, Ctx};

/// Settings of the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BooksConfig {
    /// Start of the trading day, in milliseconds after UTC midnight (default 0 = UTC 00:00).
    pub day_boundary_ms: i64,
    /// How many recent trade ids are remembered exactly per (account, symbol) for de-duplication.
    pub seen_ids_per_symbol: usize,
    /// Keep every discrepancy in [`Books::discrepancies`] (the CLI does; a long-running service that
    /// forwards them as they come may turn it off).
    pub keep_discrepancies: bool,
}

impl Default for BooksConfig {
    fn default() -> Self {
        Self {
            day_boundary_ms: 0,
            seen_ids_per_symbol: 65_536,
            keep_discrepancies: true,
        }
    }
}

impl BooksConfig {
    /// Parses a day boundary written `HH:MM` (UTC) into milliseconds after midnight.
    ///
    /// ```
    /// assert_eq!(acctmon_books::BooksConfig::parse_day_boundary("08:30"), Ok(30_600_000));
    /// assert!(acctmon_books::BooksConfig::parse_day_boundary("24:00").is_err());
    /// ```
    pub fn parse_day_boundary(text: &str) -> Result<i64, String> {
        let bad =
            || format!("invalid day boundary {text:?}: expected HH:MM between 00:00 and 23:59");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: i64 = h.parse().map_err(|_| bad())?;
        let m: i64 = m.parse().map_err(|_| bad())?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) {
            return Err(bad());
        }
        Ok((h * 60 + m) * 60_000)
    }
}

/// The kind of a disagreement with the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// A fill's realized gross differs from the exchange's `rp`.
    Realized,
    /// A position quantity differs from the exchange's `pa`.
    Position,
    /// A position's entry price differs from the exchange's `ep`.
    EntryPrice,
    /// A wallet balance differs from the exchange's `wb`.
    Wallet,
}

impl DiscrepancyKind {
    /// The name used in subjects and output.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::Realized => "realized",
            DiscrepancyKind::Position => "position",
            DiscrepancyKind::EntryPrice => "entry_price",
            DiscrepancyKind::Wallet => "wallet",
        }
    }
}

/// A real disagreement between our figure and the exchange's; the books adopted the exchange's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    /// Account.
    pub account: Account,
    /// What disagreed.
    pub kind: DiscrepancyKind,
    /// Symbol, for position and realized discrepancies.
    pub symbol: Option<Symbol>,
    /// Position side, for position and realized discrepancies.
    pub side: Option<PositionSide>,
    /// Asset, for wallet discrepancies.
    pub asset: Option<Asset>,
    /// The fill, for realized discrepancies.
    pub trade_id: Option<TradeId>,
    /// Our figure.
    pub ours: Decimal,
    /// The exchange's figure (now adopted).
    pub exchange: Decimal,
    /// Time of the exchange figure.
    pub time: Timestamp,
}

/// What [`Books::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied.
    Applied,
    /// A repeat of something already applied: nothing changed.
    Duplicate,
    /// A second report of a fill that completed it (commission or realized P&L from
    /// `ORDER_TRADE_UPDATE` after a `TRADE_LITE`).
    Enriched,
    /// A `TRADE_LITE` kept until the position side is known (hedge mode or unknown mode).
    Held,
    /// A fill already contained in a baseline adopted from the exchange (snapshot).
    BeforeBaseline,
    /// Recorded without effect on the books (order lifecycle, stream notices).
    Noted,
}

/// The result of applying one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What happened.
    pub outcome: Outcome,
    /// Disagreements with the exchange found while applying (already corrected).
    pub discrepancies: Vec<Discrepancy>,
}

/// Market data shared by all accounts: mark prices and leverage brackets.
#[derive(Debug, Clone, Default)]
pub struct Market {
    marks: HashMap<Symbol, (Decimal, Timestamp), seen::NameHash>,
    brackets: HashMap<Symbol, Vec<Bracket>, seen::NameHash>,
}

impl Market {
    /// Latest mark price of a symbol.
    pub fn mark<S: AsRef<str> + ?Sized>(&self, symbol: &S) -> Option<Decimal> {
        self.marks.get(symbol.as_ref()).map(|(m, _)| *m)
    }

    /// Value of `amount` of `asset` in `quote`: 1:1 for the same asset, else at the mark of
    /// `<asset><quote>` (e.g. `BNBUSDT`), else at the mark of `<asset>USDT` when the quote is a
    /// stablecoin.
    pub fn value_in(&self, asset: &Asset, amount: Decimal, quote: &Asset) -> Option<Decimal> {
        if asset == quote {
            return Some(amount);
        }
        if risk::is_stable(asset) && risk::is_stable(quote) {
            return Some(amount);
        }
        let pair = format!("{asset}{quote}");
        if let Some(m) = self.mark(&pair) {
            return Some(amount * m);
        }
        if risk::is_stable(quote) {
            return self.mark(&format!("{asset}USDT")).map(|m| amount * m);
        }
        None
    }

    /// Value of `amount` of `asset` in the quote currency (USD stablecoins at 1).
    pub fn value(&self, asset: &Asset, amount: Decimal) -> Option<Decimal> {
        if risk::is_stable(asset) {
            return Some(amount);
        }
        self.mark(&format!("{asset}USDT")).map(|m| amount * m)
    }
}

/// The whole state of one account's books as [`Books::account_state`] lends it, to persist (e.g. as
/// MessagePack in a key-value store); restored by [`Books::restore`] from an [`AccountState`].
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct AccountStateRef<'a>(&'a AccountBook);

/// The whole state of one account's books, as persisted; see [`Books::restore`].
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct AccountState(AccountBook);

impl AccountState {
    /// The account.
    pub fn account(&self) -> &Account {
        &self.0.account
    }
}

/// The books of every account seen.
#[derive(Debug, Clone, Default)]
pub struct Books {
    config: BooksConfig,
    accounts: BTreeMap<Account, AccountBook>,
    market: Market,
    discrepancies: Vec<Discrepancy>,
    last_time: Timestamp,
}

impl Books {
    /// Empty books.
    pub fn new(config: BooksConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BooksConfig {
        &self.config
    }

    /// Applies one event. Discrepancies found are returned (and kept, see
    /// [`BooksConfig::keep_discrepancies`]).
    pub fn apply(&mut self, event: &Event) -> Applied {
        let mut out = Vec::new();
        let time = event.time();
        if time > self.last_time {
            self.last_time = time;
        }
        let outcome = match event {
            Event::Mark(m) => {
                self.market
                    .marks
                    .insert(m.symbol.clone(), (m.mark_price, m.time));
                let offset = self.config.day_boundary_ms;
                for book in self.accounts.values_mut() {
                    book.perf.roll(m.time, offset);
                    let moved = book.on_mark(&m.symbol, m.mark_price);
                    let valued = book.value_new_assets(&self.market);
                    if (moved || valued)
                        && let Some(e) = book.equity(&self.market)
                    {
                        book.perf.update(m.time, e, offset);
                    }
                }
                Outcome::Applied
            }
            Event::Brackets(b) => {
                self.market
                    .brackets
                    .insert(b.symbol.clone(), b.brackets.clone());
                Outcome::Applied
            }
            _ => {
                let Some(account) = event.account() else {
                    return Applied {
                        outcome: Outcome::Noted,
                        discrepancies: out,
                    };
                };
                if !self.accounts.contains_key(account) {
                    self.accounts
                        .insert(account.clone(), AccountBook::new(account.clone()));
                }
                // Disjoint field borrows: the account's book mutably, config and market shared.
                // Lookups by `&Account` compare the shared name by pointer first.
                let book = self
                    .accounts
                    .get_mut(account)
                    .expect("account inserted above");
                book.before_event(time, &self.config);
                let mut ctx = Ctx {
                    config: &self.config,
                    market: &self.market,
                    out: &mut out,
                };
                let outcome = match event {
                    Event::Fill(f) => book.on_fill(f, &mut ctx),
                    Event::Balance(b) => {
                        book.on_balance(b, &mut ctx);
                        Outcome::Applied
                    }
                    Event::Position(p) => {
                        book.on_position(p, &mut ctx);
                        Outcome::Applied
                    }
                    Event::Funding(f) => book.on_funding(f, &mut ctx),
                    Event::Transfer(t) => book.on_transfer(t, &mut ctx),
                    Event::Config(c) => {
                        book.on_config(c, &mut ctx);
                        Outcome::Applied
                    }
                    Event::Snapshot(s) => {
                        book.on_snapshot(s, &mut ctx);
                        Outcome::Applied
                    }
                    Event::Correction(c) => {
                        book.on_correction(c, &mut ctx);
                        Outcome::Applied
                    }
                    Event::MarginCall(_) => {
                        book.margin_calls += 1;
                        Outcome::Noted
                    }
                    Event::Stream(s) if s.status == StreamStatus::Heard => {
                        book.settle(s.time, &mut ctx);
                        Outcome::Applied
                    }
                    Event::Order(_) | Event::Stream(_) => Outcome::Noted,
                    Event::Mark(_) | Event::Brackets(_) => Outcome::Noted,
                };
                book.after_event(time, &self.config, &self.market);
                outcome
            }
        };
        if self.config.keep_discrepancies {
            self.discrepancies.extend(out.iter().cloned());
        }
        Applied {
            outcome,
            discrepancies: out,
        }
    }

    /// The whole state of one account's books, to persist.
    pub fn account_state(&self, account: &Account) -> Option<AccountStateRef<'_>> {
        self.accounts.get(account.as_str()).map(AccountStateRef)
    }

    /// Replaces an account's books by a persisted state (see [`Books::account_state`]). Mark prices and
    /// leverage brackets are the market's, not the account's: apply them again after restoring.
    pub fn restore(&mut self, state: AccountState) {
        self.accounts.insert(state.0.account.clone(), state.0);
    }

    /// Drops an account's books (another owner keeps them now).
    pub fn forget(&mut self, account: &Account) {
        self.accounts.remove(account.as_str());
    }

    /// Judges every exchange row still waiting for its fill, up to `until` (the end of the input, or a
    /// time by which every change up to it must have arrived), and books `TRADE_LITE` fills still held
    /// one-way unless the account is known to be in hedge mode.
    pub fn settle(&mut self, until: Timestamp) -> Vec<Discrepancy> {
        self.settle_where(until, None)
    }

    /// [`Books::settle`] for one account, up to `until`: what a `heard` notice of the account does when
    /// applied. A reader of a live stream should leave it to those notices rather than settle by its
    /// own clock, or its books would depend on how fast it reads.
    pub fn settle_account(&mut self, account: &Account, until: Timestamp) -> Vec<Discrepancy> {
        self.settle_where(until, Some(account))
    }

    fn settle_where(&mut self, until: Timestamp, only: Option<&Account>) -> Vec<Discrepancy> {
        let mut out = Vec::new();
        for book in self.accounts.values_mut() {
            if only.is_some_and(|a| *a != book.account) {
                continue;
            }
            let mut ctx = Ctx {
                config: &self.config,
                market: &self.market,
                out: &mut out,
            };
            book.settle(until, &mut ctx);
        }
        if self.config.keep_discrepancies {
            self.discrepancies.extend(out.iter().cloned());
        }
        out
    }

    /// The latest time of an event of `account` (its own clock).
    pub fn account_time(&self, account: &Account) -> Option<Timestamp> {
        self.accounts.get(account.as_str()).map(|b| b.last_time)
    }

    /// Whether some exchange row or held fill of `account` still waits for a verdict.
    pub fn has_pending(&self, account: &Account) -> bool {
        self.accounts
            .get(account.as_str())
            .is_some_and(|b| b.has_pending())
    }

    /// Every discrepancy found so far (when kept).
    pub fn discrepancies(&self) -> &[Discrepancy] {
        &self.discrepancies
    }

    /// Market data (marks, brackets).
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// Latest event time seen.
    pub fn last_time(&self) -> Timestamp {
        self.last_time
    }

    /// Accounts with books.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.keys()
    }

    /// One position leg.
    pub fn position(
        &self,
        account: &Account,
        symbol: &str,
        side: PositionSide,
    ) -> Option<&Position> {
        let idx = match side {
            PositionSide::Both => 0,
            PositionSide::Long => 1,
            PositionSide::Short => 2,
        };
        self.accounts
            .get(account.as_str())?
            .symbols
            .get(symbol)?
            .legs[idx]
            .as_ref()
    }

    /// Every position leg of an account (or of all accounts), sorted by (account, symbol, side).
    pub fn positions(&self, account: Option<&Account>) -> Vec<(&Account, &Position)> {
        let mut out: Vec<(&Account, &Position)> = self
            .accounts
            .iter()
            .filter(|(a, _)| account.is_none_or(|x| x == *a))
            .flat_map(|(a, book)| {
                book.symbols
                    .values()
                    .flat_map(|sb| sb.legs.iter().flatten())
                    .map(move |p| (a, p))
            })
            .collect();
        out.sort_by(|x, y| (x.0, &x.1.symbol, x.1.side).cmp(&(y.0, &y.1.symbol, y.1.side)));
        out
    }

    /// Wallet balance of one asset, `None` until the exchange has reported it.
    pub fn wallet(&self, account: &Account, asset: &str) -> Option<Decimal> {
        self.accounts
            .get(account.as_str())?
            .wallets
            .get(asset)?
            .balance
    }

    /// Known wallet balances of an account, sorted by asset.
    pub fn wallets(&self, account: &Account) -> Vec<(Asset, Decimal)> {
        self.accounts
            .get(account.as_str())
            .map(|b| {
                b.wallets
                    .iter()
                    .filter_map(|(a, w)| w.balance.map(|x| (a.clone(), x)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Trade statistics over the closed cycles of an account (or of all accounts).
    pub fn stats(&self, account: Option<&Account>) -> TradeStats {
        let mut tally = stats::CycleTally::default();
        for (_, p) in self.positions(account) {
            tally.merge(&p.cycle_tally());
        }
        tally.stats()
    }

    /// Finished days of an account.
    pub fn days(&self, account: &Account) -> &[DayResult] {
        self.accounts
            .get(account.as_str())
            .map(|b| b.perf.days())
            .unwrap_or_default()
    }

    /// `TRADE_LITE` fills of an account held for want of a position side.
    pub fn held_fills(&self, account: &Account) -> usize {
        self.accounts.get(account.as_str()).map_or(0, |b| b.held())
    }

    /// Risk and performance of one account.
    pub fn summary(&self, account: &Account) -> Option<AccountSummary> {
        let book = self.accounts.get(account.as_str())?;
        let equity = book.equity(&self.market);
        let maint = book.maint_margin(&self.market);
        let wallet = equity.map(|e| e - book.unrealized());
        let margin_ratio = match (maint, equity) {
            (Some(m), Some(e)) if e > Decimal::ZERO => Some(m / e),
            _ => None,
        };
        let n = |d: Decimal| d.normalize();
        let normalized =
            |m: &BTreeMap<Asset, Decimal>| m.iter().map(|(a, d)| (a.clone(), n(*d))).collect();
        Some(AccountSummary {
            account: account.clone(),
            hedge_mode: book.hedge,
            wallet: wallet.map(n),
            unrealized: n(book.unrealized()),
            equity: equity.map(n),
            maint_margin: maint.map(n),
            margin_ratio: margin_ratio.map(|r| r.round_dp(8).normalize()),
            performance: book.perf.summary(),
            funding_unattributed: normalized(&book.funding_unattributed),
            transfers: normalized(&book.transfers),
            other_income: normalized(&book.other_income),
            margin_calls: book.margin_calls,
        })
    }
}
