//! Application layer: protocol detection by content, and parsers for DNS, HTTP/1.x, HTTP/2
//! (prior knowledge and h2c upgrades, [`http2`]) and TLS.
//!
//! Parsers implement [`AppParser`]: they receive in-order bytes per direction through
//! [`AppParser::on_data`], are told about lost bytes through [`AppParser::on_gap`], and
//! produce [`AppRecord`]s. For TCP the bytes come from the reassembly of [`stream::Stream`]
//! (one per direction; overlap policy, gaps and memory limits are documented there).

pub mod ber;
pub mod dcerpc;
pub mod detect;
pub mod dnp3;
pub mod dns;
pub mod enip;
pub mod file;
pub mod ftp;
pub mod http;
pub mod http2;
pub mod ike;
pub mod inline;
pub mod krb5;
pub mod ldap;
pub mod mqtt;
pub mod msg;
pub mod pgsql;
pub mod quic;
pub mod raw;
pub mod sip;
pub mod smb;
pub mod smtp;
pub mod snmp;
pub mod ssh;
pub mod stream;
pub mod telnet;
pub mod tftp;
pub mod tls;
pub mod websocket;

use crate::detect::compile::AlprotoState;
use soc_model::{Dns, Http, Tls};
use std::sync::Arc;
use stream::{Reassembly, Stream, StreamChunk};

/// Direction of data relative to the flow's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    ToServer = 0,
    ToClient = 1,
}

impl Direction {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn other(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Application protocol of a flow (EVE `app_proto` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppProto {
    /// Not (yet) known.
    #[default]
    Unknown,
    /// Detection ran on the flow's data and matched nothing.
    Failed,
    Http,
    Http2,
    Tls,
    Dns,
    Ssh,
    Smtp,
    Ftp,
    /// An FTP data connection announced on a control channel ([`ftp`]).
    FtpData,
    Smb,
    Dcerpc,
    Krb5,
    Ldap,
    Ntp,
    /// DNP3 (TCP): parsed by [`dnp3::Dnp3Parser`].
    Dnp3,
    /// PostgreSQL: framed by [`pgsql::PgsqlParser`].
    Pgsql,
    /// WebSocket, after an HTTP/1.1 upgrade.
    Websocket,
    Telnet,
}

impl AppProto {
    /// The EVE name; `None` for [`AppProto::Unknown`].
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            AppProto::Unknown => return None,
            AppProto::Failed => "failed",
            AppProto::Http => "http",
            AppProto::Http2 => "http2",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Ssh => "ssh",
            AppProto::Smtp => "smtp",
            AppProto::Ftp => "ftp",
            AppProto::FtpData => "ftp-data",
            AppProto::Smb => "smb",
            AppProto::Dcerpc => "dcerpc",
            AppProto::Krb5 => "krb5",
            AppProto::Ldap => "ldap",
            AppProto::Ntp => "ntp",
            AppProto::Dnp3 => "dnp3",
            AppProto::Pgsql => "pgsql",
            AppProto::Websocket => "websocket",
            AppProto::Telnet => "telnet",
        })
    }
    /// Whether the sensor parses this protocol's transactions (others are only detected).
    pub fn has_parser(self) -> bool {
        matches!(self, AppProto::Http | AppProto::Http2 | AppProto::Tls | AppProto::Dns)
    }
}

/// A record produced by a parser; the sensor wraps it in an EVE envelope.
#[derive(Clone, Debug, PartialEq)]
pub enum AppRecord {
    /// One DNS message; `dir` is the direction it travelled.
    Dns { dir: Direction, dns: Box<Dns> },
    /// One HTTP transaction.
    Http { tx_id: u64, http: Box<Http> },
    /// The request of an HTTP transaction is complete (headers and body): inspected for
    /// alerts at that packet, not logged (the transaction's `Http` record follows).
    HttpRequest { tx_id: u64, http: Box<Http> },
    /// One TLS session's handshake.
    Tls(Box<Tls>),
    /// One side of an SMB or DCERPC transaction: inspected for alerts, not logged.
    Inspect(Box<dcerpc::TxInspect>),
    /// A message of this direction is complete: its raw stream is inspected once acknowledged
    /// (Suricata's parsers trigger raw stream inspection per transaction); never logged.
    TriggerRaw(Direction),
    /// An app-layer anomaly (Suricata `anomaly.type = "applayer"`).
    Anomaly { proto: AppProto, event: &'static str, dir: Direction },
    /// A transaction logged as Suricata's EVE record of its protocol (`dcerpc`, `krb5`,
    /// `fileinfo`...): its type and its fields next to the envelope's.
    Log(Box<LogRecord>),
}

/// An EVE record of a protocol the model has no typed payload for ([`AppRecord::Log`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// The EVE `event_type` (`dcerpc`, `krb5`, `fileinfo`...).
    pub event_type: &'static str,
    /// The envelope's source is the flow's server (the message that completed the record
    /// travelled to the client).
    pub to_client: bool,
    /// The record's fields besides the envelope: usually one object named as the type.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl LogRecord {
    /// A record whose only field is `body`, named as the type (`{"krb5": {...}}`).
    pub fn new(event_type: &'static str, to_client: bool, body: serde_json::Map<String, serde_json::Value>) -> Self {
        let mut fields = serde_json::Map::new();
        fields.insert(event_type.to_string(), serde_json::Value::Object(body));
        LogRecord { event_type, to_client, fields }
    }
}

impl AppRecord {
    /// The EVE record of type `event_type`, when the record is one.
    pub fn as_log(&self, event_type: &str) -> Option<&LogRecord> {
        match self {
            AppRecord::Log(l) if l.event_type == event_type => Some(l),
            _ => None,
        }
    }

    /// The transaction to inspect, when the record is one.
    pub fn as_inspect(&self) -> Option<&dcerpc::TxInspect> {
        match self {
            AppRecord::Inspect(t) => Some(t),
            _ => None,
        }
    }

    /// The transaction to inspect, when the record is one (owned).
    pub fn into_inspect(self) -> Option<dcerpc::TxInspect> {
        match self {
            AppRecord::Inspect(t) => Some(*t),
            _ => None,
        }
    }
}

/// A keyword's list of flag names (`fin,!comp`; `!` before a name: the bit must be clear),
/// split at `seps`, as a `(mask, value)` pair; `bit_of` gives each name's bit.
pub fn parse_named_bits(v: &str, seps: &[char], bit_of: impl Fn(&str) -> Option<u64>) -> Result<(u64, u64), String> {
    let (mut mask, mut value) = (0u64, 0u64);
    for part in v.split(seps).map(str::trim) {
        let (neg, name) = match part.strip_prefix('!') {
            Some(n) => (true, n.trim()),
            None => (false, part),
        };
        let Some(bit) = bit_of(name) else { return Err(format!("unknown flag '{name}'")) };
        if mask & bit != 0 {
            return Err(format!("flag '{name}' given twice"));
        }
        mask |= bit;
        if !neg {
            value |= bit;
        }
    }
    Ok((mask, value))
}

/// The interface between the byte stream and a protocol parser.
pub trait AppParser {
    /// In-order bytes of one direction.
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>);
    /// `len` bytes of one direction were lost (capture loss, or given up on).
    fn on_gap(&mut self, dir: Direction, len: u32, out: &mut Vec<AppRecord>);
    /// One direction finished (FIN or RST).
    fn on_eof(&mut self, _dir: Direction, _out: &mut Vec<AppRecord>) {}
    /// The flow ends: flush what is pending.
    fn on_close(&mut self, out: &mut Vec<AppRecord>);
    /// Nothing more will be parsed: the sensor stops feeding data.
    fn is_done(&self) -> bool;
}

/// A parser of any supported protocol (static dispatch).
pub enum Parser {
    Http(Box<http::HttpParser>),
    Http2(Box<http2::Http2Parser>),
    Tls(Box<tls::TlsParser>),
    DnsTcp(dns::DnsTcpParser),
    Dcerpc(Box<dcerpc::DcerpcParser>),
    Smb(Box<smb::SmbParser>),
    Ftp(Box<ftp::FtpParser>),
    Smtp(Box<smtp::SmtpParser>),
    FtpData(Box<ftp::FtpDataParser>),
    Dnp3(Box<dnp3::Dnp3Parser>),
    Ldap(Box<ldap::LdapParser>),
    Pgsql(Box<pgsql::PgsqlParser>),
    Websocket(Box<websocket::WebsocketParser>),
    Ssh(Box<ssh::SshParser>),
    Telnet(Box<telnet::TelnetParser>),
    Krb5(Box<krb5::Krb5Parser>),
}

impl Parser {
    pub fn for_tcp(proto: AppProto) -> Option<Parser> {
        match proto {
            AppProto::Http => Some(Parser::Http(Box::default())),
            AppProto::Http2 => Some(Parser::Http2(Box::default())),
            AppProto::Tls => Some(Parser::Tls(Box::default())),
            AppProto::Dns => Some(Parser::DnsTcp(dns::DnsTcpParser::default())),
            AppProto::Dcerpc => Some(Parser::Dcerpc(Box::default())),
            AppProto::Smb => Some(Parser::Smb(Box::default())),
            AppProto::Ftp => Some(Parser::Ftp(Box::default())),
            AppProto::Smtp => Some(Parser::Smtp(Box::default())),
            AppProto::Dnp3 => Some(Parser::Dnp3(Box::default())),
            AppProto::Ldap => Some(Parser::Ldap(Box::default())),
            AppProto::Pgsql => Some(Parser::Pgsql(Box::default())),
            AppProto::Ssh => Some(Parser::Ssh(Box::default())),
            AppProto::Telnet => Some(Parser::Telnet(Box::default())),
            AppProto::Krb5 => Some(Parser::Krb5(Box::default())),
            _ => None,
        }
    }
    fn as_dyn(&mut self) -> &mut dyn AppParser {
        match self {
            Parser::Http(p) => p.as_mut(),
            Parser::Http2(p) => p.as_mut(),
            Parser::Tls(p) => p.as_mut(),
            Parser::DnsTcp(p) => p,
            Parser::Dcerpc(p) => p.as_mut(),
            Parser::Smb(p) => p.as_mut(),
            Parser::Ftp(p) => p.as_mut(),
            Parser::Smtp(p) => p.as_mut(),
            Parser::FtpData(p) => p.as_mut(),
            Parser::Dnp3(p) => p.as_mut(),
            Parser::Ldap(p) => p.as_mut(),
            Parser::Pgsql(p) => p.as_mut(),
            Parser::Websocket(p) => p.as_mut(),
            Parser::Ssh(p) => p.as_mut(),
            Parser::Telnet(p) => p.as_mut(),
            Parser::Krb5(p) => p.as_mut(),
        }
    }
    /// SMB and DCERPC transaction sides completed by earlier packets, for direction `dir`: like
    /// Suricata in IDS mode (which parses a direction's data once the peer acknowledged it),
    /// they are inspected at the next packet of their direction, or at the end of the flow.
    pub fn take_deferred(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        match self {
            Parser::Dcerpc(p) => p.take_deferred(dir, out),
            Parser::Smb(p) => p.take_deferred(dir, out),
            Parser::Dnp3(p) => p.take_deferred(dir, out),
            Parser::Ldap(p) => p.take_deferred(dir, out),
            _ => {}
        }
    }
    fn done(&self) -> bool {
        match self {
            Parser::Http(p) => p.is_done(),
            Parser::Http2(p) => p.is_done(),
            Parser::Tls(p) => p.is_done(),
            Parser::DnsTcp(p) => p.is_done(),
            Parser::Dcerpc(p) => p.is_done(),
            Parser::Smb(p) => p.is_done(),
            Parser::Ftp(p) => p.is_done(),
            Parser::Smtp(p) => p.is_done(),
            Parser::FtpData(p) => p.is_done(),
            Parser::Dnp3(p) => p.is_done(),
            Parser::Ldap(p) => p.is_done(),
            Parser::Pgsql(p) => p.is_done(),
            Parser::Websocket(p) => p.is_done(),
            Parser::Ssh(p) => p.is_done(),
            Parser::Telnet(p) => p.is_done(),
            Parser::Krb5(p) => p.is_done(),
        }
    }
}

/// Longest prefix kept while detection needs more bytes.
const PROBE_MAX: usize = 512;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DetectState {
    #[default]
    Pending,
    Failed,
}

/// App-layer state of a TCP flow: the two streams, detection, the parser.
#[derive(Default)]
pub struct AppSession {
    pub streams: [Stream; 2],
    detect: [DetectState; 2],
    probe: [Vec<u8>; 2],
    pub parser: Option<Parser>,
    /// Detected protocol (set once).
    pub proto: AppProto,
    /// True once nothing more will be parsed.
    pub done: bool,
}

impl AppSession {
    /// A session whose streams share the sensor's reassembly limits and memory.
    pub fn new(shared: &Arc<Reassembly>) -> Self {
        AppSession {
            streams: [Stream::new(shared.clone()), Stream::new(shared.clone())],
            detect: Default::default(),
            probe: Default::default(),
            parser: None,
            proto: AppProto::Unknown,
            done: false,
        }
    }

    /// The session of an FTP data connection its control channel announced: no protocol
    /// detection, the data goes to [`ftp::FtpDataParser`].
    pub fn start_ftp_data(&mut self, info: ftp::SharedInfo) {
        self.proto = AppProto::FtpData;
        self.parser = Some(Parser::FtpData(Box::new(ftp::FtpDataParser::new(info))));
    }

    /// The data connections an FTP control channel announced since the last call.
    pub fn take_ftp_expectations(&mut self) -> Vec<ftp::Expectation> {
        match self.parser.as_mut() {
            Some(Parser::Ftp(p)) => p.take_expectations(),
            _ => Vec::new(),
        }
    }

    /// Feeds one TCP segment of direction `dir` (and the ACK it carries for the other
    /// direction). Detected protocol changes are reported through `self.proto`.
    ///
    /// Causality: a segment whose ACK covers bytes of the other direction not yet delivered
    /// (they were reordered in the capture, or lost) is held until the other direction has
    /// delivered them or they are declared lost, so a response is never parsed before the
    /// request it answers.
    #[allow(clippy::too_many_arguments)]
    pub fn on_tcp_segment(
        &mut self,
        dir: Direction,
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
        out: &mut Vec<AppRecord>,
    ) {
        let d = dir.index();
        let o = dir.other();
        if let Some(a) = ack {
            let Self { streams, detect, probe, parser, proto, done } = self;
            streams[o.index()].on_ack(a, &mut |c| {
                deliver(o, c, detect, probe, parser, proto, done, out);
            });
            if !payload.is_empty()
                && let Some(n) = streams[o.index()].next_seq()
                && (a.wrapping_sub(n) as i32) > 0
            {
                streams[d].set_wait(a);
            }
        }
        {
            let Self { streams, detect, probe, parser, proto, done } = self;
            streams[d].on_segment(seq, syn, fin, payload, &mut |c| {
                deliver(dir, c, detect, probe, parser, proto, done, out);
            });
        }
        self.resolve_waits(out);
        let Self { streams, parser, .. } = self;
        if rst || streams[d].eof_delivered() {
            if let Some(p) = parser.as_mut() {
                p.as_dyn().on_eof(dir, out);
            }
            streams[d].mark_eof_reported();
        }
        if let Some(p) = parser.as_ref()
            && p.done()
        {
            self.done = true;
        }
    }

    fn release(&mut self, dir: Direction, give_up_other_to: Option<u32>, out: &mut Vec<AppRecord>) {
        let Self { streams, detect, probe, parser, proto, done } = self;
        if let Some(t) = give_up_other_to {
            let o = dir.other();
            streams[o.index()].give_up_to(t, &mut |c| deliver(o, c, detect, probe, parser, proto, done, out));
        }
        streams[dir.index()].release(&mut |c| deliver(dir, c, detect, probe, parser, proto, done, out));
    }

    /// Releases held directions whose condition is met (or whose hold grew too large).
    fn resolve_waits(&mut self, out: &mut Vec<AppRecord>) {
        for _ in 0..4 {
            let mut progressed = false;
            for dir in [Direction::ToServer, Direction::ToClient] {
                let Some(t) = self.streams[dir.index()].waiting_for() else {
                    continue;
                };
                let other_next = self.streams[dir.other().index()].next_seq();
                let satisfied = other_next.is_none_or(|n| (n.wrapping_sub(t) as i32) >= 0);
                if satisfied {
                    self.release(dir, None, out);
                    progressed = true;
                } else if self.streams[dir.index()].queued_bytes() > self.streams[dir.index()].max_ooo_bytes() {
                    self.release(dir, Some(t), out);
                    progressed = true;
                }
            }
            let both = self.streams[0].waiting_for().is_some() && self.streams[1].waiting_for().is_some();
            if both && !progressed {
                // Each side waits for the other: the client's missing bytes go first.
                let t = self.streams[0].waiting_for().unwrap_or(0);
                self.release(Direction::ToServer, Some(t), out);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    /// Flow end: flush streams (queued data after a gap) and the parser.
    pub fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            if let Some(t) = self.streams[dir.index()].waiting_for() {
                self.release(dir, Some(t), out);
            }
        }
        for dir in [Direction::ToServer, Direction::ToClient] {
            let Self { streams, detect, probe, parser, proto, done } = self;
            streams[dir.index()].flush(&mut |c| deliver(dir, c, detect, probe, parser, proto, done, out));
        }
        if let Some(p) = self.parser.as_mut() {
            p.as_dyn().on_close(out);
        }
        self.done = true;
    }

    /// Detection gave up in both directions, or finished for a protocol without parser.
    pub fn detection_over(&self) -> bool {
        self.proto != AppProto::Unknown
            || (self.detect[0] == DetectState::Failed && self.detect[1] == DetectState::Failed)
    }
}

/// Lower-case hexadecimal of `bytes` (EVE writes hashes, GUIDs and binary values so).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the lower-case hexadecimal of `bytes` to `s` (a table lookup per nibble: this runs
/// for every binary value logged).
pub(crate) fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

#[allow(clippy::too_many_arguments)]
fn deliver(
    dir: Direction,
    chunk: StreamChunk<'_>,
    detect: &mut [DetectState; 2],
    probe: &mut [Vec<u8>; 2],
    parser: &mut Option<Parser>,
    proto: &mut AppProto,
    done: &mut bool,
    out: &mut Vec<AppRecord>,
) {
    if *done {
        return;
    }
    let d = dir.index();
    if *proto == AppProto::Unknown {
        let StreamChunk::Data(data) = chunk else {
            // A gap before anything was detected: give up on this direction.
            detect[d] = DetectState::Failed;
            probe[d].clear();
            if detect[0] == DetectState::Failed && detect[1] == DetectState::Failed {
                *proto = AppProto::Failed;
                *done = true;
            }
            return;
        };
        if detect[d] == DetectState::Failed {
            return;
        }
        let buffered = !probe[d].is_empty();
        let mut appended = 0;
        if buffered {
            appended = data.len().min(PROBE_MAX.saturating_sub(probe[d].len()));
            probe[d].extend_from_slice(&data[..appended]);
        }
        let view: &[u8] = if buffered { &probe[d] } else { data };
        match detect::probe_tcp(dir, view) {
            detect::Probe::Match(p) => {
                *proto = p;
                *parser = Parser::for_tcp(p);
                let pending = std::mem::take(&mut probe[d]);
                match parser.as_mut() {
                    Some(ps) if buffered => {
                        ps.as_dyn().on_data(dir, &pending, out);
                        if appended < data.len() {
                            ps.as_dyn().on_data(dir, &data[appended..], out);
                        }
                    }
                    Some(ps) => ps.as_dyn().on_data(dir, data, out),
                    None => *done = true,
                }
            }
            detect::Probe::NoMatch => {
                detect[d] = DetectState::Failed;
                probe[d].clear();
                if detect[0] == DetectState::Failed && detect[1] == DetectState::Failed {
                    *proto = AppProto::Failed;
                    *done = true;
                }
            }
            detect::Probe::NeedMore => {
                if !buffered {
                    probe[d].extend_from_slice(&data[..data.len().min(PROBE_MAX)]);
                }
                if probe[d].len() >= PROBE_MAX {
                    detect[d] = DetectState::Failed;
                    probe[d].clear();
                }
            }
        }
        return;
    }
    if let Some(p) = parser.as_mut() {
        match chunk {
            StreamChunk::Data(data) => p.as_dyn().on_data(dir, data, out),
            StreamChunk::Gap(len) => p.as_dyn().on_gap(dir, len, out),
        }
    }
    upgrade_to_h2c(parser, proto);
    upgrade_to_websocket(parser, proto, out);
    if let Some(p) = parser.as_ref()
        && p.done()
    {
        *done = true;
    }
}

/// Updates a flow's protocols as `app-layer-protocol` sees them after a packet of direction
/// `dir` (`data`: it carried payload, which the parsers and detection read right away): the
/// direction's protocol is the flow's once the flow has one and the direction sent data; the
/// original protocol the first one detected; the final one the flow's now. `detection_done`
/// says whether this packet changed any of them.
pub fn track_alproto(st: &mut AlprotoState, proto: AppProto, dir: Direction, data: bool) {
    use crate::detect::compile::Alproto;
    let now = match proto {
        AppProto::Unknown => Alproto::Unknown,
        AppProto::Failed => Alproto::Failed,
        p => p.name().and_then(crate::detect::AppProto::from_name).map_or(Alproto::Unknown, Alproto::Known),
    };
    let before = *st;
    let side = if dir == Direction::ToServer { &mut st.to_server } else { &mut st.to_client };
    if data && *side == Alproto::Unknown {
        *side = now;
    }
    if st.original == Alproto::Unknown && matches!(now, Alproto::Known(_)) {
        st.original = now;
    }
    st.final_ = now;
    st.detection_done = false;
    st.detection_done = *st != AlprotoState { detection_done: false, ..before };
}

impl AlprotoState {
    /// Whether direction `dir` has its protocol (or failed).
    pub fn side_known(&self, dir: Direction) -> bool {
        let side = if dir == Direction::ToServer { self.to_server } else { self.to_client };
        side != crate::detect::compile::Alproto::Unknown
    }
}

/// An HTTP/1.1 connection whose `Upgrade: h2c` request was accepted continues in HTTP/2.
fn upgrade_to_h2c(parser: &mut Option<Parser>, proto: &mut AppProto) {
    let Some(Parser::Http(h)) = parser.as_ref() else { return };
    let Some(id) = h.h2c_upgrade() else { return };
    let Some(Parser::Http(h)) = parser.take() else { return };
    let request = h.tx_data(id).cloned();
    *parser = Some(Parser::Http2(Box::new(http2::Http2Parser::upgrade(h, request.as_ref()))));
    *proto = AppProto::Http2;
}

/// An HTTP/1.1 connection whose request was answered `101` with `Upgrade: websocket` continues
/// in WebSocket frames; the bytes that followed the response (or the request) in their
/// segments are its first.
fn upgrade_to_websocket(parser: &mut Option<Parser>, proto: &mut AppProto, out: &mut Vec<AppRecord>) {
    let Some(Parser::Http(h)) = parser.as_mut() else { return };
    let Some(rest) = h.take_websocket_upgrade() else { return };
    let Some(Parser::Http(h)) = parser.take() else { return };
    let mut ws = Box::new(websocket::WebsocketParser::upgrade(h));
    for dir in [Direction::ToServer, Direction::ToClient] {
        if !rest[dir.index()].is_empty() {
            ws.on_data(dir, &rest[dir.index()], out);
        }
    }
    *parser = Some(Parser::Websocket(ws));
    *proto = AppProto::Websocket;
}

#[cfg(test)]
mod alproto_tests {
    use super::*;
    use crate::detect::compile::{Alproto, AlprotoCond, Direction as D};

    #[test]
    fn each_direction_gets_the_protocol_when_it_sends_data() {
        let mut st = AlprotoState::default();
        // handshake, then the client's banner detects SSH
        track_alproto(&mut st, AppProto::Unknown, Direction::ToServer, false);
        assert!(!st.detection_done);
        track_alproto(&mut st, AppProto::Ssh, Direction::ToServer, true);
        assert!(st.detection_done);
        let ssh = Alproto::Known(crate::detect::AppProto::Ssh);
        assert_eq!((st.to_server, st.to_client, st.original, st.final_), (ssh, Alproto::Unknown, ssh, ssh));
        // the server's empty ACK: its side still unknown
        track_alproto(&mut st, AppProto::Ssh, Direction::ToClient, false);
        assert!(!st.detection_done);
        let unknown_tc = AlprotoCond::parse("unknown,to_client").unwrap();
        let ssh_tc = AlprotoCond::parse("ssh,to_client").unwrap();
        assert!(unknown_tc.matches(&st, D::ToClient) && !ssh_tc.matches(&st, D::ToClient));
        track_alproto(&mut st, AppProto::Ssh, Direction::ToClient, true);
        assert!(st.detection_done && ssh_tc.matches(&st, D::ToClient) && !unknown_tc.matches(&st, D::ToClient));
        assert!(AlprotoCond::parse("!tls").unwrap().matches(&st, D::ToServer));
        assert!(!AlprotoCond::parse("!ssh").unwrap().matches(&st, D::ToServer));
    }

    #[test]
    fn a_detection_only_rule_matches_on_the_detecting_packet_only() {
        use crate::detect::{Detector, Inspection, Transport, Vars};
        let rules = "alert tcp any any -> any any (app-layer-protocol:ssh; sid:1;)\n\
                     alert tcp any any -> any any (flow:to_server; app-layer-protocol:ssh; sid:2;)\n";
        let (det, errors) = Detector::from_rules(rules, "t.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let ip = "10.0.0.1".parse().unwrap();
        let mut st = AlprotoState::default();
        let mut sids = Vec::new();
        for (proto, data) in [(AppProto::Unknown, false), (AppProto::Ssh, true), (AppProto::Ssh, true)] {
            track_alproto(&mut st, proto, Direction::ToServer, data);
            let mut insp = Inspection::new(Transport::Tcp, ip, 1, ip, 22, D::ToServer, b"x");
            insp.established = true;
            insp.alproto = Some(st);
            let mut hit: Vec<u32> = det.inspect(&insp).iter().map(|h| h.sid).collect();
            hit.sort_unstable();
            sids.push(hit);
        }
        assert_eq!(sids, vec![vec![], vec![1, 2], vec![2]]);
    }

    #[test]
    fn original_and_final_follow_an_upgrade() {
        let mut st = AlprotoState::default();
        track_alproto(&mut st, AppProto::Http, Direction::ToServer, true);
        track_alproto(&mut st, AppProto::Http2, Direction::ToClient, true);
        assert!(st.detection_done);
        assert!(AlprotoCond::parse("http1,original").unwrap().matches(&st, D::ToClient));
        assert!(AlprotoCond::parse("http2,final").unwrap().matches(&st, D::ToClient));
        assert!(AlprotoCond::parse("http,either").unwrap().matches(&st, D::ToClient));
        assert!(!AlprotoCond::parse("http1,final").unwrap().matches(&st, D::ToClient));
        // nothing known: only `unknown` matches, a negation does not
        let none = AlprotoState::default();
        assert!(!AlprotoCond::parse("!tls").unwrap().matches(&none, D::ToServer));
        assert!(AlprotoCond::parse("unknown").unwrap().matches(&none, D::ToServer));
        assert!(AlprotoCond::parse("!unknown").is_err());
        assert!(AlprotoCond::parse("nope").is_err());
        assert!(AlprotoCond::parse("tls,sideways").is_err());
    }
}
