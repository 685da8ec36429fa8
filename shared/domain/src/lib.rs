//! Pure domain types of acctmon: accounts, symbols, assets, sides, times and the normalized events that
//! flow between the processes (fills, order updates, balance and position rows, funding, transfers,
//! snapshots, mark prices).
//!
//! This crate owns vocabulary only. It must not do IO, must not read the clock and must not depend on any
//! async runtime, transport or database crate; money and quantities are [`rust_decimal::Decimal`], ids are
//! 64-bit integers.

mod event;
mod names;

pub use event::{
    BalanceUpdate, Bracket, Commission, ConfigChange, ConfigUpdate, Correction, CorrectionTarget,
    Event, EventKind, Fill, FillSource, Funding, LeverageBrackets, MarginCall, MarginCallPosition,
    MarginType, MarkPrice, OrderStatus, OrderUpdate, PositionUpdate, Snapshot, SnapshotBalance,
    SnapshotPosition, StreamNotice, StreamStatus, Transfer,
};
pub use names::{
    Account, Asset, NameError, OrderId, PositionSide, Side, Symbol, Timestamp, TradeId,
};
pub use rust_decimal::Decimal;
