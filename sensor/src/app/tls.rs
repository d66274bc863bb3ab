//! TLS handshake metadata: ClientHello (SNI, JA3, JA4), ServerHello (version, JA3S) and,
//! for TLS 1.2 and older, the server certificate (subject, issuer, serial, SHA-1
//! fingerprint, validity, subjectAltName). One record per session, written when the
//! handshake is over (server ChangeCipherSpec, TLS 1.3 ServerHello, first application data)
//! or at flow end.

use super::{AppParser, AppRecord, Direction};
use md5::{Digest as _, Md5};
use serde_json::Value;
use sha1::Sha1;
use sha2::Sha256;
use soc_model::{Fingerprint, Tls};
use std::fmt::Write;

/// Largest handshake message buffered (certificate chains).
const MAX_HANDSHAKE: usize = 128 * 1024;
/// Largest TLS record accepted (2^14 plus expansion).
const MAX_RECORD: usize = 16384 + 2048;

/// GREASE values (RFC 8701) are left out of fingerprints.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Fields of a ClientHello used for logging and fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    pub version: u16,
    /// The 32-byte random (`tls.random`).
    pub random: Vec<u8>,
    pub session_id: Vec<u8>,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    pub sig_algs: Vec<u16>,
    pub supported_versions: Vec<u16>,
}

/// Fields of a ServerHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHelloInfo {
    pub version: u16,
    /// The 32-byte random (`tls.random`).
    pub random: Vec<u8>,
    pub session_id: Vec<u8>,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub selected_version: Option<u16>,
    pub alpn: Vec<Vec<u8>>,
    pub hello_retry: bool,
}

const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

struct Cur<'a> {
    d: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn new(d: &'a [u8]) -> Self {
        Cur { d, p: 0 }
    }
    fn u8(&mut self) -> Option<u8> {
        let v = *self.d.get(self.p)?;
        self.p += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.d.get(self.p..self.p + 2)?;
        self.p += 2;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.d.get(self.p..self.p + 3)?;
        self.p += 3;
        Some(((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.d.get(self.p..self.p + n)?;
        self.p += n;
        Some(b)
    }
    fn rest(&self) -> &'a [u8] {
        self.d.get(self.p..).unwrap_or_default()
    }
}

fn u16_list(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

fn alpn_list(b: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Cur::new(b);
    let Some(total) = c.u16() else {
        return Vec::new();
    };
    let mut list = Cur::new(c.take(total as usize).unwrap_or(c.rest()));
    let mut v = Vec::new();
    while let Some(l) = list.u8() {
        match list.take(l as usize) {
            Some(p) => v.push(p.to_vec()),
            None => break,
        }
    }
    v
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHelloInfo> {
    let mut c = Cur::new(body);
    let mut ch = ClientHelloInfo { version: c.u16()?, ..Default::default() };
    ch.random = c.take(32)?.to_vec();
    let sid = c.u8()? as usize;
    ch.session_id = c.take(sid)?.to_vec();
    let cl = c.u16()? as usize;
    ch.ciphers = u16_list(c.take(cl)?);
    let comp = c.u8()? as usize;
    c.take(comp)?;
    let Some(el) = c.u16() else { return Some(ch) };
    let mut e = Cur::new(c.take(el as usize).unwrap_or(c.rest()));
    while let (Some(t), Some(l)) = (e.u16(), e.u16()) {
        let Some(b) = e.take(l as usize) else { break };
        ch.extensions.push(t);
        match t {
            0 => {
                // server_name list: first host_name entry.
                let mut s = Cur::new(b);
                let _ = s.u16();
                while let (Some(kind), Some(len)) = (s.u8(), s.u16()) {
                    let Some(name) = s.take(len as usize) else {
                        break;
                    };
                    if kind == 0 && ch.sni.is_none() {
                        ch.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            10 => ch.groups = u16_list(b.get(2..).unwrap_or_default()),
            11 => ch.point_formats = b.get(1..).unwrap_or_default().to_vec(),
            13 => ch.sig_algs = u16_list(b.get(2..).unwrap_or_default()),
            16 => ch.alpn = alpn_list(b),
            43 => ch.supported_versions = u16_list(b.get(1..).unwrap_or_default()),
            _ => {}
        }
    }
    Some(ch)
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHelloInfo> {
    let mut c = Cur::new(body);
    let mut sh = ServerHelloInfo { version: c.u16()?, ..Default::default() };
    let random = c.take(32)?;
    sh.hello_retry = random == HRR_RANDOM;
    sh.random = random.to_vec();
    let sid = c.u8()? as usize;
    sh.session_id = c.take(sid)?.to_vec();
    sh.cipher = c.u16()?;
    c.u8()?;
    let Some(el) = c.u16() else { return Some(sh) };
    let mut e = Cur::new(c.take(el as usize).unwrap_or(c.rest()));
    while let (Some(t), Some(l)) = (e.u16(), e.u16()) {
        let Some(b) = e.take(l as usize) else { break };
        sh.extensions.push(t);
        match t {
            43 if b.len() >= 2 => sh.selected_version = Some(u16::from_be_bytes([b[0], b[1]])),
            16 => sh.alpn = alpn_list(b),
            _ => {}
        }
    }
    Some(sh)
}

fn join<T: std::fmt::Display>(v: impl Iterator<Item = T>) -> String {
    let mut s = String::new();
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push('-');
        }
        let _ = write!(s, "{x}");
    }
    s
}

fn md5_hex(s: &str) -> String {
    super::hex(&Md5::digest(s.as_bytes()))
}

/// JA3 string and MD5 of a ClientHello.
pub fn ja3(ch: &ClientHelloInfo) -> Fingerprint {
    let s = format!(
        "{},{},{},{},{}",
        ch.version,
        join(ch.ciphers.iter().filter(|c| !is_grease(**c))),
        join(ch.extensions.iter().filter(|c| !is_grease(**c))),
        join(ch.groups.iter().filter(|c| !is_grease(**c))),
        join(ch.point_formats.iter())
    );
    Fingerprint { hash: Some(md5_hex(&s)), string: Some(s), ..Default::default() }
}

/// JA3S string and MD5 of a ServerHello.
pub fn ja3s(sh: &ServerHelloInfo) -> Fingerprint {
    let s = format!("{},{},{}", sh.version, sh.cipher, join(sh.extensions.iter().filter(|c| !is_grease(**c))));
    Fingerprint { hash: Some(md5_hex(&s)), string: Some(s), ..Default::default() }
}

fn sha256_12(s: &str) -> String {
    super::hex(&Sha256::digest(s.as_bytes())[..6])
}

/// JA4 (TLS over TCP) of a ClientHello.
pub fn ja4(ch: &ClientHelloInfo) -> String {
    let ver = ch.supported_versions.iter().copied().filter(|v| !is_grease(*v)).max().unwrap_or(ch.version);
    let ver = match ver {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let sni = if ch.extensions.contains(&0) { 'd' } else { 'i' };
    let ciphers: Vec<u16> = ch.ciphers.iter().copied().filter(|c| !is_grease(*c)).collect();
    let exts: Vec<u16> = ch.extensions.iter().copied().filter(|c| !is_grease(*c)).collect();
    let alpn = match ch.alpn.first() {
        Some(a) if !a.is_empty() => {
            let (f, l) = (a[0], a[a.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", f as char, l as char)
            } else {
                let h = format!("{:02x}", f);
                let t = format!("{:02x}", l);
                format!("{}{}", &h[..1], &t[1..])
            }
        }
        _ => "00".to_string(),
    };
    let mut cs: Vec<String> = ciphers.iter().map(|c| format!("{c:04x}")).collect();
    cs.sort();
    let b = if cs.is_empty() { "000000000000".to_string() } else { sha256_12(&cs.join(",")) };
    let mut es: Vec<String> = exts.iter().filter(|e| **e != 0 && **e != 16).map(|e| format!("{e:04x}")).collect();
    es.sort();
    let sigs: Vec<String> = ch.sig_algs.iter().filter(|s| !is_grease(**s)).map(|s| format!("{s:04x}")).collect();
    let c = if es.is_empty() && sigs.is_empty() {
        "000000000000".to_string()
    } else if sigs.is_empty() {
        sha256_12(&es.join(","))
    } else {
        sha256_12(&format!("{}_{}", es.join(","), sigs.join(",")))
    };
    format!("t{ver}{sni}{:02}{:02}{alpn}_{b}_{c}", ciphers.len().min(99), exts.len().min(99))
}

/// Suricata's version string.
pub fn version_string(v: u16) -> String {
    match v {
        0 => "UNDETERMINED".into(),
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v & 0xff00 == 0x7f00 => format!("TLS 1.3 draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}

fn colon_hex(d: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(d.len() * 3);
    for (i, b) in d.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        if upper {
            let _ = write!(s, "{b:02X}");
        } else {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

fn time_text(t: i64) -> String {
    let s = soc_model::Timestamp::from_unix_micros(t.saturating_mul(1_000_000)).to_string();
    s.get(..19).unwrap_or(&s).to_string()
}

/// Fills certificate fields of `tls` from a DER certificate (the server's first).
pub fn fill_certificate(tls: &mut Tls, der: &[u8]) {
    tls.fingerprint = Some(colon_hex(&Sha1::digest(der), false));
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return;
    };
    tls.subject = Some(cert.subject().to_string());
    tls.issuerdn = Some(cert.issuer().to_string());
    tls.serial = Some(colon_hex(cert.raw_serial(), true));
    tls.notbefore = Some(time_text(cert.validity().not_before.timestamp()));
    tls.notafter = Some(time_text(cert.validity().not_after.timestamp()));
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let mut names = Vec::new();
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(s) => names.push(Value::String(s.to_string())),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => Some(std::net::IpAddr::from([b[0], b[1], b[2], b[3]])),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(Value::String(ip.to_string()));
                    }
                }
                _ => {}
            }
        }
        if !names.is_empty() {
            tls.extra.insert("subjectaltname".into(), Value::Array(names));
        }
    }
}

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    hs: Vec<u8>,
    /// ChangeCipherSpec seen: later handshake records are encrypted.
    encrypted: bool,
    /// Parsing of this direction stopped (not TLS, gap, limits).
    stopped: bool,
}

/// The TLS parser of one flow.
#[derive(Debug, Default)]
pub struct TlsParser {
    sides: [Side; 2],
    client: Option<ClientHelloInfo>,
    server: Option<ServerHelloInfo>,
    cert: Option<Vec<u8>>,
    /// The server's certificate chain (DER, in order), for `tls.certs`.
    chain: Vec<Vec<u8>>,
    cert_seen: bool,
    server_ccs: bool,
    emitted: bool,
    anomalies: TlsAnomalies,
}

/// Decoding anomalies of a TLS handshake (Suricata's TLS app-layer events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsAnomalies {
    /// A handshake message that does not decode (`tls.invalid_handshake_message`): here a
    /// Certificate message whose server certificate does not.
    pub invalid_handshake_message: bool,
    /// The server certificate's DER lengths run past its data (`tls.certificate_invalid_length`).
    pub certificate_invalid_length: bool,
}

impl TlsParser {
    /// The anomalies met so far.
    pub fn anomalies(&self) -> TlsAnomalies {
        self.anomalies
    }

    /// The server's certificate chain (DER, server certificate first), once seen.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The client's and the server's hello randoms, once seen (`tls.random`).
    pub fn randoms(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        (self.client.as_ref().map(|c| c.random.as_slice()), self.server.as_ref().map(|s| s.random.as_slice()))
    }

    fn emit(&mut self, out: &mut Vec<AppRecord>) {
        if self.emitted || (self.client.is_none() && self.server.is_none()) {
            return;
        }
        self.emitted = true;
        let mut t = Tls::default();
        if let Some(der) = self.cert.take() {
            fill_certificate(&mut t, &der);
        }
        if let Some(ch) = &self.client {
            t.sni = ch.sni.clone();
            t.ja3 = Some(ja3(ch));
            t.ja4 = Some(ja4(ch));
            if !ch.alpn.is_empty() {
                let v = ch.alpn.iter().map(|a| Value::String(String::from_utf8_lossy(a).into_owned())).collect();
                t.extra.insert("client_alpns".into(), Value::Array(v));
            }
        }
        let version = self.server.as_ref().map(|s| s.selected_version.unwrap_or(s.version)).unwrap_or(0);
        t.version = Some(version_string(version));
        if let Some(sh) = &self.server {
            t.ja3s = Some(ja3s(sh));
            if !sh.alpn.is_empty() {
                let v = sh.alpn.iter().map(|a| Value::String(String::from_utf8_lossy(a).into_owned())).collect();
                t.extra.insert("server_alpns".into(), Value::Array(v));
            }
            // Resumed: the server echoed the client's session id, or went straight to
            // ChangeCipherSpec without a Certificate (abbreviated handshake, e.g. tickets).
            let echoed =
                self.client.as_ref().is_some_and(|ch| !ch.session_id.is_empty() && ch.session_id == sh.session_id);
            let abbreviated = self.server_ccs && !self.cert_seen;
            if sh.selected_version != Some(0x0304) && (echoed || abbreviated) {
                t.session_resumed = Some(true);
            }
        }
        out.push(AppRecord::Tls(Box::new(t)));
        self.sides[0].stopped = true;
        self.sides[1].stopped = true;
        self.sides[0].buf = Vec::new();
        self.sides[1].buf = Vec::new();
        self.sides[0].hs = Vec::new();
        self.sides[1].hs = Vec::new();
    }

    fn handshake_messages(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        let d = dir.index();
        let mut at = 0;
        loop {
            let hs = &self.sides[d].hs;
            let Some(h) = hs.get(at..at + 4) else { break };
            let len = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
            if len > MAX_HANDSHAKE {
                self.sides[d].stopped = true;
                break;
            }
            let Some(body) = hs.get(at + 4..at + 4 + len) else {
                break;
            };
            let typ = h[0];
            match (dir, typ) {
                (Direction::ToServer, 1) => {
                    if let Some(ch) = parse_client_hello(body) {
                        self.client = Some(ch);
                    }
                }
                (Direction::ToClient, 2) => {
                    if let Some(sh) = parse_server_hello(body) {
                        let retry = sh.hello_retry;
                        let tls13 = sh.selected_version == Some(0x0304);
                        self.server = Some(sh);
                        if tls13 && !retry {
                            self.emit(out);
                            return;
                        }
                    }
                }
                (Direction::ToClient, 11) => {
                    let mut c = Cur::new(body);
                    if c.u24().is_some() {
                        while let Some(len) = c.u24() {
                            let Some(der) = c.take(len) else { break };
                            self.chain.push(der.to_vec());
                        }
                    }
                    self.cert = self.chain.first().cloned();
                    self.cert_seen = true;
                    // the server certificate is decoded (as Suricata does, the first only)
                    if let Some(der) = self.chain.first()
                        && let Err(e) = x509_parser::parse_x509_certificate(der)
                    {
                        self.anomalies.invalid_handshake_message = true;
                        self.anomalies.certificate_invalid_length |= matches!(e, x509_parser::nom::Err::Incomplete(_));
                    }
                }
                _ => {}
            }
            at += 4 + len;
        }
        let hs = &mut self.sides[d].hs;
        if at > 0 {
            hs.drain(..at.min(hs.len()));
        }
    }

    fn records(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        let d = dir.index();
        let mut at = 0;
        loop {
            if self.emitted || self.sides[d].stopped {
                return;
            }
            let buf = &self.sides[d].buf;
            let Some(h) = buf.get(at..at + 5) else { break };
            let (typ, major, len) = (h[0], h[1], u16::from_be_bytes([h[3], h[4]]) as usize);
            if !(20..=24).contains(&typ) || major != 3 || len > MAX_RECORD {
                self.sides[d].stopped = true;
                break;
            }
            let Some(frag) = buf.get(at + 5..at + 5 + len) else {
                break;
            };
            match typ {
                22 if !self.sides[d].encrypted => {
                    if self.sides[d].hs.len() + frag.len() > MAX_HANDSHAKE {
                        self.sides[d].stopped = true;
                        break;
                    }
                    let frag = frag.to_vec();
                    self.sides[d].hs.extend_from_slice(&frag);
                    at += 5 + len;
                    self.handshake_messages(dir, out);
                    continue;
                }
                20 => {
                    self.sides[d].encrypted = true;
                    if dir == Direction::ToClient {
                        at += 5 + len;
                        self.server_ccs = true;
                        self.emit(out);
                        continue;
                    }
                }
                23 => {
                    at += 5 + len;
                    self.emit(out);
                    continue;
                }
                _ => {}
            }
            at += 5 + len;
        }
        let buf = &mut self.sides[d].buf;
        buf.drain(..at.min(buf.len()));
    }
}

impl AppParser for TlsParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.emitted || self.sides[d].stopped {
            return;
        }
        if self.sides[d].buf.len() + data.len() > MAX_RECORD * 4 {
            self.sides[d].stopped = true;
            return;
        }
        self.sides[d].buf.extend_from_slice(data);
        self.records(dir, out);
    }
    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        let s = &mut self.sides[dir.index()];
        s.stopped = true;
        s.buf = Vec::new();
        s.hs = Vec::new();
    }
    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        self.emit(out);
    }
    fn is_done(&self) -> bool {
        self.emitted || (self.sides[0].stopped && self.sides[1].stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, ClientHello};

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
    }

    #[test]
    fn ja3_ja4_of_a_known_client_hello() {
        // The anchor's ClientHello (Windows 10 Schannel): JA3 c12f54a3f91dc7bafd92cb59fe009a35.
        let ch = ClientHelloInfo {
            version: 771,
            ciphers: vec![
                49196, 49195, 49200, 49199, 159, 158, 49188, 49187, 49192, 49191, 49162, 49161, 49172, 49171, 157, 156,
                61, 60, 53, 47, 10,
            ],
            extensions: vec![10, 11, 13, 35, 23, 65281],
            groups: vec![29, 23, 24],
            point_formats: vec![0],
            ..Default::default()
        };
        let j = ja3(&ch);
        assert_eq!(
            j.string.as_deref(),
            Some(
                "771,49196-49195-49200-49199-159-158-49188-49187-49192-49191-49162-49161-49172-49171-157-156-61-60-53-47-10,10-11-13-35-23-65281,29-23-24,0"
            )
        );
        assert_eq!(j.hash.as_deref(), Some("c12f54a3f91dc7bafd92cb59fe009a35"));
        let j4 = ja4(&ch);
        assert!(j4.starts_with("t12i210600_76e208dd3e22_"), "{j4}");
        let sh =
            ServerHelloInfo { version: 771, cipher: 49200, extensions: vec![65281, 11, 35, 23], ..Default::default() };
        assert_eq!(ja3s(&sh).hash.as_deref(), Some("ec74a5c51106f0419184d0dd08fb05bc"));
    }

    #[test]
    fn synthetic_hello_with_sni_grease_and_alpn() {
        let ch = ClientHello {
            ciphers: vec![0x1a1a, 0x1301, 0xc02b],
            sni: Some("www.example.org".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            supported_versions: vec![0x2a2a, 0x0304, 0x0303],
            extra_extensions: vec![0x3a3a],
            ..Default::default()
        };
        let rec = ch.to_record();
        let body = &rec[5 + 4..];
        let info = parse_client_hello(body).unwrap();
        assert_eq!(info.sni.as_deref(), Some("www.example.org"));
        assert_eq!(info.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let j = ja3(&info);
        assert_eq!(j.string.as_deref(), Some("771,4865-49195,0-10-11-13-16-43,29-23-24,0"));
        let j4 = ja4(&info);
        assert!(j4.starts_with("t13d0206h2_"), "{j4}");
        // Through the parser, record split byte by byte, then a TLS 1.3 ServerHello.
        let mut p = TlsParser::default();
        let mut out = Vec::new();
        for b in rec.chunks(1) {
            p.on_data(Direction::ToServer, b, &mut out);
        }
        let sh = synth::tls_server_hello(0x0303, 0x1301, &[(43, vec![3, 4])], &[]);
        p.on_data(Direction::ToClient, &sh, &mut out);
        assert_eq!(out.len(), 1);
        let AppRecord::Tls(t) = &out[0] else { panic!() };
        assert_eq!(t.version.as_deref(), Some("TLS 1.3"));
        assert_eq!(t.sni.as_deref(), Some("www.example.org"));
        assert!(p.is_done());
        // tls.random: each hello's 32 bytes after its version
        let (c, s) = p.randoms();
        assert_eq!(c, body.get(2..34));
        assert_eq!(s.map(<[u8]>::len), Some(32));
        assert_eq!(s, sh.get(5 + 4 + 2..5 + 4 + 34));
    }

    #[test]
    fn resumed_tls12_session_is_logged_at_server_ccs() {
        let ch = ClientHello { session_id: vec![7; 32], ..Default::default() };
        let mut p = TlsParser::default();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, &ch.to_record(), &mut out);
        let mut server = synth::tls_server_hello(0x0303, 0xc030, &[(0xff01, vec![0]), (23, vec![])], &[7; 32]);
        server.extend_from_slice(&synth::tls_change_cipher_spec());
        p.on_data(Direction::ToClient, &server, &mut out);
        let AppRecord::Tls(t) = &out[0] else { panic!() };
        assert_eq!(t.session_resumed, Some(true));
        assert_eq!(t.version.as_deref(), Some("TLS 1.2"));
        assert_eq!(t.ja3s.as_ref().and_then(|j| j.string.as_deref()), Some("771,49200,65281-23"));
        assert_eq!(t.ja3s.as_ref().and_then(|j| j.hash.as_deref()), Some("fd4bc6cea4877646ccd62f0792ec0b62"));
    }

    #[test]
    fn an_undecodable_server_certificate_is_an_anomaly_and_a_cut_one_an_invalid_length() {
        let anomalies = |der: &[u8]| {
            let mut p = TlsParser::default();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, &ClientHello::default().to_record(), &mut out);
            let mut server = synth::tls_server_hello(0x0303, 0xc030, &[], &[]);
            server.extend_from_slice(&synth::tls_certificate(&[der]));
            p.on_data(Direction::ToClient, &server, &mut out);
            p.anomalies()
        };
        // a SEQUENCE whose inner SEQUENCE header is cut in its length bytes
        let cut = anomalies(&[0x30, 0x03, 0x30, 0x82, 0x01]);
        assert_eq!(cut, TlsAnomalies { invalid_handshake_message: true, certificate_invalid_length: true });
        // a SEQUENCE announcing 256 bytes and carrying 3, and complete DER that is not a
        // certificate (an INTEGER): undecodable, not an incomplete header
        for der in [&[0x30, 0x82, 0x01, 0x00, 1, 2, 3][..], &[0x02, 0x01, 0x05][..]] {
            let a = anomalies(der);
            assert_eq!(a, TlsAnomalies { invalid_handshake_message: true, certificate_invalid_length: false });
        }
        // a hello without any certificate
        let mut p = TlsParser::default();
        p.on_data(Direction::ToServer, &ClientHello::default().to_record(), &mut Vec::new());
        assert_eq!(p.anomalies(), TlsAnomalies::default());
    }

    #[test]
    fn truncated_hellos_never_panic() {
        let rec = ClientHello { alpn: vec!["h2".into()], ..Default::default() }.to_record();
        let body = &rec[9..];
        for n in 0..body.len() {
            let _ = parse_client_hello(&body[..n]);
            let _ = parse_server_hello(&body[..n]);
        }
        for n in 0..rec.len() {
            let mut p = TlsParser::default();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, &rec[..n], &mut out);
            p.on_close(&mut out);
        }
    }
}
