//! The books of one account: its position legs, wallets, money movements and performance.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use acctmon_domain::{
    Account, Asset, BalanceUpdate, ConfigChange, ConfigUpdate, Correction, CorrectionTarget, Fill,
    FillSource, Funding, PositionSide, PositionUpdate, Snapshot, Symbol, Timestamp, TradeId,
    Transfer,
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::check::{Checked, Figure, Verdict};
use crate::fixed::Fx;
use crate::position::{FillEffect, Holding, Position};
use crate::risk::{is_stable, maint_margin};
use crate::seen::{NameHash, SeenIds};
use crate::stats::Performance;
use crate::{BooksConfig, Discrepancy, DiscrepancyKind, Market, Outcome};

/// A wallet balance as checked against the exchange's `wb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cash(pub(crate) Decimal);

/// Binance publishes wallet balances with 8 decimals.
const CASH_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 8);

impl Figure for Cash {
    fn agrees(&self, exchange: &Self) -> bool {
        (self.0 - exchange.0).abs() <= CASH_TOLERANCE
    }
}

/// Whether our realized gross for a fill agrees with the exchange's `rp`: to one unit of the published
/// place (at least 1e-8), plus the effect on the closed quantity of the exchange's entry price, which
/// may differ from ours by the leg's entry slack (at least 1e-8).
fn realized_agrees(ours: Fx, exchange: Decimal, closed: Decimal, slack: Decimal) -> bool {
    if ours.is_zero() && exchange.is_zero() {
        return true; // an opening fill
    }
    if (ours - Fx::from_decimal(exchange)).abs() <= Fx::from_decimal(CASH_TOLERANCE) {
        return true;
    }
    let diff = (ours.to_decimal() - exchange).abs();
    let unit = Decimal::new(1, exchange.scale().max(8));
    let tolerance = unit + closed.abs() * slack.max(Decimal::new(1, 8));
    diff <= tolerance
}

/// Fills per symbol remembered while waiting for the report that completes them.
const MAX_INCOMPLETE: usize = 4096;

/// One wallet of an account.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Wallet {
    /// `None` until the exchange reports it once (the books cannot know a starting balance).
    pub(crate) balance: Option<Decimal>,
    pub(crate) check: Checked<Cash>,
}

/// A fill applied without its commission or realized P&L (a `TRADE_LITE`), waiting for the full report.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Incomplete {
    side: PositionSide,
    effect: FillEffect,
    booked_gross: Decimal,
    /// The part of `booked_gross` the wallet was moved by.
    wallet_gross: Decimal,
    has_realized: bool,
    has_commission: bool,
}

/// Fills of one symbol of one account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SymbolBook {
    seen: SeenIds,
    /// Legs indexed BOTH, LONG, SHORT.
    pub(crate) legs: [Option<Position>; 3],
    /// Fills applied without commission or `rp`, by trade id; the oldest are forgotten past
    /// [`MAX_INCOMPLETE`] (a full report that never came will not come).
    incomplete: BTreeMap<TradeId, Incomplete>,
}

fn leg_index(side: PositionSide) -> usize {
    match side {
        PositionSide::Both => 0,
        PositionSide::Long => 1,
        PositionSide::Short => 2,
    }
}

impl SymbolBook {
    fn new(capacity: usize) -> Self {
        Self {
            seen: SeenIds::new(capacity),
            legs: [None, None, None],
            incomplete: BTreeMap::new(),
        }
    }

    fn leg(&mut self, symbol: &Symbol, side: PositionSide, margin: &Asset) -> &mut Position {
        self.legs[leg_index(side)]
            .get_or_insert_with(|| Position::new(symbol.clone(), side, margin.clone()))
    }
}

/// A money movement already applied, so that a repeat is not. Ordered by time first: past
/// [`MONEY_SEEN`] movements the oldest is forgotten.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
struct MoneyKey {
    time: Timestamp,
    funding: bool,
    asset: Asset,
    /// The symbol a funding payment is for: two symbols may pay the same amount at one funding time.
    #[serde(default)]
    symbol: Option<Symbol>,
    id: Option<u64>,
    amount: Decimal,
}

/// Money movements remembered per account to apply each once (funding three times a day on twenty
/// symbols: four days), about 30 kB of the persisted state at most. Repeats are recent: ingest
/// publishes a backfilled movement only when nothing published matches it.
const MONEY_SEEN: usize = 256;

/// The books of one account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct AccountBook {
    pub(crate) account: Account,
    /// Latest time of an event of this account (its own clock: accounts of one caller may be
    /// delivered at different paces, e.g. one of them catching up after a gap).
    #[serde(default)]
    pub(crate) last_time: Timestamp,
    pub(crate) hedge: Option<bool>,
    pub(crate) symbols: HashMap<Symbol, SymbolBook, NameHash>,
    pub(crate) wallets: BTreeMap<Asset, Wallet>,
    held: Vec<Fill>,
    money_seen: BTreeSet<MoneyKey>,
    pub(crate) perf: Performance,
    /// Sum of the legs' cached unrealized P&L (stable margin assets, valued at 1).
    unrealized_sum: Decimal,
    /// Realized P&L of fills known only from a notice (TRADE_LITE): in the positions, not yet in
    /// the wallet until the full report states `rp`; counted in equity meanwhile.
    realized_in_flight: Decimal,
    pub(crate) funding_unattributed: BTreeMap<Asset, Decimal>,
    pub(crate) transfers: BTreeMap<Asset, Decimal>,
    pub(crate) other_income: BTreeMap<Asset, Decimal>,
    pub(crate) leverage: BTreeMap<Symbol, u32>,
    pub(crate) multi_assets: Option<bool>,
    pub(crate) margin_calls: u64,
    has_history: bool,
    /// Non-stable assets (BNB …) already counted in equity at a mark price.
    valued: std::collections::BTreeSet<Asset>,
}

/// Shared read-only context for one event.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a BooksConfig,
    pub(crate) market: &'a Market,
    pub(crate) out: &'a mut Vec<Discrepancy>,
}

impl AccountBook {
    pub(crate) fn new(account: Account) -> Self {
        Self {
            account,
            last_time: Timestamp::default(),
            hedge: None,
            symbols: HashMap::default(),
            wallets: BTreeMap::new(),
            held: Vec::new(),
            money_seen: BTreeSet::new(),
            perf: Performance::default(),
            unrealized_sum: Decimal::ZERO,
            realized_in_flight: Decimal::ZERO,
            funding_unattributed: BTreeMap::new(),
            transfers: BTreeMap::new(),
            other_income: BTreeMap::new(),
            leverage: BTreeMap::new(),
            multi_assets: None,
            margin_calls: 0,
            has_history: false,
            valued: std::collections::BTreeSet::new(),
        }
    }

    fn symbol_book(&mut self, symbol: &Symbol, capacity: usize) -> &mut SymbolBook {
        if !self.symbols.contains_key(symbol.as_str()) {
            self.symbols
                .insert(symbol.clone(), SymbolBook::new(capacity));
        }
        self.symbols
            .get_mut(symbol.as_str())
            .expect("symbol book inserted above")
    }

    /// Equity (margin balance) valued in the quote: wallets plus unrealized P&L. `None` until a wallet
    /// balance is known. A non-stable wallet (BNB) counts once it has been valued at a mark price.
    pub(crate) fn equity(&self, market: &Market) -> Option<Decimal> {
        let mut total = self.unrealized_sum + self.realized_in_flight;
        let mut known = false;
        for (asset, w) in &self.wallets {
            if let Some(b) = w.balance {
                known = true;
                if (is_stable(asset) || self.valued.contains(asset))
                    && let Some(v) = market.value(asset, b)
                {
                    total += v;
                }
            }
        }
        known.then_some(total)
    }

    /// Counts wallets of non-stable assets that can now be valued. Their first valuation is capital
    /// coming into view, not profit, so performance treats it like a transfer in. Returns whether any
    /// asset was added.
    pub(crate) fn value_new_assets(&mut self, market: &Market) -> bool {
        let mut added = false;
        for (asset, w) in &self.wallets {
            if let Some(b) = w.balance
                && !is_stable(asset)
                && !self.valued.contains(asset)
                && let Some(v) = market.value(asset, b)
            {
                self.valued.insert(asset.clone());
                self.perf.transfer(v);
                added = true;
            }
        }
        added
    }

    /// Unrealized P&L over every leg with a mark, valued in the quote.
    pub(crate) fn unrealized(&self) -> Decimal {
        self.unrealized_sum
    }

    /// Maintenance margin over every open leg with a mark and brackets.
    pub(crate) fn maint_margin(&self, market: &Market) -> Option<Decimal> {
        let mut total = None;
        for (symbol, sb) in &self.symbols {
            let (Some(mark), Some(brackets)) = (market.mark(symbol), market.brackets.get(symbol))
            else {
                continue;
            };
            for pos in sb.legs.iter().flatten().filter(|p| !p.qty.is_zero()) {
                if let Some(mm) = maint_margin(brackets, pos.qty.abs() * mark) {
                    *total.get_or_insert(Decimal::ZERO) += mm;
                }
            }
        }
        total
    }

    pub(crate) fn before_event(&mut self, time: Timestamp, config: &BooksConfig) {
        self.last_time = self.last_time.max(time);
        self.perf.roll(time, config.day_boundary_ms);
    }

    pub(crate) fn after_event(&mut self, time: Timestamp, config: &BooksConfig, market: &Market) {
        if let Some(e) = self.equity(market) {
            self.perf.update(time, e, config.day_boundary_ms);
        }
    }

    /// Learns the position mode; learning one-way releases fills held for want of a position side.
    fn learn_mode(&mut self, hedge: bool, ctx: &mut Ctx<'_>) {
        self.hedge = Some(hedge);
        if !hedge && !self.held.is_empty() {
            for fill in std::mem::take(&mut self.held) {
                self.apply_fill(&fill, PositionSide::Both, ctx);
            }
        }
    }

    /// Applies fills still held at the end: without a known hedge mode they are booked one-way.
    pub(crate) fn release_held(&mut self, ctx: &mut Ctx<'_>) {
        if self.hedge != Some(true) && !self.held.is_empty() {
            for fill in std::mem::take(&mut self.held) {
                self.apply_fill(&fill, PositionSide::Both, ctx);
            }
        }
    }

    pub(crate) fn on_fill(&mut self, fill: &Fill, ctx: &mut Ctx<'_>) -> Outcome {
        self.has_history = true;
        if let Some(ps) = fill.position_side
            && self.hedge.is_none()
        {
            self.learn_mode(ps != PositionSide::Both, ctx);
        }
        let seen = match self.symbols.get(&fill.symbol) {
            Some(sb) => sb.seen.contains(fill.trade_id),
            None => {
                let capacity = ctx.config.seen_ids_per_symbol;
                self.symbols
                    .insert(fill.symbol.clone(), SymbolBook::new(capacity));
                false
            }
        };
        if seen {
            return self.enrich(fill, ctx);
        }
        if !self.held.is_empty()
            && let Some(i) = self
                .held
                .iter()
                .position(|h| h.trade_id == fill.trade_id && h.symbol == fill.symbol)
        {
            if fill.source == FillSource::TradeLite {
                return Outcome::Duplicate;
            }
            // The full report supersedes the held notice.
            self.held.swap_remove(i);
        }
        let side = match (fill.position_side, self.hedge) {
            (Some(side), _) => side,
            (None, Some(false)) => PositionSide::Both,
            (None, _) => {
                self.held.push(fill.clone());
                return Outcome::Held;
            }
        };
        self.apply_fill(fill, side, ctx)
    }

    fn apply_fill(&mut self, fill: &Fill, side: PositionSide, ctx: &mut Ctx<'_>) -> Outcome {
        let capacity = ctx.config.seen_ids_per_symbol;
        let account = &self.account;
        let mark = ctx.market.mark(&fill.symbol);
        let Some(sb) = self.symbols.get_mut(&fill.symbol) else {
            // Fills reach here through `on_fill`, which creates the symbol's book.
            self.symbols
                .insert(fill.symbol.clone(), SymbolBook::new(capacity));
            return self.apply_fill(fill, side, ctx);
        };
        sb.seen.insert(fill.trade_id);
        let slot = &mut sb.legs[leg_index(side)];
        let pos = match slot {
            Some(pos) => {
                if let Some(m) = &fill.margin_asset {
                    pos.margin_asset = m.clone();
                }
                pos
            }
            None => slot.insert(Position::new(
                fill.symbol.clone(),
                side,
                margin_asset_of(fill.margin_asset.as_ref(), &fill.symbol),
            )),
        };
        if pos.check.covered_by_baseline(fill.time) {
            return Outcome::BeforeBaseline;
        }
        let mut verdicts = Vec::new();
        pos.check
            .before_change(fill.time, &pos.holding(), &mut verdicts);
        if !verdicts.is_empty() {
            resolve_position(account, pos, verdicts.drain(..), ctx.out);
        }

        let effect = pos.apply_trade(fill.side, fill.qty, fill.price, fill.time);
        let booked = match fill.realized_pnl {
            Some(rp) => {
                if !realized_agrees(effect.gross, rp, effect.closed, effect.slack) {
                    ctx.out.push(Discrepancy {
                        account: account.clone(),
                        kind: DiscrepancyKind::Realized,
                        symbol: Some(fill.symbol.clone()),
                        side: Some(side),
                        asset: None,
                        trade_id: Some(fill.trade_id),
                        ours: effect.gross.to_decimal(),
                        exchange: rp,
                        time: fill.time,
                    });
                }
                // The exchange's figure is booked, so realized totals and wallets match it exactly.
                rp
            }
            None => effect.gross.to_decimal(),
        };
        pos.book_gross(booked, effect.closing_cycle);
        if let Some(c) = &fill.commission {
            let valued = ctx
                .market
                .value_in(&c.asset, c.amount, &pos.margin_asset)
                .unwrap_or_default();
            pos.book_commission(valued, (&c.asset, c.amount), &effect);
        }
        pos.check.after_change(&pos.holding(), &mut verdicts);
        if !verdicts.is_empty() {
            resolve_position(account, pos, verdicts.drain(..), ctx.out);
        }
        let wallet_gross = if fill.realized_pnl.is_none() && fill.source == FillSource::TradeLite {
            Decimal::ZERO
        } else {
            booked
        };
        self.realized_in_flight += booked - wallet_gross;
        let delta = pos.revalue(mark);
        if fill.commission.is_none() || fill.realized_pnl.is_none() {
            if sb.incomplete.len() >= MAX_INCOMPLETE
                && let Some((_, forgotten)) = sb.incomplete.pop_first()
            {
                // Its full report will not come; the exchange's next balance row settles the wallet.
                self.realized_in_flight -= forgotten.booked_gross - forgotten.wallet_gross;
            }
            sb.incomplete.insert(
                fill.trade_id,
                Incomplete {
                    side,
                    effect,
                    booked_gross: booked,
                    wallet_gross,
                    has_realized: fill.realized_pnl.is_some(),
                    has_commission: fill.commission.is_some(),
                },
            );
        }
        if !delta.is_zero() {
            self.unrealized_sum += delta;
        }
        let out = &mut *ctx.out;
        // A bare notice (TRADE_LITE) leaves the wallet for its full report's `rp`: our estimate
        // could be adopted into the wallet by a balance row in between and then counted again.
        if wallet_gross == booked {
            move_wallet(
                &mut self.wallets,
                account,
                &pos.margin_asset,
                booked,
                fill.time,
                out,
            );
        }
        if let Some(c) = &fill.commission {
            move_wallet(
                &mut self.wallets,
                account,
                &c.asset,
                -c.amount,
                fill.time,
                out,
            );
        }
        Outcome::Applied
    }

    /// A second report of an applied fill: adds what the first report lacked, else it is a duplicate.
    fn enrich(&mut self, fill: &Fill, ctx: &mut Ctx<'_>) -> Outcome {
        let account = self.account.clone();
        let capacity = ctx.config.seen_ids_per_symbol;
        let sb = self.symbol_book(&fill.symbol, capacity);
        let Some(mut inc) = sb.incomplete.get(&fill.trade_id).copied() else {
            return Outcome::Duplicate;
        };
        let Some(pos) = sb.legs[leg_index(inc.side)].as_mut() else {
            return Outcome::Duplicate;
        };
        let margin = pos.margin_asset.clone();
        let mut moves: Vec<(Asset, Decimal)> = Vec::new();
        let mut in_flight = Decimal::ZERO;
        let mut enriched = false;
        if !inc.has_realized
            && let Some(rp) = fill.realized_pnl
        {
            if !realized_agrees(inc.effect.gross, rp, inc.effect.closed, inc.effect.slack) {
                ctx.out.push(Discrepancy {
                    account: account.clone(),
                    kind: DiscrepancyKind::Realized,
                    symbol: Some(fill.symbol.clone()),
                    side: Some(inc.side),
                    asset: None,
                    trade_id: Some(fill.trade_id),
                    ours: inc.effect.gross.to_decimal(),
                    exchange: rp,
                    time: fill.time,
                });
            }
            let adjust = rp - inc.booked_gross;
            if !adjust.is_zero() {
                pos.book_gross(adjust, inc.effect.closing_cycle);
            }
            in_flight -= inc.booked_gross - inc.wallet_gross;
            let wallet_adjust = rp - inc.wallet_gross;
            if !wallet_adjust.is_zero() {
                moves.push((margin.clone(), wallet_adjust));
            }
            inc.wallet_gross = rp;
            inc.booked_gross = rp;
            inc.has_realized = true;
            enriched = true;
        }
        if !inc.has_commission
            && let Some(c) = &fill.commission
        {
            let valued = ctx
                .market
                .value_in(&c.asset, c.amount, &margin)
                .unwrap_or_default();
            pos.book_commission(valued, (&c.asset, c.amount), &inc.effect);
            moves.push((c.asset.clone(), -c.amount));
            inc.has_commission = true;
            enriched = true;
        }
        if inc.has_realized && inc.has_commission {
            sb.incomplete.remove(&fill.trade_id);
        } else {
            sb.incomplete.insert(fill.trade_id, inc);
        }
        self.realized_in_flight += in_flight;
        for (asset, amount) in moves {
            self.wallet_change(&asset, amount, fill.time, ctx);
        }
        if enriched {
            Outcome::Enriched
        } else {
            Outcome::Duplicate
        }
    }

    /// Moves a wallet by `amount` at `time`, judging exchange rows that the move makes decidable.
    fn wallet_change(
        &mut self,
        asset: &Asset,
        amount: Decimal,
        time: Timestamp,
        ctx: &mut Ctx<'_>,
    ) {
        move_wallet(
            &mut self.wallets,
            &self.account,
            asset,
            amount,
            time,
            ctx.out,
        );
    }

    pub(crate) fn on_balance(&mut self, b: &BalanceUpdate, ctx: &mut Ctx<'_>) {
        self.has_history = true;
        let w = self.wallets.entry(b.asset.clone()).or_default();
        match w.balance {
            None => {
                w.balance = Some(b.wallet);
                w.check.set_baseline(b.time, Cash(b.wallet));
            }
            Some(balance) => {
                if let Some(v) = w.check.observe(b.time, Cash(b.wallet), &Cash(balance)) {
                    w.balance = Some(resolve_wallet(
                        &self.account,
                        &b.asset,
                        balance,
                        std::iter::once(v),
                        ctx.out,
                    ));
                }
            }
        }
    }

    pub(crate) fn on_position(&mut self, p: &PositionUpdate, ctx: &mut Ctx<'_>) {
        self.has_history = true;
        if !p.qty.is_zero() && self.hedge.is_none() {
            self.learn_mode(p.side != PositionSide::Both, ctx);
        }
        let margin = margin_asset_of(p.margin_asset.as_ref(), &p.symbol);
        let capacity = ctx.config.seen_ids_per_symbol;
        let account = self.account.clone();
        let mark = ctx.market.mark(&p.symbol);
        let sb = self.symbol_book(&p.symbol, capacity);
        let pos = sb.leg(&p.symbol, p.side, &margin);
        if p.margin_asset.is_some() {
            pos.margin_asset = margin.clone();
        }
        let exchange = Holding::from_exchange(p.qty, p.entry_price);
        if let Some(v) = pos.check.observe(p.time, exchange, &pos.holding()) {
            resolve_position(&account, pos, std::iter::once(v), ctx.out);
        }
        let delta = pos.revalue(mark);
        self.unrealized_sum += delta;
    }

    /// Records a money movement; false when the same movement was applied before.
    fn first_report(&mut self, key: MoneyKey) -> bool {
        if !self.money_seen.insert(key) {
            return false;
        }
        while self.money_seen.len() > MONEY_SEEN {
            self.money_seen.pop_first();
        }
        true
    }

    pub(crate) fn on_funding(&mut self, f: &Funding, ctx: &mut Ctx<'_>) -> Outcome {
        if !self.first_report(MoneyKey {
            time: f.time,
            funding: true,
            asset: f.asset.clone(),
            symbol: f.symbol.clone(),
            id: f.tran_id,
            amount: f.amount,
        }) {
            return Outcome::Duplicate;
        }
        self.has_history = true;
        let attributed = f
            .symbol
            .as_ref()
            .and_then(|s| self.symbols.get_mut(s.as_str()))
            .is_some_and(|sb| attribute_funding(sb, f.amount));
        if !attributed {
            *self
                .funding_unattributed
                .entry(f.asset.clone())
                .or_default() += f.amount;
        }
        self.wallet_change(&f.asset, f.amount, f.time, ctx);
        Outcome::Applied
    }

    pub(crate) fn on_transfer(&mut self, t: &Transfer, ctx: &mut Ctx<'_>) -> Outcome {
        if !self.first_report(MoneyKey {
            time: t.time,
            funding: false,
            asset: t.asset.clone(),
            symbol: None,
            id: t.tran_id,
            amount: t.amount,
        }) {
            return Outcome::Duplicate;
        }
        self.has_history = true;
        if t.external {
            *self.transfers.entry(t.asset.clone()).or_default() += t.amount;
            // A non-stable asset not yet in equity is counted as capital when first valued instead.
            let counted = is_stable(&t.asset) || self.valued.contains(&t.asset);
            if counted && let Some(v) = ctx.market.value(&t.asset, t.amount) {
                self.perf.transfer(v);
            }
        } else {
            *self.other_income.entry(t.asset.clone()).or_default() += t.amount;
        }
        self.wallet_change(&t.asset, t.amount, t.time, ctx);
        Outcome::Applied
    }

    pub(crate) fn on_config(&mut self, c: &ConfigUpdate, ctx: &mut Ctx<'_>) {
        match &c.change {
            ConfigChange::Leverage { symbol, leverage } => {
                self.leverage.insert(symbol.clone(), *leverage);
            }
            ConfigChange::MultiAssets { enabled } => self.multi_assets = Some(*enabled),
            ConfigChange::PositionMode { hedge } => self.learn_mode(*hedge, ctx),
        }
    }

    pub(crate) fn on_snapshot(&mut self, s: &Snapshot, ctx: &mut Ctx<'_>) {
        if let Some(h) = s.hedge_mode {
            self.learn_mode(h, ctx);
        }
        let fresh = !self.has_history;
        self.has_history = true;
        let from = s.since.unwrap_or(s.time).min(s.time);
        for b in &s.balances {
            let w = self.wallets.entry(b.asset.clone()).or_default();
            match w.balance {
                Some(balance) if !fresh => {
                    // The whole window, not only what came before it: the trades read before the
                    // snapshot come symbol by symbol, so a symbol read early misses fills of moments
                    // that a symbol read later already moved the wallet past; they come later, live,
                    // and a row of the window judged before them would be judged on a partial order.
                    // The snapshot states the wallet of a moment in the window.
                    w.check.supersede(s.time);
                    if let Some(v) =
                        w.check
                            .observe_window(from, s.time, Cash(b.wallet), &Cash(balance))
                    {
                        w.balance = Some(resolve_wallet(
                            &self.account,
                            &b.asset,
                            balance,
                            std::iter::once(v),
                            ctx.out,
                        ));
                    }
                }
                _ => {
                    w.balance = Some(b.wallet);
                    w.check.set_baseline(s.time, Cash(b.wallet));
                }
            }
        }
        // Every leg we hold that the snapshot does not list is flat on the exchange.
        let mut rows: Vec<(Symbol, PositionSide, Holding, Option<Asset>)> = s
            .positions
            .iter()
            .map(|p| {
                let h = Holding::from_exchange(p.qty, p.entry_price);
                (p.symbol.clone(), p.side, h, p.margin_asset.clone())
            })
            .collect();
        for (symbol, sb) in &self.symbols {
            for pos in sb.legs.iter().flatten() {
                let listed = rows
                    .iter()
                    .any(|(s, side, ..)| s == symbol && *side == pos.side);
                if !listed && !pos.qty.is_zero() {
                    let flat = Holding::from_exchange(Decimal::ZERO, Decimal::ZERO);
                    rows.push((symbol.clone(), pos.side, flat, None));
                }
            }
        }
        // Older rows of every leg are superseded, listed or not: a leg flat on both sides is not
        // listed, and the stream may still deliver its rows from before the snapshot, of a state older
        // than the history kept for late rows.
        for sb in self.symbols.values_mut() {
            for pos in sb.legs.iter_mut().flatten() {
                pos.check.supersede(from);
            }
        }
        let capacity = ctx.config.seen_ids_per_symbol;
        let account = self.account.clone();
        for (symbol, side, exchange, margin_asset) in rows {
            let margin = margin_asset_of(margin_asset.as_ref(), &symbol);
            let mark = ctx.market.mark(&symbol);
            let sb = self.symbol_book(&symbol, capacity);
            let pos = sb.leg(&symbol, side, &margin);
            if fresh || (pos.fills == 0 && pos.qty.is_zero()) {
                pos.adopt(exchange, s.time);
                pos.check.set_baseline(s.time, exchange);
            } else if let Some(v) = pos
                .check
                .observe_window(from, s.time, exchange, &pos.holding())
            {
                resolve_position(&account, pos, std::iter::once(v), ctx.out);
            }
            let delta = pos.revalue(mark);
            self.unrealized_sum += delta;
        }
    }

    pub(crate) fn on_correction(&mut self, c: &Correction, ctx: &mut Ctx<'_>) {
        self.has_history = true;
        match &c.target {
            CorrectionTarget::Position {
                symbol,
                side,
                qty,
                entry_price,
            } => {
                let margin = margin_asset_of(None, symbol);
                let mark = ctx.market.mark(symbol);
                let capacity = ctx.config.seen_ids_per_symbol;
                let sb = self.symbol_book(symbol, capacity);
                let pos = sb.leg(symbol, *side, &margin);
                let exchange = Holding::from_exchange(*qty, *entry_price);
                pos.adopt(exchange, c.time);
                pos.check.set_baseline(c.time, exchange);
                let delta = pos.revalue(mark);
                self.unrealized_sum += delta;
            }
            CorrectionTarget::Wallet { asset, wallet } => {
                let w = self.wallets.entry(asset.clone()).or_default();
                w.balance = Some(*wallet);
                w.check.set_baseline(c.time, Cash(*wallet));
            }
        }
    }

    /// A new mark price for `symbol`: recompute the unrealized P&L of its legs.
    pub(crate) fn on_mark(&mut self, symbol: &Symbol, mark: Decimal) -> bool {
        let Some(sb) = self.symbols.get_mut(symbol.as_str()) else {
            return false;
        };
        let mut delta = Decimal::ZERO;
        for pos in sb.legs.iter_mut().flatten() {
            delta += pos.revalue(Some(mark));
        }
        self.unrealized_sum += delta;
        true
    }

    /// Judges every pending exchange row stamped at or before `until`.
    /// Whether an exchange row or a held fill waits for a verdict.
    pub(crate) fn has_pending(&self) -> bool {
        !self.held.is_empty()
            || self.wallets.values().any(|w| w.check.pending_len() > 0)
            || self
                .symbols
                .values()
                .any(|sb| sb.legs.iter().flatten().any(|p| p.check.pending_len() > 0))
    }

    pub(crate) fn settle(&mut self, until: Timestamp, ctx: &mut Ctx<'_>) {
        self.release_held(ctx);
        let account = self.account.clone();
        let mut verdicts = Vec::new();
        for sb in self.symbols.values_mut() {
            for pos in sb.legs.iter_mut().flatten() {
                if pos.check.pending_len() > 0 {
                    pos.check.settle(until, &pos.holding(), &mut verdicts);
                    resolve_position(&account, pos, verdicts.drain(..), ctx.out);
                    let mark = ctx.market.mark(&pos.symbol);
                    let d = pos.revalue(mark);
                    self.unrealized_sum += d;
                }
            }
        }
        let mut wallet_verdicts = Vec::new();
        for (asset, w) in self.wallets.iter_mut() {
            if let Some(balance) = w.balance
                && w.check.pending_len() > 0
            {
                w.check.settle(until, &Cash(balance), &mut wallet_verdicts);
                w.balance = Some(resolve_wallet(
                    &account,
                    asset,
                    balance,
                    wallet_verdicts.drain(..),
                    ctx.out,
                ));
            }
        }
    }

    /// Number of `TRADE_LITE` fills held for want of a position side.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

/// Moves a wallet by `amount` at `time` (a free function so that callers can hold a position of the
/// same account while moving its wallets).
fn move_wallet(
    wallets: &mut BTreeMap<Asset, Wallet>,
    account: &Account,
    asset: &Asset,
    amount: Decimal,
    time: Timestamp,
    out: &mut Vec<Discrepancy>,
) {
    // Unknown until the exchange reports it; that report will include this move.
    let Some(w) = wallets.get_mut(asset.as_str()) else {
        return;
    };
    let Some(balance) = w.balance else {
        return;
    };
    if w.check.covered_by_baseline(time) {
        return;
    }
    let mut verdicts = Vec::new();
    w.check.before_change(time, &Cash(balance), &mut verdicts);
    let mut balance = resolve_wallet(account, asset, balance, verdicts.drain(..), out);
    balance += amount;
    w.check.after_change(&Cash(balance), &mut verdicts);
    balance = resolve_wallet(account, asset, balance, verdicts.drain(..), out);
    w.balance = Some(balance);
}

fn margin_asset_of(explicit: Option<&Asset>, symbol: &Symbol) -> Asset {
    explicit
        .cloned()
        .or_else(|| symbol.margin_asset_guess())
        .unwrap_or_else(|| Asset::new("USDT").expect("non-empty"))
}

/// Attributes a funding amount to the open legs of a symbol, pro rata to their size; a symbol with no
/// open leg books it on the leg that traded last. Returns false when the symbol has no leg at all.
fn attribute_funding(sb: &mut SymbolBook, amount: Decimal) -> bool {
    let open: Decimal = sb.legs.iter().flatten().map(|p| p.qty.abs()).sum();
    if open.is_zero() {
        let last = sb
            .legs
            .iter_mut()
            .flatten()
            .max_by_key(|p| p.last_fill_time);
        return match last {
            Some(p) => {
                p.book_funding(amount);
                true
            }
            None => false,
        };
    }
    let mut left = amount;
    let open_legs: Vec<usize> = (0..3)
        .filter(|i| sb.legs[*i].as_ref().is_some_and(|p| !p.qty.is_zero()))
        .collect();
    for (n, i) in open_legs.iter().enumerate() {
        let Some(p) = sb.legs[*i].as_mut() else {
            continue;
        };
        let share = if n + 1 == open_legs.len() {
            left
        } else {
            amount * p.qty.abs() / open
        };
        left -= share;
        p.book_funding(share);
    }
    true
}

fn resolve_position(
    account: &Account,
    pos: &mut Position,
    verdicts: impl ExactSizeIterator<Item = Verdict<Holding>>,
    out: &mut Vec<Discrepancy>,
) {
    if verdicts.len() == 0 {
        return;
    }
    for v in verdicts {
        match v {
            Verdict::Agrees {
                exchange,
                current: true,
            } => {
                // Same figure to our tolerance: take the exchange's exact entry price.
                pos.cost = if pos.qty.is_zero() {
                    Fx::ZERO
                } else {
                    exchange.cost
                };
                pos.entry_slack = crate::position::entry_tolerance(exchange.entry_scale);
            }
            Verdict::Agrees { current: false, .. } => {}
            Verdict::Disagrees {
                ours,
                exchange,
                time,
                stale,
            } => {
                let (kind, o, e) = if ours.qty != exchange.qty {
                    (DiscrepancyKind::Position, ours.qty, exchange.qty)
                } else {
                    (DiscrepancyKind::EntryPrice, ours.entry(), exchange.entry())
                };
                out.push(Discrepancy {
                    account: account.clone(),
                    kind,
                    symbol: Some(pos.symbol.clone()),
                    side: Some(pos.side),
                    asset: None,
                    trade_id: None,
                    ours: o,
                    exchange: e,
                    time,
                });
                let adopted = if stale {
                    // Newer fills are in already: carry the difference forward.
                    let qty = pos.qty + (exchange.qty - ours.qty);
                    let entry = if pos.qty == ours.qty {
                        exchange.entry()
                    } else {
                        pos.holding().entry()
                    };
                    Holding::from_exchange(qty, entry)
                } else {
                    exchange
                };
                pos.adopt(adopted, time);
            }
        }
    }
}

fn resolve_wallet(
    account: &Account,
    asset: &Asset,
    mut balance: Decimal,
    verdicts: impl Iterator<Item = Verdict<Cash>>,
    out: &mut Vec<Discrepancy>,
) -> Decimal {
    for v in verdicts {
        match v {
            Verdict::Agrees {
                exchange,
                current: true,
            } => balance = exchange.0,
            Verdict::Agrees { current: false, .. } => {}
            Verdict::Disagrees {
                ours,
                exchange,
                time,
                stale,
            } => {
                out.push(Discrepancy {
                    account: account.clone(),
                    kind: DiscrepancyKind::Wallet,
                    symbol: None,
                    side: None,
                    asset: Some(asset.clone()),
                    trade_id: None,
                    ours: ours.0,
                    exchange: exchange.0,
                    time,
                });
                balance = if stale {
                    balance + (exchange.0 - ours.0)
                } else {
                    exchange.0
                };
            }
        }
    }
    balance
}

/// Risk and performance of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    /// Account alias.
    pub account: Account,
    /// Hedge mode, when known.
    pub hedge_mode: Option<bool>,
    /// Sum of wallet balances valued in the quote (stablecoins at 1).
    pub wallet: Option<Decimal>,
    /// Unrealized P&L of all legs with a mark.
    pub unrealized: Decimal,
    /// Equity (margin balance) `= wallet + unrealized`.
    pub equity: Option<Decimal>,
    /// Maintenance margin from leverage brackets at mark notional.
    pub maint_margin: Option<Decimal>,
    /// Margin ratio `= maintenance margin / margin balance` (Binance's convention; liquidation at 1).
    pub margin_ratio: Option<Decimal>,
    /// Performance figures (daily P&L, drawdown, Sharpe, Sortino, Calmar).
    #[serde(flatten)]
    pub performance: crate::stats::PerformanceSummary,
    /// Funding that named no symbol, per asset.
    pub funding_unattributed: BTreeMap<Asset, Decimal>,
    /// Net external transfers per asset.
    pub transfers: BTreeMap<Asset, Decimal>,
    /// Other income (rebates, insurance clearance …) per asset.
    pub other_income: BTreeMap<Asset, Decimal>,
    /// Margin calls received.
    pub margin_calls: u64,
}
