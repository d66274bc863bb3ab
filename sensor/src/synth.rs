//! A small packet builder for tests and demo traffic: Ethernet (optionally VLAN-tagged) +
//! IPv4/IPv6 + TCP/UDP/ICMP with correct checksums, a TCP session helper (handshake, data,
//! FIN close), DNS query/response messages, HTTP/1.1 requests/responses, a TLS ClientHello
//! with SNI, and a pcap file writer.
//!
//! ```
//! use soc_sensor::synth::{Host, TcpSession, http_request};
//! let client = Host::v4([10, 0, 0, 1]);
//! let server = Host::v4([93, 184, 216, 34]);
//! let mut s = TcpSession::new(client, 51000, server, 80);
//! let mut frames = s.handshake();
//! frames.push(s.client_send(&http_request("GET", "example.org", "/", &[])));
//! frames.extend(s.close());
//! assert_eq!(frames.len(), 3 + 1 + 4);
//! ```

use crate::decode::{internet_checksum, l4_checksum};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP flag bits (same values as [`crate::decode::tcp_flags`]).
pub use crate::decode::tcp_flags as flags;

/// An addressable host: MAC and IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub mac: [u8; 6],
    pub ip: IpAddr,
}

impl Host {
    /// An IPv4 host with a MAC derived from the address (locally administered).
    pub fn v4(ip: [u8; 4]) -> Host {
        Host { mac: [0x02, 0x00, ip[0], ip[1], ip[2], ip[3]], ip: IpAddr::V4(Ipv4Addr::from(ip)) }
    }
    /// An IPv6 host with a MAC derived from the low bytes of the address.
    pub fn v6(ip: Ipv6Addr) -> Host {
        let o = ip.octets();
        Host { mac: [0x02, 0x00, o[12], o[13], o[14], o[15]], ip: IpAddr::V6(ip) }
    }
}

/// Link-layer framing options for built frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// 802.1Q tags, outermost first (the outer one of two is written as 802.1ad 0x88a8).
    pub vlans: Vec<u16>,
}

/// An Ethernet II frame around `payload`, with VLAN tags.
pub fn ethernet(src: [u8; 6], dst: [u8; 6], ethertype: u16, vlans: &[u16], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (i, v) in vlans.iter().enumerate() {
        let tpid: u16 = if vlans.len() > 1 && i == 0 { 0x88a8 } else { 0x8100 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet (20-byte header, DF clear) with a correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, id, ttl, 0, false, payload)
}

/// An IPv4 fragment: `offset` in bytes (multiple of 8), `more` = MF flag.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_frag(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    ttl: u8,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let frag = (offset / 8) | if more { 0x2000 } else { 0 };
    let mut p = Vec::with_capacity(total as usize);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[ttl, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = internet_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; `ext` is an already-encoded extension-header chain whose first header's
/// type is `first_next` (pass `next` and an empty `ext` for none).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, first_next: u8, hop_limit: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let plen = (ext.len() + payload.len()) as u16;
    let mut p = Vec::with_capacity(40 + plen as usize);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&plen.to_be_bytes());
    p.push(first_next);
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(ext);
    p.extend_from_slice(payload);
    p
}

/// A TCP segment (20-byte header) with a correct checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[0x50, flags]);
    s.extend_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let c = l4_checksum(src, dst, 6, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// A UDP datagram with a correct checksum.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut s = Vec::with_capacity(len as usize);
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&len.to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let mut c = l4_checksum(src, dst, 17, &s);
    if c == 0 {
        c = 0xffff;
    }
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

/// An ICMP (v4) or ICMPv6 echo message: type/code/checksum/id/seq + data.
pub fn icmp_echo(src: IpAddr, dst: IpAddr, reply: bool, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let t = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    let mut m = vec![t, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = if v6 { l4_checksum(src, dst, 58, &m) } else { internet_checksum(&m) };
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A whole Ethernet frame carrying `l4` (already built, with checksums) of protocol `proto`
/// from `src` to `dst`.
pub fn ip_frame(src: &Host, dst: &Host, link: &Link, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src.ip, dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ethernet(src.mac, dst.mac, 0x0800, &link.vlans, &ipv4(s, d, proto, 1, 64, l4))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ethernet(src.mac, dst.mac, 0x86dd, &link.vlans, &ipv6(s, d, proto, 64, &[], l4))
        }
        _ => ethernet(src.mac, dst.mac, 0x0800, &link.vlans, &[]),
    }
}

/// A UDP frame from `src:sport` to `dst:dport`.
pub fn udp_frame(src: &Host, sport: u16, dst: &Host, dport: u16, payload: &[u8]) -> Vec<u8> {
    ip_frame(src, dst, &Link::default(), 17, &udp(src.ip, dst.ip, sport, dport, payload))
}

/// A TCP connection between two hosts that tracks sequence numbers, so its frames form a
/// valid conversation.
#[derive(Clone, Debug)]
pub struct TcpSession {
    pub client: Host,
    pub server: Host,
    pub cport: u16,
    pub sport: u16,
    pub link: Link,
    /// Next sequence number of the client / server.
    pub cseq: u32,
    pub sseq: u32,
}

impl TcpSession {
    /// A session with fixed initial sequence numbers (1000 client, 5000 server).
    pub fn new(client: Host, cport: u16, server: Host, sport: u16) -> TcpSession {
        TcpSession { client, server, cport, sport, link: Link::default(), cseq: 1000, sseq: 5000 }
    }
    /// Same, with VLAN tags on every frame.
    pub fn with_vlans(mut self, vlans: &[u16]) -> TcpSession {
        self.link.vlans = vlans.to_vec();
        self
    }
    /// A client segment with explicit flags and payload; advances the client's sequence.
    pub fn client_segment(&mut self, fl: u8, payload: &[u8]) -> Vec<u8> {
        let seg = tcp(self.client.ip, self.server.ip, self.cport, self.sport, self.cseq, self.sseq, fl, payload);
        self.cseq = self.cseq.wrapping_add(payload.len() as u32 + u32::from(fl & (flags::SYN | flags::FIN) != 0));
        ip_frame(&self.client, &self.server, &self.link, 6, &seg)
    }
    /// A server segment with explicit flags and payload; advances the server's sequence.
    pub fn server_segment(&mut self, fl: u8, payload: &[u8]) -> Vec<u8> {
        let seg = tcp(self.server.ip, self.client.ip, self.sport, self.cport, self.sseq, self.cseq, fl, payload);
        self.sseq = self.sseq.wrapping_add(payload.len() as u32 + u32::from(fl & (flags::SYN | flags::FIN) != 0));
        ip_frame(&self.server, &self.client, &self.link, 6, &seg)
    }
    /// SYN, SYN/ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.client_segment(flags::SYN, &[]),
            self.server_segment(flags::SYN | flags::ACK, &[]),
            self.client_segment(flags::ACK, &[]),
        ]
    }
    /// Client data (PSH/ACK).
    pub fn client_send(&mut self, data: &[u8]) -> Vec<u8> {
        self.client_segment(flags::PSH | flags::ACK, data)
    }
    /// Server data (PSH/ACK).
    pub fn server_send(&mut self, data: &[u8]) -> Vec<u8> {
        self.server_segment(flags::PSH | flags::ACK, data)
    }
    /// Client data split into segments of at most `mss` bytes.
    pub fn client_send_split(&mut self, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
        data.chunks(mss.max(1)).map(|c| self.client_send(c)).collect()
    }
    /// Server data split into segments of at most `mss` bytes.
    pub fn server_send_split(&mut self, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
        data.chunks(mss.max(1)).map(|c| self.server_send(c)).collect()
    }
    /// FIN/ACK from the client, ACK, FIN/ACK from the server, ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        let a = self.client_segment(flags::FIN | flags::ACK, &[]);
        let b = self.server_segment(flags::ACK, &[]);
        let c = self.server_segment(flags::FIN | flags::ACK, &[]);
        let d = self.client_segment(flags::ACK, &[]);
        vec![a, b, c, d]
    }
}

/// A DNS resource record for [`dns_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRr {
    A(&'static str, Ipv4Addr, u32),
    Aaaa(&'static str, Ipv6Addr, u32),
    Cname(&'static str, &'static str, u32),
}

/// Encodes a domain name as labels (no compression).
pub fn dns_name(name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        v.push(l.len() as u8);
        v.extend_from_slice(l);
    }
    v.push(0);
    v
}

/// A DNS query message (RD set) for one name and type.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// A DNS response (QR, RD, RA; rcode in the low 4 bits of `rcode`) to a query for
/// `name`/`qtype`, with answers. An answer whose owner equals the query name is written with
/// a compression pointer to the question, as servers do.
pub fn dns_response(id: u16, name: &str, qtype: u16, rcode: u8, answers: &[DnsRr]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(0x8180u16 | (rcode as u16 & 0xf)).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    let owner = |m: &mut Vec<u8>, n: &str| {
        if n.eq_ignore_ascii_case(name) {
            m.extend_from_slice(&[0xc0, 0x0c]);
        } else {
            m.extend_from_slice(&dns_name(n));
        }
    };
    for rr in answers {
        match rr {
            DnsRr::A(n, a, ttl) => {
                owner(&mut m, n);
                m.extend_from_slice(&[0, 1, 0, 1]);
                m.extend_from_slice(&ttl.to_be_bytes());
                m.extend_from_slice(&4u16.to_be_bytes());
                m.extend_from_slice(&a.octets());
            }
            DnsRr::Aaaa(n, a, ttl) => {
                owner(&mut m, n);
                m.extend_from_slice(&[0, 28, 0, 1]);
                m.extend_from_slice(&ttl.to_be_bytes());
                m.extend_from_slice(&16u16.to_be_bytes());
                m.extend_from_slice(&a.octets());
            }
            DnsRr::Cname(n, target, ttl) => {
                owner(&mut m, n);
                m.extend_from_slice(&[0, 5, 0, 1]);
                m.extend_from_slice(&ttl.to_be_bytes());
                let t = dns_name(target);
                m.extend_from_slice(&(t.len() as u16).to_be_bytes());
                m.extend_from_slice(&t);
            }
        }
    }
    m
}

/// An HTTP/1.1 request with a Host header and extra headers (`(name, value)`).
pub fn http_request(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// An HTTP/1.1 response with Content-Type, Content-Length and a body.
pub fn http_response(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: synth\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Parameters of a synthetic TLS ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// legacy_version (0x0303 for TLS 1.2 and 1.3).
    pub version: u16,
    pub ciphers: Vec<u16>,
    pub sni: Option<String>,
    /// Supported groups (elliptic curves).
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub alpn: Vec<String>,
    pub sig_algs: Vec<u16>,
    /// supported_versions extension contents (empty = absent).
    pub supported_versions: Vec<u16>,
    /// Extra empty extensions by type, written after the others.
    pub extra_extensions: Vec<u16>,
    pub session_id: Vec<u8>,
}

impl Default for ClientHello {
    fn default() -> Self {
        ClientHello {
            version: 0x0303,
            ciphers: vec![0xc02b, 0xc02f, 0x009e, 0xc00a, 0x0035],
            sni: Some("example.org".into()),
            groups: vec![0x001d, 0x0017, 0x0018],
            point_formats: vec![0],
            alpn: vec![],
            sig_algs: vec![0x0403, 0x0804, 0x0401],
            supported_versions: vec![],
            extra_extensions: vec![],
            session_id: vec![],
        }
    }
}

fn ext(out: &mut Vec<u8>, typ: u16, body: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

impl ClientHello {
    /// The TLS record (content type 22) holding this ClientHello. Extensions are written in
    /// the order: SNI, supported_groups, ec_point_formats, signature_algorithms, ALPN,
    /// supported_versions, then `extra_extensions`.
    pub fn to_record(&self) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(sni) = &self.sni {
            let mut b = Vec::new();
            b.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
            b.push(0);
            b.extend_from_slice(&(sni.len() as u16).to_be_bytes());
            b.extend_from_slice(sni.as_bytes());
            ext(&mut exts, 0, &b);
        }
        if !self.groups.is_empty() {
            let mut b = ((self.groups.len() * 2) as u16).to_be_bytes().to_vec();
            for g in &self.groups {
                b.extend_from_slice(&g.to_be_bytes());
            }
            ext(&mut exts, 10, &b);
        }
        if !self.point_formats.is_empty() {
            let mut b = vec![self.point_formats.len() as u8];
            b.extend_from_slice(&self.point_formats);
            ext(&mut exts, 11, &b);
        }
        if !self.sig_algs.is_empty() {
            let mut b = ((self.sig_algs.len() * 2) as u16).to_be_bytes().to_vec();
            for g in &self.sig_algs {
                b.extend_from_slice(&g.to_be_bytes());
            }
            ext(&mut exts, 13, &b);
        }
        if !self.alpn.is_empty() {
            let mut l = Vec::new();
            for a in &self.alpn {
                l.push(a.len() as u8);
                l.extend_from_slice(a.as_bytes());
            }
            let mut b = (l.len() as u16).to_be_bytes().to_vec();
            b.extend_from_slice(&l);
            ext(&mut exts, 16, &b);
        }
        if !self.supported_versions.is_empty() {
            let mut b = vec![(self.supported_versions.len() * 2) as u8];
            for v in &self.supported_versions {
                b.extend_from_slice(&v.to_be_bytes());
            }
            ext(&mut exts, 43, &b);
        }
        for t in &self.extra_extensions {
            ext(&mut exts, *t, &[]);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&self.version.to_be_bytes());
        body.extend_from_slice(&[0x11; 32]);
        body.push(self.session_id.len() as u8);
        body.extend_from_slice(&self.session_id);
        body.extend_from_slice(&((self.ciphers.len() * 2) as u16).to_be_bytes());
        for c in &self.ciphers {
            body.extend_from_slice(&c.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        tls_handshake_record(1, &body)
    }
}

/// A TLS ServerHello record: version, chosen cipher, extensions (type, body), session id.
pub fn tls_server_hello(version: u16, cipher: u16, extensions: &[(u16, Vec<u8>)], session_id: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[0x22; 32]);
    body.push(session_id.len() as u8);
    body.extend_from_slice(session_id);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0);
    let mut exts = Vec::new();
    for (t, b) in extensions {
        ext(&mut exts, *t, b);
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    tls_handshake_record(2, &body)
}

/// A TLS Certificate handshake record carrying DER certificates.
pub fn tls_certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    tls_handshake_record(11, &body)
}

/// A ChangeCipherSpec record.
pub fn tls_change_cipher_spec() -> Vec<u8> {
    vec![20, 3, 3, 0, 1, 1]
}

/// One handshake message of type `hs_type` in one TLS 1.2 record.
pub fn tls_handshake_record(hs_type: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![hs_type];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Writes a classic pcap file (microsecond timestamps, little endian) of `(unix_micros, frame)`
/// records with the given link type.
pub fn write_pcap<W: Write>(mut w: W, linktype: u32, frames: &[(i64, Vec<u8>)]) -> std::io::Result<()> {
    w.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&262144u32.to_le_bytes())?;
    w.write_all(&linktype.to_le_bytes())?;
    for (ts, f) in frames {
        let secs = ts.div_euclid(1_000_000) as u32;
        let us = ts.rem_euclid(1_000_000) as u32;
        w.write_all(&secs.to_le_bytes())?;
        w.write_all(&us.to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(f)?;
    }
    Ok(())
}

/// [`write_pcap`] into memory.
pub fn pcap_bytes(linktype: u32, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_pcap(&mut v, linktype, frames);
    v
}

/// Pairs frames with timestamps starting at `start_micros`, `step_micros` apart.
pub fn timed(frames: Vec<Vec<u8>>, start_micros: i64, step_micros: i64) -> Vec<(i64, Vec<u8>)> {
    frames.into_iter().enumerate().map(|(i, f)| (start_micros + i as i64 * step_micros, f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, Decoded, LinkType, Transport, decode};

    fn dec(f: &[u8]) -> crate::decode::Packet<'_> {
        match decode(LinkType::Ethernet, f, DecodeOptions { checksum_check: true }).unwrap() {
            Decoded::Ip(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn built_frames_have_valid_checksums_and_fields() {
        let c = Host::v4([10, 0, 0, 1]);
        let s = Host::v4([10, 0, 0, 2]);
        let mut sess = TcpSession::new(c, 40000, s, 80).with_vlans(&[10, 20]);
        let hs = sess.handshake();
        let p = dec(&hs[0]);
        assert_eq!(p.vlan, [10, 20, 0]);
        match p.transport {
            Transport::Tcp(t) => {
                assert_eq!((t.sport, t.dport, t.seq, t.flags), (40000, 80, 1000, flags::SYN));
            }
            other => panic!("{other:?}"),
        }
        let d = sess.client_send(b"hello");
        let p = dec(&d);
        assert_eq!(p.payload, b"hello");
        let u = udp_frame(&c, 5353, &s, 53, &dns_query(7, "example.org", 1));
        let p = dec(&u);
        assert!(matches!(p.transport, Transport::Udp(h) if h.dport == 53));
        let v6c = Host::v6("2001:db8::1".parse().unwrap());
        let v6s = Host::v6("2001:db8::2".parse().unwrap());
        let mut s6 = TcpSession::new(v6c, 1234, v6s, 443);
        let f = s6.client_send(&ClientHello::default().to_record());
        let p = dec(&f);
        assert_eq!(p.ip_v, 6);
        assert_eq!(p.payload.first(), Some(&22));
        let e = ip_frame(&v6c, &v6s, &Link::default(), 58, &icmp_echo(v6c.ip, v6s.ip, false, 1, 1, b"x"));
        assert!(matches!(dec(&e).transport, Transport::Icmpv6(h) if h.icmp_type == 128));
        let e4 = ip_frame(&c, &s, &Link::default(), 1, &icmp_echo(c.ip, s.ip, true, 1, 1, b"abc"));
        assert!(matches!(dec(&e4).transport, Transport::Icmp(h) if h.icmp_type == 0));
    }

    #[test]
    fn pcap_writer_round_trips_through_pcap_parser() {
        let c = Host::v4([10, 0, 0, 1]);
        let s = Host::v4([10, 0, 0, 2]);
        let frames = timed(vec![udp_frame(&c, 1, &s, 2, b"a"), udp_frame(&s, 2, &c, 1, b"b")], 1_000_000, 10);
        let bytes = pcap_bytes(1, &frames);
        let (_, pcap) = pcap_parser::parse_pcap(&bytes).unwrap();
        assert_eq!(pcap.blocks.len(), 2);
        assert_eq!(pcap.blocks[1].ts_usec, 10);
    }
}
