//! Invariants of the books against a naive reference replay, over random fill sequences.
//!
//! The reference plays the exchange: it keeps a position per leg the simplest way (signed quantity and
//! total cost), publishes `rp` rounded to 8 decimals, position rows with the entry price rounded to 8
//! decimals and wallet rows, as Binance does. The books must agree with it without a single
//! discrepancy, whatever the arrival order of each fill's reports.

// Helpers of these tests panic on malformed fixtures: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use acctmon_books::{AccountState, Books, BooksConfig, Report};
use acctmon_domain::*;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use support::*;

#[derive(Debug, Clone)]
struct Op {
    leg: PositionSide,
    side: Side,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
}

/// The exchange's view: signed quantity and cost of the open quantity per leg, and the wallet.
#[derive(Debug, Clone, Default)]
struct Reference {
    legs: Vec<(PositionSide, Decimal, Decimal)>,
    wallet: Decimal,
}

struct Published {
    rp: Decimal,
    closed: Decimal,
    qty: Decimal,
    entry: Decimal,
}

impl Reference {
    fn leg(&mut self, side: PositionSide) -> &mut (PositionSide, Decimal, Decimal) {
        if !self.legs.iter().any(|l| l.0 == side) {
            self.legs.push((side, Decimal::ZERO, Decimal::ZERO));
        }
        self.legs.iter_mut().find(|l| l.0 == side).unwrap()
    }

    fn trade(&mut self, op: &Op) -> Published {
        let leg = self.leg(op.leg);
        let signed = op.side.sign() * op.qty;
        let (mut rp, mut closed) = (Decimal::ZERO, Decimal::ZERO);
        if leg.1.is_zero() || leg.1.is_sign_positive() == signed.is_sign_positive() {
            leg.1 += signed;
            leg.2 += op.qty * op.price;
        } else {
            closed = op.qty.min(leg.1.abs());
            let avg = leg.2 / leg.1.abs();
            let dir = if leg.1.is_sign_positive() {
                Decimal::ONE
            } else {
                Decimal::NEGATIVE_ONE
            };
            rp = ((op.price - avg) * closed * dir)
                .round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero);
            leg.2 -= avg * closed;
            leg.1 += op.side.sign() * closed;
            let rest = op.qty - closed;
            if leg.1.is_zero() {
                leg.2 = Decimal::ZERO;
                if rest > Decimal::ZERO {
                    leg.1 = op.side.sign() * rest;
                    leg.2 = rest * op.price;
                }
            }
        }
        let qty = leg.1;
        let entry = if qty.is_zero() {
            Decimal::ZERO
        } else {
            (leg.2 / qty.abs()).round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero)
        };
        self.wallet += rp - op.fee;
        Published {
            rp,
            closed,
            qty,
            entry,
        }
    }
}

fn one_way_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (any::<bool>(), 1u32..4000, 9_000u32..11_000, 0u32..500).prop_map(|(buy, q, p, f)| Op {
            leg: PositionSide::Both,
            side: if buy { Side::Buy } else { Side::Sell },
            qty: Decimal::new(i64::from(q), 3),
            price: Decimal::new(i64::from(p), 1),
            fee: Decimal::new(i64::from(f), 4),
        }),
        1..40,
    )
}

/// Hedge ops: open or reduce a LONG or SHORT leg, never reducing more than the leg holds.
fn hedge_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (
            any::<bool>(),
            any::<bool>(),
            1u32..4000,
            9_000u32..11_000,
            0u32..500,
        ),
        1..40,
    )
    .prop_map(|raw| {
        let (mut long, mut short) = (Decimal::ZERO, Decimal::ZERO);
        raw.into_iter()
            .map(|(is_long, open, q, p, f)| {
                let held = if is_long { &mut long } else { &mut short };
                let mut qty = Decimal::new(i64::from(q), 3);
                let open = open || held.is_zero();
                if open {
                    *held += qty;
                } else {
                    qty = qty.min(*held);
                    *held -= qty;
                }
                let side = match (is_long, open) {
                    (true, true) | (false, false) => Side::Buy,
                    _ => Side::Sell,
                };
                Op {
                    leg: if is_long {
                        PositionSide::Long
                    } else {
                        PositionSide::Short
                    },
                    side,
                    qty,
                    price: Decimal::new(i64::from(p), 1),
                    fee: Decimal::new(i64::from(f), 4),
                }
            })
            .collect()
    })
}

/// Per fill: (OTU fill, position row, balance row, reference figures).
fn reports(ops: &[Op]) -> (Vec<(Fill, Event, Event)>, Reference, Vec<Published>) {
    let mut reference = Reference {
        legs: Vec::new(),
        wallet: d("100000"),
    };
    let mut out = Vec::new();
    let mut published = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let p = reference.trade(op);
        let id = i as u64 + 1;
        let mut f = fill(
            id,
            "BTCUSDT",
            op.side,
            op.leg,
            &op.qty.to_string(),
            &op.price.to_string(),
            &op.fee.to_string(),
        );
        f.realized_pnl = Some(p.rp);
        let row = position_row(
            "BTCUSDT",
            op.leg,
            &p.qty.to_string(),
            &p.entry.to_string(),
            f.time,
        );
        let bal = balance_row("USDT", &reference.wallet.to_string(), f.time);
        out.push((f, row, bal));
        published.push(p);
    }
    (out, reference, published)
}

fn run(events: &[Event]) -> Books {
    let mut b = Books::new(BooksConfig::default());
    b.apply(&balance_row("USDT", "100000", Timestamp(1)));
    for e in events {
        b.apply(e);
    }
    b.settle(Timestamp(i64::MAX));
    b
}

/// Arranges each fill's reports in one of several arrival orders, chosen per fill by `orders`.
fn arrange(reports: &[(Fill, Event, Event)], orders: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, (f, row, bal)) in reports.iter().enumerate() {
        let full = Event::Fill(f.clone());
        let quick = Event::Fill(lite(f));
        let order = orders.get(i).copied().unwrap_or(0) % 6;
        let mut these = match order {
            0 => vec![full, row.clone(), bal.clone()],
            1 => vec![row.clone(), bal.clone(), full],
            2 => vec![quick, row.clone(), bal.clone(), full],
            3 => vec![quick, full, bal.clone(), row.clone()],
            4 => vec![bal.clone(), full, row.clone()],
            _ => vec![full.clone(), row.clone(), bal.clone(), full],
        };
        events.append(&mut these);
    }
    events
}

fn check_against_reference(ops: &[Op], orders: &[u8]) -> Result<(), TestCaseError> {
    let (reports, reference, published) = reports(ops);
    let canonical = run(&arrange(&reports, &[]));
    let shuffled = run(&arrange(&reports, orders));
    for b in [&canonical, &shuffled] {
        prop_assert!(
            b.discrepancies().is_empty(),
            "discrepancies: {:?}",
            b.discrepancies()
        );
        // Quantity conservation, per leg.
        for (side, qty, _) in &reference.legs {
            let p = b.position(&account(), "BTCUSDT", *side).unwrap();
            let filled: Decimal = ops
                .iter()
                .filter(|o| o.leg == *side)
                .map(|o| o.side.sign() * o.qty)
                .sum();
            if *side == PositionSide::Both {
                prop_assert_eq!(p.qty(), filled);
            }
            prop_assert_eq!(p.qty(), *qty);
        }
        let gross: Decimal = b
            .positions(None)
            .iter()
            .map(|(_, p)| p.realized_gross())
            .sum();
        prop_assert_eq!(gross, published.iter().map(|p| p.rp).sum::<Decimal>());
        prop_assert_eq!(b.wallet(&account(), "USDT"), Some(reference.wallet));
        let fees: Decimal = b.positions(None).iter().map(|(_, p)| p.commission()).sum();
        prop_assert_eq!(fees, ops.iter().map(|o| o.fee).sum::<Decimal>());
    }
    // The arrival order changes nothing.
    let a = serde_json::to_string(&Report::new(&canonical, None)).unwrap();
    let s = serde_json::to_string(&Report::new(&shuffled, None)).unwrap();
    prop_assert_eq!(a, s);
    // Per fill, our own gross (no rp given) equals the closed-quantity formula the exchange applied.
    let mut own = Books::new(BooksConfig::default());
    let mut before = Decimal::ZERO;
    for ((f, _, _), p) in reports.iter().zip(&published) {
        let mut bare = f.clone();
        bare.realized_pnl = None;
        own.apply(&Event::Fill(bare));
        let after: Decimal = own
            .positions(None)
            .iter()
            .map(|(_, x)| x.realized_gross())
            .sum();
        let tolerance = d("0.00000001") + p.closed * d("0.00000001");
        prop_assert!(
            (after - before - p.rp).abs() <= tolerance,
            "fill {}: {} vs {}",
            f.trade_id,
            after - before,
            p.rp
        );
        if p.closed.is_zero() {
            prop_assert_eq!(after, before);
        }
        before = after;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_way_books_agree_with_the_exchange_in_any_arrival_order(
        ops in one_way_ops(),
        orders in prop::collection::vec(any::<u8>(), 40),
    ) {
        check_against_reference(&ops, &orders)?;
    }

    #[test]
    fn hedge_books_agree_with_the_exchange_in_any_arrival_order(
        ops in hedge_ops(),
        orders in prop::collection::vec(any::<u8>(), 40),
    ) {
        check_against_reference(&ops, &orders)?;
    }

    /// Persisting an account's books at any point and restoring them into fresh books changes nothing:
    /// the restored books go on exactly as the uninterrupted ones.
    #[test]
    fn books_persisted_and_restored_mid_stream_go_on_identically(
        ops in hedge_ops(),
        orders in prop::collection::vec(any::<u8>(), 40),
        cut in 0usize..200,
    ) {
        let (reports, _, _) = reports(&ops);
        let events = arrange(&reports, &orders);
        let cut = cut.min(events.len());
        let whole = run(&events);
        let mut first = Books::new(BooksConfig::default());
        first.apply(&balance_row("USDT", "100000", Timestamp(1)));
        for e in &events[..cut] {
            first.apply(e);
        }
        let bytes = rmp_serde::to_vec_named(&first.account_state(&account()).unwrap()).unwrap();
        let state: AccountState = rmp_serde::from_slice(&bytes).unwrap();
        prop_assert_eq!(state.account(), &account());
        let mut resumed = Books::new(BooksConfig::default());
        resumed.restore(state);
        for e in &events[cut..] {
            resumed.apply(e);
        }
        resumed.settle(Timestamp(i64::MAX));
        prop_assert!(resumed.discrepancies().is_empty(), "{:?}", resumed.discrepancies());
        let a = serde_json::to_string(&Report::new(&whole, None)).unwrap();
        let b = serde_json::to_string(&Report::new(&resumed, None)).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Realized + unrealized at any mark equals the mark-to-market of every fill: Σ qᵢ × (mark − pᵢ).
    /// Checked on books without `rp` (our own arithmetic), so it tests the cost method itself.
    #[test]
    fn realized_plus_unrealized_equals_mark_to_market(ops in one_way_ops(), mark_tenths in 9_000i64..11_000) {
        let mut b = Books::new(BooksConfig::default());
        for (i, op) in ops.iter().enumerate() {
            let f = fill(i as u64 + 1, "BTCUSDT", op.side, PositionSide::Both, &op.qty.to_string(), &op.price.to_string(), "0");
            b.apply(&Event::Fill(f));
        }
        let m = Decimal::new(mark_tenths, 1);
        b.apply(&mark("BTCUSDT", &m.to_string(), 1_900_000_000_000));
        let p = b.position(&account(), "BTCUSDT", PositionSide::Both).unwrap();
        let total = p.realized_gross() + p.unrealized().unwrap();
        let expected: Decimal = ops.iter().map(|o| o.side.sign() * o.qty * (m - o.price)).sum();
        // Averages are kept to 12 decimals: at most 5e-13 per unit of quantity per fill.
        prop_assert!((total - expected).abs() < d("0.00000001"), "{total} vs {expected}");
        // Each closing fill realized (price − entry) × closed × direction: the sum over cycles agrees.
        let cycles: Decimal = p.closed_cycles().iter().map(|c| c.realized_gross).sum::<Decimal>()
            + p.forgotten_cycles_gross()
            + p.open_cycle().map_or(Decimal::ZERO, |c| c.realized_gross);
        // (Equal up to the last of rust_decimal's 28 digits: an average entry may not terminate.)
        prop_assert!((cycles - p.realized_gross()).abs() < d("0.00000000000000000001"));
    }
}
