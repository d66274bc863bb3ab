//! HTTP/1.x transactions over the in-order stream.
//!
//! Each direction is a small state machine (headers, Content-Length body, chunked body,
//! body-until-close). Header blocks that span segments are buffered (bounded); bodies are
//! counted, and their first [`BODY_LIMIT`] bytes per side kept with the header lists
//! ([`TxData`]) for signature inspection until the transaction is emitted (then for the last
//! few emitted ones). Responses are paired with requests in order; a transaction's
//! record is produced when its response is complete (body included), or at flow end for
//! requests never answered. A gap inside a body of known length is skipped; anywhere else the
//! direction resynchronises on the next message start.

use super::detect::{Probe, http_request_start};
use super::{AppParser, AppProto, AppRecord, Direction};
use soc_model::Http;
use std::collections::VecDeque;

/// Largest header block (request line + headers) buffered.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Most open transactions kept per flow (requests waiting for responses).
const MAX_OPEN_TX: usize = 512;
/// Body bytes kept per transaction side for signature inspection (Suricata's default
/// request/response body limits).
pub const BODY_LIMIT: usize = 100 * 1024;
/// Emitted transactions whose headers and bodies stay available for signature inspection.
const KEPT_TX_DATA: usize = 4;

/// What signature inspection needs of a transaction beyond its record: the header lists in
/// order, the start lines and the first [`BODY_LIMIT`] bytes of each (de-chunked) body.
#[derive(Clone, Debug, Default)]
pub struct TxData {
    pub tx_id: u64,
    pub request_line: Vec<u8>,
    pub request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub request_body: Vec<u8>,
    pub response_line: Vec<u8>,
    pub response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub response_body: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a request/response line and headers.
    Headers,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    /// Response body delimited by the connection's end.
    UntilClose,
    /// Lost sync: wait for a segment that starts a message.
    Desync,
    /// Not HTTP any more (tunnel, protocol switch): ignore.
    Stop,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    state: State,
    /// Transaction the current body belongs to.
    cur_tx: Option<u64>,
}

impl Default for Side {
    fn default() -> Self {
        Side { buf: Vec::new(), state: State::Headers, cur_tx: None }
    }
}

#[derive(Debug)]
struct Tx {
    id: u64,
    http: Http,
    method_head: bool,
    method_connect: bool,
    http09: bool,
    has_request: bool,
    resp_started: bool,
    resp_done: bool,
    body_len: u64,
    emitted: bool,
    data: TxData,
}

/// The HTTP/1.x parser of one flow.
#[derive(Debug, Default)]
pub struct HttpParser {
    sides: [Side; 2],
    txs: VecDeque<Tx>,
    next_tx_id: u64,
    /// Records produced so far.
    pub tx_logged: u64,
    /// Inspection data of the last emitted transactions.
    done: VecDeque<TxData>,
}

fn find_subslice(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Position just past the blank line ending a header block.
fn header_block_end(d: &[u8]) -> Option<usize> {
    let a = find_subslice(d, b"\r\n\r\n").map(|p| p + 4);
    let b = find_subslice(d, b"\n\n").map(|p| p + 2);
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map(|p| p + 1).unwrap_or(start);
    &s[start..end.max(start)]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Host and optional port of a Host header or URI authority; the host lowercased.
pub fn split_host_port(h: &str) -> (String, Option<u16>) {
    let h = h.trim();
    let h = h.rsplit_once('@').map(|(_, r)| r).unwrap_or(h);
    if let Some(rest) = h.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (format!("[{}]", host.to_ascii_lowercase()), port);
        }
        return (h.to_ascii_lowercase(), None);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_ascii_lowercase(), port.trim().parse().ok()),
        _ => (h.to_ascii_lowercase(), None),
    }
}

struct Headers<'a> {
    lines: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Headers<'a> {
    fn parse(block: &'a [u8]) -> Self {
        let mut lines: Vec<(&[u8], &[u8])> = Vec::new();
        for raw in block.split(|&b| b == b'\n') {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            if let Some(c) = line.iter().position(|&b| b == b':') {
                lines.push((trim(&line[..c]), trim(&line[c + 1..])));
            }
        }
        Headers { lines }
    }
    fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.lines.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| *v)
    }
    fn content_length(&self) -> Option<u64> {
        let v = self.get("content-length")?;
        std::str::from_utf8(v).ok()?.trim().parse().ok()
    }
    fn chunked(&self) -> bool {
        self.get("transfer-encoding").is_some_and(|v| {
            let s = String::from_utf8_lossy(v).to_ascii_lowercase();
            s.rsplit(',').next().is_some_and(|last| last.trim() == "chunked")
        })
    }
}

impl HttpParser {
    pub fn new() -> Self {
        Self::default()
    }

    fn new_tx(&mut self) -> Option<&mut Tx> {
        if self.txs.len() >= MAX_OPEN_TX {
            return None;
        }
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        self.txs.push_back(Tx {
            id,
            http: Http::default(),
            method_head: false,
            method_connect: false,
            http09: false,
            has_request: false,
            resp_started: false,
            resp_done: false,
            body_len: 0,
            emitted: false,
            data: TxData { tx_id: id, ..TxData::default() },
        });
        self.txs.back_mut()
    }

    /// Headers and bodies of a transaction, while it is open or among the last emitted.
    pub fn tx_data(&self, tx_id: u64) -> Option<&TxData> {
        self.done
            .iter()
            .rev()
            .find(|d| d.tx_id == tx_id)
            .or_else(|| self.txs.iter().find(|t| t.id == tx_id && !t.emitted).map(|t| &t.data))
    }

    fn tx_mut(&mut self, id: u64) -> Option<&mut Tx> {
        self.txs.iter_mut().find(|t| t.id == id)
    }

    fn emit_ready(&mut self, out: &mut Vec<AppRecord>, all: bool) {
        for t in self.txs.iter_mut() {
            if !t.emitted && (t.resp_done || all) {
                t.emitted = true;
                let mut http = std::mem::take(&mut t.http);
                http.length = Some(t.body_len);
                out.push(AppRecord::Http { tx_id: t.id, http: Box::new(http) });
                self.tx_logged += 1;
                if self.done.len() >= KEPT_TX_DATA {
                    self.done.pop_front();
                }
                self.done.push_back(std::mem::take(&mut t.data));
            }
        }
        while self.txs.front().is_some_and(|t| t.emitted) {
            self.txs.pop_front();
        }
    }

    /// Parses a request header block (`block` includes the blank line). Returns the body state.
    fn on_request(&mut self, block: &[u8], out: &mut Vec<AppRecord>) -> (State, Option<u64>) {
        let line_end = block.iter().position(|&b| b == b'\n').unwrap_or(block.len());
        let line = trim(&block[..line_end]);
        let mut parts = line.split(|&b| b == b' ' || b == b'\t').filter(|p| !p.is_empty());
        let method = parts.next().unwrap_or_default();
        let uri = parts.next();
        let proto = parts.next();
        let headers = Headers::parse(block.get(line_end + 1..).unwrap_or_default());
        let Some(tx) = self.new_tx() else {
            return (State::Desync, None);
        };
        tx.has_request = true;
        tx.data.request_line = line.to_vec();
        tx.data.request_headers = headers.lines.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        tx.http.http_method = Some(text(method));
        tx.method_head = method.eq_ignore_ascii_case(b"HEAD");
        tx.method_connect = method.eq_ignore_ascii_case(b"CONNECT");
        if let Some(u) = uri {
            tx.http.url = Some(text(u));
        }
        match proto {
            Some(p) => tx.http.protocol = Some(text(p)),
            None => tx.http09 = true,
        }
        // Host: an absolute URI's authority wins over the Host header.
        let uri_auth = uri.and_then(|u| {
            let s = std::str::from_utf8(u).ok()?;
            let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"))?;
            Some(rest.split(['/', '?', '#']).next().unwrap_or("").to_string())
        });
        let host = uri_auth.or_else(|| headers.get("host").map(text));
        if let Some(h) = host.filter(|h| !h.is_empty()) {
            let (name, port) = split_host_port(&h);
            tx.http.hostname = Some(name);
            tx.http.http_port = port;
        }
        if let Some(ua) = headers.get("user-agent") {
            tx.http.http_user_agent = Some(text(ua));
        }
        if let Some(r) = headers.get("referer") {
            tx.http.http_refer = Some(text(r));
        }
        let id = tx.id;
        let state = if tx.http09 {
            State::Headers
        } else if headers.chunked() {
            State::ChunkSize
        } else {
            match headers.content_length() {
                Some(n) if n > 0 => State::Length(n),
                _ => State::Headers,
            }
        };
        let _ = out;
        (state, Some(id))
    }

    /// Parses a response header block; returns the body state.
    fn on_response(&mut self, block: &[u8], out: &mut Vec<AppRecord>) -> (State, Option<u64>) {
        let line_end = block.iter().position(|&b| b == b'\n').unwrap_or(block.len());
        let line = trim(&block[..line_end]);
        let mut parts = line.splitn(3, |&b| b == b' ');
        let _proto = parts.next();
        let status: Option<u16> =
            parts.next().and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.trim().parse().ok());
        let headers = Headers::parse(block.get(line_end + 1..).unwrap_or_default());
        let interim = status.is_some_and(|s| (100..200).contains(&s) && s != 101);
        // Pair with the oldest request still waiting for its response.
        let idx = self.txs.iter().position(|t| !t.resp_started && !t.emitted);
        let idx = match idx {
            Some(i) => i,
            None => {
                out.push(AppRecord::Anomaly {
                    proto: AppProto::Http,
                    event: "UNABLE_TO_MATCH_RESPONSE_TO_REQUEST",
                    dir: Direction::ToClient,
                });
                match self.new_tx() {
                    // As libhtp does, a response without request gets this URI.
                    Some(t) => t.http.url = Some("/libhtp::request_uri_not_seen".into()),
                    None => return (State::Desync, None),
                }
                self.txs.len() - 1
            }
        };
        let Some(tx) = self.txs.get_mut(idx) else {
            return (State::Desync, None);
        };
        if interim {
            // 100 Continue and friends: the final response follows.
            return (State::Headers, None);
        }
        tx.resp_started = true;
        tx.data.response_line = line.to_vec();
        tx.data.response_headers = headers.lines.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        tx.http.status = status;
        if let Some(ct) = headers.get("content-type") {
            let ct = ct.split(|&b| b == b';').next().unwrap_or_default();
            tx.http.http_content_type = Some(text(trim(ct)));
        }
        if let Some(loc) = headers.get("location") {
            tx.http.redirect = Some(text(loc));
        }
        let id = tx.id;
        let st = status.unwrap_or(0);
        let state = if st == 101 || (tx.method_connect && (200..300).contains(&st)) {
            State::Stop
        } else if tx.method_head || st == 204 || st == 304 {
            State::Headers
        } else if headers.chunked() {
            State::ChunkSize
        } else {
            match headers.content_length() {
                Some(0) => State::Headers,
                Some(n) => State::Length(n),
                None => State::UntilClose,
            }
        };
        (state, Some(id))
    }

    fn finish_response(&mut self, id: Option<u64>, out: &mut Vec<AppRecord>) {
        if let Some(t) = id.and_then(|id| self.tx_mut(id)) {
            t.resp_done = true;
        }
        self.emit_ready(out, false);
    }

    fn count_body(&mut self, dir: Direction, id: Option<u64>, data: &[u8]) {
        let Some(t) = id.and_then(|id| self.tx_mut(id)) else { return };
        let body = if dir == Direction::ToClient {
            t.body_len += data.len() as u64;
            &mut t.data.response_body
        } else {
            &mut t.data.request_body
        };
        let room = BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Processes `input`; returns how many bytes were consumed (the rest is an incomplete
    /// header block or chunk-size line).
    fn process(&mut self, dir: Direction, input: &[u8], out: &mut Vec<AppRecord>) -> usize {
        let d = dir.index();
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let state = self.sides[d].state;
            match state {
                State::Stop => return input.len(),
                State::Desync => {
                    let starts = match dir {
                        Direction::ToServer => http_request_start(rest) == Probe::Match(AppProto::Http),
                        Direction::ToClient => rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"HTTP/"),
                    };
                    if !starts {
                        return input.len();
                    }
                    self.sides[d].state = State::Headers;
                }
                State::Headers => {
                    // Blank lines between messages are tolerated.
                    let skip = rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                    if skip > 0 {
                        pos += skip;
                        continue;
                    }
                    if dir == Direction::ToClient
                        && !(rest.len() < 5 && b"HTTP/"[..rest.len()].eq_ignore_ascii_case(rest))
                        && !(rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"HTTP/"))
                    {
                        // No status line: an HTTP/0.9 answer (body until close) or junk.
                        let v09 = self.txs.iter().find(|t| !t.resp_started && !t.emitted).is_some_and(|t| t.http09);
                        if v09 {
                            let id = self.txs.iter_mut().find(|t| !t.resp_started && !t.emitted).map(|t| {
                                t.resp_started = true;
                                t.id
                            });
                            self.sides[d].cur_tx = id;
                            self.sides[d].state = State::UntilClose;
                        } else {
                            self.sides[d].state = State::Desync;
                        }
                        continue;
                    }
                    if dir == Direction::ToServer {
                        if http_request_start(rest) == Probe::NoMatch {
                            out.push(AppRecord::Anomaly { proto: AppProto::Http, event: "REQUEST_LINE_INVALID", dir });
                            self.sides[d].state = State::Desync;
                            continue;
                        }
                        // HTTP/0.9 request: a single line without a protocol.
                        if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                            let line = trim(&rest[..nl]);
                            let tokens = line.split(|&b| b == b' ').filter(|p| !p.is_empty()).count();
                            if tokens == 2 {
                                let (st, id) = self.on_request(&rest[..nl + 1], out);
                                self.sides[d].state = st;
                                self.sides[d].cur_tx = id;
                                pos += nl + 1;
                                continue;
                            }
                        }
                    }
                    let Some(end) = header_block_end(rest) else {
                        return pos;
                    };
                    let block = &rest[..end];
                    let (st, id) = match dir {
                        Direction::ToServer => self.on_request(block, out),
                        Direction::ToClient => self.on_response(block, out),
                    };
                    pos += end;
                    self.sides[d].cur_tx = id;
                    self.sides[d].state = st;
                    if dir == Direction::ToClient && id.is_some() && st == State::Headers {
                        self.finish_response(id, out);
                    }
                    if st == State::Stop {
                        if dir == Direction::ToClient {
                            self.finish_response(id, out);
                        }
                        self.sides[0].state = State::Stop;
                        self.sides[1].state = State::Stop;
                    }
                }
                State::Length(n) => {
                    let take = (rest.len() as u64).min(n);
                    self.count_body(dir, self.sides[d].cur_tx, &rest[..take as usize]);
                    pos += take as usize;
                    if take == n {
                        self.sides[d].state = State::Headers;
                        if dir == Direction::ToClient {
                            self.finish_response(self.sides[d].cur_tx, out);
                        }
                    } else {
                        self.sides[d].state = State::Length(n - take);
                    }
                }
                State::ChunkSize => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        return if rest.len() > 1024 {
                            self.sides[d].state = State::Desync;
                            input.len()
                        } else {
                            pos
                        };
                    };
                    let line = trim(&rest[..nl]);
                    let hexpart = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(trim(hexpart)).ok().and_then(|s| u64::from_str_radix(s, 16).ok());
                    pos += nl + 1;
                    match size {
                        Some(0) => self.sides[d].state = State::Trailers,
                        Some(n) => self.sides[d].state = State::ChunkData(n),
                        None => {
                            if trim(hexpart).is_empty() {
                                continue;
                            }
                            self.sides[d].state = State::Desync;
                        }
                    }
                }
                State::ChunkData(n) => {
                    let take = (rest.len() as u64).min(n);
                    self.count_body(dir, self.sides[d].cur_tx, &rest[..take as usize]);
                    pos += take as usize;
                    self.sides[d].state = if take == n { State::ChunkDataEnd } else { State::ChunkData(n - take) };
                }
                State::ChunkDataEnd => match rest.first() {
                    Some(b'\r') => pos += 1,
                    Some(b'\n') => {
                        pos += 1;
                        self.sides[d].state = State::ChunkSize;
                    }
                    _ => self.sides[d].state = State::ChunkSize,
                },
                State::Trailers => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        return pos;
                    };
                    let line = trim(&rest[..nl]);
                    pos += nl + 1;
                    if line.is_empty() {
                        self.sides[d].state = State::Headers;
                        if dir == Direction::ToClient {
                            self.finish_response(self.sides[d].cur_tx, out);
                        }
                    }
                }
                State::UntilClose => {
                    self.count_body(dir, self.sides[d].cur_tx, rest);
                    return input.len();
                }
            }
        }
        pos
    }
}

impl AppParser for HttpParser {
    fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppRecord>) {
        let d = dir.index();
        if self.sides[d].state == State::Stop {
            return;
        }
        if self.sides[d].buf.is_empty() {
            let used = self.process(dir, data, out);
            let rest = &data[used.min(data.len())..];
            if !rest.is_empty() {
                if rest.len() > MAX_HEADER_BLOCK {
                    self.sides[d].state = State::Desync;
                } else {
                    self.sides[d].buf.extend_from_slice(rest);
                }
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.sides[d].buf);
        buf.extend_from_slice(data);
        let used = self.process(dir, &buf, out);
        let rest_len = buf.len() - used.min(buf.len());
        if rest_len > MAX_HEADER_BLOCK {
            let ev = if dir == Direction::ToServer { "REQUEST_HEADER_TOO_LONG" } else { "RESPONSE_HEADER_TOO_LONG" };
            out.push(AppRecord::Anomaly { proto: AppProto::Http, event: ev, dir });
            self.sides[d].state = State::Desync;
            return;
        }
        if rest_len > 0 {
            buf.drain(..used.min(buf.len()));
            self.sides[d].buf = buf;
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, out: &mut Vec<AppRecord>) {
        let d = dir.index();
        let len = len as u64;
        match self.sides[d].state {
            State::Length(n) if len < n => self.sides[d].state = State::Length(n - len),
            State::Length(n) if len == n && self.sides[d].buf.is_empty() => {
                self.sides[d].state = State::Headers;
                if dir == Direction::ToClient {
                    self.finish_response(self.sides[d].cur_tx, out);
                }
            }
            State::ChunkData(n) if len < n => self.sides[d].state = State::ChunkData(n - len),
            State::UntilClose | State::Stop => {}
            _ => {
                self.sides[d].buf.clear();
                self.sides[d].state = State::Desync;
                // A response lost in the gap: its request will be logged at flow end.
                if dir == Direction::ToClient
                    && let Some(id) = self.sides[d].cur_tx
                    && let Some(t) = self.tx_mut(id)
                    && t.resp_started
                    && !t.resp_done
                {
                    t.resp_done = true;
                    self.emit_ready(out, false);
                }
            }
        }
    }

    fn on_eof(&mut self, dir: Direction, out: &mut Vec<AppRecord>) {
        if dir == Direction::ToClient && self.sides[1].state == State::UntilClose {
            self.sides[1].state = State::Headers;
            self.finish_response(self.sides[1].cur_tx, out);
        }
    }

    fn on_close(&mut self, out: &mut Vec<AppRecord>) {
        if self.sides[1].state == State::UntilClose {
            self.finish_response(self.sides[1].cur_tx, out);
        }
        self.emit_ready(out, true);
    }

    fn is_done(&self) -> bool {
        self.sides[0].state == State::Stop && self.sides[1].state == State::Stop && self.txs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https(out: &[AppRecord]) -> Vec<(u64, Http)> {
        out.iter()
            .filter_map(|r| match r {
                AppRecord::Http { tx_id, http } => Some((*tx_id, (**http).clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn request_and_response_split_across_segments() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        let req = b"GET /m HTTP/1.1\r\nHost: 192.168.0.4:8080\r\nUser-Agent: curl/8\r\nReferer: http://a/\r\n\r\n";
        for c in req.chunks(7) {
            p.on_data(Direction::ToServer, c, &mut out);
        }
        assert!(out.is_empty());
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 10\r\n\r\n0123456789";
        for c in resp.chunks(5) {
            p.on_data(Direction::ToClient, c, &mut out);
        }
        let h = https(&out);
        assert_eq!(h.len(), 1);
        let (id, h) = &h[0];
        assert_eq!(*id, 0);
        assert_eq!(h.hostname.as_deref(), Some("192.168.0.4"));
        assert_eq!(h.http_port, Some(8080));
        assert_eq!(h.url.as_deref(), Some("/m"));
        assert_eq!(h.http_user_agent.as_deref(), Some("curl/8"));
        assert_eq!(h.http_refer.as_deref(), Some("http://a/"));
        assert_eq!(h.http_method.as_deref(), Some("GET"));
        assert_eq!(h.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(h.status, Some(200));
        assert_eq!(h.http_content_type.as_deref(), Some("text/html"));
        assert_eq!(h.length, Some(10));
    }

    #[test]
    fn keep_alive_chunked_post_continue_and_unanswered() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"POST /a HTTP/1.1\r\nHost: Example.ORG\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno", &mut out);
        p.on_data(Direction::ToClient, b"!", &mut out);
        p.on_data(Direction::ToServer, b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n", &mut out);
        p.on_data(Direction::ToServer, b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", &mut out);
        p.on_close(&mut out);
        let h = https(&out);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].1.hostname.as_deref(), Some("example.org"));
        assert_eq!((h[0].1.status, h[0].1.length), (Some(200), Some(7)));
        assert_eq!((h[1].1.url.as_deref(), h[1].1.status, h[1].1.length), (Some("/b"), Some(404), Some(3)));
        assert_eq!((h[2].1.url.as_deref(), h[2].1.status, h[2].1.length), (Some("/c"), Some(200), Some(0)));
        assert_eq!((h[3].1.url.as_deref(), h[3].1.status), (Some("/d"), None));
        assert_eq!(h.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn gap_in_body_is_skipped_and_gap_in_headers_resyncs() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", &mut out);
        p.on_gap(Direction::ToClient, 980, &mut out);
        p.on_data(Direction::ToClient, b"0123456789", &mut out);
        p.on_data(Direction::ToServer, b"GET /next HTTP/1.1\r\nHo", &mut out);
        p.on_gap(Direction::ToServer, 10, &mut out);
        p.on_data(Direction::ToServer, b"st: x\r\n\r\n", &mut out);
        p.on_data(Direction::ToServer, b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 204 No Content\r\n\r\n", &mut out);
        let h = https(&out);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].1.status, h[0].1.length), (Some(200), Some(20)));
        assert_eq!((h[1].1.url.as_deref(), h[1].1.status), (Some("/after"), Some(204)));
    }

    #[test]
    fn response_without_request_until_close_and_upgrade() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToClient, b"HTTP/1.0 200 OK\r\nContent-Type: a/b\r\n\r\nbody...", &mut out);
        p.on_data(Direction::ToClient, b"more", &mut out);
        p.on_eof(Direction::ToClient, &mut out);
        let h = https(&out);
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].1.status, h[0].1.length, h[0].1.url.as_deref()),
            (Some(200), Some(11), Some("/libhtp::request_uri_not_seen"))
        );
        assert!(
            out.iter().any(|r| matches!(r, AppRecord::Anomaly { event: "UNABLE_TO_MATCH_RESPONSE_TO_REQUEST", .. }))
        );

        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello", &mut out);
        assert_eq!(https(&out).len(), 1);
        assert!(p.is_done());
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("Example.com:8080"), ("example.com".into(), Some(8080)));
        assert_eq!(split_host_port("[::1]:80"), ("[::1]".into(), Some(80)));
        assert_eq!(split_host_port("host"), ("host".into(), None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x12345678u32;
        for _ in 0..200 {
            let mut p = HttpParser::new();
            let mut out = Vec::new();
            let mut data =
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                data.push(b"\r\n0123456789abcdefGET HTTP/ :;"[(seed % 29) as usize]);
            }
            for c in data.chunks((seed % 7 + 1) as usize) {
                p.on_data(Direction::ToServer, c, &mut out);
                p.on_data(Direction::ToClient, c, &mut out);
            }
            p.on_gap(Direction::ToClient, 5, &mut out);
            p.on_close(&mut out);
        }
    }
}
