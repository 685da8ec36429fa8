//! `acctmon`: the operator's command line. Wiring lives in the library so tests can call it.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: acctmon_service::Allocator = acctmon_service::Allocator;

fn main() -> ExitCode {
    let cli = acctmon_cli::Cli::parse();
    match acctmon_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("acctmon: {e:#}");
            ExitCode::from(2)
        }
    }
}
