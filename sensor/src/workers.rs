//! Multi-core capture processing: frames are hashed by flow to worker threads, each with its
//! own [`Sensor`] (flow table, reassembly, parsers, detection), like Suricata's workers.
//!
//! The hash is symmetric over the IP address pair ([`flow_hash`]): both directions of a
//! connection, and every fragment of a datagram (which carries no ports), land on the same
//! worker, so no flow state is shared between threads. Worker 0 is the reader thread itself:
//! it processes the frames of its own flows in place, without a copy, so `n` workers are `n`
//! threads (on a two-core machine, two workers use both cores instead of three threads
//! sharing them). The other workers' frames travel in batches over bounded
//! queues (a slow worker slows the reader instead of growing memory): the reader copies
//! each frame into its worker's current batch, one contiguous buffer of up to
//! [`BATCH_FRAMES`] frames or [`BATCH_BYTES`] bytes, and the worker gives the emptied batch
//! back to be filled again, so after warm-up frames cost one `memcpy` and no allocation. The
//! queues wait on a condition variable rather than spinning: the reader is usually ahead of
//! its workers, and spinning while a queue is full would take CPU from them.
//! Because every worker
//! needs the capture clock to time flows out even when it receives no packets, the reader
//! sends each worker the clock ([`Workers::process`] puts a tick in every worker's batch
//! once per capture-second; [`Workers::tick`] also sends the batches at once).
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
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Frames per batch sent to a worker.
pub const BATCH_FRAMES: usize = 256;
/// Bytes of frame data per batch (a batch is sent when either limit is reached).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches queued per worker before the reader waits.
pub const QUEUE_BATCHES: usize = 8;

/// One entry of a batch: where a frame is, or a clock tick (in order with the frames).
#[derive(Clone, Copy)]
enum Entry {
    Frame { ts: Timestamp, link: LinkType, start: usize, end: usize },
    Tick(Timestamp),
}

/// Frames for one worker: their bytes back to back in one buffer.
struct Batch {
    data: Vec<u8>,
    frames: Vec<Entry>,
}

impl Batch {
    fn new() -> Batch {
        // Room for one largest frame past the limit, so the buffer never grows.
        Batch { data: Vec::with_capacity(BATCH_BYTES + 65_536), frames: Vec::with_capacity(BATCH_FRAMES) }
    }
    fn push(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(frame);
        self.frames.push(Entry::Frame { ts, link, start, end: self.data.len() });
    }
    fn tick(&mut self, ts: Timestamp) {
        self.frames.push(Entry::Tick(ts));
    }
    fn full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }
    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }
}

type Msg = Batch;

/// A bounded queue of messages from the reader to one worker, and the worker's emptied
/// batches on the way back.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
}

#[derive(Default)]
struct QueueState {
    msgs: VecDeque<Msg>,
    free: Vec<Batch>,
    /// The reader is done.
    closed: bool,
    /// The worker ended (normally, or by a panic).
    gone: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`, waiting while the queue is full; returns an emptied batch if the
    /// worker gave one back. A worker that is gone drops the message.
    fn send(&self, msg: Msg) -> Option<Batch> {
        let mut st = self.lock();
        while st.msgs.len() >= QUEUE_BATCHES && !st.gone {
            st = self.not_full.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if !st.gone {
            if st.msgs.is_empty() {
                self.not_empty.notify_one();
            }
            st.msgs.push_back(msg);
        }
        st.free.pop()
    }

    /// The next message (after handing back `done`, an emptied batch); `None` once the
    /// reader closed the queue and it is empty.
    fn recv(&self, done: Option<Batch>) -> Option<Msg> {
        let mut st = self.lock();
        if let Some(b) = done {
            st.free.push(b);
        }
        loop {
            if let Some(m) = st.msgs.pop_front() {
                if st.msgs.len() + 1 == QUEUE_BATCHES {
                    self.not_full.notify_one();
                }
                return Some(m);
            }
            if st.closed {
                return None;
            }
            st = self.not_empty.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
    }
}

/// Marks the worker's queue gone when the worker ends, even by a panic, so the reader never
/// waits for it.
struct Gone(Arc<Queue>);

impl Drop for Gone {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.gone = true;
        st.msgs.clear();
        drop(st);
        self.0.not_full.notify_all();
    }
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
        LinkType::Null | LinkType::Loop | LinkType::Chdlc => Some(4),
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

/// Worker 0, run by the reader thread.
struct Local {
    /// `None` once it panicked (its flows are lost; `finish` reports it).
    sensor: Option<Sensor>,
    out: Vec<Event>,
    frames: usize,
    sink: Arc<dyn Fn(Vec<Event>) + Send + Sync>,
}

impl Local {
    /// Runs `f` on the sensor; a panic (a bug in the sensor or the sink) ends this worker
    /// only, as it would end a worker thread.
    fn run(&mut self, f: impl FnOnce(&mut Sensor, &mut Vec<Event>)) {
        let Some(sensor) = self.sensor.as_mut() else { return };
        let out = &mut self.out;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(sensor, out))).is_err() {
            self.sensor = None;
            self.out.clear();
        }
    }

    /// Hands the records produced so far to the sink.
    fn flush(&mut self) {
        self.frames = 0;
        if self.out.is_empty() || self.sensor.is_none() {
            return;
        }
        let batch = std::mem::replace(&mut self.out, Vec::with_capacity(4096));
        let sink = self.sink.clone();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(batch))).is_err() {
            self.sensor = None;
        }
    }
}

/// A pool of sensor workers fed by one reader.
pub struct Workers {
    local: Local,
    /// Workers 1.. (threads).
    queues: Vec<Arc<Queue>>,
    handles: Vec<JoinHandle<SensorStats>>,
    pending: Vec<Batch>,
    last_tick: i64,
    tick_every_us: i64,
}

fn worker(mut sensor: Sensor, queue: Arc<Queue>, sink: Arc<dyn Fn(Vec<Event>) + Send + Sync>) -> SensorStats {
    let _gone = Gone(queue.clone());
    let mut out = Vec::with_capacity(4096);
    let mut done = None;
    while let Some(mut batch) = queue.recv(done.take()) {
        for e in &batch.frames {
            match *e {
                Entry::Frame { ts, link, start, end } => {
                    if let Some(frame) = batch.data.get(start..end) {
                        sensor.process(ts, link, frame, &mut out);
                    }
                }
                Entry::Tick(ts) => sensor.tick(ts, &mut out),
            }
        }
        batch.clear();
        done = Some(batch);
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
    /// Starts `n` workers (at least one; worker 0 runs in the caller's thread, in
    /// [`Workers::process`]); `make(i)` builds worker `i`'s sensor; `sink` receives every
    /// worker's records (from the worker threads and the caller's, in batches).
    pub fn new<M, S>(n: usize, make: M, sink: S) -> Workers
    where
        M: Fn(usize) -> Sensor,
        S: Fn(Vec<Event>) + Send + Sync + 'static,
    {
        let n = n.max(1);
        let sink: Arc<dyn Fn(Vec<Event>) + Send + Sync> = Arc::new(sink);
        let local = Local { sensor: Some(make(0)), out: Vec::with_capacity(4096), frames: 0, sink: sink.clone() };
        let mut queues = Vec::with_capacity(n - 1);
        let mut handles = Vec::with_capacity(n - 1);
        for i in 1..n {
            let queue = Arc::new(Queue::default());
            let sensor = make(i);
            let sink = sink.clone();
            let q = queue.clone();
            handles.push(std::thread::spawn(move || worker(sensor, q, sink)));
            queues.push(queue);
        }
        Workers {
            local,
            queues,
            handles,
            pending: (1..n).map(|_| Batch::new()).collect(),
            last_tick: i64::MIN,
            tick_every_us: 1_000_000,
        }
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.queues.len() + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }

    fn send(&mut self, i: usize) {
        if self.pending[i].frames.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.pending[i], Batch { data: Vec::new(), frames: Vec::new() });
        // A worker that ended can only have panicked; its frames are lost with it and the
        // panic is reported by `finish`. The next batch to fill is one the worker gave back,
        // or a new one while all are in flight (at most QUEUE_BATCHES + 2 per worker exist:
        // queued, in the worker, being filled).
        self.pending[i] = self.queues[i].send(batch).unwrap_or_else(Batch::new);
    }

    /// Processes one frame (worker 0) or queues it for the worker that owns its flow.
    pub fn process(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) {
        let n = self.queues.len() + 1;
        let w = if n == 1 { 0 } else { (flow_hash(link, frame) % n as u64) as usize };
        if w == 0 {
            self.local.run(|s, out| s.process(ts, link, frame, out));
            self.local.frames += 1;
            if self.local.frames >= BATCH_FRAMES {
                self.local.flush();
            }
        } else {
            let i = w - 1;
            self.pending[i].push(ts, link, frame);
            if self.pending[i].full() {
                self.send(i);
            }
        }
        let now = ts.unix_micros();
        if self.last_tick == i64::MIN {
            self.last_tick = now;
        } else if now - self.last_tick >= self.tick_every_us {
            // In the batches, not sent on its own: captures whose packets are spread over
            // many seconds would otherwise send a few frames per batch.
            self.last_tick = now;
            self.local.run(|s, out| s.tick(ts, out));
            for i in 0..n - 1 {
                self.pending[i].tick(ts);
                if self.pending[i].full() {
                    self.send(i);
                }
            }
        }
    }

    /// Moves every worker's clock to `now` (after the frames queued so far) and sends what
    /// is queued (for a live capture whose link is quiet).
    pub fn tick(&mut self, now: Timestamp) {
        self.last_tick = now.unix_micros();
        self.local.run(|s, out| s.tick(now, out));
        self.local.flush();
        for i in 0..self.queues.len() {
            self.pending[i].tick(now);
            self.send(i);
        }
    }

    /// Sends what is queued, ends every flow and waits for the workers; returns each
    /// worker's counters. A worker that panicked is reported as an error message.
    pub fn finish(mut self) -> Result<Vec<SensorStats>, String> {
        for i in 0..self.queues.len() {
            self.send(i);
            self.queues[i].close();
        }
        // Worker 0 ends its flows while the others end theirs.
        self.local.run(|s, out| s.flush_all(out));
        self.local.flush();
        let mut stats = Vec::new();
        let mut failed = None;
        match self.local.sensor.take() {
            Some(s) => stats.push(s.stats()),
            None => failed = Some("sensor worker 0 panicked".to_string()),
        }
        for (i, h) in self.handles.drain(..).enumerate() {
            match h.join() {
                Ok(s) => stats.push(s),
                Err(_) => {
                    failed.get_or_insert_with(|| format!("sensor worker {} panicked", i + 1));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

impl Drop for Workers {
    /// Without [`Workers::finish`]: the workers end their flows and stop.
    fn drop(&mut self) {
        self.local.run(|s, out| s.flush_all(out));
        self.local.flush();
        for q in &self.queues {
            q.close();
        }
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
                    "{:?} {:?} {:?} {:?} {:?} {:?}/{:?} {:?}/{:?}",
                    e.src_ip,
                    e.src_port,
                    e.dest_ip,
                    e.dest_port,
                    e.proto,
                    f.pkts_toserver,
                    f.pkts_toclient,
                    f.bytes_toserver,
                    f.bytes_toclient
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

    #[test]
    fn a_worker_that_panics_is_reported_and_never_blocks_the_reader() {
        let mut w = Workers::new(1, |_| Sensor::new(SensorOptions::default()), |_b: Vec<Event>| panic!("sink failed"));
        let q = synth::dns_query(7, "example.org", 1);
        // Far more batches than the queue holds: the reader would wait forever on a dead worker.
        for i in 0..(BATCH_FRAMES * QUEUE_BATCHES * 4) as u32 {
            let ts = Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(i));
            w.process(ts, LinkType::Ethernet, &udp([10, 0, 0, 1], [10, 0, 0, 53], 40_000, 53, &q));
        }
        assert_eq!(w.finish().unwrap_err(), "sensor worker 0 panicked");
    }

    #[test]
    fn batch_buffers_are_reused_without_mixing_frames() {
        // 3,000 frames of about 1.4 kB: many more batches (by bytes) than ever exist at once,
        // so buffers come back and are filled again; payload sizes vary so that a frame read
        // from the wrong place would change a flow's counts.
        let mut frames = Vec::new();
        for i in 0..3000u32 {
            let host = [10, 1, (i % 11) as u8, (i % 17) as u8];
            let ts = Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(i) * 1_000);
            let payload = vec![b'p'; 1000 + (i % 400) as usize];
            frames.push((ts, udp(host, [192, 0, 2, 1], 30_000 + (i % 3) as u16, 9999, &payload)));
        }
        let (one, p1) = run(1, &frames);
        let (two, p2) = run(2, &frames);
        assert_eq!((p1, p2), (3000, 3000));
        assert_eq!(one, two);
        let bytes: u64 = frames.iter().map(|(_, f)| f.len() as u64).sum();
        assert!(bytes > 12 * BATCH_BYTES as u64);
    }
}
