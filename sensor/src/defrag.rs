//! IPv4 and IPv6 fragment reassembly with bounded memory.
//!
//! Fragments are grouped by (IP version, addresses, id, protocol, VLANs). Overlapping data
//! keeps the first copy seen ("first wins") and is reported. A tracker lives at most
//! `timeout` after its first fragment; at most `max_trackers` trackers and `max_bytes` of
//! fragment data are held, the oldest tracker being dropped to make room.

use crate::decode::{FragInfo, Packet, internet_checksum};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Limits of the reassembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    pub max_trackers: usize,
    pub max_bytes: usize,
    /// Microseconds a datagram may take to complete.
    pub timeout_micros: i64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig { max_trackers: 4096, max_bytes: 32 << 20, timeout_micros: 60_000_000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    ip_v: u8,
    vlan: [u16; 3],
}

struct Tracker {
    first_seen: i64,
    data: Vec<u8>,
    /// Sorted, merged byte ranges received.
    have: Vec<(u32, u32)>,
    total: Option<u32>,
    /// Header of the offset-0 fragment (IPv4 header with options, or the fixed IPv6 header).
    header: Option<Vec<u8>>,
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum DefragOutcome {
    /// Stored; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: a whole IP packet (header + payload) to decode.
    Reassembled(Vec<u8>),
    /// The fragment was discarded.
    Dropped(DefragEvent),
}

/// Fragment anomalies (Suricata event names via [`DefragEvent::event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefragEvent {
    /// Fragment data would extend a datagram past 65,535 bytes.
    PktTooLarge { ip_v: u8 },
    /// Fragment overlapped data already received (kept; first copy wins).
    Overlap { ip_v: u8 },
    /// A tracker was dropped to stay within the limits.
    TrackerEvicted,
}

impl DefragEvent {
    pub fn event(self) -> &'static str {
        match self {
            DefragEvent::PktTooLarge { ip_v: 6 } => "ipv6.frag_pkt_too_large",
            DefragEvent::PktTooLarge { .. } => "ipv4.frag_pkt_too_large",
            DefragEvent::Overlap { ip_v: 6 } => "ipv6.frag_overlap",
            DefragEvent::Overlap { .. } => "ipv4.frag_overlap",
            DefragEvent::TrackerEvicted => "defrag.max_trackers_reached",
        }
    }
}

/// Counters of the reassembler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub evicted: u64,
    pub overlaps: u64,
    pub too_large: u64,
}

/// The reassembler.
pub struct Defrag {
    cfg: DefragConfig,
    trackers: FxHashMap<FragKey, Tracker>,
    order: VecDeque<(FragKey, i64)>,
    bytes: usize,
    pub stats: DefragStats,
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag { cfg, trackers: FxHashMap::default(), order: VecDeque::new(), bytes: 0, stats: DefragStats::default() }
    }

    /// Number of datagrams being reassembled.
    pub fn len(&self) -> usize {
        self.trackers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    fn remove(&mut self, key: &FragKey) {
        if let Some(t) = self.trackers.remove(key) {
            self.bytes = self.bytes.saturating_sub(t.data.capacity());
        }
    }

    /// Drops trackers older than the timeout.
    pub fn expire(&mut self, now: i64) {
        while let Some(&(key, seen)) = self.order.front() {
            if now - seen < self.cfg.timeout_micros {
                break;
            }
            self.order.pop_front();
            if self.trackers.get(&key).is_some_and(|t| t.first_seen == seen) {
                self.remove(&key);
                self.stats.timeouts += 1;
            }
        }
    }

    /// Adds a fragment (a packet whose `frag` is set) seen at `now` (unix micros). `overlap`
    /// is set when the fragment overlapped earlier data.
    pub fn add(&mut self, pkt: &Packet<'_>, now: i64, overlap: &mut bool) -> DefragOutcome {
        let Some(FragInfo { id, offset, more }) = pkt.frag else {
            return DefragOutcome::Pending;
        };
        self.stats.fragments += 1;
        self.expire(now);
        let data = pkt.ip_payload;
        let end = offset as u64 + data.len() as u64;
        // IPv4 counts its header in the 65,535 bytes; IPv6 only the fragmentable part (Suricata)
        let hdr_len = if pkt.ip_v == 6 { 0 } else { pkt.ip_header.len() as u64 };
        if end + hdr_len > 65535 {
            self.stats.too_large += 1;
            return DefragOutcome::Dropped(DefragEvent::PktTooLarge { ip_v: pkt.ip_v });
        }
        let end = end as u32;
        let key = FragKey { src: pkt.src, dst: pkt.dst, id, proto: pkt.proto, ip_v: pkt.ip_v, vlan: pkt.vlan };
        let mut evicted = false;
        if !self.trackers.contains_key(&key) {
            while self.trackers.len() >= self.cfg.max_trackers || self.bytes + data.len() > self.cfg.max_bytes {
                let Some((old, seen)) = self.order.pop_front() else {
                    break;
                };
                if self.trackers.get(&old).is_some_and(|t| t.first_seen == seen) {
                    self.remove(&old);
                    self.stats.evicted += 1;
                    evicted = true;
                }
            }
            self.trackers.insert(
                key,
                Tracker { first_seen: now, data: Vec::new(), have: Vec::new(), total: None, header: None },
            );
            self.order.push_back((key, now));
        }
        let Some(t) = self.trackers.get_mut(&key) else {
            return DefragOutcome::Pending;
        };
        let before = t.data.capacity();
        if t.data.len() < end as usize {
            t.data.resize(end as usize, 0);
        }
        // Copy only the parts not yet received (first wins), and merge the range.
        let mut cursor = offset;
        let mut overlapped = false;
        for &(a, b) in &t.have {
            if b <= cursor || a >= end {
                continue;
            }
            overlapped = true;
            if a > cursor {
                let (s, e) = (cursor as usize, a as usize);
                t.data[s..e].copy_from_slice(&data[(cursor - offset) as usize..(a - offset) as usize]);
            }
            cursor = cursor.max(b);
        }
        if cursor < end {
            t.data[cursor as usize..end as usize].copy_from_slice(&data[(cursor - offset) as usize..]);
        }
        insert_range(&mut t.have, offset, end);
        if !more {
            t.total = Some(end);
        }
        if offset == 0 {
            t.header.get_or_insert_with(|| pkt.ip_header.to_vec());
        }
        let after = t.data.capacity();
        self.bytes = self.bytes + after - before.min(after);
        if overlapped {
            self.stats.overlaps += 1;
            *overlap = true;
        }
        let complete = match (t.total, t.have.first(), &t.header) {
            (Some(total), Some(&(0, e)), Some(_)) => e >= total && t.have.len() == 1,
            _ => false,
        };
        if !complete {
            if evicted {
                return DefragOutcome::Dropped(DefragEvent::TrackerEvicted);
            }
            return DefragOutcome::Pending;
        }
        let Some(t) = self.trackers.remove(&key) else {
            return DefragOutcome::Pending;
        };
        self.bytes = self.bytes.saturating_sub(t.data.capacity());
        self.stats.reassembled += 1;
        let total = t.total.unwrap_or(0) as usize;
        let header = t.header.unwrap_or_default();
        let payload = t.data.get(..total).unwrap_or(&[]);
        DefragOutcome::Reassembled(build_packet(pkt.ip_v, pkt.proto, &header, payload))
    }
}

fn insert_range(have: &mut Vec<(u32, u32)>, a: u32, b: u32) {
    if a >= b {
        return;
    }
    have.push((a, b));
    have.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(have.len());
    for &(s, e) in have.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *have = merged;
}

fn build_packet(ip_v: u8, proto: u8, header: &[u8], payload: &[u8]) -> Vec<u8> {
    if ip_v == 6 {
        let mut p = Vec::with_capacity(40 + payload.len());
        let mut h = [0u8; 40];
        let n = header.len().min(40);
        h[..n].copy_from_slice(&header[..n]);
        h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        h[6] = proto;
        p.extend_from_slice(&h);
        p.extend_from_slice(payload);
        p
    } else {
        let mut p = Vec::with_capacity(header.len() + payload.len());
        p.extend_from_slice(header);
        if p.len() >= 20 {
            let total = (header.len() + payload.len()) as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[6] = 0;
            p[7] = 0;
            p[10] = 0;
            p[11] = 0;
            let c = internet_checksum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(payload);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, Transport, decode_ipv4};
    use crate::synth;
    use std::net::Ipv4Addr;

    fn frag(off: u16, more: bool, data: &[u8]) -> Vec<u8> {
        synth::ipv4_frag(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 17, 77, 64, off, more, data)
    }

    #[test]
    fn reassembles_out_of_order_fragments_into_a_decodable_packet() {
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let payload: Vec<u8> = (0..100u8).collect();
        let dgram = synth::udp(src, dst, 1000, 2000, &payload);
        let (a, b) = dgram.split_at(48);
        let f1 = frag(0, true, a);
        let f2 = frag(48, false, b);
        let opts = DecodeOptions { checksum_check: true };
        let mut d = Defrag::new(DefragConfig::default());
        let mut ov = false;
        let p2 = decode_ipv4(&f2, [0; 3], opts).unwrap();
        assert_eq!(d.add(&p2, 0, &mut ov), DefragOutcome::Pending);
        let p1 = decode_ipv4(&f1, [0; 3], opts).unwrap();
        let DefragOutcome::Reassembled(whole) = d.add(&p1, 1, &mut ov) else { panic!("not reassembled") };
        assert!(!ov);
        let p = decode_ipv4(&whole, [0; 3], opts).unwrap();
        assert!(p.frag.is_none());
        assert!(matches!(p.transport, Transport::Udp(u) if u.sport == 1000));
        assert_eq!(p.payload, &payload[..]);
        assert!(d.is_empty());
        assert_eq!(d.stats.reassembled, 1);
    }

    #[test]
    fn overlaps_are_flagged_and_memory_is_bounded() {
        let opts = DecodeOptions::default();
        let mut d = Defrag::new(DefragConfig { max_trackers: 2, max_bytes: 1 << 20, timeout_micros: 1_000_000 });
        let mut ov = false;
        let f1 = frag(0, true, &[1u8; 16]);
        let f1b = frag(8, true, &[2u8; 16]);
        assert_eq!(d.add(&decode_ipv4(&f1, [0; 3], opts).unwrap(), 0, &mut ov), DefragOutcome::Pending);
        assert_eq!(d.add(&decode_ipv4(&f1b, [0; 3], opts).unwrap(), 0, &mut ov), DefragOutcome::Pending);
        assert!(ov);
        // Too large.
        let big = frag(65528, false, &[0u8; 16]);
        assert_eq!(
            d.add(&decode_ipv4(&big, [0; 3], opts).unwrap(), 0, &mut ov),
            DefragOutcome::Dropped(DefragEvent::PktTooLarge { ip_v: 4 })
        );
        // Many datagrams: at most two trackers.
        for id in 0..10u16 {
            let f =
                synth::ipv4_frag(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2), 6, id, 64, 0, true, &[0u8; 8]);
            let _ = d.add(&decode_ipv4(&f, [0; 3], opts).unwrap(), 0, &mut ov);
            assert!(d.len() <= 2);
        }
        // Timeout.
        d.expire(10_000_000);
        assert!(d.is_empty());
    }

    #[test]
    fn reassembles_ipv6_fragments() {
        use crate::decode::decode_ipv6;
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        let payload = vec![7u8; 64];
        let dgram = synth::udp(src.into(), dst.into(), 53, 5353, &payload);
        let (a, b) = dgram.split_at(40);
        // Fragment headers: next = UDP, offset (in 8-byte units) << 3 | M, id 0x1234.
        let fh = |off: u16, more: bool| {
            let field = ((off / 8) << 3) | u16::from(more);
            let mut h = vec![17, 0];
            h.extend_from_slice(&field.to_be_bytes());
            h.extend_from_slice(&0x1234u32.to_be_bytes());
            h
        };
        let p1 = synth::ipv6(src, dst, 44, 64, &fh(0, true), a);
        let p2 = synth::ipv6(src, dst, 44, 64, &fh(40, false), b);
        let opts = DecodeOptions { checksum_check: true };
        let mut d = Defrag::new(DefragConfig::default());
        let mut ov = false;
        assert_eq!(d.add(&decode_ipv6(&p1, [0; 3], opts).unwrap(), 0, &mut ov), DefragOutcome::Pending);
        let DefragOutcome::Reassembled(whole) = d.add(&decode_ipv6(&p2, [0; 3], opts).unwrap(), 0, &mut ov) else {
            panic!("not reassembled")
        };
        let p = decode_ipv6(&whole, [0; 3], opts).unwrap();
        assert!(matches!(p.transport, Transport::Udp(u) if u.sport == 53 && u.dport == 5353));
        assert_eq!(p.payload, &payload[..]);
    }
}
