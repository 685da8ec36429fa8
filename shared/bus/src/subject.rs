//! Subject and key names (DESIGN §3), partitions (§2) and the one escaping rule for symbols.
//!
//! Binance publishes symbols as uppercase ASCII letters and digits, but also some with other characters
//! (Chinese-named contracts, for one). A NATS subject token may not hold `.`, `*`, `>` or whitespace, and a
//! KV key allows only `[-/_=.A-Za-z0-9]`. So every symbol (and asset) token is escaped the same way, in
//! subjects and in keys: a byte outside `[A-Za-z0-9_-]` becomes `=XX`, its two uppercase hex digits, byte by
//! byte over the UTF-8 text (`=` itself becomes `=3D`). `BTCUSDT` stays `BTCUSDT`; `币安人生USDT` becomes
//! `=E5=B8=81=E5=AE=89=E4=BA=BA=E7=94=9FUSDT`. Account aliases match `[A-Za-z0-9_-]{1,32}` and need no escaping.

use std::borrow::Cow;
use std::fmt::Write as _;

use acctmon_domain::{Account, EventKind, PositionSide, Symbol};
use thiserror::Error;

/// Prefix of the `EVENTS` stream's subjects.
pub const EVENTS_PREFIX: &str = "trading.events";
/// Prefix of the `PNL` stream's subjects.
pub const PNL_PREFIX: &str = "trading.pnl";
/// Prefix of the `ALERTS` stream's subjects.
pub const ALERTS_PREFIX: &str = "trading.alerts";
/// Prefix of the `RECON` stream's subjects.
pub const RECON_PREFIX: &str = "trading.recon";

/// A subject or key that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubjectError {
    /// Wrong number of tokens or wrong prefix.
    #[error("`{subject}` is not a subject of the form {expected}")]
    Shape {
        /// The subject.
        subject: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A token that does not decode.
    #[error("bad token `{token}` in `{subject}`: {why}")]
    Token {
        /// The subject.
        subject: String,
        /// The token.
        token: String,
        /// What is wrong with it.
        why: String,
    },
}

/// FNV-1a, 32 bits: the hash of nats-server's `{{partition(N, tokens…)}}` subject mapping.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u32::from(*b)).wrapping_mul(PRIME))
}

/// The partition of an account among `count`: `fnv1a32(account) mod count`, as nats-server computes
/// `{{partition(count,1)}}` over the account token. A count of 0 is treated as 1.
pub fn partition(account: &Account, count: u32) -> u32 {
    fnv1a32(account.as_str().as_bytes()) % count.max(1)
}

fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Escapes a symbol or asset for use as one subject token or key segment (see the module docs).
pub fn escape_token(s: &str) -> Cow<'_, str> {
    if s.bytes().all(keeps) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keeps(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "={b:02X}");
        }
    }
    Cow::Owned(out)
}

/// Reverses [`escape_token`].
pub fn unescape_token(token: &str) -> Result<String, String> {
    if !token.contains('=') {
        return Ok(token.to_owned());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token
                .get(i + 1..i + 3)
                .ok_or("`=` not followed by two hex digits")?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| format!("`={hex}` is not hex"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escaped bytes are not UTF-8".to_owned())
}

/// The token of an event kind in `trading.events.<p>.<account>.<kind>`.
pub fn kind_token(kind: EventKind) -> &'static str {
    kind.as_str()
}

/// Parses an event kind token.
pub fn parse_kind(token: &str) -> Option<EventKind> {
    Some(match token {
        "fill" => EventKind::Fill,
        "order" => EventKind::Order,
        "balance" => EventKind::Balance,
        "position" => EventKind::Position,
        "funding" => EventKind::Funding,
        "transfer" => EventKind::Transfer,
        "config" => EventKind::Config,
        "margin_call" => EventKind::MarginCall,
        "snapshot" => EventKind::Snapshot,
        "correction" => EventKind::Correction,
        "stream" => EventKind::Stream,
        "mark" => EventKind::Mark,
        "brackets" => EventKind::Brackets,
        _ => return None,
    })
}

/// The address of an account event on `EVENTS`: `trading.events.<p>.<account>.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSubject {
    /// Partition of the account.
    pub partition: u32,
    /// The account.
    pub account: Account,
    /// The event kind.
    pub kind: EventKind,
}

impl EventSubject {
    /// The subject of `account`'s events of `kind` among `partitions`.
    pub fn new(account: &Account, kind: EventKind, partitions: u32) -> Self {
        EventSubject {
            partition: partition(account, partitions),
            account: account.clone(),
            kind,
        }
    }

    /// The subject text.
    pub fn subject(&self) -> String {
        format!(
            "{EVENTS_PREFIX}.{}.{}.{}",
            self.partition,
            self.account.as_str(),
            kind_token(self.kind)
        )
    }

    /// Parses `trading.events.<p>.<account>.<kind>`.
    pub fn parse(subject: &str) -> Result<Self, SubjectError> {
        let shape = || SubjectError::Shape {
            subject: subject.to_owned(),
            expected: "trading.events.<p>.<account>.<kind>",
        };
        let rest = subject
            .strip_prefix(EVENTS_PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(shape)?;
        let mut tokens = rest.split('.');
        let (Some(p), Some(account), Some(kind), None) =
            (tokens.next(), tokens.next(), tokens.next(), tokens.next())
        else {
            return Err(shape());
        };
        let bad = |token: &str, why: String| SubjectError::Token {
            subject: subject.to_owned(),
            token: token.to_owned(),
            why,
        };
        Ok(EventSubject {
            partition: p.parse().map_err(|e| bad(p, format!("{e}")))?,
            account: Account::new(account).map_err(|e| bad(account, e.to_string()))?,
            kind: parse_kind(kind).ok_or_else(|| bad(kind, "unknown kind".into()))?,
        })
    }
}

/// Every event of partition `p`: `trading.events.<p>.>` (a processor consumer's filter).
pub fn partition_filter(p: u32) -> String {
    format!("{EVENTS_PREFIX}.{p}.>")
}

/// Every event of one account: `trading.events.<p>.<account>.>`.
pub fn account_filter(account: &Account, partitions: u32) -> String {
    format!(
        "{EVENTS_PREFIX}.{}.{}.>",
        partition(account, partitions),
        account.as_str()
    )
}

/// `trading.pnl.<account>.summary`.
pub fn pnl_summary(account: &Account) -> String {
    format!("{PNL_PREFIX}.{}.summary", account.as_str())
}

/// `trading.pnl.<account>.position.<symbol>.<side>`.
pub fn pnl_position(account: &Account, symbol: &Symbol, side: PositionSide) -> String {
    format!(
        "{PNL_PREFIX}.{}.position.{}.{}",
        account.as_str(),
        escape_token(symbol.as_str()),
        side.as_str()
    )
}

/// `trading.alerts.<account>.<severity>.<type>`.
pub fn alert(account: &Account, severity: &str, kind: &str) -> String {
    format!("{ALERTS_PREFIX}.{}.{severity}.{kind}", account.as_str())
}

/// `trading.recon.<account>.<kind>`.
pub fn recon(account: &Account, kind: &str) -> String {
    format!("{RECON_PREFIX}.{}.{kind}", account.as_str())
}

/// Key of KV `positions`: `<account>.<symbol>.<side>`.
pub fn position_key(account: &Account, symbol: &Symbol, side: PositionSide) -> String {
    format!(
        "{}.{}.{}",
        account.as_str(),
        escape_token(symbol.as_str()),
        side.as_str()
    )
}

/// Key of KV `accounts`: `<account>`.
pub fn account_key(account: &Account) -> String {
    account.as_str().to_owned()
}

/// Key of KV `marks`: `<symbol>`.
pub fn mark_key(symbol: &Symbol) -> String {
    escape_token(symbol.as_str()).into_owned()
}

/// Parses a KV `marks` key back to its symbol.
pub fn parse_mark_key(key: &str) -> Result<Symbol, SubjectError> {
    let bad = |why: String| SubjectError::Token {
        subject: key.to_owned(),
        token: key.to_owned(),
        why,
    };
    let text = unescape_token(key).map_err(bad)?;
    Symbol::new(&text).map_err(|e| bad(e.to_string()))
}

/// Key of KV `leases`: `processor.<p>`.
pub fn lease_key(p: u32) -> String {
    format!("processor.{p}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(s: &str) -> Account {
        Account::new(s).expect("valid alias")
    }

    #[test]
    fn fnv1a32_matches_the_published_test_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a" and "foobar".
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn event_subjects_round_trip() {
        let s = EventSubject::new(&account("sub-1"), EventKind::MarginCall, 16);
        let text = s.subject();
        assert!(text.starts_with("trading.events.") && text.ends_with(".sub-1.margin_call"));
        assert_eq!(EventSubject::parse(&text), Ok(s));
        assert!(EventSubject::parse("trading.events.1.main").is_err());
        assert!(EventSubject::parse("trading.events.x.main.fill").is_err());
        assert!(EventSubject::parse("trading.events.1.main.nope").is_err());
        assert!(EventSubject::parse("trading.pnl.1.main.fill").is_err());
    }

    #[test]
    fn symbols_escape_one_way_and_back() {
        assert!(matches!(escape_token("BTCUSDT"), Cow::Borrowed("BTCUSDT")));
        let odd = "币安人生USDT";
        let escaped = escape_token(odd);
        assert_eq!(escaped, "=E5=B8=81=E5=AE=89=E4=BA=BA=E7=94=9FUSDT");
        assert_eq!(unescape_token(&escaped).as_deref(), Ok(odd));
        for s in [
            "A.B",
            "A*B",
            "A>B",
            "A B",
            "A=B",
            "1000PEPEUSDT",
            "BTCUSDT_260327",
        ] {
            let e = escape_token(s);
            assert!(
                e.bytes().all(|b| keeps(b) || b == b'='),
                "{s} escaped to {e}"
            );
            assert_eq!(unescape_token(&e).as_deref(), Ok(s));
        }
        assert!(unescape_token("A=4").is_err());
        assert!(unescape_token("A=ZZ").is_err());
        assert!(unescape_token("=FF").is_err());
    }

    #[test]
    fn keys_and_public_subjects() {
        let a = account("main");
        let sym = Symbol::new("ETHUSDT").expect("symbol");
        assert_eq!(
            position_key(&a, &sym, PositionSide::Long),
            "main.ETHUSDT.LONG"
        );
        assert_eq!(
            pnl_position(&a, &sym, PositionSide::Both),
            "trading.pnl.main.position.ETHUSDT.BOTH"
        );
        assert_eq!(pnl_summary(&a), "trading.pnl.main.summary");
        assert_eq!(recon(&a, "wallet"), "trading.recon.main.wallet");
        assert_eq!(
            alert(&a, "critical", "margin"),
            "trading.alerts.main.critical.margin"
        );
        assert_eq!(lease_key(3), "processor.3");
        assert_eq!(parse_mark_key(&mark_key(&sym)), Ok(sym));
        assert_eq!(
            account_filter(&a, 16),
            format!("trading.events.{}.main.>", partition(&a, 16))
        );
    }
}
