//! `acctmon-processor`: see the crate documentation.

use std::process::ExitCode;

use acctmon_processor::Args;
use acctmon_service::shutdown::signal_token;
use acctmon_service::telemetry::init_tracing;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acctmon-processor: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format, &config.log_filter);
    let shutdown = signal_token();
    match acctmon_processor::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "acctmon-processor failed");
            ExitCode::FAILURE
        }
    }
}
