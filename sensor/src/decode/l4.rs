//! TCP, UDP, ICMP, ICMPv6, SCTP (its ports).

use super::{DecodeError, DecodeOptions, IcmpHdr, SctpHdr, TcpHdr, Transport, UdpHdr, checksum, ipproto};
use std::net::IpAddr;

/// Decodes the transport header of an (unfragmented) IP payload.
pub fn decode_transport(
    proto: u8,
    data: &[u8],
    src: IpAddr,
    dst: IpAddr,
    opts: DecodeOptions,
) -> Result<(Transport, &[u8]), DecodeError> {
    match proto {
        ipproto::TCP => {
            let h = data.get(..20).ok_or(DecodeError::TcpPktTooSmall)?;
            let hlen = ((h[12] >> 4) as usize) * 4;
            if hlen < 20 {
                return Err(DecodeError::TcpHlenTooSmall);
            }
            if data.len() < hlen {
                return Err(DecodeError::TcpInvalidOptlen);
            }
            if opts.checksum_check && !checksum::l4_checksum_ok(src, dst, proto, data) {
                return Err(DecodeError::TcpInvalidChecksum);
            }
            let t = TcpHdr {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
                flags: h[13],
                window: u16::from_be_bytes([h[14], h[15]]),
                hlen: hlen as u8,
            };
            Ok((Transport::Tcp(t), &data[hlen..]))
        }
        ipproto::UDP => {
            let h = data.get(..8).ok_or(DecodeError::UdpHlenTooSmall)?;
            let len = u16::from_be_bytes([h[4], h[5]]);
            if (len as usize) < 8 {
                return Err(DecodeError::UdpLenInvalid);
            }
            let seg = data.get(..len as usize).ok_or(DecodeError::UdpPktTooSmall)?;
            let csum = u16::from_be_bytes([h[6], h[7]]);
            // A zero checksum means "none" over IPv4.
            if opts.checksum_check && !(csum == 0 && src.is_ipv4()) && !checksum::l4_checksum_ok(src, dst, proto, seg) {
                return Err(DecodeError::UdpInvalidChecksum);
            }
            let u = UdpHdr { sport: u16::from_be_bytes([h[0], h[1]]), dport: u16::from_be_bytes([h[2], h[3]]), len };
            Ok((Transport::Udp(u), &seg[8..]))
        }
        ipproto::ICMP => {
            let h = data.get(..8).ok_or(DecodeError::Icmpv4PktTooSmall)?;
            if opts.checksum_check && checksum::ones_complement_sum(data, 0) != 0xffff {
                return Err(DecodeError::Icmpv4InvalidChecksum);
            }
            Ok((Transport::Icmp(IcmpHdr { icmp_type: h[0], code: h[1] }), &data[8..]))
        }
        ipproto::ICMPV6 => {
            let h = data.get(..8).ok_or(DecodeError::Icmpv6PktTooSmall)?;
            if opts.checksum_check && !checksum::l4_checksum_ok(src, dst, proto, data) {
                return Err(DecodeError::Icmpv6InvalidChecksum);
            }
            Ok((Transport::Icmpv6(IcmpHdr { icmp_type: h[0], code: h[1] }), &data[8..]))
        }
        // SCTP: the 12-byte common header (ports, verification tag, checksum), then the chunks;
        // a shorter packet is kept as an undecoded protocol
        132 if data.len() >= 12 => {
            let s = SctpHdr {
                sport: u16::from_be_bytes([data[0], data[1]]),
                dport: u16::from_be_bytes([data[2], data[3]]),
            };
            Ok((Transport::Sctp(s), &data[12..]))
        }
        // GRE (not decoded further): at least the 4-byte base header
        47 if data.len() < 4 => Err(DecodeError::GrePktTooSmall),
        _ => Ok((Transport::Other, &[])),
    }
}
