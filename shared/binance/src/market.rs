//! The mark-price stream (PROTOCOL §5.1): `<symbol>@markPrice[@1s]` and `!markPrice@arr[@1s]`, raw or in
//! the combined-stream wrapper. Wire mirrors first, then the parser.

use std::borrow::Cow;

use acctmon_domain::{MarkPrice, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ParseError;
use crate::names::symbol;
use crate::scalar::{opt_str, read, read_opt};

/// Event name of [`MarkPriceUpdateEvent`].
pub const MARK_PRICE_UPDATE: &str = "markPriceUpdate";

/// `markPriceUpdate`: one symbol's mark price, index price and funding rate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MarkPriceUpdateEvent<'a> {
    /// `e`: `"markPriceUpdate"`.
    #[serde(rename = "e", borrow)]
    pub event_type: Cow<'a, str>,
    /// `E`: event time, ms.
    #[serde(rename = "E", deserialize_with = "read")]
    pub event_time: i64,
    /// `s`: symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// `p`: mark price.
    #[serde(rename = "p", deserialize_with = "read")]
    pub mark_price: Decimal,
    /// `ap`: mark price moving average (added 2026-03-16).
    #[serde(rename = "ap", default, deserialize_with = "read_opt")]
    pub mark_price_average: Option<Decimal>,
    /// `i`: index price.
    #[serde(rename = "i", default, deserialize_with = "read_opt")]
    pub index_price: Option<Decimal>,
    /// `P`: estimated settle price (meaningful in the last hour before settlement).
    #[serde(rename = "P", default, deserialize_with = "read_opt")]
    pub estimated_settle_price: Option<Decimal>,
    /// `r`: funding rate.
    #[serde(rename = "r", default, deserialize_with = "read_opt")]
    pub funding_rate: Option<Decimal>,
    /// `T`: next funding time, ms (0 for contracts without funding).
    #[serde(rename = "T", default, deserialize_with = "read_opt")]
    pub next_funding_time: Option<i64>,
    /// `st`: 1 = USDⓈ-M, 2 = COIN-M (after the 2026 "CM migration").
    #[serde(rename = "st", default, borrow, deserialize_with = "opt_str")]
    pub stream_type: Option<Cow<'a, str>>,
}

/// The combined-stream wrapper `{"stream":"<name>","data":<payload>}` sent on `/stream` connections.
/// `data` is kept as raw JSON (an object, or an array for `!markPrice@arr`) until its type is known.
#[derive(Debug, Clone, Deserialize)]
pub struct CombinedFrame<'a> {
    /// `stream`: the stream name, e.g. `btcusdt@markPrice`.
    #[serde(borrow)]
    pub stream: Cow<'a, str>,
    /// `data`: the payload.
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// `markPriceUpdate` → [`MarkPrice`] at the event time. A next funding time of 0 means none.
pub fn parse_mark_price_update(event: &MarkPriceUpdateEvent<'_>) -> Result<MarkPrice, ParseError> {
    Ok(MarkPrice {
        symbol: symbol(MARK_PRICE_UPDATE, "s", &event.symbol)?,
        mark_price: event.mark_price,
        index_price: event.index_price,
        funding_rate: event.funding_rate,
        next_funding_time: event.next_funding_time.filter(|t| *t != 0).map(Timestamp),
        time: Timestamp(event.event_time),
    })
}
