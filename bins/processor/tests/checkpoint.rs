//! Checkpoints: the processor publishes P&L and writes position views with every batch, but writes an
//! account's books to KV `accounts` and acknowledges the events they reflect only at a checkpoint. So
//! events are never acknowledged before their books are durable, a stopping processor leaves its books
//! written and everything acknowledged, and one killed between checkpoints loses nothing: the next owner
//! applies the unacknowledged events to the books as last written, each once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use acctmon_bus::topology::{ALL_PARTITIONS_CONSUMER, partition_consumer_name};
use acctmon_testkit::{NatsServer, wait_until};
use async_nats::jetstream;
use support::*;

/// Checkpoints only when a processor stops (or after `CHECKPOINT_EVENTS`, which these runs stay under).
const NO_CHECKPOINT: &str = r#"checkpoint_every = "1h""#;

/// Where a processor consumer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Consumer {
    /// The stream sequence up to which everything is acknowledged.
    floor: u64,
    /// Messages it delivered in its current session (its consumer sequence).
    delivered: u64,
    /// Every message it delivered is acknowledged.
    all_acked: bool,
}

/// Every processor consumer there is, by name: one per partition (`processor-<p>`) and the one a
/// replica holding every partition reads them all through (`processor-all`).
async fn consumers(js: &jetstream::Context) -> BTreeMap<String, Consumer> {
    let stream = js.get_stream("EVENTS").await.unwrap();
    let mut out = BTreeMap::new();
    let names = (0..PARTITIONS)
        .map(partition_consumer_name)
        .chain([ALL_PARTITIONS_CONSUMER.to_owned()]);
    for name in names {
        if let Ok(info) = stream.consumer_info(&name).await {
            out.insert(
                name,
                Consumer {
                    floor: acctmon_processor::partition::acknowledged_until(&info),
                    delivered: info.delivered.consumer_sequence,
                    all_acked: info.ack_floor.consumer_sequence == info.delivered.consumer_sequence,
                },
            );
        }
    }
    out
}

/// Waits until the processor has taken every event stored on `EVENTS` (applied or skipped).
async fn taken(js: &jetstream::Context, processor: &Processor) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored = js
            .get_stream("EVENTS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        let mut taken = 0u64;
        for name in [
            "acctmon_processor_events_applied_total",
            "acctmon_processor_events_skipped_total",
            "acctmon_processor_undecodable_total",
        ] {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a count of events
            let n = processor.metric(name).await as u64;
            taken += n;
        }
        if taken >= stored {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the processor took {taken} of {stored} events\n{}",
            processor.explain().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `acctmon replay --diff` of every account finds the KV books equal to the books rebuilt from `EVENTS`.
async fn replay_finds_no_difference(nats: &NatsServer) {
    for account in ACCOUNTS {
        let (live, differences) = replay(nats, account, true).await.diff.expect("compared");
        assert_eq!(
            differences,
            vec![],
            "replay --diff of {account} at {}",
            live.applied_seq
        );
    }
}

/// KV `accounts`: account → the `applied_seq` of its entry.
async fn account_entries(js: &jetstream::Context) -> BTreeMap<String, u64> {
    kv_books(js)
        .await
        .into_iter()
        .map(|(account, books)| (account, books.applied_seq))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_acknowledged_only_once_their_books_are_written() {
    let nats = NatsServer::start();
    let sim = sim().await;
    let mut ingest = Ingest::start(&nats, &sim).await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());

    // Between checkpoints: P&L and position views go out, nothing is acknowledged, no books written.
    let mut first = Processor::start_with(&nats, "one", NO_CHECKPOINT, "");
    first.ready().await;
    sim.admin("burst?orders=300").await;
    // Quiet from here (the exchange would go on paying funding): every event stored is taken.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ingest.stop().await;
    taken(&js, &first).await;
    assert!(count(&js, "PNL", "trading.pnl.*.position.>").await > 0);
    assert!(count(&js, "KV_positions", "$KV.positions.>").await > 0);
    let before = consumers(&js).await;
    // Alone, it holds every partition and reads them through one consumer.
    assert_eq!(
        before.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![ALL_PARTITIONS_CONSUMER],
        "{before:?}"
    );
    assert!(
        before.values().all(|c| c.floor == 0),
        "acknowledged before any checkpoint: {before:?}"
    );
    assert!(before.values().any(|c| c.delivered > 0));
    assert_eq!(account_entries(&js).await, BTreeMap::new());

    // A stopping processor checkpoints: the books written, every event it took acknowledged.
    assert!(first.terminate().success(), "{}", first.log());
    let stopped = consumers(&js).await;
    assert!(
        stopped.values().all(|c| c.all_acked),
        "not everything acknowledged on stop: {stopped:?}"
    );
    let written = account_entries(&js).await;
    assert_eq!(
        written.keys().map(String::as_str).collect::<Vec<_>>(),
        ACCOUNTS.to_vec(),
        "{written:?}"
    );
    let floor = stopped.values().map(|c| c.floor).max().unwrap();
    assert!(
        written.values().all(|&seq| seq > 0 && seq <= floor),
        "{written:?} {stopped:?}"
    );

    // Killed between checkpoints: nothing of what it took is acknowledged, its books stay as written.
    ingest = Ingest::start(&nats, &sim).await;
    let mut second = Processor::start_with(&nats, "two", NO_CHECKPOINT, "");
    second.ready().await;
    sim.admin("burst?orders=300").await;
    taken(&js, &second).await;
    second.kill9();
    let killed = consumers(&js).await;
    for (p, c) in &killed {
        assert_eq!(
            c.floor, stopped[p].floor,
            "{p} acknowledged without a checkpoint: {killed:?}"
        );
    }
    assert!(killed.values().any(|c| c.delivered > 0));
    assert_eq!(account_entries(&js).await, written);

    // The next owner applies what was not acknowledged, each event once: the books equal the exchange's.
    let third = Processor::start(&nats, "three", "");
    third.ready().await;
    converge(&nats, &sim, Duration::from_secs(60), &[&third]).await;
    replay_finds_no_difference(&nats).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let caught_up = consumers(&js).await;
        // Everything acknowledged, and past where the killed one stood wherever it had taken events.
        if caught_up
            .iter()
            .all(|(p, c)| c.all_acked && (killed[p].delivered == 0 || c.floor > killed[p].floor))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "checkpoints did not acknowledge what was applied: {caught_up:?} (killed at {killed:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_every_owned_partition_has_caught_up() {
    let nats = NatsServer::start();
    let processor = Processor::start(&nats, "alone", "");
    processor.ready().await;
    let readyz = acctmon_testkit::readiness(&processor.admin).await;
    // Alone, it owns every partition: each is registered and caught up before the process says ready.
    for p in 0..PARTITIONS {
        assert_eq!(
            readyz["checks"][format!("partition-{p}")],
            true,
            "ready before partition {p} had caught up: {readyz}"
        );
    }
    assert_eq!(readyz["checks"]["leases"], true, "{readyz}");
    // All three connections: the consumers', the books' and the outputs'.
    assert_eq!(readyz["checks"]["nats"], true, "{readyz}");
    assert_eq!(readyz["checks"]["nats_books"], true, "{readyz}");
    assert_eq!(readyz["checks"]["nats_outputs"], true, "{readyz}");
}

/// How long the handover test waits for a consumer to come or to move.
const WAIT: Duration = Duration::from_secs(30);

/// The stream sequence the consumer `name` was created to start at (1: the stream's start).
async fn start_of(js: &jetstream::Context, name: &str) -> Option<u64> {
    let stream = js.get_stream("EVENTS").await.unwrap();
    let info = stream.consumer_info(name).await.ok()?;
    Some(match info.config.deliver_policy {
        jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
        _ => 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_handed_between_one_consumer_and_one_per_partition_start_where_the_other_stood()
{
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&nats, &sim).await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let partition_consumers: Vec<String> = (0..PARTITIONS).map(partition_consumer_name).collect();

    // Alone, a replica reads every partition through one consumer, acknowledged at its checkpoints.
    let mut one = Processor::start(&nats, "one", "");
    one.ready().await;
    sim.admin("burst?orders=300").await;
    converge(&nats, &sim, Duration::from_secs(60), &[&one]).await;
    wait_until(WAIT, "processor-all acknowledged its events", || async {
        consumers(&js)
            .await
            .get(ALL_PARTITIONS_CONSUMER)
            .is_some_and(|c| c.all_acked && c.floor > 0)
    })
    .await;
    let before = consumers(&js).await;
    let all_floor = before[ALL_PARTITIONS_CONSUMER].floor;
    assert!(
        partition_consumers.iter().all(|n| !before.contains_key(n)),
        "a partition consumer beside processor-all: {before:?}"
    );

    // A second replica: the partitions are shared out, each read through its own consumer, which
    // starts past what processor-all had acknowledged instead of at the start of the stream.
    let mut two = Processor::start(&nats, "two", "");
    two.ready().await;
    wait_until(WAIT, "every partition consumer created", || async {
        for name in &partition_consumers {
            if start_of(&js, name).await.is_none() {
                return false;
            }
        }
        true
    })
    .await;
    let mut starts = Vec::new();
    for name in &partition_consumers {
        starts.push(start_of(&js, name).await.expect("created"));
    }
    assert!(
        starts.iter().all(|&s| s > all_floor),
        "partition consumers starting at {starts:?}, processor-all had acknowledged up to {all_floor}"
    );
    sim.admin("burst?orders=300").await;
    converge(&nats, &sim, Duration::from_secs(60), &[&one, &two]).await;

    // The second stops: the first holds every partition again and reads them through processor-all,
    // from the lowest of the partition consumers' floors, not from where processor-all last stood.
    assert!(two.terminate().success(), "{}", two.log());
    wait_until(WAIT, "processor-all read again", || async {
        start_of(&js, ALL_PARTITIONS_CONSUMER)
            .await
            .is_some_and(|s| s > all_floor + 1)
    })
    .await;
    let all_start = start_of(&js, ALL_PARTITIONS_CONSUMER)
        .await
        .expect("created");
    let floors = consumers(&js).await;
    let lowest = partition_consumers
        .iter()
        .map(|n| floors[n].floor)
        .min()
        .unwrap();
    assert!(
        all_start > lowest,
        "processor-all starts at {all_start}, the partition consumers acknowledged up to {floors:?}"
    );
    sim.admin("burst?orders=300").await;
    converge(&nats, &sim, Duration::from_secs(60), &[&one]).await;
    replay_finds_no_difference(&nats).await;
    assert!(one.terminate().success(), "{}", one.log());
    ingest.stop().await;
}
