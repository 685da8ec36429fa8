//! Maintenance margin from leverage brackets, and valuation of assets in the quote currency.

use acctmon_domain::{Asset, Bracket};
use rust_decimal::Decimal;

/// Maintenance margin of a position of `notional` (absolute, at the mark price):
/// `notional × maintMarginRatio − cum` in the bracket with `floor ≤ notional < cap`
/// (the last bracket when the notional is above every cap). `None` without brackets.
///
/// ```
/// # use acctmon_books::maint_margin;
/// # use acctmon_domain::Bracket;
/// let b = |n: u32, floor: i64, cap: i64, rate: &str, cum: &str| Bracket {
///     bracket: n, initial_leverage: 20, notional_floor: floor.into(), notional_cap: cap.into(),
///     maint_margin_ratio: rate.parse().unwrap(), cum: cum.parse().unwrap() };
/// let brackets = [b(1, 0, 50_000, "0.004", "0"), b(2, 50_000, 250_000, "0.005", "50")];
/// assert_eq!(maint_margin(&brackets, 10_000.into()), Some("40".parse().unwrap()));
/// assert_eq!(maint_margin(&brackets, 100_000.into()), Some("450".parse().unwrap()));
/// ```
pub fn maint_margin(brackets: &[Bracket], notional: Decimal) -> Option<Decimal> {
    let b = brackets
        .iter()
        .find(|b| notional >= b.notional_floor && notional < b.notional_cap)
        .or_else(|| brackets.last())?;
    Some((notional * b.maint_margin_ratio - b.cum).max(Decimal::ZERO))
}

/// Assets counted at 1 in the quote currency (USD stablecoins and Binance's futures credit).
pub(crate) fn is_stable(asset: &Asset) -> bool {
    matches!(
        asset.as_str(),
        "USDT" | "USDC" | "BUSD" | "FDUSD" | "TUSD" | "USDP" | "DAI" | "USD" | "BNFCR"
    )
}
