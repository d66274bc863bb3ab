//! `soc detect`: offline Sigma detection over JSON event files (like `soc sensor --pcap` for
//! logs). Files are read and normalized with the collector's parsers, rules are evaluated by
//! the correlator's engine, each detection is written as one JSON line, and the counts per
//! rule are printed.

use anyhow::Context;
use clap::Args;
use soc_correlator::sigma::{EngineKind, SigmaRules};
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Sigma rule files or directories (walked for .yml/.yaml). Repeatable.
    #[arg(long = "sigma", value_name = "PATH", required = true, num_args = 1..)]
    pub sigma: Vec<PathBuf>,
    /// Event files: JSON lines or concatenated JSON objects (Windows events in the evtx,
    /// Winlogbeat or NXLog shape, generic JSON logs), normalized like the collector does.
    #[arg(long = "events", value_name = "FILE", required = true, num_args = 1..)]
    pub events: Vec<PathBuf>,
    /// Write the detections here, one JSON line each.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Sigma engine: `fast` (the correlator's own) or `rsigma` (the reference).
    #[arg(long, default_value = "fast", value_parser = ["fast", "rsigma"])]
    pub engine: String,
}

/// Runs the detection; exit code 0 when everything was read, 1 when a rule or an event was
/// rejected (each one reported on stderr), detections written either way.
pub fn detect(a: DetectArgs) -> anyhow::Result<ExitCode> {
    let engine: EngineKind = a.engine.parse().map_err(anyhow::Error::msg)?;
    let (rules, errors) = SigmaRules::load_with(&a.sigma, engine);
    for e in &errors {
        eprintln!("rule rejected: {e}");
    }
    // Every input is there before any output is written.
    for f in &a.events {
        std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
    }
    let file = std::fs::File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut w = BufWriter::new(file);
    // One file at a time: its events are detected and dropped before the next file is read.
    let mut report = soc_correlator::offline::OfflineReport::default();
    let mut dead = 0usize;
    for f in &a.events {
        let body = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let remote = f.display().to_string();
        let out = soc_collector::ingest::parse_http_body(&body, Some("application/json"), &remote);
        drop(body);
        for d in &out.dead_letters {
            eprintln!("event rejected in {}: {}", f.display(), d.reason);
        }
        dead += out.dead_letters.len();
        let r = soc_correlator::offline::detect(&rules, out.events, &mut w)
            .with_context(|| format!("cannot write {}", a.out.display()))?;
        report.add(r);
    }
    println!(
        "{} rules ({} engine, {} rejected), {} files, {} events ({} rejected), {} detections by {} rules -> {}",
        rules.len(),
        rules.engine_name(),
        errors.len(),
        a.events.len(),
        report.events,
        dead,
        report.detections,
        report.per_rule.len(),
        a.out.display()
    );
    for l in report.lines() {
        println!("{l}");
    }
    Ok(if errors.is_empty() && dead == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
