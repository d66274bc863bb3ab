//! Sensor throughput with 1..N worker threads (frames hashed by flow), the capture read into
//! memory once and replayed until each run lasts at least a few seconds. Prints packets/s,
//! Mbit/s, records, peak RSS, the CPU time the process used (reader and workers) and packets
//! per CPU-second, which stays meaningful when other work shares the cores, and the Suricata
//! 8.0.6 figures measured on the same machine class for comparison (from
//! `../shared/corpora/anchors`, when present).
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

/// CPU seconds (user + system) used by all threads of this process so far.
fn cpu_secs() -> Option<f64> {
    cpu_secs_of("/proc/self/stat")
}

/// CPU seconds used by the calling (reader) thread so far.
fn reader_cpu_secs() -> Option<f64> {
    cpu_secs_of("/proc/thread-self/stat")
}

fn cpu_secs_of(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which is in parentheses): utime and stime are the 12th
    // and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The 1-minute load average (other work on the machine).
fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
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
        let load = load_avg();
        let cpu0 = cpu_secs().unwrap_or(0.0);
        let reader0 = reader_cpu_secs().unwrap_or(0.0);
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
        let reader = reader_cpu_secs().unwrap_or(0.0) - reader0;
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs().unwrap_or(0.0) - cpu0;
        let packets: u64 = stats.iter().map(|s| s.packets).sum();
        // Flows hash to workers by address pair: a capture dominated by a few pairs loads one
        // worker more than the others, which bounds what more workers can gain on it.
        let shares: Vec<String> =
            stats.iter().map(|s| format!("{:.0}%", s.packets as f64 * 100.0 / packets.max(1) as f64)).collect();
        println!("workers {n}: packets per worker {}", shares.join(" / "));
        println!(
            "workers {n}: {rounds} replays, {packets} packets in {secs:.2} s = {:.0} packets/s, {:.0} Mbit/s, {} records, peak RSS {:.0} MiB; CPU {cpu:.2} s ({:.2} cores), {:.0} packets per CPU-second (reader thread with worker 0 {:.0} ns, other workers {:.0} ns, per packet of the whole run); load average before {load}",
            packets as f64 / secs,
            (bytes * rounds) as f64 * 8.0 / secs / 1e6,
            records.load(Ordering::Relaxed),
            peak_rss_mib().unwrap_or(0.0),
            cpu / secs,
            packets as f64 / cpu.max(0.01),
            reader * 1e9 / packets.max(1) as f64,
            (cpu - reader) * 1e9 / packets.max(1) as f64,
        );
    }
    println!(
        "Suricata 8.0.6 on the OTRF capture, no rules, 1 thread, this machine class (corpora/anchors/README.md): 297k packets/s, 1,944 Mbit/s, 58 MiB RSS"
    );
    Ok(())
}
