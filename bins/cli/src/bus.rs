//! `acctmon init` and `acctmon tail`: the JetStream side of the command line.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use acctmon_bus::envelope::Envelope;
use acctmon_bus::{NatsConfig, Topology};
use acctmon_service::health::Health;
use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use clap::Args;
use futures_util::StreamExt;

/// Where NATS is.
#[derive(Debug, Args)]
pub struct NatsArgs {
    /// NATS server URL (repeat for several).
    #[arg(
        long = "nats-url",
        env = "ACCTMON_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub urls: Vec<String>,
}

impl NatsArgs {
    pub(crate) async fn connect(&self) -> Result<async_nats::Client> {
        let config = NatsConfig {
            urls: self.urls.clone(),
            ..NatsConfig::default()
        };
        let health = Health::new();
        let client = acctmon_bus::connect(&config, "acctmon-cli", &health).await?;
        // The client keeps trying in the background; a command gives up after a while.
        for _ in 0..100 {
            if health.ready() {
                return Ok(client);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("cannot reach NATS at {}", self.urls.join(", "))
    }
}

/// Arguments of `acctmon init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Partitions of EVENTS (fixed per deployment).
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
    /// Replicas of every stream and bucket.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Print the declared topology as JSON and do nothing else.
    #[arg(long)]
    pub print: bool,
}

/// Arguments of `acctmon tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Subject to watch; wildcards allowed (`trading.pnl.>`, `trading.events.*.main.fill`).
    pub subject: String,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Read the stream holding SUBJECT from this sequence instead of only new messages.
    #[arg(long, conflicts_with = "since")]
    pub from_seq: Option<u64>,
    /// Read the stream holding SUBJECT from this long ago (`10m`, `2h`).
    #[arg(long)]
    pub since: Option<humantime::Duration>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
}

/// `acctmon init`.
pub async fn init(args: &InitArgs) -> Result<ExitCode> {
    let topology = Topology {
        partitions: args.partitions,
        replicas: args.replicas,
        ..Topology::default()
    };
    if args.print {
        println!("{}", serde_json::to_string_pretty(&topology.describe())?);
        return Ok(ExitCode::SUCCESS);
    }
    let client = args.nats.connect().await?;
    let js = async_nats::jetstream::new(client);
    let report = topology.ensure(&js).await?;
    for (what, names) in [
        ("created", &report.created),
        ("updated", &report.updated),
        ("unchanged", &report.unchanged),
    ] {
        for name in names {
            println!("{what:9} {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A payload as JSON: an event envelope, any other MessagePack, JSON, or text.
pub fn payload_json(payload: &[u8]) -> serde_json::Value {
    if let Ok(e) = Envelope::decode(payload)
        && let Ok(v) = serde_json::to_value(&e)
    {
        return v;
    }
    if let Ok(v) = rmp_serde::from_slice::<serde_json::Value>(payload) {
        return v;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
        return v;
    }
    serde_json::Value::String(String::from_utf8_lossy(payload).into_owned())
}

fn print_line(subject: &str, seq: Option<u64>, payload: &[u8]) -> Result<()> {
    let line = serde_json::json!({"subject": subject, "seq": seq, "data": payload_json(payload)});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("write to stdout")?;
    Ok(())
}

/// `acctmon tail`.
pub async fn tail(args: &TailArgs) -> Result<ExitCode> {
    let client = args.nats.connect().await?;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut seen = 0u64;
    if args.from_seq.is_none() && args.since.is_none() {
        let mut sub = client.subscribe(args.subject.clone()).await?;
        while let Some(m) = sub.next().await {
            print_line(&m.subject, None, &m.payload)?;
            seen += 1;
            if seen >= limit {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let js = async_nats::jetstream::new(client);
    let stream_name = js
        .stream_by_subject(args.subject.clone())
        .await
        .with_context(|| format!("no stream holds {}", args.subject))?;
    let stream = js.get_stream(&stream_name).await?;
    let deliver_policy = match (args.from_seq, args.since) {
        (Some(seq), _) => DeliverPolicy::ByStartSequence {
            start_sequence: seq,
        },
        (None, Some(ago)) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::now_utc() - Duration::from(ago),
        },
        (None, None) => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: args.subject.clone(),
            deliver_policy,
            ..OrderedConfig::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(m) = messages.next().await {
        let m = m?;
        let seq = m.info().ok().map(|i| i.stream_sequence);
        print_line(&m.subject, seq, &m.payload)?;
        seen += 1;
        if seen >= limit {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
