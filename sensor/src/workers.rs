//! Multi-core capture processing: frames are hashed by flow to worker threads, each with its
//! own [`Sensor`] (flow table, reassembly, parsers, detection), like Suricata's workers.
//!
//! The hash is symmetric over the IP address pair ([`flow_hash`]): both directions of a
//! connection, and every fragment of a datagram (which carries no ports), land on the same
//! worker, so no flow state is shared between threads. Frames travel in batches over bounded
//! channels (a slow worker slows the reader instead of growing memory). Because every worker
//! needs the capture clock to time flows out even when it receives no packets, the reader
//! sends each worker the clock ([`Workers::process`] does it every `tick_every`).
//!
//! Per-flow results are the same as with one worker; what spans flows differs in one known
//! way: rule thresholds (`threshold`, `detection_filter`) count per worker, not globally.
//!
//! ```no_run
//! use soc_sensor::{Sensor, SensorOptions, workers::Workers};
//! use std::sync::{Arc, Mutex};
//! let out = Arc::new(Mutex::new(Vec::new()));
//! let sink = out.clone();
//! let mut w = Workers::new(2, |_| Sensor::new(SensorOptions::default()), move |batch| {
//!     sink.lock().unwrap().extend(batch);
//! });
//! // w.process(ts, link, &frame) for every frame, then:
//! let stats = w.finish();
//! # let _ = stats;
//! ```

use crate::decode::LinkType;
use crate::{Sensor, SensorStats};
use soc_model::{Event, Timestamp};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Frames per batch sent to a worker.
pub const BATCH_FRAMES: usize = 256;
/// Batches queued per worker before the reader waits.
pub const QUEUE_BATCHES: usize = 16;

type Frame = (Timestamp, LinkType, Vec<u8>);

enum Msg {
    Frames(Vec<Frame>),
    Tick(Timestamp),
}

/// Offset of the IP header in a frame, and its version, when the link layer is understood.
fn ip_start(link: LinkType, f: &[u8]) -> Option<usize> {
    match link {
        LinkType::Ethernet => {
            let mut off = 12;
            loop {
                let et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
                match et {
                    0x8100 | 0x88a8 | 0x9100 => off += 4,
                    0x0800 | 0x86dd => return Some(off + 2),
                    _ => return None,
                }
            }
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => Some(0),
        LinkType::Null | LinkType::Loop => Some(4),
        LinkType::LinuxSll => Some(16),
        LinkType::LinuxSll2 => Some(20),
        LinkType::Other(_) => None,
    }
}

/// A hash of the frame's IP address pair that is the same in both directions. Frames
/// without IP (or that do not parse) hash to 0 (the first worker), which keeps their
/// counting in one place.
pub fn flow_hash(link: LinkType, frame: &[u8]) -> u64 {
    let Some(ip) = ip_start(link, frame) else { return 0 };
    let Some(&b0) = frame.get(ip) else { return 0 };
    let (a, b) = match b0 >> 4 {
        4 => match (frame.get(ip + 12..ip + 16), frame.get(ip + 16..ip + 20)) {
            (Some(s), Some(d)) => (s, d),
            _ => return 0,
        },
        6 => match (frame.get(ip + 8..ip + 24), frame.get(ip + 24..ip + 40)) {
            (Some(s), Some(d)) => (s, d),
            _ => return 0,
        },
        _ => return 0,
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 32];
    buf[..lo.len()].copy_from_slice(lo);
    buf[16..16 + hi.len()].copy_from_slice(hi);
    xxhash_rust::xxh3::xxh3_64(&buf)
}

/// A pool of sensor workers fed by one reader.
pub struct Workers {
    txs: Vec<SyncSender<Msg>>,
    handles: Vec<JoinHandle<SensorStats>>,
    pending: Vec<Vec<Frame>>,
    last_tick: i64,
    tick_every_us: i64,
}

fn worker(mut sensor: Sensor, rx: Receiver<Msg>, sink: Arc<dyn Fn(Vec<Event>) + Send + Sync>) -> SensorStats {
    let mut out = Vec::with_capacity(4096);
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Frames(frames) => {
                for (ts, link, f) in &frames {
                    sensor.process(*ts, *link, f, &mut out);
                }
            }
            Msg::Tick(ts) => sensor.tick(ts, &mut out),
        }
        if !out.is_empty() {
            sink(std::mem::replace(&mut out, Vec::with_capacity(4096)));
        }
    }
    // The reader is done: end every flow.
    sensor.flush_all(&mut out);
    if !out.is_empty() {
        sink(out);
    }
    sensor.stats()
}

impl Workers {
    /// Starts `n` workers (at least one); `make(i)` builds worker `i`'s sensor; `sink`
    /// receives every worker's records (from the worker threads, in batches).
    pub fn new<M, S>(n: usize, make: M, sink: S) -> Workers
    where
        M: Fn(usize) -> Sensor,
        S: Fn(Vec<Event>) + Send + Sync + 'static,
    {
        let n = n.max(1);
        let sink: Arc<dyn Fn(Vec<Event>) + Send + Sync> = Arc::new(sink);
        let mut txs = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = sync_channel(QUEUE_BATCHES);
            let sensor = make(i);
            let sink = sink.clone();
            handles.push(std::thread::spawn(move || worker(sensor, rx, sink)));
            txs.push(tx);
        }
        Workers {
            txs,
            handles,
            pending: (0..n).map(|_| Vec::with_capacity(BATCH_FRAMES)).collect(),
            last_tick: i64::MIN,
            tick_every_us: 1_000_000,
        }
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.txs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    fn send(&mut self, i: usize) {
        let batch = std::mem::replace(&mut self.pending[i], Vec::with_capacity(BATCH_FRAMES));
        if !batch.is_empty() {
            // A worker that ended can only have panicked; its frames are lost with it and the
            // panic is reported by `finish`.
            let _ = self.txs[i].send(Msg::Frames(batch));
        }
    }

    /// Queues one frame for the worker that owns its flow.
    pub fn process(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) {
        let n = self.txs.len();
        let i = if n == 1 { 0 } else { (flow_hash(link, frame) % n as u64) as usize };
        self.pending[i].push((ts, link, frame.to_vec()));
        if self.pending[i].len() >= BATCH_FRAMES {
            self.send(i);
        }
        let now = ts.unix_micros();
        if self.last_tick == i64::MIN {
            self.last_tick = now;
        } else if now - self.last_tick >= self.tick_every_us {
            self.tick(ts);
        }
    }

    /// Moves every worker's clock to `now` (after the frames queued so far).
    pub fn tick(&mut self, now: Timestamp) {
        self.last_tick = now.unix_micros();
        for i in 0..self.txs.len() {
            self.send(i);
            let _ = self.txs[i].send(Msg::Tick(now));
        }
    }

    /// Sends what is queued, ends every flow and waits for the workers; returns each
    /// worker's counters. A worker that panicked is reported as an error message.
    pub fn finish(mut self) -> Result<Vec<SensorStats>, String> {
        for i in 0..self.txs.len() {
            self.send(i);
        }
        self.txs.clear();
        let mut stats = Vec::new();
        for (i, h) in self.handles.drain(..).enumerate() {
            stats.push(h.join().map_err(|_| format!("sensor worker {i} panicked"))?);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SensorOptions;
    use crate::synth::{self, Host};
    use std::sync::Mutex;

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        synth::udp_frame(&Host::v4(src), sport, &Host::v4(dst), dport, payload)
    }

    #[test]
    fn the_hash_is_the_same_in_both_directions_and_differs_between_hosts() {
        let a = udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, b"x");
        let b = udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 1234, b"y");
        let c = udp([10, 0, 0, 3], [10, 0, 0, 2], 1234, 53, b"x");
        let h = |f: &[u8]| flow_hash(LinkType::Ethernet, f);
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert_eq!(flow_hash(LinkType::Ethernet, b"short"), 0);
    }

    fn run(n: usize, frames: &[(Timestamp, Vec<u8>)]) -> (Vec<String>, u64) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let mut w = Workers::new(
            n,
            |_| Sensor::new(SensorOptions::default()),
            move |b: Vec<Event>| {
                sink.lock().unwrap().extend(b);
            },
        );
        for (ts, f) in frames {
            w.process(*ts, LinkType::Ethernet, f);
        }
        let stats = w.finish().unwrap();
        let packets = stats.iter().map(|s| s.packets).sum();
        let mut flows: Vec<String> = out
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event_type == soc_model::EventType::Flow)
            .map(|e| {
                let f = e.flow.as_ref().unwrap();
                format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?}/{:?}",
                    e.src_ip, e.src_port, e.dest_ip, e.dest_port, e.proto, f.pkts_toserver, f.pkts_toclient
                )
            })
            .collect();
        flows.sort();
        (flows, packets)
    }

    #[test]
    fn several_workers_produce_the_same_flows_as_one() {
        let mut frames = Vec::new();
        for i in 0..200u32 {
            let host = [10, 0, (i % 7) as u8, (i % 13) as u8];
            let ts = Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(i) * 50_000);
            frames.push((ts, udp(host, [8, 8, 8, 8], 40_000 + (i % 5) as u16, 53, b"query")));
            frames.push((ts, udp([8, 8, 8, 8], host, 53, 40_000 + (i % 5) as u16, b"answer")));
        }
        let (one, p1) = run(1, &frames);
        let (three, p3) = run(3, &frames);
        assert_eq!(p1, 400);
        assert_eq!(p3, 400);
        assert!(!one.is_empty());
        assert_eq!(one, three);
    }
}
