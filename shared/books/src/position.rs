//! One position leg per (account, symbol, side): quantity, entry price, realized figures and cycles.

use acctmon_domain::{Asset, PositionSide, Side, Symbol, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::check::{Checked, Figure};
use crate::fixed::Fx;
use crate::risk::is_stable;
use crate::stats::CycleTally;

/// Decimals of a reported average entry price (the books keep the exact cost basis).
pub const ENTRY_DP: u32 = 12;

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
    /// The cycle's result: net realized P&L `= gross − commission + funding`.
    pub fn result(&self) -> Decimal {
        self.realized_gross - self.commission + self.funding
    }
}

/// Closed cycles kept per leg in the books, whose state is written at every checkpoint: the detail of older
/// cycles belongs to the history (the sink), their sums stay in [`Position::cycles_closed`] and the
/// trade statistics.
pub const CYCLES_KEPT: usize = 32;

/// Realized figures, kept exact in fixed point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Totals {
    pub(crate) gross: Fx,
    pub(crate) commission: Fx,
    pub(crate) funding: Fx,
}

/// A cycle as the books keep it; [`Cycle`] is its public view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CycleState {
    id: u32,
    opened_at: Timestamp,
    closed_at: Option<Timestamp>,
    max_qty: Decimal,
    totals: Totals,
}

impl CycleState {
    fn open(id: u32, at: Timestamp) -> Self {
        Self {
            id,
            opened_at: at,
            closed_at: None,
            max_qty: Decimal::ZERO,
            totals: Totals::default(),
        }
    }

    fn view(&self) -> Cycle {
        Cycle {
            id: self.id,
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            max_qty: self.max_qty,
            realized_gross: self.totals.gross.to_decimal(),
            commission: self.totals.commission.to_decimal(),
            funding: self.totals.funding.to_decimal(),
        }
    }
}

/// Quantity and cost basis (`|qty| × entry`): the figure checked against the exchange's `pa` / `ep`.
/// Keeping the cost rather than the average spares a division on every fill that adds to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Holding {
    pub(crate) qty: Decimal,
    pub(crate) cost: Fx,
    /// Decimals of the entry price as published (exchange rows); tolerance of the comparison.
    pub(crate) entry_scale: u32,
    /// Ours: how far the exchange's entry price may be from our exact one (see
    /// [`Position::entry_slack`]); zero for an exchange row.
    #[serde(default)]
    pub(crate) slack: Decimal,
}

impl Holding {
    /// A holding as the exchange reports it: signed quantity and entry price.
    pub(crate) fn from_exchange(qty: Decimal, entry: Decimal) -> Self {
        Self {
            qty,
            cost: if qty.is_zero() {
                Fx::ZERO
            } else {
                Fx::product(entry, qty.abs())
            },
            entry_scale: entry.scale(),
            slack: Decimal::ZERO,
        }
    }

    /// The average entry price (zero when flat).
    pub(crate) fn entry(&self) -> Decimal {
        if self.qty.is_zero() {
            Decimal::ZERO
        } else {
            self.cost.to_decimal() / self.qty.abs()
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
        let tolerance = entry_tolerance(exchange.entry_scale).max(self.slack);
        (self.cost - exchange.cost).abs() <= Fx::product(tolerance, self.qty.abs())
    }
}

/// How much the exchange's entry price may move away from the exact average with each fill that adds
/// to a position: the exchange keeps its entry price rounded to 8 decimals and averages the next fill
/// into that rounded figure, so the difference grows by up to one unit of the 8th decimal per adding
/// fill (less in fact: the older part of the difference shrinks with the weight of the old quantity).
const SLACK_PER_ADD: Decimal = Decimal::from_parts(1, 0, 0, false, 8);

/// Binance publishes entry prices with 5 (older payloads) to 8 decimals and trims trailing zeros, so a
/// value is trusted to one unit of its last published place, and never to less than 1e-8.
pub(crate) fn entry_tolerance(scale: u32) -> Decimal {
    let scale = scale.clamp(5, 8);
    Decimal::new(1, scale)
}

/// What one fill did to a leg, kept for fills whose commission or realized P&L arrives later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FillEffect {
    /// Quantity that closed existing exposure.
    pub(crate) closed: Decimal,
    /// Quantity that opened new exposure.
    pub(crate) opened: Decimal,
    /// Realized gross from our own arithmetic.
    pub(crate) gross: Fx,
    /// The cycle the closing part belongs to.
    pub(crate) closing_cycle: Option<u32>,
    /// The cycle the opening part belongs to.
    pub(crate) opening_cycle: Option<u32>,
    /// The leg's entry slack when the closing part realized against it.
    #[serde(default)]
    pub(crate) slack: Decimal,
}

/// One position leg.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub(crate) symbol: Symbol,
    pub(crate) side: PositionSide,
    pub(crate) margin_asset: Asset,
    pub(crate) qty: Decimal,
    /// `|qty| × entry price`, exact for fills that add to the position.
    pub(crate) cost: Fx,
    /// A bound on how far the exchange's own entry price may be from ours (`cost / |qty|`): zero when
    /// the position opens at one price, reset to the published precision when an exchange figure is
    /// adopted, grown by [`SLACK_PER_ADD`] with every fill that adds to the position.
    #[serde(default)]
    pub(crate) entry_slack: Decimal,
    /// Realized figures over all cycles (and funding booked outside any cycle).
    pub(crate) totals: Totals,
    /// Commission in assets other than the margin asset (e.g. BNB), beside its valuation above.
    pub(crate) commission_native: Vec<(Asset, Decimal)>,
    pub(crate) fills: u64,
    pub(crate) open_cycle: Option<CycleState>,
    /// The newest closed cycles (at most [`CYCLES_KEPT`]), oldest first.
    pub(crate) closed_cycles: Vec<CycleState>,
    /// The closed cycles no longer kept, added up: their results and their realized figures.
    #[serde(default)]
    pub(crate) forgotten: CycleTally,
    #[serde(default)]
    pub(crate) forgotten_totals: Totals,
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
            cost: Fx::ZERO,
            entry_slack: Decimal::ZERO,
            totals: Totals::default(),
            commission_native: Vec::new(),
            fills: 0,
            open_cycle: None,
            closed_cycles: Vec::new(),
            forgotten: CycleTally::default(),
            forgotten_totals: Totals::default(),
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
            slack: self.entry_slack,
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
        self.totals.gross.to_decimal()
    }
    /// Commission valued in the margin asset.
    pub fn commission(&self) -> Decimal {
        self.totals.commission.to_decimal()
    }
    /// Commission charged in assets other than the margin asset (e.g. BNB), in that asset's units;
    /// [`Position::commission`] holds its value in the margin asset.
    pub fn commission_native(&self) -> &[(Asset, Decimal)] {
        &self.commission_native
    }
    /// Funding attributed to this position (negative when paid).
    pub fn funding(&self) -> Decimal {
        self.totals.funding.to_decimal()
    }
    /// Net realized P&L `= gross − commission + funding`.
    pub fn realized_net(&self) -> Decimal {
        (self.totals.gross - self.totals.commission + self.totals.funding).to_decimal()
    }
    /// Number of fills applied.
    pub fn fills(&self) -> u64 {
        self.fills
    }
    /// The newest closed cycles (at most [`CYCLES_KEPT`]), oldest first; older ones are counted in
    /// [`Position::cycles_closed`], the trade statistics and [`Position::forgotten_cycles_gross`].
    pub fn closed_cycles(&self) -> Vec<Cycle> {
        self.closed_cycles.iter().map(CycleState::view).collect()
    }
    /// Number of closed cycles, those no longer kept included.
    pub fn cycles_closed(&self) -> u64 {
        self.forgotten.cycles() + self.closed_cycles.len() as u64
    }
    /// Realized gross of the closed cycles no longer kept.
    pub fn forgotten_cycles_gross(&self) -> Decimal {
        self.forgotten_totals.gross.to_decimal()
    }
    /// The open cycle, if the position is not flat.
    pub fn open_cycle(&self) -> Option<Cycle> {
        self.open_cycle.as_ref().map(CycleState::view)
    }
    /// Unrealized P&L at the latest mark price, `None` without one.
    pub fn unrealized(&self) -> Option<Decimal> {
        self.unrealized
    }

    /// Recomputes unrealized P&L `= qty × (mark − entry)` and returns the change of the cached value.
    pub(crate) fn remark(&mut self, mark: Option<Decimal>) -> Decimal {
        if mark.is_none() && self.unrealized.is_none() {
            return Decimal::ZERO; // nothing to value (no mark yet)
        }
        let old = self.unrealized.unwrap_or_default();
        // qty × (mark − entry) = qty × mark ∓ cost (minus for a long, plus for a short)
        self.unrealized = mark.map(|m| {
            let cost = self.cost.to_decimal();
            if self.qty.is_sign_negative() {
                self.qty * m + cost
            } else {
                self.qty * m - cost
            }
        });
        self.unrealized.unwrap_or_default() - old
    }

    /// Recomputes unrealized P&L and returns its change as counted in the account's equity: positions
    /// margined in a stablecoin count at 1; others are not summed (their value needs their own mark).
    pub(crate) fn revalue(&mut self, mark: Option<Decimal>) -> Decimal {
        let delta = self.remark(mark);
        if !delta.is_zero() && is_stable(&self.margin_asset) {
            delta
        } else {
            Decimal::ZERO
        }
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
            self.entry_slack = if self.qty.is_zero() {
                Decimal::ZERO
            } else {
                self.entry_slack + SLACK_PER_ADD
            };
            let after = self.qty.abs() + qty;
            // The entry price becomes the quantity-weighted average: cost / |qty|.
            self.cost += Fx::product(price, qty);
            self.qty += delta;
            let cycle = self.ensure_cycle(time);
            cycle.max_qty = cycle.max_qty.max(after);
            let id = cycle.id;
            return FillEffect {
                closed: Decimal::ZERO,
                opened: qty,
                gross: Fx::ZERO,
                closing_cycle: None,
                opening_cycle: Some(id),
                slack: Decimal::ZERO,
            };
        }
        // Reducing: the entry price stays, the closed part realizes against it.
        let slack = self.entry_slack;
        let held = self.qty.abs();
        let closed = qty.min(held);
        let long = self.qty.is_sign_positive();
        // The closed part leaves at the average entry: its share of the cost.
        let released = if closed == held {
            self.cost
        } else {
            // Rounded to 16 decimals: below 1e-16 of the quote per partial reduce.
            self.cost.mul_div(closed, held)
        };
        // (price − entry) × closed × direction, with entry × closed = released
        let proceeds = Fx::product(price, closed);
        let gross = if long {
            proceeds - released
        } else {
            released - proceeds
        };
        self.cost -= released;
        let closing_cycle = Some(self.ensure_cycle(time).id);
        self.qty += signed(side, closed);
        let opened = qty - closed;
        let mut opening_cycle = None;
        if self.qty.is_zero() {
            self.cost = Fx::ZERO;
            self.close_cycle(time);
            if opened > Decimal::ZERO {
                // One-way flip through zero: the remainder opens at the fill price.
                self.qty = signed(side, opened);
                self.cost = Fx::product(price, opened);
                self.entry_slack = Decimal::ZERO;
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
            slack,
        }
    }

    fn ensure_cycle(&mut self, time: Timestamp) -> &mut CycleState {
        let next = &mut self.next_cycle_id;
        self.open_cycle.get_or_insert_with(|| {
            let c = CycleState::open(*next, time);
            *next += 1;
            c
        })
    }

    fn close_cycle(&mut self, time: Timestamp) {
        if let Some(mut c) = self.open_cycle.take() {
            c.closed_at = Some(time);
            self.closed_cycles.push(c);
        }
        if self.closed_cycles.len() > CYCLES_KEPT {
            let old = self.closed_cycles.remove(0);
            self.forgotten.add(old.view().result());
            self.forgotten_totals.gross += old.totals.gross;
            self.forgotten_totals.commission += old.totals.commission;
            self.forgotten_totals.funding += old.totals.funding;
        }
    }

    /// The results of every closed cycle, those forgotten included, added up.
    pub(crate) fn cycle_tally(&self) -> CycleTally {
        let mut tally = self.forgotten.clone();
        for c in &self.closed_cycles {
            tally.add(c.view().result());
        }
        tally
    }

    /// The cycle with this id, open or closed.
    pub(crate) fn cycle_mut(&mut self, id: u32) -> Option<&mut CycleState> {
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
        let amount = Fx::from_decimal(amount);
        self.totals.gross += amount;
        if let Some(c) = cycle.and_then(|id| self.cycle_mut(id)) {
            c.totals.gross += amount;
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
        let valued = Fx::from_decimal(valued);
        self.totals.commission += valued;
        if *native.0 != self.margin_asset {
            match self
                .commission_native
                .iter_mut()
                .find(|(a, _)| a == native.0)
            {
                Some((_, amount)) => *amount += native.1,
                None => self.commission_native.push((native.0.clone(), native.1)),
            }
        }
        let (closing_share, opening_share) = if effect.opened.is_zero() {
            (valued, Fx::ZERO)
        } else if effect.closed.is_zero() {
            (Fx::ZERO, valued)
        } else {
            // A flip: split pro rata between the closed and the newly opened quantity.
            let closing = valued.mul_div(effect.closed, effect.closed + effect.opened);
            (closing, valued - closing)
        };
        if !closing_share.is_zero()
            && let Some(c) = effect.closing_cycle.and_then(|id| self.cycle_mut(id))
        {
            c.totals.commission += closing_share;
        }
        if !opening_share.is_zero()
            && let Some(c) = effect.opening_cycle.and_then(|id| self.cycle_mut(id))
        {
            c.totals.commission += opening_share;
        }
    }

    /// Books funding to the position and its open cycle.
    pub(crate) fn book_funding(&mut self, amount: Decimal) {
        let amount = Fx::from_decimal(amount);
        self.totals.funding += amount;
        if let Some(c) = self.open_cycle.as_mut() {
            c.totals.funding += amount;
        }
    }

    /// Sets quantity and entry to the exchange's figures, opening or closing a cycle as needed.
    pub(crate) fn adopt(&mut self, holding: Holding, time: Timestamp) {
        let was_flat = self.qty.is_zero();
        self.qty = holding.qty;
        self.entry_slack = entry_tolerance(holding.entry_scale);
        self.cost = if holding.qty.is_zero() {
            Fx::ZERO
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
