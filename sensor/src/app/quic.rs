//! QUIC long-header packets (UDP port 443): the version of every Google QUIC (`Q0xx`) packet
//! and of IETF QUIC Initial packets, and the client hello of Google QUIC (sent in clear before
//! the handshake: its SNI and its CYU fingerprint).
//!
//! IETF QUIC follows Suricata's parser: each direction is read up to its first Initial (which
//! carries its hello: later packets are encrypted), and a non-Initial long-header packet seen
//! before that ends the parsing of the flow (Suricata cannot decrypt it with the Initial keys).
//! IETF QUIC protects its Initial packets with keys derived from the client's Destination
//! Connection ID (RFC 9001): the client's first Initial is decrypted for the JA4 (`ja4.hash` of
//! `quic` rules) of the client hello it carries whole; `quic.sni` still matches Google QUIC
//! only.

use md5::{Digest as _, Md5};
use std::cell::Cell;

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
        let ja4 = if dir == 0 { initial_ja4(&rest[..len], v2) } else { None };
        out.push(QuicPacket { version, ja4, ..Default::default() });
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
    /// IETF QUIC client Initial: the JA4 of its client hello ([`initial_ja4`]).
    pub ja4: Option<String>,
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
            let h = super::hex(&Md5::digest(s.as_bytes()));
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

/// Initial packet protection (RFC 9001 section 5, RFC 9369 for version 2): the client's Initial
/// keys derive from the Destination Connection ID of its first Initial, so a passive reader can
/// remove them.
mod initial {
    use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, quic};
    use ring::hkdf;

    const SALT_V1: [u8; 20] = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb,
        0x7f, 0x0a,
    ];
    const SALT_V2: [u8; 20] = [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd,
        0x2e, 0xd9,
    ];

    struct Len(usize);

    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// TLS 1.3's HKDF-Expand-Label with an empty context.
    fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
        let full = [&b"tls13 "[..], label].concat();
        let len = u16::try_from(out.len()).ok()?.to_be_bytes();
        let info = [&len[..], &[u8::try_from(full.len()).ok()?], &full, &[0]].concat();
        prk.expand(&[&info], Len(out.len())).ok()?.fill(out).ok()
    }

    /// The client's Initial key, IV and header protection key for a Destination Connection ID.
    pub fn client_keys(dcid: &[u8], v2: bool) -> Option<([u8; 16], [u8; 12], [u8; 16])> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, if v2 { &SALT_V2 } else { &SALT_V1 });
        let initial = salt.extract(dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, b"client in", &mut secret)?;
        let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let (lk, li, lh): (&[u8], &[u8], &[u8]) =
            if v2 { (b"quicv2 key", b"quicv2 iv", b"quicv2 hp") } else { (b"quic key", b"quic iv", b"quic hp") };
        let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&client, lk, &mut key)?;
        expand_label(&client, li, &mut iv)?;
        expand_label(&client, lh, &mut hp)?;
        Some((key, iv, hp))
    }

    /// The payload of a client Initial packet (`packet`: the whole long-header packet), its
    /// protection removed; `pn_offset`: where its packet number starts.
    pub fn decrypt(packet: &[u8], dcid: &[u8], pn_offset: usize, v2: bool) -> Option<Vec<u8>> {
        let (key, mut iv, hp) = client_keys(dcid, v2)?;
        // header protection: a 16-byte sample 4 bytes past the packet number's start
        let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
        let mask = quic::HeaderProtectionKey::new(&quic::AES_128, &hp).ok()?.new_mask(sample).ok()?;
        let mut header = packet.get(..pn_offset + 4)?.to_vec();
        header[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(header[0] & 3) + 1;
        header.truncate(pn_offset + pn_len);
        let mut pn = 0u64;
        for i in 0..pn_len {
            header[pn_offset + i] ^= mask[1 + i];
            pn = (pn << 8) | u64::from(header[pn_offset + i]);
        }
        for (n, p) in iv[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &key).ok()?);
        let mut payload = packet.get(pn_offset + pn_len..)?.to_vec();
        let plain = key.open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(&header[..]), &mut payload).ok()?;
        let n = plain.len();
        payload.truncate(n);
        Some(payload)
    }
}

/// Most CRYPTO bytes read from one Initial (a client hello with post-quantum key shares fits).
const MAX_CRYPTO: usize = 16 * 1024;

/// The CRYPTO frames' bytes of a decrypted Initial payload, from offset 0 and contiguous.
fn crypto_data(mut p: &[u8]) -> Option<Vec<u8>> {
    let mut pieces: Vec<(usize, &[u8])> = Vec::new();
    let vi = |p: &mut &[u8]| -> Option<usize> {
        let (v, n) = varint(p, 0)?;
        *p = p.get(n..)?;
        Some(v)
    };
    while let Some(&t) = p.first() {
        match t {
            0x00 | 0x01 => p = &p[1..],
            0x02 | 0x03 => {
                p = &p[1..];
                let (_largest, _delay, ranges, _first) = (vi(&mut p)?, vi(&mut p)?, vi(&mut p)?, vi(&mut p)?);
                for _ in 0..ranges.min(256) {
                    vi(&mut p)?;
                    vi(&mut p)?;
                }
                if t == 0x03 {
                    for _ in 0..3 {
                        vi(&mut p)?;
                    }
                }
            }
            0x06 => {
                p = &p[1..];
                let (offset, len) = (vi(&mut p)?, vi(&mut p)?);
                pieces.push((offset, p.get(..len)?));
                p = &p[len..];
            }
            _ => break,
        }
    }
    pieces.sort_by_key(|(o, _)| *o);
    let mut out = Vec::new();
    for (o, d) in pieces {
        if o > out.len() || out.len() >= MAX_CRYPTO {
            break;
        }
        let skip = out.len() - o;
        out.extend_from_slice(d.get(skip..).unwrap_or_default());
    }
    out.truncate(MAX_CRYPTO);
    (!out.is_empty()).then_some(out)
}

/// The JA4 (`q` for QUIC) of the client hello in a client's Initial packet (`packet`: the
/// whole long-header packet); `None` when it does not decrypt or the hello is not whole in it.
pub fn initial_ja4(packet: &[u8], v2: bool) -> Option<String> {
    let dcid_len = usize::from(*packet.get(5)?);
    let dcid = packet.get(6..6 + dcid_len)?;
    let mut at = 6 + dcid_len;
    at += 1 + usize::from(*packet.get(at)?);
    let (token, used) = varint(packet, at)?;
    at = at.checked_add(used)?.checked_add(token)?;
    let (len, used) = varint(packet, at)?;
    let pn_offset = at + used;
    let packet = packet.get(..pn_offset.checked_add(len)?)?;
    let plain = initial::decrypt(packet, dcid, pn_offset, v2)?;
    let hs = crypto_data(&plain)?;
    // a ClientHello handshake message, whole
    if hs.first() != Some(&1) {
        return None;
    }
    let n = usize::from(*hs.get(1)?) << 16 | usize::from(*hs.get(2)?) << 8 | usize::from(*hs.get(3)?);
    let ch = super::tls::parse_client_hello(hs.get(4..4 + n)?)?;
    let ja4 = super::tls::ja4(&ch);
    Some(format!("q{}", ja4.get(1..)?))
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn initial_keys_match_rfc_9001_appendix_a() {
        let (key, iv, hp) = initial::client_keys(&hex("8394c8f03e515708"), false).unwrap();
        assert_eq!(key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        // RFC 9369 appendix A.1 (QUIC version 2)
        let (key, iv, hp) = initial::client_keys(&hex("8394c8f03e515708"), true).unwrap();
        assert_eq!(key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    /// A client Initial carrying `hello` in a CRYPTO frame, protected as RFC 9001 says.
    fn protected_initial(dcid: &[u8], hello: &[u8]) -> Vec<u8> {
        use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey, quic};
        let (key, iv, hp) = initial::client_keys(dcid, false).unwrap();
        let mut plain = vec![0x06, 0x00, 0x40 | (hello.len() >> 8) as u8, hello.len() as u8];
        plain.extend_from_slice(hello);
        plain.resize(1162, 0); // PADDING frames
        let pn_len = 2;
        let len = pn_len + plain.len() + 16;
        let mut header = vec![0xc1, 0, 0, 0, 1, dcid.len() as u8];
        header.extend_from_slice(dcid);
        header.extend([0, 0, 0x40 | (len >> 8) as u8, len as u8]);
        let pn_offset = header.len();
        header.extend([0, 2]); // packet number 2
        let mut nonce = iv;
        nonce[11] ^= 2;
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&header[..]), &mut plain).unwrap();
        let mut packet = [header, plain].concat();
        let mask = quic::HeaderProtectionKey::new(&quic::AES_128, &hp)
            .unwrap()
            .new_mask(&packet[pn_offset + 4..pn_offset + 20])
            .unwrap();
        packet[0] ^= mask[0] & 0x0f;
        packet[pn_offset] ^= mask[1];
        packet[pn_offset + 1] ^= mask[2];
        packet
    }

    #[test]
    fn a_protected_client_initial_gives_the_ja4_of_its_hello_and_damage_gives_none() {
        // ClientHello: TLS 1.3 via supported_versions, one cipher, ALPN h3, SNI
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        let exts = [
            &[0x00, 0x00, 0, 6, 0, 4, 0, 0, 1, b'a'][..],
            &[0x00, 0x10, 0, 5, 0, 3, 2, b'h', b'3'],
            &[0x00, 0x2b, 0, 3, 2, 3, 4],
        ]
        .concat();
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let hello = [&[1u8, 0, (body.len() >> 8) as u8, body.len() as u8][..], &body].concat();
        let dcid = hex("8394c8f03e515708");
        let packet = protected_initial(&dcid, &hello);
        let ja4 = initial_ja4(&packet, false).unwrap();
        assert!(ja4.starts_with("q13d0103h3_"), "{ja4}");
        let st = QuicFlowState::default();
        assert_eq!(parse_ietf(&packet, 0, &st)[0].ja4.as_deref(), Some(ja4.as_str()));
        // a flipped ciphertext bit, a truncated packet, another DCID: no JA4, no panic
        let mut bad = packet.clone();
        bad[40] ^= 1;
        assert_eq!(initial_ja4(&bad, false), None);
        for n in [0, 5, 7, 30, 100, packet.len() - 1] {
            assert_eq!(initial_ja4(&packet[..n], false), None);
        }
        let mut other = packet.clone();
        other[6] ^= 1;
        assert_eq!(initial_ja4(&other, false), None);
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
