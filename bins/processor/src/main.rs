//! `acctmon-processor`: see the crate documentation.

use std::process::ExitCode;

use acctmon_processor::Args;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: acctmon_service::Allocator = acctmon_service::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Args::parse().load();
    acctmon_service::process::serve("acctmon-processor", config, acctmon_processor::run).await
}
