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
//!
//! Acks come back on one subscription per publisher and client (`_INBOX.<id>.*`): each message is sent
//! with the reply subject `_INBOX.<id>.<n>`, `n` counting the publisher's sends, and the ack is matched
//! to its message by `n` (acks from different streams may come out of order). This costs one
//! formatted subject and one small JSON read per message, where the client's JetStream publish also
//! takes a permit, a one-shot channel, a timer and a boxed future per message, and decodes each ack
//! through an untagged enum: ingest spent a quarter of its time there.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::client::PublishErrorKind as ClientPublishErrorKind;
use async_nats::connection::State;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::{Client, HeaderMap, Message, StatusCode, Subject, Subscriber};
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use prometheus::{IntCounter, Registry};
use serde::Deserialize;
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
    /// The message is larger than the server takes, or its subject is not a valid one: a
    /// configuration error.
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
    /// Where the current client's acks come back; opened at the first send on it.
    inbox: Option<Inbox>,
    window: usize,
    /// Sent and not settled, oldest first, so in the order of their tokens.
    inflight: VecDeque<InFlight>,
    /// The token of the next message sent.
    next_token: u64,
    /// How many of `inflight` were never sent (their send failed), so that `publish` need not look.
    unsent: usize,
    metrics: PublishMetrics,
}

/// A subscription to `<prefix>*` on one client: each message is sent with the reply subject
/// `<prefix><token>`, and the server's ack comes back there.
struct Inbox {
    prefix: String,
    acks: Subscriber,
}

/// A message in flight.
struct InFlight {
    out: Outgoing,
    /// The token of its reply subject.
    token: u64,
    /// When it was sent; `None` when the send failed.
    sent: Option<Instant>,
    /// The connection it went out on.
    on: Connection,
    /// Its ack, once arrived (acks of messages to different streams may come out of order).
    outcome: Option<Outcome>,
}

/// What a message's ack says: stored (`false`) or dropped as a repeat (`true`), or why not.
type Outcome = Result<bool, AckFailure>;

/// Why a message is not known to be stored.
#[derive(Debug, Error)]
enum AckFailure {
    #[error("not sent")]
    NotSent,
    #[error("sent on a connection since lost")]
    Lost,
    #[error("no ack within {ACK_TIMEOUT:?}")]
    TimedOut,
    #[error("no responders (no stream, or the server is restarting)")]
    NoResponders,
    #[error("server error {code}: {description}")]
    Api { code: u16, description: String },
    #[error("unreadable ack: {0}")]
    Unreadable(String),
}

/// The body of a JetStream publish ack: `{"stream":…,"seq":…[,"duplicate":true]}` or
/// `{"error":{"code":…,"description":…}}`.
#[derive(Deserialize)]
struct AckBody {
    seq: Option<u64>,
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

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
            client,
            inbox: None,
            window,
            inflight: VecDeque::with_capacity(window),
            next_token: 0,
            unsent: 0,
            metrics,
        }
    }

    fn connection(&self) -> Connection {
        (
            self.epoch,
            self.client.statistics().connects.load(Ordering::Relaxed),
        )
    }

    /// Moves to the link's next client if this one is lost, keeping the acks that came on the old one.
    /// A failure to open it is logged; the caller's retries come back here.
    async fn revive(&mut self) {
        if !self.link.is_lost(self.epoch, &self.client) {
            return;
        }
        match self.link.renew(self.epoch).await {
            Ok((epoch, client)) => {
                self.take_arrived();
                self.inbox = None;
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

    /// Sends `out` with the reply subject of `token`; `None` when it could not be sent (the caller
    /// settles it as lost and sends it again).
    async fn send(&mut self, out: &Outgoing, token: u64) -> Result<Option<Instant>, PublishError> {
        if self.inbox.is_none() {
            self.inbox = self.open_inbox().await;
        }
        let Some(inbox) = &self.inbox else {
            return Ok(None);
        };
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, out.msg_id.as_str());
        headers.insert("Content-Type", out.content_type);
        let reply = format!("{}{token}", inbox.prefix);
        match self
            .client
            .publish_with_reply_and_headers(
                out.subject.clone(),
                reply,
                headers,
                out.payload.clone(),
            )
            .await
        {
            Ok(()) => Ok(Some(Instant::now())),
            Err(e) => match e.kind() {
                ClientPublishErrorKind::MaxPayloadExceeded
                | ClientPublishErrorKind::InvalidSubject => Err(PublishError::Refused {
                    subject: out.subject.to_string(),
                    reason: e.to_string(),
                }),
                ClientPublishErrorKind::Send => Ok(None),
            },
        }
    }

    /// Subscribes to a new inbox on the current client; `None`, logged, when that fails.
    async fn open_inbox(&self) -> Option<Inbox> {
        let prefix = format!("{}.", self.client.new_inbox());
        match self.client.subscribe(format!("{prefix}*")).await {
            Ok(acks) => Some(Inbox { prefix, acks }),
            Err(e) => {
                warn!(error = %e, "cannot subscribe to publish acks");
                None
            }
        }
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
        if self.inflight.front().is_some_and(|m| m.on != connection)
            || (!self.inflight.is_empty() && self.client.connection_state() != State::Connected)
        {
            self.flush().await?;
        }
        let token = self.next_token;
        self.next_token += 1;
        let sent = if self.unsent > 0 {
            // A failure is pending: do not send past it, or the order would break.
            None
        } else {
            self.send(&out, token).await?
        };
        self.unsent += usize::from(sent.is_none());
        self.inflight.push_back(InFlight {
            out,
            token,
            sent,
            on: connection,
            outcome: None,
        });
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
        self.take_arrived();
        while !self.inflight.is_empty() {
            if self.front_outcome().is_err() {
                return Ok(());
            }
            self.settle_front().await?;
        }
        Ok(())
    }

    /// Notes every ack that has arrived, without waiting.
    fn take_arrived(&mut self) {
        while let Some(inbox) = &mut self.inbox {
            match inbox.acks.next().now_or_never() {
                Some(Some(ack)) => self.note(&ack),
                // The subscription ended with its client: what was sent on it is lost.
                Some(None) => self.inbox = None,
                None => break,
            }
        }
    }

    /// Notes one ack on the message it answers; an ack of a message no longer in flight (answered
    /// after its timeout, or sent again since) is dropped.
    fn note(&mut self, ack: &Message) {
        let Some(token) = self.token_of(ack) else {
            return;
        };
        if let Some(i) = self.position_of(token) {
            self.inflight[i]
                .outcome
                .get_or_insert_with(|| read_ack(ack));
        }
    }

    /// Where the message of `token` is in flight. Tokens are handed out one by one and the window is
    /// taken from its front, so the distance from the front's token says where to look; the entry
    /// there is checked, and a search settles the rare other case (a send refused for its size took a
    /// number and left no message).
    fn position_of(&self, token: u64) -> Option<usize> {
        let front = self.inflight.front()?.token;
        let guess = usize::try_from(token.checked_sub(front)?).ok()?;
        match self.inflight.get(guess) {
            Some(m) if m.token == token => Some(guess),
            _ => self.inflight.binary_search_by_key(&token, |m| m.token).ok(),
        }
    }

    fn token_of(&self, ack: &Message) -> Option<u64> {
        let prefix = &self.inbox.as_ref()?.prefix;
        ack.subject.strip_prefix(prefix.as_str())?.parse().ok()
    }

    /// Waits for the next ack, until `deadline`, and notes it (on a link that renews its client, at
    /// most `LOST_CHECK`, so that a lost client is noticed).
    async fn wait_ack(&mut self, deadline: Instant) {
        let mut until = deadline;
        if self.link.renews() {
            until = until.min(Instant::now() + LOST_CHECK);
        }
        let Some(inbox) = &mut self.inbox else {
            return;
        };
        match tokio::time::timeout_at(until.into(), inbox.acks.next()).await {
            Ok(Some(ack)) => self.note(&ack),
            Ok(None) => self.inbox = None,
            Err(_) => {}
        }
    }

    /// Gives the oldest message in flight its outcome when it is known without waiting: its ack came,
    /// or none can come any more (never sent, sent on a client since lost, past its time). Otherwise
    /// the time its ack is due by.
    fn front_outcome(&mut self) -> Result<(), Instant> {
        let Some(front) = self.inflight.front() else {
            return Ok(());
        };
        if front.outcome.is_some() {
            return Ok(());
        }
        let (sent, on) = (front.sent, front.on.0);
        let failure = match sent {
            None => AckFailure::NotSent,
            Some(_) if self.inbox.is_none() || self.link.is_lost(on, &self.client) => {
                // Its ack came or never will: its subscription is gone with its client.
                self.take_arrived();
                AckFailure::Lost
            }
            Some(at) if at.elapsed() >= ACK_TIMEOUT => AckFailure::TimedOut,
            Some(at) => return Err(at + ACK_TIMEOUT),
        };
        if let Some(front) = self.inflight.front_mut() {
            front.outcome.get_or_insert(Err(failure));
        }
        Ok(())
    }

    /// Waits until the oldest message in flight has an outcome.
    async fn await_front(&mut self) {
        while let Err(deadline) = self.front_outcome() {
            self.wait_ack(deadline).await;
        }
    }

    async fn settle_oldest(&mut self) -> Result<(), PublishError> {
        self.await_front().await;
        self.settle_front().await
    }

    /// Takes the outcome of the oldest message's ack.
    async fn settle_front(&mut self) -> Result<(), PublishError> {
        let Some(m) = self.inflight.pop_front() else {
            return Ok(());
        };
        self.unsent -= usize::from(m.sent.is_none());
        let Err(failure) = self.stored(m.outcome) else {
            return Ok(());
        };
        warn!(subject = %m.out.subject, msg_id = %m.out.msg_id, error = %failure,
              "publish not acknowledged; sending again from it, in order, with the same ids");
        // From the failed message on, send again one at a time.
        let rest: Vec<Outgoing> = std::iter::once(m.out)
            .chain(self.inflight.drain(..).map(|m| m.out))
            .collect();
        self.unsent = 0;
        for out in rest {
            self.publish_until_stored(out).await?;
        }
        Ok(())
    }

    /// Counts a stored message (a new one or a repeat); otherwise why it is not known to be stored.
    fn stored(&self, outcome: Option<Outcome>) -> Result<(), AckFailure> {
        let duplicate = outcome.unwrap_or(Err(AckFailure::NotSent))?;
        self.count(duplicate);
        Ok(())
    }

    /// Sends `out` alone and waits for its ack, again and again, until it is stored.
    async fn publish_until_stored(&mut self, out: Outgoing) -> Result<(), PublishError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            self.revive().await;
            self.metrics.retries.inc();
            let (token, on) = (self.next_token, self.connection());
            self.next_token += 1;
            let sent = self.send(&out, token).await?;
            self.inflight.push_back(InFlight {
                out: out.clone(),
                token,
                sent,
                on,
                outcome: None,
            });
            self.await_front().await;
            let outcome = self.inflight.pop_front().and_then(|m| m.outcome);
            let Err(failure) = self.stored(outcome) else {
                return Ok(());
            };
            warn!(subject = %out.subject, error = %failure, retry_in = ?backoff, "publish failed");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
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

/// Reads a publish ack: a status (no responders) or the JSON body.
fn read_ack(ack: &Message) -> Outcome {
    if ack.status.is_some_and(|s| s != StatusCode::OK) {
        return Err(if ack.status == Some(StatusCode::NO_RESPONDERS) {
            AckFailure::NoResponders
        } else {
            AckFailure::Unreadable(format!("status {}", ack.status.map_or(0, |s| s.as_u16())))
        });
    }
    let body: AckBody =
        serde_json::from_slice(&ack.payload).map_err(|e| AckFailure::Unreadable(e.to_string()))?;
    match (body.error, body.seq) {
        (Some(e), _) => Err(AckFailure::Api {
            code: e.code,
            description: e.description,
        }),
        (None, Some(_)) => Ok(body.duplicate),
        (None, None) => Err(AckFailure::Unreadable("no sequence".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(subject: &str, status: Option<StatusCode>, body: &str) -> Message {
        Message {
            subject: subject.into(),
            reply: None,
            payload: Bytes::copy_from_slice(body.as_bytes()),
            headers: None,
            status,
            description: None,
            length: body.len(),
        }
    }

    #[test]
    fn acks_read_as_stored_duplicate_or_the_reason_why_not() {
        let read = |status, body| read_ack(&ack("_INBOX.x.1", status, body));
        assert!(matches!(
            read(None, r#"{"stream":"EVENTS","seq":7}"#),
            Ok(false)
        ));
        assert!(matches!(
            read(None, r#"{"stream":"EVENTS","seq":7,"duplicate":true}"#),
            Ok(true)
        ));
        assert!(matches!(
            read(
                None,
                r#"{"stream":"EVENTS","domain":"hub","seq":7,"duplicate":false}"#
            ),
            Ok(false)
        ));
        match read(
            None,
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
        ) {
            Err(AckFailure::Api { code, description }) => {
                assert_eq!(
                    (code, description.as_str()),
                    (503, "maximum messages exceeded")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(Some(StatusCode::NO_RESPONDERS), ""),
            Err(AckFailure::NoResponders)
        ));
        assert!(matches!(
            read(Some(StatusCode::TIMEOUT), ""),
            Err(AckFailure::Unreadable(_))
        ));
        assert!(matches!(read(None, "{}"), Err(AckFailure::Unreadable(_))));
        assert!(matches!(
            read(None, "not json"),
            Err(AckFailure::Unreadable(_))
        ));
    }

    #[tokio::test]
    async fn each_ack_settles_the_message_it_answers_in_any_order() {
        // A client that never connects: only the bookkeeping is exercised.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .unwrap();
        let subscriber = client.subscribe("_INBOX.t.*").await.unwrap();
        let mut publisher = Publisher::new(&client, 8, PublishMetrics::unregistered());
        publisher.inbox = Some(Inbox {
            prefix: "_INBOX.t.".to_owned(),
            acks: subscriber,
        });
        // 43 is missing: a send refused for its size takes a number and leaves no message.
        for token in [40, 41, 42, 44] {
            publisher.inflight.push_back(InFlight {
                out: Outgoing {
                    subject: "a".into(),
                    msg_id: token.to_string(),
                    payload: Bytes::new(),
                    content_type: "x",
                },
                token,
                sent: Some(Instant::now()),
                on: (0, 0),
                outcome: None,
            });
        }
        let stored = r#"{"stream":"S","seq":1}"#;
        let outcomes = |p: &Publisher| -> Vec<Option<bool>> {
            p.inflight
                .iter()
                .map(|m| m.outcome.as_ref().map(|o| *o.as_ref().unwrap()))
                .collect()
        };
        // An ack numbered 43 lands, by its distance from the front, where 44 is: it must not settle 44.
        publisher.note(&ack("_INBOX.t.43", None, stored));
        assert_eq!(outcomes(&publisher), [None, None, None, None]);
        publisher.note(&ack("_INBOX.t.42", None, stored));
        publisher.note(&ack("_INBOX.t.44", None, stored));
        publisher.note(&ack(
            "_INBOX.t.40",
            None,
            r#"{"stream":"S","seq":2,"duplicate":true}"#,
        ));
        assert_eq!(
            outcomes(&publisher),
            [Some(true), None, Some(false), Some(false)]
        );
        // Not ours, before the window, a number with no message, past the window, or not a number:
        // dropped.
        for other in [
            "_INBOX.u.41",
            "_INBOX.t.39",
            "_INBOX.t.43",
            "_INBOX.t.45",
            "_INBOX.t.4x",
        ] {
            publisher.note(&ack(other, None, stored));
        }
        assert_eq!(
            outcomes(&publisher),
            [Some(true), None, Some(false), Some(false)]
        );
        // A second ack for a settled message does not replace the first.
        publisher.note(&ack("_INBOX.t.40", None, stored));
        assert!(matches!(publisher.inflight[0].outcome, Some(Ok(true))));
    }
}
