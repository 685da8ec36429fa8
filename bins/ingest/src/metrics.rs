//! The Prometheus metrics of ingest. Labels stay bounded: account, event kind, REST path.

use acctmon_bus::PublishMetrics;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Every metric ingest exports.
#[derive(Clone)]
pub struct Metrics {
    /// Events published, by account and kind.
    pub events: IntCounterVec,
    /// User-data stream connections opened after the first, by account.
    pub reconnects: IntCounterVec,
    /// Gaps (disconnects, expiries) that needed a backfill, by account.
    pub gaps: IntCounterVec,
    /// Fills recovered through REST after a gap, by account.
    pub backfilled_fills: IntCounterVec,
    /// Payloads that did not decode, by account.
    pub undecodable: IntCounterVec,
    /// Receive time − exchange event time `E`, seconds, by account.
    pub stream_lag: HistogramVec,
    /// Last `X-MBX-USED-WEIGHT-1M` seen, by account.
    pub rest_weight: IntGaugeVec,
    /// REST calls that failed or were refused, by path.
    pub rest_errors: IntCounterVec,
    /// Mark prices written to KV.
    pub marks: IntCounter,
    /// Time to publish a backfill, seconds.
    pub backfill_seconds: Histogram,
    /// The publishers' counters.
    pub publish: PublishMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        fn reg<C: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: C,
        ) -> prometheus::Result<C> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        Ok(Metrics {
            events: counter(
                "acctmon_ingest_events_total",
                "events published, by kind",
                &["account", "kind"],
            )?,
            reconnects: counter(
                "acctmon_ingest_reconnects_total",
                "user-data stream reconnects",
                &["account"],
            )?,
            gaps: counter(
                "acctmon_ingest_gaps_total",
                "gaps in the user-data stream that were backfilled",
                &["account"],
            )?,
            backfilled_fills: counter(
                "acctmon_ingest_backfilled_fills_total",
                "fills recovered through REST after a gap",
                &["account"],
            )?,
            undecodable: counter(
                "acctmon_ingest_undecodable_total",
                "user-data payloads that did not decode",
                &["account"],
            )?,
            stream_lag: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "acctmon_ingest_stream_lag_seconds",
                        "receive time minus the exchange's event time",
                    )
                    .buckets(vec![
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ]),
                    &["account"],
                )?,
            )?,
            rest_weight: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "acctmon_ingest_rest_weight_used",
                        "request weight used in the current minute, as Binance reports it",
                    ),
                    &["account"],
                )?,
            )?,
            rest_errors: counter(
                "acctmon_ingest_rest_errors_total",
                "REST calls that failed or were refused",
                &["path"],
            )?,
            marks: reg(
                registry,
                IntCounter::new("acctmon_ingest_marks_total", "mark prices written to KV")?,
            )?,
            backfill_seconds: reg(
                registry,
                Histogram::with_opts(HistogramOpts::new(
                    "acctmon_ingest_backfill_seconds",
                    "time to fetch and publish a backfill",
                ))?,
            )?,
            publish: PublishMetrics::register(registry, "acctmon_ingest")?,
        })
    }
}
