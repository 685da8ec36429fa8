//! The exchange side: accounts, wallets, positions, orders and fills, funding, leverage and margin, and
//! the user-data events Binance emits for every change, in Binance's own JSON.
//!
//! This model is written independently of `shared/books` on purpose: the simulator is the check on the
//! books, so it must not share their arithmetic. Figures follow what Binance publishes: entry prices, `rp`,
//! commissions and funding rounded to 8 decimals; `rp` gross of fees; funding in its own
//! `ACCOUNT_UPDATE` (`m = FUNDING_FEE`, with `a.S`).
//!
//! Orders match against the mark price: a market order, or a limit order that crosses the mark, fills at
//! once as taker in one to three fills a tick apart (never beyond its limit); a resting limit order fills
//! as maker at its price, often in parts, when a later mark crosses it. Reduce-only orders and hedge-mode
//! reducing orders never fill beyond the position; what they cannot fill expires.

pub mod margin;
pub mod wire;

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::rng::Rng;
use wire::Execution;

/// Decimals Binance publishes for prices, `rp`, commissions and wallets.
const PUBLISHED_DP: u32 = 8;

fn round8(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PUBLISHED_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Closed orders kept per account for `GET /fapi/v1/order`; older ones are forgotten.
const CLOSED_ORDERS_KEPT: usize = 100_000;

/// Leverage of a symbol until the account changes it.
pub const DEFAULT_LEVERAGE: u32 = 20;

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// Binance's spelling.
    pub fn wire(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// Position side: `Both` in one-way mode, `Long`/`Short` legs in hedge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leg {
    /// One-way mode.
    Both,
    /// Hedge long leg.
    Long,
    /// Hedge short leg.
    Short,
}

impl Leg {
    /// Binance's spelling.
    pub fn wire(self) -> &'static str {
        match self {
            Leg::Both => "BOTH",
            Leg::Long => "LONG",
            Leg::Short => "SHORT",
        }
    }
}

/// Order type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// Fills at once against the mark.
    Market,
    /// Fills at its price or better.
    Limit,
}

impl OrderKind {
    /// Binance's spelling.
    pub fn wire(self) -> &'static str {
        match self {
            OrderKind::Market => "MARKET",
            OrderKind::Limit => "LIMIT",
        }
    }
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tif {
    /// Good till canceled.
    Gtc,
    /// Immediate or cancel: what does not fill at once expires.
    Ioc,
    /// Fill or kill: all at once or nothing.
    Fok,
    /// Post only: expires if it would take.
    Gtx,
}

impl Tif {
    /// Binance's spelling.
    pub fn wire(self) -> &'static str {
        match self {
            Tif::Gtc => "GTC",
            Tif::Ioc => "IOC",
            Tif::Fok => "FOK",
            Tif::Gtx => "GTX",
        }
    }

    /// Parses Binance's spelling.
    pub fn parse(s: &str) -> Option<Tif> {
        Some(match s {
            "GTC" => Tif::Gtc,
            "IOC" => Tif::Ioc,
            "FOK" => Tif::Fok,
            "GTX" => Tif::Gtx,
            _ => return None,
        })
    }
}

/// Order status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, nothing filled.
    New,
    /// Some filled, some open.
    PartiallyFilled,
    /// All filled.
    Filled,
    /// Canceled by the user.
    Canceled,
    /// Expired (IOC/FOK/GTX rest, reduce-only with nothing left to reduce).
    Expired,
}

impl OrderStatus {
    /// Binance's spelling.
    pub fn wire(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Expired => "EXPIRED",
        }
    }

    /// Still working.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

/// An order as the exchange holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Order id.
    pub id: u64,
    /// Client order id.
    pub client_id: String,
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Position side.
    pub leg: Leg,
    /// Type.
    pub kind: OrderKind,
    /// Time in force.
    pub tif: Tif,
    /// Limit price (zero for market orders).
    pub price: Decimal,
    /// Ordered quantity.
    pub qty: Decimal,
    /// Filled quantity.
    pub filled: Decimal,
    /// Σ qty × price of the fills.
    pub quote: Decimal,
    /// Reduce only.
    pub reduce_only: bool,
    /// Status.
    pub status: OrderStatus,
    /// Creation time, ms.
    pub time: i64,
    /// Last change, ms.
    pub update_time: i64,
}

impl Order {
    /// Average fill price (8 decimals), zero before any fill.
    pub fn avg_price(&self) -> Decimal {
        if self.filled.is_zero() {
            Decimal::ZERO
        } else {
            round8(self.quote / self.filled)
        }
    }

    /// Quantity still to fill.
    pub fn remaining(&self) -> Decimal {
        self.qty - self.filled
    }
}

/// An order as requested.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Quantity.
    pub qty: Decimal,
    /// Limit price (limit orders).
    pub price: Option<Decimal>,
    /// Time in force (limit orders; GTC when absent).
    pub tif: Option<Tif>,
    /// Position side (`None` = BOTH).
    pub leg: Option<Leg>,
    /// Reduce only.
    pub reduce_only: bool,
    /// Client order id (generated when absent).
    pub client_id: Option<String>,
}

impl OrderRequest {
    /// A market order.
    pub fn market(symbol: &str, side: Side, qty: Decimal, leg: Option<Leg>) -> Self {
        Self {
            symbol: symbol.to_owned(),
            side,
            kind: OrderKind::Market,
            qty,
            price: None,
            tif: None,
            leg,
            reduce_only: false,
            client_id: None,
        }
    }

    /// A GTC limit order.
    pub fn limit(symbol: &str, side: Side, qty: Decimal, price: Decimal, leg: Option<Leg>) -> Self {
        Self {
            kind: OrderKind::Limit,
            price: Some(price),
            tif: Some(Tif::Gtc),
            ..Self::market(symbol, side, qty, leg)
        }
    }
}

/// One account as configured.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// Alias, as acctmon names it.
    pub name: String,
    /// Hedge mode (`dualSidePosition`).
    pub hedge: bool,
    /// Pay fees in BNB (10 % discount), valued at the BNBUSDT mark.
    pub fees_in_bnb: bool,
}

/// A position as the exchange holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionState {
    /// Signed amount (`pa`).
    pub amount: Decimal,
    /// Entry price (`ep`), 8 decimals, zero when flat.
    pub entry: Decimal,
    /// Pre-fee accumulated realized P&L (`cr`).
    pub cum_realized: Decimal,
}

/// One executed trade, as `/fapi/v1/userTrades` would list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// Trade id (per symbol).
    pub id: u64,
    /// Order id.
    pub order_id: u64,
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Position side.
    pub leg: Leg,
    /// Quantity.
    pub qty: Decimal,
    /// Price.
    pub price: Decimal,
    /// Realized P&L, gross of fees.
    pub realized: Decimal,
    /// Commission.
    pub commission: Decimal,
    /// Commission asset.
    pub commission_asset: String,
    /// Maker side.
    pub maker: bool,
    /// Trade time, ms.
    pub time: i64,
}

/// One row of `/fapi/v1/income`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Income {
    /// Symbol, empty for money movements.
    pub symbol: String,
    /// `incomeType`: `TRANSFER`, `REALIZED_PNL`, `COMMISSION`, `FUNDING_FEE`.
    pub kind: &'static str,
    /// Signed effect on the wallet (commission negative).
    pub amount: Decimal,
    /// Asset.
    pub asset: String,
    /// Time, ms.
    pub time: i64,
    /// Transaction id.
    pub tran_id: u64,
    /// Trade id for trade rows.
    pub trade_id: Option<u64>,
}

/// An account on the exchange side.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// The configuration.
    pub spec: AccountSpec,
    /// Wallet balance per asset.
    pub wallets: BTreeMap<String, Decimal>,
    /// Positions per (symbol, leg).
    pub positions: BTreeMap<(String, Leg), PositionState>,
    /// Orders by id: every open one and the most recent closed ones.
    pub orders: BTreeMap<u64, Order>,
    /// Ids of the open orders.
    open: std::collections::BTreeSet<u64>,
    /// Leverage per symbol, when changed from [`DEFAULT_LEVERAGE`].
    pub leverage: BTreeMap<String, u32>,
    /// Every trade, in execution order.
    pub trades: Vec<Trade>,
    /// Income history, in time order.
    pub income: Vec<Income>,
    /// Σ `rp`.
    pub realized: Decimal,
    /// Commission per asset.
    pub commission: BTreeMap<String, Decimal>,
    /// Σ funding (negative when paid).
    pub funding: Decimal,
    /// A margin call was sent and the ratio has not fallen back below the threshold since.
    margin_called: bool,
    /// User-data events not yet taken, as JSON text in emission order.
    outbox: Vec<String>,
}

impl AccountState {
    fn new(spec: AccountSpec) -> Self {
        Self {
            spec,
            wallets: BTreeMap::new(),
            positions: BTreeMap::new(),
            orders: BTreeMap::new(),
            open: std::collections::BTreeSet::new(),
            leverage: BTreeMap::new(),
            trades: Vec::new(),
            income: Vec::new(),
            realized: Decimal::ZERO,
            commission: BTreeMap::new(),
            funding: Decimal::ZERO,
            margin_called: false,
            outbox: Vec::new(),
        }
    }

    /// Leverage of a symbol.
    pub fn leverage_of(&self, symbol: &str) -> u32 {
        self.leverage
            .get(symbol)
            .copied()
            .unwrap_or(DEFAULT_LEVERAGE)
    }

    /// Open orders, optionally of one symbol, by id.
    pub fn open_orders<'a>(&'a self, symbol: Option<&'a str>) -> impl Iterator<Item = &'a Order> {
        self.open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(move |o| symbol.is_none_or(|s| s == o.symbol))
    }

    /// Finds an order by id or client id.
    pub fn find_order(
        &self,
        symbol: &str,
        id: Option<u64>,
        client_id: Option<&str>,
    ) -> Option<&Order> {
        match (id, client_id) {
            (Some(id), _) => self.orders.get(&id).filter(|o| o.symbol == symbol),
            (None, Some(c)) => self
                .orders
                .values()
                .rev()
                .find(|o| o.symbol == symbol && o.client_id == c),
            (None, None) => None,
        }
    }

    fn amount(&self, symbol: &str, leg: Leg) -> Decimal {
        self.positions
            .get(&(symbol.to_owned(), leg))
            .map_or(Decimal::ZERO, |p| p.amount)
    }

    /// How much of an order on this side may fill without going beyond the position it reduces:
    /// `None` when the order is not limited (it opens or may flip).
    fn reduce_cap(&self, order: &Order) -> Option<Decimal> {
        let amount = self.amount(&order.symbol, order.leg);
        match (order.leg, order.side) {
            (Leg::Long, Side::Sell) | (Leg::Short, Side::Buy) => Some(amount.abs()),
            (Leg::Long | Leg::Short, _) => None,
            (Leg::Both, side) if order.reduce_only => {
                let opposite = match side {
                    Side::Buy => amount < Decimal::ZERO,
                    Side::Sell => amount > Decimal::ZERO,
                };
                Some(if opposite {
                    amount.abs()
                } else {
                    Decimal::ZERO
                })
            }
            (Leg::Both, _) => None,
        }
    }

    fn push(&mut self, event: String) {
        self.outbox.push(event);
    }
}

/// Why a request was refused, with Binance's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// No mark price for the symbol.
    NoMarkPrice,
    /// A hedge-mode order without a position side, or a one-way order with one.
    PositionSideMismatch,
    /// A reduce-only order with nothing to reduce, or a reducing hedge order larger than the leg.
    ReduceOnlyRejected,
    /// `reduceOnly` sent in hedge mode.
    ReduceOnlyInHedgeMode,
    /// Zero or negative quantity.
    BadQuantity,
    /// A limit order without a valid price.
    BadPrice,
    /// The order is unknown.
    UnknownOrder,
    /// The order is not open any more.
    OrderNotOpen,
    /// Leverage outside the symbol's brackets.
    BadLeverage,
    /// The position mode is already the one asked for.
    SameMode,
    /// The position mode cannot change with open positions.
    ModeWithPositions,
    /// The position mode cannot change with open orders.
    ModeWithOrders,
}

/// Settings of the exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// Taker fee rate (Binance default 0.05 %).
    pub taker_fee: Decimal,
    /// Maker fee rate (Binance default 0.02 %).
    pub maker_fee: Decimal,
    /// Discount when fees are paid in BNB (Binance: 10 %).
    pub bnb_discount: Decimal,
    /// Time between fundings, ms (Binance: 8 hours; shorter under a time scale).
    pub funding_interval_ms: i64,
    /// Margin ratio (maintenance ÷ margin balance) at which a `MARGIN_CALL` is sent.
    pub margin_call_ratio: Decimal,
    /// Seed of every random choice (partial fills, arrival order of events).
    pub seed: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            taker_fee: Decimal::new(5, 4),
            maker_fee: Decimal::new(2, 4),
            bnb_discount: Decimal::new(1, 1),
            funding_interval_ms: 8 * 3_600_000,
            margin_call_ratio: Decimal::new(8, 1),
            seed: 1,
        }
    }
}

/// The simulated exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    config: ExchangeConfig,
    accounts: Vec<AccountState>,
    marks: BTreeMap<String, Decimal>,
    /// Funding rate of the coming funding, per symbol.
    rates: BTreeMap<String, Decimal>,
    next_funding: Option<i64>,
    next_trade_id: BTreeMap<String, u64>,
    next_order_id: u64,
    next_tran_id: u64,
    rng: Rng,
}

/// The margin asset of a symbol: its quote (`BTCUSDT` → `USDT`).
pub fn margin_asset(symbol: &str) -> &'static str {
    if symbol.ends_with("USDC") {
        "USDC"
    } else {
        "USDT"
    }
}

fn is_stable(asset: &str) -> bool {
    matches!(asset, "USDT" | "USDC")
}

impl Exchange {
    /// An exchange with these accounts (indexed in this order).
    pub fn new(config: ExchangeConfig, accounts: Vec<AccountSpec>) -> Self {
        let rng = Rng::new(config.seed);
        Self {
            config,
            accounts: accounts.into_iter().map(AccountState::new).collect(),
            marks: BTreeMap::new(),
            rates: BTreeMap::new(),
            next_funding: None,
            next_trade_id: BTreeMap::new(),
            next_order_id: 1_000_000,
            next_tran_id: 9_000_000_000,
            rng,
        }
    }

    /// The seed the exchange was built with.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// The settings.
    pub fn config(&self) -> &ExchangeConfig {
        &self.config
    }

    /// The accounts.
    pub fn accounts(&self) -> &[AccountState] {
        &self.accounts
    }

    /// The random generator, shared with activity generation so one seed decides everything.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Every mark price, by symbol.
    pub fn marks(&self) -> &BTreeMap<String, Decimal> {
        &self.marks
    }

    /// Latest mark price of a symbol.
    pub fn mark(&self, symbol: &str) -> Option<Decimal> {
        self.marks.get(symbol).copied()
    }

    /// The funding rate announced for the coming funding.
    pub fn funding_rate(&self, symbol: &str) -> Decimal {
        self.rates
            .get(symbol)
            .copied()
            .unwrap_or(Decimal::new(1, 4))
    }

    /// Time of the next funding, ms (the first multiple of the interval after `time` before any).
    pub fn next_funding_time(&self, time: i64) -> i64 {
        self.next_funding.unwrap_or_else(|| {
            let interval = self.config.funding_interval_ms.max(1);
            time - time.rem_euclid(interval) + interval
        })
    }

    /// Takes the user-data events of an account emitted so far.
    pub fn take_events(&mut self, account: usize) -> Vec<String> {
        std::mem::take(&mut self.accounts[account].outbox)
    }

    /// The `markPriceUpdate` payload of a symbol now.
    pub fn mark_payload(&self, symbol: &str, time: i64) -> Option<String> {
        let mark = self.mark(symbol)?;
        Some(wire::mark_price_update(
            symbol,
            mark,
            self.funding_rate(symbol),
            self.next_funding_time(time),
            time,
        ))
    }

    /// Sets a mark price: resting limit orders it crosses fill, margin calls go out where due.
    /// Returns the `markPriceUpdate` payload.
    pub fn set_mark(&mut self, symbol: &str, price: Decimal, time: i64) -> String {
        self.marks.insert(symbol.to_owned(), price);
        self.match_resting(symbol, price, time);
        for a in 0..self.accounts.len() {
            self.check_margin(a, time);
        }
        self.mark_payload(symbol, time).unwrap_or_default()
    }

    /// Pays every funding due by `time` (at the funding times, on the mark then). Call as time passes.
    pub fn advance(&mut self, time: i64) {
        let mut due = self.next_funding_time(time);
        if self.next_funding.is_none() {
            self.next_funding = Some(due);
            return;
        }
        while time >= due {
            let symbols: Vec<String> = self.marks.keys().cloned().collect();
            for symbol in &symbols {
                let rate = self.funding_rate(symbol);
                self.pay_funding(symbol, rate, due);
                // The next rate is drawn from the seed, the symbol and the funding time only, so
                // when fundings fall does not change the rest of the seeded history.
                let mut r = Rng::new(
                    self.config.seed
                        ^ due.unsigned_abs().rotate_left(17)
                        ^ symbol
                            .bytes()
                            .fold(0u64, |h, b| h.wrapping_mul(0x100_0000_01b3) ^ u64::from(b)),
                );
                let next = Decimal::new(i64::try_from(r.below(41)).unwrap_or(0) - 10, 5);
                self.rates.insert(symbol.clone(), next);
            }
            due += self.config.funding_interval_ms.max(1);
            self.next_funding = Some(due);
        }
    }

    fn tran_id(&mut self) -> u64 {
        self.next_tran_id += 1;
        self.next_tran_id
    }

    /// Money moved into (positive) or out of the futures wallet.
    pub fn transfer(&mut self, account: usize, asset: &str, amount: Decimal, time: i64) {
        let tran_id = self.tran_id();
        let acct = &mut self.accounts[account];
        let wb = acct.wallets.entry(asset.to_owned()).or_default();
        *wb += amount;
        let reason = if amount.is_sign_negative() {
            "WITHDRAW"
        } else {
            "DEPOSIT"
        };
        let row = wire::balance_row(asset, *wb, amount);
        acct.income.push(Income {
            symbol: String::new(),
            kind: "TRANSFER",
            amount,
            asset: asset.to_owned(),
            time,
            tran_id,
            trade_id: None,
        });
        acct.push(wire::account_update(time, reason, &[row], &[], None));
    }

    /// Pays funding at `rate` to every open position on `symbol`: `−amount × mark × rate`.
    pub fn pay_funding(&mut self, symbol: &str, rate: Decimal, time: i64) {
        let Some(mark) = self.mark(symbol) else {
            return;
        };
        let asset = margin_asset(symbol);
        for a in 0..self.accounts.len() {
            let legs: Vec<Decimal> = self.accounts[a]
                .positions
                .iter()
                .filter(|((s, _), p)| s == symbol && !p.amount.is_zero())
                .map(|(_, p)| p.amount)
                .collect();
            for amount in legs {
                let paid = round8(-amount * mark * rate);
                if paid.is_zero() {
                    continue;
                }
                let tran_id = self.tran_id();
                let acct = &mut self.accounts[a];
                let wb = acct.wallets.entry(asset.to_owned()).or_default();
                *wb += paid;
                acct.funding += paid;
                let row = wire::balance_row(asset, *wb, paid);
                acct.income.push(Income {
                    symbol: symbol.to_owned(),
                    kind: "FUNDING_FEE",
                    amount: paid,
                    asset: asset.to_owned(),
                    time,
                    tran_id,
                    trade_id: None,
                });
                acct.push(wire::account_update(
                    time,
                    "FUNDING_FEE",
                    &[row],
                    &[],
                    Some(symbol),
                ));
            }
        }
    }

    /// Changes the leverage of a symbol; emits `ACCOUNT_CONFIG_UPDATE`. Returns the largest notional
    /// allowed at that leverage.
    pub fn set_leverage(
        &mut self,
        account: usize,
        symbol: &str,
        leverage: u32,
        time: i64,
    ) -> Result<i64, Reject> {
        if self.mark(symbol).is_none() {
            return Err(Reject::NoMarkPrice);
        }
        let cap = match leverage {
            0 => None,
            l => margin::max_notional(symbol, l),
        }
        .ok_or(Reject::BadLeverage)?;
        let acct = &mut self.accounts[account];
        acct.leverage.insert(symbol.to_owned(), leverage);
        acct.push(wire::leverage_update(symbol, leverage, time));
        Ok(cap)
    }

    /// Switches between one-way and hedge mode, as `POST /fapi/v1/positionSide/dual` (no event).
    pub fn set_hedge_mode(&mut self, account: usize, hedge: bool) -> Result<(), Reject> {
        let acct = &mut self.accounts[account];
        if acct.spec.hedge == hedge {
            return Err(Reject::SameMode);
        }
        if !acct.open.is_empty() {
            return Err(Reject::ModeWithOrders);
        }
        if acct.positions.values().any(|p| !p.amount.is_zero()) {
            return Err(Reject::ModeWithPositions);
        }
        acct.spec.hedge = hedge;
        acct.positions.clear();
        Ok(())
    }

    /// Changes a wallet without any event: drift only REST shows.
    pub fn drift_wallet(&mut self, account: usize, asset: &str, delta: Decimal) {
        *self.accounts[account]
            .wallets
            .entry(asset.to_owned())
            .or_default() += delta;
    }

    /// Changes a position's amount without any event: drift only REST shows.
    pub fn drift_position(&mut self, account: usize, symbol: &str, leg: Leg, delta: Decimal) {
        let mark = self.mark(symbol).unwrap_or_default();
        let p = self.accounts[account]
            .positions
            .entry((symbol.to_owned(), leg))
            .or_default();
        if p.amount.is_zero() {
            p.entry = mark;
        }
        p.amount += delta;
        if p.amount.is_zero() {
            p.entry = Decimal::ZERO;
        }
    }

    /// A market order on `leg` (`None` in one-way mode). Returns the order id.
    pub fn market_order(
        &mut self,
        account: usize,
        symbol: &str,
        side: Side,
        qty: Decimal,
        leg: Option<Leg>,
        time: i64,
    ) -> Result<u64, Reject> {
        self.place_order(account, OrderRequest::market(symbol, side, qty, leg), time)
    }

    /// Places an order: validated like Binance, accepted (`NEW`), then filled at once where it crosses
    /// the mark; what an IOC/FOK/GTX order cannot do at once expires. Returns the order id.
    pub fn place_order(
        &mut self,
        account: usize,
        req: OrderRequest,
        time: i64,
    ) -> Result<u64, Reject> {
        let mark = self.mark(&req.symbol).ok_or(Reject::NoMarkPrice)?;
        if req.qty <= Decimal::ZERO {
            return Err(Reject::BadQuantity);
        }
        let price = match (req.kind, req.price) {
            (OrderKind::Market, _) => Decimal::ZERO,
            (OrderKind::Limit, Some(p)) if p > Decimal::ZERO => p,
            (OrderKind::Limit, _) => return Err(Reject::BadPrice),
        };
        let hedge = self.accounts[account].spec.hedge;
        let leg = match (hedge, req.leg) {
            (false, None | Some(Leg::Both)) => Leg::Both,
            (true, Some(l @ (Leg::Long | Leg::Short))) => l,
            _ => return Err(Reject::PositionSideMismatch),
        };
        if hedge && req.reduce_only {
            return Err(Reject::ReduceOnlyInHedgeMode);
        }
        self.next_order_id += 1;
        let id = self.next_order_id;
        let order = Order {
            id,
            client_id: req.client_id.unwrap_or_else(|| format!("sim-{id}")),
            symbol: req.symbol,
            side: req.side,
            leg,
            kind: req.kind,
            tif: match req.kind {
                OrderKind::Market => Tif::Gtc,
                OrderKind::Limit => req.tif.unwrap_or(Tif::Gtc),
            },
            price,
            qty: req.qty,
            filled: Decimal::ZERO,
            quote: Decimal::ZERO,
            reduce_only: req.reduce_only,
            status: OrderStatus::New,
            time,
            update_time: time,
        };
        let acct = &mut self.accounts[account];
        if let Some(cap) = acct.reduce_cap(&order) {
            let committed: Decimal = acct
                .open_orders(Some(&order.symbol))
                .filter(|o| {
                    o.leg == order.leg && o.side == order.side && acct.reduce_cap(o).is_some()
                })
                .map(Order::remaining)
                .sum();
            if cap.is_zero() || (hedge && order.qty + committed > cap) {
                return Err(Reject::ReduceOnlyRejected);
            }
        }
        let crosses = match (order.kind, order.side) {
            (OrderKind::Market, _) => true,
            (OrderKind::Limit, Side::Buy) => price >= mark,
            (OrderKind::Limit, Side::Sell) => price <= mark,
        };
        acct.push(wire::order_update(&order, "NEW", None, time));
        acct.orders.insert(id, order);
        acct.open.insert(id);
        self.forget_closed_orders(account);
        let tif = self.accounts[account].orders[&id].tif;
        match (crosses, tif) {
            (true, Tif::Gtx) => self.close_order(account, id, OrderStatus::Expired, time),
            (true, Tif::Fok)
                if self.accounts[account]
                    .reduce_cap(&self.accounts[account].orders[&id])
                    .is_some_and(|cap| cap < req.qty) =>
            {
                self.close_order(account, id, OrderStatus::Expired, time);
            }
            (true, _) => {
                self.take(account, id, mark, time);
                if self.accounts[account].orders[&id].status.is_open()
                    && (tif != Tif::Gtc
                        || self.accounts[account].orders[&id].kind == OrderKind::Market)
                {
                    self.close_order(account, id, OrderStatus::Expired, time);
                }
            }
            (false, Tif::Ioc | Tif::Fok) => {
                self.close_order(account, id, OrderStatus::Expired, time);
            }
            (false, _) => {}
        }
        Ok(id)
    }

    /// Cancels an open order (`CANCELED`). Returns it as it ends.
    pub fn cancel_order(
        &mut self,
        account: usize,
        symbol: &str,
        id: Option<u64>,
        client_id: Option<&str>,
        time: i64,
    ) -> Result<Order, Reject> {
        let order = self.accounts[account]
            .find_order(symbol, id, client_id)
            .ok_or(Reject::UnknownOrder)?;
        if !order.status.is_open() {
            return Err(Reject::OrderNotOpen);
        }
        let id = order.id;
        self.close_order(account, id, OrderStatus::Canceled, time);
        Ok(self.accounts[account].orders[&id].clone())
    }

    fn close_order(&mut self, account: usize, id: u64, status: OrderStatus, time: i64) {
        let acct = &mut self.accounts[account];
        let Some(order) = acct.orders.get_mut(&id) else {
            return;
        };
        order.status = status;
        order.update_time = time;
        acct.open.remove(&id);
        let exec = if status == OrderStatus::Canceled {
            "CANCELED"
        } else {
            "EXPIRED"
        };
        let event = wire::order_update(order, exec, None, time);
        acct.push(event);
    }

    fn forget_closed_orders(&mut self, account: usize) {
        let orders = &mut self.accounts[account].orders;
        while orders.len() > CLOSED_ORDERS_KEPT {
            let Some(id) = orders.values().find(|o| !o.status.is_open()).map(|o| o.id) else {
                return;
            };
            orders.remove(&id);
        }
    }

    /// Fills a crossing order at once as taker: up to three fills, each a tick further from the mark,
    /// never beyond the limit, and never beyond the position a reducing order reduces.
    fn take(&mut self, account: usize, id: u64, mark: Decimal, time: i64) {
        let order = &self.accounts[account].orders[&id];
        let mut want = order.remaining();
        if let Some(cap) = self.accounts[account].reduce_cap(order) {
            want = want.min(cap);
        }
        if want <= Decimal::ZERO {
            return;
        }
        let (side, kind, limit) = (order.side, order.kind, order.price);
        let lots = (want * Decimal::from(1000)).trunc();
        let parts = if lots >= Decimal::from(3) {
            1 + self.rng.below(3)
        } else {
            1
        };
        let mut left = want;
        for i in 0..parts {
            let part = if i + 1 == parts {
                left
            } else {
                let max_lots = (left * Decimal::from(1000)).trunc() - Decimal::from(parts - i - 1);
                let take = 1 + self.rng.below(max_lots.try_into().unwrap_or(1u64).max(1));
                Decimal::from(take) / Decimal::from(1000)
            };
            left -= part;
            let tick = Decimal::new(1, 1) * Decimal::from(i);
            let price = match (side, kind) {
                (Side::Buy, OrderKind::Market) => mark + tick,
                (Side::Sell, OrderKind::Market) => mark - tick,
                (Side::Buy, OrderKind::Limit) => (mark + tick).min(limit),
                (Side::Sell, OrderKind::Limit) => (mark - tick).max(limit),
            };
            self.fill(account, id, part, price, false, time);
        }
    }

    /// Resting limit orders on `symbol` that the new mark crosses fill as makers at their price, often
    /// only in part.
    fn match_resting(&mut self, symbol: &str, mark: Decimal, time: i64) {
        for a in 0..self.accounts.len() {
            let crossed: Vec<u64> = self.accounts[a]
                .open_orders(Some(symbol))
                .filter(|o| match o.side {
                    Side::Buy => o.price >= mark,
                    Side::Sell => o.price <= mark,
                })
                .map(|o| o.id)
                .collect();
            for id in crossed {
                let order = &self.accounts[a].orders[&id];
                let mut left = order.remaining();
                let price = order.price;
                let cap = self.accounts[a].reduce_cap(order);
                if let Some(cap) = cap {
                    left = left.min(cap);
                }
                let lots = (left * Decimal::from(1000)).trunc();
                let part = if lots >= Decimal::from(2) && self.rng.chance(50) {
                    let l: u64 = lots.try_into().unwrap_or(2);
                    Decimal::from(1 + self.rng.below(l - 1)) / Decimal::from(1000)
                } else {
                    left
                };
                if part > Decimal::ZERO {
                    self.fill(a, id, part, price, true, time);
                }
                let order = &self.accounts[a].orders[&id];
                if order.status.is_open() && cap.is_some_and(|c| c <= part) {
                    // The position it reduces is gone: the rest expires.
                    self.close_order(a, id, OrderStatus::Expired, time);
                }
            }
        }
    }

    /// One fill of an order: position, wallet, trade and income rows, then `TRADE_LITE` and the
    /// `ORDER_TRADE_UPDATE` / `ACCOUNT_UPDATE` pair in either order (Binance does not order different
    /// event types, PROTOCOL §1.4).
    fn fill(
        &mut self,
        account: usize,
        id: u64,
        qty: Decimal,
        price: Decimal,
        maker: bool,
        time: i64,
    ) {
        let symbol = self.accounts[account].orders[&id].symbol.clone();
        let trade_id = {
            let next = self
                .next_trade_id
                .entry(symbol.clone())
                .or_insert(5_000_000);
            *next += 1;
            *next
        };
        let rate = if maker {
            self.config.maker_fee
        } else {
            self.config.taker_fee
        };
        let fee_quote = round8(qty * price * rate);
        let bnb_mark = self.mark("BNBUSDT");
        let asset = margin_asset(&symbol);
        let (fee, fee_asset) = match (self.accounts[account].spec.fees_in_bnb, bnb_mark) {
            (true, Some(bnb)) if !bnb.is_zero() => (
                round8(fee_quote * (Decimal::ONE - self.config.bnb_discount) / bnb),
                "BNB",
            ),
            _ => (fee_quote, asset),
        };
        let pnl_tran = self.tran_id();
        let fee_tran = self.tran_id();
        let swap_order_first = self.rng.chance(50);
        let mark = self.mark(&symbol).unwrap_or(price);
        let taker_fee = self.config.taker_fee;
        let acct = &mut self.accounts[account];
        let Some(order) = acct.orders.get_mut(&id) else {
            return;
        };
        order.filled += qty;
        order.quote += qty * price;
        order.update_time = time;
        order.status = if order.filled >= order.qty {
            acct.open.remove(&id);
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let (side, leg) = (order.side, order.leg);
        let pos = acct.positions.entry((symbol.clone(), leg)).or_default();
        let realized = trade_position(pos, side, qty, price);
        let pos = pos.clone();
        acct.realized += realized;
        *acct.commission.entry(fee_asset.to_owned()).or_default() += fee;
        *acct.wallets.entry(asset.to_owned()).or_default() += realized;
        *acct.wallets.entry(fee_asset.to_owned()).or_default() -= fee;
        acct.trades.push(Trade {
            id: trade_id,
            order_id: id,
            symbol: symbol.clone(),
            side,
            leg,
            qty,
            price,
            realized,
            commission: fee,
            commission_asset: fee_asset.to_owned(),
            maker,
            time,
        });
        if !realized.is_zero() {
            acct.income.push(Income {
                symbol: symbol.clone(),
                kind: "REALIZED_PNL",
                amount: realized,
                asset: asset.to_owned(),
                time,
                tran_id: pnl_tran,
                trade_id: Some(trade_id),
            });
        }
        if !fee.is_zero() {
            acct.income.push(Income {
                symbol: symbol.clone(),
                kind: "COMMISSION",
                amount: -fee,
                asset: fee_asset.to_owned(),
                time,
                tran_id: fee_tran,
                trade_id: Some(trade_id),
            });
        }
        let mut rows = vec![wire::balance_row(asset, acct.wallets[asset], Decimal::ZERO)];
        if fee_asset != asset {
            rows.push(wire::balance_row(
                fee_asset,
                acct.wallets[fee_asset],
                Decimal::ZERO,
            ));
        }
        let position = wire::position_row(&symbol, leg, &pos, mark, taker_fee);
        let exec = Execution {
            qty,
            price,
            fee,
            fee_asset,
            trade_id,
            realized,
            maker,
        };
        let order = &acct.orders[&id];
        let lite = wire::trade_lite(order, &exec, time);
        let update = wire::order_update(order, "TRADE", Some(&exec), time);
        let balance = wire::account_update(time, "ORDER", &rows, &[position], None);
        acct.push(lite);
        if swap_order_first {
            acct.push(update);
            acct.push(balance);
        } else {
            acct.push(balance);
            acct.push(update);
        }
    }

    /// Maintenance margin and margin balance (stable-coin wallets plus unrealized P&L) of an account.
    pub fn margin(&self, account: usize) -> (Decimal, Decimal) {
        let acct = &self.accounts[account];
        let mut maint = Decimal::ZERO;
        let mut balance: Decimal = acct
            .wallets
            .iter()
            .filter(|(a, _)| is_stable(a))
            .map(|(_, w)| *w)
            .sum();
        for ((symbol, _), p) in &acct.positions {
            if p.amount.is_zero() {
                continue;
            }
            let mark = self.mark(symbol).unwrap_or(p.entry);
            maint += margin::maint_margin(symbol, p.amount * mark);
            balance += round8(p.amount * (mark - p.entry));
        }
        (maint, balance)
    }

    /// Sends a `MARGIN_CALL` when the margin ratio reaches the threshold (once until it falls back).
    fn check_margin(&mut self, account: usize, time: i64) {
        let (maint, balance) = self.margin(account);
        let over = !maint.is_zero()
            && (balance <= Decimal::ZERO || maint / balance >= self.config.margin_call_ratio);
        let acct = &self.accounts[account];
        if !over || acct.margin_called {
            if !over && acct.margin_called {
                self.accounts[account].margin_called = false;
            }
            return;
        }
        let rows: Vec<wire::MarginCallRow<'_>> = acct
            .positions
            .iter()
            .filter(|(_, p)| !p.amount.is_zero())
            .map(|((symbol, leg), p)| {
                let mark = self.mark(symbol).unwrap_or(p.entry);
                wire::MarginCallRow {
                    symbol,
                    leg: *leg,
                    amount: p.amount,
                    mark,
                    unrealized: round8(p.amount * (mark - p.entry)),
                    maint: margin::maint_margin(symbol, p.amount * mark),
                }
            })
            .collect();
        let cw = acct.wallets.get("USDT").copied().unwrap_or_default();
        let event = wire::margin_call(cw, &rows, time);
        let acct = &mut self.accounts[account];
        acct.margin_called = true;
        acct.push(event);
    }

    /// The ground truth of every account, as `/_sim/state` serves it.
    pub fn state(&self) -> Value {
        let text = |d: &Decimal| json!(d.normalize().to_string());
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "account": a.spec.name,
                    "hedge": a.spec.hedge,
                    "wallets": a.wallets.iter().map(|(k, v)| (k.clone(), text(v))).collect::<serde_json::Map<_, _>>(),
                    "positions": a.positions.iter().map(|((s, l), p)| json!({
                        "symbol": s, "side": l.wire(), "qty": text(&p.amount),
                        "entry_price": text(&p.entry), "cum_realized": text(&p.cum_realized)})).collect::<Vec<_>>(),
                    "leverage": a.leverage.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "open_orders": a.open_orders(None).count(),
                    "realized_gross": text(&a.realized),
                    "commission": a.commission.iter().map(|(k, v)| (k.clone(), text(v))).collect::<serde_json::Map<_, _>>(),
                    "funding": text(&a.funding),
                    "trades": a.trades.iter().map(|t| json!({
                        "id": t.id, "orderId": t.order_id, "symbol": t.symbol, "side": t.side.wire(),
                        "positionSide": t.leg.wire(), "qty": t.qty.to_string(), "price": t.price.to_string(),
                        "realizedPnl": t.realized.to_string(), "commission": t.commission.to_string(),
                        "commissionAsset": t.commission_asset, "maker": t.maker, "time": t.time})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "accounts": accounts })
    }
}

/// Applies a trade to a position the way Binance reports it: adding moves the entry to the
/// quantity-weighted average (published to 8 decimals); reducing realizes against the entry; a one-way
/// order through zero closes and reopens at the trade price. Returns `rp`.
fn trade_position(pos: &mut PositionState, side: Side, qty: Decimal, price: Decimal) -> Decimal {
    let signed = match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    };
    let same_direction =
        pos.amount.is_zero() || (pos.amount > Decimal::ZERO) == (signed > Decimal::ZERO);
    if same_direction {
        let open_value = pos.entry * pos.amount.abs() + price * qty;
        pos.amount += signed;
        pos.entry = round8(open_value / pos.amount.abs());
        return Decimal::ZERO;
    }
    let closing = qty.min(pos.amount.abs());
    let per_unit = if pos.amount > Decimal::ZERO {
        price - pos.entry
    } else {
        pos.entry - price
    };
    let realized = round8(per_unit * closing);
    pos.cum_realized += realized;
    let rest = qty - closing;
    pos.amount += if signed > Decimal::ZERO {
        closing
    } else {
        -closing
    };
    if pos.amount.is_zero() {
        pos.entry = Decimal::ZERO;
        if rest > Decimal::ZERO {
            pos.amount = if signed > Decimal::ZERO { rest } else { -rest };
            pos.entry = price;
        }
    }
    realized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn binance_semantics_for_open_add_reduce_and_flip() {
        let mut p = PositionState::default();
        assert_eq!(
            trade_position(&mut p, Side::Buy, d("1"), d("50000")),
            d("0")
        );
        assert_eq!(
            trade_position(&mut p, Side::Buy, d("1"), d("52000")),
            d("0")
        );
        assert_eq!((p.amount, p.entry), (d("2"), d("51000")));
        assert_eq!(
            trade_position(&mut p, Side::Sell, d("3"), d("53000")),
            d("4000")
        );
        assert_eq!(
            (p.amount, p.entry, p.cum_realized),
            (d("-1"), d("53000"), d("4000"))
        );
        assert_eq!(
            trade_position(&mut p, Side::Buy, d("1"), d("52000")),
            d("1000")
        );
        assert_eq!((p.amount, p.entry), (d("0"), d("0")));
    }

    #[test]
    fn entry_prices_are_published_to_8_decimals() {
        let mut p = PositionState::default();
        trade_position(&mut p, Side::Buy, d("1"), d("50000"));
        trade_position(&mut p, Side::Buy, d("2"), d("50000.1"));
        assert_eq!(p.entry, d("50000.06666667"));
    }

    #[test]
    fn hedge_orders_need_a_leg_and_cannot_over_reduce() {
        let accounts = vec![AccountSpec {
            name: "h".into(),
            hedge: true,
            fees_in_bnb: false,
        }];
        let mut x = Exchange::new(ExchangeConfig::default(), accounts);
        x.set_mark("BTCUSDT", d("50000"), 1);
        assert_eq!(
            x.market_order(0, "BTCUSDT", Side::Buy, d("1"), None, 2),
            Err(Reject::PositionSideMismatch)
        );
        assert!(
            x.market_order(0, "BTCUSDT", Side::Buy, d("1"), Some(Leg::Long), 2)
                .is_ok()
        );
        assert_eq!(
            x.market_order(0, "BTCUSDT", Side::Sell, d("2"), Some(Leg::Long), 3),
            Err(Reject::ReduceOnlyRejected)
        );
    }

    #[test]
    fn an_order_emits_new_then_per_fill_lite_order_and_account_updates() {
        let accounts = vec![AccountSpec {
            name: "a".into(),
            hedge: false,
            fees_in_bnb: false,
        }];
        let mut x = Exchange::new(ExchangeConfig::default(), accounts);
        x.set_mark("BTCUSDT", d("50000"), 1);
        x.transfer(0, "USDT", d("1000"), 1);
        x.market_order(0, "BTCUSDT", Side::Buy, d("0.01"), None, 2)
            .unwrap();
        let events: Vec<Value> = x
            .take_events(0)
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e["e"].as_str().unwrap()).collect();
        assert_eq!(names[0], "ACCOUNT_UPDATE");
        assert_eq!(names[1], "ORDER_TRADE_UPDATE");
        assert_eq!(events[1]["o"]["X"], "NEW");
        let fills = names.iter().filter(|n| **n == "TRADE_LITE").count();
        assert!((1..=3).contains(&fills));
        assert_eq!(names.len(), 2 + 3 * fills);
        let last_order = events
            .iter()
            .rev()
            .find(|e| e["e"] == "ORDER_TRADE_UPDATE")
            .unwrap();
        assert_eq!(last_order["o"]["X"], "FILLED");
        assert_eq!(d(last_order["o"]["z"].as_str().unwrap()), d("0.01"));
    }

    fn one(hedge: bool) -> Exchange {
        let accounts = vec![AccountSpec {
            name: "a".into(),
            hedge,
            fees_in_bnb: false,
        }];
        let mut x = Exchange::new(ExchangeConfig::default(), accounts);
        x.set_mark("BTCUSDT", d("50000"), 1);
        x.transfer(0, "USDT", d("10000"), 1);
        x.take_events(0);
        x
    }

    fn kinds(x: &mut Exchange) -> Vec<String> {
        x.take_events(0)
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(e).unwrap();
                match v["e"].as_str().unwrap() {
                    "ORDER_TRADE_UPDATE" => format!(
                        "{}/{}",
                        v["o"]["x"].as_str().unwrap(),
                        v["o"]["X"].as_str().unwrap()
                    ),
                    other => other.to_owned(),
                }
            })
            .filter(|k| k != "TRADE_LITE" && k != "ACCOUNT_UPDATE")
            .collect()
    }

    #[test]
    fn a_resting_limit_fills_as_maker_when_the_mark_crosses_it_and_can_be_canceled() {
        let mut x = one(false);
        let id = x
            .place_order(
                0,
                OrderRequest::limit("BTCUSDT", Side::Buy, d("0.01"), d("49900"), None),
                2,
            )
            .unwrap();
        assert_eq!(kinds(&mut x), ["NEW/NEW"]);
        x.set_mark("BTCUSDT", d("49950"), 3);
        assert!(kinds(&mut x).is_empty(), "not crossed yet");
        // Crossing again until it is filled: every fill at the limit price, as maker.
        let mut t = 4;
        while x.accounts()[0].orders[&id].status.is_open() {
            x.set_mark("BTCUSDT", d("49890"), t);
            t += 1;
        }
        let trades = &x.accounts()[0].trades;
        assert!(trades.iter().all(|t| t.maker && t.price == d("49900")));
        assert_eq!(trades.iter().map(|t| t.qty).sum::<Decimal>(), d("0.01"));
        assert_eq!(
            trades[0].commission,
            round8(trades[0].qty * d("49900") * d("0.0002"))
        );
        let id = x
            .place_order(
                0,
                OrderRequest::limit("BTCUSDT", Side::Sell, d("0.01"), d("60000"), None),
                t,
            )
            .unwrap();
        kinds(&mut x);
        assert_eq!(
            x.cancel_order(0, "BTCUSDT", Some(id), None, t)
                .unwrap()
                .status,
            OrderStatus::Canceled
        );
        assert_eq!(kinds(&mut x), ["CANCELED/CANCELED"]);
        assert_eq!(
            x.cancel_order(0, "BTCUSDT", Some(id), None, t),
            Err(Reject::OrderNotOpen)
        );
        assert_eq!(
            x.cancel_order(0, "BTCUSDT", Some(7), None, t),
            Err(Reject::UnknownOrder)
        );
    }

    #[test]
    fn ioc_fok_and_post_only_expire_what_they_cannot_do_at_once() {
        let mut x = one(false);
        let mut ioc = OrderRequest::limit("BTCUSDT", Side::Buy, d("0.01"), d("49000"), None);
        ioc.tif = Some(Tif::Ioc);
        x.place_order(0, ioc, 2).unwrap();
        assert_eq!(kinds(&mut x), ["NEW/NEW", "EXPIRED/EXPIRED"]);
        let mut gtx = OrderRequest::limit("BTCUSDT", Side::Buy, d("0.01"), d("51000"), None);
        gtx.tif = Some(Tif::Gtx);
        x.place_order(0, gtx, 3).unwrap();
        assert_eq!(kinds(&mut x), ["NEW/NEW", "EXPIRED/EXPIRED"]);
        assert!(x.accounts()[0].trades.is_empty());
        // A crossing limit fills at once as taker, never above its price.
        x.place_order(
            0,
            OrderRequest::limit("BTCUSDT", Side::Buy, d("0.01"), d("50000.1"), None),
            4,
        )
        .unwrap();
        assert!(
            x.accounts()[0]
                .trades
                .iter()
                .all(|t| !t.maker && t.price <= d("50000.1"))
        );
    }

    #[test]
    fn reduce_only_fills_up_to_the_position_and_expires_the_rest() {
        let mut x = one(false);
        let mut ro = OrderRequest::market("BTCUSDT", Side::Sell, d("0.01"), None);
        ro.reduce_only = true;
        assert_eq!(
            x.place_order(0, ro.clone(), 2),
            Err(Reject::ReduceOnlyRejected)
        );
        x.market_order(0, "BTCUSDT", Side::Buy, d("0.004"), None, 3)
            .unwrap();
        kinds(&mut x);
        ro.qty = d("0.01");
        x.place_order(0, ro, 4).unwrap();
        let k = kinds(&mut x);
        assert_eq!(k.first().map(String::as_str), Some("NEW/NEW"));
        assert_eq!(k.last().map(String::as_str), Some("EXPIRED/EXPIRED"));
        assert_eq!(
            x.accounts()[0].positions[&("BTCUSDT".to_owned(), Leg::Both)].amount,
            d("0")
        );
        let mut hedged = one(true);
        let mut ro = OrderRequest::market("BTCUSDT", Side::Sell, d("0.01"), Some(Leg::Long));
        ro.reduce_only = true;
        assert_eq!(
            hedged.place_order(0, ro, 2),
            Err(Reject::ReduceOnlyInHedgeMode)
        );
    }

    #[test]
    fn leverage_changes_are_announced_and_bounded_by_the_brackets() {
        let mut x = one(false);
        assert_eq!(x.set_leverage(0, "BTCUSDT", 50, 2), Ok(8_000_000));
        assert_eq!(kinds(&mut x), ["ACCOUNT_CONFIG_UPDATE"]);
        assert_eq!(x.accounts()[0].leverage_of("BTCUSDT"), 50);
        assert_eq!(
            x.set_leverage(0, "BTCUSDT", 126, 2),
            Err(Reject::BadLeverage)
        );
        assert_eq!(x.set_leverage(0, "BTCUSDT", 0, 2), Err(Reject::BadLeverage));
        assert_eq!(x.set_hedge_mode(0, false), Err(Reject::SameMode));
        x.market_order(0, "BTCUSDT", Side::Buy, d("0.01"), None, 3)
            .unwrap();
        assert_eq!(x.set_hedge_mode(0, true), Err(Reject::ModeWithPositions));
    }

    #[test]
    fn a_margin_call_goes_out_once_when_the_ratio_crosses_the_threshold() {
        let mut x = one(false);
        // 2 BTC at 50000: notional 100000, maintenance 450 with 10000 in the wallet.
        x.market_order(0, "BTCUSDT", Side::Buy, d("2"), None, 2)
            .unwrap();
        kinds(&mut x);
        x.set_mark("BTCUSDT", d("45500"), 3);
        assert!(kinds(&mut x).is_empty(), "ratio still low");
        x.set_mark("BTCUSDT", d("45200"), 4);
        x.set_mark("BTCUSDT", d("45150"), 5);
        let events = x.take_events(0);
        let calls: Vec<Value> = events
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap())
            .filter(|v| v["e"] == "MARGIN_CALL")
            .collect();
        assert_eq!(calls.len(), 1, "{events:?}");
        assert_eq!(calls[0]["p"][0]["mt"], "CROSSED");
        let (maint, balance) = x.margin(0);
        assert!(maint / balance >= d("0.8"));
    }

    #[test]
    fn funding_falls_at_the_funding_times_and_is_in_the_income_history() {
        let mut x = one(false);
        x.market_order(0, "BTCUSDT", Side::Buy, d("1"), None, 2)
            .unwrap();
        let interval = x.config().funding_interval_ms;
        x.advance(2);
        let first = x.next_funding_time(2);
        x.advance(first - 1);
        assert_eq!(x.accounts()[0].funding, d("0"));
        x.advance(first + 2 * interval);
        let rows: Vec<&Income> = x.accounts()[0]
            .income
            .iter()
            .filter(|r| r.kind == "FUNDING_FEE")
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].time, first);
        assert_eq!(
            rows.iter().map(|r| r.amount).sum::<Decimal>(),
            x.accounts()[0].funding
        );
        assert!(
            x.accounts()[0]
                .income
                .iter()
                .any(|r| r.kind == "COMMISSION" && r.amount < Decimal::ZERO)
        );
    }
}
