//! Binance USDⓈ-M Futures for acctmon: serde mirrors of the exchange's JSON (user-data events, the
//! mark-price stream, the REST responses the monitor reads) and pure parsers that turn them, with the
//! account alias as context, into the domain events of [`acctmon_domain`].
//!
//! This crate owns the wire format and its mapping only. It must not do IO (no sockets, HTTP, files) and
//! must not read the clock: every time in its output comes from the payload or from the caller. It does not
//! sign requests. Money is [`rust_decimal::Decimal`] parsed from the exchange's text, never `f64`; ids are
//! 64-bit integers, since order ids exceed 2^53.
//!
//! - [`user`]: `ORDER_TRADE_UPDATE`, `TRADE_LITE`, `ACCOUNT_UPDATE`, `MARGIN_CALL`, `ACCOUNT_CONFIG_UPDATE`,
//!   `ALGO_UPDATE`, … and `listenKeyExpired`.
//! - [`market`]: `markPriceUpdate` and the combined-stream wrapper.
//! - [`rest`]: account, balance, positionRisk, userTrades, income, premiumIndex, leverageBracket,
//!   positionSide/dual, server time, listenKey and the error body.
//! - [`decode_frame`]: one text frame (event, wrapper or array) → domain events; the hot path.
//! - [`Decoder`]: the same for a stream loop, sharing symbol and asset names between frames.
//! - [`ParseError`]: what failed, naming the payload and field.

mod decoder;
mod error;
mod frame;
pub mod market;
mod names;
mod reader;
pub mod rest;
mod scalar;
pub mod user;

pub use decoder::Decoder;
pub use error::ParseError;
pub use frame::{decode_frame, decode_frame_into, decode_json, decode_value};
