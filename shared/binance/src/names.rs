//! Binance's names and codes → domain names, each failure tied to the field it came from.

use acctmon_domain::{Asset, MarginType, OrderStatus, PositionSide, Side, Symbol};

use crate::ParseError;

/// A required symbol.
pub(crate) fn symbol(
    payload: &'static str,
    field: &'static str,
    s: &str,
) -> Result<Symbol, ParseError> {
    Symbol::new(s).map_err(|e| ParseError::name(payload, field, e))
}

/// A required asset.
pub(crate) fn asset(
    payload: &'static str,
    field: &'static str,
    s: &str,
) -> Result<Asset, ParseError> {
    Asset::new(s).map_err(|e| ParseError::name(payload, field, e))
}

/// An optional asset: absent or empty is `None`.
pub(crate) fn opt_asset(
    payload: &'static str,
    field: &'static str,
    s: Option<&str>,
) -> Result<Option<Asset>, ParseError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => asset(payload, field, s).map(Some),
    }
}

/// `BUY` / `SELL`.
pub(crate) fn side(
    payload: &'static str,
    field: &'static str,
    s: &str,
) -> Result<Side, ParseError> {
    Side::parse(s).map_err(|e| ParseError::name(payload, field, e))
}

/// `BOTH` / `LONG` / `SHORT`.
pub(crate) fn position_side(
    payload: &'static str,
    field: &'static str,
    s: &str,
) -> Result<PositionSide, ParseError> {
    PositionSide::parse(s).map_err(|e| ParseError::name(payload, field, e))
}

/// Margin type in any of Binance's spellings: `cross` / `isolated` (`ACCOUNT_UPDATE`, positionRisk),
/// `CROSSED` / `ISOLATED` (`MARGIN_CALL`). Absent or empty is `None`; anything else is refused, since the
/// set has not changed in years and a new value means the payload is not what we think it is.
pub(crate) fn margin_type(
    payload: &'static str,
    field: &'static str,
    s: Option<&str>,
) -> Result<Option<MarginType>, ParseError> {
    match s {
        None | Some("") => Ok(None),
        Some("cross" | "crossed" | "CROSS" | "CROSSED") => Ok(Some(MarginType::Cross)),
        Some("isolated" | "ISOLATED") => Ok(Some(MarginType::Isolated)),
        Some(other) => Err(ParseError::UnknownValue {
            payload,
            field,
            value: other.to_owned(),
        }),
    }
}

/// Order status `X`; a status this version does not know is [`OrderStatus::Other`] (open set).
pub(crate) fn order_status(s: &str) -> OrderStatus {
    match s {
        "NEW" => OrderStatus::New,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" => OrderStatus::Canceled,
        "EXPIRED" => OrderStatus::Expired,
        "EXPIRED_IN_MATCH" => OrderStatus::ExpiredInMatch,
        _ => OrderStatus::Other,
    }
}

/// A symbol that may be absent or empty (`a.S`, income rows without a symbol).
pub(crate) fn opt_symbol(
    payload: &'static str,
    field: &'static str,
    s: Option<&str>,
) -> Result<Option<Symbol>, ParseError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => symbol(payload, field, s).map(Some),
    }
}
