//! HTTP ingest: the body of a `POST /api/ingest` into events and dead letters.
//!
//! Accepted bodies: one JSON object, a JSON array of objects, JSON lines, concatenated
//! (pretty-printed) objects. With `Content-Type: text/plain` (or none), lines that are not JSON
//! are read as syslog messages. Each item is normalized by shape (Windows events in the evtx,
//! Winlogbeat or NXLog shape, generic JSON logs); an item that cannot be read becomes a dead
//! letter (source `http <remote>`) with the reason, and costs nothing but itself.
//!
//! The caller bounds the body size (the HTTP layer) and publishes with [`publish_outcome`].

use crate::parse::json::{Item, split_document};
use crate::parse::{self, ParseContext, ParseError};
use crate::sink::{SourceContext, stamp};
use crate::stats::InputStats;
use soc_bus::{Bus, BusError, Record, publish_events};
use soc_model::{DeadLetter, Event, Kind};

/// The input name of HTTP ingest (`log.input`, metrics label).
pub const INPUT: &str = "http";

static STATS: InputStats = InputStats::new(INPUT);

/// Counters of HTTP ingest (process-wide).
pub fn stats() -> &'static InputStats {
    &STATS
}

/// What a body turned into.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestOutcome {
    pub events: Vec<Event>,
    pub dead_letters: Vec<DeadLetter>,
}

impl IngestOutcome {
    /// Sets the collector's name, segment and the record ids (see [`stamp`]).
    pub fn stamp(&mut self, sensor: &str, segment: Option<&str>) {
        for ev in &mut self.events {
            stamp(ev, sensor, segment);
        }
    }
}

/// Parses a request body (see the module docs). `remote` is the client address
/// (`10.0.0.5:51514` or `10.0.0.5`): the host of records that name none.
pub fn parse_http_body(body: &[u8], content_type: Option<&str>, remote: &str) -> IngestOutcome {
    parse_body(body, content_type, remote, 0)
}

/// [`parse_http_body`] with the collector's settings: local time zone, then stamped.
pub fn parse_http_body_with(
    body: &[u8],
    content_type: Option<&str>,
    remote: &str,
    ctx: &SourceContext,
) -> IngestOutcome {
    let mut out = parse_body(body, content_type, remote, ctx.local_offset_secs);
    out.stamp(&ctx.sensor, ctx.segment.as_deref());
    out
}

fn parse_body(body: &[u8], content_type: Option<&str>, remote: &str, local_offset_secs: i32) -> IngestOutcome {
    let peer = remote
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| remote.trim().to_string());
    let source = format!("{INPUT} {remote}");
    let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let allow_text = match mime.as_deref() {
        None | Some("") => true,
        Some(m) => m.starts_with("text/") || m == "application/syslog" || m == "application/octet-stream",
    };
    let mut out = IngestOutcome::default();
    STATS.bytes(body.len());
    for item in split_document(body, allow_text) {
        STATS.received(1);
        let ctx = ParseContext { input: INPUT, peer: Some(&peer), received: parse::receive_time(), local_offset_secs };
        let (result, raw) = match item {
            Item::Value(v) => {
                let raw = || serde_json::to_vec(&v).unwrap_or_default();
                match parse::json::parse_value(v.clone(), &ctx) {
                    Ok(ev) => (Ok(ev), Vec::new()),
                    Err(e) => (Err(e), raw()),
                }
            }
            Item::Text(line) => (parse::parse_line(line, &ctx), line.to_vec()),
            Item::Bad { raw, error } => (Err(error), raw.to_vec()),
        };
        match result {
            Ok(ev) => out.events.push(ev),
            Err(ParseError::Empty) => {}
            Err(e) => out.dead_letters.push(DeadLetter::new(source.clone(), e.to_string(), &raw)),
        }
    }
    out
}

/// Publishes an outcome: events keyed by host, dead letters keyed by source.
pub async fn publish_outcome(bus: &dyn Bus, outcome: &IngestOutcome) -> Result<(), BusError> {
    if !outcome.events.is_empty() {
        publish_events(bus, &outcome.events).await?;
        STATS.parsed(outcome.events.len() as u64);
    }
    if !outcome.dead_letters.is_empty() {
        let recs = outcome.dead_letters.iter().map(|d| Record::new(d.source.clone(), d.to_json())).collect();
        bus.publish(Kind::DeadLetter, recs).await?;
        STATS.dead_lettered(outcome.dead_letters.len() as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_array_and_single_object() {
        let o = parse_http_body(
            b"{\"message\":\"a\"}\n{\"message\":\"b\"}\n",
            Some("application/x-ndjson"),
            "10.0.0.5:5000",
        );
        assert_eq!((o.events.len(), o.dead_letters.len()), (2, 0));
        assert_eq!(o.events[0].host.as_deref(), Some("10.0.0.5"));
        assert_eq!(o.events[0].log.as_ref().unwrap().input.as_deref(), Some("http"));
        let o = parse_http_body(br#"[{"message":"a"},{"message":"b"},{"message":"c"}]"#, Some("application/json"), "h");
        assert_eq!(o.events.len(), 3);
        let o = parse_http_body(br#"{"message":"a"}"#, None, "h");
        assert_eq!(o.events.len(), 1);
        assert!(parse_http_body(b"", None, "h").events.is_empty());
    }

    #[test]
    fn bad_lines_are_dead_letters_with_reasons() {
        let o = parse_http_body(b"{\"message\":\"a\"}\n{bad json\n42\n", Some("application/json"), "10.0.0.5:5000");
        assert_eq!(o.events.len(), 1);
        assert_eq!(o.dead_letters.len(), 2);
        assert_eq!(o.dead_letters[0].source, "http 10.0.0.5:5000");
        assert!(o.dead_letters[0].reason.contains("line 2"), "{}", o.dead_letters[0].reason);
        assert_eq!(o.dead_letters[0].raw, "{bad json");
        assert!(o.dead_letters[1].reason.contains("line 3: not a JSON object"), "{}", o.dead_letters[1].reason);
        // Plain text is not JSON when JSON was announced ...
        let o = parse_http_body(b"<13>Jun 15 10:00:00 h a: x\n", Some("application/json"), "h");
        assert_eq!((o.events.len(), o.dead_letters.len()), (0, 1));
        // ... and is syslog otherwise.
        let o = parse_http_body(b"<13>Jun 15 10:00:00 h a: x\n<999>bad\n", Some("text/plain; charset=utf-8"), "h");
        assert_eq!((o.events.len(), o.dead_letters.len()), (1, 1));
        assert!(o.dead_letters[0].reason.contains("PRI"));
    }

    #[test]
    fn stamped_with_the_collector_settings() {
        let ctx =
            SourceContext { sensor: "col-1".into(), segment: Some("ministry".into()), ..SourceContext::default() };
        let o = parse_http_body_with(
            br#"{"message":"a","timestamp":"2024-06-15T10:00:00"}"#,
            None,
            "h",
            &SourceContext { local_offset_secs: 7 * 3600, ..ctx },
        );
        let ev = &o.events[0];
        assert_eq!(ev.sensor.as_deref(), Some("col-1"));
        assert_eq!(ev.segment.as_deref(), Some("ministry"));
        assert_eq!(ev.timestamp, "2024-06-15T10:00:00+07:00".parse().unwrap());
        assert_eq!(ev.id.as_deref(), Some(ev.compute_id().as_str()));
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let doc = br##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":{"#text":"1"},"TimeCreated":{"#attributes":{"SystemTime":"2020-10-05T20:43:58.3517448Z"}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"PC"},"EventData":{"Image":"C:\\x.exe","Data":{"#text":["a",1]}}}}
{"winlog":{"event_id":"4625","channel":"Security","event_data":{"TargetUserName":"bob"}},"@timestamp":"2024-06-15T03:04:05Z"}
{"EventID":4688,"Channel":"Security","Hostname":"H","TimeCreated":"2020-10-18 10:56:18.799"}
["<13>Jun 15 10:00:00 h a: x", {"message":"m","timestamp":1718445600}]
"##;
        for n in 0..=doc.len() {
            for ct in [None, Some("application/json")] {
                let o = parse_http_body(&doc[..n], ct, "10.0.0.1:1");
                assert!(o.events.len() + o.dead_letters.len() <= 6);
            }
        }
        let o = parse_http_body(doc, None, "10.0.0.1:1");
        assert_eq!((o.events.len(), o.dead_letters.len()), (5, 0), "{:?}", o.dead_letters);
    }
}
