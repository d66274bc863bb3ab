//! Throughput of the sensor core alone: the capture is read into memory once, then run
//! through a fresh `Sensor` several times (no I/O, no JSON).
//!
//! `cargo run --release -p soc-sensor --example bench -- <capture> [rounds] [overlap_check_bytes]`
//!
//! The best round is reported, which hides most interference from other work on the machine.

use soc_model::Timestamp;
use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::decode::LinkType;
use soc_sensor::{Sensor, SensorOptions};
use std::ops::ControlFlow;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).ok_or("usage: bench <capture> [rounds]")?);
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let mut opts = SensorOptions::default();
    if let Some(n) = args.get(3) {
        opts.stream.overlap_check_bytes = n.parse()?;
    }
    let mut frames: Vec<(Timestamp, LinkType, Vec<u8>)> = Vec::new();
    read_capture(&path, open_capture(&path)?, |ts, link, f| {
        frames.push((ts, link, f.to_vec()));
        ControlFlow::Continue(())
    })?;
    let mut best = f64::MAX;
    let mut records = 0;
    for _ in 0..rounds {
        let mut sensor = Sensor::new(opts.clone());
        let mut out = Vec::with_capacity(8192);
        let t = Instant::now();
        for (ts, link, f) in &frames {
            sensor.process(*ts, *link, f, &mut out);
            if out.len() > 4096 {
                records += out.len();
                out.clear();
            }
        }
        sensor.flush_all(&mut out);
        records += out.len();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} packets; best of {rounds}: {:.4} s = {:.0} packets/s ({} records per round)",
        frames.len(),
        best,
        frames.len() as f64 / best,
        records / rounds.max(1)
    );
    Ok(())
}
