//! Serde mirrors of the REST responses (PROTOCOL §3, §5.2), field for field.
//!
//! Unlike the stream types these own their strings, so that they are `DeserializeOwned` and can be read
//! straight from an HTTP body; REST is not on the hot path. Ids and times accept a JSON number or a string
//! holding it (ccxt's recordings store them as strings). A field is required only when a parser needs it;
//! the v2-only and v3-only fields of the account and positionRisk responses are optional, so one type
//! reads both versions.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::scalar::{read, read_opt};

/// `GET /fapi/v1/time`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    /// Server time, ms.
    #[serde(deserialize_with = "read")]
    pub server_time: i64,
}

/// `POST` / `PUT /fapi/v1/listenKey`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenKeyResponse {
    /// The key (one per account and API key).
    pub listen_key: String,
}

/// The error body of any endpoint: `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// Binance error code (negative), e.g. `-1021` timestamp outside recvWindow, `-1125` bad listenKey.
    #[serde(deserialize_with = "read")]
    pub code: i64,
    /// Human-readable message.
    #[serde(default)]
    pub msg: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Binance error {}: {}", self.code, self.msg)
    }
}

/// `GET /fapi/v2/account` and `GET /fapi/v3/account`. v3 drops the configuration fields (marked v2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInformation {
    /// v2: fee tier.
    #[serde(default, deserialize_with = "read_opt")]
    pub fee_tier: Option<u32>,
    /// v2: BNB fee burn on.
    #[serde(default, deserialize_with = "read_opt")]
    pub fee_burn: Option<bool>,
    /// v2: trading allowed.
    #[serde(default, deserialize_with = "read_opt")]
    pub can_trade: Option<bool>,
    /// v2: deposits allowed.
    #[serde(default, deserialize_with = "read_opt")]
    pub can_deposit: Option<bool>,
    /// v2: withdrawals allowed.
    #[serde(default, deserialize_with = "read_opt")]
    pub can_withdraw: Option<bool>,
    /// v2: update time (ignore).
    #[serde(default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
    /// v2: multi-assets margin mode on.
    #[serde(default, deserialize_with = "read_opt")]
    pub multi_assets_margin: Option<bool>,
    /// v2: trade group id (-1 for none).
    #[serde(default, deserialize_with = "read_opt")]
    pub trade_group_id: Option<i64>,
    /// Total initial margin (USD in multi-assets mode, USDT otherwise; so for all totals).
    #[serde(default, deserialize_with = "read_opt")]
    pub total_initial_margin: Option<Decimal>,
    /// Total maintenance margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_maint_margin: Option<Decimal>,
    /// Total wallet balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_wallet_balance: Option<Decimal>,
    /// Total unrealized profit.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_unrealized_profit: Option<Decimal>,
    /// Total margin balance (= wallet + unrealized).
    #[serde(default, deserialize_with = "read_opt")]
    pub total_margin_balance: Option<Decimal>,
    /// Total position initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_position_initial_margin: Option<Decimal>,
    /// Total open-order initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_open_order_initial_margin: Option<Decimal>,
    /// Total cross wallet balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_cross_wallet_balance: Option<Decimal>,
    /// Unrealized profit of cross positions.
    #[serde(default, deserialize_with = "read_opt")]
    pub total_cross_un_pnl: Option<Decimal>,
    /// Available balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub available_balance: Option<Decimal>,
    /// Maximum amount for transfer out.
    #[serde(default, deserialize_with = "read_opt")]
    pub max_withdraw_amount: Option<Decimal>,
    /// Per-asset figures.
    #[serde(default)]
    pub assets: Vec<AccountAsset>,
    /// Positions (v2: every symbol, zeros included; v3: symbols with a position or open order).
    #[serde(default)]
    pub positions: Vec<AccountPosition>,
}

/// `account.assets[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAsset {
    /// Asset.
    pub asset: String,
    /// Wallet balance.
    #[serde(deserialize_with = "read")]
    pub wallet_balance: Decimal,
    /// Unrealized profit.
    #[serde(default, deserialize_with = "read_opt")]
    pub unrealized_profit: Option<Decimal>,
    /// Margin balance (= wallet + unrealized).
    #[serde(default, deserialize_with = "read_opt")]
    pub margin_balance: Option<Decimal>,
    /// Maintenance margin required.
    #[serde(default, deserialize_with = "read_opt")]
    pub maint_margin: Option<Decimal>,
    /// Total initial margin required.
    #[serde(default, deserialize_with = "read_opt")]
    pub initial_margin: Option<Decimal>,
    /// Initial margin of positions.
    #[serde(default, deserialize_with = "read_opt")]
    pub position_initial_margin: Option<Decimal>,
    /// Initial margin of open orders.
    #[serde(default, deserialize_with = "read_opt")]
    pub open_order_initial_margin: Option<Decimal>,
    /// Cross wallet balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub cross_wallet_balance: Option<Decimal>,
    /// Unrealized profit of cross positions.
    #[serde(default, deserialize_with = "read_opt")]
    pub cross_un_pnl: Option<Decimal>,
    /// Available balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub available_balance: Option<Decimal>,
    /// Maximum amount for transfer out.
    #[serde(default, deserialize_with = "read_opt")]
    pub max_withdraw_amount: Option<Decimal>,
    /// v2: usable as margin in multi-assets mode.
    #[serde(default, deserialize_with = "read_opt")]
    pub margin_available: Option<bool>,
    /// Last update time, ms.
    #[serde(default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
}

/// `account.positions[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountPosition {
    /// Symbol.
    pub symbol: String,
    /// Position side, `BOTH` / `LONG` / `SHORT`.
    pub position_side: String,
    /// Signed position amount.
    #[serde(deserialize_with = "read")]
    pub position_amt: Decimal,
    /// Unrealized profit.
    #[serde(default, deserialize_with = "read_opt")]
    pub unrealized_profit: Option<Decimal>,
    /// v3: isolated margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub isolated_margin: Option<Decimal>,
    /// v3: notional.
    #[serde(default, deserialize_with = "read_opt")]
    pub notional: Option<Decimal>,
    /// v3: isolated wallet.
    #[serde(default, deserialize_with = "read_opt")]
    pub isolated_wallet: Option<Decimal>,
    /// Initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub initial_margin: Option<Decimal>,
    /// Maintenance margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub maint_margin: Option<Decimal>,
    /// v2: position initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub position_initial_margin: Option<Decimal>,
    /// v2: open-order initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub open_order_initial_margin: Option<Decimal>,
    /// v2: leverage (a string on the wire).
    #[serde(default, deserialize_with = "read_opt")]
    pub leverage: Option<u32>,
    /// v2: isolated margin mode.
    #[serde(default, deserialize_with = "read_opt")]
    pub isolated: Option<bool>,
    /// v2: average entry price (v3 has none: take it from positionRisk).
    #[serde(default, deserialize_with = "read_opt")]
    pub entry_price: Option<Decimal>,
    /// Breakeven price, where present.
    #[serde(default, deserialize_with = "read_opt")]
    pub break_even_price: Option<Decimal>,
    /// v2: maximum notional at the current leverage.
    #[serde(default, deserialize_with = "read_opt")]
    pub max_notional: Option<Decimal>,
    /// Bids notional.
    #[serde(default, deserialize_with = "read_opt")]
    pub bid_notional: Option<Decimal>,
    /// Ask notional.
    #[serde(default, deserialize_with = "read_opt")]
    pub ask_notional: Option<Decimal>,
    /// Last update time, ms (0 when never traded).
    #[serde(default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
}

/// `GET /fapi/v2/balance` and `GET /fapi/v3/balance` rows (same shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountBalance {
    /// Unique account code.
    #[serde(default)]
    pub account_alias: Option<String>,
    /// Asset.
    pub asset: String,
    /// Wallet balance.
    #[serde(deserialize_with = "read")]
    pub balance: Decimal,
    /// Cross wallet balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub cross_wallet_balance: Option<Decimal>,
    /// Unrealized profit of cross positions.
    #[serde(default, deserialize_with = "read_opt")]
    pub cross_un_pnl: Option<Decimal>,
    /// Available balance.
    #[serde(default, deserialize_with = "read_opt")]
    pub available_balance: Option<Decimal>,
    /// Maximum amount for transfer out.
    #[serde(default, deserialize_with = "read_opt")]
    pub max_withdraw_amount: Option<Decimal>,
    /// Usable as margin in multi-assets mode.
    #[serde(default, deserialize_with = "read_opt")]
    pub margin_available: Option<bool>,
    /// Last update time, ms.
    #[serde(default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
}

/// `GET /fapi/v2/positionRisk` and `GET /fapi/v3/positionRisk` rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionRisk {
    /// Symbol.
    pub symbol: String,
    /// Position side.
    pub position_side: String,
    /// Signed position amount (negative for shorts, also for hedge `SHORT` rows).
    #[serde(deserialize_with = "read")]
    pub position_amt: Decimal,
    /// Average entry price.
    #[serde(deserialize_with = "read")]
    pub entry_price: Decimal,
    /// Breakeven price.
    #[serde(default, deserialize_with = "read_opt")]
    pub break_even_price: Option<Decimal>,
    /// Mark price.
    #[serde(default, deserialize_with = "read_opt")]
    pub mark_price: Option<Decimal>,
    /// Unrealized profit.
    #[serde(default, deserialize_with = "read_opt")]
    pub un_realized_profit: Option<Decimal>,
    /// Liquidation price.
    #[serde(default, deserialize_with = "read_opt")]
    pub liquidation_price: Option<Decimal>,
    /// v2: leverage (a string on the wire).
    #[serde(default, deserialize_with = "read_opt")]
    pub leverage: Option<u32>,
    /// v2: maximum notional at the current leverage.
    #[serde(default, deserialize_with = "read_opt")]
    pub max_notional_value: Option<Decimal>,
    /// v2: margin type, `cross` / `isolated`.
    #[serde(default)]
    pub margin_type: Option<String>,
    /// Isolated margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub isolated_margin: Option<Decimal>,
    /// v2: auto add margin (the string `"true"` / `"false"` on the wire).
    #[serde(default, deserialize_with = "read_opt")]
    pub is_auto_add_margin: Option<bool>,
    /// Notional (negative for shorts).
    #[serde(default, deserialize_with = "read_opt")]
    pub notional: Option<Decimal>,
    /// v3: margin asset.
    #[serde(default)]
    pub margin_asset: Option<String>,
    /// Isolated wallet.
    #[serde(default, deserialize_with = "read_opt")]
    pub isolated_wallet: Option<Decimal>,
    /// v3: initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub initial_margin: Option<Decimal>,
    /// v3: maintenance margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub maint_margin: Option<Decimal>,
    /// v3: position initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub position_initial_margin: Option<Decimal>,
    /// v3: open-order initial margin.
    #[serde(default, deserialize_with = "read_opt")]
    pub open_order_initial_margin: Option<Decimal>,
    /// v3: auto-deleverage queue indicator.
    #[serde(default, deserialize_with = "read_opt")]
    pub adl: Option<u32>,
    /// v3: bids notional.
    #[serde(default, deserialize_with = "read_opt")]
    pub bid_notional: Option<Decimal>,
    /// v3: ask notional.
    #[serde(default, deserialize_with = "read_opt")]
    pub ask_notional: Option<Decimal>,
    /// Last update time, ms.
    #[serde(default, deserialize_with = "read_opt")]
    pub update_time: Option<i64>,
}

/// `GET /fapi/v1/userTrades` rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserTrade {
    /// Symbol.
    pub symbol: String,
    /// Trade id (same id space as `ORDER_TRADE_UPDATE.o.t` and `TRADE_LITE.t`).
    #[serde(deserialize_with = "read")]
    pub id: u64,
    /// Order id.
    #[serde(deserialize_with = "read")]
    pub order_id: u64,
    /// `BUY` / `SELL`.
    pub side: String,
    /// Price.
    #[serde(deserialize_with = "read")]
    pub price: Decimal,
    /// Quantity.
    #[serde(deserialize_with = "read")]
    pub qty: Decimal,
    /// Realized P&L, gross of fees.
    #[serde(deserialize_with = "read")]
    pub realized_pnl: Decimal,
    /// Margin asset (present 2022–2023, announced removed 2024, re-added 2026).
    #[serde(default)]
    pub margin_asset: Option<String>,
    /// Quote quantity.
    #[serde(default, deserialize_with = "read_opt")]
    pub quote_qty: Option<Decimal>,
    /// Commission, positive = paid.
    #[serde(deserialize_with = "read")]
    pub commission: Decimal,
    /// Commission asset.
    pub commission_asset: String,
    /// Trade time, ms.
    #[serde(deserialize_with = "read")]
    pub time: i64,
    /// Position side.
    pub position_side: String,
    /// Buyer side.
    #[serde(default, deserialize_with = "read_opt")]
    pub buyer: Option<bool>,
    /// Maker side.
    #[serde(deserialize_with = "read")]
    pub maker: bool,
    /// Base quantity (added 2026).
    #[serde(default, deserialize_with = "read_opt")]
    pub base_qty: Option<Decimal>,
    /// Pair (added 2026).
    #[serde(default)]
    pub pair: Option<String>,
}

/// `GET /fapi/v1/income` rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomeRow {
    /// Symbol, `""` for flows without one.
    #[serde(default)]
    pub symbol: String,
    /// Income type (`TRANSFER`, `FUNDING_FEE`, `REALIZED_PNL`, `COMMISSION`, … an open set).
    pub income_type: String,
    /// Signed effect on the wallet (commission is negative here, unlike in userTrades).
    #[serde(deserialize_with = "read")]
    pub income: Decimal,
    /// Asset.
    pub asset: String,
    /// Free text.
    #[serde(default)]
    pub info: Option<String>,
    /// Time, ms.
    #[serde(deserialize_with = "read")]
    pub time: i64,
    /// Transaction id, unique within an income type (can exceed 2^53).
    #[serde(deserialize_with = "read")]
    pub tran_id: u64,
    /// Trade id for `REALIZED_PNL` / `COMMISSION` rows: a string on the wire, `""` when none.
    #[serde(default, deserialize_with = "read_opt")]
    pub trade_id: Option<u64>,
}

/// `GET /fapi/v1/premiumIndex` (one object with `symbol`, an array without).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PremiumIndex {
    /// Symbol.
    pub symbol: String,
    /// Mark price.
    #[serde(deserialize_with = "read")]
    pub mark_price: Decimal,
    /// Index price.
    #[serde(default, deserialize_with = "read_opt")]
    pub index_price: Option<Decimal>,
    /// Estimated settle price.
    #[serde(default, deserialize_with = "read_opt")]
    pub estimated_settle_price: Option<Decimal>,
    /// Last funding rate (empty for delivery contracts).
    #[serde(default, deserialize_with = "read_opt")]
    pub last_funding_rate: Option<Decimal>,
    /// Interest rate.
    #[serde(default, deserialize_with = "read_opt")]
    pub interest_rate: Option<Decimal>,
    /// Next funding time, ms (0 for delivery contracts).
    #[serde(default, deserialize_with = "read_opt")]
    pub next_funding_time: Option<i64>,
    /// Time of the figures, ms.
    #[serde(deserialize_with = "read")]
    pub time: i64,
}

/// `GET /fapi/v1/leverageBracket` entry of one symbol. Its figures are JSON numbers, not strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolLeverageBrackets {
    /// Symbol.
    pub symbol: String,
    /// The user's bracket multiplier relative to the default brackets.
    #[serde(default, deserialize_with = "read_opt")]
    pub notional_coef: Option<Decimal>,
    /// Brackets.
    pub brackets: Vec<LeverageBracket>,
}

/// One bracket of [`SymbolLeverageBrackets`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageBracket {
    /// Bracket number (1 = smallest notional).
    #[serde(deserialize_with = "read")]
    pub bracket: u32,
    /// Maximum initial leverage.
    #[serde(deserialize_with = "read")]
    pub initial_leverage: u32,
    /// Notional cap (exclusive).
    #[serde(deserialize_with = "read")]
    pub notional_cap: Decimal,
    /// Notional floor (inclusive).
    #[serde(deserialize_with = "read")]
    pub notional_floor: Decimal,
    /// Maintenance margin rate.
    #[serde(deserialize_with = "read")]
    pub maint_margin_ratio: Decimal,
    /// Maintenance amount, subtracted from `notional × rate`.
    #[serde(deserialize_with = "read")]
    pub cum: Decimal,
}

/// `GET /fapi/v1/positionSide/dual`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionSideDual {
    /// `true` = hedge mode, `false` = one-way mode (for every symbol).
    #[serde(deserialize_with = "read")]
    pub dual_side_position: bool,
}

/// A response that is one object or an array of them, as `premiumIndex` and `leverageBracket` are with
/// and without `symbol`. Decoded without buffering (unlike `#[serde(untagged)]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany<T> {
    /// A single object.
    One(T),
    /// An array.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// All items as a vector.
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(item) => vec![item],
            OneOrMany::Many(items) => items,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object or an array of objects")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor(std::marker::PhantomData))
    }
}
