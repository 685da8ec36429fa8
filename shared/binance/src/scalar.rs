//! Readers for the scalar fields of Binance JSON, used through `#[serde(deserialize_with = …)]`.
//!
//! - Decimals arrive as strings (`"0.03992450"`) and are parsed from that text (the plain form by a short
//!   loop, anything else by [`Decimal::from_str`]), never through `f64`. A few REST responses
//!   (`leverageBracket`) send JSON numbers instead; see [`Scalar::from_f64`].
//! - Ids and times are 64-bit integers that may exceed 2^53. They are read as `u64`/`i64`; a string holding
//!   the integer is accepted too, because recorded responses (ccxt) store them that way. A JSON float is
//!   refused: it has already lost the low digits.
//! - Optional fields treat `null` and `""` as absent.
//! - Strings are borrowed from the input when they contain no escapes, so the hot path does not allocate.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// What a decimal field expects; [`crate::ParseError`] recognises a bad decimal by this text.
pub(crate) const EXPECTED_DECIMAL: &str = "a decimal number";

/// A scalar that Binance may send as a JSON number or as a string.
pub(crate) trait Scalar: Sized {
    /// Shown in errors: "expected …".
    const EXPECTED: &'static str;
    /// From the text of a string value.
    fn from_text(text: &str) -> Option<Self>;
    /// From a non-negative JSON integer.
    fn from_u64(v: u64) -> Option<Self>;
    /// From a negative JSON integer.
    fn from_i64(v: i64) -> Option<Self>;
    /// From a JSON number with a fraction or exponent; refused unless the type can hold it exactly.
    fn from_f64(_v: f64) -> Option<Self> {
        None
    }
    /// From a JSON boolean.
    fn from_bool(_v: bool) -> Option<Self> {
        None
    }
}

impl Scalar for Decimal {
    const EXPECTED: &'static str = EXPECTED_DECIMAL;

    fn from_text(text: &str) -> Option<Self> {
        plain_decimal(text)
            .or_else(|| Decimal::from_str(text).ok())
            .or_else(|| {
                // Binance does not send exponents, but a recorded or hand-made payload might.
                if text.contains(['e', 'E']) {
                    Decimal::from_scientific(text).ok()
                } else {
                    None
                }
            })
    }

    fn from_u64(v: u64) -> Option<Self> {
        Some(Decimal::from(v))
    }

    fn from_i64(v: i64) -> Option<Self> {
        Some(Decimal::from(v))
    }

    /// serde_json (without `arbitrary_precision`, which would change it for the whole workspace) hands
    /// over a JSON number with a fraction as the nearest `f64`; its literal text is gone. Rust's `Display`
    /// for `f64` prints the shortest text that reads back as the same `f64`, which is the original literal
    /// for any literal of at most 15 significant digits (`0.004`, `1.5`, `0.0065`): that text is then
    /// parsed as a decimal. Binance's numeric REST fields (`maintMarginRatio`, `cum`, `notionalCoef`) are
    /// well within that. No float arithmetic happens here.
    fn from_f64(v: f64) -> Option<Self> {
        Decimal::from_str(&v.to_string()).ok()
    }
}

/// The common case `-?[0-9]+(\.[0-9]+)?` with at most 19 digits, read without the general parser (which
/// costs several times more, and a frame carries a dozen decimals). Same value and scale as
/// [`Decimal::from_str`]; anything else (longer, `-0`, exponents, `+`, `_`) is left to it.
fn plain_decimal(text: &str) -> Option<Decimal> {
    match plain_decimal_prefix(text.as_bytes()) {
        Some((value, len)) if len == text.len() => Some(value),
        _ => None,
    }
}

/// The plain decimal at the start of `bytes` (see [`plain_decimal`]) and the number of bytes it takes, or
/// `None` when `bytes` does not start with one. What follows it is the caller's business: a closing quote
/// for the hand-written reader, the end of the text for [`plain_decimal`].
///
/// Up to 19 digits fit a `u64` (10^19 − 1 < 2^64), so the mantissa is exact; the scale is the number of
/// digits after the point, as [`Decimal::from_str`] keeps it (`"0.00000"` has scale 5).
#[inline]
pub(crate) fn plain_decimal_prefix(bytes: &[u8]) -> Option<(Decimal, usize)> {
    let negative = bytes.first() == Some(&b'-');
    let start = usize::from(negative);
    // One pass over digits and at most one point; a second point ends the number (and then fails the
    // caller's check of what follows).
    let (mut mantissa, mut point, mut i) = (0_u64, None, start);
    while let Some(&b) = bytes.get(i) {
        let digit = b.wrapping_sub(b'0');
        if digit <= 9 {
            // Wrapping: a result with more than 19 digits is thrown away below.
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
        } else if b == b'.' && point.is_none() {
            point = Some(i);
        } else {
            break;
        }
        i += 1;
    }
    let (int_digits, scale) = match point {
        Some(p) => (p - start, i - p - 1),
        None => (i - start, 0),
    };
    if int_digits == 0 || (point.is_some() && scale == 0) {
        return None;
    }
    if int_digits + scale > 19 || (negative && mantissa == 0) {
        return None;
    }
    // Both casts are exact: the low and high halves of a u64, and a scale of at most 19.
    #[allow(clippy::cast_possible_truncation)]
    let (lo, mid, scale) = (mantissa as u32, (mantissa >> 32) as u32, scale as u32);
    Some((Decimal::from_parts(lo, mid, 0, negative, scale), i))
}

/// Powers of ten that fit a `u64`.
const POW10: [u64; 20] = {
    let mut table = [1_u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The run of ASCII digits that starts at `bytes[start]`: its value (modulo 2^64, so exact for up to 19
/// digits) and the index just past it. Eight bytes at a time while eight are left.
#[inline]
pub(crate) fn digit_run(bytes: &[u8], start: usize) -> (u64, usize) {
    const ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);
    let mut value: u64 = 0;
    let mut i = start;
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        // Each digit byte becomes its value 0..=9; any other byte has a bit in its high nibble or, for
        // `:` to `?`, goes past 15 when 6 is added. A carry out of a non-digit byte only reaches the
        // bytes after it, so the first non-digit byte is always found.
        let digits = u64::from_le_bytes(*chunk) ^ ZEROS;
        let non_digit = (digits & 0xF0F0_F0F0_F0F0_F0F0)
            | (digits.wrapping_add(0x0606_0606_0606_0606) & 0x1010_1010_1010_1010);
        let n = (non_digit.trailing_zeros() / 8) as usize;
        if n == 0 {
            return (value, i);
        }
        // The n digits to the top bytes, zeros (leading zeros of the number) below them.
        let aligned = digits << (8 * (8 - n));
        value = value
            .wrapping_mul(POW10[n])
            .wrapping_add(eight_digits(aligned));
        i += n;
        if n < 8 {
            return (value, i);
        }
    }
    // Fewer than 8 bytes left.
    while let Some(&b) = bytes.get(i) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        i += 1;
    }
    (value, i)
}

/// The number that eight digit values (0..=9, one per byte, the first digit in the lowest byte) make.
#[inline]
fn eight_digits(digits: u64) -> u64 {
    // Pairs, then quadruples, then the whole, by multiplications that add neighbouring lanes.
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    let low = (pairs & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((pairs >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    low.wrapping_add(high) >> 32
}

impl Scalar for u64 {
    const EXPECTED: &'static str = "an unsigned 64-bit integer";

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_u64(v: u64) -> Option<Self> {
        Some(v)
    }

    fn from_i64(v: i64) -> Option<Self> {
        u64::try_from(v).ok()
    }
}

impl Scalar for i64 {
    const EXPECTED: &'static str = "a 64-bit integer";

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok()
    }

    fn from_i64(v: i64) -> Option<Self> {
        Some(v)
    }
}

impl Scalar for u32 {
    const EXPECTED: &'static str = "an unsigned 32-bit integer";

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_u64(v: u64) -> Option<Self> {
        u32::try_from(v).ok()
    }

    fn from_i64(v: i64) -> Option<Self> {
        u32::try_from(v).ok()
    }
}

impl Scalar for bool {
    const EXPECTED: &'static str = "a boolean";

    /// `isAutoAddMargin` is the string `"false"` / `"true"` in positionRisk v2.
    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    fn from_u64(_v: u64) -> Option<Self> {
        None
    }

    fn from_i64(_v: i64) -> Option<Self> {
        None
    }

    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

/// Visits one scalar; `OPTIONAL` also accepts `null` and `""` as `None`.
struct ScalarVisitor<T, const OPTIONAL: bool>(PhantomData<T>);

impl<T: Scalar, const OPTIONAL: bool> ScalarVisitor<T, OPTIONAL> {
    fn wrap<E: de::Error>(value: Option<T>, unexpected: Unexpected<'_>) -> Result<Option<T>, E> {
        match value {
            Some(v) => Ok(Some(v)),
            None => Err(E::invalid_value(unexpected, &T::EXPECTED)),
        }
    }
}

impl<'de, T: Scalar, const OPTIONAL: bool> Visitor<'de> for ScalarVisitor<T, OPTIONAL> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if OPTIONAL && v.is_empty() {
            return Ok(None);
        }
        Self::wrap(T::from_text(v), Unexpected::Str(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::wrap(T::from_u64(v), Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::wrap(T::from_i64(v), Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::wrap(T::from_f64(v), Unexpected::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::wrap(T::from_bool(v), Unexpected::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if OPTIONAL {
            Ok(None)
        } else {
            Err(E::invalid_type(Unexpected::Unit, &T::EXPECTED))
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Reads a required decimal, id, time or flag.
pub(crate) fn read<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Scalar,
{
    match deserializer.deserialize_any(ScalarVisitor::<T, false>(PhantomData))? {
        Some(v) => Ok(v),
        None => Err(de::Error::invalid_type(Unexpected::Unit, &T::EXPECTED)),
    }
}

/// Reads an optional decimal, id, time or flag: `null` and `""` are `None`. Use with `#[serde(default)]`.
pub(crate) fn read_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Scalar,
{
    deserializer.deserialize_option(ScalarVisitor::<T, true>(PhantomData))
}

/// Visits an optional string, borrowing it when the input allows.
struct OptStrVisitor;

impl<'de> Visitor<'de> for OptStrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

/// Reads an optional string without copying it when it has no escapes (`Option<Cow<str>>` would always
/// copy: serde borrows a `Cow` only when it is the field's whole type). Use with `#[serde(default)]`.
pub(crate) fn opt_str<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_option(OptStrVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Row<'a> {
        #[serde(deserialize_with = "read")]
        d: Decimal,
        #[serde(default, deserialize_with = "read_opt")]
        o: Option<Decimal>,
        #[serde(default, deserialize_with = "read_opt")]
        id: Option<u64>,
        #[serde(default, borrow, deserialize_with = "opt_str")]
        s: Option<Cow<'a, str>>,
    }

    fn row(text: &str) -> Row<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn decimal_from_string_keeps_every_digit() {
        assert_eq!(row(r#"{"d":"0.03992450"}"#).d, dec!(0.03992450));
        assert_eq!(row(r#"{"d":"-0.36230000"}"#).d, dec!(-0.3623));
        assert_eq!(row(r#"{"d":"122624.12345678"}"#).d, dec!(122624.12345678));
    }

    #[test]
    fn decimal_from_json_number_uses_its_shortest_text() {
        assert_eq!(row(r#"{"d":0.004}"#).d, dec!(0.004));
        assert_eq!(row(r#"{"d":0.0065}"#).d, dec!(0.0065));
        assert_eq!(row(r#"{"d":1.5}"#).d, dec!(1.5));
        assert_eq!(row(r#"{"d":50000}"#).d, dec!(50000));
        assert_eq!(row(r#"{"d":-7}"#).d, dec!(-7));
        assert_eq!(row(r#"{"d":0.0}"#).d, Decimal::ZERO);
        assert_eq!(row(r#"{"d":"1e-3"}"#).d, dec!(0.001));
    }

    #[test]
    fn plain_decimal_reader_matches_the_general_parser_value_and_scale() {
        for text in [
            "0",
            "7259",
            "0.0275",
            "0.03992450",
            "-0.36230000",
            "-10",
            "122624.12345678",
            "0.00000",
            "007",
            "999999999999999999",
            "-999999999999999999",
            "9999999999999.9999",
            "0.0000000000000001",
            "1234567890123456789",
            "1.000000000000000001",
            "99999999999999.9999",
            "9999999999999999999",
            "-9999999999999999999",
            "0.000000000000000001",
            "18446744073.70955161",
            "0.000",
            "10.10",
            "-0.1",
        ] {
            let fast = plain_decimal(text).unwrap_or_else(|| panic!("{text} is plain"));
            let general = Decimal::from_str(text).unwrap();
            assert_eq!((fast, fast.scale()), (general, general.scale()), "{text}");
            assert_eq!(fast.to_string(), general.to_string(), "{text}");
        }
        for text in [
            "",
            "-",
            ".5",
            "5.",
            "-0",
            "-0.00",
            "+1",
            "1_000",
            "1e5",
            "1.2.3",
            "12a",
            " 1",
            "0.1234567890123456789",
            "99999999999999999999",
            "18446744073709551616",
            "0.00000000000000000001",
            "-.5",
            "--1",
            "0x10",
            "1,5",
            "1 ",
            "\u{661}",
            "0.5\"",
        ] {
            assert_eq!(
                plain_decimal(text),
                None,
                "{text} is left to Decimal::from_str"
            );
        }
        assert_eq!(
            plain_decimal_prefix(b"-12.50\",\"x"),
            Some((dec!(-12.50), 6))
        );
        assert_eq!(plain_decimal_prefix(b"7\""), Some((dec!(7), 1)));
        assert_eq!(plain_decimal_prefix(b"7."), None);
        assert_eq!(Decimal::from_text("-0.00"), Decimal::from_str("-0.00").ok());
        assert_eq!(
            Decimal::from_text("1234567890123456789.5"),
            Some(dec!(1234567890123456789.5))
        );
    }

    /// Every combination of sign, integer part and fraction from a set of awkward pieces: whatever the fast
    /// reader accepts has the value, scale and text of [`Decimal::from_str`], and `from_text` agrees with
    /// `from_str` wherever that succeeds.
    #[test]
    fn plain_decimal_reader_agrees_with_the_general_parser_on_many_shapes() {
        let signs = ["", "-", "+"];
        let ints = [
            "",
            "0",
            "00",
            "1",
            "7259",
            "100",
            "007",
            "123456789",
            "999999999999999999",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "79228162514264337593543950335",
        ];
        let fracs = [
            None,
            Some(""),
            Some("0"),
            Some("00000"),
            Some("5"),
            Some("0275"),
            Some("03992450"),
            Some("36230000"),
            Some("000000000000000001"),
            Some("1234567890"),
            Some("9999999999999999999"),
            Some("0000000000000000000000000001"),
        ];
        let (mut plain, mut total) = (0, 0);
        for sign in signs {
            for int in ints {
                for frac in fracs {
                    let text = match frac {
                        Some(frac) => format!("{sign}{int}.{frac}"),
                        None => format!("{sign}{int}"),
                    };
                    total += 1;
                    let general = Decimal::from_str(&text).ok();
                    if let Some(fast) = plain_decimal(&text) {
                        plain += 1;
                        let general = general.unwrap_or_else(|| panic!("{text}"));
                        assert_eq!(fast, general, "{text}");
                        assert_eq!(fast.scale(), general.scale(), "{text}");
                        assert_eq!(
                            fast.is_sign_negative(),
                            general.is_sign_negative(),
                            "{text}"
                        );
                        assert_eq!(fast.to_string(), general.to_string(), "{text}");
                    }
                    if let Some(general) = general {
                        let read = Decimal::from_text(&text).unwrap_or_else(|| panic!("{text}"));
                        assert_eq!(read.to_string(), general.to_string(), "{text}");
                    }
                }
            }
        }
        assert!(plain > 100 && plain < total, "{plain} of {total} plain");
    }

    #[test]
    fn digit_runs_of_every_length_and_position_are_read() {
        for len in 0..=24 {
            for offset in 0..10 {
                for tail in ["", "\"", ".5", "a", ":", "/", "\u{e9}"] {
                    let digits: String = (0..len)
                        .map(|i| char::from(b'0' + ((i * 7 + 3) % 10) as u8))
                        .collect();
                    let text = format!("{}{digits}{tail}", "x".repeat(offset));
                    let (value, end) = digit_run(text.as_bytes(), offset);
                    assert_eq!(end, offset + len, "{text}");
                    if len <= 19 {
                        let expected = if len == 0 {
                            0
                        } else {
                            digits.parse::<u64>().unwrap()
                        };
                        assert_eq!(value, expected, "{text}");
                    }
                }
            }
        }
        assert_eq!(
            digit_run(b"9999999999999999999", 0),
            (9_999_999_999_999_999_999, 19)
        );
        assert_eq!(digit_run(b"00000000012345678\"", 0), (12_345_678, 17));
    }

    #[test]
    fn decimal_that_is_not_a_number_is_refused_with_the_marker_text() {
        let err = serde_json::from_str::<Row<'_>>(r#"{"d":"abc"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains(EXPECTED_DECIMAL), "{err}");
        assert!(serde_json::from_str::<Row<'_>>(r#"{"d":""}"#).is_err());
        assert!(serde_json::from_str::<Row<'_>>(r#"{"d":null}"#).is_err());
    }

    #[test]
    fn optional_fields_treat_null_and_empty_as_absent() {
        let r = row(r#"{"d":"1","o":"","id":"","s":null}"#);
        assert_eq!((r.o, r.id, r.s), (None, None, None));
        let r = row(r#"{"d":"1","o":null,"id":null}"#);
        assert_eq!((r.o, r.id), (None, None));
        let r = row(r#"{"d":"1"}"#);
        assert_eq!((r.o, r.id), (None, None));
    }

    #[test]
    fn ids_above_2_pow_53_are_exact_from_numbers_and_strings() {
        let r = row(r#"{"d":"1","id":8389765739703625592}"#);
        assert_eq!(r.id, Some(8_389_765_739_703_625_592));
        let r = row(r#"{"d":"1","id":"8082457372019390060"}"#);
        assert_eq!(r.id, Some(8_082_457_372_019_390_060));
        assert!(serde_json::from_str::<Row<'_>>(r#"{"d":"1","id":8.3e18}"#).is_err());
        assert!(serde_json::from_str::<Row<'_>>(r#"{"d":"1","id":-1}"#).is_err());
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let r = row(r#"{"d":"1","s":"BTCUSDT"}"#);
        assert!(matches!(r.s, Some(Cow::Borrowed("BTCUSDT"))));
        let r = row(r#"{"d":"1","s":"\u5e01\u5b89USDT"}"#);
        assert_eq!(r.s.as_deref(), Some("币安USDT"));
        assert!(matches!(r.s, Some(Cow::Owned(_))));
    }
}
