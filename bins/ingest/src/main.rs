//! `acctmon-ingest`: see the crate documentation.

use std::process::ExitCode;

use acctmon_ingest::Args;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: acctmon_service::Allocator = acctmon_service::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Args::parse().load();
    acctmon_service::process::serve("acctmon-ingest", config, acctmon_ingest::run).await
}
