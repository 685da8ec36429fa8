//! One owned partition: its durable pull consumer, its accounts' books, batches applied with their P&L and
//! discrepancies published and their position views written to KV, and checkpoints that write the
//! changed accounts' books to KV with compare-and-set, then acknowledge what they reflect (DESIGN §4).
//!
//! A batch's outputs go out first: their message ids are deterministic, so a batch applied again repeats
//! none that JetStream has not dropped as a duplicate, and none is lost with a crash. The books (an
//! account's whole state, some kilobytes) are written at most every `checkpoint_every` (or every
//! [`CHECKPOINT_EVENTS`] events), not with every batch: that write, not the events, was the pipeline's
//! cost. Events are acknowledged only once the books that reflect them are written, so a crash loses
//! nothing: the events since the last checkpoint come again and are applied to the books as written.
//!
//! Order is the invariant everything rests on: within a consumer session the stream sequences must rise.
//! A session starts at the consumer's ack floor (every unacknowledged event is above it), so an event at
//! or below its account's `applied_seq` was applied before and is skipped. Anything that breaks the rise
//! (a redelivery after a crash or a server restart) ends the session and a new one starts again from the
//! ack floor, rather than skipping an event that was never applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acctmon_books::{AccountState, Books, BooksConfig, Discrepancy};
use acctmon_bus::pnl::{
    ACCOUNT_ENTRY_SCHEMA, AccountEntry, AccountPnl, PositionPnl, RECON_SCHEMA, ReconReport,
};
use acctmon_bus::subject::{
    EventSubject, account_key, pnl_position, pnl_summary, position_key, recon,
};
use acctmon_bus::topology::{ALL_PARTITIONS_CONSUMER, names, partition_consumer_name};
use acctmon_bus::{Envelope, Outgoing, Publisher, Topology};
use acctmon_domain::{Account, Event, MarkPrice, Symbol, Timestamp};
use acctmon_service::health::Health;
use anyhow::Context as _;
use async_nats::jetstream::consumer::pull::{MessagesError, MessagesErrorKind};
use async_nats::jetstream::consumer::{DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::views;

/// Mark prices as last read from KV `marks`.
#[derive(Debug, Default)]
pub struct Marks {
    /// Latest mark per symbol.
    pub prices: BTreeMap<Symbol, MarkPrice>,
}

/// What every partition worker shares.
#[derive(Clone)]
pub struct Shared {
    /// NATS client.
    pub client: async_nats::Client,
    /// The connection the outputs (`trading.pnl.>`, `trading.recon.>`) are published on, replaced when
    /// it drops so that each partition's outputs keep their order (see [`acctmon_bus::link`]).
    pub outputs: acctmon_bus::Link,
    /// JetStream.
    pub js: jetstream::Context,
    /// KV `accounts`, on a connection of its own (see [`crate::run_with_listener`]).
    pub accounts: Store,
    /// KV `positions`.
    pub positions: Store,
    /// Settings.
    pub config: Arc<Config>,
    /// Metrics.
    pub metrics: Metrics,
    /// `/readyz`.
    pub health: Health,
    /// Mark prices.
    pub marks: watch::Receiver<Arc<Marks>>,
}

/// Mark-only changes rewrite an account's KV entry at most this often (its positions and P&L follow the
/// marks at `pnl.mark_interval`).
const MARK_STATE_EVERY: Duration = Duration::from_secs(5);
/// A checkpoint comes at the latest after this many events, well inside the partition consumer's
/// `max_ack_pending`, whatever `checkpoint_every` says.
pub const CHECKPOINT_EVENTS: usize = 8192;
/// How long a batch waits for events the server holds beyond those delivered (never when caught up).
const BATCH_LINGER: Duration = Duration::from_millis(5);
/// How far behind (events stored, not yet delivered) a partition lingers for a larger batch.
const LINGER_PENDING: u64 = 64;
/// Compare-and-set attempts before the session restarts.
const CAS_ATTEMPTS: u32 = 8;
/// KV writes of one batch in flight at once.
const WRITES_IN_FLIGHT: usize = 256;

/// How long a partition's pull request lives at the server before the client renews it.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// A consumer stream that yields neither message nor heartbeat for this long is opened again (from the
/// ack floor); shorter silences (a busy server, a restart) are waited out.
pub const SILENT_LIMIT: Duration = Duration::from_secs(10);

/// Heartbeats a partition's consumer stream missed in a row.
#[derive(Debug, Default)]
struct Silence {
    /// When the first and the latest miss of the current run were reported.
    run: Option<(Instant, Instant)>,
}

impl Silence {
    /// Notes a missed heartbeat at `now`: true once the stream has been silent for `limit`. A miss more
    /// than two report periods (`2 × heartbeat` each) after the previous one starts a new run: the
    /// heartbeats in between were heard.
    fn missed(&mut self, now: Instant, heartbeat: Duration, limit: Duration) -> bool {
        let first = match self.run {
            Some((first, last)) if now.duration_since(last) <= heartbeat * 4 => first,
            _ => now,
        };
        self.run = Some((first, now));
        now.duration_since(first) >= limit
    }

    /// A message came: the stream is alive.
    fn heard(&mut self) {
        self.run = None;
    }
}

/// Why a session ended.
enum SessionEnd {
    /// The partition is no longer ours, or we are stopping.
    Stopped,
    /// Order broken or a write failed: start again from the ack floor.
    Reset(String),
}

/// An account's place in the stream and what was last written for it.
struct Slot {
    applied_seq: u64,
    event_time: i64,
    /// Revision of its KV `accounts` entry (`None`: none yet).
    revision: Option<u64>,
    /// Events applied since its KV entry was last written (re-applied when a compare-and-set is lost).
    unsaved: Vec<(u64, Event)>,
    /// Its KV entry is to be written at the next checkpoint although no event came (marks moved).
    state_due: bool,
    /// Figures of the last written view ([`figures`]) and its revision, per position key.
    written: HashMap<String, (PositionPnl, Option<u64>)>,
    /// Last published summary (figures only).
    summary: Option<AccountPnl>,
    /// A mark moved since the last mark publish.
    mark_dirty: bool,
    last_mark_publish: Instant,
    /// When its views were last written to KV for a mark's sake.
    last_mark_write: Instant,
    last_state_write: Instant,
}

impl Slot {
    fn new(applied_seq: u64, event_time: i64, revision: Option<u64>) -> Self {
        Slot {
            applied_seq,
            event_time,
            revision,
            unsaved: Vec::new(),
            state_due: false,
            written: HashMap::new(),
            summary: None,
            mark_dirty: true,
            last_mark_publish: Instant::now(),
            last_mark_write: Instant::now(),
            last_state_write: Instant::now(),
        }
    }
}

/// A checkpoint whose KV `accounts` writes are under way.
struct Saving {
    /// The writes, each account's new revision (`None`: not written).
    writes: std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Option<u64>>> + Send>>,
    /// The accounts written, in the order of `writes`, and how many of their unsaved events the
    /// entries reflect.
    accounts: Vec<(Account, usize)>,
    /// The last event the checkpoint covers, acknowledged once it is done.
    ack: Option<jetstream::Message>,
    started: Instant,
}

/// A position view to write to KV `positions`.
struct LegWrite {
    account: Account,
    key: String,
    /// Its figures ([`figures`]), remembered once written.
    figures: PositionPnl,
    /// What is written and published.
    stamped: PositionPnl,
    /// The revision it was last written at.
    revision: Option<u64>,
}

/// A view's figures: the view without the sequence and time it was computed at, so that a leg that
/// did not change is not written or published again when another leg of its account changes.
fn figures(view: &PositionPnl) -> PositionPnl {
    PositionPnl {
        applied_seq: 0,
        event_time: 0,
        updated_at: 0,
        ..view.clone()
    }
}

/// Where a session's deliveries stand. A session's consumer is new, so its deliveries are numbered
/// 1, 2, 3, … and carry rising stream sequences. A number skipped is a delivery that never arrived (lost
/// with a connection, say, while the server restarted): applying past it, and then acknowledging
/// everything up to a later event, would lose that event for good.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    stream_seq: u64,
    consumer_seq: u64,
}

impl Delivery {
    /// Takes the next delivery, or says why the session must start again from the ack floor.
    fn follow(&mut self, stream_seq: u64, consumer_seq: u64) -> Result<(), String> {
        if consumer_seq != self.consumer_seq + 1 {
            return Err(format!(
                "delivery {consumer_seq} after {}: a delivery was lost or repeated",
                self.consumer_seq
            ));
        }
        if stream_seq <= self.stream_seq {
            return Err(format!(
                "sequence {stream_seq} after {}: redelivered out of order",
                self.stream_seq
            ));
        }
        *self = Delivery {
            stream_seq,
            consumer_seq,
        };
        Ok(())
    }
}

/// What a worker reads: one partition, or every partition while this replica holds them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Partition `p`, through its consumer `processor-<p>`.
    One(u32),
    /// Every partition, through one consumer ([`ALL_PARTITIONS_CONSUMER`]): on nats-server 2.9 each
    /// filtered consumer of `EVENTS` reads every stored message under the lock its stores wait for, so
    /// one consumer instead of one per partition is what lets events be stored at speed.
    All,
}

impl Scope {
    /// The workers of a replica that holds the partitions `owned` of `partitions`: one for them all
    /// when it holds every one of several, else one per partition.
    pub fn for_owned(owned: &[u32], partitions: u32) -> BTreeSet<Scope> {
        let held: BTreeSet<u32> = owned.iter().copied().filter(|p| *p < partitions).collect();
        if partitions > 1 && held.len() == partitions as usize {
            BTreeSet::from([Scope::All])
        } else {
            held.into_iter().map(Scope::One).collect()
        }
    }

    /// The partitions it covers.
    fn partitions(self, partitions: u32) -> Vec<u32> {
        match self {
            Scope::One(p) => vec![p],
            Scope::All => (0..partitions).collect(),
        }
    }

    /// Its durable consumer's configuration.
    fn consumer(self, topology: &Topology) -> pull::Config {
        match self {
            Scope::One(p) => topology.partition_consumer(p),
            Scope::All => topology.all_partitions_consumer(),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::One(p) => write!(f, "{p}"),
            Scope::All => f.write_str("all"),
        }
    }
}

/// The worker of one partition, or of all of them ([`Scope`]).
pub struct Partition {
    p: Scope,
    /// The partitions `p` covers (their readiness checks).
    covered: Vec<u32>,
    shared: Shared,
    books: Books,
    slots: HashMap<Account, Slot>,
    publisher: Publisher,
    marks_applied: BTreeMap<Symbol, Timestamp>,
    /// The last event applied and not yet acknowledged; acknowledging it acknowledges every event
    /// before it (`AckPolicy::All`).
    unacked: Option<jetstream::Message>,
    /// Events delivered since the last checkpoint.
    unacked_events: usize,
}

impl Partition {
    /// A worker for partition `p`, or for all of them.
    pub fn new(p: Scope, shared: Shared) -> anyhow::Result<Self> {
        // Registered at once: the process is not ready while a partition it owns has not caught up.
        let covered = p.partitions(shared.config.topology.partitions);
        for q in &covered {
            shared.health.set(&health_key(*q), false);
        }
        let mut books_config = BooksConfig {
            seen_ids_per_symbol: shared.config.seen_ids_per_symbol,
            keep_discrepancies: false,
            ..BooksConfig::default()
        };
        books_config.day_boundary_ms = BooksConfig::parse_day_boundary(&shared.config.day_boundary)
            .map_err(anyhow::Error::msg)?;
        let publisher = Publisher::on_link(
            &shared.outputs,
            shared.config.publish_window,
            shared.metrics.publish.clone(),
        );
        Ok(Partition {
            p,
            covered,
            shared,
            books: Books::new(books_config),
            slots: HashMap::new(),
            publisher,
            marks_applied: BTreeMap::new(),
            unacked: None,
            unacked_events: 0,
        })
    }

    /// Processes its partitions until `stop`: sessions from the ack floor, one after the other. Their
    /// readiness checks, registered by [`Partition::new`], turn ok once caught up and go with it.
    pub async fn run(mut self, topology: Topology, stop: CancellationToken) {
        let mut attempt = 0u32;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let end = match self.start_session(&topology).await {
                Ok(consumer) => self.session(consumer, &stop).await,
                Err(e) => SessionEnd::Reset(format!("{e:#}")),
            };
            match end {
                SessionEnd::Stopped => break,
                SessionEnd::Reset(why) => {
                    attempt += 1;
                    self.shared.metrics.resets.inc();
                    warn!(
                        partition = %self.p,
                        why, "restarting the partition's session from its ack floor"
                    );
                    // In-memory books may hold events that were not written: reload from KV.
                    self.slots.clear();
                    self.books = Books::new(self.books.config().clone());
                    self.marks_applied.clear();
                    self.unacked = None;
                    self.unacked_events = 0;
                    let wait = Duration::from_millis(100 * u64::from(attempt.min(20)));
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        for q in &self.covered {
            self.shared.health.remove(&health_key(*q));
        }
        self.shared
            .metrics
            .pending
            .with_label_values(&[&self.p.to_string()])
            .set(0);
        info!(partition = %self.p, "partition left");
    }

    /// Recreates the durable consumer at the ack floor so that every unacknowledged event comes again, in
    /// order, whoever had it before. The floor is the higher of its own consumer's and the other
    /// layout's: [`ALL_PARTITIONS_CONSUMER`]'s for one partition, the lowest of the partitions'
    /// consumers for all of them. Each is a safe start on its own (a consumer acknowledges an event only
    /// once the books of every partition it reads are written past it), so a replica that takes over
    /// from the other layout does not go back to where its own consumer last stood.
    async fn start_session(&mut self, topology: &Topology) -> anyhow::Result<PullConsumer> {
        let mut config = self.p.consumer(topology);
        let name = config
            .durable_name
            .clone()
            .context("a processor consumer is durable")?;
        let stream = self
            .shared
            .js
            .get_stream(names::EVENTS)
            .await
            .context("get EVENTS")?;
        let own = floor_of(&stream, &name).await;
        let other = match self.p {
            Scope::One(_) => floor_of(&stream, ALL_PARTITIONS_CONSUMER)
                .await
                .unwrap_or(0),
            Scope::All => {
                let mut lowest = u64::MAX;
                for p in 0..topology.partitions {
                    let floor = floor_of(&stream, &partition_consumer_name(p)).await;
                    lowest = lowest.min(floor.unwrap_or(0));
                }
                lowest
            }
        };
        let floor = own.unwrap_or(0).max(other);
        if own.is_some() {
            stream
                .delete_consumer(&name)
                .await
                .context("delete consumer")?;
        }
        if floor > 0 {
            config.deliver_policy = DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            };
        }
        let mut consumer: PullConsumer = stream
            .create_consumer(config.clone())
            .await
            .context("create consumer")?;
        let info = consumer.info().await.context("consumer info")?;
        anyhow::ensure!(
            info.config.filter_subject == config.filter_subject,
            "the server gave {name} the filter `{}`",
            info.config.filter_subject
        );
        debug!(partition = %self.p, ?own, floor, "session starts");
        Ok(consumer)
    }

    /// Marks every partition the worker covers caught up.
    fn caught_up(&self) {
        for q in &self.covered {
            self.shared.health.set(&health_key(*q), true);
        }
    }

    async fn session(&mut self, consumer: PullConsumer, stop: &CancellationToken) -> SessionEnd {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(self.shared.config.batch_max)
            .heartbeat(self.heartbeat())
            .expires(PULL_EXPIRES)
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => return SessionEnd::Reset(format!("open the consumer: {e}")),
        };
        let mut marks = self.shared.marks.clone();
        let mut order = Delivery::default();
        let mut silence = Silence::default();
        let mut tick = tokio::time::interval(
            self.shared
                .config
                .pnl
                .mark_interval
                .max(Duration::from_millis(50)),
        );
        let every = self
            .shared
            .config
            .checkpoint_every
            .max(Duration::from_millis(1));
        let mut checkpoint = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut saving: Option<Saving> = None;
        let mut caught_up = false;
        let idle_ready = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(idle_ready);
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    // Leave the books written and their events acknowledged for the next owner.
                    let last = async {
                        if let Some(s) = saving.take() {
                            self.complete_checkpoint(s).await?;
                        }
                        self.checkpoint().await
                    };
                    if let Err(e) = last.await {
                        warn!(partition = %self.p, error = format!("{e:#}"), "last checkpoint failed; the next owner applies its events again");
                    }
                    return SessionEnd::Stopped;
                }
                written = async { (&mut saving.as_mut()?.writes).await.into() }, if saving.is_some() => {
                    let (Some(s), Some(written)) = (saving.take(), written) else { continue };
                    if let Err(e) = self.finish_checkpoint(s, written).await {
                        return SessionEnd::Reset(format!("{e:#}"));
                    }
                }
                _ = checkpoint.tick(), if saving.is_none() => {
                    match self.start_checkpoint().await {
                        Ok(s) => saving = s,
                        Err(e) => return SessionEnd::Reset(format!("{e:#}")),
                    }
                }
                () = &mut idle_ready, if !caught_up => {
                    // Nothing came within a second of asking: nothing is pending.
                    caught_up = true;
                    self.caught_up();
                }
                _ = marks.changed() => {
                    self.apply_marks();
                }
                _ = tick.tick() => {
                    if let Err(e) = self.on_tick().await {
                        return SessionEnd::Reset(format!("{e:#}"));
                    }
                }
                first = messages.next() => {
                    let first = match first {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => match self.stream_error(&e, &mut silence) {
                            Some(end) => return end,
                            None => continue,
                        },
                        None => return SessionEnd::Reset("consumer stream ended".into()),
                    };
                    silence.heard();
                    let mut batch = vec![first];
                    let max = self.shared.config.batch_max;
                    let linger = tokio::time::Instant::now() + BATCH_LINGER;
                    let pending = loop {
                        while batch.len() < max {
                            match messages.next().now_or_never() {
                                Some(Some(Ok(m))) => batch.push(m),
                                Some(Some(Err(e))) => match self.stream_error(&e, &mut silence) {
                                    Some(end) => return end,
                                    None => break,
                                },
                                // Nothing ready, or the stream ended (the next poll says so).
                                Some(None) | None => break,
                            }
                        }
                        let pending = batch.last().and_then(|m| m.info().ok()).map_or(0, |i| i.pending);
                        if pending < LINGER_PENDING || batch.len() >= max {
                            break pending;
                        }
                        // Much more is stored than was delivered: wait a moment for it rather than
                        // apply a sliver, so that a burst goes in fewer, larger batches (a partition
                        // nearly caught up does not wait: its events would wait with it).
                        match tokio::time::timeout_at(linger, messages.next()).await {
                            Ok(Some(Ok(m))) => batch.push(m),
                            Ok(Some(Err(e))) => match self.stream_error(&e, &mut silence) {
                                Some(end) => return end,
                                None => break pending,
                            },
                            Ok(None) => return SessionEnd::Reset("consumer stream ended".into()),
                            Err(_) => break pending,
                        }
                    };
                    self.shared
                        .metrics
                        .pending
                        .with_label_values(&[&self.p.to_string()])
                        .set(i64::try_from(pending).unwrap_or(i64::MAX));
                    if let Err(end) = self.batch(batch, &mut order).await {
                        return end;
                    }
                    if self.unacked_events >= CHECKPOINT_EVENTS && saving.is_none() {
                        match self.start_checkpoint().await {
                            Ok(s) => saving = s,
                            Err(e) => return SessionEnd::Reset(format!("{e:#}")),
                        }
                    }
                    if pending == 0 && !caught_up {
                        caught_up = true;
                        self.caught_up();
                    }
                }
            }
        }
    }

    /// The idle heartbeat asked of the server: the configured one, within what the server accepts
    /// (at most half the pull request's expiry).
    fn heartbeat(&self) -> Duration {
        self.shared.config.pull_heartbeat.min(PULL_EXPIRES / 2)
    }

    /// What an error of the consumer stream means for the session: a missed heartbeat is waited out
    /// (the client keeps its pull request going, and a server that restarted delivers again, which
    /// [`Delivery`] checks) until the stream has been silent for [`SILENT_LIMIT`]; anything else
    /// starts the session again from the ack floor.
    fn stream_error(&self, e: &MessagesError, silence: &mut Silence) -> Option<SessionEnd> {
        if e.kind() == MessagesErrorKind::MissingHeartbeat
            && !silence.missed(Instant::now(), self.heartbeat(), SILENT_LIMIT)
        {
            debug!(partition = %self.p, "consumer heartbeat missed; waiting");
            return None;
        }
        warn!(partition = %self.p, error = %e, "consumer stream error");
        Some(SessionEnd::Reset(format!("consumer: {e}")))
    }

    /// Applies new mark prices to the books; accounts holding the symbol publish on the next tick.
    fn apply_marks(&mut self) {
        let marks = self.shared.marks.borrow().clone();
        for (symbol, mark) in &marks.prices {
            if self.marks_applied.get(symbol) == Some(&mark.time) {
                continue;
            }
            self.marks_applied.insert(symbol.clone(), mark.time);
            self.books.apply(&Event::Mark(mark.clone()));
            for (account, slot) in &mut self.slots {
                if !slot.mark_dirty
                    && self
                        .books
                        .positions(Some(account))
                        .iter()
                        .any(|(_, p)| p.symbol() == symbol && !p.qty().is_zero())
                {
                    slot.mark_dirty = true;
                }
            }
        }
    }

    /// Republishes the accounts whose marks moved (their KV entry at the next checkpoint, at most every
    /// [`MARK_STATE_EVERY`]).
    /// Exchange rows still waiting are judged by the stream's `heard` notices, in the batches, so that
    /// a replay of the stream judges them alike.
    async fn on_tick(&mut self) -> anyhow::Result<()> {
        let interval = self.shared.config.pnl.mark_interval;
        let marked: Vec<Account> = self
            .slots
            .iter()
            .filter(|(_, s)| s.mark_dirty && s.last_mark_publish.elapsed() >= interval)
            .map(|(a, _)| a.clone())
            .collect();
        if marked.is_empty() {
            return Ok(());
        }
        let mut outputs = Vec::new();
        let legs = self.plan_views(&marked, true, &mut outputs)?;
        for account in &marked {
            if let Some(slot) = self.slots.get_mut(account) {
                slot.mark_dirty = false;
                slot.last_mark_publish = Instant::now();
                slot.state_due |= slot.last_state_write.elapsed() >= MARK_STATE_EVERY;
            }
        }
        for out in outputs {
            self.publisher.publish(out).await?;
        }
        // KV follows the marks at most every MARK_STATE_EVERY per account, since the batches wait for
        // these writes. A view left unwritten is not remembered as written, so the account's next batch
        // writes it (and publishes it again under the batch's sequence).
        let legs: Vec<LegWrite> = legs
            .into_iter()
            .filter(|l| {
                self.slots
                    .get(&l.account)
                    .is_some_and(|s| s.last_mark_write.elapsed() >= MARK_STATE_EVERY)
            })
            .collect();
        for leg in &legs {
            if let Some(slot) = self.slots.get_mut(&leg.account) {
                slot.last_mark_write = Instant::now();
            }
        }
        self.write_views(legs).await
    }

    async fn batch(
        &mut self,
        batch: Vec<jetstream::Message>,
        order: &mut Delivery,
    ) -> Result<(), SessionEnd> {
        let started = Instant::now();
        self.shared.metrics.batch_size.observe(batch.len() as f64);
        let mut touched: BTreeSet<Account> = BTreeSet::new();
        let mut found: Vec<(Discrepancy, u64)> = Vec::new();
        for message in &batch {
            let info = message
                .info()
                .map_err(|e| SessionEnd::Reset(format!("message info: {e}")))?;
            let seq = info.stream_sequence;
            order
                .follow(seq, info.consumer_sequence)
                .map_err(SessionEnd::Reset)?;
            let envelope = match Envelope::decode(&message.payload) {
                Ok(e) => e,
                Err(e) => {
                    self.shared.metrics.undecodable.inc();
                    warn!(partition = %self.p, seq, subject = %message.subject, error = %e, "undecodable event skipped");
                    continue;
                }
            };
            let event = envelope.event;
            let account = match event.account() {
                Some(a) => a.clone(),
                None => match EventSubject::parse(&message.subject) {
                    Ok(s) => s.account,
                    Err(_) => continue,
                },
            };
            self.ensure_loaded(&account)
                .await
                .map_err(|e| SessionEnd::Reset(format!("{e:#}")))?;
            let slot = self.slots.get_mut(&account).expect("loaded above");
            if seq <= slot.applied_seq {
                self.shared.metrics.skipped.inc();
                continue;
            }
            let applied = self.books.apply(&event);
            self.shared
                .metrics
                .applied
                .with_label_values(&[event.kind().as_str()])
                .inc();
            slot.applied_seq = seq;
            slot.event_time = slot.event_time.max(event.time().0);
            found.extend(applied.discrepancies.into_iter().map(|d| (d, seq)));
            slot.unsaved.push((seq, event));
            touched.insert(account);
        }
        let result: anyhow::Result<()> = async {
            let mut outputs = Vec::new();
            let touched: Vec<Account> = touched.into_iter().collect();
            let legs = self.plan_views(&touched, false, &mut outputs)?;
            self.recon_outputs(&found, &mut outputs)?;
            // Outputs go out first, their acks in flight while the views are written and settled by
            // the next checkpoint, before it acknowledges the events.
            for out in outputs {
                self.publisher.publish(out).await?;
            }
            self.write_views(legs).await
        }
        .await;
        result.map_err(|e| SessionEnd::Reset(format!("{e:#}")))?;
        self.unacked_events += batch.len();
        if let Some(last) = batch.into_iter().last() {
            self.unacked = Some(last);
        }
        self.shared
            .metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Loads an account's books from KV `accounts` the first time the partition meets it.
    async fn ensure_loaded(&mut self, account: &Account) -> anyhow::Result<()> {
        if self.slots.contains_key(account) {
            return Ok(());
        }
        self.reload(account).await
    }

    /// Replaces the account's books by its KV entry (or empty books when it has none).
    async fn reload(&mut self, account: &Account) -> anyhow::Result<()> {
        let key = account_key(account);
        let entry = self
            .shared
            .accounts
            .entry(&key)
            .await
            .with_context(|| format!("read accounts/{key}"))?;
        let slot = match entry {
            Some(e) if e.operation == async_nats::jetstream::kv::Operation::Put => {
                let stored: AccountEntry<AccountState> = rmp_serde::from_slice(&e.value)
                    .with_context(|| format!("accounts/{key} does not decode"))?;
                self.books.restore(stored.state);
                // Marks are the market's: value the restored legs at the current ones.
                for mark in self.shared.marks.borrow().prices.values() {
                    self.books.apply(&Event::Mark(mark.clone()));
                }
                debug!(
                    partition = %self.p,
                    account = %account,
                    applied_seq = stored.applied_seq,
                    revision = e.revision,
                    "books loaded from KV"
                );
                Slot::new(stored.applied_seq, stored.event_time, Some(e.revision))
            }
            Some(e) => {
                self.books.forget(account);
                Slot::new(0, 0, Some(e.revision))
            }
            None => {
                self.books.forget(account);
                Slot::new(0, 0, None)
            }
        };
        self.slots.insert(account.clone(), slot);
        Ok(())
    }

    /// A whole checkpoint: [`Partition::start_checkpoint`], then [`Partition::complete_checkpoint`].
    async fn checkpoint(&mut self) -> anyhow::Result<()> {
        match self.start_checkpoint().await? {
            Some(saving) => self.complete_checkpoint(saving).await,
            None => Ok(()),
        }
    }

    /// Waits for a checkpoint's writes and takes their outcome.
    async fn complete_checkpoint(&mut self, mut saving: Saving) -> anyhow::Result<()> {
        let written = (&mut saving.writes).await;
        self.finish_checkpoint(saving, written).await
    }

    /// Starts a checkpoint: once every output sent is stored, the KV `accounts` entries of the accounts
    /// that changed since the last one go out, all at once (independent keys). The writes run while
    /// the session goes on applying batches; [`Partition::finish_checkpoint`] takes their outcome.
    /// `None`: nothing to write or acknowledge.
    async fn start_checkpoint(&mut self) -> anyhow::Result<Option<Saving>> {
        let started = Instant::now();
        let due: Vec<Account> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.unsaved.is_empty() || s.state_due)
            .map(|(a, _)| a.clone())
            .collect();
        if due.is_empty() && self.unacked.is_none() {
            return Ok(None);
        }
        self.publisher.flush().await?;
        let mut accounts = Vec::with_capacity(due.len());
        let mut writes = Vec::with_capacity(due.len());
        for account in due {
            let Some((bytes, revision)) = self.account_entry(&account)? else {
                continue;
            };
            let unsaved = self.slots.get(&account).map_or(0, |s| s.unsaved.len());
            let (store, key) = (self.shared.accounts.clone(), account_key(&account));
            // A failure of any kind goes to the one-key path, which tells a lost race from an error.
            writes.push(async move {
                match revision {
                    Some(r) => store.update(key, bytes, r).await.ok(),
                    None => store.create(key, bytes).await.ok(),
                }
            });
            accounts.push((account, unsaved));
        }
        let saving = Saving {
            writes: Box::pin(in_flight(writes)),
            accounts,
            ack: self.unacked.take(),
            started,
        };
        self.unacked_events = 0;
        Ok(Some(saving))
    }

    /// Takes the outcome of a checkpoint's writes, and acknowledges every event it covers. An account
    /// whose compare-and-set failed goes through [`Partition::write_account`], which re-reads it and
    /// re-applies its unsaved events; its views are then published and written again from the books
    /// re-read.
    async fn finish_checkpoint(
        &mut self,
        saving: Saving,
        written: Vec<Option<u64>>,
    ) -> anyhow::Result<()> {
        let mut lost = Vec::new();
        for ((account, covered), result) in saving.accounts.into_iter().zip(written) {
            match result {
                Some(revision) => {
                    if let Some(slot) = self.slots.get_mut(&account) {
                        slot.revision = Some(revision);
                        slot.last_state_write = Instant::now();
                        // Events applied while the entry was being written wait for the next one.
                        slot.unsaved.drain(..covered.min(slot.unsaved.len()));
                        slot.state_due = false;
                    }
                }
                None => lost.push(account),
            }
        }
        for account in lost {
            let unsaved = self
                .slots
                .get_mut(&account)
                .map(|s| std::mem::take(&mut s.unsaved))
                .unwrap_or_default();
            self.write_account(&account, &unsaved).await?;
            let mut outputs = Vec::new();
            let legs = self.plan_views(std::slice::from_ref(&account), false, &mut outputs)?;
            for out in outputs {
                self.publisher.publish(out).await?;
            }
            self.write_views(legs).await?;
            self.publisher.flush().await?;
        }
        // The consumer acknowledges everything up to the acknowledged event.
        if let Some(last) = saving.ack
            && let Err(e) = last.ack_with(AckKind::Ack).await
        {
            debug!(error = %e, "ack not sent (the events come again and are skipped)");
        }
        self.shared
            .metrics
            .checkpoint_seconds
            .observe(saving.started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Writes position views with compare-and-set and remembers them.
    async fn write_views(&mut self, legs: Vec<LegWrite>) -> anyhow::Result<()> {
        let written = self.write_legs(&legs).await;
        self.record_legs(legs, written)
    }

    /// Writes position views, up to [`WRITES_IN_FLIGHT`] at once; the revisions in the order given.
    async fn write_legs(&self, legs: &[LegWrite]) -> Vec<anyhow::Result<u64>> {
        in_flight(
            legs.iter()
                .map(|l| self.write_position(&l.key, &l.stamped, l.revision))
                .collect(),
        )
        .await
    }

    /// Remembers what [`Partition::write_legs`] wrote, or fails with its first error.
    fn record_legs(
        &mut self,
        legs: Vec<LegWrite>,
        written: Vec<anyhow::Result<u64>>,
    ) -> anyhow::Result<()> {
        for (leg, revision) in legs.into_iter().zip(written) {
            let revision = revision?;
            if let Some(slot) = self.slots.get_mut(&leg.account) {
                slot.written.insert(leg.key, (leg.figures, Some(revision)));
            }
        }
        Ok(())
    }

    /// The account's KV entry as it stands, and the revision to write it over (`None`: the account has
    /// no books here, nothing to write).
    fn account_entry(&self, account: &Account) -> anyhow::Result<Option<(Bytes, Option<u64>)>> {
        let Some(slot) = self.slots.get(account) else {
            return Ok(None);
        };
        let Some(state) = self.books.account_state(account) else {
            return Ok(None);
        };
        let legs = views::positions(&self.books, account, slot.applied_seq, slot.event_time);
        let mut summary = views::summary(
            &self.books,
            account,
            &legs,
            slot.applied_seq,
            slot.event_time,
        );
        summary.updated_at = now_ms();
        let entry = AccountEntry {
            schema: ACCOUNT_ENTRY_SCHEMA.into(),
            applied_seq: slot.applied_seq,
            event_time: slot.event_time,
            summary,
            state,
        };
        Ok(Some((
            rmp_serde::to_vec_named(&entry)?.into(),
            slot.revision,
        )))
    }

    /// Writes the account's KV entry with compare-and-set. A lost race re-reads the entry and re-applies
    /// this batch's `events` above it, then tries again.
    async fn write_account(
        &mut self,
        account: &Account,
        events: &[(u64, Event)],
    ) -> anyhow::Result<()> {
        let key = account_key(account);
        for _ in 0..CAS_ATTEMPTS {
            let Some((bytes, revision)) = self.account_entry(account)? else {
                return Ok(());
            };
            let written = match revision {
                Some(r) => self
                    .shared
                    .accounts
                    .update(&key, bytes, r)
                    .await
                    .map_err(|e| {
                        (
                            matches!(
                                e.kind(),
                                async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision
                            ),
                            e.to_string(),
                        )
                    }),
                None => self.shared.accounts.create(&key, bytes).await.map_err(|e| {
                    (
                        matches!(
                            e.kind(),
                            async_nats::jetstream::kv::CreateErrorKind::AlreadyExists
                        ),
                        e.to_string(),
                    )
                }),
            };
            match written {
                Ok(revision) => {
                    let slot = self.slots.get_mut(account).expect("present above");
                    slot.revision = Some(revision);
                    slot.last_state_write = Instant::now();
                    slot.state_due = false;
                    return Ok(());
                }
                Err((true, _)) => {
                    self.shared.metrics.cas_retries.inc();
                    debug!(account = %account, "accounts entry changed under us; re-reading");
                    self.reload(account).await?;
                    let applied = self.slots[account].applied_seq;
                    let mut last = applied;
                    for (seq, event) in events.iter().filter(|(s, _)| *s > applied) {
                        self.books.apply(event);
                        last = *seq;
                    }
                    let slot = self.slots.get_mut(account).expect("reloaded");
                    slot.applied_seq = last;
                    slot.event_time = slot
                        .event_time
                        .max(events.iter().map(|(_, e)| e.time().0).max().unwrap_or(0));
                }
                Err((false, e)) => anyhow::bail!("write accounts/{key}: {e}"),
            }
        }
        anyhow::bail!("accounts/{key}: compare-and-set lost {CAS_ATTEMPTS} times")
    }

    /// The position views of `accounts` whose figures changed since they were last written, to be
    /// written to KV; their P&L and each summary that changed are queued on `outputs`, legs before
    /// their summary.
    fn plan_views(
        &mut self,
        accounts: &[Account],
        by_mark: bool,
        outputs: &mut Vec<Outgoing>,
    ) -> anyhow::Result<Vec<LegWrite>> {
        let encoding = self.shared.config.pnl.encoding;
        let now = now_ms();
        let tag = if by_mark {
            format!(":m{now}")
        } else {
            String::new()
        };
        let mut changed = Vec::new();
        let mut summaries = Vec::new();
        for account in accounts {
            let Some(slot) = self.slots.get(account) else {
                continue;
            };
            let (seq, event_time) = (slot.applied_seq, slot.event_time);
            let legs = views::positions(&self.books, account, seq, event_time);
            let summary = views::summary(&self.books, account, &legs, seq, event_time);
            for leg in legs {
                let key = position_key(account, &leg.symbol, leg.side);
                let figures = figures(&leg);
                let previous = slot.written.get(&key);
                if previous.is_some_and(|(v, _)| *v == figures) {
                    continue;
                }
                let revision = previous.and_then(|(_, r)| *r);
                let mut stamped = leg;
                stamped.updated_at = now;
                outputs.push(Outgoing {
                    subject: pnl_position(account, &stamped.symbol, stamped.side).into(),
                    msg_id: format!(
                        "pnl:{}:{}.{}:{seq}{tag}",
                        account.as_str(),
                        stamped.symbol.as_str(),
                        stamped.side.as_str()
                    ),
                    payload: encoding.encode(&stamped)?.into(),
                    content_type: encoding.content_type(),
                });
                changed.push(LegWrite {
                    account: account.clone(),
                    key,
                    figures,
                    stamped,
                    revision,
                });
            }
            if slot.summary.as_ref() != Some(&summary) {
                summaries.push((account, seq, summary));
            }
        }
        for (account, seq, summary) in summaries {
            let mut stamped = summary.clone();
            stamped.updated_at = now;
            outputs.push(Outgoing {
                subject: pnl_summary(account).into(),
                msg_id: format!("pnl:{}:summary:{seq}{tag}", account.as_str()),
                payload: encoding.encode(&stamped)?.into(),
                content_type: encoding.content_type(),
            });
            if let Some(slot) = self.slots.get_mut(account) {
                slot.summary = Some(summary);
            }
        }
        Ok(changed)
    }

    /// Writes one position view with compare-and-set; a newer view already there wins.
    async fn write_position(
        &self,
        key: &str,
        view: &PositionPnl,
        mut revision: Option<u64>,
    ) -> anyhow::Result<u64> {
        let bytes: Bytes = rmp_serde::to_vec_named(view)?.into();
        for _ in 0..CAS_ATTEMPTS {
            let result = match revision {
                Some(r) => self
                    .shared
                    .positions
                    .update(key, bytes.clone(), r)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .shared
                    .positions
                    .create(key, bytes.clone())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match result {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.shared.metrics.cas_retries.inc();
                    let current = self
                        .shared
                        .positions
                        .entry(key)
                        .await
                        .with_context(|| format!("read positions/{key} after: {e}"))?;
                    match current {
                        Some(c) if c.operation == async_nats::jetstream::kv::Operation::Put => {
                            if let Ok(there) = rmp_serde::from_slice::<PositionPnl>(&c.value)
                                && there.applied_seq > view.applied_seq
                            {
                                return Ok(c.revision);
                            }
                            revision = Some(c.revision);
                        }
                        Some(c) => revision = Some(c.revision),
                        None => revision = None,
                    }
                }
            }
        }
        anyhow::bail!("positions/{key}: compare-and-set lost {CAS_ATTEMPTS} times")
    }

    fn recon_outputs(
        &self,
        found: &[(Discrepancy, u64)],
        outputs: &mut Vec<Outgoing>,
    ) -> anyhow::Result<()> {
        let (mut previous, mut nth) = (None, 0usize);
        for (d, seq) in found {
            let kind = d.kind.as_str();
            self.shared
                .metrics
                .discrepancies
                .with_label_values(&[kind])
                .inc();
            let subject_of = d
                .symbol
                .as_ref()
                .map(|s| match d.side {
                    Some(side) => format!("{}.{}", s.as_str(), side.as_str()),
                    None => s.as_str().to_owned(),
                })
                .or_else(|| d.asset.as_ref().map(|a| a.as_str().to_owned()))
                .unwrap_or_default();
            warn!(account = %d.account, kind, subject = %subject_of, ours = %d.ours, exchange = %d.exchange,
                  "the books disagreed with the exchange; the exchange's figure is adopted");
            let report = ReconReport {
                schema: RECON_SCHEMA.into(),
                account: d.account.clone(),
                kind: kind.into(),
                subject: subject_of.clone(),
                ours: d.ours,
                exchange: d.exchange,
                time: d.time.0,
                seq: *seq,
            };
            // The event's sequence and the discrepancy's place among that event's: the same whatever the
            // batch, so that an event applied again after a crash reports nothing twice.
            nth = if previous == Some(*seq) { nth + 1 } else { 0 };
            previous = Some(*seq);
            let id = format!(
                "recon:{}:{kind}:{subject_of}:{seq}:{nth}",
                d.account.as_str()
            );
            outputs.push(Outgoing {
                subject: recon(&d.account, kind).into(),
                msg_id: id,
                payload: rmp_serde::to_vec_named(&report)?.into(),
                content_type: acctmon_bus::envelope::CONTENT_TYPE,
            });
        }
        Ok(())
    }
}

/// Runs KV writes to independent keys, up to [`WRITES_IN_FLIGHT`] at once; their outcomes in the order
/// given.
async fn in_flight<F: std::future::Future>(writes: Vec<F>) -> Vec<F::Output> {
    let mut results = Vec::with_capacity(writes.len());
    let mut writes = writes.into_iter();
    loop {
        let chunk: Vec<F> = writes.by_ref().take(WRITES_IN_FLIGHT).collect();
        if chunk.is_empty() {
            return results;
        }
        results.extend(futures_util::future::join_all(chunk).await);
    }
}

/// The stream sequence up to which a partition consumer has everything acknowledged. A consumer created
/// at a start sequence reports an ack floor of 0 until its first acknowledgement, though everything
/// before its start was acknowledged by the session before it: without this, a replica that died before
/// its first checkpoint would send the next one back to the start of the stream.
pub fn acknowledged_until(info: &async_nats::jetstream::consumer::Info) -> u64 {
    let started = match info.config.deliver_policy {
        DeliverPolicy::ByStartSequence { start_sequence } => start_sequence.saturating_sub(1),
        _ => 0,
    };
    info.ack_floor.stream_sequence.max(started)
}

/// Where the durable consumer `name` of `EVENTS` has everything acknowledged, if it exists.
async fn floor_of(stream: &jetstream::stream::Stream, name: &str) -> Option<u64> {
    stream
        .consumer_info(name)
        .await
        .ok()
        .map(|info| acknowledged_until(&info))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The readiness check of partition `p`.
fn health_key(p: u32) -> String {
    format!("partition-{p}")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Delivery, Scope, Silence};

    #[test]
    fn a_replica_holding_every_partition_reads_them_through_one_consumer() {
        use std::collections::BTreeSet;
        assert_eq!(
            Scope::for_owned(&[2, 0, 3, 1], 4),
            BTreeSet::from([Scope::All])
        );
        // Not all of them: one worker per partition held.
        assert_eq!(
            Scope::for_owned(&[3, 1], 4),
            BTreeSet::from([Scope::One(1), Scope::One(3)])
        );
        assert_eq!(Scope::for_owned(&[], 4), BTreeSet::new());
        // A single partition is read through its own consumer, as before.
        assert_eq!(Scope::for_owned(&[0], 1), BTreeSet::from([Scope::One(0)]));
        // A partition beyond the count is no lease of this deployment's.
        assert_eq!(
            Scope::for_owned(&[0, 1, 2, 7], 4),
            BTreeSet::from([Scope::One(0), Scope::One(1), Scope::One(2)])
        );
        assert_eq!(Scope::All.partitions(3), vec![0, 1, 2]);
        assert_eq!(Scope::One(5).to_string(), "5");
        assert_eq!(Scope::All.to_string(), "all");
    }

    #[test]
    fn only_a_long_unbroken_silence_ends_a_session() {
        let (hb, limit) = (Duration::from_millis(100), Duration::from_secs(10));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut silence = Silence::default();
        // Misses reported every 2 × heartbeat: silent for 9.8 s, not yet 10.
        for ms in (0..=9_800).step_by(200) {
            assert!(!silence.missed(at(ms), hb, limit), "at {ms} ms");
        }
        assert!(silence.missed(at(10_000), hb, limit));
        // Heartbeats heard between two misses: the second starts a new run.
        let mut silence = Silence::default();
        assert!(!silence.missed(at(0), hb, limit));
        assert!(!silence.missed(at(9_000), hb, limit));
        assert!(!silence.missed(at(18_000), hb, limit));
        // A message resets the run.
        let mut silence = Silence::default();
        for ms in (0..=9_800).step_by(200) {
            silence.missed(at(ms), hb, limit);
        }
        silence.heard();
        assert!(!silence.missed(at(10_000), hb, limit));
    }

    #[test]
    fn a_session_follows_only_an_unbroken_run_of_deliveries() {
        let mut order = Delivery::default();
        assert_eq!(order.follow(40, 1), Ok(()));
        assert_eq!(order.follow(47, 2), Ok(()));
        // Delivery 3 was lost: 4 may not be applied, or acknowledging it would acknowledge 3.
        let lost = order.follow(52, 4).unwrap_err();
        assert!(lost.contains("delivery 4 after 2"), "{lost}");
        assert_eq!(
            order,
            Delivery {
                stream_seq: 47,
                consumer_seq: 2
            }
        );
        // A redelivery of an earlier event.
        let again = order.follow(40, 3).unwrap_err();
        assert!(again.contains("sequence 40 after 47"), "{again}");
        assert_eq!(order.follow(53, 3), Ok(()));
    }
}
