//! Link layers: Ethernet (+802.1Q/802.1ad/QinQ), Linux SLL/SLL2, BSD null/loop, Cisco HDLC, raw IP.

use super::{DecodeError, DecodeOptions, Decoded, LinkType, ip};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes a frame of any supported link type.
pub fn decode_link<'a>(link: LinkType, frame: &'a [u8], opts: DecodeOptions) -> Result<Decoded<'a>, DecodeError> {
    decode_link_mode(link, frame, opts, false)
}

/// [`decode_link`]; `lenient`: a failure after the IP header gives the IP packet with the
/// failure as its event ([`super::decode_invalid`]).
pub(super) fn decode_link_mode<'a>(
    link: LinkType,
    frame: &'a [u8],
    opts: DecodeOptions,
    lenient: bool,
) -> Result<Decoded<'a>, DecodeError> {
    match link {
        LinkType::Ethernet => {
            let ethertype = be16(frame, 12).ok_or(DecodeError::EthernetPktTooSmall)?;
            let rest = frame.get(14..).ok_or(DecodeError::EthernetPktTooSmall)?;
            ethertype_dispatch(ethertype, rest, [0; 3], 0, opts, lenient)
        }
        LinkType::LinuxSll => {
            let proto = be16(frame, 14).ok_or(DecodeError::SllPktTooSmall)?;
            let rest = frame.get(16..).ok_or(DecodeError::SllPktTooSmall)?;
            ethertype_dispatch(proto, rest, [0; 3], 0, opts, lenient)
        }
        LinkType::Chdlc => {
            let proto = be16(frame, 2).ok_or(DecodeError::ChdlcPktTooSmall)?;
            let rest = frame.get(4..).ok_or(DecodeError::ChdlcPktTooSmall)?;
            ethertype_dispatch(proto, rest, [0; 3], 0, opts, lenient)
        }
        LinkType::LinuxSll2 => {
            let proto = be16(frame, 0).ok_or(DecodeError::SllPktTooSmall)?;
            let rest = frame.get(20..).ok_or(DecodeError::SllPktTooSmall)?;
            ethertype_dispatch(proto, rest, [0; 3], 0, opts, lenient)
        }
        LinkType::Null | LinkType::Loop => {
            let fam = frame.get(0..4).ok_or(DecodeError::NullPktTooSmall)?;
            let fam = if link == LinkType::Null {
                // Host byte order of the capturing machine: accept either.
                let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
                let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
                if le < 256 { le } else { be }
            } else {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            };
            let rest = &frame[4..];
            match fam {
                2 => ip::decode_ipv4_mode(rest, [0; 3], opts, lenient).map(Decoded::Ip),
                24 | 28 | 30 => ip::decode_ipv6_mode(rest, [0; 3], opts, lenient).map(Decoded::Ip),
                _ => Ok(Decoded::NonIp { ethertype: 0 }),
            }
        }
        LinkType::RawIp => ip::decode_ip_mode(frame, [0; 3], opts, lenient).map(Decoded::Ip),
        LinkType::Ipv4 => ip::decode_ipv4_mode(frame, [0; 3], opts, lenient).map(Decoded::Ip),
        LinkType::Ipv6 => ip::decode_ipv6_mode(frame, [0; 3], opts, lenient).map(Decoded::Ip),
        LinkType::Other(_) => Err(DecodeError::UnsupportedLinkType),
    }
}

fn ethertype_dispatch<'a>(
    mut ethertype: u16,
    mut rest: &'a [u8],
    mut vlan: [u16; 3],
    mut nvlan: usize,
    opts: DecodeOptions,
    lenient: bool,
) -> Result<Decoded<'a>, DecodeError> {
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => {
                return ip::decode_ipv4_mode(rest, vlan, opts, lenient).map(|p| Decoded::Ip(with_vlans(p, nvlan)));
            }
            ETHERTYPE_IPV6 => {
                return ip::decode_ipv6_mode(rest, vlan, opts, lenient).map(|p| Decoded::Ip(with_vlans(p, nvlan)));
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                if nvlan >= vlan.len() {
                    return Err(DecodeError::VlanTooManyLayers);
                }
                let tci = be16(rest, 0).ok_or(DecodeError::VlanHeaderTooSmall)?;
                let next = be16(rest, 2).ok_or(DecodeError::VlanHeaderTooSmall)?;
                vlan[nvlan] = tci & 0x0fff;
                nvlan += 1;
                ethertype = next;
                rest = &rest[4..];
            }
            other => return Ok(Decoded::NonIp { ethertype: other }),
        }
    }
}

fn with_vlans(mut p: super::Packet<'_>, n: usize) -> super::Packet<'_> {
    p.vlan_len = n as u8;
    p
}
