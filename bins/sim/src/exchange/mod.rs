//! The exchange side: accounts, wallets, positions and fills, and the user-data events Binance emits for
//! every change, in Binance's own JSON.
//!
//! This model is written independently of `shared/books` on purpose: the simulator is the check on the
//! books, so it must not share their arithmetic. Figures follow what Binance publishes: entry prices, `rp`,
//! commissions and funding rounded to 8 decimals; `rp` gross of fees; funding in its own
//! `ACCOUNT_UPDATE` (`m = FUNDING_FEE`, with `a.S`).

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::rng::Rng;

/// Decimals Binance publishes for prices, `rp`, commissions and wallets.
const PUBLISHED_DP: u32 = 8;

fn round8(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PUBLISHED_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    fn wire(self) -> &'static str {
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
    fn wire(self) -> &'static str {
        match self {
            Leg::Both => "BOTH",
            Leg::Long => "LONG",
            Leg::Short => "SHORT",
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
    /// Trade time, ms.
    pub time: i64,
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
    /// Every trade, in execution order.
    pub trades: Vec<Trade>,
    /// Σ `rp`.
    pub realized: Decimal,
    /// Commission per asset.
    pub commission: BTreeMap<String, Decimal>,
    /// Σ funding (negative when paid).
    pub funding: Decimal,
    /// User-data events not yet taken, as JSON text in emission order.
    outbox: Vec<String>,
}

/// Why an order was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// No mark price for the symbol yet.
    NoMarkPrice,
    /// A hedge-mode order without a position side, or a one-way order with one.
    PositionSideMismatch,
    /// A reducing hedge order larger than the leg.
    ReduceTooLarge,
    /// Zero or negative quantity.
    BadQuantity,
}

/// Settings of the exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// Taker fee rate (Binance default 0.05 %).
    pub taker_fee: Decimal,
    /// Discount when fees are paid in BNB (Binance: 10 %).
    pub bnb_discount: Decimal,
    /// Seed of every random choice (partial fills, arrival order of events).
    pub seed: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            taker_fee: Decimal::new(5, 4),
            bnb_discount: Decimal::new(1, 1),
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
    next_trade_id: BTreeMap<String, u64>,
    next_order_id: u64,
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

impl Exchange {
    /// An exchange with these accounts (indexed in this order).
    pub fn new(config: ExchangeConfig, accounts: Vec<AccountSpec>) -> Self {
        let rng = Rng::new(config.seed);
        Self {
            config,
            accounts: accounts
                .into_iter()
                .map(|spec| AccountState {
                    spec,
                    wallets: BTreeMap::new(),
                    positions: BTreeMap::new(),
                    trades: Vec::new(),
                    realized: Decimal::ZERO,
                    commission: BTreeMap::new(),
                    funding: Decimal::ZERO,
                    outbox: Vec::new(),
                })
                .collect(),
            marks: BTreeMap::new(),
            next_trade_id: BTreeMap::new(),
            next_order_id: 1_000_000,
            rng,
        }
    }

    /// The seed the exchange was built with.
    pub fn seed(&self) -> u64 {
        self.config.seed
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

    /// Takes the user-data events of an account emitted so far.
    pub fn take_events(&mut self, account: usize) -> Vec<String> {
        std::mem::take(&mut self.accounts[account].outbox)
    }

    /// Sets a mark price and returns the `markPriceUpdate` payload.
    pub fn set_mark(&mut self, symbol: &str, price: Decimal, time: i64) -> String {
        self.marks.insert(symbol.to_owned(), price);
        json!({"e": "markPriceUpdate", "E": time, "s": symbol, "p": price.to_string(),
               "ap": price.to_string(), "i": price.to_string(), "P": price.to_string(),
               "r": "0.00010000", "T": time - time.rem_euclid(28_800_000) + 28_800_000})
        .to_string()
    }

    /// Money moved into (positive) or out of the futures wallet.
    pub fn transfer(&mut self, account: usize, asset: &str, amount: Decimal, time: i64) {
        let acct = &mut self.accounts[account];
        let wb = acct.wallets.entry(asset.to_owned()).or_default();
        *wb += amount;
        let reason = if amount.is_sign_negative() {
            "WITHDRAW"
        } else {
            "DEPOSIT"
        };
        let row = balance_row(asset, *wb, amount);
        acct.outbox
            .push(account_update(time, reason, vec![row], vec![], None));
    }

    /// Pays funding at `rate` to every open position on `symbol`: `−amount × mark × rate`.
    pub fn pay_funding(&mut self, symbol: &str, rate: Decimal, time: i64) {
        let Some(mark) = self.mark(symbol) else {
            return;
        };
        let asset = margin_asset(symbol);
        for acct in &mut self.accounts {
            let legs: Vec<PositionState> = acct
                .positions
                .iter()
                .filter(|((s, _), p)| s == symbol && !p.amount.is_zero())
                .map(|(_, p)| p.clone())
                .collect();
            for p in legs {
                let amount = round8(-p.amount * mark * rate);
                if amount.is_zero() {
                    continue;
                }
                let wb = acct.wallets.entry(asset.to_owned()).or_default();
                *wb += amount;
                acct.funding += amount;
                let row = balance_row(asset, *wb, amount);
                acct.outbox.push(account_update(
                    time,
                    "FUNDING_FEE",
                    vec![row],
                    vec![],
                    Some(symbol),
                ));
            }
        }
    }

    /// A market order, filled at once against the mark price, in 1 to 3 fills sweeping one tick each.
    pub fn market_order(
        &mut self,
        account: usize,
        symbol: &str,
        side: Side,
        qty: Decimal,
        leg: Option<Leg>,
        time: i64,
    ) -> Result<u64, Reject> {
        let mark = self.mark(symbol).ok_or(Reject::NoMarkPrice)?;
        if qty <= Decimal::ZERO {
            return Err(Reject::BadQuantity);
        }
        let hedge = self.accounts[account].spec.hedge;
        let leg = match (hedge, leg) {
            (false, None) => Leg::Both,
            (true, Some(l @ (Leg::Long | Leg::Short))) => l,
            _ => return Err(Reject::PositionSideMismatch),
        };
        if hedge {
            let reducing = matches!(
                (leg, side),
                (Leg::Long, Side::Sell) | (Leg::Short, Side::Buy)
            );
            let held = self.accounts[account]
                .positions
                .get(&(symbol.to_owned(), leg))
                .map_or(Decimal::ZERO, |p| p.amount.abs());
            if reducing && qty > held {
                return Err(Reject::ReduceTooLarge);
            }
        }
        self.next_order_id += 1;
        let order_id = self.next_order_id;
        let client_id = format!("sim-{order_id}");
        let order = OrderRef {
            symbol,
            client_id: &client_id,
            order_id,
            side,
            leg,
            qty,
        };
        self.accounts[account].outbox.push(order_new(&order, time));
        // Split into up to three fills of whole lots (0.001), each a tick further from the mark.
        let lots = (qty * Decimal::from(1000)).trunc();
        let parts = if lots >= Decimal::from(3) {
            1 + self.rng.below(3)
        } else {
            1
        };
        let mut left = qty;
        let mut filled = Decimal::ZERO;
        let mut notional = Decimal::ZERO;
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
            let price = match side {
                Side::Buy => mark + tick,
                Side::Sell => mark - tick,
            };
            filled += part;
            notional += part * price;
            let avg = round8(notional / filled);
            let last = i + 1 == parts;
            self.fill(account, &order, part, price, filled, avg, last, time);
        }
        Ok(order_id)
    }

    #[allow(clippy::too_many_arguments)] // one fill of an order: every figure is its own
    fn fill(
        &mut self,
        account: usize,
        order: &OrderRef<'_>,
        qty: Decimal,
        price: Decimal,
        cumulative: Decimal,
        avg_price: Decimal,
        last: bool,
        time: i64,
    ) {
        let trade_id = {
            let id = self
                .next_trade_id
                .entry(order.symbol.to_owned())
                .or_insert(5_000_000);
            *id += 1;
            *id
        };
        let fee_quote = round8(qty * price * self.config.taker_fee);
        let bnb_mark = self.mark("BNBUSDT");
        let acct = &mut self.accounts[account];
        let asset = margin_asset(order.symbol);
        let (fee, fee_asset) = match (acct.spec.fees_in_bnb, bnb_mark) {
            (true, Some(bnb)) if !bnb.is_zero() => (
                round8(fee_quote * (Decimal::ONE - self.config.bnb_discount) / bnb),
                "BNB",
            ),
            _ => (fee_quote, asset),
        };
        let pos = acct
            .positions
            .entry((order.symbol.to_owned(), order.leg))
            .or_default();
        let realized = trade_position(pos, order.side, qty, price);
        acct.realized += realized;
        *acct.commission.entry(fee_asset.to_owned()).or_default() += fee;
        *acct.wallets.entry(asset.to_owned()).or_default() += realized;
        *acct.wallets.entry(fee_asset.to_owned()).or_default() -= fee;
        let pos = pos.clone();
        acct.trades.push(Trade {
            id: trade_id,
            order_id: order.order_id,
            symbol: order.symbol.to_owned(),
            side: order.side,
            leg: order.leg,
            qty,
            price,
            realized,
            commission: fee,
            commission_asset: fee_asset.to_owned(),
            time,
        });
        let mark = self.marks.get(order.symbol).copied().unwrap_or(price);
        let acct = &mut self.accounts[account];
        let mut rows = vec![balance_row(asset, acct.wallets[asset], Decimal::ZERO)];
        if fee_asset != asset {
            rows.push(balance_row(
                fee_asset,
                acct.wallets[fee_asset],
                Decimal::ZERO,
            ));
        }
        let position = position_row(order.symbol, order.leg, &pos, mark, self.config.taker_fee);
        let lite = trade_lite(order, qty, price, trade_id, time);
        let update = json!({"e": "ORDER_TRADE_UPDATE", "T": time, "E": time, "o": {
            "s": order.symbol, "c": order.client_id, "S": order.side.wire(), "o": "MARKET", "f": "GTC",
            "q": order.qty.to_string(), "p": "0", "ap": avg_price.to_string(), "sp": "0",
            "x": "TRADE", "X": if last { "FILLED" } else { "PARTIALLY_FILLED" }, "i": order.order_id,
            "l": qty.to_string(), "z": cumulative.to_string(), "L": price.to_string(),
            "n": fee.to_string(), "N": fee_asset, "T": time, "t": trade_id, "b": "0", "a": "0",
            "m": false, "R": false, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": order.leg.wire(),
            "cp": false, "rp": realized.to_string(), "pP": false, "si": 0, "ss": 0,
            "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0, "er": "0"}})
        .to_string();
        let balance = account_update(time, "ORDER", rows, vec![position], None);
        acct.outbox.push(lite);
        // Binance does not order different event types: either may come first (PROTOCOL §1.4).
        if self.rng.chance(50) {
            acct.outbox.push(update);
            acct.outbox.push(balance);
        } else {
            acct.outbox.push(balance);
            acct.outbox.push(update);
        }
    }

    /// The ground truth of every account, as `/_sim/state` serves it.
    pub fn state(&self) -> Value {
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "account": a.spec.name,
                    "hedge": a.spec.hedge,
                    "wallets": a.wallets.iter().map(|(k, v)| (k.clone(), json!(v.normalize().to_string()))).collect::<serde_json::Map<_, _>>(),
                    "positions": a.positions.iter().map(|((s, l), p)| json!({
                        "symbol": s, "side": l.wire(), "qty": p.amount.normalize().to_string(),
                        "entry_price": p.entry.normalize().to_string(),
                        "cum_realized": p.cum_realized.normalize().to_string()})).collect::<Vec<_>>(),
                    "realized_gross": a.realized.normalize().to_string(),
                    "commission": a.commission.iter().map(|(k, v)| (k.clone(), json!(v.normalize().to_string()))).collect::<serde_json::Map<_, _>>(),
                    "funding": a.funding.normalize().to_string(),
                    "trades": a.trades.iter().map(|t| json!({
                        "id": t.id, "orderId": t.order_id, "symbol": t.symbol, "side": t.side.wire(),
                        "positionSide": t.leg.wire(), "qty": t.qty.to_string(), "price": t.price.to_string(),
                        "realizedPnl": t.realized.to_string(), "commission": t.commission.to_string(),
                        "commissionAsset": t.commission_asset, "time": t.time})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "accounts": accounts })
    }
}

/// What every event of one order repeats.
struct OrderRef<'a> {
    symbol: &'a str,
    client_id: &'a str,
    order_id: u64,
    side: Side,
    leg: Leg,
    qty: Decimal,
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

fn balance_row(asset: &str, wallet: Decimal, change: Decimal) -> Value {
    json!({"a": asset, "wb": wallet.normalize().to_string(), "cw": wallet.normalize().to_string(),
           "bc": change.normalize().to_string()})
}

fn position_row(symbol: &str, leg: Leg, p: &PositionState, mark: Decimal, fee: Decimal) -> Value {
    let unrealized = round8(p.amount * (mark - p.entry));
    let breakeven = if p.amount > Decimal::ZERO {
        round8(p.entry * (Decimal::ONE + fee))
    } else {
        round8(p.entry * (Decimal::ONE - fee))
    };
    json!({"s": symbol, "pa": p.amount.normalize().to_string(), "ep": p.entry.normalize().to_string(),
           "cr": p.cum_realized.normalize().to_string(), "up": unrealized.to_string(), "mt": "cross",
           "iw": "0", "ps": leg.wire(), "ma": margin_asset(symbol), "bep": breakeven.to_string()})
}

fn account_update(
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

fn order_new(o: &OrderRef<'_>, time: i64) -> String {
    json!({"e": "ORDER_TRADE_UPDATE", "T": time, "E": time, "o": {
        "s": o.symbol, "c": o.client_id, "S": o.side.wire(), "o": "MARKET", "f": "GTC",
        "q": o.qty.to_string(), "p": "0", "ap": "0", "sp": "0", "x": "NEW", "X": "NEW", "i": o.order_id,
        "l": "0", "z": "0", "L": "0", "n": "0", "N": margin_asset(o.symbol), "T": time, "t": 0, "b": "0",
        "a": "0", "m": false, "R": false, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": o.leg.wire(),
        "cp": false, "rp": "0", "pP": false, "si": 0, "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE",
        "gtd": 0, "er": "0"}})
    .to_string()
}

fn trade_lite(o: &OrderRef<'_>, qty: Decimal, price: Decimal, trade_id: u64, time: i64) -> String {
    json!({"e": "TRADE_LITE", "E": time, "T": time, "s": o.symbol, "q": o.qty.to_string(), "p": "0",
           "m": false, "c": o.client_id, "S": o.side.wire(), "L": price.to_string(), "l": qty.to_string(),
           "t": trade_id, "i": o.order_id})
    .to_string()
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
            Err(Reject::ReduceTooLarge)
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
}
