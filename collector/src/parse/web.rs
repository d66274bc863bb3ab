//! Web server access logs: the Apache/Nginx combined (and common) format and IIS W3C extended
//! logs.
//!
//! Fields use the W3C names of Sigma's `webserver` category: `c-ip`, `cs-username`,
//! `cs-method`, `c-uri` (the request target), `cs-uri-stem`, `cs-uri-query`,
//! `c-uri-extension`, `cs-version`, `sc-status` (a number), `sc-bytes`, `cs-referer`,
//! `c-useragent`, `cs-host`. IIS lines keep every column under its `#Fields:` name as well.
//! logsource: category `webserver`, product `apache`, `nginx` or `windows` (service `iis`).

use super::{ParseContext, ParseError, add_received, log_event, lossy, timefmt};
use serde_json::{Map, Value};
use soc_model::{Event, Log, LogSource, Timestamp};

/// The product an access log line is attributed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Apache,
    Nginx,
}

impl Flavor {
    fn product(self) -> &'static str {
        match self {
            Flavor::Apache => "apache",
            Flavor::Nginx => "nginx",
        }
    }
}

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::AccessLog(why.into())
}

/// Whether a line looks like a combined/common access log line: `HOST IDENT USER [`.
pub fn looks_like_combined(line: &[u8]) -> bool {
    let l = super::trim_ascii(line);
    let Some(br) = l.iter().take(300).position(|c| *c == b'[') else {
        return false;
    };
    let head = &l[..br];
    head.ends_with(b" ") && head.split(|c| *c == b' ').filter(|w| !w.is_empty()).count() == 3
}

/// `[10/Oct/2000:13:55:36 -0700]`
fn parse_clf_time(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let month = match s.get(3..6)?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let offset = timefmt::parse_utc_offset(s.get(21..)?)?;
    timefmt::civil(
        num(7..11)? as i32,
        month,
        num(0..2)? as u8,
        num(12..14)? as u8,
        num(15..17)? as u8,
        num(18..20)? as u8,
        0,
        offset,
    )
}

/// Reads a `"..."` field with `\"` escapes starting at `b[*i] == '"'`.
fn quoted(s: &str, i: &mut usize) -> Option<String> {
    let b = s.as_bytes();
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let mut j = start;
    let mut out = String::new();
    let mut seg = start;
    while j < b.len() {
        match b[j] {
            b'\\' if j + 1 < b.len() => {
                out.push_str(&s[seg..j]);
                out.push(b[j + 1] as char);
                j += 2;
                seg = j;
                continue;
            }
            b'"' => {
                out.push_str(&s[seg..j]);
                *i = j + 1;
                return Some(out);
            }
            _ => j += 1,
        }
    }
    None
}

/// The request field: like [`quoted`], but a bare `"` inside the request (attack traffic:
/// `?q="><script>`) does not end it; the closing quote is the one followed by ` STATUS SIZE`.
fn request(s: &str, i: &mut usize) -> Option<String> {
    let b = s.as_bytes();
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let mut first = None;
    let mut j = start;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == b'"' {
            first.get_or_insert(j);
            let rest = &b[j + 1..];
            let status_follows = rest.len() >= 4
                && rest[0] == b' '
                && rest[1..4].iter().all(u8::is_ascii_digit)
                && (rest.len() == 4 || rest[4] == b' ');
            if status_follows {
                break;
            }
        }
        j += 1;
    }
    if j >= b.len() {
        j = first?;
    }
    let text = s[start..j].replace("\\\"", "\"").replace("\\\\", "\\");
    *i = j + 1;
    Some(text)
}

fn word<'s>(s: &'s str, i: &mut usize) -> Option<&'s str> {
    let b = s.as_bytes();
    while *i < b.len() && b[*i] == b' ' {
        *i += 1;
    }
    let start = *i;
    while *i < b.len() && b[*i] != b' ' {
        *i += 1;
    }
    (start < *i).then(|| &s[start..*i])
}

fn skip_spaces(s: &str, i: &mut usize) {
    while s.as_bytes().get(*i) == Some(&b' ') {
        *i += 1;
    }
}

/// Splits a request target into stem, query and extension fields.
fn uri_fields(f: &mut Map<String, Value>, target: &str) {
    f.insert("c-uri".into(), Value::String(target.to_string()));
    let (stem, query) = match target.split_once('?') {
        Some((s, q)) => (s, Some(q)),
        None => (target, None),
    };
    f.insert("cs-uri-stem".into(), Value::String(stem.to_string()));
    if let Some(q) = query {
        f.insert("cs-uri-query".into(), Value::String(q.to_string()));
    }
    let last = stem.rsplit('/').next().unwrap_or("");
    if let Some((_, ext)) = last.rsplit_once('.')
        && !ext.is_empty()
    {
        f.insert("c-uri-extension".into(), Value::String(ext.to_string()));
    }
}

fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Parses one combined (or common) log format line.
pub fn parse_combined(line: &[u8], flavor: Flavor, ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let raw = super::trim_ascii(line);
    if raw.is_empty() {
        return Err(ParseError::Empty);
    }
    let s = lossy(raw);
    let mut i = 0;
    let client = word(&s, &mut i).ok_or_else(|| bad("no client address"))?.to_string();
    let ident = word(&s, &mut i).ok_or_else(|| bad("no ident field"))?.to_string();
    let user = word(&s, &mut i).ok_or_else(|| bad("no user field"))?.to_string();
    skip_spaces(&s, &mut i);
    if s.as_bytes().get(i) != Some(&b'[') {
        return Err(bad("no [time] after client, ident and user"));
    }
    let close = s[i..].find(']').map(|p| i + p).ok_or_else(|| bad("[time] not closed"))?;
    let time_text = &s[i + 1..close];
    let timestamp = parse_clf_time(time_text).ok_or_else(|| bad(format!("{time_text:?} is not a CLF time")))?;
    i = close + 1;
    skip_spaces(&s, &mut i);
    let request = request(&s, &mut i).ok_or_else(|| bad("no quoted request"))?;
    let status_text = word(&s, &mut i).ok_or_else(|| bad("no status"))?;
    let status: u16 = status_text.parse().map_err(|_| bad(format!("status {status_text:?} is not a number")))?;
    let bytes = word(&s, &mut i).ok_or_else(|| bad("no size"))?.to_string();
    let mut f = Map::new();
    f.insert("c-ip".into(), Value::String(client.clone()));
    if let Some(u) = dash(&ident) {
        f.insert("ident".into(), Value::String(u.to_string()));
    }
    if let Some(u) = dash(&user) {
        f.insert("cs-username".into(), Value::String(u.to_string()));
    }
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), v) if !m.is_empty() => {
            f.insert("cs-method".into(), Value::String(m.to_string()));
            uri_fields(&mut f, t);
            if let Some(v) = v {
                f.insert("cs-version".into(), Value::String(v.to_string()));
            }
        }
        _ => {
            // `"-"` or garbage sent to the port: kept as it is.
            f.insert("request".into(), Value::String(request.clone()));
        }
    }
    f.insert("sc-status".into(), Value::from(status));
    match bytes.parse::<u64>() {
        Ok(n) => {
            f.insert("sc-bytes".into(), Value::from(n));
        }
        Err(_) if bytes == "-" => {}
        Err(_) => return Err(bad(format!("size {bytes:?} is not a number"))),
    }
    skip_spaces(&s, &mut i);
    if i < s.len() {
        let referer = quoted(&s, &mut i).ok_or_else(|| bad("referer is not quoted"))?;
        skip_spaces(&s, &mut i);
        // A line cut short (or an agent with a stray quote) keeps the agent up to the end.
        let agent = match s.as_bytes().get(i) {
            Some(b'"') => quoted(&s, &mut i).unwrap_or_else(|| {
                let a = s[i + 1..].to_string();
                i = s.len();
                a
            }),
            _ => return Err(bad("user agent missing or not quoted")),
        };
        if let Some(r) = dash(&referer) {
            f.insert("cs-referer".into(), Value::String(r.to_string()));
        }
        if let Some(a) = dash(&agent) {
            f.insert("c-useragent".into(), Value::String(a.to_string()));
        }
        skip_spaces(&s, &mut i);
        if i < s.len() {
            f.insert("extra".into(), Value::String(s[i..].to_string()));
        }
    }
    let mut log = Log {
        format: Some(if f.contains_key("cs-referer") || f.contains_key("c-useragent") || s.ends_with('"') {
            "combined".into()
        } else {
            "common".into()
        }),
        logsource: LogSource {
            product: Some(flavor.product().into()),
            category: Some("webserver".into()),
            service: Some("access".into()),
        },
        program: Some(flavor.product().into()),
        message: Some(request),
        fields: f,
        original: Some(Value::String(s.clone())),
        ..Log::default()
    };
    add_received(&mut log, ctx);
    Ok(log_event(ctx, Some(timestamp), None, log))
}

/// The default IIS W3C columns (IIS 7 and later), for lines received without their header.
pub const IIS_DEFAULT_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// Whether a line looks like a W3C data line: `YYYY-MM-DD HH:MM:SS `.
pub fn looks_like_w3c(line: &[u8]) -> bool {
    let l = super::trim_ascii(line);
    l.len() > 20
        && l[4] == b'-'
        && l[7] == b'-'
        && l[10] == b' '
        && l[13] == b':'
        && l[16] == b':'
        && l[..4].iter().all(u8::is_ascii_digit)
}

/// IIS W3C extended log reader: directive lines (`#Fields:`) set the columns of the lines
/// after them; without a header, [`IIS_DEFAULT_FIELDS`].
#[derive(Clone, Debug, Default)]
pub struct W3c {
    /// Empty until a `#Fields:` directive: the IIS defaults.
    fields: Vec<String>,
}

impl W3c {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current columns.
    pub fn fields(&self) -> Vec<&str> {
        if self.fields.is_empty() {
            IIS_DEFAULT_FIELDS.split(' ').collect()
        } else {
            self.fields.iter().map(String::as_str).collect()
        }
    }

    /// Reads one line: `Ok(None)` for a directive (`#Software`, `#Fields`, comments).
    pub fn push(&mut self, line: &[u8], ctx: &ParseContext<'_>) -> Result<Option<Event>, ParseError> {
        let raw = super::trim_ascii(line);
        if raw.is_empty() {
            return Err(ParseError::Empty);
        }
        let s = lossy(raw);
        if let Some(d) = s.strip_prefix('#') {
            if let Some(cols) = d.strip_prefix("Fields:") {
                let cols: Vec<String> = cols.split_whitespace().map(str::to_string).collect();
                if cols.is_empty() {
                    return Err(ParseError::W3c("#Fields: directive without fields".into()));
                }
                self.fields = cols;
            }
            return Ok(None);
        }
        self.parse_data(&s, ctx).map(Some)
    }

    fn parse_data(&self, s: &str, ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
        let values: Vec<&str> = s.split([' ', '\t']).filter(|v| !v.is_empty()).collect();
        let columns = self.fields();
        if values.len() != columns.len() {
            return Err(ParseError::W3c(format!(
                "{} values for {} #Fields columns ({})",
                values.len(),
                columns.len(),
                columns.join(" ")
            )));
        }
        let mut f = Map::new();
        let (mut date, mut time) = (None, None);
        for (k, v) in columns.into_iter().zip(values) {
            match k {
                "date" => date = Some(v),
                "time" => time = Some(v),
                _ => {}
            }
            if v == "-" {
                continue;
            }
            let val = match k {
                "sc-status" | "sc-substatus" | "sc-win32-status" | "time-taken" | "s-port" | "sc-bytes"
                | "cs-bytes" => v.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::String(v.to_string())),
                _ => Value::String(v.to_string()),
            };
            f.insert(k.to_string(), val);
        }
        // Sigma's names for the IIS columns.
        let alias = |f: &mut Map<String, Value>, from: &str, to: &str| {
            if let Some(Value::String(v)) = f.get(from).cloned() {
                f.entry(to.to_string()).or_insert(Value::String(v.replace('+', " ")));
            }
        };
        alias(&mut f, "cs(User-Agent)", "c-useragent");
        alias(&mut f, "cs(Referer)", "cs-referer");
        alias(&mut f, "cs(Host)", "cs-host");
        if let Some(stem) = f.get("cs-uri-stem").and_then(Value::as_str).map(str::to_string) {
            let target = match f.get("cs-uri-query").and_then(Value::as_str) {
                Some(q) => format!("{stem}?{q}"),
                None => stem.clone(),
            };
            let mut tmp = Map::new();
            uri_fields(&mut tmp, &target);
            for (k, v) in tmp {
                f.entry(k).or_insert(v);
            }
        }
        let timestamp = match (date, time) {
            (Some(d), Some(t)) => Some(
                timefmt::parse_iso(&format!("{d}T{t}"), 0)
                    .ok_or_else(|| ParseError::W3c(format!("{d} {t} is not a date and time")))?,
            ),
            _ => None,
        };
        let host = f.get("s-computername").and_then(Value::as_str).map(str::to_string);
        let mut log = Log {
            format: Some("w3c".into()),
            logsource: LogSource {
                product: Some("windows".into()),
                category: Some("webserver".into()),
                service: Some("iis".into()),
            },
            program: Some("iis".into()),
            message: f.get("c-uri").and_then(Value::as_str).map(str::to_string),
            fields: f,
            original: Some(Value::String(s.to_string())),
            ..Log::default()
        };
        add_received(&mut log, ctx);
        Ok(log_event(ctx, timestamp, host, log))
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
    fn combined_line() {
        let line = br#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/kibana-search.png?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh) \"quoted\"""#;
        assert!(looks_like_combined(line));
        let ev = parse_combined(line, Flavor::Apache, &ctx()).unwrap();
        assert_eq!(ev.timestamp, "2015-05-17T10:05:03Z".parse().unwrap());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.category.as_deref(), Some("webserver"));
        assert_eq!(log.logsource.product.as_deref(), Some("apache"));
        let f = &log.fields;
        assert_eq!(f["c-ip"], "83.149.9.216");
        assert_eq!(f["cs-method"], "GET");
        assert_eq!(f["c-uri"], "/presentations/kibana-search.png?x=1");
        assert_eq!(f["cs-uri-stem"], "/presentations/kibana-search.png");
        assert_eq!(f["cs-uri-query"], "x=1");
        assert_eq!(f["c-uri-extension"], "png");
        assert_eq!(f["cs-version"], "HTTP/1.1");
        assert_eq!(f["sc-status"], 200);
        assert_eq!(f["sc-bytes"], 203023);
        assert_eq!(f["cs-referer"], "http://semicomplete.com/");
        assert_eq!(f["c-useragent"], "Mozilla/5.0 (Macintosh) \"quoted\"");
        assert_eq!(log.format.as_deref(), Some("combined"));
        assert_eq!(log.original.as_ref().and_then(Value::as_str).map(str::len), Some(line.len()));
    }

    #[test]
    fn common_format_offsets_and_nginx() {
        let ev = parse_combined(
            b"192.168.105.83 - admin [11/Jul/2018:08:41:28 +0300] \"GET /manager HTTP/1.1\" 302 -",
            Flavor::Nginx,
            &ctx(),
        )
        .unwrap();
        assert_eq!(ev.timestamp.unix_micros(), "2018-07-11T05:41:28Z".parse::<Timestamp>().unwrap().unix_micros());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.product.as_deref(), Some("nginx"));
        assert_eq!(log.fields["cs-username"], "admin");
        assert!(!log.fields.contains_key("sc-bytes"));
        assert_eq!(log.format.as_deref(), Some("common"));
    }

    #[test]
    fn bad_access_lines_say_why() {
        for (line, why) in [
            (&b"1.2.3.4 - - 17/May/2015"[..], "[time]"),
            (b"1.2.3.4 - - [17/Mai/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1", "CLF time"),
            (b"1.2.3.4 - - [17/May/2015:10:05:03 +0000] GET / 200 1", "quoted request"),
            (b"1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" OK 1", "status"),
            (b"1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\"", "user agent"),
        ] {
            let e = parse_combined(line, Flavor::Apache, &ctx()).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let line = b"1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET /\xc3\xa9 HTTP/1.1\" 200 1 \"-\" \"\\\"";
        for n in 0..=line.len() {
            let _ = parse_combined(&line[..n], Flavor::Apache, &ctx());
        }
    }

    #[test]
    fn w3c_header_driven() {
        let mut w = W3c::new();
        let lines = [
            "#Software: Microsoft Internet Information Services 10.0",
            "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status time-taken",
            "2019-09-03 10:13:36 10.0.2.15 GET /erp/conn.aspx proxy&port=3389 80 - 10.0.2.17 Mozilla/5.0+(Windows+NT) 200 7",
        ];
        assert!(w.push(lines[0].as_bytes(), &ctx()).unwrap().is_none());
        assert!(w.push(lines[1].as_bytes(), &ctx()).unwrap().is_none());
        assert_eq!(w.fields().len(), 12);
        let ev = w.push(lines[2].as_bytes(), &ctx()).unwrap().unwrap();
        assert_eq!(ev.timestamp, "2019-09-03T10:13:36Z".parse().unwrap());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.service.as_deref(), Some("iis"));
        assert_eq!(log.logsource.product.as_deref(), Some("windows"));
        assert_eq!(log.fields["cs-uri-query"], "proxy&port=3389");
        assert_eq!(log.fields["c-uri"], "/erp/conn.aspx?proxy&port=3389");
        assert_eq!(log.fields["c-uri-extension"], "aspx");
        assert_eq!(log.fields["c-useragent"], "Mozilla/5.0 (Windows NT)");
        assert_eq!(log.fields["sc-status"], 200);
        assert!(!log.fields.contains_key("cs-username"));
        let e = w.push(b"2019-09-03 10:13:36 10.0.2.15 GET", &ctx()).unwrap_err();
        assert!(e.to_string().contains("4 values for 12"), "{e}");
        // Without a header: the IIS defaults.
        let mut w = W3c::new();
        let line = b"2019-09-03 10:13:44 10.0.2.15 POST /erp/conn.aspx proxy 80 - 10.0.2.17 - - 200 0 0 4";
        assert!(looks_like_w3c(line));
        let ev = w.push(line, &ctx()).unwrap().unwrap();
        assert_eq!(ev.log.unwrap().fields["cs-method"], "POST");
    }
}
