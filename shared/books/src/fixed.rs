//! `Fx`: the books' internal accumulator, a decimal with exactly 16 places held in an `i128`.
//!
//! Exchange figures (prices, quantities, `rp`, fees, funding) carry at most 8 decimals, so sums of them
//! are exact here, and adding two `Fx` is one integer addition instead of a `Decimal` addition that must
//! align scales. The books keep cost bases and realized figures in `Fx` and speak `Decimal` at their
//! edges. Range: ±1.7 × 10^22 (far beyond any account); arithmetic saturates rather than wraps, and a
//! value with more than 16 decimals is rounded half away from zero (only our own averages have them).

use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::Decimal;

/// Decimal places of an `Fx`.
pub(crate) const SCALE: u32 = 16;

const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A fixed-point decimal with 16 places.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub(crate) struct Fx(i128);

/// Divides rounding half away from zero.
fn div_round(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if r.unsigned_abs().saturating_mul(2) >= d.unsigned_abs() {
        if (n < 0) != (d < 0) { q - 1 } else { q + 1 }
    } else {
        q
    }
}

/// `m × 10^(SCALE − scale)`: a mantissa at `scale` places as an Fx mantissa.
fn rescale(m: i128, scale: u32) -> i128 {
    match scale.cmp(&SCALE) {
        Ordering::Equal => m,
        Ordering::Less => m.saturating_mul(POW10[(SCALE - scale) as usize]),
        Ordering::Greater => div_round(m, POW10[(scale - SCALE) as usize]),
    }
}

impl Fx {
    pub(crate) const ZERO: Fx = Fx(0);

    /// The exact value of `d` (rounded when it has more than 16 decimals).
    #[inline]
    pub(crate) fn from_decimal(d: Decimal) -> Fx {
        Fx(rescale(d.mantissa(), d.scale()))
    }

    /// `a × b`, exact when their decimals add up to 16 or fewer.
    #[inline]
    pub(crate) fn product(a: Decimal, b: Decimal) -> Fx {
        match a.mantissa().checked_mul(b.mantissa()) {
            Some(m) => Fx(rescale(m, a.scale() + b.scale())),
            None => Fx::from_decimal(a.checked_mul(b).unwrap_or(Decimal::MAX)),
        }
    }

    /// `self × num / den` (quantities), rounded to 16 places.
    #[inline]
    pub(crate) fn mul_div(self, num: Decimal, den: Decimal) -> Fx {
        // self·num/den = (s·mn/md) · 10^(sd − sn) at SCALE places.
        let (mn, md) = (num.mantissa(), den.mantissa());
        if md == 0 {
            return Fx::ZERO;
        }
        let shift = i64::from(den.scale()) - i64::from(num.scale());
        let exact = self.0.checked_mul(mn).and_then(|p| {
            if shift >= 0 {
                p.checked_mul(POW10[shift as usize])
                    .map(|n| div_round(n, md))
            } else {
                Some(div_round(p, md.checked_mul(POW10[(-shift) as usize])?))
            }
        });
        match exact {
            Some(m) => Fx(m),
            // Too large for one multiplication: divide first (less precise, never a panic).
            None => {
                let d = self.to_decimal();
                let q = d
                    .checked_div(den)
                    .and_then(|q| q.checked_mul(num))
                    .unwrap_or(Decimal::MAX);
                Fx::from_decimal(q)
            }
        }
    }

    /// As a `Decimal` with 16 places (or fewer when the value is too large for them).
    pub(crate) fn to_decimal(self) -> Decimal {
        let mut m = self.0;
        let mut scale = SCALE;
        loop {
            if let Ok(d) = Decimal::try_from_i128_with_scale(m, scale) {
                return d;
            }
            if scale == 0 {
                return if m < 0 { Decimal::MIN } else { Decimal::MAX };
            }
            m = div_round(m, 10);
            scale -= 1;
        }
    }

    #[inline]
    pub(crate) fn is_zero(self) -> bool {
        self.0 == 0
    }

    #[inline]
    pub(crate) fn abs(self) -> Fx {
        Fx(self.0.saturating_abs())
    }
}

impl Add for Fx {
    type Output = Fx;
    #[inline]
    fn add(self, o: Fx) -> Fx {
        Fx(self.0.saturating_add(o.0))
    }
}

impl Sub for Fx {
    type Output = Fx;
    #[inline]
    fn sub(self, o: Fx) -> Fx {
        Fx(self.0.saturating_sub(o.0))
    }
}

impl AddAssign for Fx {
    #[inline]
    fn add_assign(&mut self, o: Fx) {
        *self = *self + o;
    }
}

impl SubAssign for Fx {
    #[inline]
    fn sub_assign(&mut self, o: Fx) {
        *self = *self - o;
    }
}

impl Neg for Fx {
    type Output = Fx;
    #[inline]
    fn neg(self) -> Fx {
        Fx(self.0.saturating_neg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::RoundingStrategy;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_exchange_figures_exactly() {
        for s in [
            "0",
            "-0.3623",
            "0.00000001",
            "50000",
            "-4947.5",
            "123456789.12345678",
        ] {
            assert_eq!(Fx::from_decimal(d(s)).to_decimal(), d(s), "{s}");
        }
    }

    #[test]
    fn sums_are_exact() {
        let total = ["0.1", "0.2", "-0.00000001"]
            .iter()
            .fold(Fx::ZERO, |a, s| a + Fx::from_decimal(d(s)));
        assert_eq!(total.to_decimal(), d("0.29999999"));
    }

    #[test]
    fn products_and_mul_div_match_decimal_arithmetic() {
        assert_eq!(
            Fx::product(d("50000.5"), d("0.003")).to_decimal(),
            d("150.0015")
        );
        let cases = [
            ("250000.123", "0.003", "5.001"),
            ("1", "1", "3"),
            ("-2", "1", "3"),
            ("100", "0.5", "2"),
        ];
        for (a, b, c) in cases {
            let want = (d(a) * d(b) / d(c))
                .round_dp_with_strategy(16, RoundingStrategy::MidpointAwayFromZero);
            assert_eq!(
                Fx::from_decimal(d(a)).mul_div(d(b), d(c)).to_decimal(),
                want,
                "{a}×{b}/{c}"
            );
        }
    }

    #[test]
    fn more_than_16_decimals_round_half_away_from_zero() {
        assert_eq!(
            Fx::from_decimal(d("0.00000000000000005")).to_decimal(),
            d("0.0000000000000001")
        );
        assert_eq!(
            Fx::from_decimal(d("-0.00000000000000005")).to_decimal(),
            d("-0.0000000000000001")
        );
    }

    #[test]
    fn huge_values_saturate_instead_of_wrapping() {
        let big = Fx::from_decimal(Decimal::MAX);
        assert_eq!(big, Fx(i128::MAX), "beyond the range, a value saturates");
        assert_eq!(
            big + big,
            big,
            "and stays saturated instead of wrapping to a negative"
        );
        assert_eq!(-big - big, Fx(-i128::MAX - 1));
        assert!(big.to_decimal() > d("1000000000000000000000"));
    }
}
