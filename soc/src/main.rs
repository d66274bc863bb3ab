//! `soc`: the Canh Gác binary. One subcommand per component, plus `run`, which composes all
//! of them in one process (in-process bus, SQLite store, API on localhost).
#![forbid(unsafe_code)]

mod cli;
mod components;
mod config;
mod counting;
mod demo;
mod detect_cmd;
mod forwarder_cmd;
mod rules;
mod rules_test;
mod run;
mod sensor_glue;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

/// `--features mimalloc`: the collector parses faster with it (`bench_syslog_tcp`), but the
/// sensor's rule set takes ~50 MiB more memory and matches no faster (`detect_bench`), so the
/// default build keeps the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    telemetry::init_logging(&args.log_format, args.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
