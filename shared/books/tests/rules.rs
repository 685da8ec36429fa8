//! The rules of the books (DESIGN §5), one table or case per rule, named for what it pins.

// Helpers of these tests panic on malformed fixtures: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use acctmon_books::{Books, BooksConfig, DiscrepancyKind, Outcome, Report, TradeStats};
use acctmon_domain::*;
use rust_decimal::Decimal;
use support::*;

use PositionSide::{Both, Long, Short};
use Side::{Buy, Sell};

fn books() -> Books {
    Books::new(BooksConfig::default())
}

fn apply_all(books: &mut Books, fills: &[Fill]) {
    for f in fills {
        books.apply(&Event::Fill(f.clone()));
    }
}

fn leg<'a>(b: &'a Books, symbol: &str, side: PositionSide) -> &'a acctmon_books::Position {
    b.position(&account(), symbol, side)
        .expect("position exists")
}

/// The four cases of the original plan, under Binance semantics.
#[test]
fn plan_cases_under_binance_semantics() {
    struct Case {
        name: &'static str,
        fills: Vec<Fill>,
        qty: &'static str,
        entry: &'static str,
        gross: &'static str,
        net: &'static str,
    }
    let cases = [
        Case {
            name: "long 1 @ 50000 then sell @ 55000 with fees 25 and 27.5",
            fills: vec![
                fill(1, "BTCUSDT", Buy, Both, "1", "50000", "25"),
                fill(2, "BTCUSDT", Sell, Both, "1", "55000", "27.5"),
            ],
            qty: "0",
            entry: "0",
            gross: "5000",
            net: "4947.5",
        },
        Case {
            name: "mirrored short: sell 1 @ 50000, buy back @ 45000 with fees 25 and 22.5",
            fills: vec![
                fill(1, "BTCUSDT", Sell, Both, "1", "50000", "25"),
                fill(2, "BTCUSDT", Buy, Both, "1", "45000", "22.5"),
            ],
            qty: "0",
            entry: "0",
            gross: "5000",
            net: "4952.5",
        },
        Case {
            name: "two buys at 50000 and 52000 average 51000",
            fills: vec![
                fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0"),
                fill(2, "BTCUSDT", Buy, Both, "1", "52000", "0"),
            ],
            qty: "2",
            entry: "51000",
            gross: "0",
            net: "0",
        },
        Case {
            name: "buy 1 @ 50000 then sell 2 @ 52000 flips to -1 @ 52000",
            fills: vec![
                fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0"),
                fill(2, "BTCUSDT", Sell, Both, "2", "52000", "0"),
            ],
            qty: "-1",
            entry: "52000",
            gross: "2000",
            net: "2000",
        },
    ];
    for c in cases {
        let mut b = books();
        apply_all(&mut b, &c.fills);
        let p = leg(&b, "BTCUSDT", Both);
        assert_eq!(p.qty(), d(c.qty), "{}: qty", c.name);
        assert_eq!(p.entry_price(), d(c.entry), "{}: entry", c.name);
        assert_eq!(p.realized_gross(), d(c.gross), "{}: gross", c.name);
        assert_eq!(p.realized_net(), d(c.net), "{}: net", c.name);
        assert!(b.discrepancies().is_empty(), "{}", c.name);
    }
}

#[test]
fn partial_reduce_keeps_entry_and_realizes_the_closed_part() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "ETHUSDT", Buy, Both, "3", "2000", "0"),
            fill(2, "ETHUSDT", Sell, Both, "1", "2100", "0"),
        ],
    );
    let p = leg(&b, "ETHUSDT", Both);
    assert_eq!(p.qty(), d("2"));
    assert_eq!(p.entry_price(), d("2000"));
    assert_eq!(p.realized_gross(), d("100"));
    assert_eq!(
        p.closed_cycles().len(),
        0,
        "a partial reduce does not close the cycle"
    );
}

#[test]
fn old_closed_cycles_are_added_up_not_kept() {
    let mut b = books();
    let rounds = acctmon_books::CYCLES_KEPT as u64 + 9;
    let mut results = Vec::new();
    for i in 0..rounds {
        // Bought at 100, sold at 100 + (i mod 5) − 2: wins, losses and flat cycles, fee 1 each way.
        let exit = 98 + i % 5;
        apply_all(
            &mut b,
            &[
                fill(2 * i + 1, "ETHUSDT", Buy, Both, "1", "100", "1"),
                fill(
                    2 * i + 2,
                    "ETHUSDT",
                    Sell,
                    Both,
                    "1",
                    &exit.to_string(),
                    "1",
                ),
            ],
        );
        results.push(Decimal::from(exit) - d("100") - d("2"));
    }
    let p = leg(&b, "ETHUSDT", Both);
    assert_eq!(p.closed_cycles().len(), acctmon_books::CYCLES_KEPT);
    assert_eq!(p.cycles_closed(), rounds);
    // The kept cycles are the newest.
    let kept: Vec<Decimal> = p.closed_cycles().iter().map(|c| c.result()).collect();
    assert_eq!(kept, results[results.len() - acctmon_books::CYCLES_KEPT..]);
    // Statistics and realized figures still count every cycle.
    assert_eq!(
        b.stats(None),
        TradeStats::from_results(results.iter().copied())
    );
    let kept_gross: Decimal = p.closed_cycles().iter().map(|c| c.realized_gross).sum();
    assert_eq!(kept_gross + p.forgotten_cycles_gross(), p.realized_gross());
}

#[test]
fn close_resets_entry_and_closes_the_cycle() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "ETHUSDT", Sell, Both, "2", "2000", "1"),
            fill(2, "ETHUSDT", Buy, Both, "2", "1900", "1"),
        ],
    );
    let p = leg(&b, "ETHUSDT", Both);
    assert_eq!((p.qty(), p.entry_price()), (d("0"), d("0")));
    let c = &p.closed_cycles()[0];
    assert_eq!(
        (c.realized_gross, c.commission, c.max_qty),
        (d("200"), d("2"), d("2"))
    );
    assert_eq!(c.result(), d("198"));
}

#[test]
fn flip_long_to_short_splits_commission_pro_rata() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "BTCUSDT", Buy, Both, "1", "50000", "10"),
            // closes 1 and opens 3: a quarter of the 40 fee belongs to the closed cycle.
            fill(2, "BTCUSDT", Sell, Both, "4", "51000", "40"),
        ],
    );
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!((p.qty(), p.entry_price()), (d("-3"), d("51000")));
    assert_eq!(p.commission(), d("50"));
    let closed = &p.closed_cycles()[0];
    assert_eq!(closed.commission, d("20"), "10 opening + 10 of the flip");
    assert_eq!(closed.result(), d("980"));
    let open = p.open_cycle().expect("the remainder opened a new cycle");
    assert_eq!(open.commission, d("30"));
    assert_eq!(open.max_qty, d("3"));
}

#[test]
fn hedge_legs_open_and_reduce_independently() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "BTCUSDT", Buy, Long, "2", "50000", "0"),
            fill(2, "BTCUSDT", Sell, Short, "1", "50500", "0"),
            fill(3, "BTCUSDT", Sell, Long, "1", "51000", "0"),
            fill(4, "BTCUSDT", Buy, Short, "1", "50000", "0"),
        ],
    );
    let long = leg(&b, "BTCUSDT", Long);
    let short = leg(&b, "BTCUSDT", Short);
    assert_eq!(
        (long.qty(), long.entry_price(), long.realized_gross()),
        (d("1"), d("50000"), d("1000"))
    );
    assert_eq!((short.qty(), short.realized_gross()), (d("0"), d("500")));
    assert!(b.position(&account(), "BTCUSDT", Both).is_none());
}

#[test]
fn realized_gross_matches_the_exchange_rp_without_discrepancy() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            with_rp(fill(1, "XEMUSDT", Buy, Both, "7259", "0.02755", "0"), "0"),
            with_rp(
                fill(2, "XEMUSDT", Sell, Both, "7259", "0.0275", "0.0399245"),
                "-0.36295",
            ),
        ],
    );
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    assert_eq!(leg(&b, "XEMUSDT", Both).realized_gross(), d("-0.36295"));
}

#[test]
fn realized_disagreement_is_reported_and_the_exchange_figure_booked() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0"),
            with_rp(fill(2, "BTCUSDT", Sell, Both, "1", "51000", "0"), "900"),
        ],
    );
    let ds = b.discrepancies();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].kind, ds[0].ours, ds[0].exchange),
        (DiscrepancyKind::Realized, d("1000"), d("900"))
    );
    assert_eq!(ds[0].trade_id, Some(2));
    assert_eq!(leg(&b, "BTCUSDT", Both).realized_gross(), d("900"));
}

#[test]
fn a_fill_is_applied_once_however_often_it_is_reported() {
    let full = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "25");
    let rest = Fill {
        source: FillSource::Rest,
        ..full.clone()
    };
    let orders: [(&str, Vec<Fill>); 4] = [
        ("repeat after reconnect", vec![full.clone(), full.clone()]),
        ("late REST backfill", vec![full.clone(), rest.clone()]),
        (
            "TRADE_LITE then ORDER_TRADE_UPDATE",
            vec![lite(&full), full.clone()],
        ),
        (
            "ORDER_TRADE_UPDATE then TRADE_LITE",
            vec![full.clone(), lite(&full)],
        ),
    ];
    for (name, reports) in orders {
        let mut b = books();
        // One-way mode known from a prior fill on another symbol, so TRADE_LITE applies at once.
        b.apply(&Event::Fill(fill(99, "ETHUSDT", Buy, Both, "1", "1", "0")));
        apply_all(&mut b, &reports);
        let p = leg(&b, "BTCUSDT", Both);
        assert_eq!(p.qty(), d("1"), "{name}");
        assert_eq!(p.fills(), 1, "{name}");
        assert_eq!(p.commission(), d("25"), "{name}: commission booked once");
    }
}

#[test]
fn trade_lite_completed_by_order_update_books_commission_and_checks_rp() {
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    let close = with_rp(fill(2, "BTCUSDT", Sell, Both, "1", "50500", "12.5"), "500");
    assert_eq!(
        b.apply(&Event::Fill(lite(&close))).outcome,
        Outcome::Applied
    );
    assert_eq!(
        b.apply(&Event::Fill(close.clone())).outcome,
        Outcome::Enriched
    );
    assert_eq!(b.apply(&Event::Fill(close)).outcome, Outcome::Duplicate);
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!((p.realized_gross(), p.commission()), (d("500"), d("12.5")));
    assert_eq!(p.closed_cycles()[0].result(), d("487.5"));
    assert!(b.discrepancies().is_empty());
}

/// Found by the simulator: with the fee paid in BNB, the USDT balance row of a reducing fill can
/// arrive between its notice and its full report, and agree with our estimate to within 1e-8. The
/// wallet must end at the exchange's figure, not at that figure plus the estimate's rounding.
#[test]
fn a_balance_row_between_notice_and_report_does_not_count_realized_twice() {
    let mut b = books();
    b.apply(&balance_row("USDT", "1000", Timestamp(1_600_000_000_000)));
    // Three buys at 1/3-ish prices put our entry between 8-decimal steps.
    for (id, price) in [(1, "100"), (2, "100.1"), (3, "100.1")] {
        b.apply(&Event::Fill(with_rp(
            fill(id, "SOLUSDT", Buy, Both, "1", price, "0"),
            "0",
        )));
    }
    let mut close = fill(4, "SOLUSDT", Sell, Both, "1", "101", "0");
    close.commission = Some(Commission {
        asset: asset("BNB"),
        amount: d("0.0001"),
    });
    // Exchange: entry 100.06666667 (8 dp), rp = round8(101 − 100.06666667) = 0.93333333.
    let close = with_rp(close, "0.93333333");
    b.apply(&Event::Fill(lite(&close)));
    b.apply(&balance_row("USDT", "1000.93333333", close.time));
    b.apply(&Event::Fill(close));
    b.settle(Timestamp(i64::MAX));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("1000.93333333")));
    assert_eq!(leg(&b, "SOLUSDT", Both).realized_gross(), d("0.93333333"));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
}

#[test]
fn trade_lite_waits_for_the_position_side_in_hedge_mode() {
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Long, "1", "50000", "0",
    )));
    let f = fill(2, "BTCUSDT", Buy, Long, "1", "52000", "0");
    assert_eq!(b.apply(&Event::Fill(lite(&f))).outcome, Outcome::Held);
    assert_eq!(b.held_fills(&account()), 1);
    assert_eq!(b.apply(&Event::Fill(f)).outcome, Outcome::Applied);
    assert_eq!(b.held_fills(&account()), 0);
    assert_eq!(leg(&b, "BTCUSDT", Long).entry_price(), d("51000"));
}

#[test]
fn bnb_commission_is_valued_at_the_bnb_mark_and_kept_in_both_units() {
    let mut b = books();
    b.apply(&balance_row("BNB", "10", Timestamp(1)));
    b.apply(&balance_row("USDT", "1000", Timestamp(1)));
    b.apply(&mark("BNBUSDT", "600", 2));
    let mut f = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0");
    f.commission = Some(Commission {
        asset: asset("BNB"),
        amount: d("0.03"),
    });
    b.apply(&Event::Fill(f));
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!(p.commission(), d("18"));
    assert_eq!(p.commission_native(), &[(asset("BNB"), d("0.03"))]);
    assert_eq!(b.wallet(&account(), "BNB"), Some(d("9.97")));
    assert_eq!(
        b.wallet(&account(), "USDT"),
        Some(d("1000")),
        "USDT wallet pays no fee"
    );
}

#[test]
fn funding_is_attributed_when_the_event_names_the_symbol() {
    let mut b = books();
    b.apply(&balance_row("USDT", "1000", Timestamp(1)));
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    b.apply(&funding("USDT", Some("BTCUSDT"), "-1.5", 1_800_000_000_000));
    b.apply(&funding("USDT", None, "-0.5", 1_800_000_000_001));
    // A repeat of the same funding is not booked twice.
    b.apply(&funding("USDT", Some("BTCUSDT"), "-1.5", 1_800_000_000_000));
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!(p.funding(), d("-1.5"));
    assert_eq!(p.realized_net(), d("-1.5"));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("998")));
    let s = b.summary(&account()).unwrap();
    assert_eq!(s.funding_unattributed.get("USDT"), Some(&d("-0.5")));
}

#[test]
fn equal_funding_of_two_symbols_at_one_time_is_booked_for_each() {
    let mut b = books();
    b.apply(&balance_row("USDT", "1000", Timestamp(1)));
    for (id, symbol) in [(1, "BTCUSDT"), (2, "ETHUSDT")] {
        b.apply(&Event::Fill(fill(id, symbol, Buy, Both, "1", "100", "0")));
    }
    let time = 1_800_000_000_000;
    b.apply(&funding("USDT", Some("BTCUSDT"), "-0.25", time));
    b.apply(&funding("USDT", Some("ETHUSDT"), "-0.25", time));
    assert_eq!(leg(&b, "BTCUSDT", Both).funding(), d("-0.25"));
    assert_eq!(leg(&b, "ETHUSDT", Both).funding(), d("-0.25"));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("999.5")));
}

#[test]
fn the_memory_of_money_movements_is_bounded_and_keeps_the_newest() {
    let mut b = books();
    b.apply(&balance_row("USDT", "0", Timestamp(1_800_000_000_000 - 1)));
    let payments = 5000;
    for i in 0..payments {
        b.apply(&funding("USDT", None, "1", 1_800_000_000_000 + i));
    }
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("5000")));
    // The newest are remembered: a repeat is not booked.
    b.apply(&funding(
        "USDT",
        None,
        "1",
        1_800_000_000_000 + payments - 1,
    ));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("5000")));
    // The oldest were forgotten, so the state does not grow with every payment ever made.
    b.apply(&funding("USDT", None, "1", 1_800_000_000_000));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("5001")));
    let state = rmp_serde::to_vec_named(&b.account_state(&account()).expect("state")).unwrap();
    assert!(state.len() < 40_000, "{} bytes of state", state.len());
}

#[test]
fn hedge_funding_is_split_between_open_legs_by_size() {
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Long, "3", "50000", "0",
    )));
    b.apply(&Event::Fill(fill(
        2, "BTCUSDT", Sell, Short, "1", "50000", "0",
    )));
    b.apply(&funding("USDT", Some("BTCUSDT"), "-4", 1_800_000_000_000));
    assert_eq!(leg(&b, "BTCUSDT", Long).funding(), d("-3"));
    assert_eq!(leg(&b, "BTCUSDT", Short).funding(), d("-1"));
}

#[test]
fn account_update_before_or_after_its_fill_gives_no_discrepancy() {
    let f1 = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "20");
    let f2 = with_rp(fill(2, "BTCUSDT", Sell, Both, "0.4", "51000", "8"), "400");
    let rows = |f: &Fill, qty: &str, entry: &str, wallet: &str| {
        vec![
            position_row("BTCUSDT", Both, qty, entry, f.time),
            balance_row("USDT", wallet, f.time),
        ]
    };
    let start = balance_row("USDT", "10000", Timestamp(1));
    let row1 = rows(&f1, "1", "50000", "9980");
    let row2 = rows(&f2, "0.6", "50000", "10372");
    let fe = |f: &Fill| Event::Fill(f.clone());
    let orders: Vec<(&str, Vec<Event>)> = vec![
        (
            "fills first",
            [
                vec![start.clone(), fe(&f1)],
                row1.clone(),
                vec![fe(&f2)],
                row2.clone(),
            ]
            .concat(),
        ),
        (
            "rows first",
            [
                vec![start.clone()],
                row1.clone(),
                vec![fe(&f1)],
                row2.clone(),
                vec![fe(&f2)],
            ]
            .concat(),
        ),
        (
            "trade lite, rows, full report",
            [
                vec![start.clone(), fe(&lite(&f1))],
                row1.clone(),
                vec![fe(&f1), fe(&lite(&f2))],
                row2.clone(),
                vec![fe(&f2)],
            ]
            .concat(),
        ),
    ];
    let mut reports = Vec::new();
    for (name, events) in orders {
        let mut b = books();
        for e in &events {
            b.apply(e);
        }
        b.settle(Timestamp(i64::MAX));
        assert!(
            b.discrepancies().is_empty(),
            "{name}: {:?}",
            b.discrepancies()
        );
        assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("0.6"), "{name}");
        assert_eq!(b.wallet(&account(), "USDT"), Some(d("10372")), "{name}");
        reports.push(serde_json::to_string(&Report::new(&b, None)).unwrap());
    }
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "{reports:#?}");
}

#[test]
fn real_disagreements_are_reported_and_the_exchange_figures_adopted() {
    struct Case {
        name: &'static str,
        row: Event,
        kind: DiscrepancyKind,
        ours: &'static str,
        exchange: &'static str,
    }
    let f = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0");
    let cases = [
        Case {
            name: "quantity",
            row: position_row("BTCUSDT", Both, "1.5", "50000", f.time),
            kind: DiscrepancyKind::Position,
            ours: "1",
            exchange: "1.5",
        },
        Case {
            name: "entry price",
            row: position_row("BTCUSDT", Both, "1", "50100", f.time),
            kind: DiscrepancyKind::EntryPrice,
            ours: "50000",
            exchange: "50100",
        },
        Case {
            name: "wallet",
            row: balance_row("USDT", "990", f.time),
            kind: DiscrepancyKind::Wallet,
            ours: "1000",
            exchange: "990",
        },
    ];
    for c in cases {
        let mut b = books();
        b.apply(&balance_row("USDT", "1000", Timestamp(1)));
        b.apply(&Event::Fill(f.clone()));
        b.apply(&c.row);
        b.settle(Timestamp(i64::MAX));
        let ds = b.discrepancies();
        assert_eq!(ds.len(), 1, "{}: {ds:?}", c.name);
        assert_eq!(
            (ds[0].kind, ds[0].ours, ds[0].exchange),
            (c.kind, d(c.ours), d(c.exchange)),
            "{}",
            c.name
        );
        match c.kind {
            DiscrepancyKind::Wallet => {
                assert_eq!(b.wallet(&account(), "USDT"), Some(d(c.exchange)))
            }
            DiscrepancyKind::Position => assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d(c.exchange)),
            _ => assert_eq!(leg(&b, "BTCUSDT", Both).entry_price(), d(c.exchange)),
        }
    }
}

#[test]
fn a_row_waiting_for_its_fill_is_judged_when_a_later_fill_arrives() {
    let mut b = books();
    let f1 = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0");
    b.apply(&Event::Fill(f1.clone()));
    // The exchange says 2 at the time of f1: wrong (a drift), decided when f2 (later) arrives.
    b.apply(&position_row("BTCUSDT", Both, "2", "50000", f1.time));
    assert!(b.discrepancies().is_empty(), "not decidable yet");
    b.apply(&Event::Fill(fill(
        2, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    assert_eq!(b.discrepancies().len(), 1);
    assert_eq!(
        leg(&b, "BTCUSDT", Both).qty(),
        d("3"),
        "adopted 2, then the new fill on top"
    );
}

#[test]
fn a_late_row_older_than_the_history_kept_is_neither_reported_nor_adopted() {
    let mut b = books();
    let fills: Vec<Fill> = (1..=30)
        .map(|i| fill(i, "BTCUSDT", Buy, Both, "1", "50000", "0"))
        .collect();
    apply_all(&mut b, &fills);
    // The row of the first fill, true at its time, comes after 29 later fills: more changes than the
    // leg keeps for late rows.
    b.apply(&position_row("BTCUSDT", Both, "1", "50000", fills[0].time));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("30"));
    // A late row the history still covers is judged: at the 29th fill's time the leg held 28, then
    // 29, never 27.
    b.apply(&position_row(
        "BTCUSDT",
        Both,
        "27",
        "50000",
        fills[28].time,
    ));
    assert_eq!(b.discrepancies().len(), 1);
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("28"), "30 + (27 - 29)");
}

#[test]
fn cycles_and_trade_statistics() {
    let mut b = books();
    apply_all(
        &mut b,
        &[
            fill(1, "BTCUSDT", Buy, Both, "1", "100", "1"),
            fill(2, "BTCUSDT", Sell, Both, "1", "110", "1"), // +8
            fill(3, "BTCUSDT", Sell, Both, "1", "110", "1"),
            fill(4, "BTCUSDT", Buy, Both, "1", "115", "1"), // -7
            fill(5, "ETHUSDT", Buy, Both, "2", "10", "0"),
            fill(6, "ETHUSDT", Sell, Both, "2", "12", "0"), // +4
            fill(7, "ETHUSDT", Buy, Both, "1", "10", "0"),  // still open
        ],
    );
    let s = b.stats(None);
    assert_eq!((s.cycles, s.wins, s.losses), (3, 2, 1));
    assert_eq!(s.gross_profit, d("12"));
    assert_eq!(s.gross_loss, d("-7"));
    assert_eq!(s.largest_win, Some(d("8")));
    assert_eq!(s.largest_loss, Some(d("-7")));
    assert_eq!(s.expectancy, Some(d("5") / d("3")));
    let r = Report::new(&b, None);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["stats"]["win_rate"], "0.6667");
    assert_eq!(v["stats"]["profit_factor"], "1.7143");
}

#[test]
fn unrealized_equity_and_margin_ratio_from_brackets() {
    let mut b = books();
    b.apply(&balance_row("USDT", "10000", Timestamp(1)));
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Sell, Both, "1", "52000", "0",
    )));
    b.apply(&Event::Brackets(LeverageBrackets {
        symbol: sym("BTCUSDT"),
        brackets: vec![
            Bracket {
                bracket: 1,
                initial_leverage: 125,
                notional_floor: d("0"),
                notional_cap: d("50000"),
                maint_margin_ratio: d("0.004"),
                cum: d("0"),
            },
            Bracket {
                bracket: 2,
                initial_leverage: 100,
                notional_floor: d("50000"),
                notional_cap: d("250000"),
                maint_margin_ratio: d("0.005"),
                cum: d("50"),
            },
        ],
    }));
    b.apply(&mark("BTCUSDT", "51000", 1_700_000_002_000));
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!(p.unrealized(), Some(d("1000")));
    let s = b.summary(&account()).unwrap();
    assert_eq!(s.equity, Some(d("11000")));
    // 51000 × 0.005 − 50 = 205; 205 / 11000
    assert_eq!(s.maint_margin, Some(d("205")));
    assert_eq!(s.margin_ratio, Some((d("205") / d("11000")).round_dp(8)));
}

#[test]
fn daily_pnl_is_net_of_transfers_with_a_configurable_boundary() {
    let hour = 3_600_000i64;
    let day0 = 1_700_006_400_000i64; // 2023-11-15 00:00 UTC
    let mut b = Books::new(BooksConfig {
        day_boundary_ms: BooksConfig::parse_day_boundary("08:00").unwrap(),
        ..BooksConfig::default()
    });
    b.apply(&balance_row("USDT", "1000", Timestamp(day0 + 9 * hour)));
    b.apply(&transfer("USDT", "500", true, day0 + 10 * hour));
    b.apply(&transfer("USDT", "5", false, day0 + 11 * hour)); // a rebate is P&L
    let s = b.summary(&account()).unwrap();
    assert_eq!(s.equity, Some(d("1505")));
    assert_eq!(s.performance.daily_pnl, Some(d("5")));
    // After the next 08:00 boundary, a new day starts from 1505.
    b.apply(&transfer("USDT", "-5", false, day0 + 33 * hour));
    let s = b.summary(&account()).unwrap();
    assert_eq!(s.performance.daily_pnl, Some(d("-5")));
    assert_eq!(b.days(&account()).len(), 1);
    assert_eq!(b.days(&account())[0].pnl, d("5"));
    assert_eq!(s.performance.drawdown, Some(d("5")));
}

#[test]
fn snapshot_sets_a_baseline_and_fills_before_it_are_not_applied_again() {
    let mut b = books();
    let f = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "5");
    b.apply(&Event::Snapshot(Snapshot {
        account: account(),
        hedge_mode: Some(false),
        balances: vec![SnapshotBalance {
            asset: asset("USDT"),
            wallet: d("995"),
        }],
        positions: vec![SnapshotPosition {
            symbol: sym("BTCUSDT"),
            side: Both,
            qty: d("1"),
            entry_price: d("50000"),
            margin_asset: Some(asset("USDT")),
            update_time: f.time,
        }],
        time: f.time,
        since: None,
    }));
    assert_eq!(b.apply(&Event::Fill(f)).outcome, Outcome::BeforeBaseline);
    b.apply(&Event::Fill(fill(
        2, "BTCUSDT", Sell, Both, "1", "50100", "5",
    )));
    let p = leg(&b, "BTCUSDT", Both);
    assert_eq!(
        (p.qty(), p.realized_gross(), p.commission()),
        (d("0"), d("100"), d("5"))
    );
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("1090")));
    assert!(b.discrepancies().is_empty());
}

#[test]
fn a_later_snapshot_checks_and_corrects() {
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    b.apply(&Event::Snapshot(Snapshot {
        account: account(),
        hedge_mode: None,
        balances: vec![],
        positions: vec![],
        time: Timestamp(1_800_000_000_000),
        since: None,
    }));
    b.settle(Timestamp(i64::MAX));
    let ds = b.discrepancies();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].kind, ds[0].ours, ds[0].exchange),
        (DiscrepancyKind::Position, d("1"), d("0"))
    );
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("0"));
}

#[test]
fn wallet_moves_by_realized_minus_commission_plus_funding_and_transfers() {
    let mut b = books();
    b.apply(&balance_row("USDT", "1000", Timestamp(1)));
    apply_all(
        &mut b,
        &[
            fill(1, "BTCUSDT", Buy, Both, "1", "50000", "25"),
            with_rp(fill(2, "BTCUSDT", Sell, Both, "1", "55000", "27.5"), "5000"),
        ],
    );
    b.apply(&funding("USDT", Some("BTCUSDT"), "-2.5", 1_800_000_000_000));
    b.apply(&transfer("USDT", "-100", true, 1_800_000_000_001));
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("5845")));
}

#[test]
fn a_trade_lite_never_completed_is_forgotten_after_4096_newer_ones() {
    let mut b = books();
    b.apply(&Event::Fill(fill(1, "BTCUSDT", Buy, Both, "1", "100", "0")));
    let first = fill(2, "BTCUSDT", Buy, Both, "1", "100", "1");
    assert_eq!(
        b.apply(&Event::Fill(lite(&first))).outcome,
        Outcome::Applied
    );
    for id in 3..(3 + 4096) {
        b.apply(&Event::Fill(lite(&fill(
            id, "BTCUSDT", Buy, Both, "1", "100", "0",
        ))));
    }
    // The full report of the first comes far too late: the fill is not applied twice, and the
    // memory of incomplete fills stays bounded.
    assert_eq!(b.apply(&Event::Fill(first)).outcome, Outcome::Duplicate);
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("4098"));
    let recent = fill(4000, "BTCUSDT", Buy, Both, "1", "100", "2");
    assert_eq!(b.apply(&Event::Fill(recent)).outcome, Outcome::Enriched);
}

/// The exchange keeps its entry price rounded to 8 decimals and averages each new fill into that
/// rounded figure; its `rp` and `ep` drift from the exact average by a few units of the 8th decimal
/// over many adds. That is not a disagreement, while a real one still is.
#[test]
fn an_exchange_entry_rounded_after_every_add_is_not_a_discrepancy() {
    let round8 = |x: rust_decimal::Decimal| {
        x.round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointNearestEven)
    };
    let mut b = books();
    // The exchange's figures, computed its way.
    let (mut qty, mut entry) = (d("0"), d("0"));
    let prices = [
        "50000.1", "50000.3", "49999.7", "50001.9", "50000.2", "49999.9", "50003.1",
    ];
    let mut id = 0;
    for round in 0..6 {
        for (i, p) in prices.iter().enumerate() {
            id += 1;
            let q = d(["0.003", "0.007", "0.011", "0.013"][(i + round) % 4]);
            entry = round8((entry * qty + d(p) * q) / (qty + q));
            qty += q;
            b.apply(&Event::Fill(with_rp(
                fill(id, "BTCUSDT", Buy, Both, &q.to_string(), p, "0"),
                "0",
            )));
        }
        let t = Timestamp(BASE + id as i64 * 1000);
        b.apply(&position_row(
            "BTCUSDT",
            Both,
            &qty.to_string(),
            &entry.to_string(),
            t,
        ));
    }
    // Closing at the exchange's rounded entry: its `rp` differs from ours in the 8th decimal.
    id += 1;
    let close = d("0.029");
    let rp = round8((d("50010.7") - entry) * close);
    b.apply(&Event::Fill(with_rp(
        fill(id, "BTCUSDT", Sell, Both, "0.029", "50010.7", "0"),
        &rp.to_string(),
    )));
    b.settle(Timestamp(i64::MAX));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    assert_eq!(leg(&b, "BTCUSDT", Both).realized_gross(), rp);

    // A realized figure off by a cent is still reported.
    id += 1;
    let rp = round8((d("50010.7") - entry) * close) + d("0.01");
    b.apply(&Event::Fill(with_rp(
        fill(id, "BTCUSDT", Sell, Both, "0.029", "50010.7", "0"),
        &rp.to_string(),
    )));
    assert_eq!(b.discrepancies().len(), 1);
    assert_eq!(b.discrepancies()[0].kind, DiscrepancyKind::Realized);
}

/// A snapshot of one BTCUSDT leg of `qty` requested from `first`'s time to one second after `inside`'s.
fn windowed_snapshot(qty: &str, first: &Fill, inside: &Fill) -> Event {
    Event::Snapshot(Snapshot {
        account: account(),
        hedge_mode: Some(false),
        balances: vec![],
        positions: vec![SnapshotPosition {
            symbol: sym("BTCUSDT"),
            side: Both,
            qty: d(qty),
            entry_price: d("50000"),
            margin_asset: Some(asset("USDT")),
            update_time: inside.time,
        }],
        time: Timestamp(inside.time.0 + 1000),
        since: Some(first.time),
    })
}

/// A REST snapshot is taken over several requests: a fill inside that window may be in it, and its
/// report may come after the snapshot; rows the snapshot supersedes are not judged.
#[test]
fn a_snapshot_taken_over_a_window_agrees_with_any_state_inside_it() {
    let mut b = books();
    let first = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0");
    b.apply(&Event::Fill(first.clone()));
    let inside = fill(2, "BTCUSDT", Buy, Both, "1", "50000", "0");
    // Requests from t(1) to t(3); positionRisk answered after the second fill (at t(2)).
    b.apply(&windowed_snapshot("2", &first, &inside));
    // The stream delivers the second fill after the snapshot, then a row from before the snapshot.
    b.apply(&Event::Fill(inside.clone()));
    b.apply(&position_row("BTCUSDT", Both, "1", "50000", first.time));
    b.apply(&Event::Fill(fill(
        4, "BTCUSDT", Sell, Both, "2", "50000", "0",
    )));
    b.settle(Timestamp(i64::MAX));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("0"));

    // The same snapshot claiming 3 disagrees with every state in its window.
    let mut b = books();
    b.apply(&Event::Fill(first.clone()));
    b.apply(&windowed_snapshot("3", &first, &inside));
    b.apply(&Event::Fill(inside));
    b.apply(&Event::Fill(fill(
        4, "BTCUSDT", Sell, Both, "1", "50000", "0",
    )));
    assert_eq!(b.discrepancies().len(), 1, "{:?}", b.discrepancies());
    assert_eq!(b.discrepancies()[0].kind, DiscrepancyKind::Position);
}

/// An account's own clock: settling one account leaves another's waiting rows alone.
#[test]
fn settling_one_account_leaves_the_others_waiting() {
    let mut b = books();
    let other = Account::new("other").unwrap();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    let late = Timestamp(BASE + 9_000);
    b.apply(&position_row("BTCUSDT", Both, "2", "50000", late));
    let mut theirs = fill(1, "BTCUSDT", Buy, Both, "1", "50000", "0");
    theirs.account = other.clone();
    theirs.time = Timestamp(1_800_000_000_000);
    b.apply(&Event::Fill(theirs));
    assert!(b.has_pending(&account()));
    assert_eq!(b.account_time(&account()), Some(late));
    assert!(b.settle_account(&other, Timestamp(i64::MAX)).is_empty());
    assert!(
        b.has_pending(&account()),
        "another account's settle judged nothing here"
    );
    let found = b.settle_account(&account(), late);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].ours, found[0].exchange), (d("1"), d("2")));
    assert!(!b.has_pending(&account()));
}

/// A row whose fill is slow to come waits, whoever reads the stream and however long it takes; a
/// `heard` notice at or past the row's time judges it, an earlier one does not, and a fill that comes
/// in time still decides it.
#[test]
fn a_waiting_row_is_judged_by_a_heard_notice_not_by_a_readers_clock() {
    let heard = |time: Timestamp| {
        Event::Stream(acctmon_domain::StreamNotice {
            account: account(),
            status: acctmon_domain::StreamStatus::Heard,
            time,
        })
    };
    let row_time = Timestamp(BASE + 2_000);
    // The row for fill 2 comes first; the fill follows a notice that stops short of the row.
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    b.apply(&position_row("BTCUSDT", Both, "2", "50000", row_time));
    let early = b.apply(&heard(Timestamp(row_time.0 - 1)));
    assert!(early.discrepancies.is_empty());
    assert!(b.has_pending(&account()), "the row's fill may still come");
    b.apply(&Event::Fill(fill(
        2, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    assert!(!b.has_pending(&account()));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    // The fill never comes: the notice past the row's time judges it, and the exchange's 2 is adopted.
    let mut b = books();
    b.apply(&Event::Fill(fill(
        1, "BTCUSDT", Buy, Both, "1", "50000", "0",
    )));
    b.apply(&position_row("BTCUSDT", Both, "2", "50000", row_time));
    let judged = b.apply(&heard(row_time));
    assert_eq!(judged.discrepancies.len(), 1, "{:?}", judged.discrepancies);
    assert_eq!(
        (
            judged.discrepancies[0].ours,
            judged.discrepancies[0].exchange
        ),
        (d("1"), d("2"))
    );
    assert!(!b.has_pending(&account()));
    let (_, leg) = b.positions(Some(&account()))[0];
    assert_eq!(leg.qty(), d("2"));
}

/// A burst of fills stamped with one millisecond (one order sweeping the book, or a simulator's burst),
/// each fill's balance and position rows arriving just before it as Binance may send them: every row
/// agrees, and the persisted books do not grow with the number of fills in the millisecond (they are
/// written after every batch).
#[test]
fn a_burst_in_one_millisecond_agrees_and_keeps_the_persisted_books_small() {
    let mut b = books();
    let t = Timestamp(BASE);
    b.apply(&balance_row("USDT", "100000", t));
    let burst = 5_000u64;
    let mut wallet = d("100000");
    for id in 1..=burst {
        wallet -= d("0.01");
        b.apply(&balance_row(
            "USDT",
            &wallet.to_string(),
            Timestamp(t.0 + 1),
        ));
        b.apply(&position_row(
            "BTCUSDT",
            Both,
            &(d("0.001") * rust_decimal::Decimal::from(id)).to_string(),
            "50000",
            Timestamp(t.0 + 1),
        ));
        let mut f = with_rp(
            fill(id, "BTCUSDT", Buy, Both, "0.001", "50000", "0.01"),
            "0",
        );
        f.time = Timestamp(t.0 + 1);
        f.event_time = f.time;
        b.apply(&Event::Fill(f));
    }
    b.settle(Timestamp(i64::MAX));
    assert!(
        b.discrepancies().is_empty(),
        "{:?}",
        &b.discrepancies()[..3]
    );
    assert_eq!(leg(&b, "BTCUSDT", Both).qty(), d("5"));
    let persisted = rmp_serde::to_vec_named(&b.account_state(&account()).unwrap())
        .unwrap()
        .len();
    // About 35 kB with 5 000 remembered trade ids; keeping every state of the millisecond makes it 380 kB.
    assert!(persisted < 100_000, "{persisted} bytes persisted");
}

/// A REST snapshot of a USDT wallet and `positions`, requested from `since` to `time` (ms after
/// [`BASE`]).
fn usdt_snapshot(
    hedge: bool,
    wallet: &str,
    since: i64,
    time: i64,
    positions: Vec<SnapshotPosition>,
) -> Event {
    Event::Snapshot(Snapshot {
        account: account(),
        hedge_mode: Some(hedge),
        balances: vec![SnapshotBalance {
            asset: asset("USDT"),
            wallet: d(wallet),
        }],
        positions,
        time: Timestamp(BASE + time),
        since: Some(Timestamp(BASE + since)),
    })
}

/// After a gap, ingest reads each symbol's trades in turn, then the snapshot: a symbol read early
/// misses its fills of the moments that a symbol read later still has, and those come live after the
/// snapshot, older than changes the wallet already took. The wallet's rows of the snapshot's window
/// are stated again by the snapshot and are not judged against that partial order.
#[test]
fn a_wallet_row_inside_a_snapshot_window_is_left_to_the_snapshot() {
    let at = |mut f: Fill, t: i64| {
        f.time = Timestamp(BASE + t);
        f.event_time = f.time;
        f
    };
    let held = |symbol: &str, qty: &str, price: &str, t: i64| SnapshotPosition {
        symbol: sym(symbol),
        side: Both,
        qty: d(qty),
        entry_price: d(price),
        margin_asset: Some(asset("USDT")),
        update_time: Timestamp(BASE + t),
    };
    let mut b = books();
    b.apply(&usdt_snapshot(
        false,
        "1000",
        0,
        0,
        vec![
            held("BTCUSDT", "0.01", "50000", 0),
            held("SOLUSDT", "1", "100", 0),
        ],
    ));
    // At 5000 a BTCUSDT fill (fee 4), at 5001 a SOLUSDT fill (fee 2). BTCUSDT's trades were read
    // before 5000, SOLUSDT's after 5001: the backfill has the SOLUSDT fill only.
    let btc = at(fill(3, "BTCUSDT", Buy, Both, "0.01", "50000", "4"), 5_000);
    let sol = at(fill(2, "SOLUSDT", Buy, Both, "1", "100", "2"), 5_001);
    b.apply(&Event::Fill(sol));
    b.apply(&usdt_snapshot(
        false,
        "994",
        5_000,
        5_010,
        vec![
            held("BTCUSDT", "0.02", "50000", 5_000),
            held("SOLUSDT", "2", "100", 5_001),
        ],
    ));
    // The stream: the row after the BTCUSDT fill, the fill, the row after the SOLUSDT fill.
    b.apply(&balance_row("USDT", "996", Timestamp(BASE + 5_000)));
    b.apply(&Event::Fill(btc));
    b.apply(&balance_row("USDT", "994", Timestamp(BASE + 5_001)));
    // Later rows are judged as ever: one agrees, one is off by 5.
    b.apply(&Event::Fill(at(
        fill(4, "ETHUSDT", Buy, Both, "1", "2000", "1"),
        6_000,
    )));
    b.apply(&balance_row("USDT", "993", Timestamp(BASE + 6_000)));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("993")));
    b.apply(&Event::Fill(at(
        fill(5, "ETHUSDT", Buy, Both, "1", "2000", "1"),
        7_000,
    )));
    b.apply(&balance_row("USDT", "987", Timestamp(BASE + 7_000)));
    b.settle(Timestamp(i64::MAX));
    assert_eq!(b.discrepancies().len(), 1, "{:?}", b.discrepancies());
    assert_eq!(b.discrepancies()[0].kind, DiscrepancyKind::Wallet);
    assert_eq!(b.wallet(&account(), "USDT"), Some(d("987")));
}

/// A snapshot supersedes the older rows of every leg, listed or not: after a reconnect the stream may
/// still deliver a row of a leg that was flat when the snapshot was taken, from before it, and the leg's
/// state at that time may be older than the history kept for late rows.
#[test]
fn a_snapshot_supersedes_older_rows_of_legs_it_does_not_list() {
    let mut b = books();
    b.apply(&usdt_snapshot(true, "1000", 0, 0, vec![]));
    // The long leg opens at 1000, then opens and closes again and again; flat since 22000.
    b.apply(&Event::Fill(fill(
        1, "ETHUSDT", Buy, Long, "0.144", "3000", "0",
    )));
    for id in 2..=22 {
        let side = if id % 2 == 0 { Sell } else { Buy };
        b.apply(&Event::Fill(fill(
            id, "ETHUSDT", side, Long, "0.144", "3000", "0",
        )));
    }
    assert_eq!(leg(&b, "ETHUSDT", Long).qty(), d("0"));
    b.apply(&usdt_snapshot(true, "1000", 23_000, 23_500, vec![]));
    // The stream delivers the row of the first fill now.
    b.apply(&position_row(
        "ETHUSDT",
        Long,
        "0.144",
        "3000",
        Timestamp(BASE + 1_000),
    ));
    b.settle(Timestamp(i64::MAX));
    assert!(b.discrepancies().is_empty(), "{:?}", b.discrepancies());
    // A row after the snapshot is still judged.
    b.apply(&position_row(
        "ETHUSDT",
        Long,
        "0.2",
        "3000",
        Timestamp(BASE + 24_000),
    ));
    b.settle(Timestamp(i64::MAX));
    assert_eq!(b.discrepancies().len(), 1, "{:?}", b.discrepancies());
    assert_eq!(b.discrepancies()[0].kind, DiscrepancyKind::Position);
}
