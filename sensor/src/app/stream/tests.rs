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

fn seg(s: &mut Stream, seq: u32, data: &[u8]) -> Vec<String> {
    collect(s, |s, k| s.on_segment(seq, false, false, data, k))
}

fn stream(cfg: StreamConfig) -> (Stream, Arc<Reassembly>) {
    let shared = Reassembly::new(cfg);
    let mut s = Stream::new(shared.clone());
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    (s, shared)
}

#[test]
fn in_order_retransmit_and_reorder() {
    let mut s = Stream::default();
    assert!(collect(&mut s, |s, k| s.on_segment(99, true, false, b"", k)).is_empty());
    assert_eq!(seg(&mut s, 100, b"abc"), ["abc"]);
    // Retransmission with new bytes at the end.
    assert_eq!(seg(&mut s, 101, b"bcde"), ["de"]);
    // Out of order: held back, then released.
    assert!(seg(&mut s, 108, b"hi").is_empty());
    assert_eq!(seg(&mut s, 105, b"fg"), ["fg"]);
    // The queued "h" arrived first: it is kept, only "g" comes from this segment.
    assert_eq!(seg(&mut s, 107, b"gh"), ["g", "hi"]);
    assert_eq!(s.next_seq(), Some(110));
}

#[test]
fn acked_hole_becomes_a_gap_and_fin_sets_eof() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    seg(&mut s, 1, b"aa");
    assert!(seg(&mut s, 13, b"zz").is_empty());
    assert_eq!(collect(&mut s, |s, k| s.on_ack(15, k)), ["<gap 10>", "zz"]);
    collect(&mut s, |s, k| s.on_segment(15, false, true, b"", k));
    assert!(s.eof_delivered());
    assert_eq!(s.gaps, 1);
    assert_eq!(s.gap_bytes, 10);
    assert!(s.has_gap());
}

#[test]
fn a_hole_at_the_end_of_a_direction_is_reported_but_not_flagged() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    seg(&mut s, 1, b"aa");
    // The FIN shows 10 bytes never came; nothing follows them.
    assert_eq!(collect(&mut s, |s, k| s.on_segment(13, false, true, b"", k)), ["<gap 10>"]);
    assert_eq!(s.gaps, 1);
    assert!(!s.has_gap());
}

#[test]
fn queue_is_bounded_per_direction() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    let big = vec![b'x'; 1000];
    let mut out = 0;
    for i in 0..400u32 {
        out += seg(&mut s, 1000 + i * 1000, &big).len();
    }
    assert!(out > 0);
    assert!(s.ooo.len() <= MAX_OOO_SEGMENTS);
    assert!(s.ooo_bytes <= MAX_OOO_BYTES);
}

#[test]
fn a_direction_held_for_the_other_one_stays_within_the_per_flow_caps() {
    let (mut s, _) = stream(StreamConfig { max_ooo_segments: 2, ..Default::default() });
    s.set_wait(1_000);
    // In order, but held until the other direction reaches 1,000.
    assert!(seg(&mut s, 1, b"a").is_empty());
    assert!(seg(&mut s, 2, b"b").is_empty());
    // The third held segment is over the cap: the wait is given up and all is delivered.
    assert_eq!(seg(&mut s, 3, b"c"), ["a", "b", "c"]);
    assert_eq!(s.waiting_for(), None);
    assert_eq!(s.ooo.len(), 0);
}

#[test]
fn the_per_direction_segment_cap_is_configurable() {
    let (mut s, shared) = stream(StreamConfig { max_ooo_segments: 2, ..Default::default() });
    assert!(seg(&mut s, 11, b"b").is_empty());
    assert!(seg(&mut s, 21, b"c").is_empty());
    // The third queued segment is one too many: the first hole is given up.
    assert_eq!(seg(&mut s, 31, b"d"), ["<gap 10>", "b"]);
    assert_eq!(shared.counters().gaps, 1);
    assert_eq!(s.ooo.len(), 2);
}

#[test]
fn a_retransmission_with_different_bytes_is_flagged_and_the_first_copy_is_kept() {
    let (mut s, shared) = stream(StreamConfig::default());
    assert_eq!(seg(&mut s, 1, b"GET /index.html"), ["GET /index.html"]);
    // Same sequence numbers, other bytes (the copy the host got, if the first had a short TTL).
    assert!(seg(&mut s, 1, b"GET /evil.php!!").is_empty());
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data), (1, 1));
    // An identical retransmission is an overlap, not different data.
    assert!(seg(&mut s, 5, b"/index").is_empty());
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data), (2, 1));
    // Only the new tail of a retransmission that extends the stream is delivered.
    assert_eq!(seg(&mut s, 13, b"tmlXX"), ["XX"]);
    assert_eq!(shared.counters().overlap_diff_data, 1);
}

#[test]
fn acknowledged_bytes_are_not_compared() {
    let (mut s, shared) = stream(StreamConfig::default());
    seg(&mut s, 1, b"hello");
    collect(&mut s, |s, k| s.on_ack(6, k));
    assert!(seg(&mut s, 1, b"HELLO").is_empty());
    assert_eq!(shared.counters().overlaps, 0);
}

#[test]
fn without_the_ring_overlaps_are_counted_but_not_compared() {
    let (mut s, shared) = stream(StreamConfig { overlap_check_bytes: 0, ..Default::default() });
    seg(&mut s, 1, b"hello");
    seg(&mut s, 1, b"HELLO");
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data, c.memuse), (1, 0, 0));
}

#[test]
fn the_ring_compares_only_the_newest_bytes() {
    let (mut s, shared) = stream(StreamConfig { overlap_check_bytes: 8, ..Default::default() });
    seg(&mut s, 1, b"0123456789abcdef");
    // Bytes 1..9 ("01234567") fell out of the 8-byte ring: not compared.
    seg(&mut s, 1, b"XXXXXXXX");
    assert_eq!(shared.counters().overlap_diff_data, 0);
    // Bytes 9..17 ("89abcdef") are kept: a change at the ring's wrap point is seen.
    seg(&mut s, 12, b"bcdeF");
    assert_eq!(shared.counters().overlap_diff_data, 1);
    seg(&mut s, 9, b"89abcdef");
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data), (3, 1));
}

#[test]
fn a_queued_segment_keeps_its_bytes_against_a_later_in_order_one() {
    let (mut s, shared) = stream(StreamConfig::default());
    // Bytes 5..9 arrive first (out of order), then a segment 1..9 fills the hole with other
    // bytes for 5..9: the first copy ("EVIL") is what the parser sees.
    assert!(seg(&mut s, 5, b"EVIL").is_empty());
    assert_eq!(seg(&mut s, 1, b"GET GOODmore").concat(), "GET EVILmore");
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data), (1, 1));
    assert_eq!(s.next_seq(), Some(13));
    assert_eq!(c.memuse as usize, DEFAULT_OVERLAP_CHECK);
}

#[test]
fn overlapping_queued_segments_keep_the_first_bytes() {
    let (mut s, shared) = stream(StreamConfig::default());
    assert!(seg(&mut s, 11, b"AAAA").is_empty());
    // Starts before the queued bytes and covers them (BSD would take these): first wins.
    assert!(seg(&mut s, 9, b"bbBBBBbb").is_empty());
    assert!(seg(&mut s, 13, b"cc").is_empty());
    assert_eq!(seg(&mut s, 1, b"01234567").concat(), "01234567bbAAAAbb");
    let c = shared.counters();
    assert_eq!((c.overlaps, c.overlap_diff_data), (2, 2));
}

#[test]
fn reaching_the_memcap_drops_the_segment_and_its_bytes_become_a_gap() {
    let (mut s, shared) = stream(StreamConfig { memcap: 100, overlap_check_bytes: 0, ..Default::default() });
    assert!(seg(&mut s, 11, &[b'a'; 80]).is_empty());
    assert_eq!(shared.memuse(), 80);
    // 80 + 50 > 100: not stored.
    assert!(seg(&mut s, 91, &[b'b'; 50]).is_empty());
    assert_eq!(shared.counters().memcap_drops, 1);
    assert_eq!(shared.memuse(), 80);
    // The receiver acknowledges everything: both holes are reported, the kept bytes delivered.
    let out = collect(&mut s, |s, k| s.on_ack(141, k));
    assert_eq!(out[0], "<gap 10>");
    assert_eq!(out[1].len(), 80);
    assert!(seg(&mut s, 141, b"z").is_empty());
    let out = collect(&mut s, |s, k| s.on_ack(142, k));
    assert_eq!(out, ["<gap 50>", "z"]);
    assert_eq!(shared.memuse(), 0);
    let c = shared.counters();
    assert_eq!((c.gaps, c.gap_bytes), (2, 60));
}

#[test]
fn memory_is_given_back_when_a_stream_is_dropped() {
    let shared = Reassembly::new(StreamConfig::default());
    {
        let mut s = Stream::new(shared.clone());
        collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
        seg(&mut s, 1, b"in order");
        seg(&mut s, 100, b"queued");
        assert_eq!(shared.memuse(), DEFAULT_OVERLAP_CHECK + 6);
    }
    assert_eq!(shared.memuse(), 0);
}

#[test]
fn the_depth_stops_delivery_but_sequence_numbers_are_followed() {
    let (mut s, shared) = stream(StreamConfig { depth: 10, ..Default::default() });
    assert_eq!(seg(&mut s, 1, b"012345"), ["012345"]);
    assert!(seg(&mut s, 20, b"queued").is_empty());
    assert_eq!(seg(&mut s, 7, b"6789ab"), ["6789"]);
    assert!(s.depth_reached());
    assert_eq!(shared.counters().depth_reached, 1);
    // Queued bytes were let go, and later data is followed without being delivered.
    assert_eq!(shared.memuse(), 0);
    assert!(seg(&mut s, 26, b"more").is_empty());
    assert_eq!(s.next_seq(), Some(30));
    assert!(collect(&mut s, |s, k| s.on_segment(30, false, true, b"", k)).is_empty());
    assert!(s.eof_delivered());
    assert_eq!(shared.counters().depth_reached, 1);
    assert_eq!(s.delivered, 10);
}

#[test]
fn depth_zero_means_unlimited() {
    let (mut s, shared) = stream(StreamConfig { depth: 0, ..Default::default() });
    let chunk = vec![b'x'; 1000];
    for i in 0..2000u32 {
        seg(&mut s, 1 + i * 1000, &chunk);
    }
    assert_eq!(s.delivered, 2_000_000);
    assert_eq!(shared.counters().depth_reached, 0);
}

#[test]
fn a_gap_counts_towards_the_depth() {
    let (mut s, shared) = stream(StreamConfig { depth: 10, ..Default::default() });
    seg(&mut s, 1, b"ab");
    collect(&mut s, |s, k| s.on_ack(20, k));
    // A hole of 17 bytes, acknowledged: at the next acknowledgement the gap takes the stream
    // past its depth.
    assert!(seg(&mut s, 20, b"late").is_empty());
    assert_eq!(collect(&mut s, |s, k| s.on_ack(24, k)), ["<gap 17>"]);
    assert!(s.depth_reached());
    assert_eq!(shared.counters().depth_reached, 1);
}

#[test]
fn an_acknowledged_hole_is_given_up_at_the_next_acknowledgement_not_before() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    seg(&mut s, 1, b"aa");
    collect(&mut s, |s, k| s.on_ack(13, k));
    // The peer acknowledged bytes 3..13 never seen here: the segment after them waits.
    assert!(seg(&mut s, 13, b"zz").is_empty());
    // Their retransmission arrives before the next acknowledgement: no gap.
    assert_eq!(seg(&mut s, 3, b"0123456789"), ["0123456789", "zz"]);
    assert_eq!(s.gaps, 0);
}

#[test]
fn a_retransmission_ending_before_the_acknowledged_bytes_is_ignored() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    // The first 12 bytes were never captured; the peer acknowledged them.
    collect(&mut s, |s, k| s.on_ack(13, k));
    assert!(seg(&mut s, 13, b"POST").is_empty());
    // A retransmission of bytes 1..7: it ends before the acknowledged 13, and the
    // acknowledgement covers no byte never seen (13..17 arrived): spurious, ignored.
    assert!(seg(&mut s, 1, b"abcdef").is_empty());
    // The rest (7..13) ends at the acknowledgement: kept.
    assert!(seg(&mut s, 7, b"ghijkl").is_empty());
    // The next acknowledgement gives up the hole that is left.
    assert_eq!(collect(&mut s, |s, k| s.on_ack(13, k)), ["<gap 6>", "ghijkl", "POST"]);
    assert_eq!(s.gap_bytes, 6);
}

#[test]
fn a_retransmission_is_kept_when_the_acknowledgement_covers_bytes_never_seen() {
    let mut s = Stream::default();
    collect(&mut s, |s, k| s.on_segment(0, true, false, b"", k));
    seg(&mut s, 1, b"aa");
    collect(&mut s, |s, k| s.on_ack(20, k));
    // Ends before the acknowledgement, but nothing up to it was seen: not spurious.
    assert_eq!(seg(&mut s, 3, b"bbbbb"), ["bbbbb"]);
}
