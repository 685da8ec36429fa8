//! One position leg per (account, symbol, side): quantity, entry price, realized figures and cycles.

use acctmon_domain::{Asset, PositionSide, Side, Symbol, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::check::{Checked, Figure};

/// Decimals of a reported average entry price (the books keep the exact cost basis).
pub const ENTRY_DP: u32 = 12;

/// Decimals kept in a cost basis after a partial reduce.
const COST_DP: u32 = 16;

/// `a × b / c` rounded half away from zero to `scale` decimals, in 128-bit integer arithmetic (one
/// integer division instead of a decimal multiply, divide and round); falls back to decimal arithmetic
/// when the intermediate would not fit.
pub(crate) fn mul_div(a: Decimal, b: Decimal, c: Decimal, scale: u32) -> Decimal {
    let fast = || -> Option<Decimal> {
        // a·b/c = (ma·mb / mc) · 10^(sc − sa − sb); scaled to `scale` decimals:
        // result mantissa = ma·mb·10^(scale + sc − sa − sb) / mc
        let shift =
            i64::from(scale) + i64::from(c.scale()) - i64::from(a.scale()) - i64::from(b.scale());
        let mc = c.mantissa();
        if mc == 0 || !(0..=38).contains(&shift) {
            return None;
        }
        let num = a
            .mantissa()
            .checked_mul(b.mantissa())?
            .checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
        let (q, r) = (num / mc, num % mc);
        // Round half away from zero: |2r| ≥ |mc| moves q one step away from zero.
        let q = if r.checked_mul(2)?.abs() >= mc.abs() {
            if (num < 0) != (mc < 0) { q - 1 } else { q + 1 }
        } else {
            q
        };
        Decimal::try_from_i128_with_scale(q, scale).ok()
    };
    fast().unwrap_or_else(|| {
        // Divide first when the product would overflow: less precise, but never a panic.
        let q = a
            .checked_mul(b)
            .and_then(|p| p.checked_div(c))
            .or_else(|| a.checked_div(c).and_then(|q| q.checked_mul(b)))
            .unwrap_or(Decimal::MAX);
        q.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    })
}

/// `qty` with the sign of the side (a negation, cheaper than a decimal multiplication).
fn signed(side: Side, qty: Decimal) -> Decimal {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

/// A position cycle: from flat to flat (or to a flip through zero in one-way mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cycle {
    /// Sequence number of the cycle within its position, from 1.
    pub id: u32,
    /// Time of the fill that opened it.
    pub opened_at: Timestamp,
    /// Time of the fill that closed it (`None` while open).
    pub closed_at: Option<Timestamp>,
    /// Largest absolute quantity held during the cycle.
    pub max_qty: Decimal,
    /// Realized gross P&L of the cycle.
    pub realized_gross: Decimal,
    /// Commission of the cycle, valued in the margin asset.
    pub commission: Decimal,
    /// Funding of the cycle (negative when paid).
    pub funding: Decimal,
}

impl Cycle {
    fn open(id: u32, at: Timestamp) -> Self {
        Self {
            id,
            opened_at: at,
            closed_at: None,
            max_qty: Decimal::ZERO,
            realized_gross: Decimal::ZERO,
            commission: Decimal::ZERO,
            funding: Decimal::ZERO,
        }
    }

    /// The cycle's result: net realized P&L `= gross − commission + funding`.
    pub fn result(&self) -> Decimal {
        self.realized_gross - self.commission + self.funding
    }
}

/// Quantity and cost basis (`|qty| × entry`): the figure checked against the exchange's `pa` / `ep`.
/// Keeping the cost rather than the average spares a division on every fill that adds to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holding {
    pub(crate) qty: Decimal,
    pub(crate) cost: Decimal,
    /// Decimals of the entry price as published (exchange rows); tolerance of the comparison.
    pub(crate) entry_scale: u32,
}

impl Holding {
    /// A holding as the exchange reports it: signed quantity and entry price.
    pub(crate) fn from_exchange(qty: Decimal, entry: Decimal) -> Self {
        Self {
            qty,
            cost: if qty.is_zero() {
                Decimal::ZERO
            } else {
                entry * qty.abs()
            },
            entry_scale: entry.scale(),
        }
    }

    /// The average entry price (zero when flat).
    pub(crate) fn entry(&self) -> Decimal {
        if self.qty.is_zero() {
            Decimal::ZERO
        } else {
            self.cost / self.qty.abs()
        }
    }
}

impl Figure for Holding {
    fn agrees(&self, exchange: &Self) -> bool {
        if self.qty != exchange.qty {
            return false;
        }
        if self.qty.is_zero() {
            return true;
        }
        // |entry − ep| ≤ tol  ⇔  |cost − ep·|q|| ≤ tol·|q|
        (self.cost - exchange.cost).abs() <= entry_tolerance(exchange.entry_scale) * self.qty.abs()
    }
}

/// Binance publishes entry prices with 5 (older payloads) to 8 decimals and trims trailing zeros, so a
/// value is trusted to one unit of its last published place, and never to less than 1e-8.
fn entry_tolerance(scale: u32) -> Decimal {
    let scale = scale.clamp(5, 8);
    Decimal::new(1, scale)
}

/// What one fill did to a leg, kept for fills whose commission or realized P&L arrives later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FillEffect {
    /// Quantity that closed existing exposure.
    pub(crate) closed: Decimal,
    /// Quantity that opened new exposure.
    pub(crate) opened: Decimal,
    /// Realized gross from our own arithmetic.
    pub(crate) gross: Decimal,
    /// The cycle the closing part belongs to.
    pub(crate) closing_cycle: Option<u32>,
    /// The cycle the opening part belongs to.
    pub(crate) opening_cycle: Option<u32>,
}

/// One position leg.
#[derive(Debug, Clone)]
pub struct Position {
    pub(crate) symbol: Symbol,
    pub(crate) side: PositionSide,
    pub(crate) margin_asset: Asset,
    pub(crate) qty: Decimal,
    /// `|qty| × entry price`, exact for fills that add to the position.
    pub(crate) cost: Decimal,
    pub(crate) realized_gross: Decimal,
    pub(crate) commission: Decimal,
    pub(crate) funding: Decimal,
    /// Commission in the asset it was charged in (e.g. BNB), beside its valuation above.
    pub(crate) commission_native: Vec<(Asset, Decimal)>,
    pub(crate) fills: u64,
    pub(crate) open_cycle: Option<Cycle>,
    pub(crate) closed_cycles: Vec<Cycle>,
    pub(crate) next_cycle_id: u32,
    pub(crate) last_fill_time: Option<Timestamp>,
    pub(crate) check: Checked<Holding>,
    /// Cached unrealized P&L at the last mark (`None` without a mark).
    pub(crate) unrealized: Option<Decimal>,
}

impl Position {
    pub(crate) fn new(symbol: Symbol, side: PositionSide, margin_asset: Asset) -> Self {
        Self {
            symbol,
            side,
            margin_asset,
            qty: Decimal::ZERO,
            cost: Decimal::ZERO,
            realized_gross: Decimal::ZERO,
            commission: Decimal::ZERO,
            funding: Decimal::ZERO,
            commission_native: Vec::new(),
            fills: 0,
            open_cycle: None,
            closed_cycles: Vec::new(),
            next_cycle_id: 1,
            last_fill_time: None,
            check: Checked::default(),
            unrealized: None,
        }
    }

    pub(crate) fn holding(&self) -> Holding {
        Holding {
            qty: self.qty,
            cost: self.cost,
            entry_scale: 28,
        }
    }

    /// Symbol.
    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }
    /// Position side.
    pub fn side(&self) -> PositionSide {
        self.side
    }
    /// Margin asset the position's P&L is counted in.
    pub fn margin_asset(&self) -> &Asset {
        &self.margin_asset
    }
    /// Signed quantity (negative for a short, like Binance's `pa`).
    pub fn qty(&self) -> Decimal {
        self.qty
    }
    /// Average entry price (zero when flat), to [`ENTRY_DP`] decimals.
    pub fn entry_price(&self) -> Decimal {
        self.holding().entry().round_dp(ENTRY_DP)
    }
    /// Realized gross P&L (sum of the fills' `rp`).
    pub fn realized_gross(&self) -> Decimal {
        self.realized_gross
    }
    /// Commission valued in the margin asset.
    pub fn commission(&self) -> Decimal {
        self.commission
    }
    /// Commission per asset it was charged in.
    pub fn commission_native(&self) -> &[(Asset, Decimal)] {
        &self.commission_native
    }
    /// Funding attributed to this position (negative when paid).
    pub fn funding(&self) -> Decimal {
        self.funding
    }
    /// Net realized P&L `= gross − commission + funding`.
    pub fn realized_net(&self) -> Decimal {
        self.realized_gross - self.commission + self.funding
    }
    /// Number of fills applied.
    pub fn fills(&self) -> u64 {
        self.fills
    }
    /// Closed cycles, oldest first.
    pub fn closed_cycles(&self) -> &[Cycle] {
        &self.closed_cycles
    }
    /// The open cycle, if the position is not flat.
    pub fn open_cycle(&self) -> Option<&Cycle> {
        self.open_cycle.as_ref()
    }
    /// Unrealized P&L at the latest mark price, `None` without one.
    pub fn unrealized(&self) -> Option<Decimal> {
        self.unrealized
    }

    /// Recomputes unrealized P&L `= qty × (mark − entry)` and returns the change of the cached value.
    pub(crate) fn remark(&mut self, mark: Option<Decimal>) -> Decimal {
        let old = self.unrealized.unwrap_or_default();
        // qty × (mark − entry) = qty × mark ∓ cost (minus for a long, plus for a short)
        self.unrealized = mark.map(|m| {
            if self.qty.is_sign_negative() {
                self.qty * m + self.cost
            } else {
                self.qty * m - self.cost
            }
        });
        self.unrealized.unwrap_or_default() - old
    }

    /// Applies the quantity and price of a fill (no fees, no wallet). `side` is the order side.
    pub(crate) fn apply_trade(
        &mut self,
        side: Side,
        qty: Decimal,
        price: Decimal,
        time: Timestamp,
    ) -> FillEffect {
        self.fills += 1;
        self.last_fill_time = Some(time);
        let delta = signed(side, qty);
        let increasing =
            self.qty.is_zero() || self.qty.is_sign_positive() == delta.is_sign_positive();
        if increasing {
            let after = self.qty.abs() + qty;
            // The entry price becomes the quantity-weighted average: cost / |qty|.
            self.cost += price * qty;
            self.qty += delta;
            let cycle = self.ensure_cycle(time);
            cycle.max_qty = cycle.max_qty.max(after);
            let id = cycle.id;
            return FillEffect {
                closed: Decimal::ZERO,
                opened: qty,
                gross: Decimal::ZERO,
                closing_cycle: None,
                opening_cycle: Some(id),
            };
        }
        // Reducing: the entry price stays, the closed part realizes against it.
        let held = self.qty.abs();
        let closed = qty.min(held);
        let direction = if self.qty.is_sign_positive() {
            Decimal::ONE
        } else {
            Decimal::NEGATIVE_ONE
        };
        // The closed part leaves at the average entry: its share of the cost.
        let released = if closed == held {
            self.cost
        } else {
            // Kept to COST_DP decimals so that the cost does not grow to 28 digits and slow every
            // later operation; the error is below 1e-16 of the quote per reduce.
            mul_div(self.cost, closed, held, COST_DP)
        };
        let gross = (price * closed - released) * direction;
        self.cost -= released;
        let closing_cycle = Some(self.ensure_cycle(time).id);
        self.qty += signed(side, closed);
        let opened = qty - closed;
        let mut opening_cycle = None;
        if self.qty.is_zero() {
            self.cost = Decimal::ZERO;
            self.close_cycle(time);
            if opened > Decimal::ZERO {
                // One-way flip through zero: the remainder opens at the fill price.
                self.qty = signed(side, opened);
                self.cost = price * opened;
                let cycle = self.ensure_cycle(time);
                cycle.max_qty = opened;
                opening_cycle = Some(cycle.id);
            }
        }
        FillEffect {
            closed,
            opened,
            gross,
            closing_cycle,
            opening_cycle,
        }
    }

    fn ensure_cycle(&mut self, time: Timestamp) -> &mut Cycle {
        let next = &mut self.next_cycle_id;
        self.open_cycle.get_or_insert_with(|| {
            let c = Cycle::open(*next, time);
            *next += 1;
            c
        })
    }

    fn close_cycle(&mut self, time: Timestamp) {
        if let Some(mut c) = self.open_cycle.take() {
            c.closed_at = Some(time);
            self.closed_cycles.push(c);
        }
    }

    /// The cycle with this id, open or closed.
    pub(crate) fn cycle_mut(&mut self, id: u32) -> Option<&mut Cycle> {
        if let Some(c) = self.open_cycle.as_mut().filter(|c| c.id == id) {
            return Some(c);
        }
        self.closed_cycles
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &mut self.closed_cycles[i])
    }

    /// Books realized gross to the position and to a cycle.
    pub(crate) fn book_gross(&mut self, amount: Decimal, cycle: Option<u32>) {
        if amount.is_zero() {
            return; // an opening fill realizes nothing
        }
        self.realized_gross += amount;
        if let Some(c) = cycle.and_then(|id| self.cycle_mut(id)) {
            c.realized_gross += amount;
        }
    }

    /// Books a commission (valued in the margin asset) split between the closing and the opening cycle
    /// in proportion to the quantities.
    pub(crate) fn book_commission(
        &mut self,
        valued: Decimal,
        native: (&Asset, Decimal),
        effect: &FillEffect,
    ) {
        self.commission += valued;
        match self
            .commission_native
            .iter_mut()
            .find(|(a, _)| a == native.0)
        {
            Some((_, amount)) => *amount += native.1,
            None => self.commission_native.push((native.0.clone(), native.1)),
        }
        let (closing_share, opening_share) = if effect.opened.is_zero() {
            (valued, Decimal::ZERO)
        } else if effect.closed.is_zero() {
            (Decimal::ZERO, valued)
        } else {
            // A flip: split pro rata between the closed and the newly opened quantity.
            let closing = valued * effect.closed / (effect.closed + effect.opened);
            (closing, valued - closing)
        };
        if !closing_share.is_zero()
            && let Some(c) = effect.closing_cycle.and_then(|id| self.cycle_mut(id))
        {
            c.commission += closing_share;
        }
        if !opening_share.is_zero()
            && let Some(c) = effect.opening_cycle.and_then(|id| self.cycle_mut(id))
        {
            c.commission += opening_share;
        }
    }

    /// Books funding to the position and its open cycle.
    pub(crate) fn book_funding(&mut self, amount: Decimal) {
        self.funding += amount;
        if let Some(c) = self.open_cycle.as_mut() {
            c.funding += amount;
        }
    }

    /// Sets quantity and entry to the exchange's figures, opening or closing a cycle as needed.
    pub(crate) fn adopt(&mut self, holding: Holding, time: Timestamp) {
        let was_flat = self.qty.is_zero();
        self.qty = holding.qty;
        self.cost = if holding.qty.is_zero() {
            Decimal::ZERO
        } else {
            holding.cost
        };
        if self.qty.is_zero() && !was_flat {
            self.close_cycle(time);
        } else if !self.qty.is_zero() {
            let q = self.qty.abs();
            let c = self.ensure_cycle(time);
            c.max_qty = c.max_qty.max(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn mul_div_matches_decimal_arithmetic() {
        let cases = [
            ("250000.123", "0.003", "5.001", 16),
            ("1", "1", "3", 16),
            ("2", "1", "3", 16),
            ("-2", "1", "3", 16),
            ("100", "0.5", "2", 16),
            ("123456789.123456789", "7.777", "9.999", 16),
            ("0.5", "1", "1", 0),
            ("-0.5", "1", "1", 0),
            ("7922816251426433759354.3950335", "2", "3", 16),
        ];
        for (a, b, c, scale) in cases {
            let (a, b, c) = (d(a), d(b), d(c));
            let want = (a * b / c).round_dp_with_strategy(
                scale,
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            );
            assert_eq!(mul_div(a, b, c, scale), want, "{a} × {b} / {c}");
        }
    }
}
