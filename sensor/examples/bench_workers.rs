//! Sensor throughput with 1..N worker threads (frames hashed by flow), the capture read into
//! memory once and replayed until each run lasts at least a few seconds. Prints packets/s,
//! Mbit/s, records, peak RSS, and the Suricata 8.0.6 figures measured on the same machine
//! class for comparison (from `../shared/corpora/anchors`, when present).
//!
//! `cargo run --release -p soc-sensor --example bench_workers -- <capture> [max_workers] [min_secs]`

use soc_model::Timestamp;
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::decode::LinkType;
use soc_sensor::workers::Workers;
use soc_sensor::{Sensor, SensorOptions};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).ok_or("usage: bench_workers <capture> [max_workers] [min_secs]")?);
    let max_workers: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let min_secs: f64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let mut frames: Vec<(Timestamp, LinkType, Vec<u8>)> = Vec::new();
    read_capture(&path, open_capture(&path)?, |ts, link, f| {
        frames.push((ts, link, f.to_vec()));
        ControlFlow::Continue(())
    })?;
    let bytes: u64 = frames.iter().map(|(_, _, f)| f.len() as u64).sum();
    let span = frames.last().map_or(0, |l| l.0.unix_micros()) - frames.first().map_or(0, |f| f.0.unix_micros()) + 1;
    println!(
        "{}: {} packets, {:.1} MB, read into memory; peak RSS now {:.0} MiB",
        path.display(),
        frames.len(),
        bytes as f64 / 1e6,
        peak_rss_mib().unwrap_or(0.0)
    );
    for n in 1..=max_workers {
        let records = Arc::new(AtomicU64::new(0));
        let sink = records.clone();
        let mut w = Workers::new(
            n,
            |_| Sensor::new(SensorOptions::default()),
            move |b| {
                sink.fetch_add(b.len() as u64, Ordering::Relaxed);
            },
        );
        let t = Instant::now();
        let mut rounds = 0u64;
        // Each replay shifts time forward so flows of one round end before the next begins.
        while rounds == 0 || t.elapsed().as_secs_f64() < min_secs {
            let shift = rounds as i64 * (span + 3_600_000_000);
            for (ts, link, f) in &frames {
                w.process(Timestamp::from_unix_micros(ts.unix_micros() + shift), *link, f);
            }
            rounds += 1;
        }
        let stats = w.finish()?;
        let secs = t.elapsed().as_secs_f64();
        let packets: u64 = stats.iter().map(|s| s.packets).sum();
        println!(
            "workers {n}: {rounds} replays, {packets} packets in {secs:.2} s = {:.0} packets/s, {:.0} Mbit/s, {} records, peak RSS {:.0} MiB",
            packets as f64 / secs,
            (bytes * rounds) as f64 * 8.0 / secs / 1e6,
            records.load(Ordering::Relaxed),
            peak_rss_mib().unwrap_or(0.0)
        );
    }
    println!(
        "Suricata 8.0.6 on the OTRF capture, no rules, 1 thread, this machine class (corpora/anchors/README.md): 297k packets/s, 1,944 Mbit/s, 58 MiB RSS"
    );
    Ok(())
}
