//! Internet checksum (RFC 1071) helpers.

use std::net::IpAddr;

/// One's-complement sum of 16-bit big-endian words (an odd trailing byte is padded with 0),
/// folded to 16 bits, added to `initial`.
pub fn ones_complement_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum: u64 = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum field value for `data` (with its checksum field zeroed).
pub fn internet_checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data, 0)
}

/// Sum of the TCP/UDP/ICMPv6 pseudo-header.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks_exact(2) {
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (s, d) => {
            add(&to16(s));
            add(&to16(d));
        }
    }
    sum + proto as u32 + (len >> 16) + (len & 0xffff)
}

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// True when the transport segment's checksum (field included in `segment`) verifies.
pub fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> bool {
    let ph = pseudo_header_sum(src, dst, proto, segment.len() as u32);
    ones_complement_sum(segment, ph) == 0xffff
}

/// The TCP/UDP checksum field value for `segment` (checksum field zeroed).
pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let ph = pseudo_header_sum(src, dst, proto, segment.len() as u32);
    !ones_complement_sum(segment, ph)
}
