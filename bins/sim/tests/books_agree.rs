//! The simulator and acctmon's books are written independently; fed the simulator's events (through
//! acctmon's Binance parsers), the books must reproduce the simulator's ground truth exactly, with no
//! discrepancy, whatever order the events of each fill arrived in.

// Helpers of these tests panic on malformed data: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acctmon_binance::decode_frame;
use acctmon_books::{Books, BooksConfig};
use acctmon_domain::{Account, PositionSide, Timestamp};
use acctmon_sim::activity::Activity;
use acctmon_sim::exchange::{AccountSpec, Exchange, ExchangeConfig, Leg};
use rust_decimal::Decimal;

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
            // Ten minutes, so the ~2 hours simulated see a dozen fundings.
            funding_interval_ms: 600_000,
            ..ExchangeConfig::default()
        },
        accounts,
    );
    let mut time = 1_767_225_600_000i64;
    let (mut activity, marks) = Activity::start(&mut x, time);
    let mut log: Vec<(Option<usize>, String)> = marks.into_iter().map(|m| (None, m)).collect();
    let drain = |x: &mut Exchange, log: &mut Vec<(Option<usize>, String)>| {
        for a in 0..x.accounts().len() {
            for e in x.take_events(a) {
                log.push((Some(a), e));
            }
        }
    };
    drain(&mut x, &mut log);
    for _ in 0..steps {
        time += 1 + x.rng().below(5_000) as i64;
        for m in activity.step(&mut x, time) {
            log.push((None, m));
        }
        drain(&mut x, &mut log);
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

/// What the generated history must contain for the agreement above to mean something.
#[test]
fn the_history_covers_every_kind_of_change() {
    let (x, log) = simulate(1, 3_000);
    let has = |needle: &str| {
        log.iter()
            .filter(|(a, t)| a.is_some() && t.contains(needle))
            .count()
    };
    for needle in [
        "\"m\":\"FUNDING_FEE\"",
        "\"x\":\"CANCELED\"",
        "\"x\":\"EXPIRED\"",
        "\"X\":\"PARTIALLY_FILLED\"",
        "\"e\":\"ACCOUNT_CONFIG_UPDATE\"",
        "\"m\":\"WITHDRAW\"",
        "\"R\":true",
        "\"ot\":\"LIMIT\"",
    ] {
        assert!(has(needle) > 3, "{needle}: {}", has(needle));
    }
    let trades = x.accounts().iter().flat_map(|a| a.trades.iter());
    let (maker, taker): (Vec<_>, Vec<_>) = trades.partition(|t| t.maker);
    assert!(
        maker.len() > 50 && taker.len() > 1_000,
        "{} maker, {} taker",
        maker.len(),
        taker.len()
    );
    assert!(x.accounts().iter().all(|a| a.funding != Decimal::ZERO));
    let reduces = x.accounts()[0]
        .trades
        .iter()
        .filter(|t| !t.realized.is_zero())
        .count();
    assert!(reduces > 100, "{reduces} reducing fills");
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
