//! Generated trading activity: market moves, transfers, leverage changes and orders (market and limit,
//! partial fills, cancels, reduce-only, reduces, flips, hedge legs) across the configured accounts and
//! symbols, decided by the exchange's seeded generator so a seed replays the same history. Funding is
//! not drawn here: it falls at the exchange's funding times ([`Exchange::advance`]).

use rust_decimal::Decimal;

use crate::exchange::{Exchange, Leg, OrderKind, OrderRequest, Side, Tif};

/// The symbols traded and their starting mark prices.
pub const SYMBOLS: [(&str, i64); 3] = [("BTCUSDT", 50_000), ("ETHUSDT", 3_000), ("SOLUSDT", 150)];

/// Open orders an account keeps at most; beyond, its oldest is canceled.
const MAX_OPEN_ORDERS: usize = 8;

/// Drives an exchange with random activity.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Mark prices in tenths, per symbol of [`SYMBOLS`].
    prices: Vec<i64>,
}

impl Activity {
    /// Sets the starting marks (and BNBUSDT, for fees paid in BNB) and funds every account.
    /// Returns the mark-price payloads emitted.
    pub fn start(x: &mut Exchange, time: i64) -> (Activity, Vec<String>) {
        let prices: Vec<i64> = SYMBOLS.iter().map(|(_, p)| *p * 10).collect();
        let mut marks = vec![x.set_mark("BNBUSDT", Decimal::from(600), time)];
        for (i, (s, _)) in SYMBOLS.iter().enumerate() {
            marks.push(x.set_mark(s, Decimal::new(prices[i], 1), time));
        }
        x.advance(time);
        for a in 0..x.accounts().len() {
            x.transfer(a, "USDT", Decimal::from(100_000), time);
            if x.accounts()[a].spec.fees_in_bnb {
                x.transfer(a, "BNB", Decimal::from(50), time);
            }
        }
        (Activity { prices }, marks)
    }

    /// Moves one symbol's mark by up to ±0.2 %; returns the `markPriceUpdate` payload.
    pub fn move_mark(&mut self, x: &mut Exchange, time: i64) -> String {
        let i = x.rng().below(SYMBOLS.len() as u64) as usize;
        let step = x.rng().below(41) as i64 - 20;
        self.prices[i] = (self.prices[i] + step * self.prices[i] / 10_000).max(10);
        x.set_mark(SYMBOLS[i].0, Decimal::new(self.prices[i], 1), time)
    }

    /// One random action at `time` (fundings due by then are paid first): an order (about 80 %), a
    /// market move (10 %), a cancel (5 %), a transfer (2 %), a leverage change (1 %).
    /// Returns the mark-price payloads emitted; account events go to the exchange.
    pub fn step(&mut self, x: &mut Exchange, time: i64) -> Vec<String> {
        x.advance(time);
        let accounts = x.accounts().len() as u64;
        if accounts == 0 {
            return Vec::new();
        }
        let roll = x.rng().below(100);
        if roll < 10 {
            return vec![self.move_mark(x, time)];
        }
        let a = x.rng().below(accounts) as usize;
        if roll < 15 {
            let open: Vec<(u64, String)> = x.accounts()[a]
                .open_orders(None)
                .map(|o| (o.id, o.symbol.clone()))
                .collect();
            if !open.is_empty() {
                let (id, symbol) = &open[x.rng().below(open.len() as u64) as usize];
                let _ = x.cancel_order(a, symbol, Some(*id), None, time);
            }
            return Vec::new();
        }
        if roll < 17 {
            let amount = Decimal::from(x.rng().below(2_000) as i64 - 500);
            if !amount.is_zero() {
                x.transfer(a, "USDT", amount, time);
            }
            return Vec::new();
        }
        if roll < 18 {
            let symbol = SYMBOLS[x.rng().below(SYMBOLS.len() as u64) as usize].0;
            let leverage = 5 + x.rng().below(21) as u32;
            let _ = x.set_leverage(a, symbol, leverage, time);
            return Vec::new();
        }
        self.order(x, a, time);
        Vec::new()
    }

    /// A random order for account `a`: mostly market, a quarter limit (GTC, some IOC or post-only)
    /// priced around the mark, some reduce-only in one-way mode.
    pub fn order(&mut self, x: &mut Exchange, a: usize, time: i64) {
        self.order_of(x, a, time, true);
    }

    /// A random market order for account `a` (the firehose's only action).
    pub fn market(&mut self, x: &mut Exchange, a: usize, time: i64) {
        self.order_of(x, a, time, false);
    }

    fn order_of(&mut self, x: &mut Exchange, a: usize, time: i64, mixed: bool) {
        let i = x.rng().below(SYMBOLS.len() as u64) as usize;
        let symbol = SYMBOLS[i].0;
        let side = if x.rng().chance(50) {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = Decimal::new(1 + x.rng().below(3_000) as i64, 3);
        let hedge = x.accounts()[a].spec.hedge;
        let leg = if hedge {
            Some(if x.rng().chance(50) {
                Leg::Long
            } else {
                Leg::Short
            })
        } else {
            None
        };
        // In hedge mode a reducing order is capped by what the leg holds beyond other reducing
        // orders (the exchange refuses more).
        let qty = match (leg, side) {
            (Some(l @ Leg::Long), Side::Sell) | (Some(l @ Leg::Short), Side::Buy) => {
                let acct = &x.accounts()[a];
                let held = acct
                    .positions
                    .get(&(symbol.to_owned(), l))
                    .map_or(Decimal::ZERO, |p| p.amount.abs());
                let committed: Decimal = acct
                    .open_orders(Some(symbol))
                    .filter(|o| o.leg == l && o.side == side)
                    .map(|o| o.remaining())
                    .sum();
                qty.min(held - committed)
            }
            _ => qty,
        };
        if qty <= Decimal::ZERO {
            return;
        }
        let mut req = OrderRequest::market(symbol, side, qty, leg);
        req.reduce_only = mixed && !hedge && x.rng().chance(10);
        if mixed && x.rng().chance(25) {
            // A limit up to 0.3 % either side of the mark: some cross at once, most rest.
            let offset = x.rng().below(61) as i64 - 30;
            let mark_tenths = self.prices[i];
            let price = Decimal::new(mark_tenths + offset * mark_tenths / 10_000, 1);
            req.kind = OrderKind::Limit;
            req.price = Some(price.max(Decimal::new(1, 1)));
            req.tif = Some(match x.rng().below(10) {
                0 => Tif::Ioc,
                1 => Tif::Gtx,
                _ => Tif::Gtc,
            });
        }
        // Invalid requests (reduce-only with nothing to reduce) are refused like on Binance.
        let _ = x.place_order(a, req, time);
        let open: Vec<(u64, String)> = x.accounts()[a]
            .open_orders(None)
            .map(|o| (o.id, o.symbol.clone()))
            .collect();
        if open.len() > MAX_OPEN_ORDERS {
            let _ = x.cancel_order(a, &open[0].1, Some(open[0].0), None, time);
        }
    }
}
