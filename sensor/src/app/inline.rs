//! The TCP stream as the rules see it in IPS (inline) mode, Suricata's inline raw reassembly.
//!
//! In IDS mode the stream rules inspect acknowledged chunks of the reassembled stream
//! ([`super::raw`]); inline, a verdict is due at every packet, so each segment with payload is
//! inspected right away, within the contiguous stream data around it (Suricata's
//! `StreamReassembleRawInline`): the bytes before it, and after it when it filled a hole, up to
//! [`INLINE_CHUNK`] bytes in all (never less than the segment). Unacknowledged data counts.
//!
//! Overlaps are normalized as Suricata does inline: the bytes accepted first stay, and a
//! segment that overlaps them with different bytes is inspected with the accepted bytes in
//! place of its own (the packet is "rewritten"), so a rule sees what the receiver sees.
//!
//! Each direction keeps the segments' bytes of the last [`KEEP`] stream bytes (and at most
//! [`MAX_SEGMENTS`] pieces), enough for the window.

use super::raw::rel;
use std::collections::BTreeMap;

/// Suricata's default `stream.reassembly.toserver-chunk-size` / `toclient-chunk-size`.
pub const INLINE_CHUNK: u64 = 2560;
/// Bytes kept behind the highest stream offset seen.
pub const KEEP: u64 = 2 * INLINE_CHUNK;
/// Pieces of stream kept per direction (tiny segments cannot hold more memory than this).
pub const MAX_SEGMENTS: usize = 256;
/// Bytes kept past a hole. A segment past a hole does not move the stream's right edge (the
/// bytes before the hole stay for the segment that fills it); one further ahead is neither
/// kept nor compared, unless half of this already waits past the hole (the hole is given up).
pub const MAX_AHEAD: u64 = 64 * 1024;

/// One direction of a session.
#[derive(Debug, Default)]
pub struct InlineSide {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Bytes received, by stream offset; pieces never overlap (the first copy of a byte wins).
    segs: BTreeMap<u64, Vec<u8>>,
    /// Highest stream offset received.
    right: u64,
}

impl InlineSide {
    fn offset(&mut self, seq: u32) -> Option<u64> {
        let base = *self.base.get_or_insert(seq);
        u64::try_from(rel(seq, base)).ok()
    }

    /// A segment of this direction. Returns its payload normalized (the bytes received first
    /// in place of its own) when it overlaps them with different bytes.
    pub fn on_segment(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Option<Vec<u8>> {
        if syn {
            if self.base.is_none() {
                self.base = Some(seq.wrapping_add(1));
            }
            return None;
        }
        if payload.is_empty() {
            return None;
        }
        let start = self.offset(seq)?;
        let end = start + payload.len() as u64;
        if end + KEEP <= self.right {
            // far behind what is kept: neither compared nor stored
            return None;
        }
        // past a hole (a segment far ahead must not push the bytes before the hole out)
        let past_hole = start > self.right && !self.segs.is_empty();
        if past_hole && end > self.right + MAX_AHEAD {
            let waiting: u64 = self.segs.range(self.right..).map(|(_, d)| d.len() as u64).sum();
            if waiting < MAX_AHEAD / 2 {
                return None;
            }
            self.right = start;
        }
        let mut normalized: Option<Vec<u8>> = None;
        let mut covered: Vec<(u64, u64)> = Vec::new();
        for (&s, d) in self.segs.range(..end).rev() {
            let e = s + d.len() as u64;
            if e <= start {
                break;
            }
            let (lo, hi) = (s.max(start), e.min(end));
            covered.push((lo, hi));
            let old = &d[(lo - s) as usize..(hi - s) as usize];
            let new = &payload[(lo - start) as usize..(hi - start) as usize];
            if old != new {
                normalized.get_or_insert_with(|| payload.to_vec())[(lo - start) as usize..(hi - start) as usize]
                    .copy_from_slice(old);
            }
        }
        // store the parts no earlier piece covers
        covered.sort_unstable();
        let mut at = start;
        for (lo, hi) in covered.into_iter().chain(std::iter::once((end, end))) {
            if lo > at {
                self.segs.insert(at, payload[(at - start) as usize..(lo - start) as usize].to_vec());
            }
            at = at.max(hi);
        }
        // the right edge: through the pieces now contiguous with it
        if start <= self.right {
            while let Some((&s, d)) = self.segs.range(..=self.right).next_back() {
                let e = s + d.len() as u64;
                if e <= self.right {
                    break;
                }
                self.right = e;
            }
        }
        self.prune();
        normalized
    }

    fn prune(&mut self) {
        while let Some((&s, d)) = self.segs.first_key_value() {
            if s + d.len() as u64 + KEEP > self.right {
                break;
            }
            self.segs.remove(&s);
        }
        // too many pieces: those past a hole go first (the newest), then the oldest
        while self.segs.len() > MAX_SEGMENTS {
            let (Some((&first, _)), Some((&last, _))) = (self.segs.first_key_value(), self.segs.last_key_value())
            else {
                break;
            };
            self.segs.remove(if last >= self.right { &last } else { &first });
        }
    }

    /// The stream bytes the stream rules inspect for a segment of `len` bytes at `seq` (after
    /// [`InlineSide::on_segment`]): the contiguous bytes around it, at most [`INLINE_CHUNK`]
    /// (or the segment). `None` when its bytes are not all kept (the packet is inspected).
    pub fn window(&self, seq: u32, len: usize) -> Option<Vec<u8>> {
        let base = self.base?;
        let a = u64::try_from(rel(seq, base)).ok()?;
        let b = a + len as u64;
        if len == 0 {
            return None;
        }
        // the piece holding byte `a`, then adjacent pieces up to `b`
        let (&first, _) = self.segs.range(..=a).next_back()?;
        let mut right = first;
        let mut iter = self.segs.range(first..);
        for (&s, d) in iter.by_ref() {
            if s != right {
                break;
            }
            right = s + d.len() as u64;
            if right >= b + INLINE_CHUNK {
                break;
            }
        }
        if right < b {
            return None;
        }
        let mut left = first;
        while a - left < INLINE_CHUNK {
            match self.segs.range(..left).next_back() {
                Some((&s, d)) if s + d.len() as u64 == left => left = s,
                _ => break,
            }
        }
        // cut to the chunk size around the segment
        let chunk = INLINE_CHUNK.max(b - a);
        if right - left > chunk {
            let extra = chunk - (b - a);
            let after = (right - b).min(extra / 2);
            let before = (a - left).min(extra - after);
            let after = (right - b).min(extra - before);
            left = a - before;
            right = b + after;
        }
        let mut out = Vec::with_capacity((right - left) as usize);
        let from = self.segs.range(..=left).next_back().map_or(left, |(&s, _)| s);
        for (&s, d) in self.segs.range(from..right) {
            let e = s + d.len() as u64;
            let (lo, hi) = (s.max(left), e.min(right));
            if lo < hi {
                out.extend_from_slice(&d[(lo - s) as usize..(hi - s) as usize]);
            }
        }
        Some(out)
    }
}

/// Both directions of a session (to server, to client).
#[derive(Debug, Default)]
pub struct InlineStreams {
    pub sides: [InlineSide; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_inspected_with_the_bytes_before_it() {
        let mut s = InlineSide::default();
        s.on_segment(1000, true, b"");
        for (seq, d) in [(1001, &b"Please "[..]), (1008, b"Let "), (1012, b"Me "), (1015, b"In!")] {
            assert_eq!(s.on_segment(seq, false, d), None);
        }
        assert_eq!(s.window(1015, 3).as_deref(), Some(&b"Please Let Me In!"[..]));
        assert_eq!(s.window(1001, 7).as_deref(), Some(&b"Please Let Me In!"[..]), "a hole filler sees what follows");
    }

    #[test]
    fn the_window_starts_after_a_hole_and_is_cut_to_the_chunk_size() {
        let mut s = InlineSide::default();
        s.on_segment(1, true, b"");
        s.on_segment(2, false, b"GET / HTTP/1.0\r\n");
        // bytes 18..34 never arrive
        s.on_segment(34, false, b"User-Agent: ");
        s.on_segment(46, false, b"Mozilla\r\n\r\n");
        assert_eq!(s.window(46, 11).as_deref(), Some(&b"User-Agent: Mozilla\r\n\r\n"[..]));
        let mut big = InlineSide::default();
        big.on_segment(0, true, b"");
        let data = vec![b'a'; 3000];
        big.on_segment(1, false, &data);
        big.on_segment(3001, false, b"XYZ");
        let w = big.window(3001, 3).unwrap_or_default();
        assert_eq!(w.len() as u64, INLINE_CHUNK);
        assert!(w.ends_with(b"aXYZ"));
        // a segment larger than the chunk is inspected whole
        assert_eq!(big.window(1, 3000).map(|w| w.len()), Some(3000));
    }

    #[test]
    fn an_overlap_with_different_bytes_is_normalized_to_the_first_copy() {
        let mut s = InlineSide::default();
        s.on_segment(1, true, b"");
        assert_eq!(s.on_segment(2, false, b"GOOD"), None);
        assert_eq!(s.on_segment(2, false, b"EVIL").as_deref(), Some(&b"GOOD"[..]));
        assert_eq!(s.on_segment(2, false, b"GOOD"), None, "the same bytes again: untouched");
        // partly new: only the overlapped part is replaced, the new part is kept
        assert_eq!(s.on_segment(4, false, b"XX!!").as_deref(), Some(&b"OD!!"[..]));
        assert_eq!(s.window(2, 6).as_deref(), Some(&b"GOOD!!"[..]));
    }

    #[test]
    fn memory_stays_bounded_and_old_or_unknown_bytes_give_no_window() {
        let mut s = InlineSide::default();
        s.on_segment(0, true, b"");
        for i in 0..10_000u32 {
            s.on_segment(1 + i, false, b"x");
        }
        assert!(s.segs.len() <= MAX_SEGMENTS);
        assert_eq!(s.window(1, 1), None, "pruned");
        assert_eq!(s.on_segment(1, false, b"y"), None, "too old to compare");
        assert_eq!(InlineSide::default().window(5, 1), None);
        // a sequence number before the stream's start
        assert_eq!(s.on_segment(u32::MAX - 5, false, b"zz"), None);
    }

    #[test]
    fn a_segment_sent_far_ahead_does_not_push_the_context_out() {
        let mut s = InlineSide::default();
        s.on_segment(1000, true, b"");
        s.on_segment(1001, false, b"Please ");
        // out of the receiver's window: the receiver drops it; it must not move the stream on
        s.on_segment(1001 + 1_000_000, false, b"junk");
        for (seq, d) in [(1008, &b"Let "[..]), (1012, b"Me "), (1015, b"In!")] {
            s.on_segment(seq, false, d);
        }
        assert_eq!(s.window(1015, 3).as_deref(), Some(&b"Please Let Me In!"[..]));
        // nor do many tiny pieces past a hole
        let mut s = InlineSide::default();
        s.on_segment(0, true, b"");
        s.on_segment(1, false, b"Please Let Me ");
        for i in 0..1000u32 {
            s.on_segment(100 + 2 * i, false, b"x");
        }
        s.on_segment(15, false, b"In!");
        assert_eq!(s.window(15, 3).as_deref(), Some(&b"Please Let Me In!"[..]));
        assert!(s.segs.len() <= MAX_SEGMENTS);
    }

    #[test]
    fn a_hole_with_enough_data_past_it_is_given_up() {
        let mut s = InlineSide::default();
        s.on_segment(0, true, b"");
        s.on_segment(1, false, b"head");
        // bytes 4..100 never come; 64 KiB follow them
        let data = vec![b'a'; 1000];
        let mut seq = 101u32;
        while u64::from(seq) < 101 + MAX_AHEAD + 2000 {
            s.on_segment(seq, false, &data);
            seq += 1000;
        }
        s.on_segment(seq, false, b"tail");
        assert!(s.window(seq, 4).is_some_and(|w| w.ends_with(b"aaatail")));
        assert!(s.segs.len() <= MAX_SEGMENTS);
        assert!(s.segs.values().map(|d| d.len() as u64).sum::<u64>() <= MAX_AHEAD + KEEP + 1000);
    }
}
