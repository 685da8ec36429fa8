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
        Ok(rmp_serde::to_vec_named(self)?)
    }

    /// Decodes a payload written by [`Envelope::encode`], refusing schemas of a newer major version.
    ///
    /// The map is read twice, first for `schema`, `received_at` and `kind`, then as the event type the
    /// kind names, rather than once through serde's buffering of flattened and tagged content, which
    /// costs an allocation per key and value (the processor decodes every event of the stream).
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        // The envelope's keys come first as this crate writes them: read them in place, and through
        // serde (which walks the whole map) only when that fails, for its error.
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
    /// Reads the three keys from the top-level map, skipping other values without decoding them, and
    /// stops once it has all three. `None` when the bytes are not such a map (serde then says why).
    fn scan(bytes: &'a [u8]) -> Option<Head<'a>> {
        let mut at = Cursor(bytes);
        let entries = at.map_len()?;
        let (mut schema, mut received_at, mut kind) = (None, None, None);
        for _ in 0..entries {
            match at.str()? {
                "schema" => schema = Some(at.str()?),
                "received_at" => received_at = Some(at.int()?),
                "kind" => kind = Some(at.str()?),
                _ => at.skip(0)?,
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

/// A position in MessagePack bytes: just enough of the format to find keys and step over values.
struct Cursor<'a>(&'a [u8]);

/// Nesting deeper than this is not ours: left to serde.
const MAX_DEPTH: usize = 32;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A big-endian unsigned integer of `n` bytes.
    fn uint(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, b| acc << 8 | u64::from(*b)),
        )
    }

    fn len(&mut self, n: usize) -> Option<usize> {
        usize::try_from(self.uint(n)?).ok()
    }

    fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            b @ 0x80..=0x8f => Some(usize::from(b & 0x0f)),
            0xde => self.len(2),
            0xdf => self.len(4),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return None,
        };
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn int(&mut self) -> Option<i64> {
        let signed = |v: u64, bits: u32| -> i64 {
            // Sign-extend a `bits`-wide two's complement value.
            let shift = 64 - bits;
            ((v << shift) as i64) >> shift
        };
        match self.byte()? {
            b @ 0x00..=0x7f => Some(i64::from(b)),
            b @ 0xe0..=0xff => Some(i64::from(b) - 256),
            0xcc => Some(i64::from(self.byte()?)),
            0xcd => i64::try_from(self.uint(2)?).ok(),
            0xce => i64::try_from(self.uint(4)?).ok(),
            0xcf => i64::try_from(self.uint(8)?).ok(),
            0xd0 => Some(signed(self.uint(1)?, 8)),
            0xd1 => Some(signed(self.uint(2)?, 16)),
            0xd2 => Some(signed(self.uint(4)?, 32)),
            0xd3 => Some(signed(self.uint(8)?, 64)),
            _ => None,
        }
    }

    /// Steps over one value of any type.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let marker = self.byte()?;
        let n = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => return self.skip_values(2 * usize::from(marker & 0x0f), depth),
            0x90..=0x9f => return self.skip_values(usize::from(marker & 0x0f), depth),
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xc4 | 0xd9 => self.len(1)?,
            0xc5 | 0xda => self.len(2)?,
            0xc6 | 0xdb => self.len(4)?,
            // Extensions: a type byte, then the data.
            0xc7 => self.len(1)?.checked_add(1)?,
            0xc8 => self.len(2)?.checked_add(1)?,
            0xc9 => self.len(4)?.checked_add(1)?,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            0xdc => {
                let n = self.len(2)?;
                return self.skip_values(n, depth);
            }
            0xdd => {
                let n = self.len(4)?;
                return self.skip_values(n, depth);
            }
            0xde => {
                let n = self.len(2)?;
                return self.skip_values(n.checked_mul(2)?, depth);
            }
            0xdf => {
                let n = self.len(4)?;
                return self.skip_values(n.checked_mul(2)?, depth);
            }
            // 0xc1 is never used.
            _ => return None,
        };
        self.take(n).map(|_| ())
    }

    fn skip_values(&mut self, n: usize, depth: usize) -> Option<()> {
        for _ in 0..n {
            self.skip(depth + 1)?;
        }
        Some(())
    }
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

    /// Each MessagePack type is stepped over whole: after skipping one value the cursor stands on the
    /// next byte, and integers of every width read back as written.
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
            let mut at = Cursor(&bytes);
            assert_eq!(at.skip(0), Some(()), "{value:02x?}");
            assert_eq!(at.0, [0xc3], "{value:02x?}");
        }
        for i in ints {
            let bytes = rmp_serde::to_vec(&i).expect("encode");
            assert_eq!(Cursor(&bytes).int(), Some(i), "{bytes:02x?}");
        }
        // The unused marker, and nesting deeper than events ever go, are left to serde.
        assert_eq!(Cursor(&[0xc1]).skip(0), None);
        let deep: Vec<u8> = std::iter::repeat_n(0x91, MAX_DEPTH + 2)
            .chain([0xc0])
            .collect();
        assert_eq!(Cursor(&deep).skip(0), None);
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
