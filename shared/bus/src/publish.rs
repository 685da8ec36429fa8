//! Publishing to JetStream with deterministic message ids, a bounded window of acks in flight, and retries
//! that keep both the id and the order.
//!
//! Messages go out pipelined: up to `window` are sent before the oldest ack is awaited. The server stores
//! what one connection sends in the order sent, so what is stored is always a prefix of what was sent.
//! When an ack fails (timeout, a restarting server, no responders), every message from the failed one on
//! is sent again, one by one, each awaited, with the same `Nats-Msg-Id`: those already stored are dropped
//! as duplicates, the others are stored, and the order on the stream stays the order of the calls.
//! Nothing new is sent past messages that went out on a connection since lost (the client reconnected or
//! is reconnecting): they are settled first, so that what the new connection stores comes after them.
//! A client that reconnects by itself may still send, on its new connection, messages it held when the
//! old one dropped, ahead of lost ones sent again; a publisher on a [`Link`] that renews its client
//! ([`Link::connect`]) is not exposed to that and keeps the order through any drop.
//! A caller that must not wait (ingest between two frames) takes only the acks that came
//! ([`Publisher::settle_arrived`]).

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, Context};
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures_util::FutureExt as _;
use prometheus::{IntCounter, Registry};
use sync_wrapper::SyncWrapper;
use thiserror::Error;
use tracing::warn;

use crate::link::Link;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Subject.
    pub subject: Subject,
    /// `Nats-Msg-Id`.
    pub msg_id: String,
    /// Payload.
    pub payload: Bytes,
    /// `Content-Type` header ([`crate::envelope::CONTENT_TYPE`] for MessagePack, `application/json` for JSON).
    pub content_type: &'static str,
}

/// A publish that cannot succeed by retrying.
#[derive(Debug, Error)]
pub enum PublishError {
    /// No stream takes this subject, or the message is too large: a configuration error.
    #[error("publish to {subject} refused: {reason}")]
    Refused {
        /// Subject.
        subject: String,
        /// The server's or client's reason.
        reason: String,
    },
}

/// Counters of a publisher.
#[derive(Clone)]
pub struct PublishMetrics {
    /// Messages the stream stored.
    pub stored: IntCounter,
    /// Messages the stream dropped as repeats of a stored `Nats-Msg-Id`.
    pub duplicates: IntCounter,
    /// Messages sent again after a failed ack.
    pub retries: IntCounter,
}

impl PublishMetrics {
    /// Counters registered in `registry` as `<prefix>_published_total`, `<prefix>_duplicates_total` and
    /// `<prefix>_publish_retries_total`.
    pub fn register(registry: &Registry, prefix: &str) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(format!("{prefix}_{name}"), help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(PublishMetrics {
            stored: counter("published_total", "messages stored by JetStream")?,
            duplicates: counter(
                "duplicates_total",
                "messages JetStream dropped as repeats of a stored message id",
            )?,
            retries: counter(
                "publish_retries_total",
                "messages sent again after a failed ack",
            )?,
        })
    }

    /// Counters registered nowhere.
    pub fn unregistered() -> Self {
        let c = |n: &str| IntCounter::new(n, n).unwrap_or_else(|_| unreachable!("valid name"));
        PublishMetrics {
            stored: c("stored"),
            duplicates: c("duplicates"),
            retries: c("retries"),
        }
    }
}

/// A pipelined, ordered, retrying publisher. Not shared: one per ordered flow (for ingest, one per
/// account), since order is kept among one publisher's messages only.
pub struct Publisher {
    link: Link,
    /// The link's client this publisher sends on, and its number in the link.
    epoch: u64,
    client: Client,
    js: Context,
    window: usize,
    /// Sent and not settled: the message, its ack (none when the send failed) and the connection it
    /// went out on.
    inflight: VecDeque<(Outgoing, Option<AckFuture>, Connection)>,
    /// How many of `inflight` have no ack (their send failed), so that `publish` need not look.
    unsent: usize,
    metrics: PublishMetrics,
}

/// Why an ack did not come.
type AckError = async_nats::jetstream::context::PublishError;

/// An ack awaited in place (polling it does not consume it), so that looking whether it came is free.
/// Only ever polled through `&mut`, hence shareable.
type AckFuture = SyncWrapper<Pin<Box<dyn Future<Output = Result<PublishAck, AckError>> + Send>>>;

/// A connection: the client's number in its link and its count of connects.
type Connection = (u64, u64);

/// Time allowed for one ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an awaited ack's connection is looked at, on a link that renews its client: an ack sent
/// on a lost client never comes.
const LOST_CHECK: Duration = Duration::from_millis(50);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Publisher {
    /// A publisher on `client` with at most `window` acks in flight.
    pub fn new(client: &Client, window: usize, metrics: PublishMetrics) -> Self {
        Self::on_link(&Link::fixed(client), window, metrics)
    }

    /// A publisher on `link`'s client, moving to the next one when it is lost, with at most `window`
    /// acks in flight.
    pub fn on_link(link: &Link, window: usize, metrics: PublishMetrics) -> Self {
        let window = window.max(1);
        let (epoch, client) = link.current();
        Publisher {
            link: link.clone(),
            epoch,
            js: Self::context(&client, window),
            client,
            window,
            inflight: VecDeque::with_capacity(window),
            unsent: 0,
            metrics,
        }
    }

    fn context(client: &Client, window: usize) -> Context {
        jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .max_ack_inflight(window + 1)
            .backpressure_on_inflight(true)
            .build(client.clone())
    }

    fn connection(&self) -> Connection {
        (
            self.epoch,
            self.client.statistics().connects.load(Ordering::Relaxed),
        )
    }

    /// Moves to the link's next client if this one is lost. A failure to open it is logged; the
    /// caller's retries come back here.
    async fn revive(&mut self) {
        if !self.link.is_lost(self.epoch, &self.client) {
            return;
        }
        match self.link.renew(self.epoch).await {
            Ok((epoch, client)) => {
                self.js = Self::context(&client, self.window);
                self.epoch = epoch;
                self.client = client;
            }
            Err(e) => warn!(error = %e, "cannot open a new nats connection"),
        }
    }

    /// Messages sent whose ack has not been settled yet.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    fn message(out: &Outgoing) -> PublishMessage {
        PublishMessage::build()
            .payload(out.payload.clone())
            .message_id(&out.msg_id)
            .header("Content-Type", out.content_type)
    }

    /// Sends `out`, first settling the oldest ack if the window is full. Returns once `out` is sent (not
    /// yet acknowledged); [`Publisher::flush`] waits for the acks.
    pub async fn publish(&mut self, out: Outgoing) -> Result<(), PublishError> {
        while self.inflight.len() >= self.window {
            self.settle_oldest().await?;
        }
        // Messages sent on a connection since lost may be lost with it, and what is sent now would be
        // stored before their retries: settle them first.
        self.revive().await;
        let connection = self.connection();
        if self
            .inflight
            .front()
            .is_some_and(|(_, _, on)| *on != connection)
            || (!self.inflight.is_empty() && self.client.connection_state() != State::Connected)
        {
            self.flush().await?;
        }
        let ack = if self.unsent > 0 {
            // A failure is pending: do not send past it, or the order would break.
            None
        } else {
            self.js
                .send_publish(out.subject.clone(), Self::message(&out))
                .await
                .ok()
                .map(|ack| SyncWrapper::new(ack.into_future()))
        };
        self.unsent += usize::from(ack.is_none());
        self.inflight.push_back((out, ack, connection));
        Ok(())
    }

    /// Waits until everything sent is stored (or known to be a duplicate).
    pub async fn flush(&mut self) -> Result<(), PublishError> {
        while !self.inflight.is_empty() {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    /// Takes the acks that have arrived, oldest first, without waiting for any; a failed one is handled
    /// as [`Publisher::flush`] would (sent again from it on, until stored). For a caller that wants its
    /// window kept short while idle without holding up what it sends next.
    pub async fn settle_arrived(&mut self) -> Result<(), PublishError> {
        while let Some((_, ack, on)) = self.inflight.front_mut() {
            let result = match ack {
                Some(ack) => match ack.get_mut().now_or_never() {
                    Some(result) => result,
                    None if self.link.is_lost(on.0, &self.client) => Err(lost()),
                    None => return Ok(()),
                },
                None => Err(lost()),
            };
            self.settle_front(result).await?;
        }
        Ok(())
    }

    async fn settle_oldest(&mut self) -> Result<(), PublishError> {
        let Publisher {
            inflight,
            link,
            client,
            ..
        } = self;
        let Some((_, ack, on)) = inflight.front_mut() else {
            return Ok(());
        };
        let result = match ack {
            Some(ack) if link.renews() => loop {
                if let Ok(result) = tokio::time::timeout(LOST_CHECK, ack.get_mut()).await {
                    break result;
                }
                if link.is_lost(on.0, client) {
                    break Err(lost());
                }
            },
            Some(ack) => ack.get_mut().await,
            None => Err(lost()),
        };
        self.settle_front(result).await
    }

    /// Takes the outcome of the oldest message's ack.
    async fn settle_front(
        &mut self,
        result: Result<PublishAck, AckError>,
    ) -> Result<(), PublishError> {
        let Some((out, ack, _)) = self.inflight.pop_front() else {
            return Ok(());
        };
        self.unsent -= usize::from(ack.is_none());
        let failure = match result {
            Ok(ack) => {
                self.count(ack.duplicate);
                return Ok(());
            }
            Err(e) => e,
        };
        refused(&out, &failure)?;
        warn!(subject = %out.subject, msg_id = %out.msg_id, error = %failure,
              "publish not acknowledged; sending again from it, in order, with the same ids");
        // From the failed message on, send again one at a time.
        let rest: Vec<Outgoing> = std::iter::once(out)
            .chain(self.inflight.drain(..).map(|(o, _, _)| o))
            .collect();
        self.unsent = 0;
        for out in rest {
            self.publish_until_stored(&out).await?;
        }
        Ok(())
    }

    async fn publish_until_stored(&mut self, out: &Outgoing) -> Result<(), PublishError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            self.revive().await;
            self.metrics.retries.inc();
            let result = match self
                .js
                .send_publish(out.subject.clone(), Self::message(out))
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(ack) => {
                    self.count(ack.duplicate);
                    return Ok(());
                }
                Err(e) => {
                    refused(out, &e)?;
                    warn!(subject = %out.subject, error = %e, retry_in = ?backoff, "publish failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn count(&self, duplicate: bool) {
        if duplicate {
            self.metrics.duplicates.inc();
        } else {
            self.metrics.stored.inc();
        }
    }
}

/// The outcome of an ack that cannot come (never sent, or sent on a client since lost).
fn lost() -> AckError {
    AckError::new(PublishErrorKind::Other)
}

/// Errors that retrying cannot cure. "No responders" is not one: it is what a restarting server answers.
fn refused(out: &Outgoing, e: &AckError) -> Result<(), PublishError> {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => Err(PublishError::Refused {
            subject: out.subject.to_string(),
            reason: e.to_string(),
        }),
        _ => Ok(()),
    }
}
