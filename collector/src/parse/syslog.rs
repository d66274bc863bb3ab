//! Syslog: RFC 5424 and RFC 3164 (BSD) messages, and what real senders make of them.
//!
//! * RFC 5424: `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`, structured
//!   data with `\"`, `\\`, `\]` escapes kept as a map (`fields.structured_data`), a UTF-8 BOM
//!   before MSG removed. A message that announces a version and then breaks the grammar is an
//!   error (a dead letter); one that leaves the SD field out entirely is accepted.
//! * RFC 3164 and its dialects: PRI optional (lines from files), `Mmm dd hh:mm:ss` resolved
//!   against the receive time (see [`ParseContext::received`]), with a year, fractions and a
//!   zone as some devices write them, ISO 8601 timestamps (rsyslog's high-precision format),
//!   hostname optional, `program[pid]:` tag, Cisco IOS sequence numbers and `%FAC-SEV-MNEMONIC`
//!   message ids, Cisco ASA. Nothing after a valid PRI makes a 3164 message invalid: what has
//!   no recognizable header is the message.

use super::{ParseContext, ParseError, add_received, fill_log_event, log_event, lossy, timefmt};
use serde_json::{Map, Value};
use soc_model::{Event, Log, LogSource, Timestamp};

/// Facility names, by code (RFC 5424 table 1, names as syslog implementations write them).
pub const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names, by code (RFC 5424 table 2).
pub const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// Name of a facility code (0..=23).
pub fn facility_name(code: u8) -> Option<&'static str> {
    FACILITIES.get(code as usize).copied()
}

/// Name of a severity code (0..=7).
pub fn severity_name(code: u8) -> Option<&'static str> {
    SEVERITIES.get(code as usize).copied()
}

/// Which grammar a message followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    Rfc3164,
    Rfc5424,
}

impl SyslogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            SyslogFormat::Rfc3164 => "rfc3164",
            SyslogFormat::Rfc5424 => "rfc5424",
        }
    }
}

/// A parsed syslog message, before normalization into a [`Log`].
#[derive(Clone, Debug, PartialEq)]
pub struct SyslogMessage {
    pub format: SyslogFormat,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    /// RFC 5424 VERSION.
    pub version: Option<u32>,
    pub timestamp: Option<Timestamp>,
    pub hostname: Option<String>,
    /// RFC 5424 APP-NAME, or the RFC 3164 tag's program.
    pub app_name: Option<String>,
    /// RFC 5424 PROCID, or the RFC 3164 tag's `[pid]`.
    pub procid: Option<String>,
    pub msgid: Option<String>,
    /// SD-ID -> { PARAM-NAME -> value (or array of values when a name repeats) }.
    pub structured_data: Map<String, Value>,
    pub message: String,
    /// Dialect extras: Cisco sequence number and message id parts.
    pub extra: Map<String, Value>,
}

impl SyslogMessage {
    fn new(format: SyslogFormat) -> Self {
        SyslogMessage {
            format,
            facility: None,
            severity: None,
            version: None,
            timestamp: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            structured_data: Map::new(),
            message: String::new(),
            extra: Map::new(),
        }
    }
}

/// Trailing line terminators and NULs that framing leaves behind.
fn strip_line_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if matches!(last, b'\n' | b'\r' | 0) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Parses one syslog message. `reference` resolves year-less timestamps; `local_offset_secs` is
/// the zone of timestamps written without one.
pub fn parse_message(line: &[u8], reference: Timestamp, local_offset_secs: i32) -> Result<SyslogMessage, ParseError> {
    let line = strip_line_end(line);
    let start = line.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0)).unwrap_or(line.len());
    let line = &line[start..];
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (pri, rest) = match line.first() {
        Some(b'<') => {
            let (p, rest) = parse_pri(line)?;
            (Some(p), rest)
        }
        _ => (None, line),
    };
    let mut msg = if let Some(version) = rfc5424_version(rest).filter(|_| pri.is_some()) {
        parse_5424(version.0, &rest[version.1..])?
    } else {
        parse_3164(rest, reference, local_offset_secs)
    };
    if let Some(p) = pri {
        msg.facility = Some(p / 8);
        msg.severity = Some(p % 8);
    }
    Ok(msg)
}

/// `<PRI>`: 1 to 3 digits, 0..=191.
fn parse_pri(line: &[u8]) -> Result<(u8, &[u8]), ParseError> {
    let shown = || lossy(&line[..line.len().min(8)]);
    let close = line
        .iter()
        .take(6)
        .position(|c| *c == b'>')
        .ok_or_else(|| ParseError::Pri(format!("no closing '>' in {:?}", shown())))?;
    let digits = &line[1..close];
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Pri(format!("{:?} is not a number", lossy(digits))));
    }
    let v: u32 = digits.iter().fold(0, |a, d| a * 10 + (d - b'0') as u32);
    if v > 191 {
        return Err(ParseError::Pri(format!("{v} is out of range (0..=191)")));
    }
    Ok((v as u8, &line[close + 1..]))
}

/// `VERSION SP` right after the PRI: 1-2 digits, not starting with 0.
fn rfc5424_version(rest: &[u8]) -> Option<(u32, usize)> {
    let n = rest.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
    if (1..=2).contains(&n) && rest[0] != b'0' && rest.get(n) == Some(&b' ') {
        let v = rest[..n].iter().fold(0u32, |a, d| a * 10 + (d - b'0') as u32);
        Some((v, n + 1))
    } else {
        None
    }
}

/// A cursor over a header of space-separated fields.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    /// The next space-delimited token (extra spaces before it are tolerated).
    fn token(&mut self) -> Option<&'a [u8]> {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b' ' {
                break;
            }
            self.i += 1;
        }
        if self.i == start { None } else { Some(&self.b[start..self.i]) }
    }
}

fn nil_or(tok: &[u8]) -> Option<String> {
    if tok == b"-" { None } else { Some(lossy(tok)) }
}

fn parse_5424(version: u32, rest: &[u8]) -> Result<SyslogMessage, ParseError> {
    let err = |what: &str| ParseError::Rfc5424(what.to_string());
    let mut m = SyslogMessage::new(SyslogFormat::Rfc5424);
    m.version = Some(version);
    let mut c = Cursor { b: rest, i: 0 };
    let ts = c.token().ok_or_else(|| err("missing TIMESTAMP"))?;
    if ts != b"-" {
        let text = std::str::from_utf8(ts).map_err(|_| err("TIMESTAMP is not text"))?;
        m.timestamp =
            Some(text.parse::<Timestamp>().map_err(|_| ParseError::Rfc5424(format!("invalid TIMESTAMP {text:?}")))?);
    }
    m.hostname = nil_or(c.token().ok_or_else(|| err("missing HOSTNAME"))?);
    m.app_name = nil_or(c.token().ok_or_else(|| err("missing APP-NAME"))?);
    m.procid = nil_or(c.token().ok_or_else(|| err("missing PROCID"))?);
    m.msgid = nil_or(c.token().ok_or_else(|| err("missing MSGID"))?);
    while c.peek() == Some(b' ') {
        c.i += 1;
    }
    let sd_start = c.i;
    match c.peek() {
        None => {}
        Some(b'-') if matches!(c.b.get(c.i + 1), None | Some(b' ')) => {
            c.i += 1;
        }
        Some(b'[') => {
            parse_structured_data(&mut c, &mut m.structured_data)?;
        }
        // No SD field at all (a common sender bug): the rest is the message.
        Some(_) => {}
    }
    let mut msg = c.rest();
    if c.i > sd_start && msg.first() == Some(&b' ') {
        msg = &msg[1..];
    }
    if let Some(stripped) = msg.strip_prefix(b"\xEF\xBB\xBF") {
        msg = stripped;
    }
    m.message = lossy(msg);
    Ok(m)
}

/// One or more `[SD-ID PARAM="VALUE" ...]` elements at the cursor.
fn parse_structured_data(c: &mut Cursor<'_>, out: &mut Map<String, Value>) -> Result<(), ParseError> {
    let err = |at: usize, what: &str| ParseError::Rfc5424(format!("malformed STRUCTURED-DATA at byte {at}: {what}"));
    while c.peek() == Some(b'[') {
        c.i += 1;
        let id_start = c.i;
        while let Some(ch) = c.peek() {
            if matches!(ch, b' ' | b']' | b'=' | b'"') {
                break;
            }
            c.i += 1;
        }
        if c.i == id_start {
            return Err(err(c.i, "empty SD-ID"));
        }
        let id = lossy(&c.b[id_start..c.i]);
        let mut params = match out.remove(&id) {
            Some(Value::Object(p)) => p,
            _ => Map::new(),
        };
        loop {
            match c.peek() {
                Some(b']') => {
                    c.i += 1;
                    break;
                }
                Some(b' ') => {
                    while c.peek() == Some(b' ') {
                        c.i += 1;
                    }
                    if c.peek() == Some(b']') {
                        continue;
                    }
                    let name_start = c.i;
                    while let Some(ch) = c.peek() {
                        if matches!(ch, b' ' | b']' | b'=' | b'"') {
                            break;
                        }
                        c.i += 1;
                    }
                    if c.i == name_start {
                        return Err(err(c.i, "empty PARAM-NAME"));
                    }
                    let name = lossy(&c.b[name_start..c.i]);
                    if c.peek() != Some(b'=') {
                        return Err(err(c.i, "expected '=' after PARAM-NAME"));
                    }
                    c.i += 1;
                    if c.peek() != Some(b'"') {
                        return Err(err(c.i, "expected '\"' to open PARAM-VALUE"));
                    }
                    c.i += 1;
                    let mut value = Vec::new();
                    loop {
                        match c.peek() {
                            None => return Err(err(c.i, "unterminated PARAM-VALUE")),
                            Some(b'"') => {
                                c.i += 1;
                                break;
                            }
                            Some(b'\\') => {
                                match c.b.get(c.i + 1) {
                                    Some(e @ (b'"' | b'\\' | b']')) => {
                                        value.push(*e);
                                        c.i += 2;
                                    }
                                    // Any other backslash is kept as written (RFC 5424 6.3.3).
                                    _ => {
                                        value.push(b'\\');
                                        c.i += 1;
                                    }
                                }
                            }
                            Some(ch) => {
                                value.push(ch);
                                c.i += 1;
                            }
                        }
                    }
                    let value = Value::String(lossy(&value));
                    match params.get_mut(&name) {
                        None => {
                            params.insert(name, value);
                        }
                        Some(Value::Array(a)) => a.push(value),
                        Some(prev) => {
                            let first = prev.take();
                            *prev = Value::Array(vec![first, value]);
                        }
                    }
                }
                None => return Err(err(c.i, "unterminated SD-ELEMENT")),
                Some(_) => return Err(err(c.i, "expected ' ' or ']'")),
            }
        }
        out.insert(id, Value::Object(params));
    }
    Ok(())
}

/// Cisco IOS sequence number: `000123: `.
fn cisco_sequence(b: &[u8]) -> Option<(u64, usize)> {
    let n = b.iter().take(11).take_while(|c| c.is_ascii_digit()).count();
    if (1..=10).contains(&n) && b.get(n) == Some(&b':') && b.get(n + 1) == Some(&b' ') {
        let v = b[..n].iter().fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
        Some((v, n + 2))
    } else {
        None
    }
}

/// A timestamp at the start of `b` in any form RFC 3164 senders use; returns it and the bytes
/// consumed (including a Cisco `*`/`.` clock marker and a trailing `:`).
fn timestamp_3164(b: &[u8], reference: Timestamp, offset: i32) -> Option<(Timestamp, usize)> {
    let marker = usize::from(matches!(b.first(), Some(b'*') | Some(b'.')));
    let t = b.get(marker..)?;
    let (ts, mut n) = if t.len() >= 19 && t[..4].iter().all(u8::is_ascii_digit) && t[4] == b'-' {
        let end = t.iter().position(|c| *c == b' ').unwrap_or(t.len());
        let tok = &t[..end];
        let tok = tok.strip_suffix(b":").unwrap_or(tok);
        let ts = timefmt::parse_iso(std::str::from_utf8(tok).ok()?, offset)?;
        (ts, tok.len())
    } else {
        timefmt::parse_bsd(t, reference, offset)?
    };
    if t.get(n) == Some(&b':') {
        n += 1;
    }
    match t.get(n) {
        None | Some(b' ') => Some((ts, marker + n)),
        _ => None,
    }
}

/// An RFC 3164 tag: program, pid, bytes consumed.
type Tag<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// `program[pid]:` / `program:` / `program[pid]` at the start of `b`.
fn tag(b: &[u8]) -> Option<Tag<'_>> {
    let end = b.iter().take(65).position(|c| matches!(c, b'[' | b':' | b' '))?;
    if end == 0 || b[0] == b'%' {
        return None;
    }
    let program = &b[..end];
    match b[end] {
        b':' => Some((program, None, end + 1)),
        b'[' => {
            let close = b[end + 1..].iter().take(33).position(|c| *c == b']')? + end + 1;
            let pid = &b[end + 1..close];
            if pid.contains(&b' ') {
                return None;
            }
            match b.get(close + 1) {
                Some(b':') => Some((program, Some(pid), close + 2)),
                None | Some(b' ') => Some((program, Some(pid), close + 1)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether a token names a host (and is not a tag or a message word with punctuation).
fn is_hostname(tok: &[u8]) -> bool {
    !tok.is_empty()
        && tok.len() <= 255
        && tok.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'%'))
        && tok.last() != Some(&b':')
}

fn parse_3164(b: &[u8], reference: Timestamp, offset: i32) -> SyslogMessage {
    let mut m = SyslogMessage::new(SyslogFormat::Rfc3164);
    let mut s = b;
    if let Some((seq, n)) = cisco_sequence(s) {
        m.extra.insert("sequence".into(), Value::from(seq));
        s = &s[n..];
        // `36: router1: *Mar  1 ...` (origin-id hostname before the time).
        if timestamp_3164(s, reference, offset).is_none()
            && let Some(colon) = s.iter().take(256).position(|c| *c == b':')
            && is_hostname(&s[..colon])
            && s.get(colon + 1) == Some(&b' ')
            && timestamp_3164(&s[colon + 2..], reference, offset).is_some()
        {
            m.hostname = Some(lossy(&s[..colon]));
            s = &s[colon + 2..];
        }
    }
    if let Some((ts, n)) = timestamp_3164(s, reference, offset) {
        m.timestamp = Some(ts);
        s = &s[n..];
        while s.first() == Some(&b' ') {
            s = &s[1..];
        }
        if m.hostname.is_none() {
            let end = s.iter().position(|c| *c == b' ').unwrap_or(s.len());
            let tok = &s[..end];
            // A tag right after the time means the sender wrote no hostname.
            if is_hostname(tok) && (end < s.len() || tag(tok).is_none()) && !tok.starts_with(b"%") {
                m.hostname = Some(lossy(tok));
                s = &s[end..];
                while s.first() == Some(&b' ') {
                    s = &s[1..];
                }
                // Cisco ASA: `asa01 : %ASA-6-302013: ...`.
                if let Some(r) = s.strip_prefix(b": ") {
                    s = r;
                } else if s == b":" {
                    s = &[];
                }
            }
        }
    }
    if let Some((program, pid, n)) = tag(s) {
        m.app_name = Some(lossy(program));
        m.procid = pid.map(lossy);
        s = &s[n..];
    }
    while s.first() == Some(&b' ') {
        s = &s[1..];
    }
    cisco_message_id(s, &mut m.extra);
    m.message = lossy(s);
    m
}

/// `%FACILITY-SEVERITY-MNEMONIC:` (Cisco IOS, ASA, NX-OS).
fn cisco_message_id(s: &[u8], extra: &mut Map<String, Value>) {
    let Some(body) = s.strip_prefix(b"%") else {
        return;
    };
    let Some(end) = body.iter().take(80).position(|c| *c == b':') else {
        return;
    };
    let id = &body[..end];
    let parts: Vec<&[u8]> = id.split(|c| *c == b'-').collect();
    if parts.len() < 3 {
        return;
    }
    let sev = parts[parts.len() - 2];
    if sev.len() != 1 || !sev[0].is_ascii_digit() {
        return;
    }
    let facility = &id[..id.len() - sev.len() - parts[parts.len() - 1].len() - 2];
    if facility.is_empty() || !facility.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')) {
        return;
    }
    extra.insert("cisco_facility".into(), Value::String(lossy(facility)));
    extra.insert("cisco_severity".into(), Value::from(sev[0] - b'0'));
    extra.insert("cisco_mnemonic".into(), Value::String(lossy(parts[parts.len() - 1])));
}

/// Sigma log source of a syslog message.
fn logsource(m: &SyslogMessage) -> LogSource {
    if let Some(Value::String(fac)) = m.extra.get("cisco_facility") {
        let service = matches!(fac.as_str(), "ASA" | "FTD" | "FWSM" | "PIX").then(|| "asa".to_string());
        return LogSource { product: Some("cisco".into()), category: None, service };
    }
    // The program's last path part, lowercased in a stack buffer (no name below is longer).
    let mut buf = [0u8; 16];
    let program = m.app_name.as_deref().map(|p| p.rsplit('/').next().unwrap_or(p)).and_then(|p| {
        let out = buf.get_mut(..p.len())?;
        out.copy_from_slice(p.as_bytes());
        out.make_ascii_lowercase();
        std::str::from_utf8(out).ok()
    });
    let service = match program {
        Some("sshd") => "sshd",
        Some("sudo") => "sudo",
        Some("cron" | "crond" | "anacron") => "cron",
        Some("vsftpd") => "vsftpd",
        Some("clamd" | "freshclam" | "clamav" | "clamscan") => "clamav",
        Some("auditd" | "audispd" | "audisp-syslog") => "auditd",
        Some("guacd" | "guacamole") => "guacamole",
        Some(
            "su" | "login" | "passwd" | "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "groupmod"
            | "chpasswd" | "chage" | "chsh" | "systemd-logind" | "polkitd" | "pkexec" | "unix_chkpwd" | "gpasswd",
        ) => "auth",
        _ if matches!(m.facility, Some(4) | Some(10)) => "auth",
        _ => "syslog",
    };
    LogSource { product: Some("linux".into()), category: None, service: Some(service.into()) }
}

/// Normalizes a parsed message into a `log` event.
pub fn to_event(m: SyslogMessage, original: &[u8], ctx: &ParseContext<'_>) -> Event {
    let (timestamp, host, log) = to_log(m, original, ctx);
    log_event(ctx, timestamp, host, log)
}

/// Normalizes a parsed message into the last event of `events`, pushed here: the event is
/// filled where it stays instead of being built and then moved (an event is large).
pub(crate) fn push_event(m: SyslogMessage, original: &[u8], ctx: &ParseContext<'_>, events: &mut Vec<Event>) {
    let (timestamp, host, log) = to_log(m, original, ctx);
    events.push(Event::new(soc_model::EventType::Log, ctx.received));
    if let Some(ev) = events.last_mut() {
        fill_log_event(ev, ctx, timestamp, host, log);
    }
}

/// The event time, host and `log` payload of a parsed message.
fn to_log(m: SyslogMessage, original: &[u8], ctx: &ParseContext<'_>) -> (Option<Timestamp>, Option<String>, Log) {
    let logsource = logsource(&m);
    let mut fields = m.extra;
    if let Some(id) = m.msgid {
        fields.insert("msgid".into(), Value::String(id));
    }
    if !m.structured_data.is_empty() {
        fields.insert("structured_data".into(), Value::Object(m.structured_data));
    }
    let pid = m.procid.as_deref().and_then(|p| p.parse::<u32>().ok());
    if let (Some(p), None) = (&m.procid, pid) {
        fields.insert("procid".into(), Value::String(p.clone()));
    }
    if let Some(v) = m.version.filter(|v| *v != 1) {
        fields.insert("version".into(), Value::from(v));
    }
    let mut log = Log {
        format: Some(m.format.as_str().into()),
        logsource,
        facility: m.facility.and_then(facility_name).map(str::to_string),
        severity: m.severity.and_then(severity_name).map(str::to_string),
        program: m.app_name,
        pid,
        message: Some(m.message),
        fields,
        original: Some(Value::String(lossy(strip_line_end(original)))),
        ..Log::default()
    };
    add_received(&mut log, ctx);
    (m.timestamp, m.hostname, log)
}

/// Parses and normalizes one syslog message.
pub fn parse(line: &[u8], ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let m = parse_message(line, ctx.received, ctx.local_offset_secs)?;
    Ok(to_event(m, line, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Timestamp {
        "2024-06-15T12:00:00Z".parse().unwrap()
    }

    fn p(line: &str) -> SyslogMessage {
        parse_message(line.as_bytes(), reference(), 0).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn rfc5424_example_1_bom_and_nil_procid() {
        let m = p(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(m.format, SyslogFormat::Rfc5424);
        assert_eq!((m.facility, m.severity), (Some(4), Some(2)));
        assert_eq!(m.timestamp, ts("2003-10-11T22:14:15.003Z"));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");
    }

    #[test]
    fn rfc5424_example_2_offset_and_microseconds() {
        let m =
            p("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
        assert_eq!((m.facility, m.severity), (Some(20), Some(5)));
        let t = m.timestamp.unwrap();
        assert_eq!(t.to_string(), "2003-08-24T05:14:15.000003-0700");
        assert_eq!(m.procid.as_deref(), Some("8710"));
        assert_eq!(m.msgid, None);
        assert_eq!(m.message, "%% It's time to make the do-nuts.");
    }

    #[test]
    fn rfc5424_examples_3_and_4_structured_data() {
        let m = p(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] BOMAn application event log entry..."#,
        );
        let sd = &m.structured_data["exampleSDID@32473"];
        assert_eq!(sd["iut"], "3");
        assert_eq!(sd["eventSource"], "Application");
        assert_eq!(sd["eventID"], "1011");
        assert_eq!(m.message, "BOMAn application event log entry...");
        let m = p(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#,
        );
        assert_eq!(m.structured_data["examplePriority@32473"]["class"], "high");
        assert_eq!(m.message, "");
    }

    #[test]
    fn rfc5424_escapes_repeats_and_lenient_forms() {
        let m =
            p(r#"<14>1 2024-01-01T00:00:00Z h a 1 m [x@1 q="a \"quoted\" \\ \] \n" q="2"][origin ip="10.0.0.1"] msg"#);
        assert_eq!(m.structured_data["x@1"]["q"], serde_json::json!([r#"a "quoted" \ ] \n"#, "2"]));
        assert_eq!(m.structured_data["origin"]["ip"], "10.0.0.1");
        assert_eq!(m.message, "msg");
        // SD left out entirely: the rest is the message.
        let m = p("<14>1 2024-01-01T00:00:00Z h a 1 m hello world");
        assert_eq!(m.message, "hello world");
        // All NILs.
        let m = p("<14>1 - - - - - -");
        assert_eq!((m.timestamp, m.hostname.clone(), m.app_name.clone()), (None, None, None));
        assert_eq!(m.message, "");
    }

    #[test]
    fn rfc5424_grammar_errors_are_reported() {
        for (line, want) in [
            ("<34>1 notatime host app - - - msg", "invalid TIMESTAMP"),
            ("<34>1 2003-10-11T22:14:15.003Z host", "missing APP-NAME"),
            (r#"<34>1 - h a p m [id x="1 msg"#, "unterminated PARAM-VALUE"),
            (r#"<34>1 - h a p m [id x="1" msg"#, "expected '=' after PARAM-NAME"),
            (r#"<34>1 - h a p m [id x=1] msg"#, "expected '\"'"),
            ("<34>1 - h a p m [id", "unterminated SD-ELEMENT"),
            ("<34>1 - h a p m [] x", "empty SD-ID"),
        ] {
            let e = parse_message(line.as_bytes(), reference(), 0).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn pri_errors() {
        for line in ["<999>Oct 11 22:14:15 host x", "<abc>x", "<>x", "<12", "<1234>x"] {
            assert!(matches!(parse_message(line.as_bytes(), reference(), 0), Err(ParseError::Pri(_))), "{line}");
        }
        assert_eq!(parse_message(b"  \r\n", reference(), 0), Err(ParseError::Empty));
    }

    #[test]
    fn rfc3164_classic_lines() {
        let m = p("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(m.format, SyslogFormat::Rfc3164);
        assert_eq!((m.facility, m.severity), (Some(4), Some(2)));
        assert_eq!(m.timestamp, ts("2023-10-11T22:14:15Z"));
        assert_eq!(m.hostname.as_deref(), Some("mymachine"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");

        let m = p(
            "<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for invalid user admin from 203.0.113.7 port 52113 ssh2",
        );
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.procid.as_deref(), Some("4123"));
        assert_eq!(m.timestamp, ts("2024-06-14T08:01:02Z"));
        assert!(m.message.starts_with("Failed password for invalid user admin"));

        let m = p(
            "<85>Jun 15 11:59:01 web01 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
        );
        assert_eq!(m.app_name.as_deref(), Some("sudo"));
        assert_eq!(m.message, "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow");

        let m = p(
            "<78>Jun 15 06:25:01 web01 CRON[31337]: (root) CMD (test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily ))",
        );
        assert_eq!((m.app_name.as_deref(), m.procid.as_deref()), (Some("CRON"), Some("31337")));
        assert_eq!(m.facility, Some(9));

        let m = p(
            "<4>Jun 15 10:00:00 web01 kernel: [12345.678901] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        );
        assert_eq!(m.app_name.as_deref(), Some("kernel"));
        assert_eq!(m.message, "[12345.678901] usb 1-1: new high-speed USB device number 2 using xhci_hcd");

        let m = p("<22>Jun 15 10:00:00 mail postfix/smtpd[1234]: connect from unknown[198.51.100.1]");
        assert_eq!(m.app_name.as_deref(), Some("postfix/smtpd"));
    }

    #[test]
    fn rfc3164_without_pri_hostname_or_tag() {
        // From a file: no PRI.
        let m = p("Jun 15 10:00:00 web01 sshd[99]: Accepted publickey for bob from 10.0.0.9 port 50000 ssh2");
        assert_eq!((m.facility, m.severity), (None, None));
        assert_eq!(m.hostname.as_deref(), Some("web01"));
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        // No hostname: the tag follows the time.
        let m = p("<13>Jun 15 10:00:00 sshd[99]: hello");
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.message, "hello");
        let m = p("<13>Jun 15 10:00:00 su: hello");
        assert_eq!((m.hostname.as_deref(), m.app_name.as_deref()), (None, Some("su")));
        // No tag.
        let m = p("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
        assert_eq!(m.hostname.as_deref(), Some("10.0.0.99"));
        assert_eq!((m.app_name.as_deref(), m.message.as_str()), (None, "Use the BFG!"));
        // Nothing recognizable: all of it is the message.
        let m = p("<13>hello world");
        assert_eq!((m.timestamp, m.hostname.as_deref(), m.message.as_str()), (None, None, "hello world"));
        let m = p("just some text: here");
        assert_eq!(m.message, "just some text: here");
        assert_eq!(m.app_name, None);
    }

    #[test]
    fn rfc3164_iso_timestamps() {
        let m = p("<30>2024-06-15T10:00:00.123456+07:00 web01 systemd[1]: Started Session 42 of user root.");
        assert_eq!(m.timestamp.unwrap().to_string(), "2024-06-15T10:00:00.123456+0700");
        assert_eq!(m.hostname.as_deref(), Some("web01"));
        assert_eq!(m.app_name.as_deref(), Some("systemd"));
        let m = parse_message(b"2024-06-15T10:00:00 web01 app: x", reference(), 7 * 3600).unwrap();
        assert_eq!(m.timestamp, ts("2024-06-15T10:00:00+07:00"));
    }

    #[test]
    fn cisco_dialects() {
        let m = p("<189>36: *Mar  1 00:01:18.571: %SYS-5-CONFIG_I: Configured from console by console");
        assert_eq!(m.extra["sequence"], 36);
        assert_eq!(m.timestamp, ts("2024-03-01T00:01:18.571Z"));
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, None);
        assert_eq!(m.extra["cisco_facility"], "SYS");
        assert_eq!(m.extra["cisco_severity"], 5);
        assert_eq!(m.extra["cisco_mnemonic"], "CONFIG_I");
        assert_eq!(m.message, "%SYS-5-CONFIG_I: Configured from console by console");

        let m = p(
            "<187>1234: router1: Jun 15 11:00:00.123 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
        );
        assert_eq!(m.hostname.as_deref(), Some("router1"));
        assert_eq!(m.timestamp, ts("2024-06-15T11:00:00.123Z"));
        assert_eq!(m.extra["cisco_facility"], "LINK");

        let m = p(
            "<166>Jun 15 2024 10:00:00 asa01 : %ASA-6-302013: Built outbound TCP connection 123 for outside:198.51.100.2/443 (198.51.100.2/443) to inside:10.0.0.5/51000 (203.0.113.5/51000)",
        );
        assert_eq!(m.hostname.as_deref(), Some("asa01"));
        assert_eq!(m.timestamp, ts("2024-06-15T10:00:00Z"));
        assert_eq!(m.extra["cisco_facility"], "ASA");
        assert_eq!(m.extra["cisco_mnemonic"], "302013");
        assert!(m.message.starts_with("%ASA-6-302013: Built outbound"));

        let m = p("<166>%ASA-4-106023: Deny tcp src outside:1.2.3.4/1 dst inside:10.0.0.1/22");
        assert_eq!(m.extra["cisco_severity"], 4);
    }

    #[test]
    fn normalized_event_fields() {
        let ctx =
            ParseContext { input: "syslog-udp", peer: Some("192.0.2.10"), received: reference(), local_offset_secs: 0 };
        let ev = parse(
            b"<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 52113 ssh2\n",
            &ctx,
        )
        .unwrap();
        assert_eq!(ev.event_type.as_str(), "log");
        assert_eq!(ev.host.as_deref(), Some("web01"));
        assert_eq!(ev.timestamp, "2024-06-14T08:01:02Z".parse().unwrap());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.format.as_deref(), Some("rfc3164"));
        assert_eq!(log.input.as_deref(), Some("syslog-udp"));
        assert_eq!(log.facility.as_deref(), Some("auth"));
        assert_eq!(log.severity.as_deref(), Some("info"));
        assert_eq!(log.program.as_deref(), Some("sshd"));
        assert_eq!(log.pid, Some(4123));
        assert_eq!(log.logsource.product.as_deref(), Some("linux"));
        assert_eq!(log.logsource.service.as_deref(), Some("sshd"));
        assert_eq!(
            log.original,
            Some(Value::String(
                "<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 52113 ssh2"
                    .into()
            ))
        );
        assert_eq!(log.extra["peer"], "192.0.2.10");

        // No hostname and no timestamp: the sender and the receive time.
        let ev = parse(b"<13>hello", &ctx).unwrap();
        assert_eq!(ev.host.as_deref(), Some("192.0.2.10"));
        assert_eq!(ev.timestamp, reference());
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("syslog"));

        let ev = parse(b"<86>Jun 15 11:00:00 h passwd[1]: x", &ctx).unwrap();
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("auth"));
        let ev = parse(b"<86>Jun 15 11:00:00 h foo[1]: x", &ctx).unwrap();
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("auth"));
        let ev = parse(b"<85>Jun 15 11:00:00 h sudo: x", &ctx).unwrap();
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("sudo"));

        let ev = parse(br#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog abc ID47 [a@1 b="c"] m"#, &ctx).unwrap();
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.format.as_deref(), Some("rfc5424"));
        assert_eq!(log.fields["msgid"], "ID47");
        assert_eq!(log.fields["procid"], "abc");
        assert_eq!(log.fields["structured_data"]["a@1"]["b"], "c");
        assert_eq!(log.facility.as_deref(), Some("local4"));
        assert_eq!(log.severity.as_deref(), Some("notice"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let m = parse_message(b"<13>Jun 15 10:00:00 host app: caf\xe9", reference(), 0).unwrap();
        assert_eq!(m.message, "caf\u{fffd}");
    }

    /// Lines covering every branch of the grammar, cut at every length and mutated.
    const CORPUS: &[&[u8]] = &[
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed",
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time",
        br#"<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\]"][b@1 c="d"] BOMmsg"#,
        b"<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 52113 ssh2",
        b"<189>36: *Mar  1 00:01:18.571: %SYS-5-CONFIG_I: Configured from console by console",
        b"<187>1234: router1: Jun 15 11:00:00.123 UTC: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        b"<166>Jun 15 2024 10:00:00 asa01 : %ASA-6-302013: Built outbound TCP connection",
        b"<30>2024-06-15T10:00:00.123456+07:00 web01 systemd[1]: Started Session 42.",
        b"Jun 15 10:00:00 web01 CRON[1]: (root) CMD (x)",
        b"<13>Feb  5 17:32:18 2021 10.0.0.99 Use the BFG!",
    ];

    #[test]
    fn never_panics_on_prefixes_mutations_and_garbage() {
        let r = reference();
        for line in CORPUS {
            for n in 0..=line.len() {
                let _ = parse_message(&line[..n], r, 0);
                let _ = parse_message(&line[n..], r, 3600);
            }
            let mut m = line.to_vec();
            for i in 0..m.len() {
                for b in [0u8, b' ', b'<', b'>', b'[', b']', b'"', b'\\', b'=', b':', b'-', b'9', 0xFF, 0xC3] {
                    let saved = m[i];
                    m[i] = b;
                    let _ = parse_message(&m, r, 0);
                    m[i] = saved;
                }
            }
        }
        // Random bytes, biased towards the grammar's punctuation.
        let mut seed = 0x9E3779B97F4A7C15u64;
        let alphabet = b"<>[]\"\\= :-.*%0123456789TZabcJunMar\xEF\xBB\xBF\xFF\n";
        for _ in 0..20_000 {
            let mut v = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for _ in 0..(seed % 80) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse_message(&v, r, 0);
        }
    }
}
