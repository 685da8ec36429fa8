//! The bus against a real nats-server 2.9: topology creation, the partition function, publishing and
//! KV compare-and-set.

// Integration tests: a panic with its message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use acctmon_bus::subject::partition;
use acctmon_bus::{KvError, KvState, Outgoing, PublishMetrics, Publisher, Topology};
use acctmon_domain::Account;
use acctmon_testkit::NatsServer;
use futures_util::StreamExt;

#[tokio::test]
async fn topology_is_created_once_then_left_or_updated_and_survives_a_restart() {
    let mut nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let topology = Topology::default();
    let first = topology.ensure(&js).await.unwrap();
    assert_eq!(first.created.len(), 8, "{first:?}");
    let again = topology.ensure(&js).await.unwrap();
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );
    assert_eq!(again.unchanged.len(), 8);
    let wider = Topology {
        duplicate_window: Duration::from_secs(30 * 60),
        ..Topology::default()
    };
    let changed = wider.ensure(&js).await.unwrap();
    assert_eq!(changed.updated, vec!["EVENTS".to_owned()]);
    let mut events = js.get_stream("EVENTS").await.unwrap();
    assert_eq!(
        events.info().await.unwrap().config.duplicate_window,
        Duration::from_secs(30 * 60)
    );
    // Existing server after a restart: everything is there.
    nats.restart();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let after = wider.ensure(&js).await.unwrap();
    assert!(
        after.created.is_empty() && after.updated.is_empty(),
        "{after:?}"
    );
    // A consumer's filter is checked after creation.
    let consumer = wider.ensure_partition_consumer(&js, 3).await.unwrap();
    assert_eq!(
        consumer.cached_info().config.filter_subject,
        "trading.events.3.>"
    );
    assert!(
        Topology {
            partitions: 0,
            ..Topology::default()
        }
        .ensure(&js)
        .await
        .is_err()
    );
}

#[tokio::test]
async fn our_partition_is_the_one_the_server_mapping_computes() {
    let nats = NatsServer::with_config(
        r#"mappings = { "part.*": "out.{{partition(16,1)}}.{{wildcard(1)}}" }"#,
    );
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe("out.*.*").await.unwrap();
    let names: Vec<String> = (0..200)
        .map(|i| format!("acct-{i}"))
        .chain(["main", "sub-1", "a", "Z_9"].map(String::from))
        .collect();
    for name in &names {
        client
            .publish(format!("part.{name}"), "x".into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    for name in &names {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        let mut tokens = m.subject.split('.');
        let (_, p, account) = (
            tokens.next(),
            tokens.next().unwrap(),
            tokens.next().unwrap(),
        );
        assert_eq!(account, name);
        let ours = partition(&Account::new(name).unwrap(), 16);
        assert_eq!(p, ours.to_string(), "{name}");
    }
}

/// A server of its own with the default topology, a client and its JetStream context.
async fn with_topology() -> (
    NatsServer,
    async_nats::Client,
    async_nats::jetstream::Context,
) {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    Topology::default().ensure(&js).await.unwrap();
    (nats, client, js)
}

/// Message `i` of one flow: id `id-<i>`, payload `<i>`.
fn numbered(i: u32) -> Outgoing {
    Outgoing {
        subject: "trading.events.1.main.fill".into(),
        msg_id: format!("id-{i}"),
        payload: format!("{i}").into_bytes().into(),
        content_type: acctmon_bus::envelope::CONTENT_TYPE,
    }
}

#[tokio::test]
async fn publishing_keeps_order_drops_repeats_and_kv_refuses_a_stale_write() {
    let (_nats, client, js) = with_topology().await;
    let metrics = PublishMetrics::unregistered();
    let mut publisher = Publisher::new(&client, 64, metrics.clone());
    for round in 0..2 {
        for i in 0..500u32 {
            publisher.publish(numbered(i)).await.unwrap();
        }
        publisher.flush().await.unwrap();
        assert_eq!(metrics.stored.get(), 500, "round {round}");
    }
    assert_eq!(metrics.duplicates.get(), 500);
    let mut stream = js.get_stream("EVENTS").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.messages, 500);
    let m = stream.get_raw_message(state.last_sequence).await.unwrap();
    assert_eq!(&m.payload[..], b"499", "order kept");

    let kv: KvState<Vec<u32>> = KvState::new(js.get_key_value("accounts").await.unwrap());
    let r1 = kv.compare_and_set("main", &vec![1], None).await.unwrap();
    assert!(matches!(
        kv.compare_and_set("main", &vec![2], None).await,
        Err(KvError::Conflict { .. })
    ));
    let r2 = kv
        .compare_and_set("main", &vec![2], Some(r1))
        .await
        .unwrap();
    assert!(matches!(
        kv.compare_and_set("main", &vec![3], Some(r1)).await,
        Err(KvError::Conflict { .. })
    ));
    let got = kv.get("main").await.unwrap().unwrap();
    assert_eq!((got.value, got.revision), (vec![2], r2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_taken_as_they_come_without_waiting() {
    let (_nats, client, _js) = with_topology().await;
    let metrics = PublishMetrics::unregistered();
    let mut publisher = Publisher::new(&client, 1024, metrics.clone());
    for i in 0..500u32 {
        publisher.publish(numbered(i)).await.unwrap();
    }
    publisher.settle_arrived().await.unwrap();
    assert!(
        publisher.in_flight() > 0,
        "the ack of a message just sent cannot have come yet"
    );
    // Taken as they come, oldest first, until none is left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while publisher.in_flight() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "acks never taken");
        tokio::time::sleep(Duration::from_millis(5)).await;
        publisher.settle_arrived().await.unwrap();
    }
    assert_eq!((metrics.stored.get(), metrics.duplicates.get()), (500, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_is_read_whole_while_a_writer_keeps_writing_to_it() {
    let (_nats, _client, js) = with_topology().await;
    let store = js.get_key_value("positions").await.unwrap();
    for i in 0..50u32 {
        store
            .put(format!("a.S{i}.BOTH"), format!("{i}").into_bytes().into())
            .await
            .unwrap();
    }
    store.delete("a.S7.BOTH").await.unwrap();
    // A writer that never pauses, rewriting keys in turn as a processor republishing on mark prices
    // does: every delivered entry has newer ones behind it.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0u64.. {
                let key = format!("a.S{}.BOTH", [0, 1, 2][usize::try_from(n % 3).unwrap()]);
                store
                    .put(key, n.to_string().into_bytes().into())
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let latest = tokio::time::timeout(
            Duration::from_secs(10),
            acctmon_bus::kv::latest(&store, ">"),
        )
        .await
        .expect("read while the writer writes")
        .unwrap();
        assert_eq!(latest.len(), 49, "every live key once: {:?}", latest.keys());
        assert!(
            !latest.contains_key("a.S7.BOTH"),
            "a deleted key is left out"
        );
        assert_eq!(&latest["a.S3.BOTH"].value[..], b"3");
        let s0 = &latest["a.S0.BOTH"];
        assert!(s0.revision > 51, "the writer's latest value: {s0:?}");
    }
    store.put("b.S1.BOTH", b"b".to_vec().into()).await.unwrap();
    let only_b = acctmon_bus::kv::latest(&store, "b.>").await.unwrap();
    assert_eq!(only_b.keys().collect::<Vec<_>>(), ["b.S1.BOTH"]);
    writer.abort();
}

/// A server killed and restarted under a full window of acks: every message is stored once and in the
/// order sent (what was sent before the connection dropped and lost with it goes again before anything
/// sent after), on a link that replaces its client instead of letting it reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_on_a_link_keeps_order_through_a_server_kill() {
    let (mut nats, _client, js) = with_topology().await;
    let health = acctmon_service::health::Health::new();
    let config = acctmon_bus::NatsConfig {
        urls: vec![nats.url()],
        ..acctmon_bus::NatsConfig::default()
    };
    let link = acctmon_bus::Link::connect(&config, "ordered", &health, "link")
        .await
        .unwrap();
    let total = 30_000u32;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let writer = {
        let (link, sent) = (link.clone(), sent.clone());
        tokio::spawn(async move {
            let mut publisher = Publisher::on_link(&link, 1024, PublishMetrics::unregistered());
            for i in 0..total {
                publisher.publish(numbered(i)).await.unwrap();
                sent.store(i, std::sync::atomic::Ordering::Relaxed);
            }
            publisher.flush().await.unwrap();
        })
    };
    while sent.load(std::sync::atomic::Ordering::Relaxed) < total / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    nats.restart();
    tokio::time::timeout(Duration::from_secs(120), writer)
        .await
        .expect("the publisher finishes after the restart")
        .unwrap();
    assert_eq!(link.current().0, 1, "one new connection after the restart");
    assert!(
        health.report().contains(&("link".to_owned(), true)),
        "the new connection is told connected: {:?}",
        health.report()
    );
    let stream = js.get_stream("EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut got = Vec::with_capacity(total as usize);
    while got.len() < total as usize {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("every message is stored")
            .unwrap()
            .unwrap();
        got.push(
            std::str::from_utf8(&m.payload)
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    let out_of_order: Vec<(usize, u32)> = got
        .iter()
        .enumerate()
        .filter(|(i, v)| **v as usize != *i)
        .map(|(i, v)| (i, *v))
        .take(5)
        .collect();
    assert_eq!(out_of_order, vec![], "stored out of the order sent");
    let info = js
        .get_stream("EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .clone();
    assert_eq!(info.messages, u64::from(total), "each message once");
}
