//! The simulator and acctmon's books are written independently; fed the simulator's events (through
//! acctmon's Binance parsers), the books must reproduce the simulator's ground truth exactly, with no
//! discrepancy, whatever order the events of each fill arrived in.

// Helpers of these tests panic on malformed data: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acctmon_binance::decode_frame;
use acctmon_books::{Books, BooksConfig};
use acctmon_domain::{Account, PositionSide, Timestamp};
use acctmon_sim::exchange::{AccountSpec, Exchange, ExchangeConfig, Leg, Side};
use rust_decimal::Decimal;

const SYMBOLS: [(&str, i64); 3] = [("BTCUSDT", 50_000), ("ETHUSDT", 3_000), ("SOLUSDT", 150)];

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Runs `steps` random actions and returns the exchange and its event log: (account or None for market
/// data, JSON text), in emission order.
fn simulate(seed: u64, steps: usize) -> (Exchange, Vec<(Option<usize>, String)>) {
    let accounts = vec![
        AccountSpec {
            name: "main".into(),
            hedge: false,
            fees_in_bnb: false,
        },
        AccountSpec {
            name: "hedged".into(),
            hedge: true,
            fees_in_bnb: false,
        },
        AccountSpec {
            name: "bnb-fees".into(),
            hedge: false,
            fees_in_bnb: true,
        },
    ];
    let mut x = Exchange::new(
        ExchangeConfig {
            seed,
            ..ExchangeConfig::default()
        },
        accounts,
    );
    let mut log = Vec::new();
    let mut time = 1_767_225_600_000i64;
    let mut prices: Vec<i64> = SYMBOLS.iter().map(|(_, p)| *p * 10).collect(); // in tenths
    log.push((None, x.set_mark("BNBUSDT", d("600"), time)));
    for (i, (s, _)) in SYMBOLS.iter().enumerate() {
        log.push((None, x.set_mark(s, Decimal::new(prices[i], 1), time)));
    }
    for a in 0..3 {
        x.transfer(a, "USDT", d("100000"), time);
        if a == 2 {
            x.transfer(a, "BNB", d("50"), time);
        }
    }
    for _ in 0..steps {
        time += 1 + x.rng().below(5_000) as i64;
        let roll = x.rng().below(100);
        if roll < 10 {
            // The market moves.
            let i = x.rng().below(3) as usize;
            let step = x.rng().below(41) as i64 - 20;
            prices[i] = (prices[i] + step * prices[i] / 10_000).max(10);
            log.push((
                None,
                x.set_mark(SYMBOLS[i].0, Decimal::new(prices[i], 1), time),
            ));
        } else if roll < 12 {
            let i = x.rng().below(3) as usize;
            let rate = Decimal::new(x.rng().below(21) as i64 - 10, 5);
            x.pay_funding(SYMBOLS[i].0, rate, time);
        } else if roll < 14 {
            let a = x.rng().below(3) as usize;
            let amount = Decimal::from(x.rng().below(2_000) as i64 - 500);
            if !amount.is_zero() {
                x.transfer(a, "USDT", amount, time);
            }
        } else {
            let a = x.rng().below(3) as usize;
            let i = x.rng().below(3) as usize;
            let side = if x.rng().chance(50) {
                Side::Buy
            } else {
                Side::Sell
            };
            let qty = Decimal::new(1 + x.rng().below(3_000) as i64, 3);
            let leg = if a == 1 {
                Some(if x.rng().chance(50) {
                    Leg::Long
                } else {
                    Leg::Short
                })
            } else {
                None
            };
            // In hedge mode a reducing order is capped by the leg (the exchange refuses more).
            let qty = match (leg, side) {
                (Some(l @ Leg::Long), Side::Sell) | (Some(l @ Leg::Short), Side::Buy) => {
                    let held = x.accounts()[a]
                        .positions
                        .get(&(SYMBOLS[i].0.to_owned(), l))
                        .map_or(Decimal::ZERO, |p| p.amount.abs());
                    qty.min(held)
                }
                _ => qty,
            };
            if !qty.is_zero() {
                x.market_order(a, SYMBOLS[i].0, side, qty, leg, time)
                    .unwrap();
            }
        }
        for a in 0..3 {
            for e in x.take_events(a) {
                log.push((Some(a), e));
            }
        }
    }
    (x, log)
}

fn replay(x: &Exchange, log: &[(Option<usize>, String)]) -> Books {
    let names: Vec<Account> = x
        .accounts()
        .iter()
        .map(|a| Account::new(&a.spec.name).unwrap())
        .collect();
    let market = Account::new("market").unwrap();
    let mut books = Books::new(BooksConfig::default());
    for (a, text) in log {
        let account = a.map_or(&market, |i| &names[i]);
        for event in decode_frame(account, text).unwrap_or_else(|e| panic!("{e}: {text}")) {
            books.apply(&event);
        }
    }
    books.settle(Timestamp(i64::MAX));
    books
}

fn side(leg: Leg) -> PositionSide {
    match leg {
        Leg::Both => PositionSide::Both,
        Leg::Long => PositionSide::Long,
        Leg::Short => PositionSide::Short,
    }
}

#[test]
fn books_fed_by_the_simulator_equal_its_ground_truth() {
    for seed in [1, 2, 3] {
        let (x, log) = simulate(seed, 3_000);
        let fills: usize = x.accounts().iter().map(|a| a.trades.len()).sum();
        assert!(fills > 2_000, "seed {seed}: only {fills} fills");
        let books = replay(&x, &log);
        assert!(
            books.discrepancies().is_empty(),
            "seed {seed}: {:?}",
            &books.discrepancies()[..1]
        );
        for acct in x.accounts() {
            let name = Account::new(&acct.spec.name).unwrap();
            for ((symbol, leg), p) in &acct.positions {
                let ours = books.position(&name, symbol, side(*leg)).unwrap();
                assert_eq!(ours.qty(), p.amount, "{name} {symbol} {leg:?} quantity");
                assert_eq!(ours.entry_price(), p.entry, "{name} {symbol} {leg:?} entry");
            }
            for (asset, wallet) in &acct.wallets {
                assert_eq!(
                    books.wallet(&name, asset),
                    Some(*wallet),
                    "{name} {asset} wallet"
                );
            }
            let positions = books.positions(Some(&name));
            let gross: Decimal = positions.iter().map(|(_, p)| p.realized_gross()).sum();
            assert_eq!(gross, acct.realized, "{name} realized gross");
            let funding: Decimal = positions.iter().map(|(_, p)| p.funding()).sum::<Decimal>()
                + books
                    .summary(&name)
                    .unwrap()
                    .funding_unattributed
                    .values()
                    .sum::<Decimal>();
            assert_eq!(funding, acct.funding, "{name} funding");
            if acct.spec.fees_in_bnb {
                let bnb: Decimal = positions
                    .iter()
                    .flat_map(|(_, p)| p.commission_native().iter())
                    .filter(|(a, _)| a.as_str() == "BNB")
                    .map(|(_, v)| *v)
                    .sum();
                assert_eq!(bnb, acct.commission["BNB"], "{name} BNB commission");
            } else {
                let fees: Decimal = positions.iter().map(|(_, p)| p.commission()).sum();
                assert_eq!(fees, acct.commission["USDT"], "{name} commission");
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_exchange_and_events() {
    let (a, log_a) = simulate(42, 500);
    let (b, log_b) = simulate(42, 500);
    assert_eq!(log_a, log_b);
    assert_eq!(a.state(), b.state());
    let (_, log_c) = simulate(43, 500);
    assert_ne!(log_a, log_c);
}

#[test]
fn both_arrival_orders_of_a_fills_reports_occur() {
    let (_, log) = simulate(7, 400);
    let kinds: Vec<String> = log
        .iter()
        .filter_map(|(a, t)| a.map(|_| serde_json::from_str::<serde_json::Value>(t).unwrap()))
        .map(|v| {
            match (
                v["e"].as_str().unwrap(),
                v["o"]["x"].as_str(),
                v["a"]["m"].as_str(),
            ) {
                ("ORDER_TRADE_UPDATE", Some("TRADE"), _) => "fill".to_owned(),
                ("ACCOUNT_UPDATE", _, Some("ORDER")) => "row".to_owned(),
                (e, _, _) => e.to_owned(),
            }
        })
        .collect();
    let pairs = kinds
        .windows(2)
        .filter(|w| w[0] == "fill" && w[1] == "row")
        .count();
    let reversed = kinds
        .windows(2)
        .filter(|w| w[0] == "row" && w[1] == "fill")
        .count();
    assert!(
        pairs > 10 && reversed > 10,
        "fill→row {pairs}, row→fill {reversed}"
    );
}
