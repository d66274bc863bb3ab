//! SIP (RFC 3261) messages, over UDP (one message per datagram) or TCP (a message at the start
//! of a segment): the request or status line and the headers the `sip.*` keywords inspect.
//!
//! A message is recognised as Suricata's SIP probe does: a request line whose method is a SIP
//! method and whose version is `SIP/2.0`, or a status line starting `SIP/2.0 `.

/// Ports SIP is looked for on (Suricata's default `app-layer.protocols.sip` ports).
pub const PORTS: [u16; 2] = [5060, 5061];

const METHODS: &[&[u8]] = &[
    b"INVITE",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"REGISTER",
    b"OPTIONS",
    b"PRACK",
    b"SUBSCRIBE",
    b"NOTIFY",
    b"PUBLISH",
    b"INFO",
    b"REFER",
    b"MESSAGE",
    b"UPDATE",
];

/// One parsed SIP message; every field borrows from the message bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SipMessage<'a> {
    /// The request line or the status line, without its line ending.
    pub first_line: &'a [u8],
    /// Request: method and URI.
    pub method: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    /// `SIP/2.0` (both directions).
    pub protocol: &'a [u8],
    /// Response: status code and reason phrase.
    pub stat_code: Option<&'a [u8]>,
    pub stat_msg: Option<&'a [u8]>,
    /// Header values (whitespace-trimmed), compact names expanded: `(lower-case name, value)`.
    pub headers: Vec<(&'static str, &'a [u8])>,
    /// Frames (Suricata's `sip.pdu`, `*.line`, `*.headers`, `*.body`): the whole message, the
    /// first line with its line ending, the header lines with theirs (without the empty line),
    /// and the body (`Content-Length` bytes, or the rest of the data without one).
    pub pdu: &'a [u8],
    pub line_frame: &'a [u8],
    pub headers_frame: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> SipMessage<'a> {
    pub fn is_request(&self) -> bool {
        self.method.is_some()
    }

    /// The values of one header (its canonical lower-case name).
    pub fn header<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers.iter().filter(move |(n, _)| *n == name).map(|(_, v)| *v)
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', r @ ..] = v {
        v = r;
    }
    while let [r @ .., b' ' | b'\t'] = v {
        v = r;
    }
    v
}

/// The next line (without CR LF) and what follows it; `None` without a line ending.
fn line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = memchr::memchr(b'\n', data)?;
    let l = &data[..nl];
    Some((l.strip_suffix(b"\r").unwrap_or(l), &data[nl + 1..]))
}

/// The canonical name of the headers the keywords use (compact forms included).
fn canonical(name: &[u8]) -> Option<&'static str> {
    const NAMES: &[(&str, &str)] = &[
        ("from", "from"),
        ("f", "from"),
        ("to", "to"),
        ("t", "to"),
        ("via", "via"),
        ("v", "via"),
        ("content-type", "content-type"),
        ("c", "content-type"),
        ("content-length", "content-length"),
        ("l", "content-length"),
        ("user-agent", "user-agent"),
        ("server", "server"),
    ];
    NAMES.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

/// Parses the message at the start of `data`; `None` when it is not SIP.
pub fn parse(data: &[u8]) -> Option<SipMessage<'_>> {
    let (first, mut rest) = line(data)?;
    let line_len = data.len() - rest.len();
    let mut msg = SipMessage { first_line: first, line_frame: &data[..line_len], ..Default::default() };
    if let Some(status) = first.strip_prefix(b"SIP/2.0 ") {
        msg.protocol = &first[..7];
        let mut parts = status.splitn(2, |&c| c == b' ');
        let code = parts.next().filter(|c| c.len() == 3 && c.iter().all(u8::is_ascii_digit))?;
        msg.stat_code = Some(code);
        msg.stat_msg = Some(parts.next().unwrap_or_default());
    } else {
        let mut parts = first.split(|&c| c == b' ');
        let method = parts.next().filter(|m| METHODS.contains(m))?;
        let uri = parts.next().filter(|u| !u.is_empty())?;
        let proto = parts.next().filter(|p| *p == b"SIP/2.0")?;
        if parts.next().is_some() {
            return None;
        }
        (msg.method, msg.uri, msg.protocol) = (Some(method), Some(uri), proto);
    }
    let mut headers_end = line_len;
    while let Some((l, r)) = line(rest) {
        rest = r;
        if l.is_empty() {
            break;
        }
        headers_end = data.len() - rest.len();
        let Some(colon) = memchr::memchr(b':', l) else { continue };
        if let Some(name) = canonical(trim(&l[..colon])) {
            msg.headers.push((name, trim(&l[colon + 1..])));
        }
    }
    msg.headers_frame = &data[line_len..headers_end];
    let body_len = msg
        .header("content-length")
        .next()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(rest.len(), |n| n.min(rest.len()));
    msg.body = &rest[..body_len];
    msg.pdu = &data[..data.len() - rest.len() + body_len];
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_with_compact_headers() {
        let m = parse(b"INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nf: <sip:a@x>\r\nTo:  <sip:bob@x> \r\nc: application/sdp\r\n\r\nv=0\r\n").unwrap();
        assert_eq!((m.method, m.uri, m.protocol), (Some(&b"INVITE"[..]), Some(&b"sip:bob@x"[..]), &b"SIP/2.0"[..]));
        assert_eq!(m.first_line, b"INVITE sip:bob@x SIP/2.0");
        assert_eq!(m.header("from").collect::<Vec<_>>(), vec![&b"<sip:a@x>"[..]]);
        assert_eq!(m.header("to").collect::<Vec<_>>(), vec![&b"<sip:bob@x>"[..]]);
        assert_eq!(m.header("content-type").collect::<Vec<_>>(), vec![&b"application/sdp"[..]]);
        // the body is not read as headers
        assert_eq!(m.header("via").count(), 1);
        assert_eq!(m.line_frame, b"INVITE sip:bob@x SIP/2.0\r\n");
        assert!(m.headers_frame.starts_with(b"Via:") && m.headers_frame.ends_with(b"sdp\r\n"));
        assert_eq!(m.body, b"v=0\r\n");
    }

    #[test]
    fn parses_a_response() {
        let m = parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h\r\nl: 2\r\n\r\nabcd").unwrap();
        assert_eq!((m.body, m.pdu.len()), (&b"ab"[..], 46));
        assert!(!m.is_request());
        assert_eq!((m.stat_code, m.stat_msg, m.protocol), (Some(&b"200"[..]), Some(&b"OK"[..]), &b"SIP/2.0"[..]));
    }

    #[test]
    fn other_protocols_and_truncated_lines_are_not_sip() {
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
        assert!(parse(b"INVITE sip:x SIP/2.0").is_none());
        assert!(parse(b"SIP/2.0 2x0 OK\r\n").is_none());
        assert!(parse(b"INVITE sip:x HTTP/1.1\r\n").is_none());
        assert!(parse(b"").is_none());
        assert!(parse(b"\r\n").is_none());
    }
}
