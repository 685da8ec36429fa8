//! Which symbols' mark prices matter: those with an open position, those traded recently, the pairs of
//! commission assets (BNB → `BNBUSDT`), and the configured ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acctmon_domain::{Account, Event, PositionSide};

/// Assets whose value is taken as one unit of the margin asset: no pair to follow.
const STABLE: [&str; 5] = ["USDT", "USDC", "FDUSD", "BUSD", "BFUSD"];

#[derive(Default)]
struct State {
    /// (account, symbol, side) of non-zero positions.
    open: BTreeMap<(String, String, PositionSide), ()>,
    /// Last time a symbol was traded (or its commission asset paid).
    recent: HashMap<String, Instant>,
    /// Always followed.
    fixed: BTreeSet<String>,
}

/// The shared set of interesting symbols, fed by every account's events.
#[derive(Clone, Default)]
pub struct Interest(Arc<Mutex<State>>);

impl Interest {
    /// A set that always holds `fixed`.
    pub fn new(fixed: &[String]) -> Self {
        let state = State {
            fixed: fixed.iter().map(|s| s.to_uppercase()).collect(),
            ..State::default()
        };
        Interest(Arc::new(Mutex::new(state)))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes an event into account.
    pub fn note(&self, event: &Event) {
        match event {
            Event::Fill(f) => {
                let mut s = self.lock();
                let now = Instant::now();
                s.recent.insert(f.symbol.as_str().to_owned(), now);
                if let Some(c) = &f.commission
                    && !STABLE.contains(&c.asset.as_str())
                {
                    s.recent.insert(format!("{}USDT", c.asset.as_str()), now);
                }
            }
            Event::Position(p) => {
                let key = (
                    p.account.as_str().to_owned(),
                    p.symbol.as_str().to_owned(),
                    p.side,
                );
                let mut s = self.lock();
                if p.qty.is_zero() {
                    s.open.remove(&key);
                } else {
                    s.open.insert(key, ());
                }
            }
            Event::Snapshot(snap) => {
                let account = snap.account.as_str();
                let mut s = self.lock();
                s.open.retain(|(a, ..), ()| a != account);
                for p in snap.positions.iter().filter(|p| !p.qty.is_zero()) {
                    s.open.insert(
                        (account.to_owned(), p.symbol.as_str().to_owned(), p.side),
                        (),
                    );
                }
            }
            _ => {}
        }
    }

    /// Symbols in which `account` holds a position.
    pub fn open_symbols(&self, account: &Account) -> Vec<String> {
        self.lock()
            .open
            .keys()
            .filter(|(a, ..)| a == account.as_str())
            .map(|(_, s, _)| s.clone())
            .collect()
    }

    /// The symbols to follow now.
    pub fn wanted(&self, recent: Duration) -> BTreeSet<String> {
        let s = self.lock();
        let mut out = s.fixed.clone();
        out.extend(s.open.keys().map(|(_, sym, _)| sym.clone()));
        out.extend(
            s.recent
                .iter()
                .filter(|(_, t)| t.elapsed() <= recent)
                .map(|(sym, _)| sym.clone()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acctmon_domain::{
        Asset, Commission, Fill, FillSource, PositionUpdate, Side, Snapshot, SnapshotPosition,
        Symbol, Timestamp,
    };
    use rust_decimal::Decimal;

    fn account() -> Account {
        Account::new("a").expect("alias")
    }

    #[test]
    fn positions_fills_and_bnb_fees_make_a_symbol_wanted() {
        let i = Interest::new(&["solusdt".into()]);
        assert_eq!(
            i.wanted(Duration::from_secs(60)),
            BTreeSet::from(["SOLUSDT".to_owned()])
        );
        i.note(&Event::Fill(Fill {
            account: account(),
            symbol: Symbol::new("ETHUSDT").expect("symbol"),
            trade_id: 1,
            order_id: 1,
            client_order_id: None,
            side: Side::Buy,
            position_side: None,
            price: Decimal::ONE,
            qty: Decimal::ONE,
            commission: Some(Commission {
                asset: Asset::new("BNB").expect("asset"),
                amount: Decimal::ONE,
            }),
            realized_pnl: None,
            margin_asset: None,
            maker: true,
            time: Timestamp(1),
            event_time: Timestamp(1),
            source: FillSource::OrderUpdate,
        }));
        let wanted = i.wanted(Duration::from_secs(60));
        assert!(wanted.contains("ETHUSDT") && wanted.contains("BNBUSDT"));
        assert!(
            !i.wanted(Duration::ZERO).contains("ETHUSDT"),
            "no longer recent"
        );

        let position = |qty: i64| {
            Event::Position(PositionUpdate {
                account: account(),
                symbol: Symbol::new("BTCUSDT").expect("symbol"),
                side: PositionSide::Long,
                qty: Decimal::from(qty),
                entry_price: Decimal::ONE,
                breakeven_price: None,
                accumulated_realized: None,
                unrealized: None,
                margin_type: None,
                isolated_wallet: None,
                margin_asset: None,
                reason: "ORDER".into(),
                time: Timestamp(2),
                event_time: Timestamp(2),
            })
        };
        i.note(&position(3));
        assert_eq!(i.open_symbols(&account()), vec!["BTCUSDT".to_owned()]);
        assert!(i.wanted(Duration::ZERO).contains("BTCUSDT"));
        i.note(&position(0));
        assert!(i.open_symbols(&account()).is_empty());

        i.note(&Event::Snapshot(Snapshot {
            account: account(),
            hedge_mode: Some(false),
            balances: vec![],
            positions: vec![SnapshotPosition {
                symbol: Symbol::new("XRPUSDT").expect("symbol"),
                side: PositionSide::Both,
                qty: Decimal::NEGATIVE_ONE,
                entry_price: Decimal::ONE,
                margin_asset: None,
                update_time: Timestamp(3),
            }],
            time: Timestamp(3),
            since: None,
        }));
        assert_eq!(i.open_symbols(&account()), vec!["XRPUSDT".to_owned()]);
    }
}
