//! The JetStream topology of DESIGN §3, declared once: streams, KV buckets and the processor's consumers,
//! created or brought up to date idempotently by `acctmon init` and by every binary at start.
//!
//! KV buckets are created as their backing `KV_<bucket>` streams and then bound with `get_key_value`:
//! async-nats' own bucket creation cannot read the answer of nats-server 2.9 (NATS.md). Only settings that
//! 2.9 understands are used, so the same declaration works on 2.9.10 and on 2.10+.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::subject::{ALERTS_PREFIX, EVENTS_PREFIX, PNL_PREFIX, RECON_PREFIX, partition_filter};

/// The durable consumer of `EVENTS` a processor replica reads every partition through while it holds
/// them all ([`Topology::all_partitions_consumer`]).
pub const ALL_PARTITIONS_CONSUMER: &str = "processor-all";

/// The durable consumer of `EVENTS` that partition `p` is read through ([`Topology::partition_consumer`]).
pub fn partition_consumer_name(p: u32) -> String {
    format!("processor-{p}")
}

const DAY: Duration = Duration::from_secs(86_400);

/// The deployment's topology settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topology {
    /// Partitions of `EVENTS` (P of DESIGN §2). Part of the data layout: pick it once.
    pub partitions: u32,
    /// Replicas of every stream and bucket (1 for a single server, 3 in production clusters).
    pub replicas: usize,
    /// How long `EVENTS` keeps events.
    #[serde(with = "humantime_serde")]
    pub events_max_age: Duration,
    /// The window inside which `EVENTS` drops a repeated `Nats-Msg-Id`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// How long `PNL` keeps messages.
    #[serde(with = "humantime_serde")]
    pub pnl_max_age: Duration,
    /// How long `ALERTS` keeps messages.
    #[serde(with = "humantime_serde")]
    pub alerts_max_age: Duration,
    /// How long `RECON` keeps messages.
    #[serde(with = "humantime_serde")]
    pub recon_max_age: Duration,
    /// The processor's lease time to live (the `leases` bucket's max age).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long the processor may hold a batch before JetStream redelivers it.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            partitions: 16,
            replicas: 1,
            events_max_age: 30 * DAY,
            duplicate_window: Duration::from_secs(20 * 60),
            pnl_max_age: 7 * DAY,
            alerts_max_age: 90 * DAY,
            recon_max_age: 30 * DAY,
            lease_ttl: Duration::from_secs(15),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// Names of the streams and buckets.
pub mod names {
    /// Normalized account events.
    pub const EVENTS: &str = "EVENTS";
    /// P&L outputs.
    pub const PNL: &str = "PNL";
    /// Alerts.
    pub const ALERTS: &str = "ALERTS";
    /// Reconciliation findings.
    pub const RECON: &str = "RECON";
    /// KV of positions.
    pub const POSITIONS: &str = "positions";
    /// KV of account summaries.
    pub const ACCOUNTS: &str = "accounts";
    /// KV of mark prices.
    pub const MARKS: &str = "marks";
    /// KV of processor partition leases.
    pub const LEASES: &str = "leases";
}

/// A KV bucket's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Bucket name.
    pub name: &'static str,
    /// Values kept per key.
    pub history: i64,
    /// Age after which a value disappears (zero: never).
    pub max_age: Duration,
}

/// What [`Topology::ensure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureReport {
    /// Streams and buckets created.
    pub created: Vec<String>,
    /// Existing ones whose settings were brought up to date.
    pub updated: Vec<String>,
    /// Existing ones already as declared.
    pub unchanged: Vec<String>,
}

/// A failure to create or check the topology.
#[derive(Debug, Error)]
pub enum TopologyError {
    /// The settings themselves are unusable.
    #[error("invalid topology: {0}")]
    Invalid(String),
    /// A JetStream call failed.
    #[error("{what}: {source}")]
    Nats {
        /// What was being done.
        what: String,
        /// The client's error.
        source: async_nats::Error,
    },
}

fn nats(what: impl Into<String>) -> impl FnOnce(async_nats::Error) -> TopologyError {
    let what = what.into();
    move |source| TopologyError::Nats { what, source }
}

impl Topology {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), TopologyError> {
        if self.partitions == 0 || self.partitions > 1024 {
            return Err(TopologyError::Invalid(format!(
                "partitions must be 1..=1024, not {}",
                self.partitions
            )));
        }
        if self.duplicate_window > self.events_max_age || self.duplicate_window.is_zero() {
            return Err(TopologyError::Invalid(
                "duplicate_window must be positive and at most events_max_age".into(),
            ));
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err(TopologyError::Invalid("replicas must be 1..=5".into()));
        }
        Ok(())
    }

    fn stream(&self, name: &str, prefix: &str, max_age: Duration, dup: Duration) -> stream::Config {
        stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age,
            duplicate_window: dup.min(max_age),
            num_replicas: self.replicas,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// The four streams.
    pub fn streams(&self) -> Vec<stream::Config> {
        let two_minutes = Duration::from_secs(120);
        vec![
            self.stream(
                names::EVENTS,
                EVENTS_PREFIX,
                self.events_max_age,
                self.duplicate_window,
            ),
            self.stream(names::PNL, PNL_PREFIX, self.pnl_max_age, two_minutes),
            self.stream(
                names::ALERTS,
                ALERTS_PREFIX,
                self.alerts_max_age,
                two_minutes,
            ),
            self.stream(names::RECON, RECON_PREFIX, self.recon_max_age, two_minutes),
        ]
    }

    /// The four KV buckets.
    pub fn buckets(&self) -> Vec<Bucket> {
        let bucket = |name, max_age| Bucket {
            name,
            history: 1,
            max_age,
        };
        vec![
            bucket(names::POSITIONS, Duration::ZERO),
            bucket(names::ACCOUNTS, Duration::ZERO),
            bucket(names::MARKS, Duration::ZERO),
            bucket(names::LEASES, self.lease_ttl),
        ]
    }

    /// The backing stream of a bucket, with the settings nats-server's own KV uses.
    pub fn bucket_stream(&self, bucket: &Bucket) -> stream::Config {
        let two_minutes = Duration::from_secs(120);
        let dup = if bucket.max_age.is_zero() {
            two_minutes
        } else {
            two_minutes.min(bucket.max_age)
        };
        stream::Config {
            name: format!("KV_{}", bucket.name),
            subjects: vec![format!("$KV.{}.>", bucket.name)],
            max_messages_per_subject: bucket.history,
            max_age: bucket.max_age,
            duplicate_window: dup,
            discard: DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            storage: StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// The durable pull consumer of partition `p` (one owner at a time, through `leases`).
    pub fn partition_consumer(&self, p: u32) -> pull::Config {
        self.processor_consumer(
            partition_consumer_name(p),
            format!("acctmon-processor, partition {p}"),
            partition_filter(p),
        )
    }

    /// The durable pull consumer a replica reads every partition through while it holds them all
    /// ([`ALL_PARTITIONS_CONSUMER`]): one reader of `EVENTS` instead of one per partition, since
    /// nats-server 2.9 has each filtered consumer read every stored message to find its own, under the
    /// lock the stores wait for.
    pub fn all_partitions_consumer(&self) -> pull::Config {
        self.processor_consumer(
            ALL_PARTITIONS_CONSUMER.to_owned(),
            "acctmon-processor, every partition".to_owned(),
            format!("{EVENTS_PREFIX}.>"),
        )
    }

    fn processor_consumer(
        &self,
        name: String,
        description: String,
        filter: String,
    ) -> pull::Config {
        pull::Config {
            durable_name: Some(name),
            description: Some(description),
            filter_subject: filter,
            // One ack per batch: acknowledging its last event acknowledges every event before it.
            ack_policy: AckPolicy::All,
            deliver_policy: DeliverPolicy::All,
            ack_wait: self.ack_wait,
            max_ack_pending: 20_000,
            ..Default::default()
        }
    }

    /// Creates what is missing and updates what differs; safe to run any number of times, on a fresh or an
    /// existing server, by several processes at once.
    pub async fn ensure(&self, js: &Context) -> Result<EnsureReport, TopologyError> {
        self.validate()?;
        let mut report = EnsureReport::default();
        let mut configs = self.streams();
        configs.extend(self.buckets().iter().map(|b| self.bucket_stream(b)));
        for config in configs {
            ensure_stream(js, config, &mut report).await?;
        }
        for b in self.buckets() {
            js.get_key_value(b.name)
                .await
                .map_err(|e| nats(format!("bind bucket {}", b.name))(e.into()))?;
        }
        Ok(report)
    }

    /// Creates (or updates) the consumer of partition `p` and checks that the server applied its filter:
    /// a server that ignores a setting must not silently hand a processor other partitions' events.
    pub async fn ensure_partition_consumer(
        &self,
        js: &Context,
        p: u32,
    ) -> Result<jetstream::consumer::PullConsumer, TopologyError> {
        let config = self.partition_consumer(p);
        let stream = js
            .get_stream(names::EVENTS)
            .await
            .map_err(|e| nats("get stream EVENTS")(e.into()))?;
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(config.clone())
            .await
            .map_err(|e| nats(format!("create consumer of partition {p}"))(e.into()))?;
        let info = consumer
            .info()
            .await
            .map_err(|e| nats(format!("read consumer of partition {p}"))(e.into()))?;
        if info.config.filter_subject != config.filter_subject {
            return Err(TopologyError::Invalid(format!(
                "the server gave consumer {} the filter `{}` instead of `{}`",
                partition_consumer_name(p),
                info.config.filter_subject,
                config.filter_subject
            )));
        }
        Ok(consumer)
    }

    /// A readable rendering of the declaration (the `nats/topology.json` file mirrors it).
    pub fn describe(&self) -> serde_json::Value {
        let streams: Vec<_> = self
            .streams()
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "subjects": s.subjects,
                    "retention": "limits",
                    "storage": "file",
                    "max_age": humantime_serde::re::humantime::format_duration(s.max_age).to_string(),
                    "duplicate_window": humantime_serde::re::humantime::format_duration(s.duplicate_window).to_string(),
                    "replicas": s.num_replicas,
                })
            })
            .collect();
        let buckets: Vec<_> = self
            .buckets()
            .into_iter()
            .map(|b| {
                serde_json::json!({
                    "bucket": b.name,
                    "stream": format!("KV_{}", b.name),
                    "history": b.history,
                    "max_age": if b.max_age.is_zero() { "none".to_owned() } else {
                        humantime_serde::re::humantime::format_duration(b.max_age).to_string()
                    },
                })
            })
            .collect();
        let c = self.partition_consumer(0);
        serde_json::json!({
            "partitions": self.partitions,
            "streams": streams,
            "kv": buckets,
            "consumers": {
                "stream": names::EVENTS,
                "durable": format!("processor-<p>, one per partition; {ALL_PARTITIONS_CONSUMER} while one replica holds every partition"),
                "filter": format!("{EVENTS_PREFIX}.<p>.> ({ALL_PARTITIONS_CONSUMER}: {EVENTS_PREFIX}.>)"),
                "ack": "all",
                "ack_wait": humantime_serde::re::humantime::format_duration(c.ack_wait).to_string(),
                "max_ack_pending": c.max_ack_pending,
            },
        })
    }
}

/// Whether the settings we declare differ from the server's.
fn differs(want: &stream::Config, have: &stream::Config) -> bool {
    want.subjects != have.subjects
        || want.max_age != have.max_age
        || want.duplicate_window != have.duplicate_window
        // The server reports "no limit" as -1 where the declaration says 0.
        || want.max_messages_per_subject.max(0) != have.max_messages_per_subject.max(0)
        || want.allow_rollup != have.allow_rollup
        || want.deny_delete != have.deny_delete
        || want.allow_direct != have.allow_direct
        || want.num_replicas != have.num_replicas
}

async fn ensure_stream(
    js: &Context,
    config: stream::Config,
    report: &mut EnsureReport,
) -> Result<(), TopologyError> {
    let name = config.name.clone();
    match js.get_stream(&name).await {
        Ok(mut existing) => {
            let have = existing
                .info()
                .await
                .map_err(|e| nats(format!("read stream {name}"))(e.into()))?
                .config
                .clone();
            if have.storage != config.storage {
                return Err(TopologyError::Invalid(format!(
                    "stream {name} exists with another storage type; it cannot be changed in place"
                )));
            }
            if differs(&config, &have) {
                js.update_stream(config)
                    .await
                    .map_err(|e| nats(format!("update stream {name}"))(e.into()))?;
                report.updated.push(name);
            } else {
                report.unchanged.push(name);
            }
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            match js.create_stream(config.clone()).await {
                Ok(_) => report.created.push(name),
                // Another process created it between our look and our create: check it again.
                Err(_) if js.get_stream(&name).await.is_ok() => {
                    report.unchanged.push(name);
                }
                Err(e) => return Err(nats(format!("create stream {name}"))(e.into())),
            }
        }
        Err(e) => return Err(nats(format!("look up stream {name}"))(e.into())),
    }
    Ok(())
}
