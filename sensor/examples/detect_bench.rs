//! Rule-engine benchmark: loads Suricata rule files (cold: parse + compile + prefilters), then
//! runs the capture through a sensor with that detector, single-threaded: once read from the
//! file as it goes (as Suricata reads a pcap: the peak RSS of that pass is the figure to set
//! against Suricata's), then the timed rounds over the capture held in memory (so the rounds
//! time the engine, not the decompression; that peak RSS also counts the decoded capture).
//! Prints the load time, the RSS before and after loading, the prefilter's size, the peak RSS
//! of the streaming pass, packets/s, Mbit/s, the peak RSS with the capture in memory and the
//! alert counts, and the best round's thread CPU time with the load average (on a shared
//! machine the wall time also counts the time other processes held the core). The alert count
//! of the rounds is that of the last round: the detector's state (thresholds, flowbits) carries
//! over; the streaming pass runs first, on a fresh detector.
//!
//! Both passes serialize every record the sensor emits (alert, flow, dns, http, tls, anomaly,
//! fileinfo, smb, ...) as EVE JSON lines, as Suricata's run writes its `eve.json`: the streaming
//! pass into a file in the temporary directory (removed afterwards), the rounds into a sink (the
//! serialization is timed, not the disk). `--no-eve` leaves the serialization out (the engine
//! alone).
//!
//! `cargo run --release -p soc-sensor --example detect_bench -- <capture> <rules dir or file>... [--rounds N] [--no-eve]`
//! (`--rounds 0`: load the rules only, to profile the load).

use soc_model::{EventType, Timestamp};
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::decode::LinkType;
use soc_sensor::detect::{Classifications, DetectorBuilder};
use soc_sensor::eve::EveWriter;
use soc_sensor::{Sensor, SensorOptions};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// CPU time of this thread so far (Linux scheduler statistics), in seconds: on a shared machine
/// the wall time of a round also counts the time other processes had the core.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// CPU time of the whole process so far (every thread; user and system), in seconds, at the
/// scheduler tick's resolution (10 ms).
fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the fields after the command name, which is in parentheses
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 3usize;
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args.get(i + 1).ok_or("--rounds needs a number")?.parse()?;
        args.drain(i..=i + 1);
    }
    let eve = match args.iter().position(|a| a == "--no-eve") {
        Some(i) => {
            args.remove(i);
            false
        }
        None => true,
    };
    let usage = "usage: detect_bench <capture> <rules dir or file>... [--rounds N] [--no-eve]";
    let capture = PathBuf::from(args.first().ok_or(usage)?);
    let mut files: Vec<PathBuf> = Vec::new();
    let mut classification = None;
    for a in args.iter().skip(1) {
        let p = PathBuf::from(a);
        if p.is_dir() {
            let mut fs: Vec<PathBuf> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "rules"))
                .collect();
            fs.sort();
            files.extend(fs);
            if p.join("classification.config").exists() {
                classification = Some(p.join("classification.config"));
            }
        } else {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(usage.into());
    }
    let rss_start = status_kib("VmRSS:");
    let cpu0 = process_cpu_secs();
    let t0 = Instant::now();
    let classes = match &classification {
        Some(c) => Classifications::load(c)?,
        None => Classifications::new(),
    };
    let mut b = DetectorBuilder::new().classifications(classes);
    b.add_files(&files);
    let compiled = t0.elapsed();
    let (det, errors) = b.build();
    let load = t0.elapsed();
    let load_cpu = cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a);
    let det = Arc::new(det);
    println!(
        "rules: {} files, {} loaded, {} errors; load (parse+compile+prefilters): {:.3} s (read, parse, compile {:.3} s; \
         build {:.3} s); CPU time of the load, both threads: {}",
        files.len(),
        det.len(),
        errors.len(),
        load.as_secs_f64(),
        compiled.as_secs_f64(),
        (load - compiled).as_secs_f64(),
        load_cpu.map_or("?".to_string(), |c| format!("{c:.2} s"))
    );
    println!(
        "RSS: {} MiB before loading, {} MiB with the rules loaded (peak {} MiB); rule structs {:.1} MiB ({} bytes each)",
        mib(rss_start),
        mib(status_kib("VmRSS:")),
        mib(peak_rss_kib()),
        (det.len() * std::mem::size_of::<soc_sensor::detect::CompiledRule>()) as f64 / (1024.0 * 1024.0),
        std::mem::size_of::<soc_sensor::detect::CompiledRule>()
    );
    let st = det.prefilter_stats();
    println!(
        "prefilter: {} groups, {} automata, {} patterns ({:.1} MiB), {} rules by address, {} rules always checked",
        st.groups,
        st.automata,
        st.patterns,
        st.memory as f64 / (1024.0 * 1024.0),
        st.by_addr,
        st.always
    );

    if rounds == 0 {
        // load only (for profiling the load)
        return Ok(());
    }
    // the capture read from the file as it goes, as Suricata does, EVE written to a file
    let (mut n_stream, mut alerts_stream) = (0usize, 0usize);
    let eve_path = std::env::temp_dir().join(format!("detect_bench-{}.eve.json", std::process::id()));
    let (stream_wall, stream_cpu, eve_records, eve_bytes) = {
        let mut sensor = Sensor::new(SensorOptions::default()).with_detector(det.clone());
        let mut out = Vec::with_capacity(8192);
        let mut writer = if eve { Some(EveWriter::create(&eve_path)?) } else { None };
        let mut drain = |out: &mut Vec<soc_model::Event>| -> std::io::Result<usize> {
            if let Some(w) = writer.as_mut() {
                w.write_all(out)?;
            }
            let n = out.iter().filter(|e| e.event_type == EventType::Alert).count();
            out.clear();
            Ok(n)
        };
        let t = Instant::now();
        let c0 = thread_cpu_secs();
        let mut failed = None;
        read_capture(&capture, open_capture(&capture)?, |ts, link, f| {
            sensor.process(ts, link, f, &mut out);
            n_stream += 1;
            if out.len() > 4096 {
                match drain(&mut out) {
                    Ok(n) => alerts_stream += n,
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        sensor.flush_all(&mut out);
        alerts_stream += drain(&mut out)?;
        let (records, written) = match writer {
            Some(mut w) => {
                w.flush()?;
                let records = w.written();
                drop(w);
                (records, std::fs::metadata(&eve_path).map_or(0, |m| m.len()))
            }
            None => (0, 0),
        };
        let cpu = c0.zip(thread_cpu_secs()).map(|(a, b)| b - a);
        (t.elapsed().as_secs_f64(), cpu, records, written)
    };
    let _ = std::fs::remove_file(&eve_path);
    println!(
        "streaming pass (capture read and decompressed from the file as it goes{}): {n_stream} packets in {stream_wall:.3} s \
         = {:.0} packets/s (thread CPU time {}); alerts {alerts_stream}; peak RSS {} MiB",
        if eve {
            format!(", {eve_records} EVE records = {:.1} MiB written to a file", eve_bytes as f64 / 1048576.0)
        } else {
            String::new()
        },
        n_stream as f64 / stream_wall,
        stream_cpu.map_or("?".to_string(), |c| format!("{c:.3} s = {:.0} packets/s", n_stream as f64 / c)),
        mib(peak_rss_kib())
    );

    let mut frames: Vec<(Timestamp, LinkType, Vec<u8>)> = Vec::new();
    read_capture(&capture, open_capture(&capture)?, |ts, link, f| {
        frames.push((ts, link, f.to_vec()));
        ControlFlow::Continue(())
    })?;
    let bytes: usize = frames.iter().map(|f| f.2.len()).sum();

    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut alerts = 0usize;
    // (one output vector for all rounds: the records are drained every 4096)
    let mut out = Vec::with_capacity(8192);
    for _ in 0..rounds {
        // each round starts from the state of freshly loaded rules (thresholds, hostbits)
        det.reset_state();
        let mut sensor = Sensor::new(SensorOptions::default()).with_detector(det.clone());
        let mut writer = eve.then(|| EveWriter::new(std::io::sink()));
        let mut drain = |out: &mut Vec<soc_model::Event>| -> std::io::Result<usize> {
            if let Some(w) = writer.as_mut() {
                w.write_all(out)?;
            }
            let n = out.iter().filter(|e| e.event_type == EventType::Alert).count();
            out.clear();
            Ok(n)
        };
        let mut n = 0usize;
        let t = Instant::now();
        let c0 = thread_cpu_secs();
        for (ts, link, f) in &frames {
            sensor.process(*ts, *link, f, &mut out);
            if out.len() > 4096 {
                n += drain(&mut out)?;
            }
        }
        sensor.flush_all(&mut out);
        n += drain(&mut out)?;
        best = best.min(t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c0, thread_cpu_secs()) {
            best_cpu = best_cpu.min(b - a);
        }
        alerts = n;
    }
    println!(
        "{} packets, {} bytes held in memory{}; best of {rounds}: {:.3} s = {:.0} packets/s, {:.1} Mbit/s; alerts {alerts}; peak RSS {} MiB with the capture in memory",
        frames.len(),
        bytes,
        if eve { ", EVE JSON serialized" } else { ", no EVE output" },
        best,
        frames.len() as f64 / best,
        bytes as f64 * 8.0 / best / 1e6,
        mib(peak_rss_kib())
    );
    if best_cpu < f64::MAX {
        println!(
            "CPU time of the best round: {best_cpu:.3} s = {:.0} packets/s, {:.1} Mbit/s (load average: {})",
            frames.len() as f64 / best_cpu,
            bytes as f64 * 8.0 / best_cpu / 1e6,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}
