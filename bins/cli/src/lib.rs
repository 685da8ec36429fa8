//! `acctmon`, the operator's command line.
//!
//! - `acctmon decode [FILE|-]`: raw Binance frames → normalized domain events as JSON lines.
//! - `acctmon books [FILE|-]`: the frames through the books → the final books as one JSON document.
//!
//! Both read NDJSON, one JSON array of frames, or one JSON object; combined-stream framing
//! (`{"stream":…,"data":…}`) and `!markPrice@arr` arrays are accepted. A frame that cannot be decoded is
//! reported on stderr with its line number and skipped; the exit status is then 1.
//!
//! - `acctmon status`: the live books from KV `accounts` and `positions`, as a table or JSON ([`status`]).
//! - `acctmon demo`: nats-server, the simulator, ingest and the processor on loopback ([`demo`]).

pub mod bus;
pub mod demo;
pub mod frames;
pub mod replay;
pub mod status;

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use acctmon_books::{Books, BooksConfig, Report};
use acctmon_domain::{Account, Event, Timestamp};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

/// acctmon: a real-time account monitor for Binance USDⓈ-M Futures.
#[derive(Debug, Parser)]
#[command(name = "acctmon", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode raw Binance frames into normalized domain events, one JSON object per line.
    ///
    /// Input: NDJSON (one frame per line), a JSON array of frames, or one JSON object. Frames may be
    /// user-data events (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, TRADE_LITE …), mark-price updates, the
    /// combined-stream wrapper {"stream":…,"data":…}, or !markPrice@arr arrays. An undecodable frame
    /// is reported on stderr with its line number and skipped; the exit status is 1 if any frame
    /// failed, 0 otherwise.
    Decode(DecodeArgs),
    /// Replay frames through the books and print the final books as one JSON document.
    ///
    /// User-data events and mark-price frames are applied in file order; exchange figures still
    /// waiting for their fill at the end are judged then. The document has "positions", "balances",
    /// "stats" and "discrepancies" (and, with --details, "accounts" and "cycles"); decimals are strings
    /// without trailing zeros.
    Books(BooksArgs),
    /// Print the live books from KV: per account its balances, equity, risk and realized P&L, then its
    /// positions.
    ///
    /// Reads KV `accounts` (each account's summary) and `positions` (each leg) as the processor last
    /// wrote them. Decimals are printed exactly as stored. Closed legs (quantity 0) are left out of the
    /// table and summed in one line per account (how many, their realized net); --all lists them.
    /// --json prints one document with every account's summary and every leg, closed ones included.
    /// Fails with one line when NATS cannot be reached, the buckets do not exist yet, or --account
    /// names an account KV does not know.
    Status(status::StatusArgs),
    /// Run the whole pipeline on this machine for a first look: nats-server, the simulator, ingest and
    /// the processor, until Ctrl-C.
    ///
    /// Starts nats-server (from PATH or /usr/sbin) with JetStream in a temporary directory on a free
    /// loopback port, unless --nats-url is given and answers; acctmon-sim with generated activity on
    /// three accounts (one-way, hedge mode, fees in BNB); acctmon-ingest and acctmon-processor. The
    /// binaries are taken from the directory of this executable, else from PATH. With
    /// BINANCE_API_KEY and BINANCE_API_SECRET in the environment (and no --simulate), ingest follows
    /// that Binance account (see --venue) instead of the simulator. Once everything is ready it prints
    /// what to look at; Ctrl-C or SIGTERM (or the end of --for) stops every process it started and
    /// removes its temporary directory (logs included).
    Demo(demo::DemoArgs),
    /// Create the JetStream topology (streams, KV buckets) or bring it up to date; idempotent.
    Init(bus::InitArgs),
    /// Print the messages of a subject as JSON lines, live or from a stream sequence or time.
    Tail(bus::TailArgs),
    /// Rebuild one account's books from EVENTS and print them like `acctmon books`.
    ///
    /// Reads the account's events with an ordered consumer (a progress bar on a terminal). With
    /// --diff, compares the rebuilt books with the live books in KV and prints every difference
    /// (exit status 1 when there is one); with --republish PREFIX, also copies the selected events
    /// to another subject prefix.
    Replay(replay::ReplayArgs),
}

/// Arguments of `acctmon decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Input file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
    /// Account alias the events belong to.
    #[arg(long, default_value = "main")]
    pub account: String,
}

/// Arguments of `acctmon books`.
#[derive(Debug, Args)]
pub struct BooksArgs {
    /// Input file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
    /// Account alias the events belong to.
    #[arg(long, default_value = "main")]
    pub account: String,
    /// Start of the trading day for daily P&L, as HH:MM in UTC.
    #[arg(long, default_value = "00:00")]
    pub day_boundary: String,
    /// Also print risk and performance per account and every closed cycle.
    #[arg(long)]
    pub details: bool,
}

/// Runs a command; `Ok` carries the exit status (1 when some frames could not be decoded).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Decode(args) => decode(&args),
        Command::Books(args) => books(&args),
        Command::Status(args) => runtime()?.block_on(status::status(&args)),
        Command::Demo(args) => runtime()?.block_on(demo::demo(&args)),
        Command::Init(args) => runtime()?.block_on(bus::init(&args)),
        Command::Tail(args) => runtime()?.block_on(bus::tail(&args)),
        Command::Replay(args) => runtime()?.block_on(replay::replay(&args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn read_input(path: &PathBuf) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .context("read standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
    }
}

fn account(alias: &str) -> Result<Account> {
    Account::new(alias).map_err(|e| anyhow::anyhow!(e))
}

/// Decodes every frame of `input`, calling `each` with the events of the frames that decode and
/// reporting the others on stderr. Returns the number of frames that failed.
pub fn for_each_event(
    account: &Account,
    input: &str,
    mut each: impl FnMut(Event) -> Result<()>,
) -> Result<usize> {
    let mut failed = 0;
    let stderr = io::stderr();
    for frame in frames::split(input) {
        match acctmon_binance::decode_frame(account, frame.text) {
            Ok(events) => {
                for e in events {
                    each(e)?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(stderr.lock(), "line {}: {e}", frame.line).ok();
            }
        }
    }
    Ok(failed)
}

fn decode(args: &DecodeArgs) -> Result<ExitCode> {
    let account = account(&args.account)?;
    let input = read_input(&args.input)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let failed = for_each_event(&account, &input, |e| {
        serde_json::to_writer(&mut out, &e).context("write event")?;
        out.write_all(b"\n").context("write event")?;
        Ok(())
    })?;
    out.flush().context("write events")?;
    Ok(exit(failed))
}

fn books(args: &BooksArgs) -> Result<ExitCode> {
    let account = account(&args.account)?;
    let day_boundary_ms =
        BooksConfig::parse_day_boundary(&args.day_boundary).map_err(|e| anyhow::anyhow!(e))?;
    let input = read_input(&args.input)?;
    let mut books = Books::new(BooksConfig {
        day_boundary_ms,
        ..BooksConfig::default()
    });
    let failed = for_each_event(&account, &input, |e| {
        books.apply(&e);
        Ok(())
    })?;
    books.settle(Timestamp(i64::MAX));
    let mut report = Report::new(&books, Some(&account));
    if args.details {
        report = report.with_details(&books, Some(&account));
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    serde_json::to_writer_pretty(&mut out, &report).context("write books")?;
    out.write_all(b"\n").context("write books")?;
    out.flush().context("write books")?;
    Ok(exit(failed))
}

fn exit(failed: usize) -> ExitCode {
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
