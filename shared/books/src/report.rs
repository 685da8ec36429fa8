//! The books as one document (what `acctmon books` prints): decimals as strings without trailing zeros.

use acctmon_domain::{Account, Asset, PositionSide, Symbol};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use crate::{AccountSummary, Books, Cycle, Discrepancy, DiscrepancyKind, TradeStats};

/// A decimal written as a string without trailing zeros (`"10.5"`, `"-1"`, `"0"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain(pub Decimal);

impl Serialize for Plain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&plain(self.0))
    }
}

/// Formats a decimal without trailing zeros and without a negative zero.
pub(crate) fn plain(d: Decimal) -> String {
    let n = d.normalize();
    if n.is_zero() {
        "0".to_owned()
    } else {
        n.to_string()
    }
}

/// One position leg in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionRow {
    /// Account.
    pub account: Account,
    /// Symbol.
    pub symbol: Symbol,
    /// Position side.
    pub side: PositionSide,
    /// Signed quantity, like Binance's `pa`.
    pub qty: Plain,
    /// Entry price.
    pub entry_price: Plain,
    /// Latest mark price.
    pub mark_price: Option<Plain>,
    /// Unrealized P&L at the mark.
    pub unrealized: Option<Plain>,
    /// Realized gross.
    pub realized_gross: Plain,
    /// Commission valued in the margin asset.
    pub commission: Plain,
    /// Funding attributed to the position.
    pub funding: Plain,
    /// `realized_gross − commission + funding`.
    pub realized_net: Plain,
    /// Closed cycles.
    pub cycles_closed: u64,
}

/// One wallet in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceRow {
    /// Account.
    pub account: Account,
    /// Asset.
    pub asset: Asset,
    /// Wallet balance.
    pub wallet: Plain,
}

/// Trade statistics in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    /// Closed cycles.
    pub cycles: u64,
    /// Winning cycles.
    pub wins: u64,
    /// Losing cycles.
    pub losses: u64,
    /// Win rate, 4 decimals.
    pub win_rate: Option<Plain>,
    /// Sum of winning results.
    pub gross_profit: Plain,
    /// Sum of losing results (zero or negative).
    pub gross_loss: Plain,
    /// Profit factor, 4 decimals; `null` without losses.
    pub profit_factor: Option<Plain>,
}

impl From<&TradeStats> for StatsRow {
    fn from(s: &TradeStats) -> Self {
        Self {
            cycles: s.cycles,
            wins: s.wins,
            losses: s.losses,
            win_rate: s.win_rate.map(|r| Plain(r.round_dp(4))),
            gross_profit: Plain(s.gross_profit),
            gross_loss: Plain(s.gross_loss),
            profit_factor: s.profit_factor.map(|r| Plain(r.round_dp(4))),
        }
    }
}

/// One discrepancy in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscrepancyRow {
    /// What disagreed.
    pub kind: DiscrepancyKind,
    /// Symbol (positions, realized).
    pub symbol: Option<Symbol>,
    /// Side (positions, realized).
    pub side: Option<PositionSide>,
    /// Asset (wallets).
    pub asset: Option<Asset>,
    /// Our figure.
    pub ours: Plain,
    /// The exchange's figure.
    pub exchange: Plain,
}

impl From<&Discrepancy> for DiscrepancyRow {
    fn from(d: &Discrepancy) -> Self {
        Self {
            kind: d.kind,
            symbol: d.symbol.clone(),
            side: d.side,
            asset: d.asset.clone(),
            ours: Plain(d.ours),
            exchange: Plain(d.exchange),
        }
    }
}

/// The books of one account (or all) as one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Positions that have had a fill or hold a quantity, sorted by (account, symbol, side).
    pub positions: Vec<PositionRow>,
    /// Known wallet balances, sorted by (account, asset).
    pub balances: Vec<BalanceRow>,
    /// Trade statistics over closed cycles.
    pub stats: StatsRow,
    /// Disagreements with the exchange, in the order found.
    pub discrepancies: Vec<DiscrepancyRow>,
    /// Risk and performance per account (only with [`Report::with_details`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountSummary>>,
    /// Closed cycles per position (only with [`Report::with_details`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles: Option<Vec<CycleRow>>,
}

/// A closed cycle with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRow {
    /// Account.
    pub account: Account,
    /// Symbol.
    pub symbol: Symbol,
    /// Side.
    pub side: PositionSide,
    /// The cycle.
    #[serde(flatten)]
    pub cycle: Cycle,
    /// Its result (net realized).
    pub result: Decimal,
}

impl Report {
    /// The report of one account (or all accounts when `None`).
    pub fn new(books: &Books, account: Option<&Account>) -> Self {
        let positions = books
            .positions(account)
            .into_iter()
            .filter(|(_, p)| p.fills() > 0 || !p.qty().is_zero())
            .map(|(a, p)| {
                let mark = books.market().mark(p.symbol());
                PositionRow {
                    account: a.clone(),
                    symbol: p.symbol().clone(),
                    side: p.side(),
                    qty: Plain(p.qty()),
                    entry_price: Plain(p.entry_price()),
                    mark_price: mark.map(Plain),
                    unrealized: p.unrealized().map(Plain),
                    realized_gross: Plain(p.realized_gross()),
                    commission: Plain(p.commission()),
                    funding: Plain(p.funding()),
                    realized_net: Plain(p.realized_net()),
                    cycles_closed: p.cycles_closed(),
                }
            })
            .collect();
        let balances = books
            .accounts()
            .filter(|a| account.is_none_or(|x| x == *a))
            .flat_map(|a| {
                books
                    .wallets(a)
                    .into_iter()
                    .map(move |(asset, w)| BalanceRow {
                        account: a.clone(),
                        asset,
                        wallet: Plain(w),
                    })
            })
            .collect();
        let discrepancies = books
            .discrepancies()
            .iter()
            .filter(|d| account.is_none_or(|x| *x == d.account))
            .map(DiscrepancyRow::from)
            .collect();
        Self {
            positions,
            balances,
            stats: StatsRow::from(&books.stats(account)),
            discrepancies,
            accounts: None,
            cycles: None,
        }
    }

    /// Adds risk and performance per account and the closed cycles.
    pub fn with_details(mut self, books: &Books, account: Option<&Account>) -> Self {
        self.accounts = Some(
            books
                .accounts()
                .filter(|a| account.is_none_or(|x| x == *a))
                .filter_map(|a| books.summary(a))
                .collect(),
        );
        self.cycles = Some(
            books
                .positions(account)
                .into_iter()
                .flat_map(|(a, p)| {
                    p.closed_cycles().into_iter().map(move |c| CycleRow {
                        account: a.clone(),
                        symbol: p.symbol().clone(),
                        side: p.side(),
                        cycle: Cycle {
                            max_qty: c.max_qty.normalize(),
                            realized_gross: c.realized_gross.normalize(),
                            commission: c.commission.normalize(),
                            funding: c.funding.normalize(),
                            ..c
                        },
                        result: c.result().normalize(),
                    })
                })
                .collect(),
        );
        self
    }
}
