//! acctmon-sim: a Binance USDⓈ-M Futures stand-in for the demo, the integration tests and the benchmarks.
//!
//! [`exchange`] is the exchange side: accounts, wallets, positions and fills with Binance's semantics and
//! rounding, emitting the user-data events Binance emits, in Binance's JSON, with both arrival orders of
//! `ACCOUNT_UPDATE` and `ORDER_TRADE_UPDATE` for a fill. It is deliberately independent of acctmon's books
//! (it is the check on them) and deterministic for a seed ([`rng`]).
//!
//! This crate owns the simulated exchange. It must not depend on acctmon's books or wire parsers (tests
//! use them only to check the simulator against them).

pub mod activity;
pub mod admin;
pub mod auth;
pub mod clock;
pub mod exchange;
pub mod limits;
pub mod market;
pub mod orders;
pub mod rest;
pub mod rng;
pub mod server;
pub mod stream;
