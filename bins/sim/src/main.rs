//! `acctmon-sim`: a Binance USDⓈ-M Futures stand-in. Wiring lives in the library so tests can run it.

use std::process::ExitCode;

use clap::Parser;

/// A Binance USDⓈ-M Futures stand-in: Binance's REST paths and user-data WebSocket over a simulated
/// exchange with generated activity.
#[derive(Parser)]
#[command(name = "acctmon-sim", version, about)]
struct Cli {
    #[command(flatten)]
    config: acctmon_sim::server::Config,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listener = match tokio::net::TcpListener::bind(cli.config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %cli.config.listen, error = %e, "cannot listen");
            return ExitCode::from(2);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, seed = cli.config.seed, accounts = ?cli.config.accounts, "acctmon-sim serving; API keys are sim-key-<account>, secrets sim-secret-<account>");
    let shutdown = async {
        // The first SIGINT or SIGTERM stops serving gracefully.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
    };
    match acctmon_sim::server::run(cli.config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "acctmon-sim failed");
            ExitCode::FAILURE
        }
    }
}
