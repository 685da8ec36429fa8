//! Leverage brackets and maintenance margin, as `GET /fapi/v1/leverageBracket` publishes them:
//! maintenance margin = notional × `maintMarginRatio` − `cum` in the bracket the notional falls in.

use rust_decimal::Decimal;

/// One notional bracket of a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bracket {
    /// Bracket number, from 1.
    pub bracket: u32,
    /// Highest leverage allowed in this bracket.
    pub initial_leverage: u32,
    /// Upper bound of the notional (exclusive).
    pub notional_cap: i64,
    /// Lower bound of the notional (inclusive).
    pub notional_floor: i64,
    /// Maintenance margin ratio.
    pub maint_margin_ratio: Decimal,
    /// Maintenance amount ("auxiliary number for quick calculation").
    pub cum: Decimal,
}

/// (floor, cap, maintenance ratio in basis points, initial leverage) for BTC and ETH.
const MAJOR: [(i64, i64, i64, u32); 5] = [
    (0, 50_000, 40, 125),
    (50_000, 500_000, 50, 100),
    (500_000, 8_000_000, 100, 50),
    (8_000_000, 50_000_000, 250, 20),
    (50_000_000, 100_000_000, 500, 10),
];

/// The same for every other symbol.
const MINOR: [(i64, i64, i64, u32); 5] = [
    (0, 5_000, 100, 75),
    (5_000, 25_000, 200, 50),
    (25_000, 100_000, 250, 25),
    (100_000, 1_000_000, 500, 10),
    (1_000_000, 5_000_000, 1000, 5),
];

/// The brackets of a symbol, with `cum` chained so the margin is continuous across brackets.
pub fn brackets(symbol: &str) -> Vec<Bracket> {
    let table = if symbol.starts_with("BTC") || symbol.starts_with("ETH") {
        &MAJOR
    } else {
        &MINOR
    };
    let mut out: Vec<Bracket> = Vec::with_capacity(table.len());
    for (i, &(floor, cap, bps, lev)) in table.iter().enumerate() {
        let ratio = Decimal::new(bps, 4);
        let cum = match out.last() {
            Some(prev) => prev.cum + Decimal::from(floor) * (ratio - prev.maint_margin_ratio),
            None => Decimal::ZERO,
        };
        out.push(Bracket {
            bracket: u32::try_from(i + 1).unwrap_or(u32::MAX),
            initial_leverage: lev,
            notional_cap: cap,
            notional_floor: floor,
            maint_margin_ratio: ratio,
            cum,
        });
    }
    out
}

/// Maintenance margin of a position of this absolute notional.
pub fn maint_margin(symbol: &str, notional: Decimal) -> Decimal {
    let notional = notional.abs();
    let all = brackets(symbol);
    let b = all
        .iter()
        .find(|b| notional < Decimal::from(b.notional_cap))
        .or(all.last());
    b.map_or(Decimal::ZERO, |b| notional * b.maint_margin_ratio - b.cum)
}

/// The largest notional allowed at `leverage`, or `None` when the leverage is above every bracket's.
pub fn max_notional(symbol: &str, leverage: u32) -> Option<i64> {
    brackets(symbol)
        .iter()
        .filter(|b| b.initial_leverage >= leverage)
        .map(|b| b.notional_cap)
        .max()
}

/// The `leverageBracket` JSON of a symbol. Binance sends these figures as JSON numbers, not strings.
pub fn brackets_json(symbol: &str) -> String {
    let rows: Vec<String> = brackets(symbol)
        .iter()
        .map(|b| {
            format!(
                "{{\"bracket\":{},\"initialLeverage\":{},\"notionalCap\":{},\"notionalFloor\":{},\"maintMarginRatio\":{},\"cum\":{}}}",
                b.bracket,
                b.initial_leverage,
                b.notional_cap,
                b.notional_floor,
                b.maint_margin_ratio.normalize(),
                b.cum.normalize()
            )
        })
        .collect();
    format!(
        "{{\"symbol\":\"{symbol}\",\"notionalCoef\":1.0,\"brackets\":[{}]}}",
        rows.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn margin_is_continuous_across_brackets() {
        for symbol in ["BTCUSDT", "SOLUSDT"] {
            for b in brackets(symbol).windows(2) {
                let at = Decimal::from(b[1].notional_floor);
                let below = at * b[0].maint_margin_ratio - b[0].cum;
                let above = at * b[1].maint_margin_ratio - b[1].cum;
                assert_eq!(below, above, "{symbol} at {at}");
            }
        }
        assert_eq!(maint_margin("BTCUSDT", d("10000")), d("40"));
        assert_eq!(maint_margin("BTCUSDT", d("-100000")), d("450"));
        assert_eq!(max_notional("BTCUSDT", 20), Some(50_000_000));
        assert_eq!(max_notional("SOLUSDT", 100), None);
    }

    #[test]
    fn bracket_json_has_numbers() {
        let v: serde_json::Value = serde_json::from_str(&brackets_json("ETHUSDT")).unwrap();
        assert_eq!(v["brackets"][1]["cum"], serde_json::json!(50));
        assert!(v["brackets"][0]["maintMarginRatio"].is_number());
    }
}
