//! Pure parsers: REST wire rows + the account alias (+ the time, where the response has none) → domain
//! values.

use acctmon_domain::{
    Account, Bracket, Commission, ConfigChange, ConfigUpdate, Event, Fill, FillSource, Funding,
    LeverageBrackets, MarkPrice, Snapshot, SnapshotBalance, SnapshotPosition, Timestamp, Transfer,
};

use super::wire::{
    AccountBalance, AccountInformation, IncomeRow, PositionRisk, PositionSideDual, PremiumIndex,
    SymbolLeverageBrackets, UserTrade,
};
use crate::ParseError;
use crate::names::{asset, opt_asset, opt_symbol, position_side, side, symbol};

const USER_TRADES: &str = "userTrades";
const INCOME: &str = "income";
const ACCOUNT: &str = "account";
const POSITION_RISK: &str = "positionRisk";
const BALANCE: &str = "balance";
const PREMIUM_INDEX: &str = "premiumIndex";
const LEVERAGE_BRACKET: &str = "leverageBracket";

/// A `userTrades` row → a [`Fill`] from [`FillSource::Rest`]; its time and event time are the trade time.
pub fn parse_user_trade(account: &Account, row: &UserTrade) -> Result<Fill, ParseError> {
    const P: &str = USER_TRADES;
    let time = Timestamp(row.time);
    Ok(Fill {
        account: account.clone(),
        symbol: symbol(P, "symbol", &row.symbol)?,
        trade_id: row.id,
        order_id: row.order_id,
        client_order_id: None,
        side: side(P, "side", &row.side)?,
        position_side: Some(position_side(P, "positionSide", &row.position_side)?),
        price: row.price,
        qty: row.qty,
        commission: Some(Commission {
            asset: asset(P, "commissionAsset", &row.commission_asset)?,
            amount: row.commission,
        }),
        realized_pnl: Some(row.realized_pnl),
        margin_asset: opt_asset(P, "marginAsset", row.margin_asset.as_deref())?,
        maker: row.maker,
        time,
        event_time: time,
        source: FillSource::Rest,
    })
}

/// Income types for money the owner moved between wallets or accounts; daily P&L excludes them.
const EXTERNAL_INCOME: [&str; 6] = [
    "TRANSFER",
    "INTERNAL_TRANSFER",
    "CROSS_COLLATERAL_TRANSFER",
    "STRATEGY_UMFUTURES_TRANSFER",
    "COIN_SWAP_DEPOSIT",
    "COIN_SWAP_WITHDRAW",
];

/// An `income` row → a wallet movement, or `None` for `REALIZED_PNL` and `COMMISSION` rows (those are
/// part of the fills from `userTrades`).
///
/// `FUNDING_FEE` → [`Funding`]; transfers (`TRANSFER`, `INTERNAL_TRANSFER`, `CROSS_COLLATERAL_TRANSFER`,
/// `STRATEGY_UMFUTURES_TRANSFER`, `COIN_SWAP_*`) → external [`Transfer`]; every other type
/// (rebates, bonuses, insurance clearance, unknown types) → [`Transfer`] counted as income.
pub fn parse_income_row(account: &Account, row: &IncomeRow) -> Result<Option<Event>, ParseError> {
    const P: &str = INCOME;
    let time = Timestamp(row.time);
    let kind = row.income_type.as_str();
    let event = match kind {
        "REALIZED_PNL" | "COMMISSION" => return Ok(None),
        "FUNDING_FEE" => Event::Funding(Funding {
            account: account.clone(),
            asset: asset(P, "asset", &row.asset)?,
            symbol: opt_symbol(P, "symbol", Some(&row.symbol))?,
            amount: row.income,
            tran_id: Some(row.tran_id),
            time,
            event_time: time,
        }),
        _ => Event::Transfer(Transfer {
            account: account.clone(),
            asset: asset(P, "asset", &row.asset)?,
            amount: row.income,
            reason: kind.to_owned(),
            external: EXTERNAL_INCOME.contains(&kind),
            tran_id: Some(row.tran_id),
            time,
            event_time: time,
        }),
    };
    Ok(Some(event))
}

/// All `income` rows → their wallet movements, in order, skipping fill-related rows.
pub fn parse_income(account: &Account, rows: &[IncomeRow]) -> Result<Vec<Event>, ParseError> {
    rows.iter()
        .filter_map(|row| parse_income_row(account, row).transpose())
        .collect()
}

/// The newest `updateTime` among the asset and position rows of `account`: its answer describes the
/// account as of that exchange time at least. A snapshot stamped with a local estimate of the
/// exchange's clock must not be older than this (PROTOCOL §1.6, step 5: events newer than the
/// snapshot's `updateTime`s are the ones to apply on top of it). `positionRisk` rows are left out: they
/// are read later, and the quantities come from `account`.
pub fn rows_updated_until(info: &AccountInformation) -> Option<i64> {
    let assets = info.assets.iter().filter_map(|a| a.update_time);
    let positions = info.positions.iter().filter_map(|p| p.update_time);
    assets.chain(positions).max()
}

/// `account` (v2 or v3), optionally with `positionRisk` rows (v2 or v3) and the position mode → a
/// [`Snapshot`] at `time` (the server time of the request, which the responses do not carry).
///
/// Balances are every asset row's wallet balance. Positions are the account's non-zero rows; the entry
/// price comes from the account row (v2) or else from the positionRisk row of the same symbol and side (v3
/// account rows have none, so v3 callers must pass positionRisk). The margin asset comes from positionRisk
/// v3, when given.
pub fn parse_snapshot(
    account: &Account,
    info: &AccountInformation,
    position_risk: &[PositionRisk],
    mode: Option<&PositionSideDual>,
    time: Timestamp,
) -> Result<Snapshot, ParseError> {
    let balances = info
        .assets
        .iter()
        .map(|row| {
            Ok(SnapshotBalance {
                asset: asset(ACCOUNT, "assets[].asset", &row.asset)?,
                wallet: row.wallet_balance,
            })
        })
        .collect::<Result<_, ParseError>>()?;

    let mut positions = Vec::new();
    for row in info.positions.iter().filter(|p| !p.position_amt.is_zero()) {
        let risk = position_risk
            .iter()
            .find(|r| r.symbol == row.symbol && r.position_side == row.position_side);
        let entry_price = match (row.entry_price, risk) {
            (Some(price), _) => price,
            (None, Some(risk)) => risk.entry_price,
            (None, None) => {
                return Err(ParseError::Missing {
                    payload: ACCOUNT,
                    what: format!(
                        "entry price of {} {} (account v3 rows have none: pass the positionRisk rows)",
                        row.symbol, row.position_side
                    ),
                });
            }
        };
        positions.push(SnapshotPosition {
            symbol: symbol(ACCOUNT, "positions[].symbol", &row.symbol)?,
            side: position_side(ACCOUNT, "positions[].positionSide", &row.position_side)?,
            qty: row.position_amt,
            entry_price,
            margin_asset: opt_asset(
                POSITION_RISK,
                "marginAsset",
                risk.and_then(|r| r.margin_asset.as_deref()),
            )?,
            update_time: Timestamp(row.update_time.unwrap_or_default()),
        });
    }

    Ok(Snapshot {
        account: account.clone(),
        hedge_mode: mode.map(|m| m.dual_side_position),
        balances,
        positions,
        time,
        since: None,
    })
}

/// `balance` (v2 or v3) rows → snapshot balances (wallet balance per asset).
pub fn parse_balances(rows: &[AccountBalance]) -> Result<Vec<SnapshotBalance>, ParseError> {
    rows.iter()
        .map(|row| {
            Ok(SnapshotBalance {
                asset: asset(BALANCE, "asset", &row.asset)?,
                wallet: row.balance,
            })
        })
        .collect()
}

/// A `premiumIndex` entry → [`MarkPrice`] at its `time`. A next funding time of 0 means none.
pub fn parse_premium_index(row: &PremiumIndex) -> Result<MarkPrice, ParseError> {
    Ok(MarkPrice {
        symbol: symbol(PREMIUM_INDEX, "symbol", &row.symbol)?,
        mark_price: row.mark_price,
        index_price: row.index_price,
        funding_rate: row.last_funding_rate,
        next_funding_time: row.next_funding_time.filter(|t| *t != 0).map(Timestamp),
        time: Timestamp(row.time),
    })
}

/// `leverageBracket` entries → [`LeverageBrackets`], brackets ordered by bracket number.
pub fn parse_leverage_brackets(
    entries: &[SymbolLeverageBrackets],
) -> Result<Vec<LeverageBrackets>, ParseError> {
    entries
        .iter()
        .map(|entry| {
            let mut brackets: Vec<Bracket> = entry
                .brackets
                .iter()
                .map(|b| Bracket {
                    bracket: b.bracket,
                    initial_leverage: b.initial_leverage,
                    notional_floor: b.notional_floor,
                    notional_cap: b.notional_cap,
                    maint_margin_ratio: b.maint_margin_ratio,
                    cum: b.cum,
                })
                .collect();
            brackets.sort_by_key(|b| b.bracket);
            Ok(LeverageBrackets {
                symbol: symbol(LEVERAGE_BRACKET, "symbol", &entry.symbol)?,
                brackets,
            })
        })
        .collect()
}

/// `positionSide/dual` → a position-mode [`ConfigUpdate`] at `time` (the response has no time).
pub fn parse_position_mode(
    account: &Account,
    mode: &PositionSideDual,
    time: Timestamp,
) -> ConfigUpdate {
    ConfigUpdate {
        account: account.clone(),
        change: ConfigChange::PositionMode {
            hedge: mode.dual_side_position,
        },
        time,
        event_time: time,
    }
}
