//! IPv4 and IPv6.

use super::{DecodeError, DecodeEvent, DecodeOptions, FragInfo, Packet, Transport, checksum, l4};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest IPv6 extension-header chain followed before giving up.
const MAX_IPV6_EXTHDRS: usize = 8;

/// Decodes an IPv4 or IPv6 packet by its version nibble.
pub fn decode_ip<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(6) => decode_ipv6(data, vlan, opts),
        Some(_) => decode_ipv4(data, vlan, opts),
        None => Err(DecodeError::Ipv4PktTooSmall),
    }
}

/// Decodes an IPv4 packet (and its transport layer). Trailing bytes beyond the total length
/// (Ethernet padding) are ignored.
pub fn decode_ipv4<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    let h = data.get(..20).ok_or(DecodeError::Ipv4PktTooSmall)?;
    if h[0] >> 4 != 4 {
        return Err(DecodeError::Ipv4WrongIpVersion);
    }
    let hlen = ((h[0] & 0x0f) as usize) * 4;
    if hlen < 20 {
        return Err(DecodeError::Ipv4HlenTooSmall);
    }
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if total < hlen {
        return Err(DecodeError::Ipv4IplenSmallerThanHlen);
    }
    if data.len() < total {
        return Err(DecodeError::Ipv4TruncPkt);
    }
    let header = &data[..hlen];
    if opts.checksum_check && checksum::ones_complement_sum(header, 0) != 0xffff {
        return Err(DecodeError::Ipv4InvalidChecksum);
    }
    let payload = &data[hlen..total];
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let proto = h[9];
    let frag_field = u16::from_be_bytes([h[6], h[7]]);
    let more = frag_field & 0x2000 != 0;
    let offset = ((frag_field & 0x1fff) as u32) * 8;
    let mut pkt = Packet {
        vlan,
        vlan_len: vlan.iter().filter(|v| **v != 0).count() as u8,
        ip_v: 4,
        src,
        dst,
        proto,
        ttl: h[8],
        ip_header: header,
        frag: None,
        ip_payload: payload,
        transport: Transport::Fragment,
        payload: &[],
        events: 0,
    };
    if more || offset != 0 {
        pkt.frag = Some(FragInfo { id: u16::from_be_bytes([h[4], h[5]]) as u32, offset, more });
        return Ok(pkt);
    }
    let (transport, app) = l4::decode_transport(proto, payload, src, dst, opts)?;
    pkt.transport = transport;
    pkt.payload = app;
    Ok(pkt)
}

/// Decodes an IPv6 packet, skipping hop-by-hop, routing, destination-options, fragment (for
/// atomic fragments), AH and mobility headers.
pub fn decode_ipv6<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    let h = data.get(..40).ok_or(DecodeError::Ipv6PktTooSmall)?;
    if h[0] >> 4 != 6 {
        return Err(DecodeError::Ipv6WrongIpVersion);
    }
    let plen = u16::from_be_bytes([h[4], h[5]]) as usize;
    let body = data.get(40..40 + plen).ok_or(DecodeError::Ipv6TruncPkt)?;
    let mut s = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&h[24..40]);
    let src = IpAddr::V6(Ipv6Addr::from(s));
    let dst = IpAddr::V6(Ipv6Addr::from(d));

    let mut next = h[6];
    let mut rest = body;
    let mut frag = None;
    let mut hops = 0;
    let mut events = 0u64;
    let mut frag_headers = 0;
    loop {
        match next {
            // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
            0 | 43 | 60 | 135 => {
                let nh = *rest.first().ok_or(DecodeError::Ipv6TruncExthdr)?;
                let len = (*rest.get(1).ok_or(DecodeError::Ipv6TruncExthdr)? as usize + 1) * 8;
                rest = rest.get(len..).ok_or(DecodeError::Ipv6TruncExthdr)?;
                next = nh;
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let nh = *rest.first().ok_or(DecodeError::Ipv6TruncExthdr)?;
                let len = (*rest.get(1).ok_or(DecodeError::Ipv6TruncExthdr)? as usize + 2) * 4;
                rest = rest.get(len..).ok_or(DecodeError::Ipv6TruncExthdr)?;
                next = nh;
            }
            // Fragment header: 8 bytes.
            44 => {
                let fh = rest.get(..8).ok_or(DecodeError::Ipv6TruncExthdr)?;
                let off_field = u16::from_be_bytes([fh[2], fh[3]]);
                let offset = ((off_field >> 3) as u32) * 8;
                let more = off_field & 1 != 0;
                let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
                next = fh[0];
                rest = &rest[8..];
                frag_headers += 1;
                if frag_headers > 1 {
                    events |= DecodeEvent::Ipv6ExthdrDuplFh.bit();
                }
                if offset != 0 || more {
                    frag = Some(FragInfo { id, offset, more });
                    break;
                }
                // Atomic fragment (offset 0, no more fragments): just a header to skip. It is
                // not counted against the chain limit (each takes 8 bytes: the packet's length
                // bounds them), as Suricata decodes any number of them.
                events |= DecodeEvent::Ipv6ExthdrUselessFh.bit();
                continue;
            }
            _ => break,
        }
        hops += 1;
        if hops > MAX_IPV6_EXTHDRS {
            return Err(DecodeError::Ipv6ExthdrTooMany);
        }
    }
    let mut pkt = Packet {
        vlan,
        vlan_len: vlan.iter().filter(|v| **v != 0).count() as u8,
        ip_v: 6,
        src,
        dst,
        proto: next,
        ttl: h[7],
        ip_header: h,
        frag,
        ip_payload: rest,
        transport: Transport::Fragment,
        payload: &[],
        events: 0,
    };
    pkt.events = events;
    if frag.is_some() {
        return Ok(pkt);
    }
    let (transport, app) = l4::decode_transport(next, rest, src, dst, opts)?;
    pkt.transport = transport;
    pkt.payload = app;
    Ok(pkt)
}
