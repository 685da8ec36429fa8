//! `acctmon`, the operator's command line.
//!
//! - `acctmon decode [FILE|-]`: raw Binance frames → normalized domain events as JSON lines.
//! - `acctmon books [FILE|-]`: the frames through the books → the final books as one JSON document.
//!
//! Both read NDJSON, one JSON array of frames, or one JSON object; combined-stream framing
//! (`{"stream":…,"data":…}`) and `!markPrice@arr` arrays are accepted. A frame that cannot be decoded is
//! reported on stderr with its line number and skipped; the exit status is then 1.

pub mod bus;
pub mod frames;

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
    /// Create the JetStream topology (streams, KV buckets) or bring it up to date; idempotent.
    Init(bus::InitArgs),
    /// Print the messages of a subject as JSON lines, live or from a stream sequence or time.
    Tail(bus::TailArgs),
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
        Command::Init(args) => runtime()?.block_on(bus::init(&args)),
        Command::Tail(args) => runtime()?.block_on(bus::tail(&args)),
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
