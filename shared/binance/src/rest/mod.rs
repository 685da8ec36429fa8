//! REST responses (PROTOCOL §3, §5.2): wire mirrors, and parsers into domain values.

mod parse;
mod wire;

pub use parse::{
    parse_balances, parse_income, parse_income_row, parse_leverage_brackets, parse_position_mode,
    parse_premium_index, parse_snapshot, parse_user_trade, rows_updated_until,
};
pub use wire::{
    AccountAsset, AccountBalance, AccountInformation, AccountPosition, ApiError, IncomeRow,
    LeverageBracket, ListenKeyResponse, OneOrMany, PositionRisk, PositionSideDual, PremiumIndex,
    ServerTime, SymbolLeverageBrackets, UserTrade,
};
