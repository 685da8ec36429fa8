//! Decode benchmarks: one raw frame of text → domain events, as ingest does for every message.
//!
//! The payloads are real captures from `test_data/`, made one line with their key order kept, as they
//! come off the socket. Target (issue): ≤ 1 µs for one `ORDER_TRADE_UPDATE` on one core.

use std::hint::black_box;

use acctmon_binance::{Decoder, decode_frame, decode_frame_into};
use acctmon_domain::Account;
use criterion::{Criterion, Throughput};

#[path = "../tests/common/compact.rs"]
mod compact_text;

/// One file of `test_data/`, with the whitespace outside strings removed.
fn frame(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/").to_owned() + name;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    compact_text::compact(&text)
}

fn bench_frames(c: &mut Criterion) {
    let account = Account::new("main").unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        (
            "order_trade_update/parse_and_normalize",
            "order_trade_update.real_trade_filled_2023.json",
        ),
        (
            "trade_lite/parse_and_normalize",
            "trade_lite.real_2024.json",
        ),
        (
            "account_update/parse_and_normalize",
            "account_update.real_order_oneway_2023.json",
        ),
        (
            "mark_price_update/parse_and_normalize",
            "mark_price_update.docs.json",
        ),
    ];
    for (id, file) in cases {
        let text = frame(file);
        let mut group = c.benchmark_group(id.split('/').next().unwrap_or(id));
        group.throughput(Throughput::Elements(1));
        group.bench_function(id.split('/').nth(1).unwrap_or(id), |b| {
            b.iter(|| decode_frame(&account, black_box(&text)))
        });
        group.finish();
    }

    // With a reused output vector, as a stream loop would run it.
    let text = frame("order_trade_update.real_trade_filled_2023.json");
    let mut out = Vec::with_capacity(4);
    c.bench_function("order_trade_update/parse_and_normalize_reuse_vec", |b| {
        b.iter(|| {
            out.clear();
            decode_frame_into(&account, black_box(&text), &mut out)
        })
    });

    // With a decoder that shares symbol and asset names between frames, as a stream loop would keep one.
    let mut decoder = Decoder::new();
    let mut group = c.benchmark_group("order_trade_update");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decoder", |b| {
        b.iter(|| decoder.decode_frame(&account, black_box(&text)))
    });
    group.finish();

    let all = frame("mark_price_update.real_all_market_arr_2022.json");
    let mut group = c.benchmark_group("mark_price_arr");
    group.throughput(Throughput::Elements(168));
    group.bench_function("168_symbols", |b| {
        b.iter(|| decode_frame(&account, black_box(&all)))
    });
    group.finish();
}

// What `criterion_group!` / `criterion_main!` expand to, without their undocumented public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_frames(&mut criterion);
    criterion.final_summary();
}
