//! TCP reassembly: one in-order byte stream per direction, with bounded memory.
//!
//! In-order segments are passed through without copying. Segments that arrive ahead of a
//! hole are copied into a per-direction queue until the hole fills; when the peer acknowledges
//! bytes that never arrived, when the sender's FIN shows the hole will not fill, or when the
//! queue is full, the hole is reported as a gap ([`StreamChunk::Gap`]) and delivery resumes
//! after it. Every gap sets the direction's [`Stream::has_gap`] flag, which the flow record
//! carries as Suricata does (`tcp.ts_gap` / `tcp.tc_gap`).
//!
//! As in Suricata, a hole the peer acknowledged is given up when an acknowledgement is
//! processed, not when the segment after the hole arrives; and a segment that ends before
//! the peer's acknowledgement is a spurious retransmission and ignored, unless that
//! acknowledgement covers bytes never seen (the furthest segment end seen, in order or not).
//!
//! # Overlap policy: first
//!
//! Bytes that arrived first win, for every overlap: a retransmission (or any segment) that
//! covers bytes already delivered or already queued never replaces them, only the bytes it
//! adds beyond them are used. This is Suricata's `first` OS policy. Suricata's default
//! (`host-os-policy` default `bsd`) differs in one case: a later segment that starts
//! *before* a queued, not yet delivered segment and covers it replaces those bytes. The
//! first policy is used everywhere here because bytes are delivered as soon as they are in
//! order (not when they are acknowledged), so a later copy of delivered bytes can never be
//! used anyway; one rule for queued and delivered bytes keeps what the parsers see
//! predictable. (The receiving host, too, keeps the first in-order copy it accepted.) For
//! a retransmission of bytes not yet acknowledged, Suricata's default keeps the first copy
//! too (suricata-verify `eve-overlap-payload-01` and `-04-partial-overlap`: "GOOD" then
//! "EVIL"/"XXX" over it, the stream holds "GOOD").
//!
//! Overlaps are counted ([`ReassemblyCounters::overlaps`], Suricata's `tcp.overlap`); an
//! overlap whose bytes differ from the bytes kept (the classic evasion: a first copy that
//! never reached the host, e.g. by a short TTL) is counted separately
//! ([`ReassemblyCounters::overlap_diff_data`], Suricata's `tcp.overlap_diff_data` and the
//! `stream.reassembly_overlap_different_data` event). Comparing a retransmission with bytes
//! already delivered needs those bytes: each direction keeps the last
//! [`StreamConfig::overlap_check_bytes`] delivered bytes that the peer has not acknowledged
//! yet (a ring, charged to the memcap; 0 switches the comparison off, overlaps are still
//! counted).
//!
//! # Memory limits
//!
//! - **Per flow**: each direction queues at most [`StreamConfig::max_ooo_bytes`] bytes and
//!   [`StreamConfig::max_ooo_segments`] segments; beyond that, the oldest hole is given up
//!   (reported as a gap) and delivery resumes after it.
//! - **Global** ([`Reassembly::memcap`], shared by all flows of one sensor; Suricata's
//!   `stream.reassembly.memcap`): the bytes copied by reassembly (queued segments and the
//!   overlap-check rings). A segment whose copy would exceed it is not stored and counted
//!   ([`ReassemblyCounters::memcap_drops`], Suricata's `tcp.segment_memcap_drop`): its bytes
//!   are treated as lost, so the direction later reports a gap over them, exactly as if the
//!   packet had not been captured. A ring that cannot be allocated only disables the
//!   comparison for that direction.
//! - **Depth** ([`StreamConfig::depth`], Suricata's `stream.reassembly.depth`, default
//!   1 MiB, 0 = unlimited): after that many bytes of a direction (delivered or lost), the
//!   direction stops feeding the app layer and stops queueing; sequence numbers are still
//!   followed (so the other direction is not held) and the flow keeps being counted. Like
//!   Suricata, the parser is not told: transactions still open are logged when the flow
//!   ends, and the flow record is written as usual. Counted once per direction
//!   ([`ReassemblyCounters::depth_reached`], Suricata's `tcp.stream_depth_reached`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Default queued out-of-order bytes per direction before giving up on a hole.
pub const MAX_OOO_BYTES: usize = 256 * 1024;
/// Default queued out-of-order segments per direction before giving up on a hole.
pub const MAX_OOO_SEGMENTS: usize = 128;
/// Default reassembly depth per direction (Suricata's `stream.reassembly.depth: 1mb`).
pub const DEFAULT_DEPTH: u64 = 1024 * 1024;
/// Default global memcap (Suricata's `stream.reassembly.memcap: 256mb`).
pub const DEFAULT_MEMCAP: usize = 256 * 1024 * 1024;
/// Default size of the per-direction ring of delivered, unacknowledged bytes.
pub const DEFAULT_OVERLAP_CHECK: usize = 4096;

/// Reassembly limits (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Global memcap of one sensor instance, in bytes.
    pub memcap: usize,
    /// Out-of-order bytes queued per direction.
    pub max_ooo_bytes: usize,
    /// Out-of-order segments queued per direction.
    pub max_ooo_segments: usize,
    /// Bytes per direction fed to the app layer (0: unlimited).
    pub depth: u64,
    /// Delivered, unacknowledged bytes kept per direction to compare retransmissions with
    /// (rounded up to a power of two; 0: no comparison).
    pub overlap_check_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            memcap: DEFAULT_MEMCAP,
            max_ooo_bytes: MAX_OOO_BYTES,
            max_ooo_segments: MAX_OOO_SEGMENTS,
            depth: DEFAULT_DEPTH,
            overlap_check_bytes: DEFAULT_OVERLAP_CHECK,
        }
    }
}

impl StreamConfig {
    /// The limits of one of `n` sensor instances sharing a total memcap (workers).
    pub fn per_instance(&self, n: usize) -> StreamConfig {
        StreamConfig { memcap: self.memcap / n.max(1), ..*self }
    }
}

/// Counters of the reassembly of one sensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Holes reported to the app layer, and the bytes they covered.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments that overlapped bytes already delivered (and not yet acknowledged) or queued.
    pub overlaps: u64,
    /// Overlaps whose bytes differ from the bytes kept.
    pub overlap_diff_data: u64,
    /// Segments not stored because the memcap was reached.
    pub memcap_drops: u64,
    /// Directions that reached the reassembly depth.
    pub depth_reached: u64,
    /// Bytes held by reassembly now.
    pub memuse: u64,
}

/// State shared by every stream of one sensor: limits, memory in use, counters. The sensor
/// owning it is single-threaded; atomics only make it `Send + Sync`.
#[derive(Debug, Default)]
pub struct Reassembly {
    cfg: StreamConfig,
    used: AtomicUsize,
    gaps: AtomicU64,
    gap_bytes: AtomicU64,
    overlaps: AtomicU64,
    overlap_diff: AtomicU64,
    memcap_drops: AtomicU64,
    depth_reached: AtomicU64,
}

impl Reassembly {
    pub fn new(cfg: StreamConfig) -> Arc<Reassembly> {
        let overlap_check_bytes = match cfg.overlap_check_bytes {
            0 => 0,
            n => n.next_power_of_two(),
        };
        Arc::new(Reassembly { cfg: StreamConfig { overlap_check_bytes, ..cfg }, ..Default::default() })
    }
    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }
    pub fn memcap(&self) -> usize {
        self.cfg.memcap
    }
    /// Bytes held now.
    pub fn memuse(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
    pub fn counters(&self) -> ReassemblyCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReassemblyCounters {
            gaps: l(&self.gaps),
            gap_bytes: l(&self.gap_bytes),
            overlaps: l(&self.overlaps),
            overlap_diff_data: l(&self.overlap_diff),
            memcap_drops: l(&self.memcap_drops),
            depth_reached: l(&self.depth_reached),
            memuse: self.memuse() as u64,
        }
    }
    /// Segments not stored because the memcap was reached (as [`ReassemblyCounters::memcap_drops`]).
    pub fn memcap_drops(&self) -> u64 {
        self.memcap_drops.load(Ordering::Relaxed)
    }
    fn reserve(&self, n: usize) -> bool {
        let used = self.used.load(Ordering::Relaxed);
        if used.saturating_add(n) > self.cfg.memcap {
            return false;
        }
        self.used.store(used + n, Ordering::Relaxed);
        true
    }
    fn release(&self, n: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used.saturating_sub(n), Ordering::Relaxed);
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// What a stream delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamChunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were lost.
    Gap(u32),
}

/// One direction of a TCP connection.
#[derive(Debug)]
pub struct Stream {
    shared: Arc<Reassembly>,
    next: Option<u32>,
    /// Queued bytes, never overlapping one another, all after `next`.
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
    /// Highest sequence number the peer acknowledged.
    acked: Option<u32>,
    /// Furthest end of any segment seen, in order or not.
    right_edge: Option<u32>,
    fin_seq: Option<u32>,
    /// Hold delivery until the other direction reaches this sequence number (its bytes that
    /// our sender had already received when it sent what we hold).
    wait: Option<u32>,
    eof: bool,
    eof_reported: bool,
    /// Ring of the last delivered bytes: byte `s` lives at `ring[s & (len - 1)]`; valid for
    /// `[ring_lo, next)`. Empty: not allocated.
    ring: Vec<u8>,
    ring_lo: u32,
    /// Bytes of the stream passed so far (delivered or lost), for the depth.
    offset: u64,
    depth_reached: bool,
    /// A gap was reported and no byte delivered since; `data_after_gap`: bytes were
    /// delivered after a gap.
    gap_pending: bool,
    data_after_gap: bool,
    /// Bytes delivered, gaps reported and bytes lost in gaps.
    pub delivered: u64,
    pub gaps: u32,
    pub gap_bytes: u64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream::new(Reassembly::new(StreamConfig::default()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.release(self.ooo_bytes + self.ring.len());
    }
}

#[inline]
fn rel(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl Stream {
    pub fn new(shared: Arc<Reassembly>) -> Stream {
        Stream {
            shared,
            next: None,
            ooo: Vec::new(),
            ooo_bytes: 0,
            acked: None,
            right_edge: None,
            fin_seq: None,
            wait: None,
            eof: false,
            eof_reported: false,
            ring: Vec::new(),
            ring_lo: 0,
            offset: 0,
            depth_reached: false,
            gap_pending: false,
            data_after_gap: false,
            delivered: 0,
            gaps: 0,
            gap_bytes: 0,
        }
    }

    /// Next expected sequence number, once known.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// Bytes held (out of order, or waiting for the other direction).
    pub fn queued_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// The per-direction queue limit in bytes.
    pub fn max_ooo_bytes(&self) -> usize {
        self.shared.cfg.max_ooo_bytes
    }

    /// True once bytes were delivered after a hole (Suricata's `STREAMTCP_STREAM_FLAG_HAS_GAP`,
    /// the flow record's `ts_gap`/`tc_gap`): a hole at the very end of a direction, with
    /// nothing after it, is reported to the parser but does not set it.
    pub fn has_gap(&self) -> bool {
        self.data_after_gap
    }

    /// True once the reassembly depth was reached.
    pub fn depth_reached(&self) -> bool {
        self.depth_reached
    }

    /// Holds delivery until the other direction reached `target` (see [`Stream::waiting_for`]).
    pub fn set_wait(&mut self, target: u32) {
        if self.depth_reached {
            return;
        }
        self.wait = Some(match self.wait {
            Some(w) if rel(w, target) > 0 => w,
            _ => target,
        });
    }

    /// The other direction's position this stream waits for, if held.
    pub fn waiting_for(&self) -> Option<u32> {
        self.wait
    }

    /// Stops holding and delivers what is in order.
    pub fn release(&mut self, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        self.wait = None;
        self.drain(sink);
    }

    /// Delivers queued data below `target` and reports the rest up to `target` as lost.
    pub fn give_up_to(&mut self, target: u32, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        self.wait = None;
        self.drain(sink);
        while let Some(s) = self.first_queued() {
            if rel(s, target) >= 0 {
                break;
            }
            self.gap_to(s, sink);
            self.drain(sink);
        }
        self.gap_to(target, sink);
        self.drain(sink);
    }

    /// True once every byte before the FIN was delivered.
    pub fn eof_delivered(&self) -> bool {
        self.eof && !self.eof_reported
    }
    pub fn mark_eof_reported(&mut self) {
        if self.eof {
            self.eof_reported = true;
        }
    }

    /// Delivers the part of `payload` (starting at `seq`) that is at or after `next`, up to
    /// the depth. Bytes before `next` were delivered already: they are only compared.
    fn deliver(&mut self, seq: u32, payload: &[u8], sink: &mut dyn FnMut(StreamChunk<'_>)) {
        let Some(next) = self.next else { return };
        let r = rel(seq, next);
        if r > 0 {
            return;
        }
        let skip = r.unsigned_abs() as usize;
        if skip > 0 && !self.depth_reached {
            self.compare_delivered(seq, &payload[..skip.min(payload.len())]);
        }
        if skip >= payload.len() {
            return;
        }
        let mut data = &payload[skip..];
        if self.depth_reached {
            self.next = Some(next.wrapping_add(data.len() as u32));
            return;
        }
        let depth = self.shared.cfg.depth;
        let mut reached = false;
        if depth > 0 && self.offset + data.len() as u64 >= depth {
            data = &data[..(depth.saturating_sub(self.offset) as usize).min(data.len())];
            reached = true;
        }
        self.next = Some(next.wrapping_add(data.len() as u32));
        self.offset += data.len() as u64;
        self.delivered += data.len() as u64;
        self.remember(next, data);
        if !data.is_empty() {
            if self.gap_pending {
                self.gap_pending = false;
                self.data_after_gap = true;
            }
            sink(StreamChunk::Data(data));
        }
        if reached {
            // What follows the depth is followed but not delivered.
            let end = next.wrapping_add((payload.len() - skip) as u32);
            self.reach_depth();
            if let Some(n) = self.next
                && rel(end, n) > 0
            {
                self.next = Some(end);
            }
        }
    }

    fn reach_depth(&mut self) {
        if self.depth_reached {
            return;
        }
        self.depth_reached = true;
        bump(&self.shared.depth_reached, 1);
        self.wait = None;
        // Queued bytes are not needed any more; the sequence moves past them.
        for (s, d) in std::mem::take(&mut self.ooo) {
            let end = s.wrapping_add(d.len() as u32);
            if let Some(n) = self.next
                && rel(end, n) > 0
            {
                self.next = Some(end);
            }
        }
        self.shared.release(self.ooo_bytes + self.ring.len());
        self.ooo_bytes = 0;
        self.ring = Vec::new();
    }

    /// Keeps delivered bytes `[at, at + data.len())` in the ring.
    fn remember(&mut self, at: u32, data: &[u8]) {
        let size = self.shared.cfg.overlap_check_bytes;
        if size == 0 || data.is_empty() {
            return;
        }
        if self.ring.is_empty() {
            if !self.shared.reserve(size) {
                return;
            }
            self.ring = vec![0; size];
            self.ring_lo = at;
        }
        let mask = size - 1;
        let keep = data.len().min(size);
        let tail = &data[data.len() - keep..];
        let start = at.wrapping_add((data.len() - keep) as u32);
        let i = start as usize & mask;
        let first = tail.len().min(size - i);
        self.ring[i..i + first].copy_from_slice(&tail[..first]);
        self.ring[..tail.len() - first].copy_from_slice(&tail[first..]);
        // Valid bytes are `[ring_lo, at)` before this call (`at` is the old `next`).
        let end = at.wrapping_add(data.len() as u32);
        self.ring_lo = self.ring_lo.max_seq(end.wrapping_sub(size as u32));
    }

    /// A segment covers delivered bytes `[seq, seq + bytes.len())`: counts the overlap if
    /// they are not acknowledged yet, and compares them with the ring.
    fn compare_delivered(&mut self, seq: u32, bytes: &[u8]) {
        let end = seq.wrapping_add(bytes.len() as u32);
        if bytes.is_empty() || self.acked.is_some_and(|a| rel(end, a) <= 0) {
            return;
        }
        bump(&self.shared.overlaps, 1);
        if self.ring.is_empty() {
            return;
        }
        let Some(next) = self.next else { return };
        let lo = if rel(seq, self.ring_lo) > 0 { seq } else { self.ring_lo };
        let hi = if rel(end, next) < 0 { end } else { next };
        let n = rel(hi, lo);
        if n <= 0 {
            return;
        }
        let mask = self.ring.len() - 1;
        let off = lo.wrapping_sub(seq) as usize;
        let differs = (0..n as usize).any(|k| {
            let s = lo.wrapping_add(k as u32) as usize & mask;
            self.ring.get(s) != bytes.get(off + k)
        });
        if differs {
            bump(&self.shared.overlap_diff, 1);
        }
    }

    fn gap_to(&mut self, seq: u32, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        let Some(next) = self.next else { return };
        let r = rel(seq, next);
        if r > 0 {
            self.next = Some(seq);
            if self.depth_reached {
                return;
            }
            self.gaps += 1;
            self.gap_bytes += r as u64;
            bump(&self.shared.gaps, 1);
            bump(&self.shared.gap_bytes, r as u64);
            self.offset += r as u64;
            self.ring_lo = seq;
            self.gap_pending = true;
            sink(StreamChunk::Gap(r as u32));
            let depth = self.shared.cfg.depth;
            if depth > 0 && self.offset >= depth {
                self.reach_depth();
            }
        }
    }

    fn drain(&mut self, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        if self.wait.is_some() {
            return;
        }
        while let Some(next) = self.next {
            let Some((i, r)) =
                self.ooo.iter().enumerate().map(|(i, (s, _))| (i, rel(*s, next))).min_by_key(|(_, r)| *r)
            else {
                break;
            };
            if r > 0 {
                break;
            }
            let (s, data) = self.ooo.swap_remove(i);
            self.ooo_bytes -= data.len();
            self.shared.release(data.len());
            self.deliver(s, &data, sink);
        }
        self.check_eof();
    }

    fn first_queued(&self) -> Option<u32> {
        let next = self.next?;
        self.ooo.iter().map(|(s, _)| *s).min_by_key(|s| rel(*s, next))
    }

    fn check_eof(&mut self) {
        if let (Some(f), Some(n)) = (self.fin_seq, self.next)
            && rel(n, f) >= 0
            && self.ooo.is_empty()
        {
            self.eof = true;
        }
    }

    /// Compares a new segment with the queued bytes it overlaps (counting overlaps and
    /// different data) and returns the parts of it that no queued segment covers, as
    /// offsets into `payload` (first policy: queued bytes stay).
    fn uncovered(&mut self, seq: u32, payload: &[u8]) -> Vec<(usize, usize)> {
        let mut parts = vec![(0usize, payload.len())];
        let mut overlapped = false;
        let mut differs = false;
        for (s, d) in &self.ooo {
            let qs = rel(*s, seq) as i64;
            let qe = qs + d.len() as i64;
            let (lo, hi) = (qs.max(0), qe.min(payload.len() as i64));
            if lo >= hi {
                continue;
            }
            overlapped = true;
            let (lo, hi) = (lo as usize, hi as usize);
            let qoff = (lo as i64 - qs) as usize;
            if payload.get(lo..hi) != d.get(qoff..qoff + (hi - lo)) {
                differs = true;
            }
            let mut rest = Vec::with_capacity(parts.len() + 1);
            for (a, b) in parts {
                if hi <= a || lo >= b {
                    rest.push((a, b));
                    continue;
                }
                if a < lo {
                    rest.push((a, lo));
                }
                if hi < b {
                    rest.push((hi, b));
                }
            }
            parts = rest;
        }
        if overlapped {
            bump(&self.shared.overlaps, 1);
            if differs {
                bump(&self.shared.overlap_diff, 1);
            }
        }
        parts
    }

    /// Queues the bytes of a segment that are after `next` and not queued yet.
    fn enqueue(&mut self, seq: u32, payload: &[u8]) {
        let Some(next) = self.next else { return };
        let skip = (-rel(seq, next)).max(0) as usize;
        if skip > 0 {
            self.compare_delivered(seq, &payload[..skip.min(payload.len())]);
        }
        if skip >= payload.len() {
            return;
        }
        let start = seq.wrapping_add(skip as u32);
        let payload = &payload[skip..];
        for (a, b) in self.uncovered(start, payload) {
            let Some(part) = payload.get(a..b) else { continue };
            if !self.shared.reserve(part.len()) {
                // Not stored: its bytes are lost, like an uncaptured packet.
                bump(&self.shared.memcap_drops, 1);
                continue;
            }
            self.ooo_bytes += part.len();
            self.ooo.push((start.wrapping_add(a as u32), part.to_vec()));
        }
    }

    /// Delivers an in-order segment while bytes are queued: queued bytes (first arrived)
    /// win where they overlap it; its other bytes are delivered in order around them.
    fn deliver_around_queue(&mut self, seq: u32, payload: &[u8], sink: &mut dyn FnMut(StreamChunk<'_>)) {
        let Some(next) = self.next else { return };
        let skip = (-rel(seq, next)).max(0) as usize;
        if skip > 0 {
            self.compare_delivered(seq, &payload[..skip.min(payload.len())]);
        }
        if skip >= payload.len() {
            return;
        }
        let seq = seq.wrapping_add(skip as u32);
        let payload = &payload[skip..];
        let _ = self.uncovered(seq, payload);
        let end = seq.wrapping_add(payload.len() as u32);
        loop {
            let Some(next) = self.next else { return };
            if rel(end, next) <= 0 || self.depth_reached {
                break;
            }
            let from = rel(next, seq).max(0) as usize;
            let upto = match self.first_queued() {
                Some(q) if rel(q, end) < 0 => (rel(q, seq).max(0) as usize).min(payload.len()),
                _ => payload.len(),
            };
            if upto > from {
                self.deliver(next, &payload[from..upto], sink);
            }
            self.drain(sink);
            if self.next == Some(next) {
                break;
            }
        }
        self.drain(sink);
    }

    /// A segment of this direction.
    pub fn on_segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        sink: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        if syn {
            if self.next.is_none() {
                self.next = Some(seq.wrapping_add(1));
            }
            return;
        }
        let next = *self.next.get_or_insert(seq);
        if fin {
            self.fin_seq = Some(seq.wrapping_add(payload.len() as u32));
        }
        if self.depth_reached {
            // Only follow the sequence numbers.
            let end = seq.wrapping_add(payload.len() as u32);
            if rel(end, next) > 0 {
                self.next = Some(end);
            }
            self.check_eof();
            return;
        }
        let end = seq.wrapping_add(payload.len() as u32);
        let edge = self.right_edge;
        if !payload.is_empty() && edge.is_none_or(|e| rel(end, e) > 0) {
            self.right_edge = Some(end);
        }
        // A segment ending before what the peer acknowledged is a spurious retransmission,
        // unless the acknowledgement covers bytes never seen (Suricata's stream engine): it
        // does not fill the hole, which is reported as a gap at the next acknowledgement.
        let spurious =
            rel(end, next) > 0 && self.acked.is_some_and(|a| rel(end, a) < 0 && edge.is_some_and(|e| rel(a, e) <= 0));
        if !payload.is_empty() && !spurious {
            // A segment after a hole is queued even when the peer already acknowledged the
            // hole: the hole is given up at the next acknowledgement ([`Stream::on_ack`]), so a
            // retransmission arriving in between still fills it (Suricata declares the gap
            // when it processes the acknowledgement, too).
            if self.wait.is_some() {
                self.enqueue(seq, payload);
                if self.over_caps() {
                    // Held longer than the per-flow caps allow: stop waiting for the other
                    // direction (its order relative to this one is given up) and deliver.
                    self.release(sink);
                    self.enforce_caps(sink);
                }
            } else if rel(seq, next) <= 0 {
                if self.ooo.is_empty() {
                    self.deliver(seq, payload, sink);
                    self.check_eof();
                } else {
                    self.deliver_around_queue(seq, payload, sink);
                }
            } else {
                self.enqueue(seq, payload);
                self.enforce_caps(sink);
            }
        }
        if fin && self.ooo.is_empty() && self.wait.is_none() {
            // The sender closed: bytes still missing before the FIN will not come.
            let f = seq;
            self.gap_to(f, sink);
        }
        self.check_eof();
    }

    /// Whether this direction holds more than the per-flow caps allow.
    fn over_caps(&self) -> bool {
        self.ooo_bytes > self.shared.cfg.max_ooo_bytes || self.ooo.len() > self.shared.cfg.max_ooo_segments
    }

    /// Gives up holes, oldest first, until the queue is within the per-flow caps.
    fn enforce_caps(&mut self, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        while self.wait.is_none() && self.over_caps() {
            match self.first_queued() {
                Some(s) => {
                    self.gap_to(s, sink);
                    self.drain(sink);
                }
                None => break,
            }
        }
    }

    /// The peer acknowledged up to `ack`.
    pub fn on_ack(&mut self, ack: u32, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        if self.acked.is_none_or(|a| rel(ack, a) > 0) {
            self.acked = Some(ack);
        }
        let Some(next) = self.next else { return };
        // Acknowledged bytes need no comparison any more.
        if !self.ring.is_empty() && rel(ack, self.ring_lo) > 0 {
            self.ring_lo = if rel(ack, next) < 0 { ack } else { next };
        }
        if rel(ack, next) <= 0 {
            return;
        }
        if self.wait.is_none()
            && let Some(s) = self.first_queued()
            && rel(ack, s) >= 0
        {
            self.gap_to(s, sink);
            self.drain(sink);
        }
    }

    /// End of flow: deliver whatever is queued, reporting holes as gaps.
    pub fn flush(&mut self, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        self.wait = None;
        while let Some(s) = self.first_queued() {
            self.gap_to(s, sink);
            self.drain(sink);
        }
        if let Some(f) = self.fin_seq {
            self.gap_to(f, sink);
        }
        self.check_eof();
    }
}

trait SeqMax {
    fn max_seq(self, other: u32) -> u32;
}

impl SeqMax for u32 {
    /// The later of two sequence numbers.
    fn max_seq(self, other: u32) -> u32 {
        if rel(self, other) >= 0 { self } else { other }
    }
}

#[cfg(test)]
mod tests;
