//! `acctmon status`: the books as the processor last wrote them to KV `accounts` (each account's
//! summary) and `positions` (each leg), printed as a table or as one JSON document.
//!
//! Read-only: this module never writes to NATS. Figures are printed exactly as stored (decimal
//! strings, never through floating point).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use acctmon_bus::pnl::{AccountPnl, AccountView, PositionPnl};
use acctmon_bus::subject::account_key;
use acctmon_bus::topology::names;
use acctmon_domain::{Account, Asset};
use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, kv::Store};
use clap::Args;
use futures_util::StreamExt as _;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::bus::NatsArgs;

/// Arguments of `acctmon status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Print one JSON document instead of the table: {"accounts":[{"account","applied_seq",
    /// "summary","positions"}]}, the summary and the positions as stored (every leg, closed ones
    /// included; decimals as strings).
    #[arg(long)]
    pub json: bool,
    /// List closed legs (quantity 0) in the table too; by default they are summed in one line.
    #[arg(long)]
    pub all: bool,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Everything `acctmon status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Accounts by alias.
    pub accounts: Vec<AccountStatus>,
}

/// One account: its KV `accounts` summary and its KV `positions` legs.
#[derive(Debug, Clone, Serialize)]
pub struct AccountStatus {
    /// Account alias.
    pub account: String,
    /// The `EVENTS` sequence the account's entry reflects (`None`: no entry, only legs).
    pub applied_seq: Option<u64>,
    /// The summary of its KV `accounts` entry.
    pub summary: Option<AccountPnl>,
    /// Every leg in KV `positions`, by symbol then side.
    pub positions: Vec<PositionPnl>,
}

/// `acctmon status`.
pub async fn status(args: &StatusArgs) -> Result<ExitCode> {
    let only = args
        .account
        .as_deref()
        .map(Account::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let client = args.nats.connect().await?;
    let js = jetstream::new(client);
    let accounts = bucket(&js, names::ACCOUNTS).await?;
    let positions = bucket(&js, names::POSITIONS).await?;
    let mut warnings = Vec::new();
    let report = read(&accounts, &positions, only.as_ref(), &mut warnings).await?;
    for w in &warnings {
        eprintln!("acctmon: {w}");
    }
    if let Some(account) = &only
        && report.accounts.is_empty()
    {
        let known = read(&accounts, &positions, None, &mut Vec::new()).await?;
        let names: Vec<_> = known.accounts.iter().map(|a| a.account.as_str()).collect();
        bail!(
            "account `{account}` is not known: no entry in KV {} (known: {})",
            names::ACCOUNTS,
            if names.is_empty() {
                "none yet".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).context("encode status")?;
        s.push('\n');
        s
    } else {
        render(&report, args.all, now_ms())
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("write to stdout")?;
    Ok(if warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Binds a KV bucket, telling a missing one apart from a failure to ask.
async fn bucket(js: &jetstream::Context, name: &str) -> Result<Store> {
    let stream = format!("KV_{name}");
    match js.get_stream(&stream).await {
        Ok(_) => {}
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            bail!(
                "KV bucket `{name}` does not exist: run `acctmon init` and the processor first (or `acctmon demo`)"
            )
        }
        Err(e) => bail!("look up KV bucket `{name}`: {e}"),
    }
    js.get_key_value(name)
        .await
        .with_context(|| format!("bind KV bucket `{name}`"))
}

async fn keys(store: &Store, bucket: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut keys = store
        .keys()
        .await
        .with_context(|| format!("list the keys of KV `{bucket}`"))?;
    while let Some(key) = keys.next().await {
        out.push(key.with_context(|| format!("list the keys of KV `{bucket}`"))?);
    }
    Ok(out)
}

/// Reads the accounts (all, or `only`) and their legs. Values that do not decode are left out and
/// described in `warnings`.
async fn read(
    accounts: &Store,
    positions: &Store,
    only: Option<&Account>,
    warnings: &mut Vec<String>,
) -> Result<StatusReport> {
    let mut by_account: BTreeMap<String, AccountStatus> = BTreeMap::new();
    let account_keys = match only {
        Some(a) => vec![account_key(a)],
        None => keys(accounts, names::ACCOUNTS).await?,
    };
    for key in account_keys {
        let Some(bytes) = accounts
            .get(&key)
            .await
            .with_context(|| format!("read {}/{key}", names::ACCOUNTS))?
        else {
            continue;
        };
        match rmp_serde::from_slice::<AccountView>(&bytes) {
            Ok(view) => {
                by_account.insert(
                    view.summary.account.as_str().to_owned(),
                    AccountStatus {
                        account: view.summary.account.as_str().to_owned(),
                        applied_seq: Some(view.applied_seq),
                        summary: Some(view.summary),
                        positions: Vec::new(),
                    },
                );
            }
            Err(e) => warnings.push(format!(
                "{}/{key} does not decode as an account entry: {e}",
                names::ACCOUNTS
            )),
        }
    }
    // Account aliases hold no `.`, so `<account>.` prefixes exactly that account's keys.
    let prefix = only.map(|a| format!("{a}."));
    let mut legs: BTreeMap<(String, String, String), PositionPnl> = BTreeMap::new();
    for key in keys(positions, names::POSITIONS).await? {
        if prefix.as_deref().is_some_and(|p| !key.starts_with(p)) {
            continue;
        }
        let Some(bytes) = positions
            .get(&key)
            .await
            .with_context(|| format!("read {}/{key}", names::POSITIONS))?
        else {
            continue;
        };
        match rmp_serde::from_slice::<PositionPnl>(&bytes) {
            Ok(leg) => {
                let k = (
                    leg.account.as_str().to_owned(),
                    leg.symbol.as_str().to_owned(),
                    leg.side.as_str().to_owned(),
                );
                legs.insert(k, leg);
            }
            Err(e) => warnings.push(format!(
                "{}/{key} does not decode as a position: {e}",
                names::POSITIONS
            )),
        }
    }
    for ((account, _, _), leg) in legs {
        by_account
            .entry(account.clone())
            .or_insert_with(|| AccountStatus {
                account,
                applied_seq: None,
                summary: None,
                positions: Vec::new(),
            })
            .positions
            .push(leg);
    }
    Ok(StatusReport {
        accounts: by_account.into_values().collect(),
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2026-01-02 03:04:05.678 UTC` for a time in ms since the epoch.
fn utc(ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return format!("{ms} ms");
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn opt(d: Option<Decimal>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

/// The report as a table for people. `now_ms` dates the "ago" of each account's last update.
pub fn render(report: &StatusReport, all: bool, now_ms: i64) -> String {
    let mut out = String::new();
    if report.accounts.is_empty() {
        out.push_str(
            "no account in KV yet (is acctmon-processor running, and ingest feeding it?)\n",
        );
        return out;
    }
    for (i, a) in report.accounts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_account(&mut out, a, all, now_ms);
    }
    out
}

// Writing to a String cannot fail: the `fmt::Result`s below are ignored on purpose.
fn render_account(out: &mut String, a: &AccountStatus, all: bool, now_ms: i64) {
    let Some(s) = &a.summary else {
        let _ = writeln!(
            out,
            "account {}: no summary in KV {} yet",
            a.account,
            names::ACCOUNTS
        );
        render_positions(out, &a.positions, all);
        return;
    };
    let mode = match s.hedge_mode {
        Some(true) => "hedge mode",
        Some(false) => "one-way mode",
        None => "mode unknown",
    };
    let age = humantime::format_duration(std::time::Duration::from_secs(
        u64::try_from((now_ms - s.updated_at) / 1000).unwrap_or(0),
    ));
    let _ = writeln!(
        out,
        "account {}  ({mode}, applied seq {}, updated {} – {age} ago)",
        a.account,
        a.applied_seq.unwrap_or(s.applied_seq),
        utc(s.updated_at),
    );
    let balances = if s.balances.is_empty() {
        "-".to_owned()
    } else {
        s.balances
            .iter()
            .map(|(asset, d)| format!("{asset} {d}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let rows: [(&str, String); 6] = [
        ("wallet", format!("{balances}  (total {})", opt(s.wallet))),
        (
            "equity",
            format!("{}  (unrealized {})", opt(s.equity), s.unrealized),
        ),
        (
            "margin ratio",
            format!(
                "{}  (maintenance margin {})",
                opt(s.margin_ratio),
                opt(s.maint_margin)
            ),
        ),
        ("daily P&L", opt(s.daily_pnl)),
        (
            "drawdown",
            format!("{}  (max {})", opt(s.drawdown), s.max_drawdown),
        ),
        (
            "realized",
            format!(
                "gross {}  fees {}  funding {}  net {}",
                s.realized_gross, s.commission, s.funding, s.realized_net
            ),
        ),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<13}{value}");
    }
    let native = fees_native(&a.positions);
    if !native.is_empty() {
        let paid = native
            .iter()
            .map(|(asset, d)| format!("{asset} {d}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(
            out,
            "  {:<13}{paid}  (valued in the fees above)",
            "fees paid in"
        );
    }
    render_positions(out, &a.positions, all);
}

/// Fees paid in assets other than the margin asset, summed over the legs.
fn fees_native(legs: &[PositionPnl]) -> BTreeMap<Asset, Decimal> {
    let mut sums: BTreeMap<Asset, Decimal> = BTreeMap::new();
    for leg in legs {
        for (asset, d) in &leg.commission_native {
            *sums.entry(asset.clone()).or_default() += *d;
        }
    }
    sums
}

const HEADER: [&str; 10] = [
    "SYMBOL",
    "SIDE",
    "QTY",
    "ENTRY",
    "MARK",
    "UNREALIZED",
    "GROSS",
    "FEES",
    "FUNDING",
    "NET",
];

fn render_positions(out: &mut String, legs: &[PositionPnl], all: bool) {
    let (shown, closed): (Vec<&PositionPnl>, Vec<&PositionPnl>) =
        legs.iter().partition(|p| all || !p.qty.is_zero());
    if shown.is_empty() {
        let _ = writeln!(out, "  no open position");
    } else {
        let rows: Vec<[String; 10]> = shown
            .iter()
            .map(|p| {
                [
                    p.symbol.to_string(),
                    p.side.as_str().to_owned(),
                    p.qty.to_string(),
                    p.entry_price.to_string(),
                    opt(p.mark_price),
                    opt(p.unrealized),
                    p.realized_gross.to_string(),
                    p.commission.to_string(),
                    p.funding.to_string(),
                    p.realized_net.to_string(),
                ]
            })
            .collect();
        let mut widths = HEADER.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |out: &mut String, cells: &[&str]| {
            out.push_str("  ");
            for (col, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let sep = if col == 0 { "" } else { "  " };
                // Names to the left, figures to the right.
                if col < 2 {
                    let _ = write!(out, "{sep}{cell:<w$}");
                } else {
                    let _ = write!(out, "{sep}{cell:>w$}");
                }
            }
            out.push('\n');
        };
        line(out, &HEADER);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(out, &cells);
        }
    }
    if !closed.is_empty() {
        let net: Decimal = closed.iter().map(|p| p.realized_net).sum();
        let _ = writeln!(
            out,
            "  closed legs (qty 0): {}, realized net {}  (--all lists them)",
            closed.len(),
            net.normalize()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use acctmon_bus::pnl::{POSITION_SCHEMA, SUMMARY_SCHEMA};
    use acctmon_domain::{PositionSide, Symbol};

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn leg(symbol: &str, side: PositionSide, qty: &str, net: &str) -> PositionPnl {
        PositionPnl {
            schema: POSITION_SCHEMA.into(),
            account: Account::new("main").unwrap(),
            symbol: Symbol::new(symbol).unwrap(),
            side,
            qty: d(qty),
            entry_price: d("50000.10"),
            mark_price: Some(d("50100")),
            unrealized: Some(d("7.50")),
            realized_gross: d("12.5"),
            commission: d("0.75"),
            commission_native: BTreeMap::new(),
            funding: d("-0.01"),
            realized_net: d(net),
            margin_asset: Asset::new("USDT").unwrap(),
            fills: 3,
            applied_seq: 9,
            event_time: 1_767_225_600_000,
            updated_at: 1_767_225_600_500,
        }
    }

    fn report() -> StatusReport {
        let summary = AccountPnl {
            schema: SUMMARY_SCHEMA.into(),
            account: Account::new("main").unwrap(),
            hedge_mode: Some(false),
            balances: [(Asset::new("USDT").unwrap(), d("99876.5400"))].into(),
            wallet: Some(d("99876.5400")),
            unrealized: d("7.50"),
            equity: Some(d("99884.04")),
            maint_margin: Some(d("100.2")),
            margin_ratio: Some(d("0.001003")),
            realized_gross: d("12.5"),
            commission: d("0.75"),
            funding: d("-0.01"),
            realized_net: d("11.74"),
            daily_pnl: None,
            drawdown: Some(d("0")),
            max_drawdown: d("3.2"),
            open_positions: 1,
            applied_seq: 9,
            event_time: 1_767_225_600_000,
            updated_at: 1_767_225_600_500,
        };
        StatusReport {
            accounts: vec![AccountStatus {
                account: "main".into(),
                applied_seq: Some(9),
                summary: Some(summary),
                positions: vec![
                    leg("BTCUSDT", PositionSide::Both, "0.150", "11.74"),
                    leg("ETHUSDT", PositionSide::Both, "0", "2.5"),
                ],
            }],
        }
    }

    #[test]
    fn the_table_prints_stored_decimals_verbatim_and_sums_closed_legs() {
        let text = render(&report(), false, 1_767_225_602_500);
        assert!(
            text.starts_with(
                "account main  (one-way mode, applied seq 9, updated 2026-01-01 00:00:00.500 UTC – 2s ago)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  wallet       USDT 99876.5400  (total 99876.5400)\n"),
            "{text}"
        );
        assert!(
            text.contains("  margin ratio 0.001003  (maintenance margin 100.2)\n"),
            "{text}"
        );
        assert!(text.contains("  daily P&L    -\n"), "{text}");
        assert!(
            text.contains("  realized     gross 12.5  fees 0.75  funding -0.01  net 11.74\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  BTCUSDT  BOTH  0.150  50000.10  50100        7.50   12.5  0.75    -0.01  11.74\n"
            ),
            "{text}"
        );
        assert!(!text.contains("ETHUSDT"), "{text}");
        assert!(
            text.contains("  closed legs (qty 0): 1, realized net 2.5  (--all lists them)\n"),
            "{text}"
        );
        let all = render(&report(), true, 0);
        assert!(all.contains("  ETHUSDT  BOTH      0"), "{all}");
        assert!(!all.contains("closed legs"), "{all}");
    }

    #[test]
    fn an_empty_report_says_what_to_run() {
        let text = render(&StatusReport { accounts: vec![] }, false, 0);
        assert!(text.contains("acctmon-processor"), "{text}");
    }
}
