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

/// mimalloc: the collector and the sensor allocate per record; it was faster than the system
/// allocator in `bench_syslog_tcp` (see the collector's examples).
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
