//! Seed-corpus extractor: reads captures with the sensor's own reader and writes inputs
//! for every fuzz target under `<out>/<target>/` (file name = hash of the content).
//!
//! `cargo run --release --example seed -- <out-dir> <capture>...`
//!
//! - `decode`: each distinct frame as captured.
//! - `sensor_stream`: runs of up to 24 consecutive frames of one capture, in the target's
//!   format (options byte with the link type, then `[dt][len16][frame]`).
//! - `dns`: UDP/53 (and 5353) payloads.
//! - `tls`/`http`: per TCP flow on 443/80 (and 8080/8443), its payloads in capture order as
//!   `[dir][len16][bytes]` chunks, up to 16 KiB per flow.

use soc_sensor::capture::offline::{open_capture, read_capture};
use soc_sensor::decode::{DecodeOptions, Decoded, LinkType, Transport, decode};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

const MAX_PER_CAPTURE: usize = 400;
const RUN_FRAMES: usize = 24;
const FLOW_BYTES: usize = 16 * 1024;
/// Packets read per capture at most (the merged OTRF capture is large).
const MAX_PACKETS: usize = 50_000;

struct Out {
    dir: PathBuf,
    seen: HashSet<u64>,
    counts: HashMap<&'static str, usize>,
}

impl Out {
    fn write(&mut self, target: &'static str, data: &[u8]) {
        let mut h = DefaultHasher::new();
        target.hash(&mut h);
        data.hash(&mut h);
        let k = h.finish();
        if !self.seen.insert(k) {
            return;
        }
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d).expect("create corpus dir");
        std::fs::write(d.join(format!("{k:016x}")), data).expect("write seed");
        *self.counts.entry(target).or_default() += 1;
    }
}

fn link_code(link: LinkType) -> Option<u8> {
    match link {
        LinkType::Ethernet => Some(0),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => Some(1),
        LinkType::LinuxSll => Some(2),
        LinkType::Null => Some(3),
        _ => None,
    }
}

fn chunk(buf: &mut Vec<u8>, hdr: u8, data: &[u8]) {
    let data = &data[..data.len().min(u16::MAX as usize)];
    buf.push(hdr);
    buf.extend_from_slice(&(data.len() as u16).to_be_bytes());
    buf.extend_from_slice(data);
}

fn one(out: &mut Out, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut frames_written = 0usize;
    let mut run: Vec<u8> = Vec::new();
    let mut run_n = 0usize;
    let mut last_ts: Option<i64> = None;
    let mut packets = 0usize;
    // flow (client addr/port, server addr/port) -> (target, chunks)
    let mut flows: HashMap<String, (&'static str, Vec<u8>)> = HashMap::new();
    read_capture(path, open_capture(path)?, |ts, link, frame| {
        let Some(code) = link_code(link) else { return ControlFlow::Break(()) };
        packets += 1;
        if packets > MAX_PACKETS {
            return ControlFlow::Break(());
        }
        if frames_written < MAX_PER_CAPTURE {
            out.write("decode", frame);
            frames_written += 1;
        }
        // sensor_stream runs.
        if run.is_empty() {
            run.push(code);
        }
        let us = ts.unix_micros();
        let dt = last_ts.map_or(0, |l| ((us - l).max(0) / 100_000).min(255)) as u8;
        last_ts = Some(us);
        run.push(dt);
        let f = &frame[..frame.len().min(u16::MAX as usize)];
        run.extend_from_slice(&(f.len() as u16).to_be_bytes());
        run.extend_from_slice(f);
        run_n += 1;
        if run_n == RUN_FRAMES {
            out.write("sensor_stream", &run);
            run.clear();
            run_n = 0;
        }
        // App-layer payloads.
        if let Ok(Decoded::Ip(p)) = decode(link, frame, DecodeOptions::default()) {
            if p.payload.is_empty() {
                return ControlFlow::Continue(());
            }
            match p.transport {
                Transport::Udp(_) => {
                    let (s, d) = (p.src_port(), p.dst_port());
                    if [53, 5353].contains(&s) || [53, 5353].contains(&d) {
                        out.write("dns", p.payload);
                    }
                }
                Transport::Tcp(_) => {
                    let (s, d) = (p.src_port(), p.dst_port());
                    let pick = |port: u16| match port {
                        443 | 8443 => Some("tls"),
                        80 | 8080 => Some("http"),
                        _ => None,
                    };
                    let (target, dir, key) = if let Some(t) = pick(d) {
                        (t, 0u8, format!("{}:{s}-{}:{d}", p.src, p.dst))
                    } else if let Some(t) = pick(s) {
                        (t, 1u8, format!("{}:{d}-{}:{s}", p.dst, p.src))
                    } else {
                        return ControlFlow::Continue(());
                    };
                    let e = flows.entry(key).or_insert_with(|| (target, Vec::new()));
                    if e.1.len() < FLOW_BYTES {
                        chunk(&mut e.1, dir, p.payload);
                    }
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    })?;
    if run_n > 0 {
        out.write("sensor_stream", &run);
    }
    let mut flows: Vec<_> = flows.into_values().collect();
    flows.sort_by(|a, b| a.1.cmp(&b.1));
    for (target, buf) in flows.into_iter().take(MAX_PER_CAPTURE) {
        out.write(target, &buf);
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: seed <out-dir> <capture>...");
        std::process::exit(2);
    }
    let mut out = Out { dir: PathBuf::from(&args[1]), seen: HashSet::new(), counts: HashMap::new() };
    for a in &args[2..] {
        if let Err(e) = one(&mut out, Path::new(a)) {
            eprintln!("{a}: {e}");
        }
    }
    let mut c: Vec<_> = out.counts.into_iter().collect();
    c.sort();
    for (t, n) in c {
        println!("{t}: {n} seeds");
    }
}
