//! The hot path: one `ORDER_TRADE_UPDATE` text → its domain events in one pass over the text.
//!
//! [`OrderTradeUpdateEvent`](super::OrderTradeUpdateEvent) mirrors all ~40 fields of the order; the
//! parser needs 22 of them. This reader keeps only those, checks the others the way the serde path would
//! (a value serde refuses makes it give up) without keeping them, and builds the [`Fill`] and
//! [`OrderUpdate`] of [`parse_order_trade_update`](super::parse_order_trade_update) straight from what it
//! read. Whenever it gives up (anything unusual, any error, including a name the parser would refuse),
//! the caller decodes the text through the wire struct, which decides; so on success it yields exactly
//! what that path yields (tested on every fixture and on thousands of edited payloads).

use acctmon_domain::{
    Account, Asset, Commission, Event, Fill, FillSource, OrderUpdate, PositionSide, Side, Symbol,
    Timestamp,
};
use rust_decimal::Decimal;

use crate::names::order_status;
use crate::reader::{Cursor, ExpectedKey, GiveUp};

/// Where the names of an event come from: made fresh, or shared with earlier events by a cache. An empty
/// name, which the domain refuses, gives up.
pub(crate) trait Names {
    /// The symbol named `name`.
    fn symbol(&mut self, name: &str) -> Result<Symbol, GiveUp>;
    /// The asset named `name`.
    fn asset(&mut self, name: &str) -> Result<Asset, GiveUp>;
}

/// No cache: every name is a new allocation.
pub(crate) struct Fresh;

impl Names for Fresh {
    #[inline]
    fn symbol(&mut self, name: &str) -> Result<Symbol, GiveUp> {
        Symbol::new(name).map_err(|_| GiveUp)
    }

    #[inline]
    fn asset(&mut self, name: &str) -> Result<Asset, GiveUp> {
        Asset::new(name).map_err(|_| GiveUp)
    }
}

/// The fields of `ORDER_TRADE_UPDATE.o` that the domain events need.
struct Order<'a> {
    symbol: &'a str,
    client_order_id: &'a str,
    side: &'a str,
    order_type: &'a str,
    execution: &'a str,
    status: &'a str,
    position_side: &'a str,
    commission_asset: Option<&'a str>,
    orig_qty: Decimal,
    price: Decimal,
    avg_price: Decimal,
    last_qty: Decimal,
    cumulative_qty: Decimal,
    last_price: Decimal,
    commission: Option<Decimal>,
    realized: Option<Decimal>,
    order_id: u64,
    trade_id: u64,
    trade_time: i64,
    maker: bool,
    reduce_only: bool,
}

/// The known keys of `o`, each with its quotes and colon as it appears in compact text, in the order
/// Binance writes them (fields added over the years come last). A field's index here is its id.
const KEYS: [ExpectedKey; 39] = [
    ExpectedKey::new(b"s"),
    ExpectedKey::new(b"c"),
    ExpectedKey::new(b"S"),
    ExpectedKey::new(b"o"),
    ExpectedKey::new(b"f"),
    ExpectedKey::new(b"q"),
    ExpectedKey::new(b"p"),
    ExpectedKey::new(b"ap"),
    ExpectedKey::new(b"sp"),
    ExpectedKey::new(b"x"),
    ExpectedKey::new(b"X"),
    ExpectedKey::new(b"i"),
    ExpectedKey::new(b"l"),
    ExpectedKey::new(b"z"),
    ExpectedKey::new(b"L"),
    ExpectedKey::new(b"n"),
    ExpectedKey::new(b"N"),
    ExpectedKey::new(b"T"),
    ExpectedKey::new(b"t"),
    ExpectedKey::new(b"b"),
    ExpectedKey::new(b"a"),
    ExpectedKey::new(b"m"),
    ExpectedKey::new(b"R"),
    ExpectedKey::new(b"wt"),
    ExpectedKey::new(b"ot"),
    ExpectedKey::new(b"ps"),
    ExpectedKey::new(b"cp"),
    ExpectedKey::new(b"rp"),
    ExpectedKey::new(b"pP"),
    ExpectedKey::new(b"si"),
    ExpectedKey::new(b"ss"),
    ExpectedKey::new(b"V"),
    ExpectedKey::new(b"pm"),
    ExpectedKey::new(b"gtd"),
    ExpectedKey::new(b"er"),
    ExpectedKey::new(b"st"),
    ExpectedKey::new(b"AP"),
    ExpectedKey::new(b"cr"),
    ExpectedKey::new(b"M"),
];

/// The keys of the event, in Binance's order: `e`, `T`, `E`, `o`.
const TOP_KEYS: [ExpectedKey; 4] = [
    ExpectedKey::new(b"e"),
    ExpectedKey::new(b"T"),
    ExpectedKey::new(b"E"),
    ExpectedKey::new(b"o"),
];

/// Field ids: indexes into [`KEYS`].
mod id {
    pub(super) const SYMBOL: usize = 0;
    pub(super) const CLIENT_ORDER_ID: usize = 1;
    pub(super) const SIDE: usize = 2;
    pub(super) const ORDER_TYPE: usize = 3;
    pub(super) const TIME_IN_FORCE: usize = 4;
    pub(super) const ORIG_QTY: usize = 5;
    pub(super) const PRICE: usize = 6;
    pub(super) const AVG_PRICE: usize = 7;
    pub(super) const STOP_PRICE: usize = 8;
    pub(super) const EXECUTION: usize = 9;
    pub(super) const STATUS: usize = 10;
    pub(super) const ORDER_ID: usize = 11;
    pub(super) const LAST_QTY: usize = 12;
    pub(super) const CUMULATIVE_QTY: usize = 13;
    pub(super) const LAST_PRICE: usize = 14;
    pub(super) const COMMISSION: usize = 15;
    pub(super) const COMMISSION_ASSET: usize = 16;
    pub(super) const TRADE_TIME: usize = 17;
    pub(super) const TRADE_ID: usize = 18;
    pub(super) const BIDS_NOTIONAL: usize = 19;
    pub(super) const ASK_NOTIONAL: usize = 20;
    pub(super) const MAKER: usize = 21;
    pub(super) const REDUCE_ONLY: usize = 22;
    pub(super) const WORKING_TYPE: usize = 23;
    pub(super) const ORIGINAL_ORDER_TYPE: usize = 24;
    pub(super) const POSITION_SIDE: usize = 25;
    pub(super) const CLOSE_POSITION: usize = 26;
    pub(super) const REALIZED: usize = 27;
    pub(super) const PRICE_PROTECT: usize = 28;
    pub(super) const SI: usize = 29;
    pub(super) const SS: usize = 30;
    pub(super) const STP_MODE: usize = 31;
    pub(super) const PRICE_MATCH: usize = 32;
    pub(super) const GOOD_TILL_DATE: usize = 33;
    pub(super) const EXPIRY_REASON: usize = 34;
    pub(super) const STRATEGY_TYPE: usize = 35;
    pub(super) const ACTIVATION_PRICE: usize = 36;
    pub(super) const CALLBACK_RATE: usize = 37;
    pub(super) const MODIFY_ID: usize = 38;
    /// Any other key.
    pub(super) const UNKNOWN: usize = 39;

    /// The fields of `OrderTradeData` without a default, one bit per id.
    pub(super) const REQUIRED: u64 = 1 << SYMBOL
        | 1 << CLIENT_ORDER_ID
        | 1 << SIDE
        | 1 << ORDER_TYPE
        | 1 << ORIG_QTY
        | 1 << PRICE
        | 1 << AVG_PRICE
        | 1 << EXECUTION
        | 1 << STATUS
        | 1 << ORDER_ID
        | 1 << LAST_QTY
        | 1 << CUMULATIVE_QTY
        | 1 << LAST_PRICE
        | 1 << TRADE_TIME
        | 1 << TRADE_ID
        | 1 << MAKER
        | 1 << REDUCE_ONLY
        | 1 << POSITION_SIDE;
}

/// The id of a key read in full (when it was not the one expected).
fn key_id(key: &[u8]) -> usize {
    match key {
        [b's'] => id::SYMBOL,
        [b'c'] => id::CLIENT_ORDER_ID,
        [b'S'] => id::SIDE,
        [b'o'] => id::ORDER_TYPE,
        [b'f'] => id::TIME_IN_FORCE,
        [b'q'] => id::ORIG_QTY,
        [b'p'] => id::PRICE,
        [b'x'] => id::EXECUTION,
        [b'X'] => id::STATUS,
        [b'i'] => id::ORDER_ID,
        [b'l'] => id::LAST_QTY,
        [b'z'] => id::CUMULATIVE_QTY,
        [b'L'] => id::LAST_PRICE,
        [b'n'] => id::COMMISSION,
        [b'N'] => id::COMMISSION_ASSET,
        [b'T'] => id::TRADE_TIME,
        [b't'] => id::TRADE_ID,
        [b'b'] => id::BIDS_NOTIONAL,
        [b'a'] => id::ASK_NOTIONAL,
        [b'm'] => id::MAKER,
        [b'R'] => id::REDUCE_ONLY,
        [b'V'] => id::STP_MODE,
        [b'M'] => id::MODIFY_ID,
        [b'a', b'p'] => id::AVG_PRICE,
        [b's', b'p'] => id::STOP_PRICE,
        [b'w', b't'] => id::WORKING_TYPE,
        [b'o', b't'] => id::ORIGINAL_ORDER_TYPE,
        [b'p', b's'] => id::POSITION_SIDE,
        [b'c', b'p'] => id::CLOSE_POSITION,
        [b'r', b'p'] => id::REALIZED,
        [b'p', b'P'] => id::PRICE_PROTECT,
        [b's', b'i'] => id::SI,
        [b's', b's'] => id::SS,
        [b'p', b'm'] => id::PRICE_MATCH,
        [b'e', b'r'] => id::EXPIRY_REASON,
        [b's', b't'] => id::STRATEGY_TYPE,
        [b'A', b'P'] => id::ACTIVATION_PRICE,
        [b'c', b'r'] => id::CALLBACK_RATE,
        [b'g', b't', b'd'] => id::GOOD_TILL_DATE,
        _ => id::UNKNOWN,
    }
}

/// Marks field `id` as seen; a key seen twice gives up (serde's derive refuses it).
#[inline(always)]
fn once(seen: &mut u64, id: usize) -> Result<(), GiveUp> {
    let bit = 1 << id;
    if *seen & bit != 0 {
        return Err(GiveUp);
    }
    *seen |= bit;
    Ok(())
}

/// Decodes `text`, one `ORDER_TRADE_UPDATE` object, onto `out`: the fill (if any), then the order update.
/// On [`GiveUp`] `out` is untouched and the caller must decode the text through the wire struct.
pub(crate) fn push_order_trade_update(
    account: &Account,
    text: &str,
    names: &mut impl Names,
    out: &mut Vec<Event>,
) -> Result<(), GiveUp> {
    let mut cursor = Cursor::new(text);
    let mut order = Order {
        symbol: "",
        client_order_id: "",
        side: "",
        order_type: "",
        execution: "",
        status: "",
        position_side: "",
        commission_asset: None,
        orig_qty: Decimal::ZERO,
        price: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        last_qty: Decimal::ZERO,
        cumulative_qty: Decimal::ZERO,
        last_price: Decimal::ZERO,
        commission: None,
        realized: None,
        order_id: 0,
        trade_id: 0,
        trade_time: 0,
        maker: false,
        reduce_only: false,
    };
    let (mut event_time, mut transaction_time) = (0, 0);
    // `e`, `T`, `E`, `o` (in Binance's order): all required.
    let (mut seen, all) = (0, 0b1111);
    let mut expected = 0;
    if cursor.open()? {
        loop {
            let field = match TOP_KEYS.get(expected) {
                Some(key) if cursor.key_is(key) => expected,
                _ => match cursor.key()? {
                    [b'e'] => 0,
                    [b'T'] => 1,
                    [b'E'] => 2,
                    [b'o'] => 3,
                    _ => TOP_KEYS.len(),
                },
            };
            match field {
                0 => {
                    cursor.str()?;
                }
                1 => transaction_time = cursor.i64()?,
                2 => event_time = cursor.i64()?,
                3 => read_order(&mut cursor, &mut order)?,
                _ => cursor.skip()?,
            }
            if field < TOP_KEYS.len() {
                once(&mut seen, field)?;
                expected = field + 1;
            }
            if !cursor.more()? {
                break;
            }
        }
    }
    cursor.finish()?;
    if seen != all {
        return Err(GiveUp);
    }
    push_events(account, &order, event_time, transaction_time, names, out)
}

/// The fields of `o`, checked like the derived `Deserialize` of `OrderTradeData` checks them.
///
/// While the keys come in the order of [`KEYS`] (Binance's), they are read by straight-line code, one
/// comparison per key. From the first key out of that order on, a loop takes over: it reads any key,
/// compares each first with the one that followed the previous key in [`KEYS`], and refuses repeats.
#[inline(always)]
fn read_order<'a>(cursor: &mut Cursor<'a>, o: &mut Order<'a>) -> Result<(), GiveUp> {
    let mut seen: u64 = 0;
    if !cursor.open()? {
        return Err(GiveUp);
    }
    /// One field in order: `break 'fast` with `true` at a key out of order (not consumed), with
    /// `false` at the end of the object.
    macro_rules! in_order {
        ($($field:expr),* $(,)?) => {
            'fast: {
                $(
                    if !cursor.key_is(&KEYS[$field]) {
                        break 'fast true;
                    }
                    read_field(cursor, o, $field)?;
                    seen |= 1 << $field;
                    if !cursor.more()? {
                        break 'fast false;
                    }
                )*
                true
            }
        };
    }
    let rest = in_order!(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
    );
    if rest {
        let mut expected = seen.trailing_ones() as usize;
        loop {
            let field = match KEYS.get(expected) {
                Some(key) if cursor.key_is(key) => expected,
                _ => key_id(cursor.key()?),
            };
            if field == id::UNKNOWN {
                cursor.skip()?;
            } else {
                once(&mut seen, field)?;
                expected = field + 1;
                read_field(cursor, o, field)?;
            }
            if !cursor.more()? {
                break;
            }
        }
    }
    if seen & id::REQUIRED != id::REQUIRED {
        return Err(GiveUp);
    }
    Ok(())
}

/// The value of the known field `field` of `o`.
#[inline(always)]
fn read_field<'a>(cursor: &mut Cursor<'a>, o: &mut Order<'a>, field: usize) -> Result<(), GiveUp> {
    match field {
        id::SYMBOL => o.symbol = cursor.str()?,
        id::CLIENT_ORDER_ID => o.client_order_id = cursor.str()?,
        id::SIDE => o.side = cursor.str()?,
        id::ORDER_TYPE => o.order_type = cursor.str()?,
        id::ORIG_QTY => o.orig_qty = cursor.decimal()?,
        id::PRICE => o.price = cursor.decimal()?,
        id::AVG_PRICE => o.avg_price = cursor.decimal()?,
        id::EXECUTION => o.execution = cursor.str()?,
        id::STATUS => o.status = cursor.str()?,
        id::ORDER_ID => o.order_id = cursor.u64()?,
        id::LAST_QTY => o.last_qty = cursor.decimal()?,
        id::CUMULATIVE_QTY => o.cumulative_qty = cursor.decimal()?,
        id::LAST_PRICE => o.last_price = cursor.decimal()?,
        id::COMMISSION => o.commission = cursor.opt_decimal()?,
        id::COMMISSION_ASSET => o.commission_asset = cursor.opt_str()?,
        id::TRADE_TIME => o.trade_time = cursor.i64()?,
        id::TRADE_ID => o.trade_id = cursor.u64()?,
        id::MAKER => o.maker = cursor.bool()?,
        id::REDUCE_ONLY => o.reduce_only = cursor.bool()?,
        id::POSITION_SIDE => o.position_side = cursor.str()?,
        id::REALIZED => o.realized = cursor.opt_decimal()?,
        // Not needed by the events, but checked as the serde path would check them.
        id::STOP_PRICE
        | id::BIDS_NOTIONAL
        | id::ASK_NOTIONAL
        | id::ACTIVATION_PRICE
        | id::CALLBACK_RATE => {
            cursor.opt_decimal()?;
        }
        id::TIME_IN_FORCE
        | id::WORKING_TYPE
        | id::ORIGINAL_ORDER_TYPE
        | id::STP_MODE
        | id::PRICE_MATCH
        | id::EXPIRY_REASON
        | id::MODIFY_ID
        | id::STRATEGY_TYPE => {
            cursor.opt_str()?;
        }
        id::CLOSE_POSITION | id::PRICE_PROTECT => {
            cursor.opt_bool()?;
        }
        id::SI | id::SS | id::GOOD_TILL_DATE => {
            cursor.opt_i64()?;
        }
        _ => return Err(GiveUp),
    }
    Ok(())
}

/// What `parse_order_trade_update` builds from the same fields; a name it would refuse gives up.
#[inline(always)]
fn push_events(
    account: &Account,
    o: &Order<'_>,
    event_time: i64,
    transaction_time: i64,
    names: &mut impl Names,
    out: &mut Vec<Event>,
) -> Result<(), GiveUp> {
    let side = match o.side {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(GiveUp),
    };
    let position_side = PositionSide::parse(o.position_side).map_err(|_| GiveUp)?;
    let event_time = Timestamp(event_time);
    let is_fill = matches!(o.execution, "TRADE" | "CALCULATED") && o.last_qty > Decimal::ZERO;
    let symbol = names.symbol(o.symbol)?;
    let commission = match (is_fill, o.commission_asset, o.commission) {
        (true, Some(name), Some(amount)) => Some(Commission {
            asset: names.asset(name)?,
            amount,
        }),
        _ => None,
    };
    // Nothing fails from here on: `out` is only touched once the events are certain.
    out.reserve(2);
    if is_fill {
        out.push(Event::Fill(Fill {
            account: account.clone(),
            symbol: symbol.clone(),
            trade_id: o.trade_id,
            order_id: o.order_id,
            client_order_id: Some(o.client_order_id.to_owned()),
            side,
            position_side: Some(position_side),
            price: o.last_price,
            qty: o.last_qty,
            commission,
            realized_pnl: o.realized,
            margin_asset: None,
            maker: o.maker,
            time: Timestamp(o.trade_time),
            event_time,
            source: FillSource::OrderUpdate,
        }));
    }
    out.push(Event::Order(OrderUpdate {
        account: account.clone(),
        symbol,
        order_id: o.order_id,
        client_order_id: o.client_order_id.to_owned(),
        side,
        position_side,
        order_type: o.order_type.to_owned(),
        execution: o.execution.to_owned(),
        status: order_status(o.status),
        orig_qty: o.orig_qty,
        price: o.price,
        avg_price: o.avg_price,
        filled_qty: o.cumulative_qty,
        reduce_only: o.reduce_only,
        time: Timestamp(transaction_time),
        event_time,
    }));
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    //! The hot path against the serde path (wire struct + `parse_order_trade_update`) on every fixture and
    //! on thousands of edited payloads: whenever the hot path succeeds, it yields exactly the serde path's
    //! events; whatever it gives up on, `decode_frame` still yields the serde path's events or error.

    use std::fmt::Write as _;

    use acctmon_domain::{Account, Event};
    use serde::Deserialize;
    use serde::de::{MapAccess, Visitor};
    use serde_json::value::RawValue;

    use super::{Fresh, push_order_trade_update};
    use crate::user::{ORDER_TRADE_UPDATE, OrderTradeUpdateEvent, parse_order_trade_update};
    use crate::{Decoder, ParseError, decode_frame};

    /// An object's entries in their order, values as raw JSON text.
    struct Entries(Vec<(String, String)>);

    /// Key and raw value.
    type Entry = (String, String);

    impl<'de> Deserialize<'de> for Entries {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct EntriesVisitor;
            impl<'de> Visitor<'de> for EntriesVisitor {
                type Value = Entries;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                    let mut entries = Vec::new();
                    while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                        entries.push((key, value.get().to_owned()));
                    }
                    Ok(Entries(entries))
                }
            }
            deserializer.deserialize_map(EntriesVisitor)
        }
    }

    /// An object's text from its entries.
    fn object(entries: &[(String, String)]) -> String {
        let mut text = String::from("{");
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{}:{value}", serde_json::to_string(key).unwrap());
        }
        text.push('}');
        text
    }

    use crate::user::compact_text::compact;

    /// The `ORDER_TRADE_UPDATE` objects in a JSON text (itself, array elements, wrapper `data`), as they
    /// are written there.
    fn order_trade_updates(text: &str, found: &mut Vec<String>) {
        if let Ok(items) = serde_json::from_str::<Vec<Box<RawValue>>>(text) {
            for item in items {
                order_trade_updates(item.get(), found);
            }
        } else if let Ok(Entries(entries)) = serde_json::from_str::<Entries>(text) {
            let name = format!("\"{ORDER_TRADE_UPDATE}\"");
            if entries.iter().any(|(k, v)| k == "e" && *v == name) {
                found.push(text.to_owned());
            } else if let Some((_, data)) = entries.iter().find(|(k, _)| k == "data") {
                order_trade_updates(data, found);
            }
        }
    }

    /// Every `ORDER_TRADE_UPDATE` of `test_data/`: as written (pretty), compact, and with sorted keys.
    fn fixtures() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data");
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut found = Vec::new();
            order_trade_updates(&std::fs::read_to_string(&path).unwrap(), &mut found);
            for (i, text) in found.into_iter().enumerate() {
                let sorted = serde_json::from_str::<serde_json::Value>(&text).unwrap();
                texts.push((format!("{name}[{i}] compact"), compact(&text)));
                texts.push((format!("{name}[{i}] sorted"), sorted.to_string()));
                texts.push((format!("{name}[{i}] pretty"), text));
            }
        }
        texts
    }

    fn account() -> Account {
        Account::new("main").unwrap()
    }

    /// The serde path: the wire struct read by serde_json, then the parser. `None` when serde refuses
    /// the text.
    fn reference(text: &str) -> Option<Result<Vec<Event>, ParseError>> {
        let event = serde_json::from_str::<OrderTradeUpdateEvent<'_>>(text).ok()?;
        Some(
            parse_order_trade_update(&account(), &event).map(|(fill, order)| {
                fill.map(Event::Fill)
                    .into_iter()
                    .chain([Event::Order(order)])
                    .collect()
            }),
        )
    }

    /// The hot path, with fresh names and with `decoder`'s shared names (both must agree); `out` must be
    /// untouched when it gives up.
    fn hot(text: &str, decoder: &mut Decoder) -> Option<Vec<Event>> {
        let mut out = Vec::new();
        let fresh = push_order_trade_update(&account(), text, &mut Fresh, &mut out);
        let mut shared = vec![Event::Stream(super::super::other_event_notice(
            &account(),
            "x",
            0,
        ))];
        let kept = shared.clone();
        let cached = push_order_trade_update(&account(), text, decoder, &mut shared);
        assert_eq!(fresh.is_ok(), cached.is_ok(), "{text}");
        match fresh {
            Ok(()) => {
                assert_eq!(shared[1..], out[..], "decoder on {text}");
                Some(out)
            }
            Err(_) => {
                assert!(out.is_empty(), "{text}");
                assert_eq!(shared, kept, "{text}");
                None
            }
        }
    }

    /// For the tests of other modules: checks `text` as [`check`] does; `true` when the hot path read it.
    pub(crate) fn hot_path_agrees_with_serde(text: &str) -> bool {
        check("", text, &mut Decoder::new())
    }

    /// Checks one text; `true` when the hot path read it.
    fn check(label: &str, text: &str, decoder: &mut Decoder) -> bool {
        let reference = reference(text);
        let hot = hot(text, decoder);
        if let Some(events) = &hot {
            match &reference {
                Some(Ok(expected)) => assert_eq!(events, expected, "{label}: {text}"),
                other => panic!("{label}: hot path read what serde gives {other:?}: {text}"),
            }
        }
        // The whole frame decoder, hot path or not, gives the serde path's outcome (when the event is
        // named by a leading `e`, which is how the frame decoder picks the payload type).
        if text.starts_with(r#"{"e":"ORDER_TRADE_UPDATE","#) {
            let decoded = decode_frame(&account(), text);
            let with_decoder = decoder.decode_frame(&account(), text);
            match &reference {
                Some(Ok(expected)) => {
                    assert_eq!(decoded.as_ref().ok(), Some(expected), "{label}: {text}");
                    assert_eq!(
                        with_decoder.as_ref().ok(),
                        Some(expected),
                        "{label}: {text}"
                    );
                }
                _ => {
                    assert!(decoded.is_err(), "{label}: {text}");
                    assert!(with_decoder.is_err(), "{label}: {text}");
                }
            }
        }
        hot.is_some()
    }

    #[test]
    fn every_fixture_takes_the_hot_path_with_the_serde_path_events() {
        let mut decoder = Decoder::new();
        let fixtures = fixtures();
        assert!(fixtures.len() >= 30, "{}", fixtures.len());
        for (label, text) in &fixtures {
            assert!(
                check(label, text, &mut decoder),
                "{label} should take the hot path"
            );
        }
    }

    /// Raw JSON values put in place of each field in turn: every type, the edges of each number type,
    /// the decimal shapes the plain reader leaves to `Decimal::from_str`, escapes, and the names the
    /// parser maps.
    const VALUES: &[&str] = &[
        "null",
        "true",
        "false",
        "{}",
        "[]",
        r#"{"a":[1,{"b":null}]}"#,
        "0",
        "00",
        "7",
        "-7",
        "-0",
        "1.5",
        "-1.5",
        "1e3",
        "1E-3",
        "8389766049535966000",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        r#""""#,
        r#"" ""#,
        r#""x""#,
        r#""0""#,
        r#""7""#,
        r#""-0""#,
        r#""-0.00""#,
        r#""0.00000""#,
        r#""-0.5""#,
        r#""0.5""#,
        r#""-1.25""#,
        r#""007""#,
        r#""123456.78901234""#,
        r#""9999999999999999999""#,
        r#""12345678901234567890""#,
        r#""1234567890123456789012345""#,
        r#""0.12345678901234567890123456789""#,
        r#""79228162514264337593543950335""#,
        r#""79228162514264337593543950336""#,
        r#""1e-3""#,
        r#""1E5""#,
        r#""+1""#,
        r#""1 ""#,
        r#"" 1""#,
        r#"".5""#,
        r#""5.""#,
        r#""1.2.3""#,
        r#""1_000""#,
        r#""8389766049535966000""#,
        r#""a\"b""#,
        r#""\u0041BC""#,
        r#""\u0030.5""#,
        r#""tab\there""#,
        r#""币安USDT""#,
        r#""BUY""#,
        r#""SELL""#,
        r#""buy""#,
        r#""LONG""#,
        r#""SHORT""#,
        r#""BOTH""#,
        r#""TRADE""#,
        r#""CALCULATED""#,
        r#""NEW""#,
        r#""FILLED""#,
        r#""EXPIRED_IN_MATCH""#,
        r#""USDT""#,
        r#""ORDER_TRADE_UPDATE""#,
    ];

    /// Every way of editing one field of `entries`: removed, replaced by each of [`VALUES`], repeated,
    /// moved to the front and to the end.
    fn field_edits(entries: &[(String, String)]) -> Vec<Vec<(String, String)>> {
        let mut edits = Vec::new();
        for (i, (key, value)) in entries.iter().enumerate() {
            let mut removed = entries.to_vec();
            let entry = removed.remove(i);
            edits.push(removed.clone());
            let mut front = removed.clone();
            front.insert(0, entry.clone());
            edits.push(front);
            let mut back = removed;
            back.push(entry.clone());
            edits.push(back);
            let mut repeated = entries.to_vec();
            repeated.insert(i + 1, entry.clone());
            edits.push(repeated);
            let mut repeated_other = entries.to_vec();
            repeated_other.push((key.clone(), r#""0""#.to_owned()));
            edits.push(repeated_other);
            for replacement in VALUES {
                if replacement != value {
                    let mut replaced = entries.to_vec();
                    replaced[i].1 = (*replacement).to_owned();
                    edits.push(replaced);
                }
            }
        }
        edits
    }

    /// Edits of the whole object: other orders, unknown fields, fields Binance may add.
    fn object_edits(entries: &[(String, String)]) -> Vec<Vec<(String, String)>> {
        let unknown = [
            ("zz", r#"{"a":[1,2,{"b":null,"c":"\u0041"}],"d":-1.5e3}"#),
            ("ma", r#""USDT""#),
            ("e2", "[]"),
            ("\u{3b1}", "0"),
            ("a\\u0062", r#""x""#),
        ];
        let mut edits = vec![entries.to_vec()];
        let mut reversed = entries.to_vec();
        reversed.reverse();
        edits.push(reversed);
        let mut sorted = entries.to_vec();
        sorted.sort();
        edits.push(sorted);
        let mut rotated = entries.to_vec();
        rotated.rotate_left(entries.len() / 2);
        edits.push(rotated);
        for (key, value) in unknown {
            for at in [0, entries.len() / 2, entries.len()] {
                let mut added = entries.to_vec();
                added.insert(at, (key.to_owned(), value.to_owned()));
                edits.push(added);
            }
        }
        edits
    }

    /// The entries of an event and of its `o`.
    fn split(text: &str) -> (Vec<Entry>, Vec<Entry>) {
        let Entries(top) = serde_json::from_str(text).unwrap();
        let order = &top.iter().find(|(k, _)| k == "o").unwrap().1;
        let Entries(order) = serde_json::from_str(order).unwrap();
        (top, order)
    }

    fn join(top: &[(String, String)], order: &[(String, String)]) -> String {
        let order = object(order);
        let top: Vec<(String, String)> = top
            .iter()
            .map(|(k, v)| (k.clone(), if k == "o" { order.clone() } else { v.clone() }))
            .collect();
        object(&top)
    }

    #[test]
    fn edited_payloads_give_the_serde_path_events_or_are_left_to_it() {
        let mut decoder = Decoder::new();
        let (mut total, mut read) = (0, 0);
        let bases = [
            "order_trade_update.real_trade_filled_2023.json",
            "order_trade_update.real_new_usdc_2026.json",
            "order_trade_update.docs.json",
        ];
        for base in bases {
            let path = format!("{}/test_data/{base}", env!("CARGO_MANIFEST_DIR"));
            let (top, order) = split(&compact(&std::fs::read_to_string(path).unwrap()));
            let mut variants = Vec::new();
            for edited in field_edits(&order).into_iter().chain(object_edits(&order)) {
                variants.push(join(&top, &edited));
            }
            for edited in field_edits(&top).into_iter().chain(object_edits(&top)) {
                if edited.iter().any(|(k, v)| k == "o" && v.starts_with('{')) {
                    variants.push(join(&edited, &order));
                } else {
                    variants.push(object(&edited));
                }
            }
            let text = join(&top, &order);
            variants.push(text.replace(',', " ,\n "));
            variants.push(text.replace(':', " : "));
            variants.push(format!(" \t{text}\n"));
            variants.push(format!("{text} x"));
            variants.push(format!("{text},"));
            variants.push(text.replacen('}', "},", 1));
            variants.push(text.replacen("\"o\":{", "\"o\":{,", 1));
            variants.push(text[..text.len() - 1].to_owned());
            variants.push(text.replacen("\"s\":", "\"\\u0073\":", 1));
            for variant in &variants {
                total += 1;
                if check(base, variant, &mut decoder) {
                    read += 1;
                }
            }
        }
        assert!(total > 4000, "only {total} variants");
        // Most edits keep the payload in Binance's usual encoding: the hot path must read those itself.
        assert!(read > total / 4, "the hot path read only {read} of {total}");
    }

    #[test]
    fn huge_ids_and_negative_figures_are_exact() {
        let path = format!(
            "{}/test_data/order_trade_update.real_trade_filled_2023.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = compact(&std::fs::read_to_string(path).unwrap())
            .replace("6437837518", "8389766049535966000")
            .replace("86171692", "18446744073709551615")
            .replace(r#""rp":"-0.36230000""#, r#""rp":"-122624.12345678""#)
            .replace(r#""n":"0.03992450""#, r#""n":"-0.00000100""#);
        let events = hot(&text, &mut Decoder::new()).expect("hot path");
        let Event::Fill(fill) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(fill.order_id, 8_389_766_049_535_966_000);
        assert_eq!(fill.trade_id, u64::MAX);
        let realized = fill.realized_pnl.unwrap();
        assert_eq!(
            (realized.to_string(), realized.scale()),
            ("-122624.12345678".to_owned(), 8)
        );
        let commission = fill.commission.as_ref().unwrap().amount;
        assert_eq!(
            (commission.to_string(), commission.scale()),
            ("-0.00000100".to_owned(), 8)
        );
        assert_eq!(
            Some(Ok(events)),
            reference(&text).map(|r| r.map_err(|e| e.to_string()))
        );
    }
}
