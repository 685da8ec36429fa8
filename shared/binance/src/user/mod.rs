//! The user-data stream (PROTOCOL §2): wire mirrors of every event, and parsers into domain events.

pub(crate) mod hot;
mod parse;
mod wire;

pub(crate) use parse::push_user_event;
pub use parse::{
    other_event_notice, parse_account_config_update, parse_account_update, parse_margin_call,
    parse_order_trade_update, parse_trade_lite, parse_user_event,
};
pub use wire::{
    ACCOUNT_CONFIG_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE, AccountConfig, AccountConfigUpdateEvent,
    AccountUpdateBalance, AccountUpdateData, AccountUpdateEvent, AccountUpdatePosition,
    AlgoOrderData, AlgoUpdateEvent, CONDITIONAL_ORDER_TRIGGER_REJECT,
    ConditionalOrderTriggerRejectEvent, GRID_UPDATE, GridData, GridUpdateEvent, LISTEN_KEY_EXPIRED,
    ListenKeyExpiredEvent, MARGIN_CALL, MarginCallEvent, MarginCallPositionRow, ORDER_TRADE_UPDATE,
    OrderReject, OrderTradeData, OrderTradeUpdateEvent, STRATEGY_UPDATE, StrategyData,
    StrategyUpdateEvent, SymbolConfig, TRADE_LITE, TradeLiteEvent, UnknownEvent, UserEvent,
};

/// Test helper shared with the integration tests and the benchmark.
#[cfg(test)]
#[path = "../../tests/common/compact.rs"]
pub(crate) mod compact_text;
