//! Generic JSON: lines, arrays, concatenated objects.
//!
//! Each value is normalized by shape: Windows events ([`super::windows`]) first; any other
//! object is a generic log whose well-known keys (`message`, `@timestamp`, `host`, `program`,
//! `level`, `pid`, a `logsource` object ...) fill the [`Log`] and whose other keys are kept in
//! `fields` as they are; a string is a text line (syslog, or JSON again). Numbers, booleans,
//! `null` and nested arrays are errors.

use super::{ParseContext, ParseError, add_received, log_event, timefmt, windows};
use serde_json::{Map, Value};
use soc_model::{Event, Log, LogSource, Timestamp};

/// One item of a document.
#[derive(Debug, PartialEq)]
pub enum Item<'a> {
    /// A JSON value.
    Value(Value),
    /// A line that is not JSON (only when text lines are allowed).
    Text(&'a [u8]),
    /// A line (or stretch) that could not be read, and why.
    Bad { raw: &'a [u8], error: ParseError },
}

/// Splits a body into items: a single value (an array yields its elements), concatenated
/// values (JSON lines, pretty-printed objects one after the other), or — when that fails —
/// line by line, so that one bad line costs only itself. Lines that do not start with `{`
/// or `[` are [`Item::Text`] when `allow_text`, errors otherwise.
pub fn split_document(body: &[u8], allow_text: bool) -> Vec<Item<'_>> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let trimmed = super::trim_ascii(body);
    if trimmed.is_empty() {
        return Vec::new();
    }
    let json_start = matches!(trimmed[0], b'{' | b'[');
    if json_start {
        if let Ok(v) = serde_json::from_slice::<Value>(trimmed) {
            return explode(v);
        }
        let mut values = Vec::new();
        let mut ok = true;
        for r in serde_json::Deserializer::from_slice(trimmed).into_iter::<Value>() {
            match r {
                Ok(v) => values.push(v),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return values.into_iter().flat_map(explode).collect();
        }
    }
    let mut out = Vec::new();
    for (n, line) in body.split(|c| *c == b'\n').enumerate() {
        let t = super::trim_ascii(line);
        if t.is_empty() {
            continue;
        }
        if matches!(t[0], b'{' | b'[') {
            match serde_json::from_slice::<Value>(t) {
                Ok(v) => out.extend(explode(v)),
                Err(e) => out.push(Item::Bad { raw: t, error: ParseError::Json(format!("line {}: {e}", n + 1)) }),
            }
        } else if allow_text {
            out.push(Item::Text(t));
        } else {
            out.push(Item::Bad {
                raw: t,
                error: ParseError::Json(format!("line {}: not a JSON object or array", n + 1)),
            });
        }
    }
    out
}

fn explode<'a>(v: Value) -> Vec<Item<'a>> {
    match v {
        Value::Array(a) => a.into_iter().map(Item::Value).collect(),
        v => vec![Item::Value(v)],
    }
}

/// Parses one JSON text holding a single value (a line from a network input).
pub fn parse_text(text: &[u8], ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_slice(super::trim_ascii(text)).map_err(|e| ParseError::Json(e.to_string()))?;
    parse_value(v, ctx)
}

/// Normalizes one JSON value.
pub fn parse_value(v: Value, ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    if windows::detect(&v).is_some() {
        return windows::parse(v, ctx);
    }
    match v {
        Value::Object(o) => Ok(generic(o, ctx)),
        // A text line inside JSON (an array of syslog lines, a JSON text in a string).
        Value::String(s) => super::parse_line(s.as_bytes(), ctx),
        Value::Array(_) => Err(ParseError::Json("nested array: expected an object".into())),
        Value::Null => Err(ParseError::Json("null: expected an object".into())),
        Value::Bool(_) | Value::Number(_) => Err(ParseError::Json(format!("{v}: expected an object"))),
    }
}

const MESSAGE_KEYS: [&str; 6] = ["message", "msg", "Message", "log", "text", "MESSAGE"];
const TIME_KEYS: [&str; 11] = [
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "datetime",
    "date",
    "eventTime",
    "EventTime",
    "event_time",
    "TimeCreated",
    "__REALTIME_TIMESTAMP",
];
const HOST_KEYS: [&str; 9] =
    ["host", "hostname", "host.name", "Hostname", "host_name", "computer", "Computer", "computer_name", "_HOSTNAME"];
const PROGRAM_KEYS: [&str; 8] =
    ["program", "appname", "app_name", "application", "app", "process_name", "ident", "SYSLOG_IDENTIFIER"];
const SEVERITY_KEYS: [&str; 5] = ["level", "severity", "log.level", "log_level", "loglevel"];

fn take_string(o: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    for k in keys {
        if let Some(Value::String(s)) = o.get(*k) {
            let s = s.clone();
            o.remove(*k);
            return Some(s);
        }
    }
    None
}

fn take_time(o: &mut Map<String, Value>, offset: i32) -> Option<Timestamp> {
    for k in TIME_KEYS {
        let t = match o.get(k) {
            Some(Value::String(s)) => timefmt::parse_iso(s.trim(), offset)
                .or_else(|| s.trim().parse::<f64>().ok().and_then(timefmt::from_epoch)),
            Some(Value::Number(n)) => n.as_f64().and_then(|f| {
                // journald's __REALTIME_TIMESTAMP is in microseconds.
                if k == "__REALTIME_TIMESTAMP" { timefmt::from_epoch(f / 1e6) } else { timefmt::from_epoch(f) }
            }),
            _ => None,
        };
        if t.is_some() {
            o.remove(k);
            return t;
        }
    }
    None
}

fn take_host(o: &mut Map<String, Value>) -> Option<String> {
    for k in HOST_KEYS {
        match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() => {
                let s = s.clone();
                o.remove(k);
                return Some(s);
            }
            // ECS `host: {name, hostname, ip, ...}`: the name, the object stays in fields.
            Some(Value::Object(h)) => {
                if let Some(name) = ["name", "hostname"].iter().find_map(|n| h.get(*n).and_then(Value::as_str)) {
                    return Some(name.to_string());
                }
            }
            _ => {}
        }
    }
    None
}

fn take_pid(o: &mut Map<String, Value>) -> Option<u32> {
    let pid = match o.get("pid")? {
        Value::Number(n) => n.as_u64().and_then(|p| u32::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    if pid.is_some() {
        o.remove("pid");
    }
    pid
}

fn generic(mut o: Map<String, Value>, ctx: &ParseContext<'_>) -> Event {
    let original = Value::Object(o.clone());
    let message = take_string(&mut o, &MESSAGE_KEYS);
    let timestamp = take_time(&mut o, ctx.local_offset_secs);
    let host = take_host(&mut o);
    let program = take_string(&mut o, &PROGRAM_KEYS);
    let severity = take_string(&mut o, &SEVERITY_KEYS).map(|s| s.to_ascii_lowercase());
    let facility = take_string(&mut o, &["facility"]);
    let pid = take_pid(&mut o);
    let logsource = match o.get("logsource") {
        Some(v @ Value::Object(_)) => match serde_json::from_value::<LogSource>(v.clone()) {
            Ok(ls) => {
                o.remove("logsource");
                ls
            }
            Err(_) => LogSource::default(),
        },
        _ => LogSource::default(),
    };
    let mut log = Log {
        format: Some("json".into()),
        logsource,
        facility,
        severity,
        program,
        pid,
        message,
        fields: o,
        original: Some(original),
        ..Log::default()
    };
    add_received(&mut log, ctx);
    log_event(ctx, timestamp, host, log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ParseContext<'static> {
        ParseContext {
            input: "http",
            peer: Some("198.51.100.7"),
            received: "2024-06-15T12:00:00Z".parse().unwrap(),
            local_offset_secs: 0,
        }
    }

    fn values(items: Vec<Item<'_>>) -> Vec<Value> {
        items
            .into_iter()
            .map(|i| match i {
                Item::Value(v) => v,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn documents_single_array_lines_and_concatenated() {
        assert_eq!(values(split_document(br#" {"a":1} "#, false)), vec![json!({"a":1})]);
        assert_eq!(values(split_document(br#"[{"a":1},{"b":2}]"#, false)).len(), 2);
        assert_eq!(values(split_document(b"{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n", false)).len(), 3);
        assert_eq!(values(split_document(b"{\n  \"a\": 1\n}\n{\n  \"b\": 2\n}\n", false)).len(), 2);
        assert_eq!(values(split_document(b"\xEF\xBB\xBF{\"a\":1}", false)).len(), 1);
        assert!(split_document(b"  \n ", false).is_empty());
    }

    #[test]
    fn one_bad_line_costs_only_itself() {
        let items = split_document(b"{\"a\":1}\n{\"b\":\n{\"c\":3}\nplain text\n", false);
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[0], Item::Value(_)));
        match &items[1] {
            Item::Bad { raw, error } => {
                assert_eq!(*raw, b"{\"b\":");
                assert!(error.to_string().contains("line 2"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&items[2], Item::Value(_)));
        assert!(matches!(&items[3], Item::Bad { .. }));
        let items = split_document(b"<13>Jun 15 10:00:00 h a: x\n{\"c\":3}\n", true);
        assert_eq!(items[0], Item::Text(b"<13>Jun 15 10:00:00 h a: x"));
    }

    #[test]
    fn generic_objects() {
        let v = json!({"@timestamp":"2024-06-15T10:00:00.5Z","message":"user login","host":"app01","level":"WARN",
            "program":"api","pid":"42","user":"alice","nested":{"k":1}});
        let ev = parse_value(v.clone(), &ctx()).unwrap();
        assert_eq!(ev.timestamp, "2024-06-15T10:00:00.5Z".parse().unwrap());
        assert_eq!(ev.host.as_deref(), Some("app01"));
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.format.as_deref(), Some("json"));
        assert_eq!(log.message.as_deref(), Some("user login"));
        assert_eq!(log.severity.as_deref(), Some("warn"));
        assert_eq!(log.program.as_deref(), Some("api"));
        assert_eq!(log.pid, Some(42));
        assert_eq!(
            log.fields,
            serde_json::from_value::<Map<String, Value>>(json!({"user":"alice","nested":{"k":1}})).unwrap()
        );
        assert_eq!(log.original.as_ref(), Some(&v));
        assert_eq!(log.input.as_deref(), Some("http"));

        // Anything else: all in fields, host from the sender, time from the receive time.
        let ev = parse_value(json!({"foo":"bar","time":"not a time"}), &ctx()).unwrap();
        assert_eq!(ev.host.as_deref(), Some("198.51.100.7"));
        assert_eq!(ev.timestamp, ctx().received);
        assert_eq!(ev.log.as_ref().unwrap().fields["time"], "not a time");

        // ECS host object, epoch millis, a logsource given by the sender.
        let ev = parse_value(
            json!({"host":{"name":"web7","ip":["10.0.0.7"]},"timestamp":1718445600123u64,
                   "logsource":{"product":"linux","service":"auth"}}),
            &ctx(),
        )
        .unwrap();
        assert_eq!(ev.host.as_deref(), Some("web7"));
        assert_eq!(ev.timestamp.unix_micros(), 1_718_445_600_123_000);
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.service.as_deref(), Some("auth"));
        assert!(log.fields.contains_key("host"));
    }

    #[test]
    fn strings_scalars_and_windows() {
        let ev = parse_value(json!("<38>Jun 14 08:01:02 web01 sshd[1]: hi"), &ctx()).unwrap();
        assert_eq!(ev.log.as_ref().unwrap().format.as_deref(), Some("rfc3164"));
        for v in [json!(1), json!(null), json!(true), json!([[1]])] {
            assert!(matches!(parse_value(v, &ctx()), Err(ParseError::Json(_))));
        }
        let ev = parse_value(json!({"winlog":{"event_id":4624,"channel":"Security"}}), &ctx()).unwrap();
        assert_eq!(ev.log.as_ref().unwrap().format.as_deref(), Some("windows"));
        assert!(parse_text(b"{nope", &ctx()).is_err());
    }
}
