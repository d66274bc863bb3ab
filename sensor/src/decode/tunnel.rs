//! Tunnel decapsulation: Geneve (UDP port 6081) and GRE (version 0), as Suricata's decoders.
//!
//! [`inner`] gives the encapsulated packet of a decoded packet, if it is one of these tunnels
//! carrying IPv4, IPv6 or Ethernet (transparent Ethernet bridging): the sensor processes it as
//! a packet of its own (Suricata's tunnel pseudo-packets). A tunnel header that is truncated or
//! of another version or protocol gives `None`: the packet stays as it is.

use super::{Packet, Transport};

/// Suricata's default Geneve port.
pub const GENEVE_PORT: u16 = 6081;

/// What a tunnel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
}

fn by_ethertype(proto: u16, data: &[u8]) -> Option<Inner<'_>> {
    match proto {
        0x0800 | 0x86dd => Some(Inner::Ip(data)),
        0x6558 => Some(Inner::Ethernet(data)),
        _ => None,
    }
}

/// The GRE payload of a GRE packet's IP payload (version 0: optional checksum, key and sequence
/// number words; no source routing).
pub fn gre(data: &[u8]) -> Option<Inner<'_>> {
    let h = data.get(..4)?;
    let flags = u16::from_be_bytes([h[0], h[1]]);
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        return None; // version 1 (PPTP) or routing present
    }
    let mut len = 4;
    for bit in [0x8000, 0x2000, 0x1000] {
        if flags & bit != 0 {
            len += 4;
        }
    }
    by_ethertype(u16::from_be_bytes([h[2], h[3]]), data.get(len..)?)
}

/// The payload of a Geneve header (version 0, options skipped).
pub fn geneve(data: &[u8]) -> Option<Inner<'_>> {
    let h = data.get(..8)?;
    if h[0] >> 6 != 0 {
        return None;
    }
    let opt_len = usize::from(h[0] & 0x3f) * 4;
    by_ethertype(u16::from_be_bytes([h[2], h[3]]), data.get(8 + opt_len..)?)
}

/// The encapsulated packet of `p`: the payload of a GRE packet, or of a UDP datagram to the
/// Geneve port.
pub fn inner<'a>(p: &Packet<'a>) -> Option<Inner<'a>> {
    if p.frag.is_some() {
        return None;
    }
    match p.transport {
        Transport::Udp(_) if p.dst_port() == GENEVE_PORT => geneve(p.payload),
        Transport::Other if p.proto == 47 => gre(p.ip_payload),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_headers_with_optional_words_and_bad_versions() {
        let ip = [0x45u8, 0, 0, 20];
        let mut plain = vec![0, 0, 0x08, 0x00];
        plain.extend_from_slice(&ip);
        assert_eq!(gre(&plain), Some(Inner::Ip(&ip[..])));
        let mut keyed = vec![0x20, 0, 0x65, 0x58, 1, 2, 3, 4];
        keyed.extend_from_slice(&ip);
        assert_eq!(gre(&keyed), Some(Inner::Ethernet(&ip[..])));
        assert_eq!(gre(&[0x30, 0, 0x08, 0x00, 1, 2, 3]), None, "key and sequence words cut");
        assert_eq!(gre(&[0, 1, 0x88, 0x0b]), None, "version 1 (PPTP)");
        assert_eq!(gre(&[0, 0, 0x88, 0xbe, 0]), None, "an unknown protocol");
        assert_eq!(gre(&[0, 0]), None);
    }

    #[test]
    fn geneve_options_are_skipped() {
        let ip = [0x45u8, 0, 0, 20];
        let mut g = vec![0x01, 0, 0x08, 0x00, 0, 0, 1, 0, 9, 9, 9, 9];
        g.extend_from_slice(&ip);
        assert_eq!(geneve(&g), Some(Inner::Ip(&ip[..])));
        assert_eq!(geneve(&g[..10]), None, "options cut");
        assert_eq!(geneve(&[0x40, 0, 0x08, 0, 0, 0, 0, 0]), None, "version 1");
        assert_eq!(geneve(&[0, 0, 0x08]), None);
    }
}
