//! The reference figure of the throughput benchmarks: what a bare JetStream publisher stores per second
//! on the same server.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

/// Messages stored by [`raw_publish`] and the time they took.
#[derive(Debug, Clone, Copy)]
pub struct RawRun {
    /// Messages published and stored.
    pub messages: u64,
    /// From the first publish to the last ack.
    pub elapsed: Duration,
}

/// Publishes `size`-byte messages, each with a `Nats-Msg-Id`, keeping `window` acks in flight, for
/// `seconds`, to a file stream `BENCH_RAW` with `duplicate_window`; checks every one was stored. The
/// stream is created empty and deleted afterwards, so that runs in between measurements of something
/// else leave the server as they found it.
pub async fn raw_publish(
    js: &jetstream::Context,
    size: usize,
    window: usize,
    duplicate_window: Duration,
    seconds: Duration,
) -> RawRun {
    if js.get_stream("BENCH_RAW").await.is_ok() {
        js.delete_stream("BENCH_RAW")
            .await
            .expect("delete the last BENCH_RAW");
    }
    js.create_stream(stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        storage: stream::StorageType::File,
        duplicate_window,
        ..Default::default()
    })
    .await
    .expect("create BENCH_RAW");
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0u64;
    let started = Instant::now();
    while started.elapsed() < seconds {
        while in_flight.len() < window {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("raw:{sent}").as_str());
            let subject = format!("bench.raw.{}.acct", sent % 16);
            in_flight.push(
                js.publish_with_headers(subject, headers, payload.clone())
                    .await
                    .expect("publish")
                    .into_future(),
            );
            sent += 1;
        }
        if let Some(ack) = in_flight.next().await {
            ack.expect("ack");
        }
    }
    while let Some(ack) = in_flight.next().await {
        ack.expect("ack");
    }
    let elapsed = started.elapsed();
    let stored = js
        .get_stream("BENCH_RAW")
        .await
        .expect("BENCH_RAW")
        .info()
        .await
        .expect("BENCH_RAW info")
        .state
        .messages;
    assert_eq!(stored, sent, "raw: {stored} stored of {sent}");
    js.delete_stream("BENCH_RAW")
        .await
        .expect("delete BENCH_RAW");
    RawRun {
        messages: sent,
        elapsed,
    }
}

/// Messages of `stream` on subjects matching `filter`, from the stream's per-subject counts.
pub async fn count(js: &jetstream::Context, stream: &str, filter: &str) -> u64 {
    let s = js.get_stream(stream).await.expect("stream");
    let subjects = s
        .info_with_subjects(filter)
        .await
        .expect("per-subject counts");
    subjects
        .map(|r| r.map(|(_, n)| n as u64).expect("per-subject count"))
        .fold(0, |a, b| async move { a + b })
        .await
}
