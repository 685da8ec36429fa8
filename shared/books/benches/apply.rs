//! Books apply throughput: fills per second on one core.
//!
//! `cargo bench -p acctmon-books --bench apply` — the target is ≥ 3 million fills/s.

// criterion_group! and criterion_main! generate items that cannot carry docs.
#![allow(missing_docs)]

use std::hint::black_box;

use acctmon_books::{Books, BooksConfig};
use acctmon_domain::{
    Account, Asset, Commission, Decimal, Event, Fill, FillSource, PositionSide, Side, Symbol,
    Timestamp,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const FILLS: usize = 100_000;

/// A realistic mix: 4 symbols, one-way, orders that open, add, reduce and flip, with fees and `rp`
/// (computed by a first pass through the books so the check agrees).
fn fills() -> Vec<Event> {
    let account = Account::new("bench").expect("valid alias");
    let usdt = Asset::new("USDT").expect("asset");
    let symbols: Vec<Symbol> = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
        .iter()
        .map(|s| Symbol::new(s).expect("symbol"))
        .collect();
    let mut out = Vec::with_capacity(FILLS);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..FILLS {
        let r = next();
        let symbol = symbols[(r % 4) as usize].clone();
        let side = if (r >> 8) % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = Decimal::new(((r >> 16) % 5000 + 1) as i64, 3);
        let price = Decimal::new(((r >> 32) % 2000 + 49_000) as i64, 0);
        let t = Timestamp(1_700_000_000_000 + i as i64);
        out.push(Event::Fill(Fill {
            account: account.clone(),
            symbol,
            trade_id: i as u64 + 1,
            order_id: i as u64 + 1,
            client_order_id: None,
            side,
            position_side: Some(PositionSide::Both),
            price,
            qty,
            commission: Some(Commission {
                asset: usdt.clone(),
                amount: Decimal::new(((r >> 40) % 1000) as i64, 4),
            }),
            realized_pnl: None,
            margin_asset: None,
            maker: false,
            time: t,
            event_time: t,
            source: FillSource::OrderUpdate,
        }));
    }
    // Give every fill the exchange's rp (our own figure, rounded like Binance).
    let mut books = Books::new(BooksConfig::default());
    for e in &mut out {
        let Event::Fill(f) = e else { continue };
        let before = books
            .position(&f.account, f.symbol.as_str(), PositionSide::Both)
            .map_or(Decimal::ZERO, |p| p.realized_gross());
        books.apply(&Event::Fill(f.clone()));
        let after = books
            .position(&f.account, f.symbol.as_str(), PositionSide::Both)
            .map_or(Decimal::ZERO, |p| p.realized_gross());
        f.realized_pnl = Some((after - before).round_dp(8));
    }
    out
}

fn bench(c: &mut Criterion) {
    let events = fills();
    let mut g = c.benchmark_group("books");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("apply_fills", |b| {
        b.iter_batched(
            || {
                Books::new(BooksConfig {
                    keep_discrepancies: false,
                    ..BooksConfig::default()
                })
            },
            |mut books| {
                for e in &events {
                    black_box(books.apply(e));
                }
                books
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
