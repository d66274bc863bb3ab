//! Raw stream inspection: the reassembled bytes of each direction of a TCP session, handed to
//! the payload rules in chunks the way Suricata's IDS mode does ("raw" reassembly).
//!
//! Each direction keeps the bytes after its *raw progress* (the end of what was inspected).
//! A packet of a direction may inspect that direction's stream when new bytes are there and
//! one of these holds (Suricata's `StreamReassembleRawHasDataReady`):
//!
//! - at least [`CHUNK_SIZE`] bytes past the progress were acknowledged by the peer;
//! - the app layer asked for it (an HTTP request or response was completed; Suricata's
//!   `TRIGGER_RAW`), once the peer acknowledged the end of that message;
//! - the session is closing (the server closed first, both closed, or a RST);
//! - [`UNACKED_MAX`] bytes wait unacknowledged (one-sided captures): they are inspected as
//!   they are, so memory stays bounded.
//!
//! Only acknowledged bytes are inspected (the peer's ACK is the right edge), except at the end
//! of the flow, when everything left is. The progress then moves to the end of the inspected
//! bytes. Bytes beyond [`RAW_DEPTH`] of a direction are not kept (Suricata's stream depth).
//! Out-of-order segments wait for the hole to fill; a hole the peer acknowledged, or one still
//! open at the end of the flow, is skipped: inspection resumes after it in a new block.

use super::Direction;
use std::collections::BTreeMap;

/// Suricata's default `stream.reassembly.toserver-chunk-size` and `toclient-chunk-size`.
pub const CHUNK_SIZE: u64 = 2560;
/// Suricata's default `stream.reassembly.depth` (1 MiB).
pub const RAW_DEPTH: u64 = 1 << 20;
/// Out-of-order bytes kept per direction while a hole is open (each segment counted with
/// [`OOO_ENTRY_COST`] bytes of overhead, so tiny segments cannot hold more memory than this).
const MAX_OOO: usize = 256 * 1024;
/// Bookkeeping bytes counted per out-of-order segment.
const OOO_ENTRY_COST: usize = 64;
/// Separate blocks (runs of bytes between skipped holes) kept per direction: past this the
/// direction is inspected at once, so holes cannot multiply the inspections of one packet.
const MAX_BLOCKS: usize = 16;
/// Uninspected bytes kept per direction without an acknowledgement: past this the bytes are
/// inspected unacknowledged, so a capture that sees one side only (no ACKs) keeps at most this
/// much per direction instead of the whole stream depth.
pub const UNACKED_MAX: u64 = 64 * 1024;

/// Signed distance from `b` to `a` in sequence space.
pub(crate) fn rel(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// One direction of a session, as raw inspection sees it.
#[derive(Debug, Default)]
pub struct RawSide {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Stream offset of the in-order right edge (the next byte expected).
    edge: u64,
    /// Stream offset up to which bytes were inspected.
    progress: u64,
    /// Uninspected bytes: contiguous blocks (stream offset, bytes), in order, after `progress`.
    blocks: Vec<(u64, Vec<u8>)>,
    /// Segments ahead of a hole, by stream offset (a later copy of an offset replaces the
    /// earlier one).
    ooo: BTreeMap<u64, Vec<u8>>,
    /// Bytes of `ooo`, overhead included (see [`MAX_OOO`]).
    ooo_bytes: usize,
    /// Highest stream offset seen in a segment of this direction: acknowledgements beyond it
    /// are not trusted to declare a hole lost.
    seen: u64,
    /// Segments not kept because the out-of-order queue was full.
    pub dropped_segments: u64,
    /// Highest stream offset the peer acknowledged.
    acked: u64,
    /// App-layer triggers: inspect once the peer acknowledged up to one of these offsets.
    triggers: Vec<u64>,
    /// DCERPC: stream offset of the next PDU header (`None`: not framed, or given up).
    pdu_at: Option<u64>,
    /// DCERPC: end of the PDU at `pdu_at` once its header was read (its header bytes may be
    /// inspected and gone before the PDU completes), and whether it triggers an inspection.
    pdu_end: Option<(u64, bool)>,
}

impl RawSide {
    fn offset(&self, seq: u32) -> Option<u64> {
        let base = self.base?;
        let r = rel(seq, base);
        (r >= 0).then_some(r as u64)
    }

    /// A segment of this direction (`syn`: its sequence number starts the stream).
    pub fn on_segment(&mut self, seq: u32, syn: bool, payload: &[u8]) {
        if syn {
            if self.base.is_none() {
                self.base = Some(seq.wrapping_add(1));
            }
            return;
        }
        if self.base.is_none() {
            // picked up midstream: the stream starts here
            self.base = Some(seq);
        }
        if payload.is_empty() {
            return;
        }
        let Some(start) = self.offset(seq) else {
            // before the stream's start: only the part after it counts
            let Some(base) = self.base else { return };
            let skip = rel(base, seq);
            if skip > 0 && (skip as usize) < payload.len() {
                self.on_segment(base, false, &payload[skip as usize..]);
            }
            return;
        };
        self.seen = self.seen.max(start.saturating_add(payload.len() as u64));
        if start > self.edge {
            if start >= RAW_DEPTH {
                return;
            }
            let cost = payload.len() + OOO_ENTRY_COST;
            let replaced = self.ooo.get(&start).map_or(0, |d| d.len() + OOO_ENTRY_COST);
            if self.ooo_bytes - replaced + cost <= MAX_OOO {
                self.ooo_bytes = self.ooo_bytes - replaced + cost;
                self.ooo.insert(start, payload.to_vec());
            } else {
                self.dropped_segments += 1;
            }
            return;
        }
        self.append(start, payload);
        self.drain_ooo();
    }

    /// Appends the part of `data` (at stream offset `start` <= edge) past the edge.
    fn append(&mut self, start: u64, data: &[u8]) {
        let skip = (self.edge - start) as usize;
        if skip >= data.len() {
            return;
        }
        let mut new = &data[skip..];
        let room = RAW_DEPTH.saturating_sub(self.edge) as usize;
        if new.len() > room {
            new = &new[..room];
        }
        if new.is_empty() {
            self.edge += (data.len() - skip) as u64;
            return;
        }
        match self.blocks.last_mut() {
            Some((o, b)) if *o + b.len() as u64 == self.edge => b.extend_from_slice(new),
            _ => self.blocks.push((self.edge, new.to_vec())),
        }
        self.edge += (data.len() - skip) as u64;
    }

    fn drain_ooo(&mut self) {
        while self.ooo.first_key_value().is_some_and(|(o, _)| *o <= self.edge) {
            let Some((o, d)) = self.ooo.pop_first() else { break };
            self.ooo_bytes = self.ooo_bytes.saturating_sub(d.len() + OOO_ENTRY_COST);
            self.append(o, &d);
        }
    }

    /// Skips the hole before the first queued segment.
    fn skip_hole(&mut self) {
        if let Some(first) = self.ooo.first_key_value().map(|(o, _)| *o)
            && first > self.edge
        {
            self.edge = first;
            self.drain_ooo();
        }
    }

    /// The peer acknowledged bytes up to `ack` (a sequence number of this direction).
    pub fn on_ack(&mut self, ack: u32) {
        let Some(a) = self.offset(ack) else { return };
        // an acknowledgement of bytes never seen (spoofed or far ahead) moves nothing
        let a = a.min(self.seen);
        if a > self.acked {
            self.acked = a;
        }
        // acknowledged bytes that never arrived: the hole is lost
        if self.acked > self.edge && self.ooo.first_key_value().is_some_and(|(o, _)| *o <= self.acked) {
            self.skip_hole();
        }
    }

    /// The app layer completed a message ending at the current edge: inspect once it is
    /// acknowledged.
    pub fn trigger(&mut self) {
        self.trigger_to(self.edge);
    }

    fn trigger_to(&mut self, at: u64) {
        if self.triggers.len() < 64 && !self.triggers.contains(&at) {
            self.triggers.push(at);
        }
    }

    /// The byte at stream offset `at`, if still kept.
    fn byte_at(&self, at: u64) -> Option<u8> {
        let (o, b) = self.blocks.iter().find(|(o, b)| *o <= at && at < *o + b.len() as u64)?;
        b.get((at - o) as usize).copied()
    }

    /// Frames the direction's bytes into DCERPC PDUs (from the stream's start): each complete
    /// bind, bind_ack, alter_context(_resp), request or response PDU triggers an inspection,
    /// as Suricata's DCERPC parser does when it parses one.
    pub fn scan_dcerpc(&mut self) {
        let mut at = self.pdu_at.unwrap_or(0);
        loop {
            if let Some((end, triggers)) = self.pdu_end {
                if end > self.edge {
                    break;
                }
                if triggers {
                    self.trigger_to(end);
                }
                self.pdu_end = None;
                at = end;
                continue;
            }
            if at.saturating_add(10) > self.edge {
                break;
            }
            let hdr: Option<Vec<u8>> = (0..10).map(|i| self.byte_at(at + i)).collect();
            let Some(h) = hdr.filter(|h| h[0] == 5) else {
                // not a PDU header (or its bytes are gone): stop framing
                self.pdu_at = Some(u64::MAX);
                return;
            };
            let len =
                if h[4] & 0x10 != 0 { u16::from_le_bytes([h[8], h[9]]) } else { u16::from_be_bytes([h[8], h[9]]) };
            if len < 16 {
                self.pdu_at = Some(u64::MAX);
                return;
            }
            self.pdu_end = Some((at + u64::from(len), matches!(h[2], 0 | 2 | 11 | 12 | 14 | 15)));
        }
        self.pdu_at = Some(at);
    }

    /// Whether a packet of this direction inspects the stream now (see the module doc).
    pub fn ready(&self, closing: bool) -> bool {
        if self.edge <= self.progress || self.blocks.is_empty() {
            return false;
        }
        closing
            || self.over_cap()
            || self.blocks.len() >= MAX_BLOCKS
            || self.triggers.iter().any(|t| self.acked >= *t)
            || self.acked.saturating_sub(self.progress) >= CHUNK_SIZE
    }

    /// Too many bytes wait for an acknowledgement (see [`UNACKED_MAX`]).
    fn over_cap(&self) -> bool {
        self.edge.saturating_sub(self.progress) >= UNACKED_MAX
    }

    /// Hands the bytes to inspect to `inspect`, block by block (acknowledged ones only unless
    /// `eof`), and moves the progress past them.
    pub fn take(&mut self, eof: bool, inspect: &mut dyn FnMut(&[u8])) {
        if eof {
            // every hole still open: what lies after each one is inspected too
            while !self.ooo.is_empty() {
                self.skip_hole();
            }
        }
        let right = if eof || self.over_cap() || self.blocks.len() >= MAX_BLOCKS {
            self.edge
        } else {
            self.acked.min(self.edge)
        };
        if right <= self.progress {
            return;
        }
        for (o, b) in &self.blocks {
            let end = *o + b.len() as u64;
            let lo = (*o).max(self.progress);
            let hi = end.min(right);
            if lo < hi {
                inspect(&b[(lo - *o) as usize..(hi - *o) as usize]);
            }
        }
        self.progress = right;
        self.triggers.retain(|t| *t > right);
        let progress = self.progress;
        self.blocks.retain_mut(|(o, b)| {
            let end = *o + b.len() as u64;
            if end <= progress {
                return false;
            }
            if *o < progress {
                b.drain(..(progress - *o) as usize);
                *o = progress;
            }
            true
        });
    }
}

/// Both directions of a session.
#[derive(Debug, Default)]
pub struct RawStreams {
    pub sides: [RawSide; 2],
}

impl RawStreams {
    /// One TCP segment of direction `dir` with the ACK it carries for the other direction.
    pub fn on_segment(&mut self, dir: Direction, seq: u32, ack: Option<u32>, syn: bool, payload: &[u8]) {
        if let Some(a) = ack {
            self.sides[dir.other().index()].on_ack(a);
        }
        self.sides[dir.index()].on_segment(seq, syn, payload);
    }

    /// Frames both directions as DCERPC (see [`RawSide::scan_dcerpc`]).
    pub fn scan_dcerpc(&mut self) {
        for s in &mut self.sides {
            s.scan_dcerpc();
        }
    }

    pub fn side(&mut self, dir: Direction) -> &mut RawSide {
        &mut self.sides[dir.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(s: &mut RawSide, eof: bool) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        s.take(eof, &mut |b| v.push(b.to_vec()));
        v
    }

    #[test]
    fn a_side_never_acknowledged_keeps_at_most_the_unacked_cap() {
        // one-sided capture: data segments, no ACK from the peer ever
        let mut s = RawSide::default();
        s.on_segment(999, true, &[]);
        let seg = vec![b'a'; 1000];
        let mut inspected = 0usize;
        for i in 0..300u32 {
            s.on_segment(1000 + i * 1000, false, &seg);
            if s.ready(false) {
                inspected += chunks(&mut s, false).iter().map(Vec::len).sum::<usize>();
            }
            let kept: usize = s.blocks.iter().map(|(_, b)| b.len()).sum();
            assert!(kept as u64 <= UNACKED_MAX, "kept {kept} bytes after segment {i}");
        }
        assert!(inspected >= 300_000 - UNACKED_MAX as usize, "bytes were inspected, not dropped: {inspected}");
        let rest: usize = chunks(&mut s, true).iter().map(Vec::len).sum();
        assert_eq!(inspected + rest, 300_000, "every byte inspected exactly once");
    }

    #[test]
    fn inspects_acknowledged_bytes_once_a_chunk_is_acknowledged() {
        let mut s = RawSide::default();
        s.on_segment(99, true, &[]);
        s.on_segment(100, false, &[b'a'; 2000]);
        s.on_ack(2100);
        assert!(!s.ready(false), "2000 acknowledged bytes are less than a chunk");
        s.on_segment(2100, false, &[b'b'; 1000]);
        s.on_ack(2700);
        assert!(s.ready(false));
        let c = chunks(&mut s, false);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), 2600, "only acknowledged bytes");
        assert!(!s.ready(false));
        // the rest comes at the end of the flow
        let c = chunks(&mut s, true);
        assert_eq!(c, vec![vec![b'b'; 400]]);
    }

    #[test]
    fn trigger_inspects_once_the_message_is_acknowledged() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        s.on_segment(1, false, b"GET / HTTP/1.1\r\n\r\n");
        s.trigger();
        assert!(!s.ready(false), "not acknowledged yet");
        s.on_ack(19);
        assert!(s.ready(false));
        assert_eq!(chunks(&mut s, false), vec![b"GET / HTTP/1.1\r\n\r\n".to_vec()]);
        assert!(!s.ready(true), "nothing new");
    }

    #[test]
    fn duplicates_add_nothing_and_holes_wait_or_are_skipped() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        s.on_segment(1, false, b"abc");
        s.on_segment(1, false, b"abc");
        s.on_segment(7, false, b"ghi");
        s.on_segment(4, false, b"def");
        s.on_ack(10);
        assert_eq!(chunks(&mut s, false), vec![b"abcdefghi".to_vec()]);
        // a hole the peer acknowledged is skipped: two blocks
        s.on_segment(13, false, b"mno");
        s.on_ack(16);
        assert_eq!(s.edge, 15);
        s.on_segment(16, false, b"p");
        assert_eq!(chunks(&mut s, true), vec![b"mnop".to_vec()]);
    }

    #[test]
    fn each_complete_dcerpc_pdu_triggers_an_inspection() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        // a 16-byte bind (type 11, little endian) and the first half of a 20-byte request
        let mut bind = vec![5u8, 0, 11, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0];
        let request = [5u8, 0, 0, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 9, 9, 9, 9];
        bind.extend_from_slice(&request[..10]);
        s.on_segment(1, false, &bind);
        s.scan_dcerpc();
        s.on_ack(17);
        assert!(s.ready(false), "the bind is complete and acknowledged");
        assert_eq!(chunks(&mut s, false).concat().len(), 16);
        s.on_segment(27, false, &request[10..]);
        s.scan_dcerpc();
        s.on_ack(37);
        assert!(s.ready(false), "the request is complete and acknowledged");
        assert_eq!(chunks(&mut s, false), vec![request.to_vec()]);
        // not DCERPC: framing stops, no trigger
        s.on_segment(37, false, b"0123456789abcdef");
        s.scan_dcerpc();
        s.on_ack(53);
        assert!(!s.ready(false));
    }

    #[test]
    fn tiny_out_of_order_segments_are_bounded_counted_and_drained_in_order() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        // a hole at offset 0, then one-byte segments ahead of it in descending order, each twice
        for i in (1..20_000u32).rev() {
            s.on_segment(1 + i, false, b"x");
            s.on_segment(1 + i, false, b"x");
        }
        assert!(s.ooo_bytes <= MAX_OOO, "overhead counted: {}", s.ooo_bytes);
        assert!(s.ooo.len() <= MAX_OOO / (1 + OOO_ENTRY_COST));
        assert!(s.dropped_segments > 0, "segments beyond the bound are counted");
        // the highest offsets came first and were kept; at the end of the flow the hole before
        // them is skipped and each kept byte is inspected once, after the byte that filled 0
        let kept = s.ooo.len();
        s.on_segment(1, false, b"h");
        assert_eq!(chunks(&mut s, true).concat().len(), 1 + kept);
    }

    #[test]
    fn an_acknowledgement_of_bytes_never_seen_does_not_skip_a_hole() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        s.on_segment(1, false, b"ab");
        s.on_segment(5, false, b"ef");
        s.on_ack(1_000_000);
        // the ACK covers the hole, so the hole is lost and skipped, but it is clipped to the
        // bytes seen
        assert_eq!(s.edge, 6);
        assert_eq!(s.acked, 6);
        let mut t = RawSide::default();
        t.on_segment(0, true, &[]);
        t.on_segment(1, false, b"ab");
        t.on_ack(500);
        assert_eq!(t.acked, 2, "no segment beyond 2 was seen");
        t.on_segment(3, false, b"cd");
        assert_eq!(t.edge, 4, "the real bytes still join the stream");
    }

    #[test]
    fn at_the_end_every_hole_is_skipped_and_what_follows_each_is_inspected() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        s.on_segment(1, false, b"ab");
        s.on_segment(5, false, b"ef");
        s.on_segment(9, false, b"ij");
        assert_eq!(chunks(&mut s, true).concat(), b"abefij".to_vec());
    }

    #[test]
    fn a_dcerpc_pdu_larger_than_a_chunk_still_triggers_and_framing_continues() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        // a 5,000-byte request (type 0, little endian): header, then the body in pieces
        let mut pdu = vec![5u8, 0, 0, 3, 0x10, 0, 0, 0];
        pdu.extend_from_slice(&5000u16.to_le_bytes());
        pdu.resize(5000, 7);
        s.on_segment(1, false, &pdu[..2600]);
        s.scan_dcerpc();
        s.on_ack(2601);
        assert!(s.ready(false), "a chunk's worth acknowledged");
        assert_eq!(chunks(&mut s, false).concat().len(), 2600, "the header bytes are inspected and gone");
        s.on_segment(2601, false, &pdu[2600..]);
        s.scan_dcerpc();
        s.on_ack(5001);
        assert!(s.ready(false), "the end of the PDU triggers although its header is gone");
        assert_eq!(chunks(&mut s, false).concat().len(), 2400);
        // the next PDU is framed too
        let bind = [5u8, 0, 11, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0];
        s.on_segment(5001, false, &bind);
        s.scan_dcerpc();
        s.on_ack(5017);
        assert!(s.ready(false));
    }

    #[test]
    fn many_holes_are_inspected_at_once_instead_of_one_block_each() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        // every other byte, the gaps acknowledged as lost; the sensor takes when ready
        let mut takes = 0;
        for i in 0..(4 * MAX_BLOCKS as u32) {
            s.on_segment(1 + 2 * i, false, b"z");
            s.on_ack(1 + 2 * i);
            if s.ready(false) {
                takes += 1;
                assert!(chunks(&mut s, false).len() <= MAX_BLOCKS);
            }
            assert!(s.blocks.len() <= MAX_BLOCKS);
        }
        assert!(takes >= 3, "inspected in groups of blocks, not once per block: {takes}");
    }

    #[test]
    fn closing_sessions_inspect_what_is_acknowledged() {
        let mut s = RawSide::default();
        s.on_segment(0, true, &[]);
        s.on_segment(1, false, b"tail");
        assert!(s.ready(true));
        assert!(chunks(&mut s, false).is_empty(), "nothing acknowledged");
        s.on_ack(5);
        assert_eq!(chunks(&mut s, false), vec![b"tail".to_vec()]);
    }

    /// Through the sensor: alerts per frame index for `frames` with `rules`.
    fn run(rules: &str, frames: &[Vec<u8>]) -> Vec<(usize, u32)> {
        use crate::detect::{Detector, Vars};
        use crate::{Sensor, SensorOptions, decode::LinkType};
        use soc_model::{EventType, Timestamp};
        let (d, errors) = Detector::from_rules(rules, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut sensor = Sensor::new(SensorOptions::default()).with_detector(std::sync::Arc::new(d));
        let mut hits = Vec::new();
        let mut out = Vec::new();
        let mut collect = |i: usize, out: &mut Vec<soc_model::Event>| {
            for e in out.drain(..).filter(|e| e.event_type == EventType::Alert) {
                hits.push((i, e.alert.and_then(|a| a.signature_id).unwrap_or(0) as u32));
            }
        };
        for (i, f) in frames.iter().enumerate() {
            let ts = Timestamp::from_unix_micros(1_700_000_000_000_000 + i as i64 * 1000);
            sensor.process(ts, LinkType::Ethernet, f, &mut out);
            collect(i, &mut out);
        }
        sensor.flush_all(&mut out);
        collect(frames.len(), &mut out);
        hits
    }

    #[test]
    fn stream_rules_see_content_split_over_segments_once_a_chunk_is_acknowledged() {
        use crate::synth::{Host, TcpSession};
        let rules = "alert tcp any any -> any any (msg:\"split\"; content:\"ABCDEF\"; sid:1;)\n\
                     alert tcp any any -> any any (msg:\"start\"; content:\"ABC\"; depth:3; sid:2;)\n";
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 1]), 40000, Host::v4([10, 0, 0, 2]), 7000);
        let mut frames = s.handshake();
        frames.extend(s.client_send_split(b"ABCDEF", 3));
        frames.extend(s.client_send_split(&[b'x'; 3000], 1000));
        let ack = frames.len();
        frames.push(s.server_send(b"ok"));
        let next = frames.len();
        frames.push(s.client_send(b"more"));
        frames.extend(s.close());
        let hits = run(rules, &frames);
        // sid 2 (depth: a packet rule too) on the segment "ABC", and again on the stream chunk;
        // sid 1 only on the stream, at the first client packet after the server acknowledged
        // a chunk's worth of bytes (not on the server's packet itself)
        assert_eq!(hits, vec![(3, 2), (next, 1), (next, 2)], "server ack at frame {ack}");
    }

    #[test]
    fn a_stream_rule_alerts_once_for_a_segment_and_sees_the_rest_at_the_end_of_the_flow() {
        use crate::synth::{Host, TcpSession};
        let rules = "alert tcp any any -> any any (msg:\"s\"; content:\"SECRET\"; sid:7;)\n";
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 1]), 40000, Host::v4([10, 0, 0, 2]), 7000);
        let mut frames = s.handshake();
        frames.push(s.client_send(b"one SECRET here"));
        frames.extend(s.client_send_split(b"SEC", 2));
        frames.push(s.client_send(b"RET"));
        // no acknowledgement, no close: both occurrences are in the one chunk inspected at the end
        let hits = run(rules, &frames);
        assert_eq!(hits, vec![(frames.len(), 7)]);
        // packet rules still see each segment as it comes
        let pkt = "alert tcp-pkt any any -> any any (msg:\"p\"; content:\"SECRET\"; sid:8;)\n";
        assert_eq!(run(pkt, &frames), vec![(3, 8)]);
    }
}
