//! Decoding events from `EVENTS`: what the processor and `acctmon replay` do for every stored event.

use std::hint::black_box;

use acctmon_bus::Envelope;
use acctmon_domain::Event;
use criterion::{Criterion, Throughput};

/// A fill as ingest publishes it from an `ORDER_TRADE_UPDATE`, encoded.
fn fill() -> Vec<u8> {
    let fill = serde_json::json!({
        "account": "main", "symbol": "BTCUSDT", "trade_id": 5_000_000_123u64,
        "order_id": 8_389_765_519_234_567u64, "client_order_id": "web_4kIKVzL0Fk1NRXtFQ3cS",
        "side": "BUY", "position_side": null, "price": "43251.70", "qty": "0.012",
        "commission": {"asset": "USDT", "amount": "0.20760816"}, "realized_pnl": "0",
        "margin_asset": null, "maker": false, "time": 1_700_000_000_123i64,
        "event_time": 1_700_000_000_125i64, "source": "order_update"
    });
    let event = Event::Fill(serde_json::from_value(fill).unwrap_or_else(|e| panic!("{e}")));
    Envelope::new(event, 1_700_000_000_130)
        .encode()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn bench_decode(c: &mut Criterion) {
    let bytes = fill();
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_fill", |b| {
        b.iter(|| Envelope::decode(black_box(&bytes)).unwrap_or_else(|e| panic!("{e}")))
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_decode(&mut c);
    c.final_summary();
}
