//! Protocol detection by content (ports are never consulted).

use super::{AppProto, Direction};

/// Outcome of probing the first bytes of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Match(AppProto),
    NoMatch,
    /// Too few bytes to decide.
    NeedMore,
}

/// HTTP request methods recognised at the start of a client stream.
pub const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"CHECKOUT",
    b"MERGE",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"MKACTIVITY",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
    b"QUERY",
];

/// Is `data` the start of an HTTP request line (`METHOD SP`)?
pub fn http_request_start(data: &[u8]) -> Probe {
    let mut need_more = false;
    for m in HTTP_METHODS {
        if data.len() > m.len() {
            if data.starts_with(m) && (data[m.len()] == b' ' || data[m.len()] == b'\t') {
                return Probe::Match(AppProto::Http);
            }
        } else if m.starts_with(data) {
            need_more = true;
        }
    }
    if need_more { Probe::NeedMore } else { Probe::NoMatch }
}

/// HTTP/2 with prior knowledge: the client preface, or a server's first SETTINGS frame (as
/// Suricata's probe: stream 0, no flag but ACK, at most the default frame size).
fn http2(data: &[u8], dir: Direction) -> Probe {
    const P: &[u8] = super::http2::PREFACE;
    match dir {
        Direction::ToServer => {
            let n = data.len().min(P.len());
            if data[..n] != P[..n] {
                Probe::NoMatch
            } else if n < P.len() {
                Probe::NeedMore
            } else {
                Probe::Match(AppProto::Http2)
            }
        }
        Direction::ToClient => {
            if data.len() < 9 {
                return if data.len() >= 4 && data[3] != 4 { Probe::NoMatch } else { Probe::NeedMore };
            }
            let len = u32::from_be_bytes([0, data[0], data[1], data[2]]);
            let stream = u32::from_be_bytes([data[5], data[6], data[7], data[8]]);
            if data[3] == 4 && data[4] & 0xfe == 0 && stream == 0 && len <= 16384 && len.is_multiple_of(6) {
                Probe::Match(AppProto::Http2)
            } else {
                Probe::NoMatch
            }
        }
    }
}

fn http_response_start(data: &[u8]) -> Probe {
    const P: &[u8] = b"HTTP/";
    if data.len() >= P.len() {
        if data[..P.len()].eq_ignore_ascii_case(P) { Probe::Match(AppProto::Http) } else { Probe::NoMatch }
    } else if P[..data.len()].eq_ignore_ascii_case(data) {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

fn tls(data: &[u8], dir: Direction) -> Probe {
    if data.is_empty() {
        return Probe::NeedMore;
    }
    if data[0] == 0x16 {
        if data.len() < 6 {
            return Probe::NeedMore;
        }
        let hs = data[5];
        let ok_hs = match dir {
            Direction::ToServer => hs == 1,
            Direction::ToClient => hs == 2,
        };
        if data[1] == 3 && data[2] <= 4 && ok_hs {
            return Probe::Match(AppProto::Tls);
        }
        return Probe::NoMatch;
    }
    // SSLv2-framed ClientHello (2-byte header with the high bit set, message type 1).
    if data[0] & 0x80 != 0 && dir == Direction::ToServer {
        if data.len() < 5 {
            return Probe::NeedMore;
        }
        if data[2] == 1 && (data[3] == 0 || data[3] == 3) && data[4] <= 4 {
            return Probe::Match(AppProto::Tls);
        }
    }
    Probe::NoMatch
}

fn starts_with_ci(data: &[u8], p: &[u8]) -> Option<bool> {
    if data.len() < p.len() {
        if p[..data.len()].eq_ignore_ascii_case(data) { None } else { Some(false) }
    } else {
        Some(data[..p.len()].eq_ignore_ascii_case(p))
    }
}

fn banner(data: &[u8], dir: Direction) -> Probe {
    match starts_with_ci(data, b"SSH-") {
        Some(true) => return Probe::Match(AppProto::Ssh),
        None => return Probe::NeedMore,
        Some(false) => {}
    }
    match dir {
        Direction::ToServer => {
            for (p, proto) in [(&b"EHLO "[..], AppProto::Smtp), (b"HELO ", AppProto::Smtp), (b"USER ", AppProto::Ftp)] {
                match starts_with_ci(data, p) {
                    Some(true) => return Probe::Match(proto),
                    None => return Probe::NeedMore,
                    Some(false) => {}
                }
            }
            Probe::NoMatch
        }
        Direction::ToClient => {
            if data.len() < 4 {
                return if b"220"[..data.len().min(3)] == data[..data.len().min(3)] {
                    Probe::NeedMore
                } else {
                    Probe::NoMatch
                };
            }
            if &data[..3] == b"220" && (data[3] == b' ' || data[3] == b'-') {
                let line_end = data.iter().position(|&b| b == b'\n');
                let line = &data[..line_end.unwrap_or(data.len())];
                let has = |needle: &[u8]| line.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
                if has(b"SMTP") {
                    return Probe::Match(AppProto::Smtp);
                }
                if has(b"FTP") {
                    return Probe::Match(AppProto::Ftp);
                }
                if line_end.is_none() && data.len() < 256 {
                    return Probe::NeedMore;
                }
            }
            Probe::NoMatch
        }
    }
}

fn smb(data: &[u8]) -> Probe {
    if data.len() < 8 {
        return if data.first().is_some_and(|&b| b == 0) { Probe::NeedMore } else { Probe::NoMatch };
    }
    if data[0] == 0 && matches!(&data[4..8], [0xfd..=0xff, b'S', b'M', b'B']) {
        Probe::Match(AppProto::Smb)
    } else {
        Probe::NoMatch
    }
}

fn dcerpc(data: &[u8]) -> Probe {
    if data.first() != Some(&5) {
        return Probe::NoMatch;
    }
    if data.len() < 16 {
        return Probe::NeedMore;
    }
    let frag_len_le = u16::from_le_bytes([data[8], data[9]]);
    let frag_len_be = u16::from_be_bytes([data[8], data[9]]);
    let drep_ok = data[4] == 0x10 || data[4] == 0x00;
    let frag_len = if data[4] == 0x10 { frag_len_le } else { frag_len_be };
    if data[1] <= 1 && data[2] <= 20 && drep_ok && frag_len >= 16 {
        Probe::Match(AppProto::Dcerpc)
    } else {
        Probe::NoMatch
    }
}

/// BER length at `data[at..]`: (length, bytes used).
fn ber_len(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let b = *data.get(at)?;
    if b < 0x80 {
        return Some((b as usize, 1));
    }
    let n = (b & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut v = 0usize;
    for i in 0..n {
        v = (v << 8) | *data.get(at + 1 + i)? as usize;
    }
    Some((v, 1 + n))
}

/// Kerberos message (no record-marking prefix): an APPLICATION-tagged ASN.1 value.
fn krb5_message(data: &[u8]) -> Probe {
    match data.first() {
        Some(0x6a | 0x6b | 0x6c | 0x6d | 0x6e | 0x6f | 0x74 | 0x75 | 0x76 | 0x7e) => {}
        Some(_) => return Probe::NoMatch,
        None => return Probe::NeedMore,
    }
    match ber_len(data, 1) {
        Some((len, _)) if len > 8 => {
            // Inside: a SEQUENCE.
            let (_, n) = ber_len(data, 1).unwrap_or((0, 1));
            match data.get(1 + n) {
                Some(0x30) => Probe::Match(AppProto::Krb5),
                Some(_) => Probe::NoMatch,
                None => Probe::NeedMore,
            }
        }
        Some(_) => Probe::NoMatch,
        None => Probe::NeedMore,
    }
}

fn krb5_tcp(data: &[u8]) -> Probe {
    if data.len() < 6 {
        return if data.first().is_some_and(|&b| b & 0x80 == 0) { Probe::NeedMore } else { Probe::NoMatch };
    }
    let rec = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if rec == 0 || rec > 1 << 20 {
        return Probe::NoMatch;
    }
    krb5_message(&data[4..])
}

/// LDAP message: SEQUENCE { messageID INTEGER, protocolOp [APPLICATION n] ... }.
fn ldap(data: &[u8]) -> Probe {
    match data.first() {
        Some(0x30) => {}
        Some(_) => return Probe::NoMatch,
        None => return Probe::NeedMore,
    }
    let Some((_, n)) = ber_len(data, 1) else {
        return if data.len() < 6 { Probe::NeedMore } else { Probe::NoMatch };
    };
    let i = 1 + n;
    match data.get(i) {
        Some(0x02) => {}
        Some(_) => return Probe::NoMatch,
        None => return Probe::NeedMore,
    }
    let Some(&id_len) = data.get(i + 1) else {
        return Probe::NeedMore;
    };
    if id_len == 0 || id_len > 4 {
        return Probe::NoMatch;
    }
    match data.get(i + 2 + id_len as usize) {
        Some(&t) if (0x60..=0x79).contains(&t) || t == 0x42 || t == 0x50 || t == 0x4a => Probe::Match(AppProto::Ldap),
        Some(_) => Probe::NoMatch,
        None => Probe::NeedMore,
    }
}

fn dns_tcp(data: &[u8]) -> Probe {
    if data.len() < 2 + 12 {
        return Probe::NeedMore;
    }
    let len = u16::from_be_bytes([data[0], data[1]]) as usize;
    if len < 12 {
        return Probe::NoMatch;
    }
    let Some(msg) = data.get(2..2 + len) else {
        // Whole message not here yet: judge the header alone.
        return if super::dns::header_plausible(&data[2..]) { Probe::NeedMore } else { Probe::NoMatch };
    };
    if super::dns::probe_message(msg) { Probe::Match(AppProto::Dns) } else { Probe::NoMatch }
}

/// PostgreSQL, a client's first message: an SSLRequest or GSSENCRequest (8 bytes), or a
/// StartupMessage of protocol 3.0 (a length, then 0x00030000).
fn pgsql(data: &[u8], dir: Direction) -> Probe {
    if dir != Direction::ToServer {
        return Probe::NoMatch;
    }
    let Some(h) = data.get(..8) else {
        return if data.iter().take(2).all(|&b| b == 0) { Probe::NeedMore } else { Probe::NoMatch };
    };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    match (len, code) {
        (8, 80877103 | 80877104) => Probe::Match(AppProto::Pgsql),
        (9..=10000, 0x0003_0000) => Probe::Match(AppProto::Pgsql),
        _ => Probe::NoMatch,
    }
}

/// DNP3: a link header with a valid CRC.
fn dnp3(data: &[u8]) -> Probe {
    match super::dnp3::probe(data) {
        Some(true) => Probe::Match(AppProto::Dnp3),
        Some(false) => Probe::NoMatch,
        None => Probe::NeedMore,
    }
}

/// Telnet: an option negotiation first ([`super::telnet::probe`]).
fn telnet(data: &[u8]) -> Probe {
    match super::telnet::probe(data) {
        Some(true) => Probe::Match(AppProto::Telnet),
        Some(false) => Probe::NoMatch,
        None => Probe::NeedMore,
    }
}

type ProbeFn<'a> = &'a dyn Fn(&[u8]) -> Probe;

/// Probes the first bytes of a TCP direction.
pub fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
    if data.is_empty() {
        return Probe::NeedMore;
    }
    let probes: [ProbeFn<'_>; 12] = [
        &|d| match dir {
            Direction::ToServer => http_request_start(d),
            Direction::ToClient => http_response_start(d),
        },
        &|d| tls(d, dir),
        &|d| banner(d, dir),
        &smb,
        &dcerpc,
        &krb5_tcp,
        &ldap,
        &dns_tcp,
        &|d| http2(d, dir),
        &dnp3,
        &telnet,
        &|d| pgsql(d, dir),
    ];
    let mut need_more = false;
    for p in probes {
        match p(data) {
            Probe::Match(m) => return Probe::Match(m),
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    if need_more { Probe::NeedMore } else { Probe::NoMatch }
}

fn ntp(data: &[u8]) -> bool {
    if data.len() < 48 || data.len() > 120 {
        return false;
    }
    let vn = (data[0] >> 3) & 7;
    let mode = data[0] & 7;
    (1..=4).contains(&vn) && (1..=5).contains(&mode) && data[1] <= 16
}

/// Probes a UDP datagram (either direction). UDP never asks for more bytes.
pub fn probe_udp(_dir: Direction, data: &[u8]) -> Probe {
    if data.is_empty() {
        return Probe::NoMatch;
    }
    if super::dns::probe_message(data) {
        return Probe::Match(AppProto::Dns);
    }
    if let Probe::Match(p) = ldap(data) {
        return Probe::Match(p);
    }
    if let Probe::Match(p) = krb5_message(data) {
        return Probe::Match(p);
    }
    if ntp(data) {
        return Probe::Match(AppProto::Ntp);
    }
    Probe::NoMatch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_is_detected_by_the_client_preface_or_a_server_settings_frame() {
        let preface = super::super::http2::PREFACE;
        assert_eq!(probe_tcp(Direction::ToServer, &preface[..10]), Probe::NeedMore);
        assert_eq!(probe_tcp(Direction::ToServer, preface), Probe::Match(AppProto::Http2));
        let settings = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64";
        assert_eq!(probe_tcp(Direction::ToClient, settings), Probe::Match(AppProto::Http2));
        // a SETTINGS frame on a stream, or with a length that is no multiple of 6: not HTTP/2
        assert_eq!(http2(b"\x00\x00\x06\x04\x00\x00\x00\x00\x01", Direction::ToClient), Probe::NoMatch);
        assert_eq!(http2(b"\x00\x00\x05\x04\x00\x00\x00\x00\x00", Direction::ToClient), Probe::NoMatch);
        assert_eq!(http2(b"PRI * HTTP/1.1", Direction::ToServer), Probe::NoMatch);
    }

    #[test]
    fn detects_by_content() {
        use Direction::*;
        assert_eq!(probe_tcp(ToServer, b"GET / HTTP/1.1\r\n"), Probe::Match(AppProto::Http));
        assert_eq!(probe_tcp(ToServer, b"GE"), Probe::NeedMore);
        assert_eq!(probe_tcp(ToClient, b"HTTP/1.1 200 OK\r\n"), Probe::Match(AppProto::Http));
        assert_eq!(probe_tcp(ToServer, &[0x16, 3, 1, 0, 200, 1, 0]), Probe::Match(AppProto::Tls));
        assert_eq!(probe_tcp(ToServer, b"SSH-2.0-OpenSSH_8.9\r\n"), Probe::Match(AppProto::Ssh));
        assert_eq!(probe_tcp(ToClient, b"220 mail.example.org ESMTP Postfix\r\n"), Probe::Match(AppProto::Smtp));
        assert_eq!(probe_tcp(ToClient, b"220 ProFTPD Server ready.\r\n"), Probe::Match(AppProto::Ftp));
        assert_eq!(probe_tcp(ToServer, b"EHLO client\r\n"), Probe::Match(AppProto::Smtp));
        assert_eq!(probe_tcp(ToServer, &[0, 0, 0, 0x45, 0xfe, b'S', b'M', b'B', 0x40]), Probe::Match(AppProto::Smb));
        let bind = [5u8, 0, 11, 3, 0x10, 0, 0, 0, 0x48, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(probe_tcp(ToServer, &bind), Probe::Match(AppProto::Dcerpc));
        assert_eq!(probe_tcp(ToServer, b"\x00\x01\x02garbage-garbage-garbage"), Probe::NoMatch);
        // DNS over TCP.
        let q = crate::synth::dns_query(1, "example.org", 1);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        assert_eq!(probe_tcp(ToServer, &framed), Probe::Match(AppProto::Dns));
        assert_eq!(probe_udp(ToServer, &q), Probe::Match(AppProto::Dns));
        assert_eq!(probe_udp(ToServer, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"), Probe::NoMatch);
        let mut ntp_pkt = vec![0u8; 48];
        ntp_pkt[0] = 0x23;
        assert_eq!(probe_udp(ToServer, &ntp_pkt), Probe::Match(AppProto::Ntp));
    }
}
