//! `acctmon replay`: the books of one account rebuilt from `EVENTS`, compared with the live books in KV,
//! or the selected events copied to another subject prefix.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use acctmon_books::{Books, BooksConfig, Report};
use acctmon_bus::envelope::Envelope;
use acctmon_bus::pnl::{AccountView, PositionPnl};
use acctmon_bus::subject::{EVENTS_PREFIX, account_key, position_key};
use acctmon_bus::topology::names;
use acctmon_domain::{Account, Timestamp};
use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use clap::Args;
use futures_util::StreamExt as _;
use rust_decimal::Decimal;

use crate::bus::NatsArgs;

/// Arguments of `acctmon replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The account to rebuild.
    #[arg(long)]
    pub account: String,
    /// First event: a stream sequence (`120345`) or a time (`2026-11-20T08:00:00Z`, the time the
    /// event was stored). Default: the first event of the account.
    #[arg(long, value_parser = parse_bound, conflicts_with = "diff")]
    pub from: Option<Bound>,
    /// Last event: a stream sequence or a time, inclusive. Default: the last event stored when the
    /// replay starts (with `--diff`: the sequence the live books reflect).
    #[arg(long, value_parser = parse_bound, conflicts_with = "diff")]
    pub to: Option<Bound>,
    /// Compare the rebuilt books with the live books in KV and report every difference (exit
    /// status 1 when there is one). Figures that depend on mark prices are not compared.
    #[arg(long)]
    pub diff: bool,
    /// Also publish each selected event to this subject prefix (`trading.events.<p>.<a>.<kind>`
    /// becomes `PREFIX.<p>.<a>.<kind>`, headers kept), for debugging a consumer.
    #[arg(long, value_name = "PREFIX")]
    pub republish: Option<String>,
    /// Start of the trading day for daily P&L, as HH:MM in UTC (as the processor's `day_boundary`).
    #[arg(long, default_value = "00:00")]
    pub day_boundary: String,
    /// Trade ids remembered per symbol for de-duplication (as the processor's `seen_ids_per_symbol`).
    #[arg(long, default_value_t = 1024)]
    pub seen_ids: usize,
    /// Also print risk and performance and every closed cycle.
    #[arg(long)]
    pub details: bool,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Where a replay starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A stream sequence of `EVENTS`.
    Seq(u64),
    /// A time at which the event was stored.
    Time(SystemTime),
}

/// Parses `--from`/`--to`: digits are a sequence, anything else an RFC 3339 time.
pub fn parse_bound(text: &str) -> Result<Bound, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Bound::Seq)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_rfc3339_weak(text)
        .map(Bound::Time)
        .map_err(|e| {
            format!(
                "{text:?} is neither a stream sequence nor a time like 2026-11-20T08:00:00Z: {e}"
            )
        })
}

/// What a replay rebuilt.
pub struct Rebuilt {
    /// The account.
    pub account: Account,
    /// The rebuilt books.
    pub books: Books,
    /// Events applied.
    pub applied: u64,
    /// With `--diff`: the live books compared and every difference found.
    pub diff: Option<(LiveBooks, Vec<Difference>)>,
}

/// `acctmon replay`.
pub async fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    let Rebuilt {
        account,
        books,
        applied,
        diff,
    } = rebuild(args).await?;
    let Some((live, differences)) = diff else {
        let mut report = Report::new(&books, Some(&account));
        if args.details {
            report = report.with_details(&books, Some(&account));
        }
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("write books")?;
        out.write_all(b"\n").context("write books")?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut out = std::io::stdout().lock();
    if differences.is_empty() {
        writeln!(
            out,
            "no difference: {applied} events of {} replayed up to sequence {} agree with the live books",
            account.as_str(),
            live.applied_seq
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        for d in &differences {
            writeln!(out, "{d}")?;
        }
        writeln!(
            out,
            "{} difference(s) between {applied} replayed events and the live books of {} (sequence {})",
            differences.len(),
            account.as_str(),
            live.applied_seq
        )?;
        Ok(ExitCode::from(1))
    }
}

/// Rebuilds the books of `args.account` from `EVENTS` (and compares them with the live books with
/// `--diff`), without printing them.
pub async fn rebuild(args: &ReplayArgs) -> Result<Rebuilt> {
    let account = Account::new(&args.account).map_err(|e| anyhow::anyhow!(e))?;
    let day_boundary_ms =
        BooksConfig::parse_day_boundary(&args.day_boundary).map_err(|e| anyhow::anyhow!(e))?;
    let client = args.nats.connect().await?;
    let js = async_nats::jetstream::new(client.clone());

    let live = if args.diff {
        Some(live_books(&js, &account).await?)
    } else {
        None
    };
    let to = match (&live, args.to) {
        (Some(live), _) => Some(Bound::Seq(live.applied_seq)),
        (None, to) => to,
    };

    let mut books = Books::new(BooksConfig {
        day_boundary_ms,
        seen_ids_per_symbol: args.seen_ids,
        keep_discrepancies: true,
    });
    let filter = format!("{EVENTS_PREFIX}.*.{}.>", account.as_str());
    let mut stream = js
        .get_stream(names::EVENTS)
        .await
        .context("no EVENTS stream: run `acctmon init` (or ingest) first")?;
    let last_stored = stream.info().await?.state.last_sequence;
    let end_seq = match to {
        Some(Bound::Seq(s)) => s.min(last_stored),
        _ => last_stored,
    };
    let start_seq = match args.from {
        Some(Bound::Seq(s)) => s.max(1),
        _ => 1,
    };
    let mut progress = Progress::new(start_seq, end_seq);
    let mut applied = 0u64;
    let mut republished = 0u64;
    if has_events(&stream, &filter).await? && start_seq <= end_seq {
        let deliver_policy = match args.from {
            Some(Bound::Seq(s)) => DeliverPolicy::ByStartSequence { start_sequence: s },
            Some(Bound::Time(t)) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from(t),
            },
            None => DeliverPolicy::All,
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter.clone(),
                deliver_policy,
                ..OrderedConfig::default()
            })
            .await
            .context("create the ordered consumer")?;
        let mut messages = consumer.messages().await?;
        while let Some(m) = messages.next().await {
            let m = m.context("read EVENTS")?;
            let info = m.info().map_err(|e| anyhow::anyhow!("message info: {e}"))?;
            let seq = info.stream_sequence;
            let pending = info.pending;
            let stored = SystemTime::from(info.published);
            if seq > end_seq || matches!(to, Some(Bound::Time(t)) if stored > t) {
                break;
            }
            let envelope = Envelope::decode(&m.payload).with_context(|| {
                format!("EVENTS sequence {seq} ({}) cannot be decoded", m.subject)
            })?;
            books.apply(&envelope.event);
            applied += 1;
            if let Some(prefix) = &args.republish {
                let rest = m
                    .subject
                    .strip_prefix(EVENTS_PREFIX)
                    .unwrap_or(m.subject.as_str());
                let subject = format!("{prefix}{rest}");
                match &m.headers {
                    Some(h) => {
                        client
                            .publish_with_headers(subject, h.clone(), m.payload.clone())
                            .await?
                    }
                    None => client.publish(subject, m.payload.clone()).await?,
                }
                republished += 1;
            }
            progress.at(seq, applied);
            if seq >= end_seq || pending == 0 {
                break;
            }
        }
    }
    if args.republish.is_some() {
        client
            .flush()
            .await
            .context("flush the republished events")?;
    }
    // Printed on their own, the books judge what still waits at the end of the input. Compared with the
    // live books, they stop where the processor stands: rows are judged by the stream's `heard` notices,
    // which both have applied.
    if live.is_none() {
        books.settle(Timestamp(i64::MAX));
    }
    progress.done(applied);
    if let Some(prefix) = &args.republish {
        eprintln!("republished {republished} events under {prefix}.>");
    }

    let diff = live.map(|live| {
        let differences = diff(&books, &account, &live);
        (live, differences)
    });
    Ok(Rebuilt {
        account,
        books,
        applied,
        diff,
    })
}

async fn has_events(stream: &async_nats::jetstream::stream::Stream, filter: &str) -> Result<bool> {
    let mut subjects = stream.info_with_subjects(filter).await?;
    while let Some(s) = subjects.next().await {
        if s?.1 > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The live books of an account: its KV `accounts` entry and its `positions` entries.
#[derive(Debug)]
pub struct LiveBooks {
    /// The `EVENTS` sequence the live books reflect.
    pub applied_seq: u64,
    /// The account's summary.
    pub summary: acctmon_bus::pnl::AccountPnl,
    /// Position legs by KV key.
    pub positions: BTreeMap<String, PositionPnl>,
}

async fn live_books(js: &async_nats::jetstream::Context, account: &Account) -> Result<LiveBooks> {
    let accounts = js
        .get_key_value(names::ACCOUNTS)
        .await
        .context("no KV accounts: is the processor running?")?;
    let Some(entry) = accounts.get(account_key(account)).await? else {
        bail!("no live books for account {}", account.as_str());
    };
    let view: AccountView = rmp_serde::from_slice(&entry).context("decode the accounts entry")?;
    let positions_kv = js.get_key_value(names::POSITIONS).await?;
    let entries = acctmon_bus::kv::latest(&positions_kv, &format!("{}.>", account.as_str()))
        .await
        .map_err(|e| anyhow::anyhow!("read KV positions: {e}"))?;
    let mut positions = BTreeMap::new();
    for (key, entry) in entries {
        let p: PositionPnl = rmp_serde::from_slice(&entry.value)
            .with_context(|| format!("decode positions entry {key}"))?;
        positions.insert(key, p);
    }
    Ok(LiveBooks {
        applied_seq: view.applied_seq,
        summary: view.summary,
        positions,
    })
}

/// One figure on which the replay and the live books disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: `summary`, a position key or a wallet asset.
    pub what: String,
    /// Which figure.
    pub field: &'static str,
    /// The replay's value.
    pub replayed: String,
    /// The live value.
    pub live: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: replayed {} live {}",
            self.what, self.field, self.replayed, self.live
        )
    }
}

/// Every mark-independent figure of the replayed books that differs from the live ones.
pub fn diff(books: &Books, account: &Account, live: &LiveBooks) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |what: &str, field: &'static str, replayed: String, live: String| {
        if replayed != live {
            out.push(Difference {
                what: what.to_owned(),
                field,
                replayed,
                live,
            });
        }
    };
    let dec = |d: Decimal| d.normalize().to_string();
    let mut replayed_keys = Vec::new();
    let mut funding: BTreeMap<String, (Decimal, Decimal, Decimal, Decimal, bool)> = BTreeMap::new();
    for (_, p) in books.positions(Some(account)) {
        if p.fills() == 0 && p.qty().is_zero() {
            continue;
        }
        let key = position_key(account, p.symbol(), p.side());
        replayed_keys.push(key.clone());
        let Some(l) = live.positions.get(&key) else {
            push(&key, "position", "present".into(), "absent".into());
            continue;
        };
        push(&key, "qty", dec(p.qty()), dec(l.qty));
        push(
            &key,
            "entry_price",
            dec(p.entry_price()),
            dec(l.entry_price),
        );
        push(
            &key,
            "realized_gross",
            dec(p.realized_gross()),
            dec(l.realized_gross),
        );
        // Fees paid in another asset (BNB) are valued at its mark, which a replay does not have:
        // those legs compare the fees in their own assets, and not the valued figures.
        let valued_at_marks = !p.commission_native().is_empty();
        if !valued_at_marks {
            push(&key, "commission", dec(p.commission()), dec(l.commission));
        }
        let native = |m: &mut dyn Iterator<Item = (String, Decimal)>| {
            m.map(|(a, d)| format!("{a}={}", dec(d)))
                .collect::<Vec<_>>()
                .join(",")
        };
        push(
            &key,
            "commission_native",
            native(
                &mut p
                    .commission_native()
                    .iter()
                    .map(|(a, d)| (a.to_string(), *d)),
            ),
            native(&mut l.commission_native.iter().map(|(a, d)| (a.to_string(), *d))),
        );
        push(&key, "fills", p.fills().to_string(), l.fills.to_string());
        // Funding rows name the symbol, not the leg: in hedge mode the books share a funding
        // between the legs as they stand when it is applied, so funding (and the net figure that
        // includes it) is compared per symbol.
        let sums = funding.entry(p.symbol().to_string()).or_default();
        sums.4 |= valued_at_marks;
        sums.0 += p.funding();
        sums.1 += p.realized_net();
        sums.2 += l.funding;
        sums.3 += l.realized_net;
    }
    for (symbol, (funding, net, live_funding, live_net, valued_at_marks)) in &funding {
        push(symbol, "funding", dec(*funding), dec(*live_funding));
        if !valued_at_marks {
            push(symbol, "realized_net", dec(*net), dec(*live_net));
        }
    }
    for key in live.positions.keys() {
        if !replayed_keys.contains(key) {
            push(key, "position", "absent".into(), "present".into());
        }
    }
    let replayed_wallets: BTreeMap<String, String> = books
        .wallets(account)
        .into_iter()
        .map(|(a, d)| (a.to_string(), dec(d)))
        .collect();
    let live_wallets: BTreeMap<String, String> = live
        .summary
        .balances
        .iter()
        .map(|(a, d)| (a.to_string(), dec(*d)))
        .collect();
    for asset in replayed_wallets.keys().chain(live_wallets.keys()) {
        let get = |m: &BTreeMap<String, String>| m.get(asset).cloned().unwrap_or("absent".into());
        push(
            &format!("wallet {asset}"),
            "balance",
            get(&replayed_wallets),
            get(&live_wallets),
        );
    }
    out.dedup();
    out
}

/// A progress line on standard error when it is a terminal.
struct Progress {
    tty: bool,
    start: u64,
    end: u64,
    began: Instant,
    last: Instant,
}

impl Progress {
    fn new(start: u64, end: u64) -> Self {
        let now = Instant::now();
        Progress {
            tty: std::io::stderr().is_terminal(),
            start,
            end,
            began: now,
            last: now,
        }
    }

    fn at(&mut self, seq: u64, applied: u64) {
        if !self.tty || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let span = self.end.saturating_sub(self.start).max(1);
        let done = seq.saturating_sub(self.start).min(span);
        let width = 30u64;
        let filled = (done * width / span) as usize;
        eprint!(
            "\r[{}{}] {:>3}% sequence {seq}/{} · {applied} events",
            "#".repeat(filled),
            "-".repeat(width as usize - filled),
            done * 100 / span,
            self.end
        );
    }

    fn done(&self, applied: u64) {
        let elapsed = self.began.elapsed();
        let ms = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!(
            "replayed {applied} events in {} ({}/s)",
            humantime::format_duration(Duration::from_millis(ms)),
            applied.saturating_mul(1000) / ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_sequences_or_times() {
        assert_eq!(parse_bound("42"), Ok(Bound::Seq(42)));
        assert!(matches!(
            parse_bound("2026-11-20T08:00:00Z"),
            Ok(Bound::Time(_))
        ));
        assert!(parse_bound("yesterday").is_err());
        assert!(parse_bound("").is_err());
    }
}
