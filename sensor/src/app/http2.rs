//! HTTP/2 (RFC 9113) in clear text: prior-knowledge connections (the client preface) and
//! connections upgraded from HTTP/1.1 (`Upgrade: h2c`, see [`Http2Parser::upgrade`]).
//!
//! Frames are parsed per direction; header blocks (HEADERS + CONTINUATION, PUSH_PROMISE) are
//! decoded with HPACK (RFC 7541, [`Hpack`]: static and dynamic tables, Huffman strings). As in
//! Suricata, every stream is one transaction, and every frame of stream 0 (SETTINGS, PING,
//! GOAWAY, WINDOW_UPDATE of the connection) is a transaction of its own (a "global" one). A
//! stream's transaction is handed over as an [`AppRecord::HttpRequest`] when its request side
//! ends and as an [`AppRecord::Http`] when both sides ended (or were reset); a global
//! transaction as an [`AppRecord::HttpRequest`] (inspected, not logged). Their headers,
//! bodies and frame types stay readable through [`Http2Parser::tx`] for inspection.
//!
//! DNS over HTTPS (RFC 8484) in such a connection: the DNS message of a `GET ...?dns=`
//! (base64url) or of a body whose content type is `application/dns-message` is kept with its
//! transaction ([`H2Tx::dns_request`], [`H2Tx::dns_response`]).

use std::collections::VecDeque;

use soc_model::Http;

use super::http::{HttpParser, TxData};
use super::{AppParser, AppProto, AppRecord, Direction};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE's maximum is 2^24-1; larger
/// frames than this are skipped, not buffered).
const MAX_FRAME: usize = 1 << 20;
/// Body bytes kept per side of a transaction (as for HTTP/1).
const BODY_LIMIT: usize = super::http::BODY_LIMIT;
/// Header-block bytes kept while waiting for CONTINUATION frames.
const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// Transactions open at once; older ones are closed and handed over.
const MAX_OPEN_TX: usize = 128;
/// Frame bytes kept per side of a transaction for the `frame:http2.*` buffers.
const RAW_FRAMES_LIMIT: usize = 16 * 1024;
/// Finished transactions kept readable for inspection from earlier deliveries. All those
/// finished by the current delivery stay until the next one starts, however many there are,
/// so that a segment packed with frames cannot push a transaction out before it is inspected.
const KEPT_TX: usize = 32;
/// Decoded header bytes (name + value + 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts
/// them) accepted from one header block: an indexed field of one byte can copy a whole table
/// entry, so without a limit a small block decodes to gigabytes.
const MAX_DECODED_BLOCK: usize = 64 * 1024;
/// Header bytes kept per side of a transaction (counted as above) across its header blocks.
const MAX_TX_HEADER_BYTES: usize = 64 * 1024;
/// Frame types, window increments, priorities, error codes, size updates and settings kept per
/// side of a transaction for the `http2.*` keywords.
const MAX_FRAME_NOTES: usize = 256;

pub mod frame {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;

    /// The frame type of a name (`PING`, `window_update`, ...), as `http2.frametype` takes it.
    pub fn from_name(s: &str) -> Option<u8> {
        Some(match s.to_ascii_uppercase().as_str() {
            "DATA" => DATA,
            "HEADERS" => HEADERS,
            "PRIORITY" => PRIORITY,
            "RST_STREAM" => RST_STREAM,
            "SETTINGS" => SETTINGS,
            "PUSH_PROMISE" => PUSH_PROMISE,
            "PING" => PING,
            "GOAWAY" => GOAWAY,
            "WINDOW_UPDATE" => WINDOW_UPDATE,
            "CONTINUATION" => CONTINUATION,
            _ => return None,
        })
    }
}

/// The error code of a name (`INTERNAL_ERROR`), as `http2.errorcode` takes it (RFC 9113
/// section 7).
pub fn error_code_from_name(s: &str) -> Option<u32> {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)).map(|i| i as u32)
}

/// The identifier of a setting name (`SETTINGS_ENABLE_PUSH`), as `http2.settings` takes it.
pub fn settings_id_from_name(s: &str) -> Option<u16> {
    Some(match s.to_ascii_uppercase().as_str() {
        "SETTINGS_HEADER_TABLE_SIZE" => 1,
        "SETTINGS_ENABLE_PUSH" => 2,
        "SETTINGS_MAX_CONCURRENT_STREAMS" => 3,
        "SETTINGS_INITIAL_WINDOW_SIZE" => 4,
        "SETTINGS_MAX_FRAME_SIZE" => 5,
        "SETTINGS_MAX_HEADER_LIST_SIZE" => 6,
        "SETTINGS_ENABLE_CONNECT_PROTOCOL" => 8,
        "SETTINGS_NO_RFC7540_PRIORITIES" => 9,
        _ => return None,
    })
}

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// One HTTP/2 transaction: a stream, or one frame of stream 0.
#[derive(Clone, Debug, Default)]
pub struct H2Tx {
    pub tx_id: u64,
    pub stream_id: u32,
    /// A frame of stream 0 (connection settings, ping, goaway...).
    pub global: bool,
    /// Decoded header fields of each side (pseudo-headers included), in order.
    pub request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    /// Frame types seen on each side (`http2.frametype`).
    pub frames: [Vec<u8>; 2],
    /// The frames of each side as sent, header included (`frame:http2.pdu`), while they fit
    /// in [`RAW_FRAMES_LIMIT`].
    pub raw_frames: [Vec<Vec<u8>>; 2],
    raw_bytes: [usize; 2],
    /// RST_STREAM / GOAWAY error codes of each side (`http2.errorcode`).
    pub error_codes: [Vec<u32>; 2],
    /// WINDOW_UPDATE increments of each side (`http2.window`).
    pub windows: [Vec<u32>; 2],
    /// Priority weights (PRIORITY frames, HEADERS with priority) of each side (`http2.priority`).
    pub priorities: [Vec<u8>; 2],
    /// HPACK dynamic table size updates of each side's header blocks (`http2.size_update`).
    pub size_updates: [Vec<u64>; 2],
    /// Settings of each side's SETTINGS frames, as `id << 32 | value` (`http2.settings`).
    pub settings: [Vec<u64>; 2],
    /// The request came from an HTTP/1.1 request upgraded to h2c.
    pub upgraded: bool,
    /// DNS over HTTPS messages.
    pub dns_request: Option<Vec<u8>>,
    pub dns_response: Option<Vec<u8>>,
    ended: [bool; 2],
    request_handed: bool,
}

impl H2Tx {
    /// The first value of a header of one side (names compared exactly: HTTP/2 names are
    /// lowercase, the fields of an upgraded HTTP/1.1 request keep their case, as in Suricata).
    pub fn header(&self, dir: Direction, name: &str) -> Option<&[u8]> {
        let hs = if dir == Direction::ToServer { &self.request_headers } else { &self.response_headers };
        hs.iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| v.as_slice())
    }

    fn note_frame(&mut self, d: usize, ftype: u8, raw: &[u8]) {
        if self.frames[d].len() < MAX_FRAME_NOTES {
            self.frames[d].push(ftype);
        }
        if self.raw_bytes[d] + raw.len() <= RAW_FRAMES_LIMIT {
            self.raw_bytes[d] += raw.len();
            self.raw_frames[d].push(raw.to_vec());
        }
    }

    /// The values of a frame that keywords compare: error codes, window increments, weights.
    fn note_values(&mut self, d: usize, ftype: u8, flags: u8, payload: &[u8]) {
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let room = |len: usize| len < MAX_FRAME_NOTES;
        match ftype {
            frame::GOAWAY if room(self.error_codes[d].len()) => self.error_codes[d].extend(payload.get(4..8).map(be32)),
            frame::SETTINGS if room(self.settings[d].len()) => self.settings[d].extend(
                payload
                    .chunks_exact(6)
                    .take(MAX_FRAME_NOTES - self.settings[d].len())
                    .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])) << 32 | u64::from(be32(&c[2..]))),
            ),
            frame::WINDOW_UPDATE if room(self.windows[d].len()) => {
                self.windows[d].extend(payload.get(..4).map(|b| be32(b) & 0x7fff_ffff))
            }
            frame::PRIORITY if room(self.priorities[d].len()) => self.priorities[d].extend(payload.get(4)),
            frame::HEADERS if flags & PRIORITY_FLAG != 0 && room(self.priorities[d].len()) => {
                let off = usize::from(flags & PADDED != 0);
                self.priorities[d].extend(payload.get(off + 4));
            }
            _ => {}
        }
    }

    /// The request side was handed over for inspection ([`AppRecord::HttpRequest`]).
    pub fn request_handed(&self) -> bool {
        self.request_handed
    }

    fn is_doh(&self) -> bool {
        self.dns_request.is_some() || self.dns_response.is_some()
    }

    fn record(&self) -> Http {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut h = Http { protocol: Some("HTTP/2".into()), ..Http::default() };
        if self.global {
            return h;
        }
        h.http_method = self.header(Direction::ToServer, ":method").map(text);
        h.url = self.header(Direction::ToServer, ":path").map(text);
        let authority = self.header(Direction::ToServer, ":authority").or(self.header(Direction::ToServer, "host"));
        h.hostname = authority.map(|a| text(host_of(a)));
        h.http_user_agent = self.header(Direction::ToServer, "user-agent").map(text);
        h.http_refer = self.header(Direction::ToServer, "referer").map(text);
        h.status = self.header(Direction::ToClient, ":status").and_then(|s| std::str::from_utf8(s).ok()?.parse().ok());
        h.http_content_type = self
            .header(Direction::ToClient, "content-type")
            .map(|c| text(c.split(|&b| b == b';').next().unwrap_or_default()));
        h.redirect = self.header(Direction::ToClient, "location").map(text);
        h.length = Some(self.response_body.len() as u64);
        h
    }
}

/// The host part of an `:authority` (userinfo and port removed).
pub fn host_of(authority: &[u8]) -> &[u8] {
    let a = match authority.iter().rposition(|&b| b == b'@') {
        Some(p) => &authority[p + 1..],
        None => authority,
    };
    if a.first() == Some(&b'[') {
        return match a.iter().position(|&b| b == b']') {
            Some(p) => &a[..=p],
            None => a,
        };
    }
    match a.iter().position(|&b| b == b':') {
        Some(p) => &a[..p],
        None => a,
    }
}

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    /// Payload bytes of an oversized frame still to skip.
    skip: usize,
    /// A header block waiting for CONTINUATION: (stream, END_STREAM of its HEADERS, bytes).
    pending: Option<(u32, bool, Vec<u8>)>,
    hpack: Hpack,
}

/// The HTTP/2 parser of one connection.
#[derive(Default)]
pub struct Http2Parser {
    sides: [Side; 2],
    preface_checked: bool,
    txs: Vec<H2Tx>,
    done: VecDeque<H2Tx>,
    next_tx_id: u64,
    /// The HTTP/1.1 parser the connection was upgraded from (its last transactions' data).
    h1: Option<Box<HttpParser>>,
    /// A DNS-over-HTTPS exchange was seen (Suricata's `doh2`).
    doh: bool,
    /// Unrecoverable framing error: parsing stopped.
    failed: bool,
}

impl Http2Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c` answered by 101): stream 1 is the
    /// upgraded request, whose response comes in HTTP/2.
    pub fn upgrade(h1: Box<HttpParser>, request: Option<&TxData>) -> Self {
        let mut p = Http2Parser { next_tx_id: h1.next_tx_id(), ..Self::default() };
        if let Some(r) = request {
            let mut tx = p.new_tx(1, false);
            tx.upgraded = true;
            let mut parts = r.request_line.split(|&b| b == b' ').filter(|s| !s.is_empty());
            if let Some(m) = parts.next() {
                tx.request_headers.push((b":method".to_vec(), m.to_vec()));
            }
            if let Some(u) = parts.next() {
                tx.request_headers.push((b":path".to_vec(), u.to_vec()));
            }
            if let Some((_, host)) = r.request_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(b"host")) {
                tx.request_headers.push((b":authority".to_vec(), host.clone()));
            }
            // the HTTP/1.1 fields as they were sent (their names keep their case)
            tx.request_headers.extend(r.request_headers.iter().cloned());
            tx.request_body = r.request_body.clone();
            tx.ended[0] = true;
            p.txs.push(tx);
        }
        p.h1 = Some(h1);
        p
    }

    /// Whether a DNS-over-HTTPS exchange was seen on the connection.
    pub fn is_doh(&self) -> bool {
        self.doh
    }

    /// A transaction, open or among the last finished.
    pub fn tx(&self, tx_id: u64) -> Option<&H2Tx> {
        self.done.iter().rev().find(|t| t.tx_id == tx_id).or_else(|| self.txs.iter().find(|t| t.tx_id == tx_id))
    }

    /// Data of a transaction of the HTTP/1.1 connection this one was upgraded from.
    pub fn h1_tx_data(&self, tx_id: u64) -> Option<&TxData> {
        self.h1.as_ref()?.tx_data(tx_id)
    }

    fn new_tx(&mut self, stream_id: u32, global: bool) -> H2Tx {
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        H2Tx { tx_id: id, stream_id, global, ..H2Tx::default() }
    }

    fn stream_tx(&mut self, stream_id: u32, out: &mut Vec<AppRecord>) -> usize {
        if let Some(i) = self.txs.iter().position(|t| t.stream_id == stream_id) {
            return i;
        }
        if self.txs.len() >= MAX_OPEN_TX {
            let old = self.txs.remove(0);
            self.finish(old, out);
        }
        let tx = self.new_tx(stream_id, false);
        self.txs.push(tx);
        self.txs.len() - 1
    }

    fn finish(&mut self, tx: H2Tx, out: &mut Vec<AppRecord>) {
        let http = Box::new(tx.record());
        if tx.global {
            out.push(AppRecord::HttpRequest { tx_id: tx.tx_id, http });
        } else {
            out.push(AppRecord::Http { tx_id: tx.tx_id, http });
        }
        self.done.push_back(tx);
    }

    /// Hands over what became ready in transaction `i`.
    fn progress(&mut self, i: usize, out: &mut Vec<AppRecord>) {
        let Some(tx) = self.txs.get_mut(i) else { return };
        if tx.ended[0] && !tx.request_handed {
            tx.request_handed = true;
            extract_doh_request(tx);
            self.doh |= tx.is_doh();
            out.push(AppRecord::HttpRequest { tx_id: tx.tx_id, http: Box::new(tx.record()) });
        }
        if tx.ended[0] && tx.ended[1] {
            let mut tx = self.txs.remove(i);
            extract_doh_response(&mut tx);
            self.doh |= tx.is_doh();
            self.finish(tx, out);
        }
    }

    /// One complete frame (`raw`: its header and payload).
    fn on_frame(&mut self, dir: Direction, raw: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        let (ftype, flags) = (raw[3], raw[4]);
        let stream = u32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]) & 0x7fff_ffff;
        let payload = &raw[9..];
        if stream == 0 {
            let mut tx = self.new_tx(0, true);
            tx.note_frame(d, ftype, raw);
            tx.note_values(d, ftype, flags, payload);
            tx.ended = [true, true];
            if ftype == frame::SETTINGS {
                apply_settings(&mut self.sides[d.min(1) ^ 1].hpack, payload);
            }
            self.finish(tx, out);
            return;
        }
        match ftype {
            frame::HEADERS | frame::PUSH_PROMISE => {
                let Some(mut block) = strip_padding(flags, payload) else { return };
                if ftype == frame::HEADERS && flags & PRIORITY_FLAG != 0 {
                    block = block.get(5..).unwrap_or_default();
                }
                let target = if ftype == frame::PUSH_PROMISE {
                    let Some(p) = block.get(..4) else { return };
                    block = &block[4..];
                    u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff
                } else {
                    stream
                };
                let i = self.stream_tx(stream, out);
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.note_frame(d, ftype, raw);
                    tx.note_values(d, ftype, flags, payload);
                }
                let end_stream = ftype == frame::HEADERS && flags & END_STREAM != 0;
                if flags & END_HEADERS == 0 {
                    self.sides[d].pending = Some((target, end_stream, block.to_vec()));
                    return;
                }
                self.header_block(dir, stream, ftype == frame::PUSH_PROMISE, end_stream, block, out);
            }
            frame::CONTINUATION => {
                let i = self.stream_tx(stream, out);
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.note_frame(d, ftype, raw);
                }
                let Some((target, end_stream, mut block)) = self.sides[d].pending.take() else { return };
                if block.len() + payload.len() > MAX_HEADER_BLOCK {
                    return;
                }
                block.extend_from_slice(payload);
                if flags & END_HEADERS == 0 {
                    self.sides[d].pending = Some((target, end_stream, block));
                    return;
                }
                let push = target != stream;
                self.header_block(dir, stream, push, end_stream, &block, out);
            }
            frame::DATA => {
                let i = self.stream_tx(stream, out);
                let data = strip_padding(flags, payload).unwrap_or_default();
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.note_frame(d, ftype, raw);
                    let body = if dir == Direction::ToServer { &mut tx.request_body } else { &mut tx.response_body };
                    let room = BODY_LIMIT.saturating_sub(body.len());
                    body.extend_from_slice(&data[..data.len().min(room)]);
                    if flags & END_STREAM != 0 {
                        tx.ended[d] = true;
                    }
                }
                self.progress(i, out);
            }
            frame::RST_STREAM => {
                let i = self.stream_tx(stream, out);
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.note_frame(d, ftype, raw);
                    if let Some(c) = payload.get(..4) {
                        tx.error_codes[d].push(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    }
                    tx.ended = [true, true];
                }
                self.progress(i, out);
            }
            _ => {
                // PRIORITY, WINDOW_UPDATE, unknown types: recorded on the stream
                let i = self.stream_tx(stream, out);
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.note_frame(d, ftype, raw);
                    tx.note_values(d, ftype, flags, payload);
                }
            }
        }
    }

    fn header_block(
        &mut self,
        dir: Direction,
        stream: u32,
        push: bool,
        end_stream: bool,
        block: &[u8],
        out: &mut Vec<AppRecord>,
    ) {
        let d = dir.index();
        let headers = match self.sides[d].hpack.decode(block) {
            Ok(h) => h,
            Err(_) => {
                out.push(AppRecord::Anomaly { proto: AppProto::Http2, event: "HEADER_DECODE_FAILED", dir });
                return;
            }
        };
        if push {
            // a promised request: decoded to keep the table in sync, not a transaction here
            return;
        }
        let updates = std::mem::take(&mut self.sides[d].hpack.size_updates);
        let i = self.stream_tx(stream, out);
        if let Some(tx) = self.txs.get_mut(i) {
            if tx.size_updates[d].len() < MAX_FRAME_NOTES {
                tx.size_updates[d].extend(updates);
            }
            let hs = if dir == Direction::ToServer { &mut tx.request_headers } else { &mut tx.response_headers };
            let mut kept: usize = hs.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
            for h in headers {
                kept += h.0.len() + h.1.len() + 32;
                if kept > MAX_TX_HEADER_BYTES {
                    break;
                }
                hs.push(h);
            }
            if end_stream {
                tx.ended[d] = true;
            }
        }
        self.progress(i, out);
    }

    fn parse(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        let d = dir.index();
        let mut pos = 0;
        let buf = std::mem::take(&mut self.sides[d].buf);
        loop {
            let rest = &buf[pos..];
            if rest.len() < 9 {
                break;
            }
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            if len > MAX_FRAME {
                self.sides[d].skip = len;
                pos += 9;
                let n = self.sides[d].skip.min(buf.len() - pos);
                self.sides[d].skip -= n;
                pos += n;
                continue;
            }
            if rest.len() < 9 + len {
                break;
            }
            self.on_frame(dir, &rest[..9 + len], out);
            pos += 9 + len;
        }
        let mut buf = buf;
        buf.drain(..pos);
        self.sides[d].buf = buf;
    }
}

fn strip_padding(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    if flags & PADDED == 0 {
        return Some(payload);
    }
    let pad = *payload.first()? as usize;
    payload.get(1..payload.len().checked_sub(pad)?)
}

/// SETTINGS_HEADER_TABLE_SIZE bounds the table the peer's encoder may use.
fn apply_settings(decoder: &mut Hpack, payload: &[u8]) {
    for s in payload.chunks_exact(6) {
        if u16::from_be_bytes([s[0], s[1]]) == 1 {
            decoder.max_allowed = u32::from_be_bytes([s[2], s[3], s[4], s[5]]).min(1 << 20) as usize;
        }
    }
}

fn is_dns_message(ct: Option<&[u8]>) -> bool {
    ct.is_some_and(|c| c.trim_ascii().to_ascii_lowercase().starts_with(b"application/dns-message"))
}

/// The `dns=` parameter of a DoH GET (base64url, no padding), decoded as the `from_base64`
/// transform decodes; `None` when a character is outside the alphabet.
fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let std: Vec<u8> = s
        .iter()
        .map(|&c| match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        })
        .collect();
    let out = crate::detect::keywords::base64_decode(&std, crate::detect::keywords::Base64Mode::Strict);
    (!out.is_empty() || s.is_empty() || s[0] == b'=').then_some(out)
}

fn extract_doh_request(tx: &mut H2Tx) {
    if tx.dns_request.is_some() {
        return;
    }
    if is_dns_message(tx.header(Direction::ToServer, "content-type")) && !tx.request_body.is_empty() {
        tx.dns_request = Some(tx.request_body.clone());
        return;
    }
    let Some(path) = tx.header(Direction::ToServer, ":path") else { return };
    let Some(q) = path.iter().position(|&b| b == b'?').map(|p| &path[p + 1..]) else { return };
    for param in q.split(|&b| b == b'&') {
        if let Some(v) = param.strip_prefix(b"dns=")
            && let Some(m) = base64url_decode(v)
        {
            tx.dns_request = Some(m);
            return;
        }
    }
}

fn extract_doh_response(tx: &mut H2Tx) {
    if is_dns_message(tx.header(Direction::ToClient, "content-type")) && !tx.response_body.is_empty() {
        tx.dns_response = Some(tx.response_body.clone());
    }
}

impl AppParser for Http2Parser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        // transactions finished by earlier deliveries were inspected by now: keep a few
        while self.done.len() > KEPT_TX {
            self.done.pop_front();
        }
        if self.failed {
            return;
        }
        let d = dir.index();
        let mut data = data;
        if self.sides[d].skip > 0 {
            let n = self.sides[d].skip.min(data.len());
            self.sides[d].skip -= n;
            data = &data[n..];
        }
        if self.sides[d].buf.len() + data.len() > MAX_FRAME + 9 + PREFACE.len() {
            self.failed = true;
            out.push(AppRecord::Anomaly { proto: AppProto::Http2, event: "FRAME_TOO_LARGE", dir });
            return;
        }
        self.sides[d].buf.extend_from_slice(data);
        if dir == Direction::ToServer && !self.preface_checked {
            let b = &self.sides[d].buf;
            let n = b.len().min(PREFACE.len());
            if b[..n] == PREFACE[..n] {
                if n < PREFACE.len() {
                    return;
                }
                self.sides[d].buf.drain(..PREFACE.len());
            }
            self.preface_checked = true;
        }
        self.parse(dir, out);
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _out: &mut Vec<AppRecord>) {
        // frame boundaries are lost with the bytes: this direction is not parsed any more
        let d = dir.index();
        self.sides[d].buf.clear();
        self.sides[d].pending = None;
        self.failed = true;
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        for tx in std::mem::take(&mut self.txs) {
            let mut tx = tx;
            if !tx.request_handed && !tx.request_headers.is_empty() {
                tx.ended[0] = true;
            }
            extract_doh_request(&mut tx);
            extract_doh_response(&mut tx);
            self.doh |= tx.is_doh();
            self.finish(tx, out);
        }
    }

    fn is_done(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------
// HPACK (RFC 7541)

/// Why a header block does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block truncated")]
    Truncated,
    #[error("integer overflow")]
    Overflow,
    #[error("table index {0} out of range")]
    BadIndex(usize),
    #[error("invalid Huffman code")]
    Huffman,
    #[error("table size update above the allowed size")]
    SizeUpdate,
    #[error("header block decodes to more than 64 KiB")]
    TooLarge,
}

const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols 0..=256 (EOS). The
/// code is canonical: the codes follow from the lengths.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
    28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12,
    10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6,
    5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22,
    22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20,
    22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28,
    27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28,
    27, 27, 27, 27, 27, 26, 30,
];

/// Canonical decoding tables: per code length, the first code, how many codes, and where
/// its symbols start in the sorted symbol list.
struct HuffTables {
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    symbols: [u16; 257],
}

fn huff_tables() -> &'static HuffTables {
    static T: std::sync::OnceLock<HuffTables> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = HuffTables { first: [0; 31], count: [0; 31], offset: [0; 31], symbols: [0; 257] };
        for &l in &HUFFMAN_LENGTHS {
            t.count[l as usize] += 1;
        }
        let mut code = 0u32;
        let mut off = 0u32;
        for len in 1..31 {
            code <<= 1;
            t.first[len] = code;
            t.offset[len] = off;
            code += t.count[len];
            off += t.count[len];
        }
        let mut fill = t.offset;
        for (sym, &l) in HUFFMAN_LENGTHS.iter().enumerate() {
            t.symbols[fill[l as usize] as usize] = sym as u16;
            fill[l as usize] += 1;
        }
        t
    })
}

/// Decodes a Huffman-coded string: padding must be at most 7 one-bits; EOS is an error.
pub fn huffman_decode(data: &[u8]) -> Result<Vec<u8>, HpackError> {
    let t = huff_tables();
    let mut out = Vec::with_capacity(data.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in data {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> i) & 1);
            len += 1;
            if len > 30 {
                return Err(HpackError::Huffman);
            }
            let idx = code.wrapping_sub(t.first[len]);
            if code >= t.first[len] && idx < t.count[len] {
                let sym = t.symbols[(t.offset[len] + idx) as usize];
                if sym == 256 {
                    return Err(HpackError::Huffman);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // the rest must be a prefix of EOS (all ones), shorter than a byte
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(out)
}

/// A decoded header field: name and value.
pub type HeaderField = (Vec<u8>, Vec<u8>);

/// One direction's HPACK decoder: the dynamic table.
#[derive(Debug)]
pub struct Hpack {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The largest table size the encoder may choose (SETTINGS_HEADER_TABLE_SIZE).
    max_allowed: usize,
    /// The size updates of the last decoded block.
    pub size_updates: Vec<u64>,
}

impl Default for Hpack {
    fn default() -> Self {
        Hpack { table: VecDeque::new(), size: 0, max_size: 4096, max_allowed: 4096, size_updates: Vec::new() }
    }
}

fn read_int(data: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let first = *data.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mask = (1u16 << prefix) as usize - 1;
    let mut v = first as usize & mask;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let b = *data.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        v = v.checked_add(((b & 0x7f) as usize) << shift).ok_or(HpackError::Overflow)?;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
}

fn read_string(data: &[u8], pos: &mut usize) -> Result<Vec<u8>, HpackError> {
    let huff = data.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(data, pos, 7)?;
    let end = pos.checked_add(len).ok_or(HpackError::Overflow)?;
    let s = data.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huff { huffman_decode(s) } else { Ok(s.to_vec()) }
}

impl Hpack {
    fn entry(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex(index));
        }
        if let Some((n, v)) = STATIC_TABLE.get(index - 1) {
            return Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        self.table.get(index - 1 - STATIC_TABLE.len()).cloned().ok_or(HpackError::BadIndex(index))
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let sz = name.len() + value.len() + 32;
        if sz > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.size += sz;
        self.table.push_front((name, value));
        self.evict();
    }

    /// Decodes one complete header block into its fields, updating the dynamic table.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<HeaderField>, HpackError> {
        let mut out: Vec<HeaderField> = Vec::new();
        let mut decoded = 0usize;
        let mut pos = 0;
        self.size_updates.clear();
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let i = read_int(block, &mut pos, 7)?;
                let field = self.entry(i)?;
                decoded += field.0.len() + field.1.len() + 32;
                if decoded > MAX_DECODED_BLOCK {
                    return Err(HpackError::TooLarge);
                }
                out.push(field);
            } else if b & 0xe0 == 0x20 {
                let size = read_int(block, &mut pos, 5)?;
                self.size_updates.push(size as u64);
                if size > self.max_allowed.max(4096) {
                    return Err(HpackError::SizeUpdate);
                }
                self.max_size = size;
                self.evict();
            } else {
                // literal: with incremental indexing (01), without (0000) or never indexed (0001)
                let (prefix, index) = if b & 0xc0 == 0x40 { (6, true) } else { (4, false) };
                let i = read_int(block, &mut pos, prefix)?;
                let name = if i == 0 { read_string(block, &mut pos)? } else { self.entry(i)?.0 };
                let value = read_string(block, &mut pos)?;
                if index {
                    self.insert(name.clone(), value.clone());
                }
                decoded += name.len() + value.len() + 32;
                if decoded > MAX_DECODED_BLOCK {
                    return Err(HpackError::TooLarge);
                }
                out.push((name, value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ftype: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[ftype, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_small_block_of_indexed_fields_cannot_decode_to_gigabytes() {
        let mut d = Hpack::default();
        // one literal of ~4,000 bytes added to the dynamic table (index 62)...
        let mut block = vec![0x40, 0x01, b'x', 0x7f];
        let mut n = 4000 - 127;
        while n >= 128 {
            block.push(0x80 | (n & 0x7f) as u8);
            n >>= 7;
        }
        block.push(n as u8);
        block.extend(std::iter::repeat_n(b'a', 4000));
        assert_eq!(d.decode(&block).map(|h| h.len()), Ok(1));
        // ...then referenced 16,000 times by one-byte indexed fields: 64 MB if decoded
        let bomb = vec![0xbe; 16_000];
        assert_eq!(d.decode(&bomb).map(|h| h.len()), Err(HpackError::TooLarge));
        // a block within the limit still decodes
        assert_eq!(d.decode(&[0xbe; 10]).map(|h| h.len()), Ok(10));
    }

    #[test]
    fn rfc7541_examples_decode_with_and_without_huffman() {
        // C.3.1 and C.4.1: the same request, literal and Huffman-coded
        let plain = b"\x82\x86\x84\x41\x0fwww.example.com";
        let mut d = Hpack::default();
        let h = d.decode(plain).unwrap_or_default();
        assert_eq!(h[3], (b":authority".to_vec(), b"www.example.com".to_vec()));
        let huff =
            [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        let mut d = Hpack::default();
        let h = d.decode(&huff).unwrap_or_default();
        assert_eq!(h.len(), 4);
        assert_eq!(h[0], (b":method".to_vec(), b"GET".to_vec()));
        assert_eq!(h[3].1, b"www.example.com");
        // the dynamic table entry is used by the next block (C.4.2: index 62)
        let next = [0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        let h = d.decode(&next).unwrap_or_default();
        assert_eq!(h[3].1, b"www.example.com");
        assert_eq!(h[4], (b"cache-control".to_vec(), b"no-cache".to_vec()));
    }

    #[test]
    fn malformed_header_blocks_are_errors_not_panics() {
        let mut d = Hpack::default();
        assert_eq!(d.decode(&[0xff, 0xff]), Err(HpackError::Truncated));
        assert!(d.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert_eq!(d.decode(&[0xc0]), Err(HpackError::BadIndex(64)));
        assert_eq!(d.decode(&[0x80]), Err(HpackError::BadIndex(0)));
        assert_eq!(d.decode(&[0x41, 0x85, 0xff]), Err(HpackError::Truncated));
        // a Huffman string padded with zeros, and one holding EOS
        assert_eq!(huffman_decode(&[0x00]), Err(HpackError::Huffman));
        assert_eq!(huffman_decode(&[0xff, 0xff, 0xff, 0xff]), Err(HpackError::Huffman));
        assert_eq!(d.decode(&[0x3f, 0xff, 0xff, 0xff, 0x0f]), Err(HpackError::SizeUpdate));
    }

    #[test]
    fn prior_knowledge_connection_gives_one_transaction_per_stream_and_per_stream0_frame() {
        let mut p = Http2Parser::new();
        let mut out = Vec::new();
        let mut ts = PREFACE.to_vec();
        ts.extend(frame(frame::SETTINGS, 0, 0, &[]));
        ts.extend(frame(frame::HEADERS, END_HEADERS | END_STREAM, 1, b"\x82\x86\x84\x41\x0fwww.example.com"));
        // split in the middle of the preface and of a frame
        p.on_data(Direction::ToServer, &ts[..10], &mut out);
        p.on_data(Direction::ToServer, &ts[10..40], &mut out);
        p.on_data(Direction::ToServer, &ts[40..], &mut out);
        assert!(matches!(out[0], AppRecord::HttpRequest { .. }), "the SETTINGS frame is a global transaction");
        let AppRecord::HttpRequest { tx_id, http } = &out[1] else { panic!("request record expected") };
        assert_eq!(http.url.as_deref(), Some("/"));
        assert_eq!(http.hostname.as_deref(), Some("www.example.com"));
        let tx_id = *tx_id;
        let mut tc = frame(frame::HEADERS, END_HEADERS, 1, b"\x8d");
        tc.extend(frame(frame::DATA, PADDED | END_STREAM, 1, b"\x02body\0\0"));
        p.on_data(Direction::ToClient, &tc, &mut out);
        let Some(AppRecord::Http { http, .. }) = out.last() else { panic!("transaction record expected") };
        assert_eq!(http.status, Some(404));
        let tx = p.tx(tx_id).map(|t| (t.response_body.clone(), t.frames[1].clone()));
        assert_eq!(tx, Some((b"body".to_vec(), vec![frame::HEADERS, frame::DATA])));
    }

    #[test]
    fn continuation_frames_complete_a_header_block() {
        let mut p = Http2Parser::new();
        let mut out = Vec::new();
        let block = b"\x82\x86\x84\x41\x0fwww.example.com";
        let mut ts = PREFACE.to_vec();
        ts.extend(frame(frame::HEADERS, END_STREAM, 3, &block[..5]));
        ts.extend(frame(frame::CONTINUATION, END_HEADERS, 3, &block[5..]));
        p.on_data(Direction::ToServer, &ts, &mut out);
        let Some(AppRecord::HttpRequest { http, .. }) = out.last() else { panic!("request record expected") };
        assert_eq!(http.hostname.as_deref(), Some("www.example.com"));
    }

    #[test]
    fn doh_get_and_post_carry_the_dns_message() {
        let mut tx = H2Tx::default();
        tx.request_headers
            .push((b":path".to_vec(), b"/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB".to_vec()));
        extract_doh_request(&mut tx);
        let m = tx.dns_request.unwrap_or_default();
        assert_eq!(m.len(), 33);
        assert_eq!(&m[12..16], b"\x03www");
        let mut tx = H2Tx::default();
        tx.request_headers.push((b"content-type".to_vec(), b"application/dns-message".to_vec()));
        tx.request_body = b"\x00\x01".to_vec();
        extract_doh_request(&mut tx);
        assert_eq!(tx.dns_request.as_deref(), Some(&b"\x00\x01"[..]));
    }

    #[test]
    fn frame_values_are_kept_per_side_for_the_integer_keywords() {
        let mut p = Http2Parser::new();
        let mut out = Vec::new();
        let mut ts = PREFACE.to_vec();
        // HEADERS with priority (weight 200) and a table size update to 100 before the fields
        let mut hp = vec![0, 0, 0, 0, 200, 0x3f, 0x45];
        hp.extend_from_slice(b"\x82\x86\x84");
        ts.extend(frame(frame::HEADERS, END_HEADERS | PRIORITY_FLAG, 1, &hp));
        ts.extend(frame(frame::WINDOW_UPDATE, 0, 1, &70000u32.to_be_bytes()));
        ts.extend(frame(frame::RST_STREAM, 0, 1, &2u32.to_be_bytes()));
        ts.extend(frame(frame::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 13]));
        p.on_data(Direction::ToServer, &ts, &mut out);
        let Some(tx) = p.tx(0) else { panic!("stream transaction expected") };
        assert_eq!(tx.priorities[0], vec![200]);
        assert_eq!(tx.size_updates[0], vec![100]);
        assert_eq!(tx.windows[0], vec![70000]);
        assert_eq!(tx.error_codes[0], vec![2]);
        assert_eq!(tx.frames[0], vec![frame::HEADERS, frame::WINDOW_UPDATE, frame::RST_STREAM]);
        let Some(g) = p.tx(1) else { panic!("global transaction expected") };
        assert!(g.global && g.error_codes[0] == vec![13]);
        assert_eq!(error_code_from_name("http_1_1_required"), Some(13));
        assert_eq!(settings_id_from_name("SETTINGS_ENABLE_PUSH"), Some(2));
        assert_eq!(settings_id_from_name("SETTINGS_BOGUS"), None);
        assert_eq!(error_code_from_name("NOPE"), None);
    }

    #[test]
    fn h2c_upgrade_turns_the_upgraded_request_into_stream_1() {
        let mut h1 = Box::new(HttpParser::new());
        let mut out = Vec::new();
        let req = b"GET /robots.txt HTTP/1.1\r\nHost: Example.org\r\nUser-Agent: c\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
        h1.on_data(Direction::ToServer, req, &mut out);
        h1.on_data(
            Direction::ToClient,
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            &mut out,
        );
        let Some(id) = h1.h2c_upgrade() else { panic!("upgrade expected") };
        let data = h1.tx_data(id).cloned();
        let mut p = Http2Parser::upgrade(h1, data.as_ref());
        assert!(p.h1_tx_data(id).is_some(), "the HTTP/1.1 transaction stays readable");
        let mut tc = frame(frame::SETTINGS, 0, 0, &[]);
        tc.extend(frame(frame::HEADERS, END_HEADERS | END_STREAM, 1, b"\x8d"));
        p.on_data(Direction::ToServer, PREFACE, &mut out);
        p.on_data(Direction::ToClient, &tc, &mut out);
        let Some(AppRecord::Http { tx_id, http }) = out.last() else { panic!("stream 1 record expected") };
        assert_eq!(
            (http.url.as_deref(), http.hostname.as_deref(), http.status),
            (Some("/robots.txt"), Some("Example.org"), Some(404))
        );
        let tx = p.tx(*tx_id);
        assert!(tx.is_some_and(|t| t.stream_id == 1
            && t.upgraded
            && t.header(Direction::ToServer, "User-Agent") == Some(b"c")));
    }

    #[test]
    fn random_frames_and_header_blocks_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let block: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = Hpack::default().decode(&block);
            let _ = huffman_decode(&block);
            // well-formed frame headers of random types, flags and streams around random payloads
            let mut p = Http2Parser::new();
            let mut out = Vec::new();
            let ftype = (next() % 11) as u8;
            let stream = (next() % 4) as u32;
            let mut f = frame(ftype, next() as u8, stream, &block);
            f.extend(frame(frame::CONTINUATION, next() as u8, stream, &block[..len / 2]));
            p.on_data(Direction::ToServer, PREFACE, &mut out);
            p.on_data(Direction::ToServer, &f, &mut out);
            p.on_data(Direction::ToClient, &f, &mut out);
            p.on_close(&mut out);
        }
    }

    #[test]
    fn truncated_and_garbage_frames_never_panic() {
        for input in [
            &b"\x00\x00\x05\x01\x08\x00\x00\x00\x01\x09"[..],
            b"\x00\x00\x04\x05\x00\x00\x00\x00\x01\x00",
            b"\xff\xff\xff\xff",
        ] {
            let mut p = Http2Parser::new();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, input, &mut out);
            p.on_data(Direction::ToClient, input, &mut out);
            p.on_close(&mut out);
        }
        assert_eq!(host_of(b"user:pw@Example.com:8080"), b"Example.com");
        assert_eq!(host_of(b"[::1]:80"), b"[::1]");
    }
}
