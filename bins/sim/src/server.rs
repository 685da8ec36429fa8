//! Running the simulator: configuration, the activity driver and the HTTP/WebSocket server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use clap::Args;
use tokio::net::TcpListener;

use crate::activity::Activity;
use crate::auth::Secret;
use crate::exchange::{AccountSpec, Exchange, ExchangeConfig};
use crate::rest::{ApiKey, Shared, Sim, lock, now_ms, router};

/// Settings of `acctmon-sim`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve REST and WebSocket on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8090", env = "ACCTMON_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Seed of every random choice: the same seed replays the same history.
    #[arg(long, default_value_t = 1, env = "ACCTMON_SIM_SEED")]
    pub seed: u64,
    /// Generated actions per second (about 86 % are orders of 1 to 3 fills); 0 for none.
    #[arg(long, default_value_t = 5, env = "ACCTMON_SIM_FILLS_PER_SEC")]
    pub fills_per_sec: u32,
    /// Accounts, as NAME[:hedge][:bnb] (hedge mode; fees paid in BNB). Each gets the API key
    /// `sim-key-NAME` with secret `sim-secret-NAME`.
    #[arg(long = "account", default_values_t = ["main".to_owned(), "hedged:hedge".to_owned(), "bnb-fees:bnb".to_owned()])]
    pub accounts: Vec<String>,
}

impl Config {
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
    let mut exchange = Exchange::new(
        ExchangeConfig {
            seed: config.seed,
            ..ExchangeConfig::default()
        },
        specs,
    );
    let (activity, _marks) = Activity::start(&mut exchange, now_ms());
    let mut sim = Sim::new(exchange, keys);
    sim.publish();
    Ok((Arc::new(Mutex::new(sim)), activity))
}

/// Serves until `shutdown` completes: REST, WebSocket, `/healthz`, and generated activity.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (sim, mut activity) = build(&config)?;
    let driver = {
        let sim = Arc::clone(&sim);
        let per_sec = config.fills_per_sec;
        tokio::spawn(async move {
            if per_sec == 0 {
                return;
            }
            // Ticks of 10 ms, carrying the fraction so any rate is met on average.
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut due: u64 = 0;
            loop {
                tick.tick().await;
                due += u64::from(per_sec);
                let steps = due / 100;
                due %= 100;
                let mut sim = lock(&sim);
                let now = now_ms();
                for _ in 0..steps {
                    activity.step(&mut sim.exchange, now);
                }
                sim.publish();
            }
        })
    };
    let app = router(Arc::clone(&sim)).route("/healthz", get(|| async { "ok" }));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("serve: {e}"));
    driver.abort();
    result
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
