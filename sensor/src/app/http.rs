//! HTTP/1.x transactions over the in-order stream.
//!
//! A transaction's bodies are also logged as EVE `fileinfo` records (before its `http` one):
//! the response's, and the request's unless it is multipart.
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
    /// The header lines as sent (`http.header.raw`), the blank line ending them left out.
    pub request_headers_raw: Vec<u8>,
    pub response_headers_raw: Vec<u8>,
    /// The response's Content-Encoding values, merged (see [`decode_body`]).
    pub response_content_encoding: Option<Vec<u8>>,
    /// The request side was complete (headers and body) and handed over for inspection as an
    /// [`AppRecord::HttpRequest`]; the transaction's record then inspects the response only.
    pub request_inspected: bool,
    /// A request line or header line ran past [`FIELD_LIMIT`] (libhtp's
    /// `http.request_field_too_long` event): the request side stopped there.
    pub request_field_too_long: bool,
}

/// libhtp's field limit: a request line or header line longer than this is an error.
pub const FIELD_LIMIT: usize = 18_000;

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
    /// Bytes of the request body (de-chunked).
    req_body_len: u64,
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
    /// The transaction whose `Upgrade: h2c` request a 101 response accepted: the connection
    /// continues in HTTP/2 ([`super::http2::Http2Parser::upgrade`]).
    h2c_upgrade: Option<u64>,
    /// A 101 response with `Upgrade: websocket` was seen: the connection continues in
    /// WebSocket frames ([`super::websocket`]); the bytes after it, per direction.
    ws_upgrade: Option<[Vec<u8>; 2]>,
}

/// The EVE `fileinfo` record of a body of transaction `tx_id` (`to_client`: the response's):
/// named `name` (a Content-Disposition's) or after the URI's path, `CLOSED` when the body
/// ended, `TRUNCATED` when the flow ended before; no digest (none computed), never stored.
fn fileinfo_record(
    tx_id: u64,
    http: &Http,
    to_client: bool,
    size: u64,
    complete: bool,
    name: Option<String>,
) -> AppRecord {
    use serde_json::{Value, json};
    let url = http.url.as_deref().unwrap_or("");
    let filename = name.unwrap_or_else(|| url.split('?').next().unwrap_or(url).to_string());
    let mut fields = serde_json::Map::new();
    if let Ok(h) = serde_json::to_value(http) {
        fields.insert("http".into(), h);
    }
    fields.insert("app_proto".into(), Value::from("http"));
    fields.insert(
        "fileinfo".into(),
        json!({"filename": filename, "gaps": false, "state": if complete { "CLOSED" } else { "TRUNCATED" },
               "stored": false, "size": size, "tx_id": tx_id}),
    );
    AppRecord::Log(Box::new(super::LogRecord { event_type: "fileinfo", to_client, fields }))
}

fn find_subslice(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Position just past the line ending a header block (the start line is skipped), as libhtp
/// ends one: an empty line (`\n`, `\r\n`, or only CRs), or a line of one space or tab that is
/// not followed right away by another line end.
fn header_block_end(d: &[u8]) -> Option<usize> {
    let mut pos = d.iter().position(|&b| b == b'\n')? + 1;
    while pos < d.len() {
        let nl = pos + d[pos..].iter().position(|&b| b == b'\n')?;
        let line = &d[pos..nl];
        if line.iter().all(|&b| b == b'\r') {
            return Some(nl + 1);
        }
        if line.len() == 1 && matches!(line[0], b' ' | b'\t') {
            match d.get(nl + 1) {
                None => return None,
                Some(b'\r' | b'\n') => {}
                Some(_) => return Some(nl + 1),
            }
        }
        pos = nl + 1;
    }
    None
}

/// RFC 7230 token characters (header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A regular end of line on the response side (libhtp accepts a lone CR, and LF CR).
fn regular_eol(d: &[u8]) -> Option<usize> {
    match d {
        [b'\r', b'\n', ..] | [b'\n', b'\r', ..] => Some(2),
        [b'\n', ..] | [b'\r', ..] => Some(1),
        _ => None,
    }
}

/// An end of line ending a response header value, with libhtp's deformed forms
/// (`\n\r\r\n` before an empty line; `\r\n\r` and more CRs or blanks, then an optional LF, not
/// before an empty line). `None` when `d` does not start with one, `Some(None)` when more data
/// is needed to decide.
fn response_eol(d: &[u8]) -> Option<Option<usize>> {
    let is_eol_next = |r: &[u8]| r.starts_with(b"\n") || r.starts_with(b"\r\n");
    if d.starts_with(b"\n\r\r\n") {
        if d.len() < 6 {
            return Some(None);
        }
        if is_eol_next(&d[4..]) {
            return Some(Some(4));
        }
    }
    if d.starts_with(b"\r\n\r") {
        let k = d[3..].iter().take_while(|&&b| matches!(b, b'\r' | b' ' | b'\t')).count();
        if k > 0 {
            let mut n = 3 + k;
            if d.get(n) == Some(&b'\n') {
                n += 1;
            }
            if d.len() < n + 2 {
                return Some(None);
            }
            if !is_eol_next(&d[n..]) {
                return Some(Some(n));
            }
        }
    }
    let n = regular_eol(d)?;
    if d.len() < n + 1 {
        return Some(None); // folding or not: the next byte decides
    }
    Some(Some(n))
}

/// Bytes consumed, status line, logical header lines, start of the header lines.
type ResponseHead<'a> = (usize, &'a [u8], Vec<Vec<u8>>, usize);

/// A response start line and header block as libhtp's response header parser reads it: lines
/// end at LF, CR LF, LF CR or a lone CR; a line starting with a space, tab or NUL continues the
/// previous one unless it looks like `name:` itself; the block ends at an empty line. Returns
/// the bytes consumed, the status line, the (logical) header lines and where the header lines
/// start, or `None` when incomplete.
fn parse_response_head(d: &[u8]) -> Option<ResponseHead<'_>> {
    let lead = d.iter().take_while(|&&b| is_space_or_nul(b) && b != b'\r' && b != b'\n').count();
    let line_len = d[lead..].iter().position(|&b| b == b'\r' || b == b'\n')?;
    let status_line = &d[lead..lead + line_len];
    let mut pos = lead + line_len + regular_eol(&d[lead + line_len..])?;
    let headers_start = pos;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    loop {
        if pos >= d.len() {
            return None;
        }
        if let Some(n) = regular_eol(&d[pos..]) {
            if d[pos] == b'\r' && pos + 1 >= d.len() {
                return None; // CR, maybe of a CR LF
            }
            return Some((pos + n, status_line, lines, headers_start));
        }
        // one logical header line, with its continuations
        let mut value: Vec<u8> = Vec::new();
        let mut continuation = false;
        loop {
            let n = d[pos..].iter().position(|&b| b == b'\r' || b == b'\n')?;
            let seg = &d[pos..pos + n];
            if continuation && seg.is_empty() {
                // an empty continuation with a one-byte line end: that line end is kept as the
                // end of the block (libhtp), unless another LF follows
                let e = response_eol(&d[pos..])?.unwrap_or(0);
                if e == 1 && d.get(pos + 1) != Some(&b'\n') {
                    break;
                }
            }
            continuation = true;
            if !value.is_empty() && !seg.is_empty() {
                value.push(b' ');
            }
            value.extend_from_slice(trim(seg));
            pos += n;
            // folding: a regular end of line and a space, tab or NUL
            if let Some(e) = regular_eol(&d[pos..]) {
                match d.get(pos + e) {
                    None => return None,
                    Some(b' ' | b'\t' | 0) => {
                        let after = pos + e + 1;
                        let rest = &d[after..];
                        let ws = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                        let tok = rest[ws..].iter().take_while(|&&b| is_token(b)).count();
                        let ws2 = rest[ws + tok..].iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                        if tok > 0 && rest.get(ws + tok + ws2) == Some(&b':') {
                            // `name:` after the blanks: a new header, not a continuation
                            pos = after;
                            break;
                        }
                        if tok > 0 && ws + tok + ws2 >= rest.len() {
                            return None;
                        }
                        pos = after;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            match response_eol(&d[pos..])? {
                Some(e) => pos += e,
                None => return None,
            }
            break;
        }
        lines.push(value);
    }
}

/// A header block as sent, without the blank line that ends it (each line keeps its end).
fn raw_headers(block: &[u8]) -> Vec<u8> {
    let mut end = block.len();
    // the blank line: its line end, after the previous line's
    let trailing = block.iter().rev().take_while(|&&b| b == b'\r' || b == b'\n').count();
    if trailing > 0 {
        let tail = &block[end - trailing..];
        let first_nl = tail.iter().position(|&b| b == b'\n').map_or(trailing, |p| p + 1);
        end -= trailing - first_nl.min(trailing);
    }
    block[..end].to_vec()
}

/// libhtp's whitespace (`htp_is_space`) and NUL, skipped before a status line.
fn is_space_or_nul(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0)
}

/// What a response-side line that should start a message is.
#[derive(Debug, PartialEq, Eq)]
enum ResponseStart {
    /// More data needed.
    Wait,
    /// A status line (after optional whitespace and NULs: `http`, any case).
    Status,
    /// A line to skip (whitespace only, or junk followed by a line starting with `H`).
    Skip(usize),
    /// Not a status line: the response is a body until the connection closes (libhtp).
    Body,
}

fn response_start(rest: &[u8]) -> ResponseStart {
    let nl = rest.iter().position(|&b| b == b'\n');
    let line = &rest[..nl.unwrap_or(rest.len())];
    if let Some(nl) = nl
        && line.iter().all(|&b| is_space_or_nul(b))
    {
        return ResponseStart::Skip(nl + 1);
    }
    let p = line.iter().take_while(|&&b| is_space_or_nul(b)).count();
    let head = &line[p..];
    if head.len() >= 4 && head[..4].eq_ignore_ascii_case(b"http") {
        return ResponseStart::Status;
    }
    if nl.is_none() && head.len() < 4 && b"http"[..head.len()].eq_ignore_ascii_case(head) {
        return ResponseStart::Wait;
    }
    match nl {
        Some(nl) => match rest.get(nl + 1) {
            Some(b'H' | b'h') => ResponseStart::Skip(nl + 1),
            None => ResponseStart::Wait,
            Some(_) => ResponseStart::Body,
        },
        None => ResponseStart::Body,
    }
}

/// libhtp's chunk-length line: leading whitespace and line ends skipped, the hexadecimal
/// digits that follow (anything after them is ignored). `Some(None)`: a blank line;
/// `None`: no digits (invalid).
fn chunk_length(line: &[u8]) -> Option<Option<u64>> {
    let start = line.iter().position(|&b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0x0b | 0x0c));
    let Some(start) = start else { return Some(None) };
    let digits: &[u8] = &line[start..];
    let n = digits.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if n == 0 {
        return None;
    }
    let v = std::str::from_utf8(&digits[..n]).ok().and_then(|t| u64::from_str_radix(t, 16).ok())?;
    (v <= i32::MAX as u64).then_some(Some(v))
}

/// A Content-Length value as libhtp reads it: leading non-digits skipped, the digits that
/// follow, trailing junk ignored.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    let start = v.iter().position(u8::is_ascii_digit)?;
    let n = v[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&v[start..start + n]).ok()?.parse().ok()
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map(|p| p + 1).unwrap_or(start);
    &s[start..end.max(start)]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The request URI as Suricata's `http.uri` has it (libhtp's normalization with the IDS
/// personality): for an absolute URI only its path and query; in the path `%XX` and `%uXXXX`
/// decoded (invalid escapes kept), backslashes turned into slashes, UTF-8 characters turned
/// into single bytes (`?` above U+00FF), and `.`/`..` segments removed (RFC 3986); in the
/// query `%XX` decoded (as libhtp-rs of Suricata 8 does; `+` kept); the fragment decoded.
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let mut target = raw;
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            target = rest.iter().position(|&b| b == b'/' || b == b'?').map_or(&b"/"[..], |p| &rest[p..]);
            break;
        }
    }
    let (before_fragment, fragment) = match target.iter().position(|&b| b == b'#') {
        Some(p) => (&target[..p], Some(&target[p + 1..])),
        None => (target, None),
    };
    let (path, query) = match before_fragment.iter().position(|&b| b == b'?') {
        Some(p) => (&before_fragment[..p], Some(&before_fragment[p + 1..])),
        None => (before_fragment, None),
    };
    let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
    let hex = |b: u8| (b as char).to_digit(16);
    let mut i = 0;
    while i < path.len() {
        let c = path[i];
        if c == b'%' {
            if let (Some(h), Some(l)) = (path.get(i + 1).and_then(|&b| hex(b)), path.get(i + 2).and_then(|&b| hex(b))) {
                decoded.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            if matches!(path.get(i + 1), Some(b'u' | b'U'))
                && let Some(v) =
                    path.get(i + 2..i + 6).and_then(|d| d.iter().try_fold(0u32, |acc, &b| hex(b).map(|x| acc * 16 + x)))
            {
                decoded.push(if v < 0x100 { v as u8 } else { b'?' });
                i += 6;
                continue;
            }
        }
        decoded.push(if c == b'\\' { b'/' } else { c });
        i += 1;
    }
    if !decoded.is_ascii()
        && let Ok(t) = std::str::from_utf8(&decoded)
    {
        decoded = t.chars().map(|c| if (c as u32) < 0x100 { c as u32 as u8 } else { b'?' }).collect();
    }
    let mut out = remove_dot_segments(&decoded);
    if let Some(q) = query {
        out.push(b'?');
        // libhtp-rs (Suricata 8) url-decodes the query: `%XX` only, `+` kept
        let mut i = 0;
        while i < q.len() {
            if q[i] == b'%'
                && let (Some(h), Some(l)) = (q.get(i + 1).and_then(|&b| hex(b)), q.get(i + 2).and_then(|&b| hex(b)))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(q[i]);
            i += 1;
        }
    }
    if let Some(f) = fragment {
        out.push(b'#');
        out.extend_from_slice(&crate::detect::keywords::Transform::UrlDecode.apply(f));
    }
    out
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut input: &[u8] = path;
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    let pop_segment = |out: &mut Vec<u8>| {
        let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
        out.truncate(cut);
    };
    while !input.is_empty() {
        if let Some(r) = input.strip_prefix(b"../").or_else(|| input.strip_prefix(b"./")) {
            input = r;
        } else if input.starts_with(b"/./") {
            input = &input[2..];
        } else if input == b"/." {
            input = b"/";
        } else if input.starts_with(b"/../") {
            input = &input[3..];
            pop_segment(&mut out);
        } else if input == b"/.." {
            input = b"/";
            pop_segment(&mut out);
        } else if input == b"." || input == b".." {
            input = b"";
        } else {
            let start = usize::from(input[0] == b'/');
            let end = input[start..].iter().position(|&b| b == b'/').map_or(input.len(), |p| p + start);
            out.extend_from_slice(&input[..end]);
            input = &input[end..];
        }
    }
    out
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

/// The header lines of a block, folded (a line starting with a space or tab continues the
/// previous one), names and values trimmed.
struct Headers {
    lines: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Header-name comparison as libhtp's: case-insensitive, NUL bytes ignored.
fn name_is(name: &[u8], want: &str) -> bool {
    let mut it = name.iter().filter(|&&b| b != 0);
    let mut w = want.bytes();
    loop {
        match (it.next(), w.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
}

/// Whether `hay` contains `needle` (lowercase ASCII), ignoring case and NUL bytes.
fn contains_nocase_nozero(hay: &[u8], needle: &str) -> bool {
    let h: Vec<u8> = hay.iter().filter(|&&b| b != 0).map(u8::to_ascii_lowercase).collect();
    find_subslice(&h, needle.as_bytes()).is_some()
}

impl Headers {
    fn parse(block: &[u8]) -> Self {
        let mut logical: Vec<Vec<u8>> = Vec::new();
        for raw in block.split(|&b| b == b'\n') {
            let mut line = raw;
            while let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.is_empty() {
                continue;
            }
            match logical.last_mut() {
                Some(prev) if matches!(line[0], b' ' | b'\t') => {
                    let cont = trim(line);
                    if !cont.is_empty() {
                        prev.push(b' ');
                        prev.extend_from_slice(cont);
                    }
                }
                _ => logical.push(line.to_vec()),
            }
        }
        Self::from_lines(&logical)
    }

    /// Logical lines (already unfolded) split at their first colon.
    fn from_lines(logical: &[Vec<u8>]) -> Self {
        let lines = logical
            .iter()
            .filter_map(|l| {
                let c = l.iter().position(|&b| b == b':')?;
                Some((trim(&l[..c]).to_vec(), trim(&l[c + 1..]).to_vec()))
            })
            .collect();
        Headers { lines }
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.lines.iter().find(|(k, _)| name_is(k, name)).map(|(_, v)| v.as_slice())
    }

    /// Every value of a repeated header, joined with `, ` (as libhtp merges them).
    fn get_all(&self, name: &str) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for (_, v) in self.lines.iter().filter(|(k, _)| name_is(k, name)) {
            match &mut out {
                Some(o) => {
                    o.extend_from_slice(b", ");
                    o.extend_from_slice(v);
                }
                None => out = Some(v.clone()),
            }
        }
        out
    }

    fn content_length(&self) -> Option<u64> {
        parse_content_length(self.get("content-length")?)
    }

    /// A response's Content-Length: a value with more than whitespace after its number is no
    /// length for Suricata's HTTP parser (the body then runs until the connection closes).
    fn response_content_length(&self) -> Option<u64> {
        let v = self.get("content-length")?;
        let start = v.iter().position(u8::is_ascii_digit)?;
        let end = start + v[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        if v[end..].iter().any(|b| !b.is_ascii_whitespace()) {
            return None;
        }
        parse_content_length(v)
    }

    /// libhtp: `chunked` anywhere in the (merged) Transfer-Encoding value.
    fn chunked(&self) -> bool {
        self.get_all("transfer-encoding").is_some_and(|v| contains_nocase_nozero(&v, "chunked"))
    }
}

/// Content-Encoding layers libhtp undoes at most (Suricata's
/// `response-body-decompress-layer-limit`).
pub const DECOMPRESS_LAYER_LIMIT: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    /// LZMA ("alone" format, as libhtp decodes it by default).
    Lzma,
}

/// The decompression layers of a Content-Encoding value, in the order libhtp applies them:
/// each token (split at commas and whitespace) containing `gzip`, `deflate` or `lzma`; `identity`,
/// `inflate`, `none` and unknown tokens add no layer.
fn codings(content_encoding: &[u8]) -> Vec<Coding> {
    content_encoding
        .split(|&b| b == b',' || b.is_ascii_whitespace())
        .filter_map(|t| {
            if contains_nocase_nozero(t, "gzip") {
                Some(Coding::Gzip)
            } else if contains_nocase_nozero(t, "deflate") {
                Some(Coding::Deflate)
            } else if contains_nocase_nozero(t, "lzma") {
                Some(Coding::Lzma)
            } else {
                None
            }
        })
        .take(DECOMPRESS_LAYER_LIMIT)
        .collect()
}

/// Reads a decoder to its end or its first error, keeping what it produced, at most
/// [`BODY_LIMIT`] bytes.
fn read_partial(mut r: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < BODY_LIMIT {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(BODY_LIMIT - out.len())]),
        }
    }
    out
}

/// libhtp's `lzma-memlimit` default: the dictionary an lzma layer may use.
const LZMA_MEMLIMIT: usize = 1024 * 1024;

/// An `lzma` layer: decoded to its end or its first error, at most [`BODY_LIMIT`] bytes, with
/// a dictionary of at most [`LZMA_MEMLIMIT`]; `None` when nothing decodes.
fn lzma_layer(data: &[u8]) -> Option<Vec<u8>> {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let room = BODY_LIMIT.saturating_sub(self.0.len());
            if room == 0 {
                return Err(std::io::Error::other("body limit reached"));
            }
            let n = b.len().min(room);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let opts =
        lzma_rs::decompress::Options { memlimit: Some(LZMA_MEMLIMIT), allow_incomplete: true, ..Default::default() };
    let mut out = Capped(Vec::new());
    let _ = lzma_rs::lzma_decompress_with_options(&mut &data[..], &mut out, &opts);
    (!out.0.is_empty()).then_some(out.0)
}

/// Length of a gzip member header (RFC 1952), reserved flag bits ignored; `None` when the
/// data does not start with the gzip magic or the header is cut.
fn gzip_header_len(d: &[u8]) -> Option<usize> {
    if d.len() < 10 || d[0] != 0x1f || d[1] != 0x8b {
        return None;
    }
    let flags = d[3];
    let mut p = 10;
    if flags & 0x04 != 0 {
        let xlen = u16::from_le_bytes([*d.get(p)?, *d.get(p + 1)?]) as usize;
        p += 2 + xlen;
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            p += d.get(p..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & 0x02 != 0 {
        p += 2;
    }
    (p <= d.len()).then_some(p)
}

/// One decompression layer, with libhtp's tolerance: gzip data is recognised by its magic
/// whatever the layer is called, a gzip header is skipped (flags as set, else the fixed 10
/// bytes) and the rest inflated without checking the trailer; otherwise zlib, then raw
/// deflate. `None` when nothing decompresses (libhtp then passes the data through).
fn decompress_layer(data: &[u8]) -> Option<Vec<u8>> {
    let raw = |d: &[u8]| read_partial(flate2::read::DeflateDecoder::new(d));
    let out = if data.starts_with(&[0x1f, 0x8b]) {
        let parsed = gzip_header_len(data).map(|h| raw(&data[h..])).filter(|o| !o.is_empty());
        parsed.or_else(|| data.get(10..).map(raw).filter(|o| !o.is_empty())).unwrap_or_default()
    } else {
        let z = read_partial(flate2::read::ZlibDecoder::new(data));
        if z.is_empty() { raw(data) } else { z }
    };
    (!out.is_empty()).then_some(out)
}

/// The body as the application sees it (`file.data`): the `Content-Encoding` layers undone as
/// libhtp does (in the order listed, at most [`DECOMPRESS_LAYER_LIMIT`], a layer that does not
/// decompress passes its input through). `None` when no layer applies or none changed the data.
pub fn decode_body(content_encoding: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    // gzip and deflate layers are both recognised from the data, as libhtp restarts a layer
    // with the other format when its own fails
    for c in codings(content_encoding) {
        let input = data.as_deref().unwrap_or(body);
        let out = if c == Coding::Lzma { lzma_layer(input) } else { decompress_layer(input) };
        if let Some(out) = out {
            data = Some(out);
        }
    }
    data
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
            req_body_len: 0,
            emitted: false,
            data: TxData { tx_id: id, ..TxData::default() },
        });
        self.txs.back_mut()
    }

    /// The id the next transaction gets.
    pub fn next_tx_id(&self) -> u64 {
        self.next_tx_id
    }

    /// A 101 response upgraded the connection to WebSocket: the bytes that followed the
    /// upgrade in each direction (taken once).
    pub fn take_websocket_upgrade(&mut self) -> Option<[Vec<u8>; 2]> {
        self.ws_upgrade.take()
    }

    /// The transaction whose request was upgraded to h2c by a 101 response, if any.
    pub fn h2c_upgrade(&self) -> Option<u64> {
        self.h2c_upgrade
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
                // the bodies as files (EVE `fileinfo`): the request's, then the response's
                // (a multipart request body is a file only in its parts that name one: not logged)
                let multipart = t.data.request_headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case(b"content-type")
                        && v.get(..10).is_some_and(|p| p.eq_ignore_ascii_case(b"multipart/"))
                });
                let req_size = if multipart { 0 } else { t.req_body_len };
                // a response names its file in its Content-Disposition, else the URI does
                let disposition = t
                    .data
                    .response_headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(b"content-disposition"))
                    .find_map(|(_, v)| super::file::disposition_filename(v))
                    .map(|n| String::from_utf8_lossy(n).into_owned());
                for (to_client, size, complete, name) in
                    [(false, req_size, t.data.request_inspected, None), (true, t.body_len, t.resp_done, disposition)]
                {
                    if size > 0 {
                        out.push(fileinfo_record(t.id, &http, to_client, size, complete, name));
                    }
                }
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
        tx.data.request_headers = headers.lines.clone();
        tx.data.request_headers_raw = raw_headers(block.get(line_end + 1..).unwrap_or_default());
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
    fn on_response(&mut self, status_line: &[u8], lines: &[Vec<u8>], out: &mut Vec<AppRecord>) -> (State, Option<u64>) {
        let line = trim(status_line);
        let mut parts = line.split(|&b| b == b' ' || b == b'\t').filter(|p| !p.is_empty());
        let _proto = parts.next();
        // the leading digits of the second token
        let status: Option<u16> = parts.next().and_then(|s| {
            let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&s[..n]).ok()?.parse().ok()
        });
        let headers = Headers::from_lines(lines);
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
        tx.data.response_headers = headers.lines.clone();
        tx.data.response_content_encoding = headers.get_all("content-encoding");
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
        // 1xx/204/304 have no body, unless the server sends one with a length or chunking
        // (browsers read it, so does libhtp)
        let no_body_status = (100..200).contains(&st) || st == 204 || st == 304;
        let framed = headers.chunked() || headers.response_content_length().is_some();
        let h2c = st == 101
            && tx
                .data
                .request_headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(b"upgrade") && v.trim_ascii().eq_ignore_ascii_case(b"h2c"));
        let state = if st == 101 || (tx.method_connect && (200..300).contains(&st)) {
            State::Stop
        } else if tx.method_head || (no_body_status && !framed) {
            State::Headers
        } else if headers.chunked() {
            State::ChunkSize
        } else {
            match headers.response_content_length() {
                Some(0) => State::Headers,
                Some(n) => State::Length(n),
                None => State::UntilClose,
            }
        };
        if h2c {
            self.h2c_upgrade = Some(id);
        } else if st == 101 && headers.get("upgrade").is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        {
            self.ws_upgrade = Some(Default::default());
        }
        (state, Some(id))
    }

    fn finish_response(&mut self, id: Option<u64>, out: &mut Vec<AppRecord>) {
        if let Some(t) = id.and_then(|id| self.tx_mut(id)) {
            t.resp_done = true;
        }
        self.emit_ready(out, false);
    }

    /// The request of `id` is complete (headers and body): its side is inspected now, at the
    /// packet that completed it, as Suricata does.
    /// A request line or header line still unterminated past [`FIELD_LIMIT`] bytes: libhtp
    /// ends the request side with `REQUEST_FIELD_TOO_LONG`; the lines that did end make the
    /// transaction, inspected now.
    fn check_request_field(&mut self, out: &mut Vec<AppRecord>) {
        let buf = &self.sides[0].buf;
        let start = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        let line_start = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1).max(start);
        if buf.len() - line_start <= FIELD_LIMIT {
            return;
        }
        let buf = std::mem::take(&mut self.sides[0].buf);
        // the complete lines; a request line that is itself too long, cut at the limit
        let block = if line_start > start { &buf[start..line_start] } else { &buf[start..start + FIELD_LIMIT] };
        let (_, id) = self.on_request(block, out);
        if let Some(t) = id.and_then(|id| self.tx_mut(id)) {
            t.data.request_field_too_long = true;
        }
        out.push(AppRecord::Anomaly {
            proto: AppProto::Http,
            event: "REQUEST_FIELD_TOO_LONG",
            dir: Direction::ToServer,
        });
        self.sides[0].cur_tx = id;
        self.sides[0].state = State::Stop;
        self.finish_request(id, out);
    }

    fn finish_request(&mut self, id: Option<u64>, out: &mut Vec<AppRecord>) {
        if let Some(t) = id.and_then(|id| self.tx_mut(id))
            && !t.emitted
            && !t.data.request_inspected
        {
            t.data.request_inspected = true;
            let mut http = t.http.clone();
            http.length = Some(0);
            out.push(AppRecord::HttpRequest { tx_id: t.id, http: Box::new(http) });
        }
    }

    fn count_body(&mut self, dir: Direction, id: Option<u64>, data: &[u8]) {
        let Some(t) = id.and_then(|id| self.tx_mut(id)) else { return };
        let body = if dir == Direction::ToClient {
            t.body_len += data.len() as u64;
            &mut t.data.response_body
        } else {
            t.req_body_len += data.len() as u64;
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
                State::Stop => {
                    // the first bytes of the WebSocket connection (kept up to a frame's payload)
                    if let Some(after) = self.ws_upgrade.as_mut() {
                        let room = super::websocket::MAX_PAYLOAD.saturating_sub(after[d].len());
                        after[d].extend_from_slice(&rest[..rest.len().min(room)]);
                    }
                    return input.len();
                }
                State::Desync => {
                    let starts = match dir {
                        Direction::ToServer => http_request_start(rest) == Probe::Match(AppProto::Http),
                        Direction::ToClient => response_start(rest) == ResponseStart::Status,
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
                    if dir == Direction::ToClient {
                        match response_start(rest) {
                            ResponseStart::Wait => return pos,
                            ResponseStart::Skip(n) => {
                                pos += n;
                                continue;
                            }
                            ResponseStart::Status => {}
                            ResponseStart::Body => {
                                // No status line: libhtp reads the answer to the oldest waiting
                                // request as a body until the connection closes (HTTP/0.9 style).
                                let id = self.txs.iter_mut().find(|t| !t.resp_started && !t.emitted).map(|t| {
                                    t.resp_started = true;
                                    t.id
                                });
                                self.sides[d].cur_tx = id;
                                self.sides[d].state = if id.is_some() { State::UntilClose } else { State::Desync };
                                continue;
                            }
                        }
                    }
                    if dir == Direction::ToServer {
                        if http_request_start(rest) == Probe::NoMatch {
                            match missing_protocol_request(rest) {
                                // Not known yet whether the line is followed by headers.
                                None => return pos,
                                Some(true) => {
                                    // libhtp: a request line of one word followed by header
                                    // lines is a request of an unknown method without protocol.
                                    let Some(end) = header_block_end(rest) else {
                                        return pos;
                                    };
                                    out.push(AppRecord::Anomaly {
                                        proto: AppProto::Http,
                                        event: "REQUEST_LINE_UNKNOWN_METHOD",
                                        dir,
                                    });
                                    out.push(AppRecord::Anomaly {
                                        proto: AppProto::Http,
                                        event: "REQUEST_LINE_MISSING_PROTOCOL",
                                        dir,
                                    });
                                    let (st, id) = self.on_request(&rest[..end], out);
                                    pos += end;
                                    self.sides[d].cur_tx = id;
                                    self.sides[d].state = st;
                                    if st == State::Headers {
                                        self.finish_request(id, out);
                                    }
                                    continue;
                                }
                                Some(false) => {}
                            }
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
                                if st == State::Headers {
                                    self.finish_request(id, out);
                                }
                                continue;
                            }
                        }
                    }
                    let (end, (st, id)) = match dir {
                        Direction::ToServer => {
                            let Some(end) = header_block_end(rest) else {
                                return pos;
                            };
                            (end, self.on_request(&rest[..end], out))
                        }
                        Direction::ToClient => {
                            let Some((end, status_line, lines, hstart)) = parse_response_head(rest) else {
                                return pos;
                            };
                            let r = self.on_response(status_line, &lines, out);
                            if let Some(t) = r.1.and_then(|id| self.tx_mut(id)) {
                                t.data.response_headers_raw = raw_headers(&rest[hstart..end]);
                            }
                            (end, r)
                        }
                    };
                    pos += end;
                    self.sides[d].cur_tx = id;
                    self.sides[d].state = st;
                    if dir == Direction::ToClient && id.is_some() && st == State::Headers {
                        self.finish_response(id, out);
                    }
                    if dir == Direction::ToServer && st == State::Headers {
                        self.finish_request(id, out);
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
                        } else {
                            self.finish_request(self.sides[d].cur_tx, out);
                        }
                    } else {
                        self.sides[d].state = State::Length(n - take);
                    }
                }
                State::ChunkSize => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if dir == Direction::ToClient && chunk_length(rest).is_none() {
                            // already not a chunk length: the body until close (see below)
                            self.sides[d].state = State::UntilClose;
                            continue;
                        }
                        return if rest.len() > 1024 {
                            self.sides[d].state = State::Desync;
                            input.len()
                        } else {
                            pos
                        };
                    };
                    match chunk_length(&rest[..nl]) {
                        Some(None) => pos += nl + 1,
                        Some(Some(0)) => {
                            pos += nl + 1;
                            self.sides[d].state = State::Trailers;
                        }
                        Some(Some(n)) => {
                            pos += nl + 1;
                            self.sides[d].state = State::ChunkData(n);
                        }
                        // libhtp: a response whose chunk length is invalid is read as a body until
                        // the connection closes, from the start of that line
                        None if dir == Direction::ToClient => self.sides[d].state = State::UntilClose,
                        None => {
                            pos += nl + 1;
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
                        } else {
                            self.finish_request(self.sides[d].cur_tx, out);
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
                    if dir == Direction::ToServer && self.sides[d].state == State::Headers {
                        self.check_request_field(out);
                    }
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
            if dir == Direction::ToServer && self.sides[d].state == State::Headers {
                self.check_request_field(out);
            }
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
            // Between requests (nothing buffered): libhtp parses what follows as the next
            // request, whatever it is.
            State::Headers if dir == Direction::ToServer && self.sides[d].buf.is_empty() => {}
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
        // A response whose header block never ended: the status line and the header lines that
        // did end are the response (libhtp).
        if self.sides[1].state == State::Headers && !self.sides[1].buf.is_empty() {
            let mut buf = std::mem::take(&mut self.sides[1].buf);
            let start = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            let head = &buf[start..];
            let lead = head.iter().take_while(|&&b| is_space_or_nul(b)).count();
            if head.len() >= lead + 4 && head[lead..lead + 4].eq_ignore_ascii_case(b"http") {
                buf.extend_from_slice(b"\r\n\r\n");
                if let Some((_, status_line, lines, _)) = parse_response_head(&buf[start..]) {
                    let (_, id) = self.on_response(status_line, &lines, out);
                    if let Some(t) = id.and_then(|id| self.tx_mut(id)) {
                        t.resp_done = true;
                    }
                }
            }
        }
        // A request whose header block never ended: libhtp has its request line and the header
        // lines that did end, and logs the transaction.
        if self.sides[0].state == State::Headers && !self.sides[0].buf.is_empty() {
            let buf = std::mem::take(&mut self.sides[0].buf);
            let start = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            let rest = &buf[start..];
            if let Some(end) = rest.iter().rposition(|&b| b == b'\n')
                && http_request_start(rest) == Probe::Match(AppProto::Http)
            {
                let mut block = rest[..end + 1].to_vec();
                block.extend_from_slice(b"\r\n");
                let (_, id) = self.on_request(&block, out);
                self.sides[0].cur_tx = id;
            }
        }
        if self.sides[1].state == State::UntilClose {
            self.finish_response(self.sides[1].cur_tx, out);
        }
        self.emit_ready(out, true);
    }

    fn is_done(&self) -> bool {
        self.sides[0].state == State::Stop && self.sides[1].state == State::Stop && self.txs.is_empty()
    }
}

/// Whether `rest` starts with a line of one word (no method libhtp knows) followed by a header
/// line, which libhtp parses as a request with headers (`REQUEST_LINE_MISSING_PROTOCOL`);
/// `None` until both lines are there (at most [`MAX_HEADER_BLOCK`] bytes are waited for).
fn missing_protocol_request(rest: &[u8]) -> Option<bool> {
    let word = |b: &u8| b.is_ascii_graphic();
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        // Only printable text without blanks can still become such a line.
        return if rest.len() < MAX_HEADER_BLOCK && rest.iter().all(word) { None } else { Some(false) };
    };
    let line = trim(&rest[..nl]);
    if line.is_empty() || !line.iter().all(word) {
        return Some(false);
    }
    let next = &rest[nl + 1..];
    let Some(nl2) = next.iter().position(|&b| b == b'\n') else {
        return if rest.len() < MAX_HEADER_BLOCK { None } else { Some(false) };
    };
    let header = trim(&next[..nl2]);
    let name_len = header.iter().position(|&b| b == b':');
    Some(name_len.is_some_and(|n| n > 0 && header[..n].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')))
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
    fn lzma_content_encoding_is_decoded_and_bad_lzma_passes_through() {
        let plain = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*".repeat(3);
        let mut packed = Vec::new();
        lzma_rs::lzma_compress(&mut &plain[..], &mut packed).unwrap();
        assert_eq!(decode_body(b"lzma", &packed).as_deref(), Some(&plain[..]));
        // cut: what decoded is kept
        let cut = decode_body(b"lzma", &packed[..packed.len() - 8]).unwrap_or_default();
        assert!(plain.starts_with(&cut));
        assert_eq!(decode_body(b"lzma", b"not lzma at all"), None);
        assert_eq!(decode_body(b"lzma", b""), None);
    }

    #[test]
    fn request_and_response_split_across_segments() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        let req = b"GET /m HTTP/1.1\r\nHost: 192.168.0.4:8080\r\nUser-Agent: curl/8\r\nReferer: http://a/\r\n\r\n";
        let chunks: Vec<&[u8]> = req.chunks(7).collect();
        for (i, c) in chunks.iter().enumerate() {
            p.on_data(Direction::ToServer, c, &mut out);
            // the request is handed over for inspection when its header block completes
            if i + 1 < chunks.len() {
                assert!(out.is_empty());
            }
        }
        assert!(
            matches!(&out[..], [AppRecord::HttpRequest { tx_id: 0, http }] if http.url.as_deref() == Some("/m")),
            "{out:?}"
        );
        out.clear();
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

    fn files(out: &[AppRecord]) -> Vec<(bool, serde_json::Value)> {
        out.iter().filter_map(|r| r.as_log("fileinfo").map(|l| (l.to_client, l.fields["fileinfo"].clone()))).collect()
    }

    #[test]
    fn bodies_are_logged_as_fileinfo_records_with_their_transaction() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        // a POST with a plain body and an answer with a body: two files
        p.on_data(
            Direction::ToServer,
            b"POST /up?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdef",
            &mut out,
        );
        p.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz", &mut out);
        let f = files(&out);
        let file = |name: &str, state: &str, size: u64, tx: u64| serde_json::json!({"filename": name, "gaps": false, "state": state, "stored": false, "size": size, "tx_id": tx});
        assert_eq!(f, vec![(false, file("/up", "CLOSED", 6, 0)), (true, file("/up", "CLOSED", 3, 0))]);
        // the file record carries its transaction's http object and protocol
        let Some(AppRecord::Log(l)) = out.iter().find(|r| matches!(r, AppRecord::Log(_))) else { panic!("{out:?}") };
        assert_eq!((l.fields["http"]["url"].as_str(), l.fields["app_proto"].as_str()), (Some("/up?x=1"), Some("http")));
        out.clear();
        // a multipart request body names no file; a body without content: no file; a
        // response cut by the end of the flow: truncated
        p.on_data(
            Direction::ToServer,
            b"POST /w HTTP/1.1\r\nContent-Type: multipart/encrypted; boundary=b\r\nContent-Length: 2\r\n\r\nzz",
            &mut out,
        );
        p.on_data(Direction::ToClient, b"HTTP/1.1 204 No Content\r\n\r\n", &mut out);
        p.on_data(Direction::ToServer, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n1234", &mut out);
        p.on_close(&mut out);
        assert_eq!(files(&out), vec![(true, file("/big", "TRUNCATED", 4, 2))]);
        // a Content-Disposition names the file
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"GET /dl?id=1 HTTP/1.1\r\nHost: a\r\n\r\n", &mut out);
        p.on_data(
            Direction::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"eicar.txt\"\r\nContent-Length: 2\r\n\r\nab",
            &mut out,
        );
        assert_eq!(files(&out), vec![(true, file("eicar.txt", "CLOSED", 2, 0))]);
    }

    #[test]
    fn request_with_body_is_handed_over_for_inspection_once_the_body_is_complete() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc", &mut out);
        assert!(out.is_empty());
        p.on_data(Direction::ToServer, b"def", &mut out);
        assert!(matches!(&out[..], [AppRecord::HttpRequest { tx_id: 0, .. }]), "{out:?}");
        assert_eq!(
            p.tx_data(0).map(|d| (d.request_inspected, d.request_body.as_slice())),
            Some((true, &b"abcdef"[..]))
        );
        out.clear();
        p.on_data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &mut out);
        assert_eq!(https(&out).len(), 1);
        assert!(!out.iter().any(|r| matches!(r, AppRecord::HttpRequest { .. })));
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
    fn a_response_content_length_with_data_after_its_number_reads_the_body_until_close() {
        for cl in ["34 68", "34\r\n 68", "34( 68)"] {
            let mut p = HttpParser::new();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, b"GET /e HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
            let head = format!("HTTP/1.1 200 ok\r\nConnection: close\r\nContent-length: {cl}\r\n\r\n");
            p.on_data(Direction::ToClient, head.as_bytes(), &mut out);
            p.on_data(Direction::ToClient, &[b'x'; 68], &mut out);
            p.on_close(&mut out);
            let h = https(&out);
            assert_eq!(h.len(), 1, "{cl}");
            assert_eq!(h[0].1.length, Some(68), "{cl}");
        }
        // whitespace after the number is fine
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"GET /e HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
        p.on_data(
            Direction::ToClient,
            b"HTTP/1.1 200 ok\r\nContent-length: 3 \r\n\r\nabcHTTP/1.1 200 ok\r\n\r\n",
            &mut out,
        );
        p.on_close(&mut out);
        assert_eq!(https(&out)[0].1.length, Some(3));
    }

    #[test]
    fn a_header_line_past_the_field_limit_ends_the_request_side_with_an_inspected_transaction() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"GET /index.html HTTP/1.1\r\nHost: a", &mut out);
        let long = vec![b'x'; 4000];
        for _ in 0..4 {
            p.on_data(Direction::ToServer, &long, &mut out);
        }
        // 16,000 bytes of the line so far: still waiting
        assert!(out.is_empty(), "{out:?}");
        p.on_data(Direction::ToServer, &long, &mut out);
        assert!(out.iter().any(|r| matches!(r, AppRecord::Anomaly { event: "REQUEST_FIELD_TOO_LONG", .. })));
        let inspected: Vec<_> = out
            .iter()
            .filter_map(|r| if let AppRecord::HttpRequest { tx_id, http } = r { Some((*tx_id, http)) } else { None })
            .collect();
        assert_eq!(inspected.len(), 1);
        assert_eq!(inspected[0].1.url.as_deref(), Some("/index.html"));
        assert!(p.tx_data(inspected[0].0).is_some_and(|d| d.request_field_too_long));
        // the request side is over; the response is still read
        p.on_data(Direction::ToServer, b"\r\n\r\nGET /x HTTP/1.1\r\n\r\n", &mut out);
        p.on_data(Direction::ToClient, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", &mut out);
        p.on_close(&mut out);
        let h = https(&out);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].1.status, Some(400));
    }

    #[test]
    fn after_a_gap_between_messages_a_one_word_line_with_headers_is_a_request() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        // The start of a request was lost; its last header line's tail comes first (libhtp:
        // a request of an unknown method without protocol, with the headers that follow).
        p.on_gap(Direction::ToServer, 2836, &mut out);
        p.on_data(Direction::ToServer, b"oGpX9CDVvBLeUjFNWEQ=\r\nUser-Agent: Microsoft WinRM Client\r\n", &mut out);
        p.on_data(Direction::ToServer, b"Content-Length: 0\r\nHost: newyork:5985\r\n\r\n", &mut out);
        p.on_data(Direction::ToServer, b"POST /wsman HTTP/1.1\r\nHost: newyork\r\n\r\n", &mut out);
        let events: Vec<&str> = out
            .iter()
            .filter_map(|r| if let AppRecord::Anomaly { event, .. } = r { Some(*event) } else { None })
            .collect();
        assert_eq!(events, ["REQUEST_LINE_UNKNOWN_METHOD", "REQUEST_LINE_MISSING_PROTOCOL"]);
        p.on_close(&mut out);
        let h = https(&out);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].1.http_method.as_deref(), Some("oGpX9CDVvBLeUjFNWEQ="));
        assert_eq!(h[0].1.http_user_agent.as_deref(), Some("Microsoft WinRM Client"));
        assert_eq!(h[0].1.hostname.as_deref(), Some("newyork"));
        assert_eq!(h[1].1.url.as_deref(), Some("/wsman"));
    }

    #[test]
    fn a_one_word_line_without_headers_after_it_is_still_invalid() {
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"garbage\r\nmore garbage\r\n\r\n", &mut out);
        assert!(out.iter().any(|r| matches!(r, AppRecord::Anomaly { event: "REQUEST_LINE_INVALID", .. })));
        // Binary data is not waited for.
        let mut p = HttpParser::new();
        let mut out = Vec::new();
        p.on_data(Direction::ToServer, b"\x16\x03\x01\x00", &mut out);
        assert!(out.iter().any(|r| matches!(r, AppRecord::Anomaly { event: "REQUEST_LINE_INVALID", .. })));
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
    fn evasions_libhtp_reads_through() {
        let resp = |r: &[u8]| {
            let mut p = HttpParser::new();
            let mut out = Vec::new();
            p.on_data(Direction::ToServer, b"GET /e HTTP/1.1\r\nHost: h\r\n\r\n", &mut out);
            p.on_data(Direction::ToClient, r, &mut out);
            p.on_close(&mut out);
            let d = p.tx_data(0).cloned().unwrap_or_default();
            let body = d
                .response_content_encoding
                .as_deref()
                .and_then(|ce| decode_body(ce, &d.response_body))
                .unwrap_or(d.response_body.clone());
            (https(&out), body, d)
        };
        // chunk lengths with junk after the hex digits
        let (_, body, _) =
            resp(b"HTTP/1.1 200 ok\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n2,\r\nde\r\n0\r\n\r\n");
        assert_eq!(body, b"abcde");
        // chunked announced, the body is not: read until close from the bad chunk line
        let (_, body, _) = resp(b"HTTP/1.0 200 ok\r\nTransfer-Encoding: chunked\r\n\r\nplain body");
        assert_eq!(body, b"plain body");
        // folded Transfer-Encoding; repeated Content-Encoding, gzip data behind "deflate"
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"secret").unwrap_or_default();
        let gz = gz.finish().unwrap_or_default();
        let mut r = format!(
            "HTTP/1.1 200 ok\r\nContent-Length: {}\r\nContent-Encoding: x\r\nContent-Encoding:\r\n deflate\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        r.extend_from_slice(&gz);
        let (_, body, d) = resp(&r);
        assert_eq!(body, b"secret");
        assert_eq!(d.response_content_encoding.as_deref(), Some(&b"x, deflate"[..]));
        // a lone CR ends the status line; a status code with junk after its digits
        let (h, _, d) = resp(b"HTTP/1.1 200\x00 ok\rX-A: 1\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(h[0].1.status, Some(200));
        assert_eq!(d.response_headers[0], (b"X-A".to_vec(), b"1".to_vec()));
        assert_eq!(d.response_headers_raw, b"X-A: 1\r\nContent-Length: 2\r\n");
        // no status line at all: the answer is a body until close
        let (_, body, _) = resp(b"just data");
        assert_eq!(body, b"just data");
        // a response whose headers never end is still a response at close
        let (h, _, _) = resp(b"HTTP/1.1 404 Not Found\r\nServer: x");
        assert_eq!(h[0].1.status, Some(404));
    }

    #[test]
    fn uri_normalization_as_libhtp() {
        let n = |u: &str| String::from_utf8_lossy(&normalize_uri(u.as_bytes())).into_owned();
        assert_eq!(n("/normalized%20uri"), "/normalized uri");
        assert_eq!(n("/../a/b/../c/./d.html"), "/a/c/d.html");
        assert_eq!(n("/a\\b/%2e%2e/c?x=%20y#f%21"), "/a/c?x= y#f!", "query and fragment decoded");
        assert_eq!(n("/p?a=%zz+%41"), "/p?a=%zz+A", "query: an invalid escape and '+' kept");
        assert_eq!(n("http://Host:8080/p%41th?q"), "/pAth?q");
        assert_eq!(n("/%u0041%zz"), "/A%zz", "%u decoded, an invalid escape kept");
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
