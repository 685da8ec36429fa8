//! Stream frames: raw text (or an already parsed JSON value) → domain events.
//!
//! A frame is one of: a user-data event object, a `markPriceUpdate` object, the combined-stream wrapper
//! `{"stream":…,"data":…}` whose `data` is an object or an array, or a JSON array of any of these.
//!
//! The hot path is a raw `/ws` frame such as one `ORDER_TRADE_UPDATE`. Binance writes `"e"` as the first
//! key, so the event name is read from the first bytes and the text is then read once, straight into the
//! borrowed wire struct of that event: no `serde_json::Value`, no internally tagged enum (both would buffer
//! the whole object). The reading is done by [`crate::reader`], with serde_json taking over for anything
//! unusual and for every error. `ORDER_TRADE_UPDATE`, most of the traffic, is recognised by its first
//! bytes and read by `crate::user::hot` straight into its domain events, skipping the wire struct; what
//! that reader gives up on takes the wire-struct path. When `"e"` is not the first key the object is
//! scanned once more to find it, which costs a second pass but no allocation.

use std::borrow::Cow;

use acctmon_domain::{Account, Event};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::ParseError;
use crate::market::{MARK_PRICE_UPDATE, MarkPriceUpdateEvent, parse_mark_price_update};
use crate::reader;
use crate::scalar::opt_str;
use crate::user::hot::{self, Fresh, Names};
use crate::user::{
    ACCOUNT_CONFIG_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE, CONDITIONAL_ORDER_TRIGGER_REJECT,
    GRID_UPDATE, LISTEN_KEY_EXPIRED, MARGIN_CALL, ORDER_TRADE_UPDATE, OrderTradeUpdateEvent,
    STRATEGY_UPDATE, TRADE_LITE, TradeLiteEvent, UserEvent, parse_order_trade_update,
    parse_trade_lite, push_user_event,
};

/// Decodes one frame of text into domain events, in the order they appear.
///
/// ```
/// use acctmon_binance::decode_frame;
/// use acctmon_domain::{Account, Event};
///
/// let account = Account::new("main").unwrap();
/// let text = r#"{"e":"TRADE_LITE","E":1,"T":1,"s":"BTCUSDT","q":"0.001","p":"0","m":false,
///                "c":"x","S":"BUY","L":"64089.20","l":"0.001","t":7,"i":8389765739703625592}"#;
/// let events = decode_frame(&account, text).unwrap();
/// assert!(matches!(&events[..], [Event::Fill(f)] if f.order_id == 8389765739703625592));
/// ```
pub fn decode_frame(account: &Account, text: &str) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::with_capacity(2);
    decode_frame_into(account, text, &mut out)?;
    Ok(out)
}

/// Like [`decode_frame`], appending to `out` so that a caller can reuse one vector. On error `out` is left
/// as it was: a frame is decoded whole or not at all.
pub fn decode_frame_into(
    account: &Account,
    text: &str,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    decode_whole(account, text, &mut Fresh, out)
}

/// [`decode_frame_into`] with the names of the hot path taken from `names`.
pub(crate) fn decode_whole(
    account: &Account,
    text: &str,
    names: &mut impl Names,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    let start = out.len();
    let result = decode_text(account, text, names, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decodes a frame that has already been parsed into a [`serde_json::Value`] (same frames as
/// [`decode_frame`]).
pub fn decode_value(account: &Account, value: &Value) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::with_capacity(2);
    decode_value_into(account, value, &mut out)?;
    Ok(out)
}

/// Reads any wire type from JSON text, with the errors of this crate: a syntax error is
/// [`ParseError::Json`], a bad decimal names its field, anything else names the path that failed.
///
/// ```
/// use acctmon_binance::{decode_json, rest::UserTrade};
///
/// let text = r#"[{"symbol":"BTCUSDT","id":"272536245","orderId":"3524852987","side":"BUY",
///   "price":"36567.10","qty":"0.010","realizedPnl":"0","commission":"0.14626840",
///   "commissionAsset":"USDT","time":"1699972836419","positionSide":"BOTH","maker":false}]"#;
/// let trades: Vec<UserTrade> = decode_json(text).unwrap();
/// assert_eq!(trades[0].order_id, 3524852987);
/// ```
pub fn decode_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ParseError> {
    text.load(std::any::type_name::<T>())
}

impl<'a> UserEvent<'a> {
    /// Reads one user-data event object, choosing the wire type by its `e`.
    pub fn from_json(text: &'a str) -> Result<Self, ParseError> {
        let name = match leading_event_name(text) {
            Some(name) => Cow::Borrowed(name),
            None => match text.load::<Envelope<'_>>("user-data event")?.event {
                Some(name) => name,
                None => return Err(ParseError::NotAnEvent("a JSON object without `e`")),
            },
        };
        Self::load(text, &name)
    }

    /// Reads the wire type that the event name `name` calls for from `source`.
    pub(crate) fn load<S: Source<'a>>(source: S, name: &str) -> Result<Self, ParseError> {
        Ok(match name {
            ORDER_TRADE_UPDATE => UserEvent::OrderTradeUpdate(load_order_trade_update(source)?),
            TRADE_LITE => UserEvent::TradeLite(source.load(TRADE_LITE)?),
            ACCOUNT_UPDATE => UserEvent::AccountUpdate(source.load(ACCOUNT_UPDATE)?),
            MARGIN_CALL => UserEvent::MarginCall(source.load(MARGIN_CALL)?),
            ACCOUNT_CONFIG_UPDATE => {
                UserEvent::AccountConfigUpdate(source.load(ACCOUNT_CONFIG_UPDATE)?)
            }
            ALGO_UPDATE => UserEvent::AlgoUpdate(source.load(ALGO_UPDATE)?),
            CONDITIONAL_ORDER_TRIGGER_REJECT => UserEvent::ConditionalOrderTriggerReject(
                source.load(CONDITIONAL_ORDER_TRIGGER_REJECT)?,
            ),
            STRATEGY_UPDATE => UserEvent::StrategyUpdate(source.load(STRATEGY_UPDATE)?),
            GRID_UPDATE => UserEvent::GridUpdate(source.load(GRID_UPDATE)?),
            LISTEN_KEY_EXPIRED => UserEvent::ListenKeyExpired(source.load(LISTEN_KEY_EXPIRED)?),
            _ => UserEvent::Unknown(source.load("unknown event")?),
        })
    }
}

/// Where a wire type is read from: JSON text or a parsed [`Value`]. Errors are explained the same way.
pub(crate) trait Source<'a>: Copy {
    /// Reads `T`; `payload` names it in errors.
    fn load<T: Deserialize<'a>>(self, payload: &'static str) -> Result<T, ParseError>;

    /// The text, when the source is text (for the hand-written hot path).
    fn text(self) -> Option<&'a str>;
}

impl<'a> Source<'a> for &'a str {
    /// The fast reader first; serde_json when the text is outside what it handles, or wrong.
    fn load<T: Deserialize<'a>>(self, payload: &'static str) -> Result<T, ParseError> {
        match reader::from_str(self) {
            Some(value) => Ok(value),
            None => serde_json::from_str(self)
                .map_err(|e| ParseError::explain_text::<T>(payload, self, e)),
        }
    }

    fn text(self) -> Option<&'a str> {
        Some(self)
    }
}

impl<'a> Source<'a> for &'a Value {
    fn load<T: Deserialize<'a>>(self, payload: &'static str) -> Result<T, ParseError> {
        T::deserialize(self).map_err(|e| ParseError::explain_value::<T>(payload, self, e))
    }

    fn text(self) -> Option<&'a str> {
        None
    }
}

/// `ORDER_TRADE_UPDATE` by hand when possible, else through serde.
fn load_order_trade_update<'a, S: Source<'a>>(
    source: S,
) -> Result<OrderTradeUpdateEvent<'a>, ParseError> {
    match source.text().and_then(OrderTradeUpdateEvent::read_fast) {
        Some(event) => Ok(event),
        None => source.load(ORDER_TRADE_UPDATE),
    }
}

/// The keys that say what an object is, when `"e"` is not its first key. Everything else is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    /// `e`: event name.
    #[serde(rename = "e", default, borrow, deserialize_with = "opt_str")]
    event: Option<Cow<'a, str>>,
    /// `data`: the payload of a combined-stream wrapper.
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// How a raw `ORDER_TRADE_UPDATE` frame starts: checked before anything else, it is most of the traffic.
const ORDER_TRADE_UPDATE_START: &[u8] = b"{\"e\":\"ORDER_TRADE_UPDATE\"";

fn decode_text(
    account: &Account,
    text: &str,
    names: &mut impl Names,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    if text.as_bytes().starts_with(ORDER_TRADE_UPDATE_START) {
        return decode_event(account, text, ORDER_TRADE_UPDATE, names, out);
    }
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {
            if let Some(name) = leading_event_name(text) {
                return decode_event(account, text, name, names, out);
            }
            let envelope: Envelope<'_> = text.load("stream frame")?;
            match (envelope.event, envelope.data) {
                (Some(name), _) => decode_event(account, text, &name, names, out),
                (None, Some(data)) => decode_text(account, data.get(), names, out),
                (None, None) => Err(ParseError::NotAnEvent(
                    "a JSON object without `e` or `data`",
                )),
            }
        }
        Some(b'[') => {
            let elements: Vec<&RawValue> = text.load("JSON array")?;
            for (index, element) in elements.iter().enumerate() {
                decode_text(account, element.get(), names, out).map_err(|e| {
                    ParseError::Element {
                        index,
                        source: Box::new(e),
                    }
                })?;
            }
            Ok(())
        }
        _ => match serde_json::from_str::<IgnoredAny>(text) {
            Err(e) => Err(ParseError::Json(e)),
            Ok(_) => Err(ParseError::NotAnEvent(
                "a JSON value that is neither an object nor an array",
            )),
        },
    }
}

fn decode_value_into(
    account: &Account,
    value: &Value,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    match value {
        Value::Object(map) => match (map.get("e"), map.get("data")) {
            (Some(Value::String(name)), _) => decode_event(account, value, name, &mut Fresh, out),
            (Some(_), _) => Err(ParseError::NotAnEvent(
                "an object whose `e` is not a string",
            )),
            (None, Some(data)) => decode_value_into(account, data, out),
            (None, None) => Err(ParseError::NotAnEvent(
                "a JSON object without `e` or `data`",
            )),
        },
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                decode_value_into(account, element, out).map_err(|e| ParseError::Element {
                    index,
                    source: Box::new(e),
                })?;
            }
            Ok(())
        }
        _ => Err(ParseError::NotAnEvent(
            "a JSON value that is neither an object nor an array",
        )),
    }
}

/// Decodes one event object whose name is known. The hot events skip the [`UserEvent`] wrapper, which
/// would copy them once more.
fn decode_event<'a, S: Source<'a>>(
    account: &Account,
    source: S,
    name: &str,
    names: &mut impl Names,
    out: &mut Vec<Event>,
) -> Result<(), ParseError> {
    match name {
        ORDER_TRADE_UPDATE => {
            // The hot path first; whatever it leaves goes through the wire struct, which decides.
            if let Some(text) = source.text()
                && hot::push_order_trade_update(account, text, names, out).is_ok()
            {
                return Ok(());
            }
            let (fill, order) =
                parse_order_trade_update(account, &load_order_trade_update(source)?)?;
            out.extend(fill.map(Event::Fill));
            out.push(Event::Order(order));
        }
        TRADE_LITE => {
            let event: TradeLiteEvent<'_> = source.load(TRADE_LITE)?;
            out.push(Event::Fill(parse_trade_lite(account, &event)?));
        }
        MARK_PRICE_UPDATE => {
            let event: MarkPriceUpdateEvent<'_> = source.load(MARK_PRICE_UPDATE)?;
            out.push(Event::Mark(parse_mark_price_update(&event)?));
        }
        _ => push_user_event(account, &UserEvent::load(source, name)?, out)?,
    }
    Ok(())
}

/// The event name when the object's first key is `"e"` with a plain string value, as Binance sends it:
/// `{"e":"ORDER_TRADE_UPDATE",…` (whitespace allowed). `None` sends the caller to the slow path.
fn leading_event_name(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    for token in [&b"{"[..], b"\"e\"", b":", b"\""] {
        i = skip_whitespace(bytes, i);
        i = bytes
            .get(i..)?
            .starts_with(token)
            .then_some(i + token.len())?;
    }
    let len = bytes
        .get(i..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\')?;
    // An escape in the name: let serde read it.
    if bytes.get(i + len) != Some(&b'"') {
        return None;
    }
    text.get(i..i + len)
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::leading_event_name;

    #[test]
    fn event_name_is_read_from_the_first_key_only() {
        assert_eq!(
            leading_event_name(r#"{"e":"TRADE_LITE","E":1}"#),
            Some("TRADE_LITE")
        );
        assert_eq!(
            leading_event_name("{\n  \"e\" : \"ACCOUNT_UPDATE\",\n"),
            Some("ACCOUNT_UPDATE")
        );
        assert_eq!(leading_event_name(r#"{"E":1,"e":"TRADE_LITE"}"#), None);
        assert_eq!(
            leading_event_name(r#"{"stream":"x","data":{"e":"a"}}"#),
            None
        );
        assert_eq!(leading_event_name(r#"{"ev":"x"}"#), None);
        assert_eq!(leading_event_name(r#"{"e":1}"#), None);
        assert_eq!(leading_event_name(r#"{"e":"A\u0042"}"#), None);
        assert_eq!(leading_event_name(r#"{"e":"unterminated"#), None);
        assert_eq!(leading_event_name(""), None);
    }
}
