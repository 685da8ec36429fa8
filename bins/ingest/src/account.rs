//! One account's user-data stream, gap-free: a session at a time, each opened with a new listenKey, a
//! backfill of what was missed, then live events, until the socket dies, the key expires or is refused,
//! the 24 h cut nears, or shutdown.
//!
//! Order of a session: connect the socket first (its frames wait in a queue), then fetch what was missed
//! through REST and publish it in exchange order, then publish the queued and further live frames. Live
//! events already covered by the backfill carry the same message ids and are dropped by JetStream.
//!
//! Where to resume comes from [`Cursor`]: the trade ids of the complete fills published, and the times
//! of the last fill and money movement published. At process start it is read back from the last message
//! of each of the account's subjects on `EVENTS`: what a publisher stores is a prefix of what it sent,
//! so everything before that message is there. An account with nothing on `EVENTS` starts from a REST
//! snapshot, the exchange's state, without replaying history.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use acctmon_binance::Decoder;
use acctmon_binance::rest::{
    IncomeRow, parse_income_row, parse_snapshot, parse_user_trade, rows_updated_until,
};
use acctmon_bus::envelope::Envelope;
use acctmon_bus::subject::EventSubject;
use acctmon_bus::topology::names;
use acctmon_bus::{Outgoing, Publisher, msg_id};
use acctmon_domain::{
    Account, Event, EventKind, FillSource, Snapshot, StreamNotice, StreamStatus, Symbol, Timestamp,
};
use acctmon_service::health::Health;
use anyhow::Context as _;
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use futures_util::future::OptionFuture;
use rust_decimal::Decimal;
use sync_wrapper::SyncWrapper;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{ResolvedAccount, StreamConfig};
use crate::interest::Interest;
use crate::metrics::Metrics;
use crate::rest::{Rest, jitter, local_ms};

/// Rows per REST page (Binance's maximum for userTrades and income).
const PAGE: u32 = 1000;
/// Live frames handled between two looks at the other duties of the loop.
const BURST: usize = 512;

/// Where the account's published history ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Time of the latest funding or transfer published.
    pub last_money_time: Option<i64>,
    /// Time of the latest account event of any kind published.
    pub last_time: Option<i64>,
    /// Trade ids of complete fills published, per symbol (the most recent [`SEEN_PER_SYMBOL`]).
    pub seen: HashMap<Symbol, BTreeSet<u64>>,
    /// Money movements published (the most recent [`MONEY_KEPT`]), to recognise them in the income
    /// history, where Binance may stamp them with another time.
    pub money: VecDeque<Money>,
    /// The shortest gap seen between two funding times in the income history: two payments of one leg
    /// are at least this far apart.
    pub funding_interval: Option<i64>,
    /// The user-data session running, counted from 1 (0 before the first).
    pub session: u64,
}

/// Trade ids remembered per symbol.
pub const SEEN_PER_SYMBOL: usize = 100_000;
/// Money movements remembered.
pub const MONEY_KEPT: usize = 10_000;

impl Cursor {
    /// Whether the complete report of a trade was published.
    pub fn has_trade(&self, symbol: &str, id: u64) -> bool {
        self.seen.get(symbol).is_some_and(|ids| ids.contains(&id))
    }

    /// Whether anything of the account was ever published.
    pub fn known(&self) -> bool {
        self.last_time.is_some()
    }

    /// Takes a published event into account.
    pub fn note(&mut self, event: &Event) {
        let time = event.time().0;
        match event {
            // A TRADE_LITE notice lacks rp and commission: it does not count as the trade published.
            Event::Fill(f) if f.source != FillSource::TradeLite => {
                let seen = self.seen.entry(f.symbol.clone()).or_default();
                seen.insert(f.trade_id);
                if seen.len() > SEEN_PER_SYMBOL {
                    seen.pop_first();
                }
            }
            Event::Funding(_) | Event::Transfer(_) => {
                self.last_money_time = self.last_money_time.max(Some(time));
                if let Some(mut m) = money(event) {
                    // Read from the income history (it carries a `tranId`): it may stand for the
                    // stream's report of the same movement (see `take_backfilled`).
                    if from_history(event) {
                        m.vouches_in = Some(self.session);
                    }
                    self.money.push_back(m);
                    if self.money.len() > MONEY_KEPT {
                        self.money.pop_front();
                    }
                }
            }
            // Notices about our own connection say nothing of the account's history.
            Event::Stream(_) | Event::Mark(_) | Event::Brackets(_) => return,
            _ => {}
        }
        self.last_time = self.last_time.max(Some(time));
    }

    /// Learns the funding schedule from the times of funding rows read in the income history (rows are
    /// stamped with their funding time; gaps under a second are taken for one funding time).
    pub fn observe_funding_times(&mut self, times: impl IntoIterator<Item = i64>) {
        let times: BTreeSet<i64> = times.into_iter().collect();
        let mut shortest: Option<i64> = None;
        let mut current: Option<i64> = None;
        for t in times {
            match current {
                Some(c) if t - c < 1000 => {}
                Some(c) => {
                    shortest = Some(shortest.map_or(t - c, |s| s.min(t - c)));
                    current = Some(t);
                }
                None => current = Some(t),
            }
        }
        if let Some(gap) = shortest {
            self.funding_interval = Some(self.funding_interval.map_or(gap, |i| i.min(gap)));
        }
    }

    /// How far apart the stream's and the income history's times of one payment of `kind` may be:
    /// `MONEY_MATCH_MS` (a minute), and for funding less than half the funding interval, so that a
    /// payment is never taken for the same leg's equal payment at the next funding time.
    pub fn match_window(&self, kind: EventKind) -> i64 {
        match (kind, self.funding_interval) {
            (EventKind::Funding, Some(interval)) => MONEY_MATCH_MS.min(interval / 2 - 1),
            _ => MONEY_MATCH_MS,
        }
    }

    /// A new user-data session starts.
    pub fn start_session(&mut self) {
        self.session += 1;
    }

    /// Whether a live money movement is one the backfill already published: the nearest published
    /// from the income history within the match window, at the same time (the same message id) or at
    /// the time Binance gave its income row. It then vouches for no other, but stays known as
    /// published, so that later reads of the history do not take it for missing and publish it again.
    ///
    /// A transfer backfilled vouches only in its own session. A movement reaches the stream's socket
    /// open at the time, if any: one backfilled after a gap, or found missing by an audit, never comes
    /// live in a later session, and left to vouch it would swallow the next live movement of the same
    /// amount (transfers of round amounts repeat), which then reached the books only through the next
    /// audit, after the balance rows that include it. A funding payment vouches in later sessions too:
    /// its stream event is stamped seconds after its income row, so a reconnect in between brings it in
    /// the next session, and within the match window (under half the funding interval) it can only be
    /// taken for the same funding time's payment of the same amount.
    fn take_backfilled(&mut self, live: &Money) -> bool {
        let window = self.match_window(live.kind);
        let session = self.session;
        let found = self
            .money
            .iter_mut()
            .filter(|p| {
                p.vouches_in
                    .is_some_and(|s| s == session || p.kind == EventKind::Funding)
                    && p.matches(live, window)
            })
            .min_by_key(|p| (p.time - live.time).abs());
        match found {
            Some(p) => {
                p.vouches_in = None;
                true
            }
            None => false,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The socket closed, failed or went silent.
    Disconnected,
    /// `listenKeyExpired` arrived.
    Expired,
    /// The keepalive was refused with `-1125`.
    KeyRejected,
    /// Planned reconnect before the 24 h cut.
    Rotated,
}

/// A money movement published, kept to recognise it when the other source reports it with another time
/// (Binance stamps a funding event a few seconds after its income row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    kind: EventKind,
    asset: String,
    /// The symbol of a funding payment, when the source names it.
    symbol: Option<String>,
    amount: Decimal,
    time: i64,
    /// For a movement read from the income history: the session it was read in, while it may still
    /// stand for the stream's report of it (a transfer in that session only, a funding payment in later
    /// ones too); none once it did, or for one the stream reported.
    vouches_in: Option<u64>,
}

impl Money {
    fn matches(&self, other: &Money, window: i64) -> bool {
        self.kind == other.kind
            && self.asset == other.asset
            && self.amount == other.amount
            && (self.symbol.is_none() || other.symbol.is_none() || self.symbol == other.symbol)
            && (self.time - other.time).abs() <= window
    }
}

/// Which of `found` (money movements read from the income history, in time order) match one of
/// `published`, each published movement matching at most one. The pairs closest in time are made first
/// (equal times before all others): a leg that pays the same amount at consecutive funding times must
/// not have one payment taken for the other, or the one never published would pass for published.
/// `window` is [`Cursor::match_window`].
fn published_matches(
    published: &[Money],
    found: &[Money],
    window: impl Fn(EventKind) -> i64,
) -> Vec<bool> {
    // Every possible pair, the closest in time first (equal times first of all).
    let mut by_amount: HashMap<(EventKind, &str, Decimal), Vec<usize>> = HashMap::new();
    for (i, p) in published.iter().enumerate() {
        by_amount
            .entry((p.kind, p.asset.as_str(), p.amount))
            .or_default()
            .push(i);
    }
    let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
    for (m, row) in found.iter().enumerate() {
        let same = by_amount.get(&(row.kind, row.asset.as_str(), row.amount));
        for &i in same.into_iter().flatten() {
            if published[i].matches(row, window(row.kind)) {
                pairs.push(((published[i].time - row.time).abs(), m, i));
            }
        }
    }
    pairs.sort_unstable();
    let mut claimed = vec![false; published.len()];
    let mut matched = vec![false; found.len()];
    for (_, m, i) in pairs {
        if !matched[m] && !claimed[i] {
            matched[m] = true;
            claimed[i] = true;
        }
    }
    matched
}

/// How far apart the stream's and the income history's times of one money movement may be.
const MONEY_MATCH_MS: i64 = 60_000;

/// One account's ingest.
pub struct AccountIngest {
    account: Account,
    settings: ResolvedAccount,
    stream: StreamConfig,
    rest: Rest,
    js: Context,
    publisher: Publisher,
    partitions: u32,
    subjects: HashMap<EventKind, async_nats::Subject>,
    cursor: Cursor,
    decoder: Decoder,
    metrics: Metrics,
    health: Health,
    interest: Interest,
    /// The last money movement's time read from `EVENTS` at start: older income rows were published.
    restored_money_time: Option<i64>,
    /// Where the next audit starts.
    audit_from: Option<i64>,
    /// The audit's read of the income history in flight. It outlives a session: sessions may end
    /// more often than a read takes, and an audit dropped with them would never move `audit_from`.
    audit_read: Option<AuditRead>,
    /// The newest exchange event time `E` handled from the live stream.
    last_event_time: i64,
    /// The newest time of an account event published, and the time of the last `heard` notice.
    published_until: i64,
    heard_until: i64,
}

impl AccountIngest {
    /// Prepares an account (no IO yet).
    #[allow(clippy::too_many_arguments)] // the pieces of a running service, passed once
    pub fn new(
        settings: ResolvedAccount,
        stream: StreamConfig,
        client: &async_nats::Client,
        events: &acctmon_bus::Link,
        partitions: u32,
        metrics: Metrics,
        health: Health,
        interest: Interest,
    ) -> anyhow::Result<Self> {
        let account = Account::new(&settings.name)
            .map_err(|e| anyhow::anyhow!("account `{}`: {e}", settings.name))?;
        let rest = Rest::new(
            &settings.rest_url,
            settings.api_key.clone(),
            settings.api_secret.clone(),
            settings.recv_window,
            metrics.clone(),
            &settings.name,
        )?;
        let publisher = Publisher::on_link(events, stream.publish_window, metrics.publish.clone());
        health.set(&check_name(&account), false);
        Ok(AccountIngest {
            account,
            settings,
            stream,
            rest,
            js: async_nats::jetstream::new(client.clone()),
            publisher,
            partitions,
            subjects: HashMap::new(),
            cursor: Cursor::default(),
            decoder: Decoder::new(),
            metrics,
            health,
            interest,
            restored_money_time: None,
            audit_from: None,
            audit_read: None,
            last_event_time: 0,
            published_until: 0,
            heard_until: 0,
        })
    }

    /// The cursor (for tests and logs).
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Runs sessions until `shutdown`, reconnecting with exponential backoff and jitter.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let account = self.account.clone();
        let restored = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            r = self.restore_until_done() => r,
        };
        info!(%account, known = restored.known(), last_time = ?restored.last_time, "resume point read from EVENTS");
        self.restored_money_time = restored.last_money_time;
        self.cursor = restored;
        let mut failures: u32 = 0;
        let mut sessions: u64 = 0;
        loop {
            if sessions > 0 {
                self.metrics
                    .reconnects
                    .with_label_values(&[account.as_str()])
                    .inc();
            }
            sessions += 1;
            let started = tokio::time::Instant::now();
            let end = self.session(&shutdown).await;
            self.health.set(&check_name(&account), false);
            let flushed = self.publisher.flush().await;
            match (&end, flushed) {
                (_, Err(e)) => warn!(%account, error = %e, "publishing failed"),
                (Ok(SessionEnd::Shutdown), Ok(())) => {
                    info!(%account, "stopped");
                    return Ok(());
                }
                (Ok(why), Ok(())) => info!(%account, reason = ?why, "user-data session ended"),
                (Err(e), Ok(())) => {
                    warn!(%account, error = format!("{e:#}"), "user-data session failed")
                }
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // A notice of the gap, so that readers of EVENTS see where the stream was interrupted.
            let notice = Event::Stream(StreamNotice {
                account: account.clone(),
                status: if end.as_ref().is_ok_and(|e| *e == SessionEnd::Expired) {
                    StreamStatus::Expired
                } else {
                    StreamStatus::Gap
                },
                time: Timestamp(self.rest.server_now()),
            });
            self.publish_event(notice, local_ms()).await?;
            self.publisher.flush().await?;
            let quick = matches!(
                end,
                Ok(SessionEnd::Rotated | SessionEnd::Expired | SessionEnd::KeyRejected)
            );
            failures = if started.elapsed() > Duration::from_secs(60) || quick {
                0
            } else {
                failures.saturating_add(1)
            };
            let delay = backoff(
                failures,
                self.stream.reconnect_min,
                self.stream.reconnect_max,
            );
            debug!(%account, ?delay, "reconnecting");
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn restore_until_done(&mut self) -> Cursor {
        let mut attempt = 0;
        loop {
            match self.restore().await {
                Ok(c) => return c,
                Err(e) => {
                    attempt += 1;
                    warn!(account = %self.account, error = format!("{e:#}"), "cannot read the resume point from EVENTS yet");
                    tokio::time::sleep(backoff(
                        attempt,
                        Duration::from_millis(200),
                        Duration::from_secs(5),
                    ))
                    .await;
                }
            }
        }
    }

    /// Reads the resume point from the last message of each of the account's subjects.
    async fn restore(&self) -> anyhow::Result<Cursor> {
        let stream = self
            .js
            .get_stream(names::EVENTS)
            .await
            .context("get stream EVENTS")?;
        let mut cursor = Cursor::default();
        for kind in [
            EventKind::Fill,
            EventKind::Funding,
            EventKind::Transfer,
            EventKind::Snapshot,
            EventKind::Balance,
            EventKind::Position,
            EventKind::Order,
        ] {
            let subject = EventSubject::new(&self.account, kind, self.partitions).subject();
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => {
                    let envelope = Envelope::decode(&message.payload)
                        .with_context(|| format!("last message of {subject}"))?;
                    cursor.note(&envelope.event);
                }
                Err(e)
                    if e.kind()
                        == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(e).with_context(|| format!("last message of {subject}")),
            }
        }
        Ok(cursor)
    }

    fn subject(&mut self, kind: EventKind) -> async_nats::Subject {
        let (account, partitions) = (&self.account, self.partitions);
        self.subjects
            .entry(kind)
            .or_insert_with(|| {
                EventSubject::new(account, kind, partitions)
                    .subject()
                    .into()
            })
            .clone()
    }

    async fn publish_event(&mut self, event: Event, received_at: i64) -> anyhow::Result<()> {
        let kind = event.kind();
        let id = msg_id(&event);
        if !matches!(
            event,
            Event::Stream(_) | Event::Mark(_) | Event::Brackets(_)
        ) {
            self.published_until = self.published_until.max(event.time().0);
        }
        self.cursor.note(&event);
        self.interest.note(&event);
        let payload = Envelope::new(event, received_at)
            .encode()
            .context("encode event")?;
        let subject = self.subject(kind);
        self.publisher
            .publish(Outgoing {
                subject,
                msg_id: id,
                payload: payload.into(),
                content_type: acctmon_bus::envelope::CONTENT_TYPE,
            })
            .await?;
        self.metrics
            .events
            .with_label_values(&[self.account.as_str(), kind.as_str()])
            .inc();
        Ok(())
    }

    async fn session(&mut self, shutdown: &CancellationToken) -> anyhow::Result<SessionEnd> {
        self.rest.sync_time().await.context("server time")?;
        let key = self.rest.create_listen_key().await.context("listenKey")?;
        let url = format!("{}/private/ws?listenKey={key}", self.settings.ws_url);
        let (socket, _) = tokio::time::timeout(
            Duration::from_secs(15),
            // No Nagle: a pong must not wait behind an unacknowledged write.
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
        )
        .await
        .context("user-data socket: connect timed out")?
        // The URL holds the listenKey: report only that the connection failed.
        .map_err(|e| anyhow::anyhow!("user-data socket: {}", socket_reason(&e)))?;
        let connected_at = tokio::time::Instant::now();
        let (frames_tx, mut frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(socket, frames_tx, self.stream.silence_timeout));
        let result = self.run_session(shutdown, &mut frames, connected_at).await;
        reader.abort();
        result
    }

    async fn run_session(
        &mut self,
        shutdown: &CancellationToken,
        frames: &mut mpsc::UnboundedReceiver<Frame>,
        connected_at: tokio::time::Instant,
    ) -> anyhow::Result<SessionEnd> {
        let account = self.account.clone();
        self.cursor.start_session();
        // What was missed, before anything newer.
        let started = std::time::Instant::now();
        let backfill = self.catch_up().await.context("backfill")?;
        for event in backfill {
            self.publish_event(event, local_ms()).await?;
        }
        self.publisher.flush().await?;
        self.metrics
            .backfill_seconds
            .observe(started.elapsed().as_secs_f64());
        let connected = Event::Stream(StreamNotice {
            account: account.clone(),
            status: StreamStatus::Connected,
            time: Timestamp(self.rest.server_now()),
        });
        self.publish_event(connected, local_ms()).await?;
        self.health.set(&check_name(&account), true);
        info!(%account, "user-data stream live");

        let mut keepalive =
            tokio::time::interval_at(connected_at + self.stream.keepalive, self.stream.keepalive);
        let audit_every = if self.stream.audit_every.is_zero() {
            Duration::from_secs(365 * 86_400)
        } else {
            self.stream.audit_every
        };
        let mut audit =
            tokio::time::interval_at(tokio::time::Instant::now() + audit_every, audit_every);
        audit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard =
            tokio::time::interval(self.stream.heard_every.max(Duration::from_millis(10)));
        heard.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rotate = tokio::time::sleep_until(connected_at + self.stream.rotate_after);
        tokio::pin!(rotate);
        let mut events = Vec::with_capacity(8);
        let mut last_received = local_ms();
        loop {
            let frame = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
                () = &mut rotate => return Ok(SessionEnd::Rotated),
                _ = keepalive.tick() => {
                    match self.rest.keepalive_listen_key().await {
                        Ok(()) => debug!(%account, "listenKey kept alive"),
                        Err(e) if e.code() == Some(-1125) => {
                            warn!(%account, "listenKey no longer exists (-1125)");
                            return Ok(SessionEnd::KeyRejected);
                        }
                        Err(e) => warn!(%account, error = %e, "listenKey keepalive failed; trying again next period"),
                    }
                    continue;
                }
                _ = heard.tick() => {
                    let quiet = frames.is_empty() && local_ms() - last_received >= self.grace_ms();
                    self.declare_heard(quiet).await?;
                    continue;
                }
                // The income history is read beside the live stream, which a slow REST answer must not
                // hold up; the rows are compared with what was published once they are all in.
                Some((window, rows)) = OptionFuture::from(self.audit_read.as_mut().map(SyncWrapper::get_mut)) => {
                    self.audit_read = None;
                    if let Err(e) = self.settle_audit(window, rows).await {
                        warn!(%account, error = format!("{e:#}"), "audit failed; trying again next period");
                    }
                    continue;
                }
                _ = audit.tick(), if self.audit_read.is_none() => {
                    // Everything received up to then is published: frames are handled in arrival order.
                    let heard = if frames.is_empty() { local_ms() } else { last_received };
                    if let Some(window) = self.audit_window(heard) {
                        let rest = self.rest.clone();
                        self.audit_read = Some(SyncWrapper::new(Box::pin(async move {
                            let rows = income_since(&rest, window.from).await;
                            (window, rows)
                        })));
                    }
                    continue;
                }
                frame = frames.recv() => frame,
            };
            let Some(mut frame) = frame else {
                return Ok(SessionEnd::Disconnected);
            };
            // Take what is queued, up to a burst, then take the acks that came. The limit is
            // checked before taking the next frame: a frame taken is a frame handled.
            let mut handled = 0;
            loop {
                let Frame::Text(text, received) = frame else {
                    return Ok(SessionEnd::Disconnected);
                };
                last_received = received;
                if self.handle_frame(&text, received, &mut events).await? {
                    return Ok(SessionEnd::Expired);
                }
                handled += 1;
                if handled >= BURST {
                    break;
                }
                match frames.try_recv() {
                    Ok(next) => frame = next,
                    Err(_) => break,
                }
            }
            // Never wait for acks here: the next frame would wait with them (the window waits when
            // full; a backfill and the session's end wait for all).
            self.publisher.settle_arrived().await?;
        }
    }

    /// Publishes a `heard` notice when something published is not yet covered by one. Frames are
    /// handled in arrival order and the exchange sends each event type in time order, so every event
    /// stamped up to the newest time handled, less the grace for the order between types, is published.
    /// A stream `quiet` for the grace has nothing in flight: then everything up to the exchange's clock
    /// less the grace is.
    async fn declare_heard(&mut self, quiet: bool) -> anyhow::Result<()> {
        if self.published_until <= self.heard_until {
            return Ok(());
        }
        let until = if quiet {
            self.rest.server_now()
        } else {
            self.last_event_time
        } - self.grace_ms();
        if until <= self.heard_until {
            return Ok(());
        }
        self.heard_until = until;
        let notice = Event::Stream(StreamNotice {
            account: self.account.clone(),
            status: StreamStatus::Heard,
            time: Timestamp(until),
        });
        self.publish_event(notice, local_ms()).await
    }

    fn grace_ms(&self) -> i64 {
        i64::try_from(self.stream.audit_grace.as_millis()).unwrap_or(5000)
    }

    /// Decodes and publishes one frame; true when it says the listenKey expired.
    async fn handle_frame(
        &mut self,
        text: &str,
        received: i64,
        events: &mut Vec<Event>,
    ) -> anyhow::Result<bool> {
        events.clear();
        if let Err(e) = self.decoder.decode_frame_into(&self.account, text, events) {
            self.metrics
                .undecodable
                .with_label_values(&[self.account.as_str()])
                .inc();
            warn!(account = %self.account, error = %e, raw = %text, "undecodable user-data payload; published as `undecodable` and skipped");
            events.clear();
            events.push(Event::Stream(StreamNotice {
                account: self.account.clone(),
                status: StreamStatus::Undecodable {
                    raw: text.to_owned(),
                    error: e.to_string(),
                },
                time: Timestamp(received),
            }));
        }
        let mut expired = false;
        for event in events.drain(..) {
            if let Some(e) = event_time(&event) {
                self.last_event_time = self.last_event_time.max(e);
                let lag = (received - e).max(0);
                #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
                // A latency figure for a histogram, not money.
                self.metrics
                    .stream_lag
                    .with_label_values(&[self.account.as_str()])
                    .observe(lag as f64 / 1000.0);
            }
            if matches!(
                &event,
                Event::Stream(StreamNotice {
                    status: StreamStatus::Expired,
                    ..
                })
            ) {
                expired = true;
            }
            if money(&event).is_some_and(|m| self.cursor.take_backfilled(&m)) {
                debug!(account = %self.account, "money movement already published by the backfill");
                continue;
            }
            if event.account().is_some() {
                self.publish_event(event, received).await?;
            }
        }
        Ok(expired)
    }

    /// The REST snapshot: account, positions with entry prices, position mode.
    async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        // The answers come from three moments; the snapshot says so (`since` … `time`), and the books
        // accept for each figure any state the account was in between. Its `time` is that of the
        // account's answer, which holds the quantities: a fill between it and the positionRisk call is
        // not in them. The local estimate of the exchange's clock may lag behind the exchange's own
        // stamps; the rows changed at their `updateTime` are in the answer, so it is at least that late.
        let before = self.rest.server_now();
        let mode = self.rest.position_mode().await.context("position mode")?;
        let info = self.rest.account().await.context("account")?;
        let answered = self
            .rest
            .server_now()
            .max(rows_updated_until(&info).unwrap_or(i64::MIN));
        let risk = self.rest.position_risk().await.context("positionRisk")?;
        let mut snapshot = parse_snapshot(
            &self.account,
            &info,
            &risk,
            Some(&mode),
            Timestamp(answered),
        )?;
        snapshot.since = Some(Timestamp(before));
        Ok(snapshot)
    }

    /// The income rows that tell of something not published: trade rows whose trade has no complete fill
    /// on the stream, and money movements without a published match.
    fn unpublished<'r>(
        &mut self,
        rows: &'r [IncomeRow],
    ) -> (Vec<&'r IncomeRow>, Vec<&'r IncomeRow>) {
        self.cursor.observe_funding_times(
            rows.iter()
                .filter(|r| r.income_type == "FUNDING_FEE")
                .map(|r| r.time),
        );
        let mut trades = Vec::new();
        let mut money_rows = Vec::new();
        let mut found = Vec::new();
        for row in rows {
            match row.income_type.as_str() {
                "COMMISSION" | "REALIZED_PNL" => {
                    if let Some(id) = row.trade_id
                        && !self.cursor.has_trade(&row.symbol, id)
                    {
                        trades.push(row);
                    }
                }
                _ => {
                    let event = match parse_income_row(&self.account, row) {
                        Ok(Some(event)) => event,
                        Ok(None) => continue,
                        Err(e) => {
                            warn!(account = %self.account, error = %e, "income row skipped: it does not parse");
                            continue;
                        }
                    };
                    let Some(m) = money(&event) else { continue };
                    if self.restored_money_time.is_some_and(|t| row.time <= t) {
                        continue;
                    }
                    money_rows.push(row);
                    found.push(m);
                }
            }
        }
        let published: Vec<Money> = self.cursor.money.iter().cloned().collect();
        let matched = published_matches(&published, &found, |kind| self.cursor.match_window(kind));
        let money_rows = money_rows
            .into_iter()
            .zip(matched)
            .filter(|(_, matched)| !matched)
            .map(|(row, _)| row)
            .collect();
        (trades, money_rows)
    }

    /// What was missed since `since`, in exchange order, ending with a snapshot. `wide` (after a
    /// reconnect) also asks userTrades for every symbol traded or held before, for trades without an
    /// income row (a zero-fee opening trade has none); otherwise only the symbols of unpublished rows.
    /// `read`: the income rows since `since` when the caller has them already.
    async fn backfill(
        &mut self,
        since: i64,
        until: Option<i64>,
        wide: bool,
        read: Option<Vec<IncomeRow>>,
    ) -> anyhow::Result<Vec<Event>> {
        let account = self.account.clone();
        let rows = match read {
            Some(rows) => rows,
            None => income_since(&self.rest, since).await?,
        };
        let (trade_rows, money_rows) = self.unpublished(&rows);
        let mut events: Vec<Event> = Vec::new();
        for row in money_rows
            .iter()
            .filter(|r| until.is_none_or(|u| r.time <= u))
        {
            if let Some(event) = parse_income_row(&account, row)? {
                events.push(event);
            }
        }
        let mut symbols: BTreeSet<String> = trade_rows.iter().map(|r| r.symbol.clone()).collect();
        if wide {
            symbols.extend(
                rows.iter()
                    .filter(|r| !r.symbol.is_empty())
                    .map(|r| r.symbol.clone()),
            );
            symbols.extend(self.cursor.seen.keys().map(|s| s.as_str().to_owned()));
            symbols.extend(self.interest.open_symbols(&account));
        }
        let mut fills = 0u64;
        for symbol in &symbols {
            let mut from = None;
            let mut start = Some(since);
            loop {
                let rows = self
                    .rest
                    .user_trades(symbol, from, start, PAGE)
                    .await
                    .with_context(|| format!("userTrades {symbol}"))?;
                for row in &rows {
                    // Past `until` the live stream may still deliver it: leave it to the stream.
                    if until.is_some_and(|u| row.time > u) {
                        continue;
                    }
                    if !self.cursor.has_trade(symbol, row.id) {
                        events.push(Event::Fill(parse_user_trade(&account, row)?));
                        fills += 1;
                    }
                }
                match rows.last() {
                    Some(last) if rows.len() >= PAGE as usize => {
                        from = Some(last.id + 1);
                        start = None;
                    }
                    _ => break,
                }
            }
        }
        // Exchange order: by time, fills by trade id within one time.
        events.sort_by_key(|e| {
            let id = match e {
                Event::Fill(f) => f.trade_id,
                _ => 0,
            };
            (e.time(), id)
        });
        let money_count = events.len() - usize::try_from(fills).unwrap_or(0);
        self.metrics
            .gaps
            .with_label_values(&[account.as_str()])
            .inc();
        self.metrics
            .backfilled_fills
            .with_label_values(&[account.as_str()])
            .inc_by(fills);
        let snapshot = self.snapshot().await?;
        info!(%account, since, fills, money = money_count, symbols = symbols.len(), "backfill");
        events.push(Event::Snapshot(snapshot));
        Ok(events)
    }

    /// The first publication of a session: a snapshot alone for an account new to `EVENTS`, else what was
    /// missed since the last published event (less the slack).
    async fn catch_up(&mut self) -> anyhow::Result<Vec<Event>> {
        if !self.cursor.known() {
            let snapshot = self.snapshot().await?;
            info!(account = %self.account, positions = snapshot.positions.len(), "first start: publishing the exchange's snapshot");
            // History before the snapshot is in it: no audit or backfill reaches back past it.
            self.audit_from = Some(snapshot.time.0 + 1);
            return Ok(vec![Event::Snapshot(snapshot)]);
        }
        let since = self.cursor.last_time.unwrap_or_default() - self.slack_ms();
        let floor = self.audit_from.map_or(since, |f| f.max(since));
        if self.audit_from.is_none() {
            self.audit_from = Some(since);
        }
        self.backfill(floor, None, true, None).await
    }

    fn slack_ms(&self) -> i64 {
        i64::try_from(self.stream.backfill_slack.as_millis()).unwrap_or(60_000)
    }

    /// The first half of an audit, which compares the income history since the last audit with what
    /// was published; a trade or money movement the stream did not deliver (a socket that stayed open
    /// while events were lost) is backfilled at once. `heard` is the local time up to which every
    /// received frame is published; rows younger than that less the grace (the network's delay) are
    /// left for the next audit. `None` the first time, which only sets where audits start.
    fn audit_window(&mut self, heard: i64) -> Option<AuditWindow> {
        let grace = self.grace_ms();
        let now = self.rest.server_now();
        let offset = now - local_ms();
        // The exchange sends events in time order: up to the newest event time handled, everything was
        // sent. A stream that lags behind the REST view is not a gap; one silent for ten graces may be.
        let sent_until = self.last_event_time.max(now - 10 * grace);
        let cutoff = (heard + offset).min(sent_until) - grace;
        let Some(from) = self.audit_from else {
            self.audit_from = Some(cutoff - self.slack_ms());
            return None;
        };
        Some(AuditWindow { from, cutoff })
    }

    /// The second half of an audit: the income rows of `window`, read meanwhile, against what is
    /// published now (frames handled during the read only add to it).
    async fn settle_audit(
        &mut self,
        window: AuditWindow,
        rows: anyhow::Result<Vec<IncomeRow>>,
    ) -> anyhow::Result<()> {
        let AuditWindow { from, cutoff } = window;
        let rows: Vec<IncomeRow> = rows?.into_iter().filter(|r| r.time <= cutoff).collect();
        let (trades, money_rows) = self.unpublished(&rows);
        let earliest = trades.iter().chain(&money_rows).map(|r| r.time).min();
        let (trades, money) = (trades.len(), money_rows.len());
        if let Some(earliest) = earliest {
            warn!(account = %self.account, trades, money,
                  "the stream missed events that the income history shows; backfilling");
            let rows = rows
                .into_iter()
                .filter(|r| r.time >= earliest - 1)
                .collect();
            let events = self
                .backfill(earliest - 1, Some(cutoff), false, Some(rows))
                .await?;
            for event in events {
                self.publish_event(event, local_ms()).await?;
            }
            self.publisher.flush().await?;
        }
        self.audit_from = Some(from.max(cutoff - self.slack_ms()));
        Ok(())
    }
}

/// The income rows an audit compares with what was published: from `from` to `cutoff` (exchange ms).
#[derive(Debug, Clone, Copy)]
struct AuditWindow {
    from: i64,
    cutoff: i64,
}

/// An audit's read of the income history, running beside the live stream. Only ever polled through
/// `&mut`, hence shareable.
type AuditRead = SyncWrapper<
    Pin<Box<dyn Future<Output = (AuditWindow, anyhow::Result<Vec<IncomeRow>>)> + Send>>,
>;

/// Every income row from `since` (exchange ms) on, all pages, each once.
pub async fn income_since(rest: &Rest, since: i64) -> anyhow::Result<Vec<IncomeRow>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut start = since;
    loop {
        let rows = rest.income(start, PAGE).await.context("income")?;
        let full = rows.len() >= PAGE as usize;
        let newest = rows.iter().map(|r| r.time).max().unwrap_or(start);
        for row in rows {
            if seen.insert((
                row.income_type.clone(),
                row.tran_id,
                row.time,
                row.symbol.clone(),
            )) {
                out.push(row);
            }
        }
        if !full || newest == start {
            return Ok(out);
        }
        start = newest;
    }
}

/// Whether a money movement was read from the income history (which gives its `tranId`).
fn from_history(event: &Event) -> bool {
    match event {
        Event::Funding(f) => f.tran_id.is_some(),
        Event::Transfer(t) => t.tran_id.is_some(),
        _ => false,
    }
}

fn money(event: &Event) -> Option<Money> {
    match event {
        Event::Funding(f) => Some(Money {
            kind: EventKind::Funding,
            asset: f.asset.as_str().to_owned(),
            symbol: f.symbol.as_ref().map(|s| s.as_str().to_owned()),
            amount: f.amount,
            time: f.time.0,
            vouches_in: None,
        }),
        Event::Transfer(t) => Some(Money {
            kind: EventKind::Transfer,
            asset: t.asset.as_str().to_owned(),
            symbol: None,
            amount: t.amount,
            time: t.time.0,
            vouches_in: None,
        }),
        _ => None,
    }
}

/// The exchange's event time `E` of a live event.
fn event_time(event: &Event) -> Option<i64> {
    Some(match event {
        Event::Fill(f) => f.event_time.0,
        Event::Order(o) => o.event_time.0,
        Event::Balance(b) => b.event_time.0,
        Event::Position(p) => p.event_time.0,
        Event::Funding(f) => f.event_time.0,
        Event::Transfer(t) => t.event_time.0,
        Event::Config(c) => c.event_time.0,
        Event::MarginCall(m) => m.event_time.0,
        _ => return None,
    })
}

/// The readiness check of an account's stream.
pub fn check_name(account: &Account) -> String {
    format!("stream:{}", account.as_str())
}

/// Exponential backoff from `min`, doubling per failure up to `max`, with ±20 % jitter.
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(16));
    jitter(min.saturating_mul(factor).min(max))
}

fn socket_reason(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(response) => format!("refused with HTTP {}", response.status()),
        E::Io(io) => format!("io: {}", io.kind()),
        E::ConnectionClosed | E::AlreadyClosed => "closed".into(),
        E::Tls(_) => "tls error".into(),
        _ => "handshake failed".into(),
    }
}

/// What the socket reader hands over.
#[derive(Debug)]
enum Frame {
    /// A text frame and when it was received (local ms).
    Text(String, i64),
    /// The socket ended (closed, failed or silent).
    End,
}

/// Reads the socket until it ends; pings are answered by the library as frames are read.
async fn read_frames(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    frames: mpsc::UnboundedSender<Frame>,
    silence: Duration,
) {
    loop {
        match tokio::time::timeout(silence, socket.next()).await {
            Err(_) => {
                warn!(silence = ?silence, "user-data socket silent; dropping it");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                debug!(reason = %socket_reason(&e), "user-data socket error");
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                if frames
                    .send(Frame::Text(text.as_str().to_owned(), local_ms()))
                    .is_err()
                {
                    return;
                }
            }
            Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(_))) => {}
        }
    }
    let _ = frames.send(Frame::End);
}

#[cfg(test)]
mod tests {
    use super::*;
    use acctmon_domain::{Commission, Fill, Funding, Side};

    fn fill(symbol: &str, id: u64, time: i64, source: FillSource) -> Event {
        Event::Fill(Fill {
            account: Account::new("a").expect("alias"),
            symbol: Symbol::new(symbol).expect("symbol"),
            trade_id: id,
            order_id: 1,
            client_order_id: None,
            side: Side::Buy,
            position_side: None,
            price: Decimal::ONE,
            qty: Decimal::ONE,
            commission: Some(Commission {
                asset: acctmon_domain::Asset::new("USDT").expect("asset"),
                amount: Decimal::ZERO,
            }),
            realized_pnl: None,
            margin_asset: None,
            maker: false,
            time: Timestamp(time),
            event_time: Timestamp(time),
            source,
        })
    }

    #[test]
    fn the_cursor_follows_complete_fills_and_money() {
        let mut c = Cursor::default();
        assert!(!c.known());
        c.note(&fill("BTCUSDT", 7, 100, FillSource::OrderUpdate));
        c.note(&fill("BTCUSDT", 9, 90, FillSource::TradeLite));
        c.note(&fill("ETHUSDT", 3, 120, FillSource::Rest));
        // A TRADE_LITE notice lacks rp and commission: the backfill must still fetch trade 9.
        assert!(c.has_trade("BTCUSDT", 7) && !c.has_trade("BTCUSDT", 9));
        assert!(c.has_trade("ETHUSDT", 3));
        assert_eq!(c.last_time, Some(120));
        assert_eq!(c.last_money_time, None);
        c.note(&Event::Funding(Funding {
            account: Account::new("a").expect("alias"),
            asset: acctmon_domain::Asset::new("USDT").expect("asset"),
            symbol: None,
            amount: Decimal::NEGATIVE_ONE,
            tran_id: None,
            time: Timestamp(150),
            event_time: Timestamp(150),
        }));
        assert_eq!((c.last_money_time, c.last_time), (Some(150), Some(150)));
        c.note(&Event::Stream(StreamNotice {
            account: Account::new("a").expect("alias"),
            status: StreamStatus::Gap,
            time: Timestamp(999),
        }));
        assert_eq!(c.last_time, Some(150), "our own notices are not history");
        assert!(c.known());
    }

    fn paid(symbol: &str, amount: &str, time: i64, from_backfill: bool) -> Money {
        Money {
            kind: EventKind::Funding,
            asset: "USDT".into(),
            symbol: Some(symbol.into()),
            amount: amount.parse().expect("decimal"),
            time,
            vouches_in: from_backfill.then_some(0),
        }
    }

    #[test]
    fn equal_payments_at_consecutive_funding_times_are_told_apart() {
        // One leg paid 0.24 at 8000, 16000 and 24000; the one at 16000 was never published.
        let published = [
            paid("SOLUSDT", "0.24", 8_000, false),
            paid("SOLUSDT", "0.24", 24_000, false),
            paid("ETHUSDT", "0.24", 16_000, false),
        ];
        let found = [
            paid("SOLUSDT", "0.24", 8_000, true),
            paid("SOLUSDT", "0.24", 16_000, true),
            paid("SOLUSDT", "0.24", 24_000, true),
        ];
        let window = |_| MONEY_MATCH_MS;
        assert_eq!(
            published_matches(&published, &found, window),
            [true, false, true],
            "the payment at 16000 is the one missing"
        );
        // Stamped a few seconds apart by the two sources: the nearest pairs.
        let late = [paid("SOLUSDT", "0.24", 11_000, false)];
        let rows = [
            paid("SOLUSDT", "0.24", 8_000, true),
            paid("SOLUSDT", "0.24", 10_000, true),
        ];
        assert_eq!(published_matches(&late, &rows, window), [false, true]);
    }

    #[test]
    fn the_funding_interval_bounds_the_match_window() {
        let mut c = Cursor::default();
        assert_eq!(c.match_window(EventKind::Funding), MONEY_MATCH_MS);
        // Binance's rows: 8 h apart, and two rows of one funding time a few ms apart.
        c.observe_funding_times([0, 5, 28_800_000, 28_800_000]);
        assert_eq!(c.funding_interval, Some(28_800_000));
        assert_eq!(c.match_window(EventKind::Funding), MONEY_MATCH_MS);
        // A faster schedule (the simulator's, 8 s) narrows it below half the interval; transfers keep it.
        c.observe_funding_times([16_000, 8_000, 24_000]);
        assert_eq!(c.funding_interval, Some(8_000));
        assert_eq!(c.match_window(EventKind::Funding), 3_999);
        assert_eq!(c.match_window(EventKind::Transfer), MONEY_MATCH_MS);
        // Found in the history at 8000 and 16000, published at 16000 only: the one at 8000 is missing.
        let published = [paid("SOLUSDT", "0.24", 16_000, false)];
        let found = [
            paid("SOLUSDT", "0.24", 8_000, true),
            paid("SOLUSDT", "0.24", 16_000, true),
        ];
        assert_eq!(
            published_matches(&published, &found, |k| c.match_window(k)),
            [false, true]
        );
        let only_older = [paid("SOLUSDT", "0.24", 8_000, true)];
        assert_eq!(
            published_matches(&published, &only_older, |k| c.match_window(k)),
            [false],
            "a payment of the next funding time does not vouch for this one"
        );
    }

    #[test]
    fn a_live_payment_is_dropped_only_for_its_own_backfilled_row() {
        // Binance: the income row at the funding time, the stream's event 3.2 s later.
        let mut c = Cursor::default();
        c.observe_funding_times([0, 28_800_000]);
        c.money.push_back(paid("BTCUSDT", "-0.5", 28_800_000, true));
        assert!(c.take_backfilled(&paid("BTCUSDT", "-0.5", 28_803_246, false)));
        assert!(
            !c.take_backfilled(&paid("BTCUSDT", "-0.5", 28_803_246, false)),
            "one backfilled payment vouches for one live payment"
        );
        assert!(!c.take_backfilled(&paid("ETHUSDT", "-0.5", 28_803_246, false)));
        // Every 8 s: a leg paid 62.0536 at 8000 (backfilled after a gap) and again at 48000 (live).
        let mut c = Cursor::default();
        c.observe_funding_times([8_000, 16_000, 24_000]);
        c.money.push_back(paid("BTCUSDT", "62.0536", 8_000, true));
        assert!(
            !c.take_backfilled(&paid("BTCUSDT", "62.0536", 48_000, false)),
            "a later funding time is another payment"
        );
        assert!(
            c.take_backfilled(&paid("BTCUSDT", "62.0536", 8_000, false)),
            "the same time is the same payment (and the same message id)"
        );
    }

    fn deposit(amount: i64, time: i64, tran_id: Option<u64>) -> Event {
        Event::Transfer(acctmon_domain::Transfer {
            account: Account::new("a").expect("alias"),
            asset: acctmon_domain::Asset::new("USDT").expect("asset"),
            amount: Decimal::from(amount),
            reason: "DEPOSIT".into(),
            external: true,
            tran_id,
            time: Timestamp(time),
            event_time: Timestamp(time),
        })
    }

    #[test]
    fn a_backfilled_movement_vouches_once_and_only_in_the_session_that_published_it() {
        let mut c = Cursor::default();
        c.start_session();
        // A deposit of 692 made while no socket was open, backfilled from the income history.
        c.note(&deposit(692, 10_000, Some(7)));
        c.start_session();
        // The next session hears a second deposit of 692, 2 s later: not the backfilled one.
        let live = money(&deposit(692, 12_000, None)).expect("money");
        assert!(
            !c.take_backfilled(&live),
            "a movement backfilled in an earlier session cannot come live now"
        );
        // Backfilled in this session (the socket was already open), then heard: the same one.
        c.note(&deposit(35, 12_500, Some(8)));
        let same = money(&deposit(35, 12_500, None)).expect("money");
        assert!(c.take_backfilled(&same));
        assert!(!c.take_backfilled(&same), "it vouches once");
        // It stays published: a later read of the history does not find it missing (published again,
        // it would vouch again and swallow the next live deposit of 35).
        let published: Vec<Money> = c.money.iter().cloned().collect();
        let row = money(&deposit(35, 12_500, Some(8))).expect("money");
        assert_eq!(
            published_matches(&published, &[row], |k| c.match_window(k)),
            [true]
        );
    }

    fn funding(amount: &str, time: i64, tran_id: Option<u64>) -> Event {
        Event::Funding(acctmon_domain::Funding {
            account: Account::new("a").expect("alias"),
            symbol: Some(acctmon_domain::Symbol::new("BTCUSDT").expect("symbol")),
            asset: acctmon_domain::Asset::new("USDT").expect("asset"),
            amount: amount.parse().expect("amount"),
            tran_id,
            time: Timestamp(time),
            event_time: Timestamp(time),
        })
    }

    #[test]
    fn a_backfilled_funding_payment_vouches_for_its_stream_report_in_the_next_session() {
        let mut c = Cursor::default();
        c.observe_funding_times([0, 28_800_000]);
        c.start_session();
        // The income row of a payment at the funding time, read by an audit; the socket drops before
        // the stream's report, stamped 3 s later, arrives on the next one.
        c.note(&funding("-0.01234567", 28_800_000, Some(9)));
        c.start_session();
        let live = money(&funding("-0.01234567", 28_803_000, None)).expect("money");
        assert!(
            c.take_backfilled(&live),
            "the same payment, reported in the next session"
        );
        assert!(!c.take_backfilled(&live), "it vouches once");
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for _ in 0..50 {
            let first = backoff(0, min, max);
            assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
            let third = backoff(2, min, max);
            assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
            assert!(backoff(30, min, max) <= Duration::from_millis(2400));
        }
    }
}
