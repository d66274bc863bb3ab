//! DNS messages (RFC 1035) and their EVE "version 3" records.
//!
//! Names are decompressed with loop protection (a bounded number of pointer jumps) and a
//! length cap. One record is produced per message: `type` `request` or `response`.

use super::{AppParser, AppRecord, Direction, hex};
use serde_json::{Map, Value};
use soc_model::{Dns, DnsAnswer, DnsQuery};
use std::fmt::Write;

/// Most compression pointers followed in one name.
pub const MAX_POINTER_JUMPS: usize = 64;
/// Longest name text kept (longer names are cut and flagged `rrname_truncated`).
pub const MAX_NAME_LEN: usize = 1025;
/// Most records parsed per section.
const MAX_RECORDS: usize = 512;

/// Why a message did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("dns message shorter than its header")]
    TooShort,
    #[error("dns message truncated inside a record")]
    Truncated,
    #[error("dns name compression loop or too many pointers")]
    PointerLoop,
    #[error("dns label type not supported")]
    BadLabel,
    #[error("dns message has implausible section counts")]
    BadCounts,
}

/// A decoded name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub truncated: bool,
}

/// Record data the EVE log knows how to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// A/AAAA as Suricata prints them ("" when the length is wrong).
    Addr(String),
    /// CNAME, NS, PTR, MX (exchange only).
    Name(Name),
    Txt(Vec<String>),
    Null(String),
    Soa {
        mname: Name,
        rname: Name,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Sshfp {
        algo: u8,
        fp_type: u8,
        fingerprint: String,
    },
    /// OPT options: (code, hex data).
    Opt(Vec<(u16, String)>),
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// A parsed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub queries: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Result<u16, DnsError> {
    Ok(u16::from_be_bytes([*b.get(at).ok_or(DnsError::Truncated)?, *b.get(at + 1).ok_or(DnsError::Truncated)?]))
}
#[inline]
fn be32(b: &[u8], at: usize) -> Result<u32, DnsError> {
    Ok(((be16(b, at)? as u32) << 16) | be16(b, at + 2)? as u32)
}

/// Appends bytes as Suricata prints them: printable ASCII kept, other bytes as `\xNN`.
fn push_printable(out: &mut String, bytes: &[u8]) {
    for &c in bytes {
        if (0x20..0x7f).contains(&c) {
            out.push(c as char);
        } else {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
}

fn printable(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    push_printable(&mut s, bytes);
    s
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it in the
/// original byte stream.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(Name, usize), DnsError> {
    let mut name = Name::default();
    let mut p = pos;
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(p).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let end = after.unwrap_or(p + 1);
                    if name.text.is_empty() {
                        name.text.push_str("<root>");
                    }
                    return Ok((name, end));
                }
                let label = msg.get(p + 1..p + 1 + len as usize).ok_or(DnsError::Truncated)?;
                if !name.truncated {
                    if !name.text.is_empty() {
                        name.text.push('.');
                    }
                    push_printable(&mut name.text, label);
                    if name.text.len() > MAX_NAME_LEN {
                        let mut cut = MAX_NAME_LEN;
                        while !name.text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        name.text.truncate(cut);
                        name.truncated = true;
                    }
                }
                p += 1 + len as usize;
            }
            0xc0 => {
                let lo = *msg.get(p + 1).ok_or(DnsError::Truncated)?;
                let target = (((len & 0x3f) as usize) << 8) | lo as usize;
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::PointerLoop);
                }
                if after.is_none() {
                    after = Some(p + 2);
                }
                p = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

fn print_addr(d: &[u8]) -> String {
    match d.len() {
        4 => format!("{}.{}.{}.{}", d[0], d[1], d[2], d[3]),
        16 => {
            let mut s = String::with_capacity(39);
            for (i, c) in d.chunks(2).enumerate() {
                if i > 0 {
                    s.push(':');
                }
                let _ = write!(s, "{:02x}{:02x}", c[0], c[1]);
            }
            s
        }
        _ => String::new(),
    }
}

fn parse_rdata(msg: &[u8], rtype: u16, start: usize, rd: &[u8]) -> Result<RData, DnsError> {
    Ok(match rtype {
        1 | 28 => RData::Addr(print_addr(rd)),
        // An empty RDATA (dynamic-update deletes) has no name at all.
        2 | 5 | 12 | 15 if rd.len() <= if rtype == 15 { 2 } else { 0 } => RData::Name(Name::default()),
        2 | 5 | 12 => RData::Name(read_name(msg, start)?.0),
        15 => RData::Name(read_name(msg, start + 2)?.0),
        16 => {
            let mut v = Vec::new();
            let mut i = 0;
            while i < rd.len() {
                let l = rd[i] as usize;
                let s = rd.get(i + 1..i + 1 + l).ok_or(DnsError::Truncated)?;
                v.push(printable(s));
                i += 1 + l;
            }
            RData::Txt(v)
        }
        10 => RData::Null(printable(rd)),
        6 => {
            let (mname, p) = read_name(msg, start)?;
            let (rname, p) = read_name(msg, p)?;
            RData::Soa {
                mname,
                rname,
                serial: be32(msg, p)?,
                refresh: be32(msg, p + 4)?,
                retry: be32(msg, p + 8)?,
                expire: be32(msg, p + 12)?,
                minimum: be32(msg, p + 16)?,
            }
        }
        33 => RData::Srv {
            priority: be16(msg, start)?,
            weight: be16(msg, start + 2)?,
            port: be16(msg, start + 4)?,
            target: read_name(msg, start + 6)?.0,
        },
        44 => {
            let algo = *rd.first().ok_or(DnsError::Truncated)?;
            let fp_type = *rd.get(1).ok_or(DnsError::Truncated)?;
            let mut fp = String::with_capacity(rd.len().saturating_sub(2) * 3);
            for (i, b) in rd[2..].iter().enumerate() {
                if i > 0 {
                    fp.push(':');
                }
                super::push_hex(&mut fp, &[*b]);
            }
            RData::Sshfp { algo, fp_type, fingerprint: fp }
        }
        41 => {
            let mut v = Vec::new();
            let mut i = 0;
            while i + 4 <= rd.len() {
                let code = u16::from_be_bytes([rd[i], rd[i + 1]]);
                let l = u16::from_be_bytes([rd[i + 2], rd[i + 3]]) as usize;
                let d = rd.get(i + 4..i + 4 + l).ok_or(DnsError::Truncated)?;
                v.push((code, hex(d)));
                i += 4 + l;
            }
            RData::Opt(v)
        }
        _ => RData::Other,
    })
}

fn parse_records(msg: &[u8], mut p: usize, count: u16, out: &mut Vec<Record>) -> Result<usize, DnsError> {
    for _ in 0..count.min(MAX_RECORDS as u16) {
        let (name, np) = read_name(msg, p)?;
        let rtype = be16(msg, np)?;
        let class = be16(msg, np + 2)?;
        let ttl = be32(msg, np + 4)?;
        let rdlen = be16(msg, np + 8)? as usize;
        let start = np + 10;
        let rd = msg.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
        let data = parse_rdata(msg, rtype, start, rd)?;
        out.push(Record { name, rtype, class, ttl, data });
        p = start + rdlen;
    }
    Ok(p)
}

/// Parses a whole DNS message.
pub fn parse_message(msg: &[u8]) -> Result<Message, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::TooShort);
    }
    let id = be16(msg, 0)?;
    let flags = be16(msg, 2)?;
    let qd = be16(msg, 4)?;
    let an = be16(msg, 6)?;
    let ns = be16(msg, 8)?;
    let ar = be16(msg, 10)?;
    // Every question takes at least 5 bytes and every record 11.
    if (qd as usize) * 5 + (an as usize + ns as usize + ar as usize) * 11 > msg.len() - 12 {
        return Err(DnsError::BadCounts);
    }
    let mut m = Message {
        id,
        flags,
        queries: Vec::with_capacity(qd.min(4) as usize),
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
    };
    let mut p = 12;
    for _ in 0..qd {
        let (name, np) = read_name(msg, p)?;
        m.queries.push(Question { name, qtype: be16(msg, np)?, qclass: be16(msg, np + 2)? });
        p = np + 4;
    }
    p = parse_records(msg, p, an, &mut m.answers)?;
    p = parse_records(msg, p, ns, &mut m.authorities)?;
    parse_records(msg, p, ar, &mut m.additionals)?;
    Ok(m)
}

/// Header sanity check used before the whole message is available.
pub fn header_plausible(h: &[u8]) -> bool {
    if h.len() < 12 {
        return true;
    }
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let opcode = (flags >> 11) & 0xf;
    let qd = u16::from_be_bytes([h[4], h[5]]);
    matches!(opcode, 0 | 1 | 2 | 4 | 5) && (1..=16).contains(&qd) && flags & 0x0040 == 0
}

/// True when `msg` looks like DNS (used for detection): a plausible header, a whole-message
/// parse, and no NetBIOS-encoded names (NBNS shares DNS's wire format).
pub fn probe_message(msg: &[u8]) -> bool {
    if msg.len() < 17 || !header_plausible(msg) {
        return false;
    }
    let Ok(m) = parse_message(msg) else {
        return false;
    };
    let Some(q) = m.queries.first() else {
        return false;
    };
    if matches!(q.qtype, 32 | 33) && q.qclass == 1 {
        let first = q.name.text.split('.').next().unwrap_or("");
        if first.len() == 32 && first.bytes().all(|b| (b'A'..=b'P').contains(&b)) {
            return false;
        }
    }
    m.queries.iter().all(|q| q.qclass == 1 || q.qclass == 3 || q.qclass == 255 || q.qclass == 0x8001 || q.qclass == 254)
}

/// Suricata's name for a record type.
pub fn rrtype_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return t.to_string(),
    };
    s.to_string()
}

/// Suricata's name for an rcode.
pub fn rcode_name(flags: u16) -> String {
    match flags & 0xf {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        n => return n.to_string(),
    }
    .to_string()
}

fn soa_obj(mname: &Name, rname: &Name, v: [u32; 5]) -> Value {
    let mut o = Map::new();
    o.insert("mname".into(), Value::String(mname.text.clone()));
    if mname.truncated {
        o.insert("mname_truncated".into(), Value::Bool(true));
    }
    o.insert("rname".into(), Value::String(rname.text.clone()));
    if rname.truncated {
        o.insert("rname_truncated".into(), Value::Bool(true));
    }
    for (k, x) in ["serial", "refresh", "retry", "expire", "minimum"].iter().zip(v) {
        o.insert((*k).into(), Value::from(x));
    }
    Value::Object(o)
}

fn srv_obj(priority: u16, weight: u16, port: u16, target: &Name) -> Value {
    let mut o = Map::new();
    o.insert("priority".into(), Value::from(priority));
    o.insert("weight".into(), Value::from(weight));
    o.insert("port".into(), Value::from(port));
    o.insert("name".into(), Value::String(target.text.clone()));
    Value::Object(o)
}

fn sshfp_obj(algo: u8, fp_type: u8, fp: &str) -> Value {
    let mut o = Map::new();
    o.insert("fingerprint".into(), Value::String(fp.to_string()));
    o.insert("algo".into(), Value::from(algo));
    o.insert("type".into(), Value::from(fp_type));
    Value::Object(o)
}

/// EVE entries of one record (TXT records give one entry per string).
fn answer_entries(r: &Record, out: &mut Vec<DnsAnswer>) {
    let base = || {
        let mut a = DnsAnswer {
            rrname: Some(r.name.text.clone()),
            rrtype: Some(rrtype_name(r.rtype)),
            ttl: Some(r.ttl),
            ..Default::default()
        };
        if r.name.truncated {
            a.extra.insert("rrname_truncated".into(), Value::Bool(true));
        }
        a
    };
    match &r.data {
        RData::Addr(s) | RData::Null(s) => {
            let mut a = base();
            a.rdata = Some(s.clone());
            out.push(a);
        }
        RData::Name(n) => {
            let mut a = base();
            a.rdata = Some(n.text.clone());
            if n.truncated {
                a.extra.insert("rdata_truncated".into(), Value::Bool(true));
            }
            out.push(a);
        }
        RData::Txt(v) => {
            for s in v {
                let mut a = base();
                a.rdata = Some(s.clone());
                out.push(a);
            }
        }
        RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            let mut a = base();
            a.extra.insert("soa".into(), soa_obj(mname, rname, [*serial, *refresh, *retry, *expire, *minimum]));
            out.push(a);
        }
        RData::Srv { priority, weight, port, target } => {
            let mut a = base();
            a.extra.insert("srv".into(), srv_obj(*priority, *weight, *port, target));
            out.push(a);
        }
        RData::Sshfp { algo, fp_type, fingerprint } => {
            let mut a = base();
            a.extra.insert("sshfp".into(), sshfp_obj(*algo, *fp_type, fingerprint));
            out.push(a);
        }
        RData::Opt(opts) => {
            let mut a = base();
            let list = opts
                .iter()
                .map(|(c, d)| {
                    let mut o = Map::new();
                    o.insert("code".into(), Value::from(*c));
                    o.insert("data".into(), Value::String(d.clone()));
                    Value::Object(o)
                })
                .collect();
            a.extra.insert("opt".into(), Value::Array(list));
            out.push(a);
        }
        RData::Other => out.push(base()),
    }
}

/// The EVE `dns` object (version 3) of a message; `tx_id` is the flow's message counter.
pub fn to_eve(m: &Message, tx_id: u64) -> Dns {
    let f = m.flags;
    let mut d = Dns {
        version: Some(3),
        kind: Some(if f & 0x8000 != 0 { "response" } else { "request" }.to_string()),
        tx_id: Some(tx_id),
        id: Some(m.id),
        flags: Some(format!("{f:x}")),
        qr: (f & 0x8000 != 0).then_some(true),
        aa: (f & 0x0400 != 0).then_some(true),
        tc: (f & 0x0200 != 0).then_some(true),
        rd: (f & 0x0100 != 0).then_some(true),
        ra: (f & 0x0080 != 0).then_some(true),
        opcode: Some(((f >> 11) & 0xf) as u8),
        rcode: Some(rcode_name(f)),
        ..Default::default()
    };
    if f & 0x0040 != 0 {
        d.extra.insert("z".into(), Value::Bool(true));
    }
    for q in &m.queries {
        let mut dq =
            DnsQuery { rrname: Some(q.name.text.clone()), rrtype: Some(rrtype_name(q.qtype)), ..Default::default() };
        if q.name.truncated {
            dq.extra.insert("rrname_truncated".into(), Value::Bool(true));
        }
        d.queries.push(dq);
    }
    if !m.answers.is_empty() {
        let mut answers = Vec::with_capacity(m.answers.len());
        let mut grouped: Map<String, Value> = Map::new();
        for r in &m.answers {
            answer_entries(r, &mut answers);
            let g = match &r.data {
                RData::Addr(s) | RData::Null(s) => vec![Value::String(s.clone())],
                RData::Name(n) => vec![Value::String(n.text.clone())],
                RData::Txt(v) => v.iter().map(|s| Value::String(s.clone())).collect(),
                RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
                    vec![soa_obj(mname, rname, [*serial, *refresh, *retry, *expire, *minimum])]
                }
                RData::Srv { priority, weight, port, target } => vec![srv_obj(*priority, *weight, *port, target)],
                RData::Sshfp { algo, fp_type, fingerprint } => vec![sshfp_obj(*algo, *fp_type, fingerprint)],
                RData::Opt(_) | RData::Other => vec![],
            };
            if !g.is_empty()
                && let Value::Array(a) = grouped.entry(rrtype_name(r.rtype)).or_insert_with(|| Value::Array(Vec::new()))
            {
                a.extend(g);
            }
        }
        d.answers = Some(answers);
        d.extra.insert("grouped".into(), Value::Object(grouped));
    }
    if !m.authorities.is_empty() {
        let mut v = Vec::new();
        for r in &m.authorities {
            answer_entries(r, &mut v);
        }
        d.authorities = Some(v);
    }
    let adds: Vec<&Record> =
        m.additionals.iter().filter(|r| !matches!(&r.data, RData::Opt(o) if o.is_empty())).collect();
    if !adds.is_empty() {
        let mut v = Vec::new();
        for r in adds {
            answer_entries(r, &mut v);
        }
        d.additionals = Some(v);
    }
    d
}

/// Per-flow DNS-over-UDP state: the message counter.
#[derive(Debug, Default)]
pub struct DnsUdpState {
    pub next_tx: u64,
}

impl DnsUdpState {
    /// Parses one datagram; a record on success, an anomaly otherwise.
    pub fn on_datagram(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        match parse_message(data) {
            Ok(m) => {
                let d = to_eve(&m, self.next_tx);
                self.next_tx += 1;
                out.push(AppRecord::Dns { dir, dns: Box::new(d) });
            }
            Err(_) => out.push(AppRecord::Anomaly { proto: super::AppProto::Dns, event: "malformed_data", dir }),
        }
    }
}

/// Most bytes buffered per direction for one DNS-over-TCP message.
const TCP_BUF_MAX: usize = 65537;

/// DNS over TCP: 2-byte length-prefixed messages, buffered per direction.
#[derive(Debug, Default)]
pub struct DnsTcpParser {
    buf: [Vec<u8>; 2],
    broken: [bool; 2],
    next_tx: u64,
}

impl DnsTcpParser {
    fn take_messages(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        // Zero-copy fast path: whole messages in `data` with nothing buffered.
        let mut rest = data;
        if self.buf[d].is_empty() {
            while rest.len() >= 2 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let Some(msg) = rest.get(2..2 + len) else {
                    break;
                };
                self.one(dir, msg, out);
                rest = &rest[2 + len..];
            }
            if !rest.is_empty() {
                self.buf[d].extend_from_slice(rest);
            }
            return;
        }
        if self.buf[d].len() + rest.len() > TCP_BUF_MAX {
            self.buf[d].clear();
            self.broken[d] = true;
            return;
        }
        self.buf[d].extend_from_slice(rest);
        let buf = std::mem::take(&mut self.buf[d]);
        let mut at = 0;
        while buf.len() - at >= 2 {
            let len = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
            let Some(msg) = buf.get(at + 2..at + 2 + len) else {
                break;
            };
            self.one(dir, msg, out);
            at += 2 + len;
        }
        self.buf[d] = buf[at..].to_vec();
    }

    fn one(&mut self, dir: Direction, msg: &[u8], out: &mut Vec<AppRecord>) {
        match parse_message(msg) {
            Ok(m) => {
                out.push(AppRecord::Dns { dir, dns: Box::new(to_eve(&m, self.next_tx)) });
                self.next_tx += 1;
            }
            Err(_) => out.push(AppRecord::Anomaly { proto: super::AppProto::Dns, event: "malformed_data", dir }),
        }
    }
}

impl AppParser for DnsTcpParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        if !self.broken[dir.index()] {
            self.take_messages(dir, data, out);
        }
    }
    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        self.buf[dir.index()].clear();
        self.broken[dir.index()] = true;
    }
    fn on_close(&mut self, _out: &mut Vec<AppRecord>) {}
    fn is_done(&self) -> bool {
        self.broken[0] && self.broken[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{DnsRr, dns_query, dns_response};

    #[test]
    fn request_and_response_match_suricata_shape() {
        let q = dns_query(14384, "array607.prod.do.dsp.mp.microsoft.com", 1);
        let m = parse_message(&q).unwrap();
        let v = serde_json::to_value(to_eve(&m, 0)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"version":3,"type":"request","tx_id":0,"id":14384,"flags":"100","rd":true,"opcode":0,"rcode":"NOERROR",
                "queries":[{"rrname":"array607.prod.do.dsp.mp.microsoft.com","rrtype":"A"}]})
        );
        let r = dns_response(
            14384,
            "ctldl.windowsupdate.com",
            1,
            0,
            &[
                DnsRr::Cname("ctldl.windowsupdate.com", "a767.dscg3.akamai.net", 2725),
                DnsRr::A("a767.dscg3.akamai.net", "23.62.7.160".parse().unwrap(), 19),
                DnsRr::Aaaa("a767.dscg3.akamai.net", "2001:db8::1".parse().unwrap(), 19),
            ],
        );
        let m = parse_message(&r).unwrap();
        let v = serde_json::to_value(to_eve(&m, 1)).unwrap();
        assert_eq!(v["flags"], "8180");
        assert_eq!(v["qr"], true);
        assert_eq!(v["ra"], true);
        assert_eq!(v["answers"][0]["rrname"], "ctldl.windowsupdate.com");
        assert_eq!(v["answers"][0]["rdata"], "a767.dscg3.akamai.net");
        assert_eq!(v["answers"][1]["rdata"], "23.62.7.160");
        assert_eq!(v["answers"][2]["rdata"], "2001:0db8:0000:0000:0000:0000:0000:0001");
        assert_eq!(v["grouped"]["A"][0], "23.62.7.160");
        assert_eq!(v["grouped"]["CNAME"][0], "a767.dscg3.akamai.net");
    }

    #[test]
    fn compression_loops_are_rejected_not_followed_forever() {
        // Header with one question whose name is a pointer to itself.
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
        // Two pointers pointing at each other.
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
        // Pointer past the end.
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 200, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m), Err(DnsError::Truncated));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let r = dns_response(7, "example.org", 1, 0, &[DnsRr::A("example.org", "1.2.3.4".parse().unwrap(), 60)]);
        for n in 0..r.len() {
            assert!(parse_message(&r[..n]).is_err(), "len {n}");
        }
        assert!(parse_message(&r).is_ok());
    }

    #[test]
    fn soa_srv_txt_mx_and_root() {
        // Build a response by hand: question example.org TXT; answers TXT(2 strings), MX,
        // SRV; authority SOA; additional OPT (empty, skipped).
        let mut m = vec![0, 9, 0x85, 0x80, 0, 1, 0, 3, 0, 1, 0, 1];
        m.extend_from_slice(&crate::synth::dns_name("example.org"));
        m.extend_from_slice(&[0, 16, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 8, 3, b'a', b'b', b'c', 3, b'd', b'\n', b'f']);
        m.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 0xc0, 12]);
        m.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 8, 0, 1, 0, 2, 0, 80, 0xc0, 12]);
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 12, 0xc0, 12]);
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let msg = parse_message(&m).unwrap();
        let v = serde_json::to_value(to_eve(&msg, 3)).unwrap();
        assert_eq!(v["answers"][0]["rdata"], "abc");
        assert_eq!(v["answers"][1]["rdata"], "d\\x0af");
        assert_eq!(v["answers"][2]["rrtype"], "MX");
        assert_eq!(v["answers"][2]["rdata"], "example.org");
        assert_eq!(v["answers"][3]["srv"], serde_json::json!({"priority":1,"weight":2,"port":80,"name":"example.org"}));
        assert_eq!(v["grouped"]["TXT"], serde_json::json!(["abc", "d\\x0af"]));
        assert_eq!(v["authorities"][0]["soa"]["serial"], 1);
        assert_eq!(v["authorities"][0]["soa"]["minimum"], 5);
        assert!(v.get("additionals").is_none());
        assert_eq!(v["aa"], true);
    }

    #[test]
    fn netbios_name_queries_are_not_dns() {
        let nb = dns_query(0x1234, "EKFCEPEFEFEPFDFECACACACACACACAAA", 32);
        assert!(!probe_message(&nb));
        assert!(probe_message(&dns_query(1, "example.org", 28)));
    }
}
