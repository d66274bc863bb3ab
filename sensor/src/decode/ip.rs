//! IPv4 and IPv6.

use super::{DecodeError, DecodeEvent, DecodeOptions, FragInfo, Packet, Transport, checksum, l4};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest IPv6 extension-header chain followed before giving up.
const MAX_IPV6_EXTHDRS: usize = 8;

/// Decodes an IPv4 or IPv6 packet by its version nibble.
pub fn decode_ip<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    decode_ip_mode(data, vlan, opts, false)
}

pub(super) fn decode_ip_mode<'a>(
    data: &'a [u8],
    vlan: [u16; 3],
    opts: DecodeOptions,
    lenient: bool,
) -> Result<Packet<'a>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(6) => decode_ipv6_mode(data, vlan, opts, lenient),
        Some(_) => decode_ipv4_mode(data, vlan, opts, lenient),
        None => Err(DecodeError::Ipv4PktTooSmall),
    }
}

/// The transport layer of `pkt`; `lenient`: a failure the packet can be inspected with
/// ([`DecodeEvent::of_error`]) leaves it [`Transport::Other`] with the failure as its event.
fn transport<'a>(pkt: &mut Packet<'a>, opts: DecodeOptions, lenient: bool) -> Result<(), DecodeError> {
    match l4::decode_transport(pkt.proto, pkt.ip_payload, pkt.src, pkt.dst, opts) {
        Ok((transport, app)) => {
            pkt.transport = transport;
            pkt.payload = app;
            Ok(())
        }
        Err(e) => match DecodeEvent::of_error(e).filter(|_| lenient) {
            Some(ev) => {
                pkt.transport = Transport::Other;
                pkt.events |= ev.bit();
                Ok(())
            }
            None => Err(e),
        },
    }
}

/// Suricata's IPv6 option types (Pad1, PadN, router alert, jumbo payload, home address).
fn known_ipv6_option(t: u8) -> bool {
    matches!(t, 0x00 | 0x01 | 0x05 | 0xc2 | 0xc9)
}

/// The events of the options of a hop-by-hop or destination-options header (`opts`: the
/// header after its next-header and length bytes): an unknown option type.
fn option_events(opts: &[u8], unknown: DecodeEvent) -> u64 {
    let mut at = 0;
    while let Some(&t) = opts.get(at) {
        if t == 0 {
            at += 1;
            continue;
        }
        let Some(&len) = opts.get(at + 1) else { break };
        if !known_ipv6_option(t) {
            return unknown.bit();
        }
        at += 2 + len as usize;
    }
    0
}

/// Decodes an IPv4 packet (and its transport layer). Trailing bytes beyond the total length
/// (Ethernet padding) are ignored.
pub fn decode_ipv4<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    decode_ipv4_mode(data, vlan, opts, false)
}

pub(super) fn decode_ipv4_mode<'a>(
    data: &'a [u8],
    vlan: [u16; 3],
    opts: DecodeOptions,
    lenient: bool,
) -> Result<Packet<'a>, DecodeError> {
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
        ip_headers: header,
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
    transport(&mut pkt, opts, lenient)?;
    Ok(pkt)
}

/// Decodes an IPv6 packet, skipping hop-by-hop, routing, destination-options, fragment (for
/// atomic fragments), AH and mobility headers.
pub fn decode_ipv6<'a>(data: &'a [u8], vlan: [u16; 3], opts: DecodeOptions) -> Result<Packet<'a>, DecodeError> {
    decode_ipv6_mode(data, vlan, opts, false)
}

pub(super) fn decode_ipv6_mode<'a>(
    data: &'a [u8],
    vlan: [u16; 3],
    opts: DecodeOptions,
    lenient: bool,
) -> Result<Packet<'a>, DecodeError> {
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
    // the failure that ends the chain early (a truncated header, an invalid fragment length)
    let mut invalid = None;
    // within an extension-header chain, what follows needs at least 2 bytes (Suricata)
    let chain = matches!(next, 0 | 43 | 44 | 51 | 60 | 135);
    loop {
        if chain && next != 59 && rest.len() < 2 {
            invalid = Some(DecodeError::Ipv6TruncExthdr);
            break;
        }
        match next {
            // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
            0 | 43 | 60 | 135 => {
                let (Some(&nh), Some(&l)) = (rest.first(), rest.get(1)) else {
                    invalid = Some(DecodeError::Ipv6TruncExthdr);
                    break;
                };
                let len = (l as usize + 1) * 8;
                let Some(after) = rest.get(len..) else {
                    invalid = Some(DecodeError::Ipv6TruncExthdr);
                    break;
                };
                match next {
                    0 => events |= option_events(&rest[2..len], DecodeEvent::Ipv6HopoptsUnknownOpt),
                    60 => events |= option_events(&rest[2..len], DecodeEvent::Ipv6DstoptsUnknownOpt),
                    _ => {}
                }
                rest = after;
                next = nh;
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let (Some(&nh), Some(&l)) = (rest.first(), rest.get(1)) else {
                    invalid = Some(DecodeError::Ipv6TruncExthdr);
                    break;
                };
                let Some(after) = rest.get((l as usize + 2) * 4..) else {
                    invalid = Some(DecodeError::Ipv6TruncExthdr);
                    break;
                };
                rest = after;
                next = nh;
            }
            // Fragment header: 8 bytes.
            44 => {
                let Some(fh) = rest.get(..8) else {
                    invalid = Some(DecodeError::Ipv6TruncExthdr);
                    break;
                };
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
                // a fragment that is not the last must carry a multiple of 8 bytes
                if more && rest.len() % 8 != 0 {
                    invalid = Some(DecodeError::Ipv6FragInvalidLength);
                    break;
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
        ip_headers: data.get(..40 + body.len() - rest.len()).unwrap_or(h),
        frag,
        ip_payload: rest,
        transport: Transport::Fragment,
        payload: &[],
        events: 0,
    };
    pkt.events = events;
    if let Some(e) = invalid {
        // inspected as an IP packet carrying the event, never tracked or reassembled
        let ev = DecodeEvent::of_error(e).filter(|_| lenient).ok_or(e)?;
        pkt.events |= ev.bit();
        pkt.transport = Transport::Other;
        return Ok(pkt);
    }
    if frag.is_some() {
        return Ok(pkt);
    }
    transport(&mut pkt, opts, lenient)?;
    Ok(pkt)
}
