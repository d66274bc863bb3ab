//! Runs a capture file through the sensor and writes EVE JSON lines.
//!
//! `cargo run --release -p soc-sensor --example pcap2eve -- <capture> [eve.json]`
//! (without an output file, only the summary is printed: useful for timing).

use soc_sensor::{EveWriter, SensorOptions, run_offline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args.next().ok_or("usage: pcap2eve <capture> [eve.json]")?;
    let output = args.next();
    let opts = SensorOptions { sensor_name: "pcap2eve".into(), ..Default::default() };
    let summary = match output {
        Some(path) => {
            let mut w = EveWriter::create(&path)?;
            let s = run_offline(&input, opts, |batch| w.write_all(&batch))?;
            w.flush()?;
            s
        }
        None => run_offline(&input, opts, |_batch| Ok::<(), std::io::Error>(()))?,
    };
    println!(
        "{} packets, {} records in {:.3} s ({:.0} packets/s){}",
        summary.capture.packets,
        summary.records,
        summary.elapsed.as_secs_f64(),
        summary.packets_per_sec(),
        summary.capture.error.as_deref().map(|e| format!("; capture error: {e}")).unwrap_or_default()
    );
    println!("{}", serde_json::to_string_pretty(&summary.stats.to_json())?);
    Ok(())
}
