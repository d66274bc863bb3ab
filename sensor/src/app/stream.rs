//! A simple per-direction, in-order TCP byte stream.
//!
//! In-order segments are passed through without copying. Segments that arrive ahead of a
//! hole are copied into a bounded queue until the hole fills; when the peer acknowledges
//! bytes that never arrived, when the sender's FIN shows the hole will not fill, or when the
//! queue is full, the hole is reported as a gap and delivery resumes after it.
//! Retransmitted bytes are delivered once (first copy wins).
//!
//! This is the foundation-stage stand-in for full TCP reassembly: parsers only see
//! [`StreamChunk`]s, so a real reassembly engine can replace this type without touching them.

/// Queued out-of-order bytes per direction before giving up on a hole.
pub const MAX_OOO_BYTES: usize = 256 * 1024;
/// Queued out-of-order segments per direction before giving up on a hole.
pub const MAX_OOO_SEGMENTS: usize = 128;

/// What a stream delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamChunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were lost.
    Gap(u32),
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    next: Option<u32>,
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
    /// Highest sequence number the peer acknowledged.
    acked: Option<u32>,
    fin_seq: Option<u32>,
    /// Hold delivery until the other direction reaches this sequence number (its bytes that
    /// our sender had already received when it sent what we hold).
    wait: Option<u32>,
    eof: bool,
    eof_reported: bool,
    /// Bytes delivered, gaps reported and bytes lost in gaps.
    pub delivered: u64,
    pub gaps: u32,
    pub gap_bytes: u64,
}

#[inline]
fn rel(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl Stream {
    /// Next expected sequence number, once known.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// Bytes held (out of order, or waiting for the other direction).
    pub fn queued_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// Holds delivery until the other direction reached `target` (see [`Stream::waiting_for`]).
    pub fn set_wait(&mut self, target: u32) {
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

    fn deliver(&mut self, seq: u32, payload: &[u8], sink: &mut dyn FnMut(StreamChunk<'_>)) {
        let Some(next) = self.next else { return };
        let r = rel(seq, next);
        if r > 0 {
            return;
        }
        let skip = r.unsigned_abs() as usize;
        if skip >= payload.len() {
            return;
        }
        let data = &payload[skip..];
        self.next = Some(next.wrapping_add(data.len() as u32));
        self.delivered += data.len() as u64;
        sink(StreamChunk::Data(data));
    }

    fn gap_to(&mut self, seq: u32, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        let Some(next) = self.next else { return };
        let r = rel(seq, next);
        if r > 0 {
            self.gaps += 1;
            self.gap_bytes += r as u64;
            self.next = Some(seq);
            sink(StreamChunk::Gap(r as u32));
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
        if !payload.is_empty() {
            let acked_hole = rel(seq, next) > 0 && self.acked.is_some_and(|a| rel(a, seq) >= 0) && self.ooo.is_empty();
            if self.wait.is_some() {
                if acked_hole {
                    self.gap_to(seq, sink);
                }
                if rel(seq.wrapping_add(payload.len() as u32), self.next.unwrap_or(next)) > 0 {
                    self.ooo_bytes += payload.len();
                    self.ooo.push((seq, payload.to_vec()));
                }
            } else if rel(seq, next) <= 0 {
                self.deliver(seq, payload, sink);
                self.drain(sink);
            } else if acked_hole {
                // The receiver already acknowledged up to here: the hole is lost.
                self.gap_to(seq, sink);
                self.deliver(seq, payload, sink);
                self.drain(sink);
            } else {
                self.ooo_bytes += payload.len();
                self.ooo.push((seq, payload.to_vec()));
                while self.wait.is_none() && (self.ooo_bytes > MAX_OOO_BYTES || self.ooo.len() > MAX_OOO_SEGMENTS) {
                    match self.first_queued() {
                        Some(s) => {
                            self.gap_to(s, sink);
                            self.drain(sink);
                        }
                        None => break,
                    }
                }
            }
        }
        if fin && self.ooo.is_empty() && self.wait.is_none() {
            // The sender closed: bytes still missing before the FIN will not come.
            let f = seq;
            self.gap_to(f, sink);
        }
        self.check_eof();
    }

    /// The peer acknowledged up to `ack`.
    pub fn on_ack(&mut self, ack: u32, sink: &mut dyn FnMut(StreamChunk<'_>)) {
        if self.acked.is_none_or(|a| rel(ack, a) > 0) {
            self.acked = Some(ack);
        }
        let Some(next) = self.next else { return };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &mut Stream, f: impl FnOnce(&mut Stream, &mut dyn FnMut(StreamChunk<'_>))) -> Vec<String> {
        let mut v = Vec::new();
        f(s, &mut |c| {
            v.push(match c {
                StreamChunk::Data(d) => String::from_utf8_lossy(d).into_owned(),
                StreamChunk::Gap(n) => format!("<gap {n}>"),
            })
        });
        v
    }

    #[test]
    fn in_order_retransmit_and_reorder() {
        let mut s = Stream::default();
        assert!(collect(&mut s, |s, k| s.on_segment(99, true, false, b"", k)).is_empty());
        assert_eq!(collect(&mut s, |s, k| s.on_segment(100, false, false, b"abc", k)), ["abc"]);
        // Retransmission with new bytes at the end.
        assert_eq!(collect(&mut s, |s, k| s.on_segment(101, false, false, b"bcde", k)), ["de"]);
        // Out of order: held back, then released.
        assert!(collect(&mut s, |s, k| s.on_segment(108, false, false, b"hi", k)).is_empty());
        assert_eq!(collect(&mut s, |s, k| s.on_segment(105, false, false, b"fg", k)), ["fg"]);
        assert_eq!(collect(&mut s, |s, k| s.on_segment(107, false, false, b"gh", k)), ["gh", "i"]);
        assert_eq!(s.next_seq(), Some(110));
    }

    #[test]
    fn acked_hole_becomes_a_gap_and_fin_sets_eof() {
        let mut s = Stream::default();
        collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
        collect(&mut s, |s, k| s.on_segment(1, false, false, b"aa", k));
        assert!(collect(&mut s, |s, k| s.on_segment(13, false, false, b"zz", k)).is_empty());
        assert_eq!(collect(&mut s, |s, k| s.on_ack(15, k)), ["<gap 10>", "zz"]);
        collect(&mut s, |s, k| s.on_segment(15, false, true, b"", k));
        assert!(s.eof_delivered());
        assert_eq!(s.gaps, 1);
        assert_eq!(s.gap_bytes, 10);
    }

    #[test]
    fn queue_is_bounded() {
        let mut s = Stream::default();
        collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
        let big = vec![b'x'; 1000];
        let mut out = 0;
        for i in 0..400u32 {
            out += collect(&mut s, |s, k| s.on_segment(1000 + i * 1000, false, false, &big, k)).len();
        }
        assert!(out > 0);
        assert!(s.ooo.len() <= MAX_OOO_SEGMENTS);
        assert!(s.ooo_bytes <= MAX_OOO_BYTES);
    }
}
