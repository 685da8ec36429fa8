//! Trade statistics over closed cycles, and performance over daily equity.

use acctmon_domain::Timestamp;
use rust_decimal::{Decimal, MathematicalOps};
use serde::Serialize;

use crate::position::Cycle;

/// Statistics over closed position cycles. A cycle's result is its net realized P&L.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TradeStats {
    /// Closed cycles.
    pub cycles: u64,
    /// Cycles with a result above zero.
    pub wins: u64,
    /// Cycles with a result below zero.
    pub losses: u64,
    /// `wins / cycles`, `None` without cycles.
    pub win_rate: Option<Decimal>,
    /// Sum of the winning results.
    pub gross_profit: Decimal,
    /// Sum of the losing results (zero or negative).
    pub gross_loss: Decimal,
    /// `gross_profit / |gross_loss|`, `None` without losses.
    pub profit_factor: Option<Decimal>,
    /// Mean winning result, `None` without wins.
    pub average_win: Option<Decimal>,
    /// Mean losing result, `None` without losses.
    pub average_loss: Option<Decimal>,
    /// Mean result per cycle, `None` without cycles.
    pub expectancy: Option<Decimal>,
    /// Largest winning result.
    pub largest_win: Option<Decimal>,
    /// Largest losing result (the most negative).
    pub largest_loss: Option<Decimal>,
}

impl TradeStats {
    /// Statistics over the given closed cycles.
    ///
    /// ```
    /// # use acctmon_books::TradeStats;
    /// let s = TradeStats::from_results([10.into(), (-5).into(), 20.into()]);
    /// assert_eq!((s.cycles, s.wins, s.losses), (3, 2, 1));
    /// assert_eq!(s.profit_factor, Some(6.into()));
    /// ```
    pub fn from_results(results: impl IntoIterator<Item = Decimal>) -> Self {
        let mut tally = CycleTally::default();
        for r in results {
            tally.add(r);
        }
        tally.stats()
    }

    /// Statistics over cycles.
    pub fn from_cycles<'a>(cycles: impl IntoIterator<Item = &'a Cycle>) -> Self {
        Self::from_results(cycles.into_iter().map(Cycle::result))
    }
}

/// Closed cycles' results added up: what [`TradeStats`] is computed from, kept for cycles whose detail
/// the books no longer hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CycleTally {
    cycles: u64,
    wins: u64,
    losses: u64,
    gross_profit: Decimal,
    gross_loss: Decimal,
    largest_win: Option<Decimal>,
    largest_loss: Option<Decimal>,
}

impl CycleTally {
    /// Counts one cycle's result.
    pub(crate) fn add(&mut self, r: Decimal) {
        self.cycles += 1;
        if r > Decimal::ZERO {
            self.wins += 1;
            self.gross_profit += r;
            self.largest_win = Some(self.largest_win.map_or(r, |w| w.max(r)));
        } else if r < Decimal::ZERO {
            self.losses += 1;
            self.gross_loss += r;
            self.largest_loss = Some(self.largest_loss.map_or(r, |l| l.min(r)));
        }
    }

    /// Adds another tally to this one.
    pub(crate) fn merge(&mut self, o: &CycleTally) {
        self.cycles += o.cycles;
        self.wins += o.wins;
        self.losses += o.losses;
        self.gross_profit += o.gross_profit;
        self.gross_loss += o.gross_loss;
        for (mine, theirs, better) in [
            (
                &mut self.largest_win,
                o.largest_win,
                Decimal::max as fn(_, _) -> _,
            ),
            (&mut self.largest_loss, o.largest_loss, Decimal::min),
        ] {
            if let Some(t) = theirs {
                *mine = Some(mine.map_or(t, |m| better(m, t)));
            }
        }
    }

    /// Cycles counted.
    pub(crate) fn cycles(&self) -> u64 {
        self.cycles
    }

    /// The statistics of the cycles counted.
    pub(crate) fn stats(&self) -> TradeStats {
        let mut s = TradeStats {
            cycles: self.cycles,
            wins: self.wins,
            losses: self.losses,
            gross_profit: self.gross_profit,
            gross_loss: self.gross_loss,
            largest_win: self.largest_win,
            largest_loss: self.largest_loss,
            ..TradeStats::default()
        };
        if s.cycles > 0 {
            let n = Decimal::from(s.cycles);
            s.win_rate = Some(Decimal::from(s.wins) / n);
            s.expectancy = Some((s.gross_profit + s.gross_loss) / n);
        }
        if s.wins > 0 {
            s.average_win = Some(s.gross_profit / Decimal::from(s.wins));
        }
        if s.losses > 0 {
            s.average_loss = Some(s.gross_loss / Decimal::from(s.losses));
            s.profit_factor = Some(s.gross_profit / s.gross_loss.abs());
        }
        s
    }
}

/// One finished day of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DayResult {
    /// Start of the day (the configured boundary).
    pub start: Timestamp,
    /// Equity at the start of the day.
    pub start_equity: Decimal,
    /// Equity at the end of the day.
    pub end_equity: Decimal,
    /// Net external transfers during the day (deposits positive).
    pub transfers: Decimal,
    /// P&L of the day: `end − start − transfers`.
    pub pnl: Decimal,
    /// Return of the day: `pnl / start_equity`, `None` when the start equity is not positive.
    pub ret: Option<Decimal>,
}

/// Days with no activity between two active days are recorded as flat days, up to this many.
const MAX_IDLE_DAYS: i64 = 3660;

/// Equity over time: daily P&L net of transfers, drawdown from the running peak, and daily returns.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Performance {
    day: Option<i64>,
    day_start_equity: Decimal,
    day_transfers: Decimal,
    days: Vec<DayResult>,
    total_transfers: Decimal,
    last_equity: Option<Decimal>,
    peak: Option<Decimal>,
    max_drawdown: Decimal,
    max_drawdown_ratio: Decimal,
}

impl Performance {
    /// Closes the days that ended before `time` (boundaries at `offset` ms after UTC midnight).
    /// Call before applying an event stamped `time`.
    pub(crate) fn roll(&mut self, time: Timestamp, offset: i64) {
        let Some(equity) = self.last_equity else {
            return;
        };
        let day = (time.0 - offset).div_euclid(Timestamp::DAY_MS);
        let Some(current) = self.day else {
            self.day = Some(day);
            self.day_start_equity = equity;
            return;
        };
        if day <= current {
            return;
        }
        self.close_day(current, equity, offset);
        let idle = (day - current - 1).min(MAX_IDLE_DAYS);
        for d in (day - idle)..day {
            self.day_start_equity = equity;
            self.close_day(d, equity, offset);
        }
        self.day = Some(day);
        self.day_start_equity = equity;
        self.day_transfers = Decimal::ZERO;
    }

    fn close_day(&mut self, day: i64, end_equity: Decimal, offset: i64) {
        let start_equity = self.day_start_equity;
        let pnl = end_equity - start_equity - self.day_transfers;
        self.days.push(DayResult {
            start: Timestamp(day * Timestamp::DAY_MS + offset),
            start_equity,
            end_equity,
            transfers: self.day_transfers,
            pnl,
            ret: (start_equity > Decimal::ZERO).then(|| pnl / start_equity),
        });
        self.day_transfers = Decimal::ZERO;
    }

    /// Records an external transfer (valued in the account's quote).
    pub(crate) fn transfer(&mut self, amount: Decimal) {
        self.day_transfers += amount;
        self.total_transfers += amount;
    }

    /// Records the equity after an event stamped `time`.
    pub(crate) fn update(&mut self, time: Timestamp, equity: Decimal, offset: i64) {
        if self.day.is_none() {
            self.day = Some((time.0 - offset).div_euclid(Timestamp::DAY_MS));
            // The first equity seen opens the day; transfers before it are part of the capital.
            self.day_start_equity = equity;
            self.day_transfers = Decimal::ZERO;
            self.total_transfers = Decimal::ZERO;
        }
        self.last_equity = Some(equity);
        // Performance equity excludes money the owner moved in or out, so a withdrawal is no drawdown.
        let adjusted = equity - self.total_transfers;
        let peak = self.peak.map_or(adjusted, |p| p.max(adjusted));
        self.peak = Some(peak);
        let dd = peak - adjusted;
        if dd > self.max_drawdown {
            self.max_drawdown = dd;
        }
        if peak > Decimal::ZERO {
            let ratio = dd / peak;
            if ratio > self.max_drawdown_ratio {
                self.max_drawdown_ratio = ratio;
            }
        }
    }

    /// A summary of the figures.
    pub(crate) fn summary(&self) -> PerformanceSummary {
        let equity = self.last_equity;
        let daily_pnl = equity.map(|e| e - self.day_start_equity - self.day_transfers);
        let adjusted = equity.map(|e| e - self.total_transfers);
        let drawdown = match (self.peak, adjusted) {
            (Some(p), Some(a)) => Some(p - a),
            _ => None,
        };
        let returns: Vec<Decimal> = self.days.iter().filter_map(|d| d.ret).collect();
        let ratios = ReturnRatios::from_daily(&returns, self.max_drawdown_ratio);
        let ratio = |r: Decimal| r.round_dp(RATIO_DP).normalize();
        PerformanceSummary {
            daily_pnl: daily_pnl.map(|d| d.normalize()),
            peak_equity: self.peak.map(|d| d.normalize()),
            drawdown: drawdown.map(|d| d.normalize()),
            max_drawdown: self.max_drawdown.normalize(),
            max_drawdown_ratio: ratio(self.max_drawdown_ratio),
            days: self.days.len() as u64,
            sharpe: ratios.sharpe.map(ratio),
            sortino: ratios.sortino.map(ratio),
            calmar: ratios.calmar.map(ratio),
        }
    }

    /// Finished days, oldest first.
    pub(crate) fn days(&self) -> &[DayResult] {
        &self.days
    }
}

/// Decimals of reported ratios.
const RATIO_DP: u32 = 8;

/// Performance figures of one account (decimals without trailing zeros, ratios to 8 decimals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PerformanceSummary {
    /// P&L since the last day boundary, net of transfers.
    pub daily_pnl: Option<Decimal>,
    /// Running peak of transfer-adjusted equity.
    pub peak_equity: Option<Decimal>,
    /// Current drawdown from the peak.
    pub drawdown: Option<Decimal>,
    /// Largest drawdown seen.
    pub max_drawdown: Decimal,
    /// Largest drawdown relative to its peak.
    pub max_drawdown_ratio: Decimal,
    /// Finished days.
    pub days: u64,
    /// Annualized Sharpe ratio of daily returns.
    pub sharpe: Option<Decimal>,
    /// Annualized Sortino ratio of daily returns.
    pub sortino: Option<Decimal>,
    /// Calmar ratio: annualized return over maximum drawdown.
    pub calmar: Option<Decimal>,
}

/// Sharpe, Sortino and Calmar on daily returns with 365-day annualization (crypto trades every day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnRatios {
    /// `mean / sample standard deviation × √365`; `None` with fewer than two days or no dispersion.
    pub sharpe: Option<Decimal>,
    /// `mean / downside deviation × √365`, the downside deviation being `√(Σ min(r,0)² / n)`;
    /// `None` with fewer than two days or no losing day.
    pub sortino: Option<Decimal>,
    /// `mean × 365 / max drawdown ratio`; `None` without a drawdown or without returns.
    pub calmar: Option<Decimal>,
}

impl ReturnRatios {
    /// Computes the ratios from daily returns and the maximum drawdown ratio.
    ///
    /// ```
    /// # use acctmon_books::ReturnRatios;
    /// # use rust_decimal::Decimal;
    /// let r: Vec<Decimal> = ["0.01", "-0.01", "0.02"].iter().map(|s| s.parse().unwrap()).collect();
    /// let ratios = ReturnRatios::from_daily(&r, "0.01".parse().unwrap());
    /// // mean 0.00667, sample sd 0.01528 → 0.4364 × √365 ≈ 8.34
    /// assert_eq!(ratios.sharpe.unwrap().round_dp(2), "8.34".parse().unwrap());
    /// ```
    pub fn from_daily(returns: &[Decimal], max_drawdown_ratio: Decimal) -> Self {
        let mut out = ReturnRatios::default();
        let n = returns.len();
        if n == 0 {
            return out;
        }
        let count = Decimal::from(n as u64);
        let mean = returns.iter().sum::<Decimal>() / count;
        let days_per_year = Decimal::from(365);
        let annual_root = days_per_year.sqrt().unwrap_or_default();
        if max_drawdown_ratio > Decimal::ZERO {
            out.calmar = Some(mean * days_per_year / max_drawdown_ratio);
        }
        if n < 2 {
            return out;
        }
        let var = returns
            .iter()
            .map(|r| (*r - mean) * (*r - mean))
            .sum::<Decimal>()
            / Decimal::from((n - 1) as u64);
        if let Some(sd) = var.sqrt().filter(|sd| !sd.is_zero()) {
            out.sharpe = Some(mean / sd * annual_root);
        }
        let downside = returns
            .iter()
            .filter(|r| r.is_sign_negative() && !r.is_zero())
            .map(|r| *r * *r)
            .sum::<Decimal>()
            / count;
        if let Some(dd) = downside.sqrt().filter(|d| !d.is_zero()) {
            out.sortino = Some(mean / dd * annual_root);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn stats_count_wins_losses_and_ratios() {
        let s = TradeStats::from_results([dec!(100), dec!(-50), dec!(30), dec!(0)]);
        assert_eq!(s.cycles, 4);
        assert_eq!(s.wins, 2);
        assert_eq!(s.losses, 1);
        assert_eq!(s.win_rate, Some(dec!(0.5)));
        assert_eq!(s.gross_profit, dec!(130));
        assert_eq!(s.gross_loss, dec!(-50));
        assert_eq!(s.profit_factor, Some(dec!(2.6)));
        assert_eq!(s.average_win, Some(dec!(65)));
        assert_eq!(s.average_loss, Some(dec!(-50)));
        assert_eq!(s.expectancy, Some(dec!(20)));
        assert_eq!(s.largest_win, Some(dec!(100)));
        assert_eq!(s.largest_loss, Some(dec!(-50)));
    }

    #[test]
    fn profit_factor_is_none_without_losses() {
        let s = TradeStats::from_results([dec!(1), dec!(2)]);
        assert_eq!(s.profit_factor, None);
        assert_eq!(TradeStats::from_results([]).win_rate, None);
    }

    #[test]
    fn sortino_uses_downside_deviation_and_calmar_uses_drawdown() {
        let r = [dec!(0.02), dec!(-0.01), dec!(0.01), dec!(-0.02)];
        let x = ReturnRatios::from_daily(&r, dec!(0.05));
        // mean 0; all ratios zero but defined
        assert_eq!(x.sharpe, Some(Decimal::ZERO));
        assert_eq!(x.sortino, Some(Decimal::ZERO));
        assert_eq!(x.calmar, Some(Decimal::ZERO));
        let r = [dec!(0.01), dec!(0.03)];
        let x = ReturnRatios::from_daily(&r, Decimal::ZERO);
        assert!(x.sortino.is_none(), "no losing day");
        assert!(x.calmar.is_none(), "no drawdown");
        // mean 0.02, sd = 0.014142… → 1.41421 × 19.10497 = 27.018
        assert_eq!(x.sharpe.map(|s| s.round_dp(2)), Some(dec!(27.02)));
    }

    #[test]
    fn daily_pnl_is_net_of_transfers_and_days_roll_at_the_boundary() {
        let mut p = Performance::default();
        let day = Timestamp::DAY_MS;
        p.update(Timestamp(1000), dec!(1000), 0);
        p.transfer(dec!(500));
        p.update(Timestamp(2000), dec!(1500), 0);
        p.update(Timestamp(3000), dec!(1520), 0);
        assert_eq!(p.summary().daily_pnl, Some(dec!(20)));
        p.roll(Timestamp(day + 5), 0);
        p.update(Timestamp(day + 5), dec!(1500), 0);
        let s = p.summary();
        assert_eq!(s.daily_pnl, Some(dec!(-20)));
        assert_eq!(p.days().len(), 1);
        assert_eq!(p.days()[0].pnl, dec!(20));
        assert_eq!(p.days()[0].ret, Some(dec!(0.02)));
        // Drawdown on transfer-adjusted equity: peak 1020, now 1000.
        assert_eq!(s.drawdown, Some(dec!(20)));
        assert_eq!(s.max_drawdown, dec!(20));
    }

    #[test]
    fn day_boundary_offset_moves_the_day() {
        let mut p = Performance::default();
        let hour = 3_600_000;
        // Boundary at 08:00 UTC: 07:00 and 09:00 of the same UTC day are different days.
        p.update(Timestamp(7 * hour), dec!(100), 8 * hour);
        p.roll(Timestamp(9 * hour), 8 * hour);
        p.update(Timestamp(9 * hour), dec!(110), 8 * hour);
        assert_eq!(p.days().len(), 1);
        assert_eq!(p.days()[0].start, Timestamp(-16 * hour));
        assert_eq!(p.summary().daily_pnl, Some(dec!(10)));
    }
}
