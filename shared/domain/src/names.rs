//! Names and scalar types: accounts, symbols, assets, sides and times.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Error for a name that does not follow its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An account alias must match `[A-Za-z0-9_-]{1,32}` (DESIGN §2).
    #[error("invalid account alias {0:?}: expected 1 to 32 characters of [A-Za-z0-9_-]")]
    Account(String),
    /// A symbol or asset must not be empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// A value that is not one of the known names of an enumeration.
    #[error("unknown {what} {value:?}")]
    Unknown {
        /// Which enumeration.
        what: &'static str,
        /// The value that was not recognised.
        value: String,
    },
}

macro_rules! shared_str {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Names are shared, so most equal pairs are the same allocation.
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                if Arc::ptr_eq(&self.0, &other.0) {
                    std::cmp::Ordering::Equal
                } else {
                    self.0.cmp(&other.0)
                }
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // Must hash like `str`: maps keyed by this type are looked up by `&str`.
                self.0.hash(state)
            }
        }

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

shared_str!(
    /// A configured account alias (`main`, `sub-1`), validated against `[A-Za-z0-9_-]{1,32}`.
    ///
    /// ```
    /// use acctmon_domain::Account;
    /// assert!(Account::new("sub-1").is_ok());
    /// assert!(Account::new("no spaces").is_err());
    /// ```
    Account
);

shared_str!(
    /// A Binance symbol exactly as the exchange publishes it (`BTCUSDT`; may be non-ASCII).
    /// Cheap to clone: the text is shared.
    Symbol
);

shared_str!(
    /// An asset name (`USDT`, `USDC`, `BNB`, `BNFCR`). Cheap to clone.
    Asset
);

impl Account {
    /// Validates and wraps an account alias.
    pub fn new(alias: &str) -> Result<Self, NameError> {
        let valid = (1..=32).contains(&alias.len())
            && alias
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(Arc::from(alias)))
        } else {
            Err(NameError::Account(alias.to_owned()))
        }
    }
}

impl Symbol {
    /// Wraps a symbol; only the empty string is refused.
    pub fn new(symbol: &str) -> Result<Self, NameError> {
        if symbol.is_empty() {
            Err(NameError::Empty("symbol"))
        } else {
            Ok(Self(Arc::from(symbol)))
        }
    }
}

impl Asset {
    /// Wraps an asset name; only the empty string is refused.
    pub fn new(asset: &str) -> Result<Self, NameError> {
        if asset.is_empty() {
            Err(NameError::Empty("asset"))
        } else {
            Ok(Self(Arc::from(asset)))
        }
    }
}

/// Quote assets that Binance uses as margin assets, longest first so that `BTCUSDT` is not read as `…DT`.
const MARGIN_QUOTES: [&str; 6] = ["FDUSD", "BNFCR", "USDT", "USDC", "BUSD", "USD"];

impl Symbol {
    /// The margin (quote) asset implied by the symbol's suffix, e.g. `USDT` for `BTCUSDT` and for the
    /// delivery contract `BTCUSDT_250328`. `None` when no known quote asset matches; events that carry
    /// the margin asset explicitly (`ma`, `marginAsset`) take precedence over this.
    ///
    /// ```
    /// use acctmon_domain::Symbol;
    /// assert_eq!(Symbol::new("ETHUSDC").unwrap().margin_asset_guess().unwrap().as_str(), "USDC");
    /// assert_eq!(Symbol::new("BTCUSDT_250328").unwrap().margin_asset_guess().unwrap().as_str(), "USDT");
    /// ```
    pub fn margin_asset_guess(&self) -> Option<Asset> {
        let base = self.0.split('_').next().unwrap_or(&self.0);
        MARGIN_QUOTES
            .iter()
            .find(|q| base.len() > q.len() && base.ends_with(*q))
            .map(|q| Asset(Arc::from(*q)))
    }
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// Buy: increases a long or reduces a short.
    Buy,
    /// Sell: increases a short or reduces a long.
    Sell,
}

impl Side {
    /// `+1` for a buy, `-1` for a sell, as a decimal sign.
    pub fn sign(self) -> rust_decimal::Decimal {
        match self {
            Side::Buy => rust_decimal::Decimal::ONE,
            Side::Sell => rust_decimal::Decimal::NEGATIVE_ONE,
        }
    }

    /// Parses Binance's `BUY` / `SELL`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match s {
            "BUY" => Ok(Side::Buy),
            "SELL" => Ok(Side::Sell),
            other => Err(NameError::Unknown {
                what: "side",
                value: other.to_owned(),
            }),
        }
    }
}

/// Position side: `BOTH` in one-way mode, `LONG` / `SHORT` legs in hedge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PositionSide {
    /// One-way mode: one signed position per symbol.
    Both,
    /// Hedge mode long leg.
    Long,
    /// Hedge mode short leg (its quantity is negative, like Binance's `pa`).
    Short,
}

impl PositionSide {
    /// Parses Binance's `BOTH` / `LONG` / `SHORT`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match s {
            "BOTH" => Ok(PositionSide::Both),
            "LONG" => Ok(PositionSide::Long),
            "SHORT" => Ok(PositionSide::Short),
            other => Err(NameError::Unknown {
                what: "position side",
                value: other.to_owned(),
            }),
        }
    }

    /// The wire name, as used in subjects and KV keys.
    pub fn as_str(self) -> &'static str {
        match self {
            PositionSide::Both => "BOTH",
            PositionSide::Long => "LONG",
            PositionSide::Short => "SHORT",
        }
    }
}

impl fmt::Display for PositionSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since the Unix epoch, as Binance sends them (`E`, `T`, `time`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds in one day.
    pub const DAY_MS: i64 = 86_400_000;

    /// The raw milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A trade id (Binance `t`, `id`, `tradeId`): 64-bit, may exceed 2^53.
pub type TradeId = u64;
/// An order id (Binance `i`, `orderId`): 64-bit, may exceed 2^53.
pub type OrderId = u64;
