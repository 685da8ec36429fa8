//! Running the simulator: configuration, the activity driver and the HTTP/WebSocket server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::serve::ListenerExt as _;
use clap::Args;
use tokio::net::TcpListener;

use crate::activity::Activity;
use crate::auth::Secret;
use crate::clock::{Clock, FUNDING_INTERVAL_MS};
use crate::exchange::{AccountSpec, Exchange, ExchangeConfig};
use crate::limits::WeightMeter;
use crate::rest::{ApiKey, Control, Shared, Sim, lock, now_ms, router};

/// Settings of `acctmon-sim`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve REST and WebSocket on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8090", env = "ACCTMON_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Seed of every random choice: the same seed replays the same history.
    #[arg(long, default_value_t = 1, env = "ACCTMON_SIM_SEED")]
    pub seed: u64,
    /// Generated actions per second (about 86 % are orders of 1 to 3 fills); 0 for none. Changeable at
    /// run time with `POST /_sim/activity?per_sec=N`.
    #[arg(long, default_value_t = 5, env = "ACCTMON_SIM_FILLS_PER_SEC")]
    pub fills_per_sec: u32,
    /// Accounts, as `NAME[:hedge][:bnb]` (hedge mode; fees paid in BNB). Each gets the API key
    /// `sim-key-NAME` with secret `sim-secret-NAME`.
    #[arg(long = "account", default_values_t = ["main".to_owned(), "hedged:hedge".to_owned(), "bnb-fees:bnb".to_owned()])]
    pub accounts: Vec<String>,
    /// Every Binance duration (listenKey validity, pings, the 24-hour cut, funding every 8 hours,
    /// rate-limit windows) runs this many times faster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), env = "ACCTMON_SIM_TIME_SCALE")]
    pub time_scale: u32,
    /// Request weight allowed per (scaled) minute before answering 429.
    #[arg(long, default_value_t = crate::rest::DEFAULT_WEIGHT_LIMIT, env = "ACCTMON_SIM_WEIGHT_LIMIT")]
    pub weight_limit: u32,
    /// Generate market orders as fast as the slowest connected user stream takes them (benchmarks),
    /// instead of `--fills-per-sec`.
    #[arg(long, env = "ACCTMON_SIM_FIREHOSE")]
    pub firehose: bool,
    /// Fault: drop every WebSocket connection this often, in seconds (0: never).
    #[arg(long, default_value_t = 0, env = "ACCTMON_SIM_DROP_EVERY")]
    pub drop_every: u64,
    /// Fault: expire every listenKey this often, in seconds (0: never).
    #[arg(long, default_value_t = 0, env = "ACCTMON_SIM_EXPIRE_EVERY")]
    pub expire_every: u64,
    /// Fault: send each user event twice with this probability, in percent.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100), env = "ACCTMON_SIM_DUPLICATE_PCT")]
    pub duplicate_pct: u64,
    /// Fault: delay every REST answer by this many milliseconds.
    #[arg(long, default_value_t = 0, env = "ACCTMON_SIM_REST_DELAY_MS")]
    pub rest_delay_ms: u64,
}

/// The command line of the simulator alone, for [`Config::from_args`].
#[derive(Debug, clap::Parser)]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Parses settings from command-line style arguments (without the program name); the
    /// environment fills what they leave out.
    pub fn from_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("acctmon-sim"))
            .chain(args.into_iter().map(Into::into));
        Standalone::try_parse_from(argv).map(|s| s.config)
    }

    /// The accounts as specified.
    pub fn account_specs(&self) -> Result<Vec<AccountSpec>, String> {
        self.accounts
            .iter()
            .map(|text| {
                let mut parts = text.split(':');
                let name = parts.next().unwrap_or_default().to_owned();
                if name.is_empty()
                    || name.len() > 32
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "invalid account {text:?}: expected NAME[:hedge][:bnb]"
                    ));
                }
                let mut spec = AccountSpec {
                    name,
                    hedge: false,
                    fees_in_bnb: false,
                };
                for flag in parts {
                    match flag {
                        "hedge" => spec.hedge = true,
                        "bnb" => spec.fees_in_bnb = true,
                        other => return Err(format!("invalid account flag {other:?} in {text:?}")),
                    }
                }
                Ok(spec)
            })
            .collect()
    }
}

/// The API key of an account named `name`: `sim-key-<name>` / `sim-secret-<name>`.
pub fn api_key(name: &str, account: usize) -> ApiKey {
    ApiKey {
        key: format!("sim-key-{name}"),
        secret: Secret::new(format!("sim-secret-{name}")),
        account,
    }
}

/// Builds the simulator's state with its starting marks and deposits.
pub fn build(config: &Config) -> Result<(Shared, Activity), String> {
    let specs = config.account_specs()?;
    let keys = specs
        .iter()
        .enumerate()
        .map(|(i, s)| api_key(&s.name, i))
        .collect();
    let clock = Clock::new(config.time_scale);
    let mut exchange = Exchange::new(
        ExchangeConfig {
            seed: config.seed,
            funding_interval_ms: clock.ms(FUNDING_INTERVAL_MS),
            ..ExchangeConfig::default()
        },
        specs,
    );
    let (activity, _marks) = Activity::start(&mut exchange, now_ms());
    let mut sim = Sim::new(exchange, keys);
    sim.clock = clock;
    sim.weights = WeightMeter::new(config.weight_limit);
    sim.faults.duplicate_pct = config.duplicate_pct;
    sim.faults.rest_delay_ms = config.rest_delay_ms;
    sim.activity_per_sec = config.fills_per_sec;
    sim.publish();
    Ok((Arc::new(Mutex::new(sim)), activity))
}

/// Queued events per account above which the firehose waits for the slowest client.
const FIREHOSE_BACKLOG: usize = 16_384;
/// Orders generated per firehose batch (one lock).
const FIREHOSE_BATCH: usize = 256;

/// Generated activity at [`Sim::activity_per_sec`] actions per second, read on every tick of 10 ms
/// (so `POST /_sim/activity` takes effect at once), carrying the fraction from tick to tick.
async fn drive(sim: Shared, mut activity: Activity) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut due: u64 = 0;
    loop {
        tick.tick().await;
        let mut sim = lock(&sim);
        let per_sec = sim.activity_per_sec;
        if per_sec == 0 {
            due = 0;
        }
        due += u64::from(per_sec);
        let steps = due / 100;
        due %= 100;
        let now = now_ms();
        sim.expire_listen_keys(now, None);
        sim.exchange.advance(now);
        for _ in 0..steps {
            activity.step(&mut sim.exchange, now);
        }
        let accounts = sim.exchange.accounts().len().max(1) as u64;
        for n in 0..std::mem::take(&mut sim.burst) {
            if n % 64 == 63 {
                activity.move_mark(&mut sim.exchange, now);
            }
            let a = usize::try_from(n % accounts).unwrap_or(0);
            activity.market(&mut sim.exchange, a, now);
        }
        sim.publish();
    }
}

/// Market orders as fast as the slowest connected user stream takes them, a mark move every 64.
async fn firehose(sim: Shared, mut activity: Activity) {
    let mut n: u64 = 0;
    loop {
        let busy = {
            let mut sim = lock(&sim);
            let accounts = sim.exchange.accounts().len();
            let now = now_ms();
            sim.expire_listen_keys(now, None);
            sim.exchange.advance(now);
            if (0..accounts).any(|a| sim.backlog(a) > FIREHOSE_BACKLOG) {
                true
            } else {
                for _ in 0..FIREHOSE_BATCH {
                    n += 1;
                    if n.is_multiple_of(64) {
                        activity.move_mark(&mut sim.exchange, now);
                    }
                    let a = usize::try_from(n).unwrap_or(0) % accounts.max(1);
                    activity.market(&mut sim.exchange, a, now);
                }
                sim.publish();
                false
            }
        };
        if busy {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Periodic faults from the flags.
async fn faults(sim: Shared, drop_every: u64, expire_every: u64) {
    let every = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let (drop_every, expire_every) = (every(drop_every), every(expire_every));
    let start = tokio::time::Instant::now();
    let mut next_drop = drop_every.map(|d| start + d);
    let mut next_expire = expire_every.map(|d| start + d);
    loop {
        let next = match (next_drop, next_expire) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        let mut sim = lock(&sim);
        if let (Some(at), Some(d)) = (next_drop, drop_every)
            && now >= at
        {
            sim.send_control(Control::Drop(None));
            next_drop = Some(at + d);
        }
        if let (Some(at), Some(d)) = (next_expire, expire_every)
            && now >= at
        {
            for a in 0..sim.exchange.accounts().len() {
                sim.expire_listen_keys(now_ms(), Some(a));
            }
            next_expire = Some(at + d);
        }
    }
}

/// Serves until `shutdown` completes: REST, WebSocket, `/healthz`, generated activity and faults.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (sim, activity) = build(&config)?;
    let driver = if config.firehose {
        tokio::spawn(firehose(Arc::clone(&sim), activity))
    } else {
        tokio::spawn(drive(Arc::clone(&sim), activity))
    };
    let faults = tokio::spawn(faults(
        Arc::clone(&sim),
        config.drop_every,
        config.expire_every,
    ));
    let app = router(Arc::clone(&sim)).route("/healthz", get(|| async { "ok" }));
    // Every event goes out as it happens, as the exchange's own servers send them: without
    // TCP_NODELAY a frame could wait for the acknowledgement of the one before (Nagle's algorithm).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("serve: {e}"));
    driver.abort();
    faults.abort();
    result
}

/// The simulator on a thread and runtime of its own, for a benchmark or tool that measures another
/// process's work in this one: a real exchange does not share its client's runtime.
pub struct Background {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Background {
    /// Starts the simulator with these command-line arguments on a free loopback port.
    pub fn start(args: Vec<String>) -> Result<Background, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let base = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let config = Config::from_args(args).map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sim".into())
            .spawn(move || -> Result<(), String> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                    run(config, listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                })
            })
            .map_err(|e| e.to_string())?;
        Ok(Background { base, stop, thread })
    }

    /// Stops the simulator and waits for its thread.
    pub fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| "simulator thread panicked".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn accounts_parse_with_their_flags() {
        let cli = Cli::parse_from(["sim", "--account", "a", "--account", "b:hedge:bnb"]);
        let specs = cli.config.account_specs().unwrap();
        assert_eq!(specs.len(), 2);
        assert!(!specs[0].hedge && specs[1].hedge && specs[1].fees_in_bnb);
        let bad = Cli::parse_from(["sim", "--account", "x:turbo"]);
        assert!(bad.config.account_specs().unwrap_err().contains("turbo"));
        let default = Cli::parse_from(["sim"]);
        assert_eq!(default.config.account_specs().unwrap().len(), 3);
    }
}
