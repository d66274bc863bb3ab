//! Linux audit logs (`/var/log/audit/audit.log`, audisp output): one record per line,
//! `[node=N ]type=T msg=audit(SECS.MILLIS:SERIAL): key=value ...`, and the records of one event
//! (SYSCALL, EXECVE, CWD, PATH, PROCTITLE, ... EOE) share the `SECS.MILLIS:SERIAL` stamp.
//!
//! * [`parse_record`] reads one line: quoted values unquoted, the user-space `msg='...'` text
//!   flattened into the record, hex-encoded values of the fields auditd hex-encodes (`proctitle`,
//!   `exe`, `comm`, `name`, `cwd`, EXECVE's `aN`, ...) decoded like go-libaudit does, `?` and
//!   `(null)` values left out. The interpreted part of the ENRICHED log format (after `0x1d`:
//!   `SYSCALL=open AUID="root"`) is kept as its upper-case fields.
//! * [`Assembler`] joins the records of one event by node and serial, even when events are
//!   interleaved; an event is complete at its `EOE` record, when [`WINDOW`] later records have
//!   passed without another record of it, or at [`Assembler::finish`].
//! * [`to_event`] makes one `log` event of the joined records: the first record's fields (its
//!   `type` included) at the top level, so Sigma's auditd rules on `type`, `SYSCALL`, `exe`,
//!   `key`, ... resolve against the main record; every record (with its `type`) in `records`;
//!   and the EXECVE arguments as `execve.a0`, `execve.a1`, ... (and `CommandLine`) when the
//!   event has one. logsource: product `linux`, service `auditd`.

use super::{ParseContext, ParseError, log_event, lossy};
use serde_json::{Map, Value};
use soc_model::{Event, Log, LogSource, Timestamp};

/// Records of other events after which an event without `EOE` counts as complete.
pub const WINDOW: usize = 64;

/// Fields whose value auditd writes hex-encoded when it contains spaces, quotes or controls.
const HEX_FIELDS: [&str; 14] = [
    "proctitle",
    "exe",
    "comm",
    "ocomm",
    "name",
    "cwd",
    "path",
    "file",
    "cmd",
    "acct",
    "data",
    "new-disk",
    "old-disk",
    "vm",
];

/// One audit record.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub node: Option<String>,
    /// `SYSCALL`, `EXECVE`, `USER_LOGIN`, ... as written.
    pub record_type: String,
    /// The `SECS.MILLIS` stamp as written (part of the event's identity).
    pub stamp: String,
    pub timestamp: Timestamp,
    pub serial: u64,
    pub fields: Map<String, Value>,
    /// The line as received, without its line end.
    pub raw: String,
}

/// Whether a line looks like an audit record (`type=... msg=audit(`).
pub fn looks_like(line: &[u8]) -> bool {
    let l = super::trim_ascii(line);
    (l.starts_with(b"type=") || l.starts_with(b"node=")) && memmem(l, b"msg=audit(").is_some()
}

fn memmem(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::Auditd(why.into())
}

/// Parses one record line.
pub fn parse_record(line: &[u8]) -> Result<AuditRecord, ParseError> {
    let raw_line = super::trim_ascii(line);
    if raw_line.is_empty() {
        return Err(ParseError::Empty);
    }
    let text = lossy(raw_line);
    let mut rest = text.as_str();
    let mut node = None;
    if let Some(r) = rest.strip_prefix("node=") {
        let end = r.find(' ').ok_or_else(|| bad("node= without a record after it"))?;
        node = Some(r[..end].to_string());
        rest = r[end..].trim_start();
    }
    let r = rest.strip_prefix("type=").ok_or_else(|| bad("no type= field"))?;
    let end = r.find(' ').ok_or_else(|| bad("type= without msg=audit(...)"))?;
    let record_type = r[..end].to_string();
    if record_type.is_empty() {
        return Err(bad("empty type"));
    }
    let r = r[end..].trim_start();
    let r = r.strip_prefix("msg=audit(").ok_or_else(|| bad("no msg=audit( after type"))?;
    // `msg=audit(T:S): fields`; a few daemon records write `msg=audit(T:S) text, fields`.
    let close = r.find(')').ok_or_else(|| bad("msg=audit( without its closing ')'"))?;
    let stamp_serial = &r[..close];
    let body = r[close + 1..].strip_prefix(':').unwrap_or(&r[close + 1..]);
    let (stamp, serial) = stamp_serial.split_once(':').ok_or_else(|| bad("audit stamp without ':serial'"))?;
    let serial: u64 = serial.parse().map_err(|_| bad(format!("serial {serial:?} is not a number")))?;
    let (secs, frac) = stamp.split_once('.').unwrap_or((stamp, "0"));
    let secs: i64 = secs.parse().map_err(|_| bad(format!("time {stamp:?} is not SECS.MILLIS")))?;
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("time {stamp:?} is not SECS.MILLIS")));
    }
    let micros: u32 = format!("{frac:0<6}").parse().map_err(|_| bad(format!("time {stamp:?} is not SECS.MILLIS")))?;
    if !(0..=253_402_300_799).contains(&secs) {
        return Err(bad(format!("time {stamp:?} is out of range")));
    }
    let timestamp = Timestamp::from_secs_micros(secs, micros);
    let (body, enriched) = match body.split_once('\u{1d}') {
        Some((b, e)) => (b, Some(e)),
        None => (body, None),
    };
    let mut fields = Map::new();
    let execve = record_type == "EXECVE";
    for (k, v, quoted) in pairs(body) {
        if k == "msg" && quoted {
            // The user-space message: its own key=value pairs, flattened.
            for (k2, v2, q2) in pairs(&v) {
                insert(&mut fields, k2, v2, q2, false);
            }
            continue;
        }
        insert(&mut fields, k, v, quoted, execve);
    }
    if let Some(e) = enriched {
        for (k, v, _) in pairs(e) {
            fields.entry(k).or_insert(Value::String(v));
        }
    }
    Ok(AuditRecord { node, record_type, stamp: stamp.to_string(), timestamp, serial, fields, raw: text })
}

fn insert(fields: &mut Map<String, Value>, key: String, value: String, quoted: bool, execve: bool) {
    if !quoted && (value == "?" || value == "(null)" || value.is_empty()) {
        return;
    }
    let hex_field = HEX_FIELDS.contains(&key.as_str())
        || (execve && key.len() > 1 && key.starts_with('a') && key[1..].bytes().all(|c| c.is_ascii_digit()));
    let value = match (quoted, hex_field) {
        (false, true) => decode_hex(&value, key == "proctitle").unwrap_or(value),
        _ => value,
    };
    // First one wins (`old auid=... new auid=...` keeps both under distinct keys below).
    if fields.contains_key(&key) {
        let mut n = 2;
        while fields.contains_key(&format!("{key}_{n}")) {
            n += 1;
        }
        fields.insert(format!("{key}_{n}"), Value::String(value));
    } else {
        fields.insert(key, Value::String(value));
    }
}

/// Hex text to a string (NULs as spaces in `proctitle`); `None` if not even-length hex.
fn decode_hex(s: &str, nul_to_space: bool) -> Option<String> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi * 16 + lo) as u8);
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if nul_to_space {
        text = text.trim_end_matches('\0').replace('\0', " ");
    }
    Some(text)
}

/// The `key=value` pairs of a record body; words without `=` (`avc:  denied  { read } for`,
/// `PAM: accounting`) are skipped, `(key=value,` and `value)` punctuation is stripped.
fn pairs(body: &str) -> Vec<(String, String, bool)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'=' {
            i += 1;
        }
        if i >= b.len() || b[i] == b' ' {
            // A word without '=': go-libaudit's AVC record keeps `denied { read }` as seresult/seperms.
            let word = &body[start..i];
            if word == "{" {
                let close = body[i..].find('}').map(|p| i + p).unwrap_or(b.len());
                let perms = body[i..close].split_whitespace().collect::<Vec<_>>().join(",");
                if !perms.is_empty() {
                    out.push(("seperms".into(), perms, true));
                }
                i = (close + 1).min(b.len());
            } else if matches!(word, "denied" | "granted") {
                out.push(("seresult".into(), word.to_string(), true));
            }
            continue;
        }
        let key = body[start..i].trim_start_matches('(').to_string();
        i += 1; // '='
        let (value, quoted) = match b.get(i) {
            Some(q @ (b'"' | b'\'')) => {
                let q = *q as char;
                let vstart = i + 1;
                let vend = body[vstart..].find(q).map(|p| vstart + p).unwrap_or(b.len());
                i = (vend + 1).min(b.len());
                (body[vstart..vend].to_string(), true)
            }
            _ => {
                let vstart = i;
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                let v = body[vstart..i].trim_end_matches(',');
                let v = if v.starts_with('(') { v } else { v.trim_end_matches(')') };
                (v.to_string(), false)
            }
        };
        if !key.is_empty() {
            out.push((key, value, quoted));
        }
    }
    out
}

/// Makes one event of the records of one audit event (in arrival order, not empty).
pub fn to_event(records: Vec<AuditRecord>, ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let main_idx = records.iter().position(|r| r.record_type != "EOE").unwrap_or(0);
    let main = records.get(main_idx).ok_or_else(|| bad("no records"))?;
    let mut fields = main.fields.clone();
    fields.insert("type".into(), Value::String(main.record_type.clone()));
    fields.insert("serial".into(), Value::from(main.serial));
    let mut list = Vec::with_capacity(records.len());
    for r in &records {
        if r.record_type == "EOE" {
            continue;
        }
        let mut o = r.fields.clone();
        o.insert("type".into(), Value::String(r.record_type.clone()));
        list.push(Value::Object(o));
        if r.record_type == "EXECVE" {
            let argc = r.fields.get("argc").and_then(Value::as_str).and_then(|s| s.parse::<usize>().ok());
            let args: Vec<&str> = (0..argc.unwrap_or(r.fields.len()))
                .map_while(|n| r.fields.get(&format!("a{n}")).and_then(Value::as_str))
                .collect();
            let mut exe = Map::new();
            for (n, a) in args.iter().enumerate() {
                exe.insert(format!("a{n}"), Value::String(a.to_string()));
            }
            fields.entry("execve").or_insert(Value::Object(exe));
            fields.entry("CommandLine").or_insert(Value::String(args.join(" ")));
        }
        if r.record_type == "PROCTITLE"
            && let Some(p) = r.fields.get("proctitle")
        {
            fields.entry("proctitle").or_insert(p.clone());
        }
        if r.record_type == "CWD"
            && let Some(p) = r.fields.get("cwd")
        {
            fields.entry("cwd").or_insert(p.clone());
        }
    }
    if list.len() > 1 {
        fields.insert("records".into(), Value::Array(list));
    }
    let raw = records.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>().join("\n");
    let pid = fields.get("pid").and_then(Value::as_str).and_then(|p| p.parse::<u32>().ok());
    let log = Log {
        format: Some("auditd".into()),
        logsource: LogSource { product: Some("linux".into()), category: None, service: Some("auditd".into()) },
        program: Some("auditd".into()),
        pid,
        message: Some(main.raw.clone()),
        fields,
        original: Some(Value::String(raw)),
        ..Log::default()
    };
    // No receive-time discriminator: node, stamp and serial identify an audit event.
    Ok(log_event(ctx, Some(main.timestamp), main.node.clone(), log))
}

/// Parses one line as a single-record event (network inputs without joining).
pub fn parse(line: &[u8], ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    to_event(vec![parse_record(line)?], ctx)
}

struct Open {
    node: Option<String>,
    stamp: String,
    serial: u64,
    records: Vec<AuditRecord>,
    last_seen: usize,
}

/// Joins records into events (see the module docs).
#[derive(Default)]
pub struct Assembler {
    open: Vec<Open>,
    seen: usize,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held, waiting for their event to complete.
    pub fn pending(&self) -> usize {
        self.open.iter().map(|o| o.records.len()).sum()
    }

    /// Takes one line; returns the events it completed (and the line's error if it is not a
    /// record), oldest first.
    pub fn push(&mut self, line: &[u8], ctx: &ParseContext<'_>) -> Vec<Result<Event, ParseError>> {
        let mut out = Vec::new();
        let rec = match parse_record(line) {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(e));
                return out;
            }
        };
        self.seen += 1;
        let eoe = rec.record_type == "EOE";
        let pos = self.open.iter().position(|o| o.serial == rec.serial && o.stamp == rec.stamp && o.node == rec.node);
        let idx = match pos {
            Some(i) => i,
            None => {
                self.open.push(Open {
                    node: rec.node.clone(),
                    stamp: rec.stamp.clone(),
                    serial: rec.serial,
                    records: Vec::new(),
                    last_seen: self.seen,
                });
                self.open.len() - 1
            }
        };
        let o = &mut self.open[idx];
        o.last_seen = self.seen;
        o.records.push(rec);
        if eoe {
            let o = self.open.remove(idx);
            out.push(to_event(o.records, ctx));
        }
        let seen = self.seen;
        while let Some(i) = self.open.iter().position(|o| seen - o.last_seen >= WINDOW) {
            let o = self.open.remove(i);
            out.push(to_event(o.records, ctx));
        }
        out
    }

    /// Completes every open event, oldest first.
    pub fn finish(&mut self, ctx: &ParseContext<'_>) -> Vec<Result<Event, ParseError>> {
        self.open.drain(..).map(|o| to_event(o.records, ctx)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext<'static> {
        ParseContext {
            input: "file",
            peer: None,
            received: "2024-06-15T12:00:00Z".parse().unwrap(),
            local_offset_secs: 0,
        }
    }

    #[test]
    fn record_fields_quotes_hex_and_user_messages() {
        let r = parse_record(b"type=USER_ACCT msg=audit(1481077043.057:413): pid=1298 uid=0 auid=4294967295 msg='op=PAM:accounting acct=\"bob\" exe=\"/usr/sbin/sshd\" hostname=? addr=10.0.0.9 terminal=ssh res=success'\n").unwrap();
        assert_eq!(r.record_type, "USER_ACCT");
        assert_eq!(r.serial, 413);
        assert_eq!(r.timestamp.unix_micros(), 1_481_077_043_057_000);
        assert_eq!(r.fields["acct"], "bob");
        assert_eq!(r.fields["exe"], "/usr/sbin/sshd");
        assert_eq!(r.fields["addr"], "10.0.0.9");
        assert_eq!(r.fields["op"], "PAM:accounting");
        assert!(!r.fields.contains_key("hostname"));
        assert!(!r.fields.contains_key("msg"));
        let r = parse_record(
            b"node=h1 type=PROCTITLE msg=audit(1451781471.394:194435): proctitle=737368643A206275726E005B707269765D",
        )
        .unwrap();
        assert_eq!(r.node.as_deref(), Some("h1"));
        assert_eq!(r.fields["proctitle"], "sshd: burn [priv]");
        let r = parse_record(b"type=EXECVE msg=audit(1.5:7): argc=2 a0=\"ls\" a1=2D6C61").unwrap();
        assert_eq!((r.fields["a0"].as_str(), r.fields["a1"].as_str()), (Some("ls"), Some("-la")));
        // Not hex-encoded fields stay as written.
        let r =
            parse_record(b"type=SYSCALL msg=audit(1.5:7): a0=c a1=56420184ade0 key=(null)\x1dARCH=x86_64 SYSCALL=open")
                .unwrap();
        assert_eq!(r.fields["a1"], "56420184ade0");
        assert_eq!(r.fields["SYSCALL"], "open");
        assert!(!r.fields.contains_key("key"));
    }

    #[test]
    fn bad_records_say_why() {
        for (line, why) in [
            (&b"type=SYSCALL arch=1"[..], "msg=audit("),
            (b"type=SYSCALL msg=audit(abc:1): x=1", "SECS.MILLIS"),
            (b"type=SYSCALL msg=audit(1.2:x): x=1", "serial"),
            (b"type=SYSCALL msg=audit(1.2:3 x=1", "closing ')'"),
            (b"hello", "type="),
        ] {
            let e = parse_record(line).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        assert_eq!(parse_record(b"  \n"), Err(ParseError::Empty));
    }

    #[test]
    fn assembler_joins_interleaved_events_by_serial() {
        let lines = [
            "type=SYSCALL msg=audit(1507304439.922:1865): arch=c000003e syscall=59 success=yes exit=0 pid=7 uid=0 comm=\"useradd\" exe=\"/usr/sbin/useradd\" key=\"user_mod\"",
            "type=USER_LOGIN msg=audit(1507304439.922:1866): pid=9 uid=0 msg='op=login acct=\"root\" res=failed'",
            "type=EXECVE msg=audit(1507304439.922:1865): argc=3 a0=\"useradd\" a1=\"-m\" a2=\"trainer5\"",
            "type=CWD msg=audit(1507304439.922:1865): cwd=\"/root\"",
            "type=PATH msg=audit(1507304439.922:1865): item=0 name=\"/usr/sbin/useradd\"",
            "type=EOE msg=audit(1507304439.922:1865): ",
        ];
        let mut a = Assembler::new();
        let mut events = Vec::new();
        for l in lines {
            events.extend(a.push(l.as_bytes(), &ctx()));
        }
        assert_eq!(events.len(), 1);
        assert_eq!(a.pending(), 1);
        events.extend(a.finish(&ctx()));
        let evs: Vec<Event> = events.into_iter().map(Result::unwrap).collect();
        let log = evs[0].log.as_ref().unwrap();
        assert_eq!(log.logsource.product.as_deref(), Some("linux"));
        assert_eq!(log.logsource.service.as_deref(), Some("auditd"));
        assert_eq!(log.fields["type"], "SYSCALL");
        assert_eq!(log.fields["key"], "user_mod");
        assert_eq!(log.fields["CommandLine"], "useradd -m trainer5");
        assert_eq!(log.fields["execve"]["a2"], "trainer5");
        assert_eq!(log.fields["cwd"], "/root");
        assert_eq!(log.fields["records"].as_array().map(Vec::len), Some(4));
        assert_eq!(log.original.as_ref().and_then(Value::as_str).map(|s| s.lines().count()), Some(5));
        assert_eq!(evs[0].timestamp.unix_micros(), 1_507_304_439_922_000);
        let log = evs[1].log.as_ref().unwrap();
        assert_eq!(log.fields["type"], "USER_LOGIN");
        assert_eq!(log.fields["res"], "failed");
        assert!(!log.fields.contains_key("records"));
    }

    #[test]
    fn events_without_eoe_complete_after_the_window() {
        let mut a = Assembler::new();
        let mut done = 0;
        for n in 0..(WINDOW as u64 + 10) {
            let line = format!("type=USER_CMD msg=audit(100.000:{n}): pid=1 cmd=6C73");
            for r in a.push(line.as_bytes(), &ctx()) {
                assert_eq!(r.unwrap().log.unwrap().fields["cmd"], "ls");
                done += 1;
            }
        }
        assert_eq!(done, 10);
        assert_eq!(a.finish(&ctx()).len(), WINDOW);
        assert_eq!(a.push(b"garbage", &ctx()).len(), 1);
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let line = "node=x type=AVC msg=audit(1170021493.977:293): avc:  denied  { read } for  pid=13010 comm=\"pick\u{e9}up\" name='a b' (hostname=?, addr=?, x=) msg='a=\"b'";
        for n in 0..=line.len() {
            let _ = parse_record(&line.as_bytes()[..n]);
        }
        let r = parse_record(line.as_bytes()).unwrap();
        assert_eq!(r.fields["seresult"], "denied");
        assert_eq!(r.fields["seperms"], "read");
        assert_eq!(r.fields["comm"], "pick\u{e9}up");
    }
}
