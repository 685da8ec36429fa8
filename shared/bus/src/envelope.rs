//! The payload of every message on `EVENTS`: a MessagePack map with named fields (DESIGN §3).
//!
//! The map holds `schema` (`"<kind>/<version>"`, for example `"fill/1"`), `received_at` (our receive time,
//! ms since the epoch), `kind`, and the event's own fields, each under its Rust name (`account`, `symbol`,
//! `trade_id`, `time` for the exchange's `T`, `event_time` for `E`, …). Decimals are strings, so no
//! precision is lost in any language. Headers: `Nats-Msg-Id` (from [`msg_id`]) and `Content-Type`.

use std::fmt::Write as _;

use acctmon_domain::{CorrectionTarget, Event, EventKind, FillSource, StreamStatus};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::subject::{fnv1a32, kind_token};

/// The `Content-Type` of MessagePack payloads.
pub const CONTENT_TYPE: &str = "application/msgpack";
/// The version of the event payloads this crate writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Room reserved for an encoded event: a fill takes about 300 bytes.
const ENCODED_CAPACITY: usize = 512;

/// A payload that could not be decoded.
#[derive(Debug, Error)]
pub enum EnvelopeError {
    /// Not a MessagePack event map.
    #[error("undecodable event payload: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A schema this version does not read.
    #[error("unsupported schema `{0}`")]
    Schema(String),
    /// Serialization failed (only for values serde cannot represent).
    #[error("cannot encode event: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// An event as carried on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `"<kind>/<version>"`.
    pub schema: String,
    /// When we received it, ms since the epoch (for stream-lag figures).
    pub received_at: i64,
    /// The event; its fields sit beside `schema` in the same map.
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// Wraps an event received at `received_at`.
    pub fn new(event: Event, received_at: i64) -> Self {
        Envelope {
            schema: schema_of(event.kind()),
            received_at,
            event,
        }
    }

    /// MessagePack with named fields.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        // Sized for a fill, the most frequent event, so that most encodings allocate once.
        let mut bytes = Vec::with_capacity(ENCODED_CAPACITY);
        rmp_serde::encode::write_named(&mut bytes, self)?;
        Ok(bytes)
    }

    /// Decodes a payload written by [`Envelope::encode`], refusing schemas of a newer major version.
    ///
    /// The map is read twice: first only as far as `schema`, `received_at` and `kind` (the first keys
    /// as [`Envelope::encode`] writes them), stepping over other values, then as the event type the kind
    /// names. That beats one pass through serde's buffering of flattened and tagged content, which costs
    /// an allocation per key and value (the processor decodes every event of the stream).
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        // Through serde (which walks the whole map) only when the scan fails, for its error.
        let head = match Head::scan(bytes) {
            Some(head) => head,
            None => rmp_serde::from_slice(bytes)?,
        };
        let version = head
            .schema
            .rsplit_once('/')
            .and_then(|(_, v)| v.parse::<u32>().ok());
        if version.is_none_or(|v| v > SCHEMA_VERSION) {
            return Err(EnvelopeError::Schema(head.schema.into_owned()));
        }
        fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, EnvelopeError> {
            Ok(rmp_serde::from_slice(bytes)?)
        }
        let event = match head.kind.as_ref() {
            "fill" => Event::Fill(body(bytes)?),
            "order" => Event::Order(body(bytes)?),
            "balance" => Event::Balance(body(bytes)?),
            "position" => Event::Position(body(bytes)?),
            "funding" => Event::Funding(body(bytes)?),
            "transfer" => Event::Transfer(body(bytes)?),
            "config" => Event::Config(body(bytes)?),
            "margin_call" => Event::MarginCall(body(bytes)?),
            "snapshot" => Event::Snapshot(body(bytes)?),
            "correction" => Event::Correction(body(bytes)?),
            "stream" => Event::Stream(body(bytes)?),
            "mark" => Event::Mark(body(bytes)?),
            "brackets" => Event::Brackets(body(bytes)?),
            // A kind this version does not know: serde's own error names it.
            _ => return Ok(rmp_serde::from_slice(bytes)?),
        };
        Ok(Envelope {
            schema: head.schema.into_owned(),
            received_at: head.received_at,
            event,
        })
    }
}

/// The envelope's own fields, read without the event's.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    schema: std::borrow::Cow<'a, str>,
    received_at: i64,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
}

impl<'a> Head<'a> {
    /// Reads the three keys from the top-level map, stepping over other values without decoding them,
    /// and stops once it has all three. `None` when the bytes are not such a map (serde then says why).
    fn scan(bytes: &'a [u8]) -> Option<Head<'a>> {
        let mut rest = bytes;
        let entries = rmp::decode::read_map_len(&mut rest).ok()?;
        let (mut schema, mut received_at, mut kind) = (None, None, None);
        for _ in 0..entries {
            match read_str(&mut rest)? {
                "schema" => schema = Some(read_str(&mut rest)?),
                "received_at" => received_at = Some(rmp::decode::read_int(&mut rest).ok()?),
                "kind" => kind = Some(read_str(&mut rest)?),
                _ => skip(&mut rest, 0)?,
            }
            if let (Some(schema), Some(received_at), Some(kind)) = (schema, received_at, kind) {
                return Some(Head {
                    schema: schema.into(),
                    received_at,
                    kind: kind.into(),
                });
            }
        }
        None
    }
}

/// The string at the front of `rest`, borrowed.
fn read_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let (text, after) = rmp::decode::read_str_from_slice(*rest).ok()?;
    *rest = after;
    Some(text)
}

/// Nesting deeper than this is not ours: left to serde.
const MAX_DEPTH: usize = 32;

/// Steps over the MessagePack value at the front of `rest`, whatever its type, without decoding it.
fn skip(rest: &mut &[u8], depth: usize) -> Option<()> {
    use rmp::Marker;
    if depth > MAX_DEPTH {
        return None;
    }
    // What follows the marker: `bytes` of data, then `values` nested values.
    let (bytes, values) = match rmp::decode::read_marker(rest).ok()? {
        Marker::Null | Marker::True | Marker::False | Marker::FixPos(_) | Marker::FixNeg(_) => {
            (0, 0)
        }
        Marker::U8 | Marker::I8 => (1, 0),
        Marker::U16 | Marker::I16 => (2, 0),
        Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
        Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
        Marker::FixStr(n) => (usize::from(n), 0),
        Marker::Str8 | Marker::Bin8 => (length(rest, 1)?, 0),
        Marker::Str16 | Marker::Bin16 => (length(rest, 2)?, 0),
        Marker::Str32 | Marker::Bin32 => (length(rest, 4)?, 0),
        // Extensions: a type byte, then the data.
        Marker::FixExt1 => (2, 0),
        Marker::FixExt2 => (3, 0),
        Marker::FixExt4 => (5, 0),
        Marker::FixExt8 => (9, 0),
        Marker::FixExt16 => (17, 0),
        Marker::Ext8 => (length(rest, 1)?.checked_add(1)?, 0),
        Marker::Ext16 => (length(rest, 2)?.checked_add(1)?, 0),
        Marker::Ext32 => (length(rest, 4)?.checked_add(1)?, 0),
        Marker::FixArray(n) => (0, usize::from(n)),
        Marker::Array16 => (0, length(rest, 2)?),
        Marker::Array32 => (0, length(rest, 4)?),
        Marker::FixMap(n) => (0, 2 * usize::from(n)),
        Marker::Map16 => (0, length(rest, 2)?.checked_mul(2)?),
        Marker::Map32 => (0, length(rest, 4)?.checked_mul(2)?),
        Marker::Reserved => return None,
    };
    *rest = rest.get(bytes..)?;
    for _ in 0..values {
        skip(rest, depth + 1)?;
    }
    Some(())
}

/// A big-endian length of `width` bytes at the front of `rest`.
fn length(rest: &mut &[u8], width: usize) -> Option<usize> {
    let (bytes, after) = rest.split_at_checked(width)?;
    *rest = after;
    usize::try_from(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b))).ok()
}

/// `"<kind>/<version>"` for events of `kind`.
pub fn schema_of(kind: EventKind) -> String {
    format!("{}/{SCHEMA_VERSION}", kind_token(kind))
}

/// The deterministic `Nats-Msg-Id` of an event (DESIGN §3). Two ingest replicas, a reconnect and a REST
/// backfill all give the same exchange event the same id, so JetStream keeps it once inside the stream's
/// duplicate window.
///
/// Where DESIGN's pattern would give two different events one id, a token is added: a `TRADE_LITE`
/// notice is `fill:…:<trade id>:lite` (else it would shadow the complete report of the same fill, which
/// carries `rp` and the commission); an order update adds its cumulative filled quantity (partial fills of
/// one order can share `E`); funding adds the symbol and the amount (every position is funded at the same
/// `T`, and in hedge mode the long and the short leg of one symbol each get their own row, of opposite
/// signs).
pub fn msg_id(event: &Event) -> String {
    let mut id = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = match event {
        Event::Fill(f) => {
            let lite = if f.source == FillSource::TradeLite {
                ":lite"
            } else {
                ""
            };
            write!(
                id,
                "fill:{}:{}:{}{lite}",
                f.account.as_str(),
                f.symbol.as_str(),
                f.trade_id
            )
        }
        Event::Order(o) => write!(
            id,
            "order:{}:{}:{:?}:{}:{}",
            o.account.as_str(),
            o.order_id,
            o.status,
            o.event_time.0,
            o.filled_qty.normalize()
        ),
        Event::Balance(b) => write!(
            id,
            "acct:{}:{}:{}:{}",
            b.account.as_str(),
            b.event_time.0,
            b.time.0,
            b.asset.as_str()
        ),
        Event::Position(p) => write!(
            id,
            "acct:{}:{}:{}:{}.{}",
            p.account.as_str(),
            p.event_time.0,
            p.time.0,
            p.symbol.as_str(),
            p.side.as_str()
        ),
        Event::Funding(f) => write!(
            id,
            "funding:{}:{}:{}:{}:{}",
            f.account.as_str(),
            f.asset.as_str(),
            f.symbol.as_ref().map_or("", |s| s.as_str()),
            f.time.0,
            f.amount.normalize()
        ),
        Event::Transfer(t) => write!(
            id,
            "transfer:{}:{}:{}:{}",
            t.account.as_str(),
            t.asset.as_str(),
            t.time.0,
            t.amount.normalize()
        ),
        Event::Config(c) => write!(
            id,
            "config:{}:{}:{}:{:x}",
            c.account.as_str(),
            c.event_time.0,
            c.time.0,
            fnv1a32(format!("{:?}", c.change).as_bytes())
        ),
        Event::MarginCall(m) => write!(id, "margin_call:{}:{}", m.account.as_str(), m.event_time.0),
        Event::Snapshot(s) => write!(id, "snapshot:{}:{}", s.account.as_str(), s.time.0),
        Event::Correction(c) => {
            let target = match &c.target {
                CorrectionTarget::Position { symbol, side, .. } => {
                    format!("{}.{}", symbol.as_str(), side.as_str())
                }
                CorrectionTarget::Wallet { asset, .. } => asset.as_str().to_owned(),
            };
            write!(
                id,
                "correction:{}:{}:{target}",
                c.account.as_str(),
                c.time.0
            )
        }
        Event::Stream(s) => match &s.status {
            // The same bad payload seen by two replicas is reported once.
            StreamStatus::Undecodable { raw, .. } => write!(
                id,
                "stream:{}:undecodable:{:x}:{}",
                s.account.as_str(),
                fnv1a32(raw.as_bytes()),
                raw.len()
            ),
            StreamStatus::Other { event } => {
                write!(
                    id,
                    "stream:{}:other:{event}:{}",
                    s.account.as_str(),
                    s.time.0
                )
            }
            status => write!(
                id,
                "stream:{}:{}:{}",
                s.account.as_str(),
                status_name(status),
                s.time.0
            ),
        },
        Event::Mark(m) => write!(id, "mark:{}:{}", m.symbol.as_str(), m.time.0),
        Event::Brackets(b) => write!(id, "brackets:{}", b.symbol.as_str()),
    };
    id
}

fn status_name(status: &StreamStatus) -> &'static str {
    match status {
        StreamStatus::Connected => "connected",
        StreamStatus::Gap => "gap",
        StreamStatus::Expired => "expired",
        StreamStatus::Heard => "heard",
        StreamStatus::Other { .. } => "other",
        StreamStatus::Undecodable { .. } => "undecodable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acctmon_domain::{Account, Asset, Commission, Fill, Side, StreamNotice, Symbol, Timestamp};
    use rust_decimal::Decimal;

    fn fill(source: FillSource) -> Fill {
        Fill {
            account: Account::new("main").expect("alias"),
            symbol: Symbol::new("BTCUSDT").expect("symbol"),
            trade_id: 9_007_199_254_740_993,
            order_id: u64::MAX - 1,
            client_order_id: Some("x-1".into()),
            side: Side::Buy,
            position_side: None,
            price: Decimal::new(6_543_210, 2),
            qty: Decimal::new(1234, 3),
            commission: Some(Commission {
                asset: Asset::new("USDT").expect("asset"),
                amount: Decimal::new(4_037_200, 8),
            }),
            realized_pnl: Some(Decimal::ZERO),
            margin_asset: None,
            maker: false,
            time: Timestamp(1_700_000_000_123),
            event_time: Timestamp(1_700_000_000_125),
            source,
        }
    }

    #[test]
    fn an_event_round_trips_through_named_msgpack() {
        let e = Envelope::new(
            Event::Fill(fill(FillSource::OrderUpdate)),
            1_700_000_000_130,
        );
        assert_eq!(e.schema, "fill/1");
        let bytes = e.encode().expect("encode");
        // Named fields: a consumer in another language reads keys, not positions.
        let text = String::from_utf8_lossy(&bytes);
        for key in [
            "schema",
            "received_at",
            "kind",
            "trade_id",
            "price",
            "event_time",
        ] {
            assert!(text.contains(key), "{key} missing");
        }
        assert_eq!(Envelope::decode(&bytes).expect("decode"), e);
    }

    /// The kinds no user-stream payload gives (ingest's REST snapshot, the reconciler's correction,
    /// leverage brackets, stream notices) decode as they were encoded; the stream kinds are checked on
    /// every fixture in `acctmon-binance`'s tests.
    #[test]
    fn the_kinds_of_our_own_making_round_trip() {
        use acctmon_domain::{
            Bracket, Correction, CorrectionTarget, LeverageBrackets, PositionSide, Snapshot,
            SnapshotBalance, SnapshotPosition,
        };
        let account = Account::new("main").expect("alias");
        let symbol = Symbol::new("BTCUSDT").expect("symbol");
        let events = [
            Event::Snapshot(Snapshot {
                account: account.clone(),
                hedge_mode: Some(true),
                balances: vec![SnapshotBalance {
                    asset: Asset::new("USDT").expect("asset"),
                    wallet: Decimal::new(1_000_012_345_678, 8),
                }],
                positions: vec![SnapshotPosition {
                    symbol: symbol.clone(),
                    side: PositionSide::Short,
                    qty: Decimal::new(-25, 3),
                    entry_price: Decimal::new(5_012_345, 2),
                    margin_asset: None,
                    update_time: Timestamp(5),
                }],
                time: Timestamp(9),
                since: Some(Timestamp(7)),
            }),
            Event::Correction(Correction {
                account: account.clone(),
                target: CorrectionTarget::Wallet {
                    asset: Asset::new("BNB").expect("asset"),
                    wallet: Decimal::new(15, 1),
                },
                reason: "reconciler".into(),
                time: Timestamp(11),
            }),
            Event::Brackets(LeverageBrackets {
                symbol,
                brackets: vec![Bracket {
                    bracket: 1,
                    initial_leverage: 125,
                    notional_floor: Decimal::ZERO,
                    notional_cap: Decimal::new(50_000, 0),
                    maint_margin_ratio: Decimal::new(4, 3),
                    cum: Decimal::ZERO,
                }],
            }),
            Event::Stream(StreamNotice {
                account,
                status: StreamStatus::Undecodable {
                    raw: "{".into(),
                    error: "eof".into(),
                },
                time: Timestamp(13),
            }),
        ];
        for event in events {
            let e = Envelope::new(event, 17);
            assert_eq!(
                Envelope::decode(&e.encode().expect("encode")).expect("decode"),
                e
            );
        }
    }

    #[test]
    fn newer_schemas_and_garbage_are_refused() {
        let mut e = Envelope::new(Event::Fill(fill(FillSource::Rest)), 1);
        e.schema = "fill/2".into();
        let bytes = e.encode().expect("encode");
        assert!(matches!(Envelope::decode(&bytes), Err(EnvelopeError::Schema(s)) if s == "fill/2"));
        assert!(matches!(
            Envelope::decode(b"\x93\x01"),
            Err(EnvelopeError::Decode(_))
        ));
    }

    /// The envelope's keys are found wherever they stand in the map, past values of every kind, and
    /// the event decodes the same: here the keys in alphabetical order, `schema` after the event's.
    #[test]
    fn the_head_is_found_past_the_event_fields_in_any_order() {
        let e = Envelope::new(
            Event::Fill(fill(FillSource::OrderUpdate)),
            -1_700_000_000_130,
        );
        let sorted: serde_json::Value = serde_json::to_value(&e).expect("to a JSON value");
        let keys: Vec<&String> = sorted.as_object().expect("a map").keys().collect();
        let schema_at = keys.iter().position(|k| *k == "schema");
        assert!(schema_at > Some(3), "{keys:?}");
        let bytes = rmp_serde::to_vec_named(&sorted).expect("encode");
        let head = Head::scan(&bytes).expect("the head is found");
        assert_eq!(
            (head.schema.as_ref(), head.received_at, head.kind.as_ref()),
            ("fill/1", -1_700_000_000_130, "fill")
        );
        assert_eq!(Envelope::decode(&bytes).expect("decode"), e);
        // Cut anywhere, the scan stops at the end (it finds the head only once the head is in), and
        // decoding says what is wrong.
        let found: Vec<bool> = (0..bytes.len())
            .map(|end| Head::scan(&bytes[..end]).is_some())
            .collect();
        assert!(!found[bytes.len() / 2], "half a map holds no schema here");
        assert!(found.windows(2).all(|w| w[0] <= w[1]), "{found:?}");
        for end in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..end]).is_err(), "cut at {end}");
        }
    }

    /// Each MessagePack type is stepped over whole: after skipping one value the rest starts at the
    /// next byte, and a `received_at` of every integer width reads back as written.
    #[test]
    fn every_messagepack_type_is_stepped_over_whole() {
        let long = |n: usize| "x".repeat(n);
        let mut values: Vec<Vec<u8>> = [
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!(-1.5),
            serde_json::json!([1, [2, [3, {"a": null}]], "s"]),
            serde_json::json!((0..20).collect::<Vec<u32>>()),
            serde_json::Value::Object(
                (0..20)
                    .map(|i| (i.to_string(), serde_json::json!(i)))
                    .collect(),
            ),
            serde_json::json!(long(31)),
            serde_json::json!(long(200)),
            serde_json::json!(long(300)),
            serde_json::json!(long(70_000)),
        ]
        .iter()
        .map(|v| rmp_serde::to_vec(v).expect("encode"))
        .collect();
        // Binary data and extensions, which serde_json cannot express.
        values.extend([
            vec![0xc4, 3, 1, 2, 3],
            vec![0xc5, 0, 1, 9],
            vec![0xd4, 1, 7],
            vec![
                0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            ],
            vec![0xc7, 2, 5, 1, 2],
        ]);
        let ints = [
            0i64,
            127,
            128,
            255,
            256,
            70_000,
            5_000_000_000,
            -1,
            -32,
            -33,
            -200,
            -40_000,
            -3_000_000_000,
            i64::MIN,
            i64::MAX,
        ];
        for i in ints {
            values.push(rmp_serde::to_vec(&i).expect("encode"));
        }
        for value in &values {
            let mut bytes = value.clone();
            bytes.push(0xc3);
            let mut rest = &bytes[..];
            assert_eq!(skip(&mut rest, 0), Some(()), "{value:02x?}");
            assert_eq!(rest, [0xc3], "{value:02x?}");
        }
        for i in ints {
            let head = serde_json::json!({"schema": "fill/1", "received_at": i, "kind": "fill"});
            let bytes = rmp_serde::to_vec_named(&head).expect("encode");
            let read = Head::scan(&bytes).map(|h| h.received_at);
            assert_eq!(read, Some(i), "{bytes:02x?}");
        }
        // The unused marker, and nesting deeper than events ever go, are left to serde.
        assert_eq!(skip(&mut &[0xc1][..], 0), None);
        let deep: Vec<u8> = std::iter::repeat_n(0x91, MAX_DEPTH + 2)
            .chain([0xc0])
            .collect();
        assert_eq!(skip(&mut &deep[..], 0), None);
    }

    #[test]
    fn ids_are_deterministic_and_tell_apart_what_differs() {
        let live = msg_id(&Event::Fill(fill(FillSource::OrderUpdate)));
        assert_eq!(live, "fill:main:BTCUSDT:9007199254740993");
        // The REST backfill of the same trade is the same message.
        assert_eq!(msg_id(&Event::Fill(fill(FillSource::Rest))), live);
        assert_eq!(
            msg_id(&Event::Fill(fill(FillSource::TradeLite))),
            format!("{live}:lite")
        );
        let bad = |raw: &str, time| {
            msg_id(&Event::Stream(StreamNotice {
                account: Account::new("main").expect("alias"),
                status: StreamStatus::Undecodable {
                    raw: raw.into(),
                    error: "x".into(),
                },
                time: Timestamp(time),
            }))
        };
        assert_eq!(bad("{oops", 1), bad("{oops", 2));
        assert_ne!(bad("{oops", 1), bad("{oops!", 1));
    }
}
