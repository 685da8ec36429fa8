//! The public figures of one account, computed from the books.

use acctmon_books::Books;
use acctmon_bus::pnl::{AccountPnl, POSITION_SCHEMA, PositionPnl, SUMMARY_SCHEMA};
use acctmon_domain::Account;
use rust_decimal::Decimal;

/// Every position leg of `account` that ever traded or is open, `updated_at` left at 0 (the caller
/// stamps what it writes, so that views compare by their figures).
pub fn positions(
    books: &Books,
    account: &Account,
    applied_seq: u64,
    event_time: i64,
) -> Vec<PositionPnl> {
    books
        .positions(Some(account))
        .into_iter()
        .filter(|(_, p)| p.fills() > 0 || !p.qty().is_zero())
        .map(|(_, p)| {
            let mark = books.market().mark(p.symbol());
            PositionPnl {
                schema: POSITION_SCHEMA.into(),
                account: account.clone(),
                symbol: p.symbol().clone(),
                side: p.side(),
                qty: p.qty().normalize(),
                entry_price: p.entry_price().normalize(),
                mark_price: mark.map(|m| m.normalize()),
                unrealized: p.unrealized().map(|u| u.normalize()),
                realized_gross: p.realized_gross().normalize(),
                commission: p.commission().normalize(),
                commission_native: p
                    .commission_native()
                    .iter()
                    .map(|(a, d)| (a.clone(), d.normalize()))
                    .collect(),
                funding: p.funding().normalize(),
                realized_net: p.realized_net().normalize(),
                margin_asset: p.margin_asset().clone(),
                fills: p.fills(),
                applied_seq,
                event_time,
                updated_at: 0,
            }
        })
        .collect()
}

/// The account's summary, `updated_at` left at 0.
pub fn summary(
    books: &Books,
    account: &Account,
    legs: &[PositionPnl],
    applied_seq: u64,
    event_time: i64,
) -> AccountPnl {
    let s = books.summary(account);
    let sum = |f: fn(&PositionPnl) -> Decimal| legs.iter().map(f).sum::<Decimal>().normalize();
    // Funding the books could not put on one leg (hedge mode holds two legs of a symbol).
    let unattributed: Decimal = s
        .as_ref()
        .map_or(Decimal::ZERO, |s| s.funding_unattributed.values().sum());
    AccountPnl {
        schema: SUMMARY_SCHEMA.into(),
        account: account.clone(),
        hedge_mode: s.as_ref().and_then(|s| s.hedge_mode),
        balances: books
            .wallets(account)
            .into_iter()
            .map(|(a, d)| (a, d.normalize()))
            .collect(),
        wallet: s.as_ref().and_then(|s| s.wallet),
        unrealized: s.as_ref().map_or(Decimal::ZERO, |s| s.unrealized),
        equity: s.as_ref().and_then(|s| s.equity),
        maint_margin: s.as_ref().and_then(|s| s.maint_margin),
        margin_ratio: s.as_ref().and_then(|s| s.margin_ratio),
        realized_gross: sum(|p| p.realized_gross),
        commission: sum(|p| p.commission),
        funding: (sum(|p| p.funding) + unattributed).normalize(),
        realized_net: (sum(|p| p.realized_net) + unattributed).normalize(),
        daily_pnl: s.as_ref().and_then(|s| s.performance.daily_pnl),
        drawdown: s.as_ref().and_then(|s| s.performance.drawdown),
        max_drawdown: s
            .as_ref()
            .map_or(Decimal::ZERO, |s| s.performance.max_drawdown),
        open_positions: legs.iter().filter(|p| !p.qty.is_zero()).count() as u64,
        applied_seq,
        event_time,
        updated_at: 0,
    }
}
