//! QUIC long-header packets (UDP port 443): the version of every Google QUIC (`Q0xx`) packet
//! and of IETF QUIC Initial packets, and the client hello of Google QUIC (sent in clear before
//! the handshake: its SNI and its CYU fingerprint).
//!
//! IETF QUIC follows Suricata's parser: each direction is read up to its first Initial (which
//! carries its hello: later packets are encrypted), and a non-Initial long-header packet seen
//! before that ends the parsing of the flow (Suricata cannot decrypt it with the Initial keys).
//! IETF QUIC protects its Initial packets: the server name and the JA3/JA4 of their client
//! hello are not read here (no Initial decryption), so `quic.sni` only matches Google QUIC.

use md5::{Digest as _, Md5};
use std::cell::Cell;
use std::fmt::Write as _;

/// Per-flow IETF QUIC state.
#[derive(Debug, Default)]
pub struct QuicFlowState {
    /// The direction (0 to server) sent its Initial: what follows is encrypted.
    hello: [Cell<bool>; 2],
    /// The parser gave up on the flow.
    stopped: Cell<bool>,
}

/// A QUIC variable-length integer at `at`: (value, bytes used).
fn varint(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *data.get(at)?;
    let len = 1usize << (first >> 6);
    let bytes = data.get(at..at.checked_add(len)?)?;
    let v = bytes[1..].iter().fold(u64::from(first & 0x3f), |acc, &b| (acc << 8) | u64::from(b));
    Some((usize::try_from(v).ok()?, len))
}

/// The length of the IETF long-header packet at the start of `data` and whether it is an
/// Initial.
fn ietf_packet(data: &[u8], v2: bool) -> Option<(usize, bool)> {
    let first = *data.first()?;
    let ty = (first >> 4) & 0x3;
    let initial = if v2 { ty == 1 } else { ty == 0 };
    let retry = if v2 { ty == 0 } else { ty == 3 };
    if retry {
        return Some((data.len(), false));
    }
    let dcid = usize::from(*data.get(5)?);
    let mut at = 6 + dcid;
    let scid = usize::from(*data.get(at)?);
    at += 1 + scid;
    if initial {
        let (token, used) = varint(data, at)?;
        at = at.checked_add(used)?.checked_add(token)?;
    }
    let (len, used) = varint(data, at)?;
    let end = at.checked_add(used)?.checked_add(len)?;
    (end <= data.len()).then_some((end, initial))
}

/// The IETF QUIC packets of a datagram of direction `dir` (0 to server) that Suricata makes
/// transactions of: the version of each Initial read (see the module notes).
pub fn parse_ietf<'a>(data: &'a [u8], dir: usize, state: &QuicFlowState) -> Vec<QuicPacket<'a>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !state.stopped.get() && rest.first().is_some_and(|b| b & 0x80 != 0) {
        let Some(hello) = state.hello.get(dir) else { break };
        if hello.get() {
            break;
        }
        let Some(version) = rest.get(1..5) else { break };
        let v2 = match version {
            [0, 0, 0, 1] => false,
            [0x6b, 0x33, 0x43, 0xcf] => true,
            _ => break,
        };
        let Some((len, initial)) = ietf_packet(rest, v2) else {
            state.stopped.set(true);
            break;
        };
        if !initial {
            state.stopped.set(true);
            break;
        }
        out.push(QuicPacket { version, ..Default::default() });
        hello.set(true);
        rest = &rest[len..];
    }
    out
}

/// The port QUIC is looked for on.
pub const PORT: u16 = 443;

/// One long-header packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuicPacket<'a> {
    /// The version field as on the wire (`quic.version`).
    pub version: &'a [u8],
    /// Google QUIC client hello: the SNI tag's value.
    pub sni: Option<&'a [u8]>,
    /// Google QUIC client hello: the CYU string ("46,PAD-SNI-...") and its MD5 in hex.
    pub cyu: Option<(String, String)>,
}

/// Parses a datagram starting with a Google QUIC long-header packet; `None` for other
/// datagrams (IETF QUIC: [`parse_ietf`]).
pub fn parse(data: &[u8]) -> Option<QuicPacket<'_>> {
    let first = *data.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let version = data.get(1..5)?;
    if version == [0, 0, 0, 0] {
        return None; // version negotiation
    }
    if version[0] == b'Q' {
        if !version[1..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut p = QuicPacket { version, ..Default::default() };
        if let Some((tags, values)) = gquic_chlo(first, data) {
            p.sni = tag_value(tags, values, b"SNI\0");
            let names: Vec<String> =
                tags.chunks(8).map(|t| String::from_utf8_lossy(&t[..4]).trim_end_matches('\0').to_string()).collect();
            let digits = String::from_utf8_lossy(&version[2..]).to_string();
            let s = format!("{digits},{}", names.join("-"));
            let mut h = String::with_capacity(32);
            for b in Md5::digest(s.as_bytes()) {
                let _ = write!(h, "{b:02x}");
            }
            p.cyu = Some((s, h));
        }
        return Some(p);
    }
    None
}

/// The tag entries and the values of a Google QUIC (Q046 and later) unprotected packet's CHLO
/// carried in a stream frame: header, 12-byte message hash, then the frame.
fn gquic_chlo(first: u8, data: &[u8]) -> Option<(&[u8], &[u8])> {
    let lens = *data.get(5)?;
    let dcid = if lens >> 4 == 0 { 0 } else { usize::from(lens >> 4) + 3 };
    let scid = if lens & 0xf == 0 { 0 } else { usize::from(lens & 0xf) + 3 };
    let pn_len = usize::from(first & 0x3) + 1;
    let mut at = 6 + dcid + scid + pn_len + 12;
    let frame_type = *data.get(at)?;
    if frame_type & 0x80 == 0 {
        return None; // not a STREAM frame
    }
    let id_len = usize::from(frame_type & 0x3) + 1;
    let off_bits = usize::from((frame_type >> 2) & 0x7);
    let off_len = if off_bits == 0 { 0 } else { off_bits + 1 };
    at += 1 + id_len + off_len;
    let payload = if frame_type & 0x20 != 0 {
        let len = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        data.get(at + 2..at + 2 + len)?
    } else {
        data.get(at..)?
    };
    if payload.get(..4)? != b"CHLO" {
        return None;
    }
    let n = usize::from(u16::from_le_bytes([*payload.get(4)?, *payload.get(5)?]));
    let tags = payload.get(8..8 + 8 * n)?;
    Some((tags, payload.get(8 + 8 * n..)?))
}

/// The value of one tag: values end at their entry's end offset, in order.
fn tag_value<'a>(tags: &[u8], values: &'a [u8], want: &[u8; 4]) -> Option<&'a [u8]> {
    let mut start = 0usize;
    for t in tags.chunks(8) {
        let end = u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as usize;
        if &t[..4] == want {
            return values.get(start..end);
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chlo_packet() -> Vec<u8> {
        let mut chlo = b"CHLO".to_vec();
        chlo.extend([2, 0, 0, 0]);
        chlo.extend(b"SNI\0");
        chlo.extend(3u32.to_le_bytes());
        chlo.extend(b"VER\0");
        chlo.extend(7u32.to_le_bytes());
        chlo.extend(b"a.bQ046");
        let mut p = vec![0xc3, b'Q', b'0', b'4', b'6', 0x50];
        p.extend([1; 8]);
        p.extend([0, 0, 0, 1]);
        p.extend([0; 12]);
        p.extend([0xa0, 0x01]);
        p.extend((chlo.len() as u16).to_be_bytes());
        p.extend(chlo);
        p
    }

    #[test]
    fn google_quic_client_hello() {
        let pkt = chlo_packet();
        let p = parse(&pkt).unwrap();
        assert_eq!(p.version, b"Q046");
        assert_eq!(p.sni, Some(&b"a.b"[..]));
        let (s, h) = p.cyu.unwrap();
        assert_eq!(s, "46,SNI-VER");
        assert_eq!(h.len(), 32);
        for n in 0..pkt.len() {
            let _ = parse(&pkt[..n]);
        }
    }

    /// A long-header packet: version, type bits, empty connection ids, `body` bytes.
    fn ietf(first: u8, version: [u8; 4], body: usize) -> Vec<u8> {
        let mut p = vec![first];
        p.extend(version);
        p.extend([0, 0]);
        if (first >> 4) & 3 == u8::from(version == [0x6b, 0x33, 0x43, 0xcf]) {
            p.push(0); // Initial: empty token
        }
        p.extend([0x40, body as u8]);
        p.extend(std::iter::repeat_n(0u8, body));
        p
    }

    #[test]
    fn ietf_initials_until_each_side_sent_its_hello() {
        let st = QuicFlowState::default();
        let v1 = [0, 0, 0, 1];
        assert!(parse(&ietf(0xc0, v1, 20)).is_none(), "not Google QUIC");
        assert_eq!(parse_ietf(&ietf(0xc0, v1, 20), 0, &st).len(), 1);
        // the client's next packets are encrypted: not read
        assert!(parse_ietf(&ietf(0xc0, v1, 20), 0, &st).is_empty());
        // the server's Initial coalesced with a Handshake packet: the Initial only
        let both = [ietf(0xc0, v1, 20), ietf(0xe0, v1, 20)].concat();
        assert_eq!(parse_ietf(&both, 1, &st).len(), 1);
        // a Handshake packet before any Initial ends the parsing of the flow
        let st = QuicFlowState::default();
        assert!(parse_ietf(&ietf(0xe0, v1, 20), 0, &st).is_empty());
        assert!(parse_ietf(&ietf(0xc0, v1, 20), 0, &st).is_empty());
        // QUIC v2 numbers its Initial 1; truncated packets stop the parsing
        let st = QuicFlowState::default();
        let v2 = [0x6b, 0x33, 0x43, 0xcf];
        assert_eq!(parse_ietf(&ietf(0xd0, v2, 20), 1, &st)[0].version, v2);
        let p = ietf(0xc0, v1, 20);
        for n in 0..p.len() {
            assert!(parse_ietf(&p[..n], 0, &QuicFlowState::default()).is_empty());
        }
        assert!(parse_ietf(&[0x40, 1, 2, 3, 4], 0, &QuicFlowState::default()).is_empty(), "short header");
    }
}
