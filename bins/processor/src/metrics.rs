//! The processor's Prometheus metrics.

use acctmon_bus::PublishMetrics;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Counters, gauges and histograms of the processor.
#[derive(Clone)]
pub struct Metrics {
    /// Events applied, by kind.
    pub applied: IntCounterVec,
    /// Events skipped as already applied (at or below `applied_seq`).
    pub skipped: IntCounter,
    /// Payloads that did not decode (acknowledged and skipped, with a log line).
    pub undecodable: IntCounter,
    /// Events per batch.
    pub batch_size: Histogram,
    /// Seconds from a batch's arrival to its P&L sent and its position views written.
    pub apply_seconds: Histogram,
    /// Seconds a checkpoint takes: the changed accounts' books written, their events acknowledged.
    pub checkpoint_seconds: Histogram,
    /// Messages pending per partition, as the server last reported (`partition="all"` for the consumer
    /// of a replica that holds every partition).
    pub pending: IntGaugeVec,
    /// Compare-and-set writes lost to another writer (state re-read and re-applied).
    pub cas_retries: IntCounter,
    /// Discrepancies with the exchange, by kind.
    pub discrepancies: IntCounterVec,
    /// Consumer sessions restarted from the ack floor (out-of-order redelivery, server restart).
    pub resets: IntCounter,
    /// Outputs published (P&L and RECON).
    pub publish: PublishMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let applied = IntCounterVec::new(
            Opts::new(
                "acctmon_processor_events_applied_total",
                "events applied, by kind",
            ),
            &["kind"],
        )?;
        let skipped = IntCounter::new(
            "acctmon_processor_events_skipped_total",
            "events at or below the applied sequence of their account",
        )?;
        let undecodable = IntCounter::new(
            "acctmon_processor_undecodable_total",
            "payloads that did not decode",
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("acctmon_processor_batch_size", "events per batch").buckets(vec![
                1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0,
            ]),
        )?;
        let apply_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "acctmon_processor_batch_seconds",
                "seconds from a batch's arrival to its P&L sent and position views written",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        let checkpoint_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "acctmon_processor_checkpoint_seconds",
                "seconds to write the books of a partition's changed accounts and acknowledge their events",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        let pending = IntGaugeVec::new(
            Opts::new(
                "acctmon_processor_pending",
                "messages pending per partition consumer (partition=\"all\": one consumer for every partition)",
            ),
            &["partition"],
        )?;
        let cas_retries = IntCounter::new(
            "acctmon_processor_cas_retries_total",
            "compare-and-set writes lost to another writer",
        )?;
        let discrepancies = IntCounterVec::new(
            Opts::new(
                "acctmon_processor_discrepancies_total",
                "disagreements with the exchange, by kind",
            ),
            &["kind"],
        )?;
        let resets = IntCounter::new(
            "acctmon_processor_consumer_resets_total",
            "consumer sessions restarted from the ack floor",
        )?;
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(skipped.clone()))?;
        registry.register(Box::new(undecodable.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(apply_seconds.clone()))?;
        registry.register(Box::new(checkpoint_seconds.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(cas_retries.clone()))?;
        registry.register(Box::new(discrepancies.clone()))?;
        registry.register(Box::new(resets.clone()))?;
        Ok(Metrics {
            applied,
            skipped,
            undecodable,
            batch_size,
            apply_seconds,
            checkpoint_seconds,
            pending,
            cas_retries,
            discrepancies,
            resets,
            publish: PublishMetrics::register(registry, "acctmon_processor")?,
        })
    }
}
