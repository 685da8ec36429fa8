//! Generated trading activity: market moves, funding, transfers and orders (partial fills, reduces,
//! flips, hedge legs) across the configured accounts and symbols, decided by the exchange's seeded
//! generator so a seed replays the same history.

use rust_decimal::Decimal;

use crate::exchange::{Exchange, Leg, Side};

/// The symbols traded and their starting mark prices.
pub const SYMBOLS: [(&str, i64); 3] = [("BTCUSDT", 50_000), ("ETHUSDT", 3_000), ("SOLUSDT", 150)];

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
        for a in 0..x.accounts().len() {
            x.transfer(a, "USDT", Decimal::from(100_000), time);
            if x.accounts()[a].spec.fees_in_bnb {
                x.transfer(a, "BNB", Decimal::from(50), time);
            }
        }
        (Activity { prices }, marks)
    }

    /// One random action at `time`: an order (86 %), a market move (10 %), funding (2 %) or a
    /// transfer (2 %). Returns the mark-price payloads emitted; account events go to the exchange.
    pub fn step(&mut self, x: &mut Exchange, time: i64) -> Vec<String> {
        let accounts = x.accounts().len() as u64;
        if accounts == 0 {
            return Vec::new();
        }
        let roll = x.rng().below(100);
        if roll < 10 {
            let i = x.rng().below(SYMBOLS.len() as u64) as usize;
            let step = x.rng().below(41) as i64 - 20;
            self.prices[i] = (self.prices[i] + step * self.prices[i] / 10_000).max(10);
            return vec![x.set_mark(SYMBOLS[i].0, Decimal::new(self.prices[i], 1), time)];
        }
        if roll < 12 {
            let i = x.rng().below(SYMBOLS.len() as u64) as usize;
            let rate = Decimal::new(x.rng().below(21) as i64 - 10, 5);
            x.pay_funding(SYMBOLS[i].0, rate, time);
            return Vec::new();
        }
        if roll < 14 {
            let a = x.rng().below(accounts) as usize;
            let amount = Decimal::from(x.rng().below(2_000) as i64 - 500);
            if !amount.is_zero() {
                x.transfer(a, "USDT", amount, time);
            }
            return Vec::new();
        }
        let a = x.rng().below(accounts) as usize;
        let symbol = SYMBOLS[x.rng().below(SYMBOLS.len() as u64) as usize].0;
        let side = if x.rng().chance(50) {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = Decimal::new(1 + x.rng().below(3_000) as i64, 3);
        let leg = if x.accounts()[a].spec.hedge {
            Some(if x.rng().chance(50) {
                Leg::Long
            } else {
                Leg::Short
            })
        } else {
            None
        };
        // In hedge mode a reducing order is capped by the leg (the exchange refuses more).
        let qty = match (leg, side) {
            (Some(l @ Leg::Long), Side::Sell) | (Some(l @ Leg::Short), Side::Buy) => {
                let held = x.accounts()[a]
                    .positions
                    .get(&(symbol.to_owned(), l))
                    .map_or(Decimal::ZERO, |p| p.amount.abs());
                qty.min(held)
            }
            _ => qty,
        };
        if !qty.is_zero() {
            // The order is valid by construction (mark set, leg matches the mode, reduce capped).
            let _ = x.market_order(a, symbol, side, qty, leg, time);
        }
        Vec::new()
    }
}
