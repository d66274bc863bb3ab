//! Parsers: bytes or JSON values in, normalized [`Event`]s out.
//!
//! Every parser is a pure function of its input and a [`ParseContext`] (which input, who sent
//! it, when it arrived). None of them panics on any input; what cannot be read is a
//! [`ParseError`] whose text is the dead letter's reason.
//!
//! Record ids: the store deduplicates by [`Event::compute_id`], a hash of the content. Windows
//! events carry their own identity (computer, channel, record id), so a re-sent event is stored
//! once. Text lines can legitimately repeat (the same failed login twice in a second), so the
//! parsers add the receive time (`log.received`, strictly increasing per process, see
//! [`receive_time`]) to every non-Windows record as a discriminator.

pub mod auditd;
pub mod json;
pub mod syslog;
mod timefmt;
pub mod web;
pub mod windows;

pub use timefmt::parse_utc_offset;

use serde_json::Value;
use soc_model::{Event, EventType, Log, Timestamp};
use std::sync::atomic::{AtomicI64, Ordering};

/// Where and when a record was received.
#[derive(Clone, Copy, Debug)]
pub struct ParseContext<'a> {
    /// Input that received it: `syslog-udp`, `syslog-tcp`, `http`, ... (becomes `log.input`).
    pub input: &'a str,
    /// The sender's address without port: the record's `host` when it names none.
    pub peer: Option<&'a str>,
    /// Receive time: the event time when the record has none, the reference for year-less
    /// timestamps, and the discriminator of text records.
    pub received: Timestamp,
    /// UTC offset (seconds east) assumed for timestamps written without one (RFC 3164).
    pub local_offset_secs: i32,
}

impl<'a> ParseContext<'a> {
    /// A context received now (see [`receive_time`]), local times taken as UTC.
    pub fn new(input: &'a str, peer: Option<&'a str>) -> Self {
        ParseContext { input, peer, received: receive_time(), local_offset_secs: 0 }
    }
}

/// Why a record could not be normalized (the dead letter's reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty record")]
    Empty,
    #[error("invalid syslog PRI: {0}")]
    Pri(String),
    #[error("invalid RFC 5424 message: {0}")]
    Rfc5424(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid Windows event: {0}")]
    Windows(String),
    #[error("invalid audit record: {0}")]
    Auditd(String),
    #[error("invalid access log line: {0}")]
    AccessLog(String),
    #[error("invalid W3C log line: {0}")]
    W3c(String),
    #[error("record of {len} bytes exceeds max_line ({max} bytes); kept the first {max} bytes")]
    TooLong { len: usize, max: usize },
}

/// A strictly increasing receive time for this process: the wall clock, or one microsecond
/// after the previous value when the clock has not moved (or moved back).
pub fn receive_time() -> Timestamp {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = Timestamp::now().unix_micros();
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = if now > prev { now } else { prev.saturating_add(1) };
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Timestamp::from_unix_micros(next),
            Err(p) => prev = p,
        }
    }
}

/// Parses one text record as the network inputs receive it, by sniffing: a JSON object
/// (NXLog, Winlogbeat over TCP, any JSON log) when it starts with `{`, syslog when it starts
/// with `<PRI>`, an audit record (`type=... msg=audit(`), a combined access log line
/// (`HOST IDENT USER [time] "request" ...`, attributed to Apache), a W3C line with the IIS
/// default columns (falling back to syslog when the columns do not match), syslog otherwise.
pub fn parse_line(raw: &[u8], ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let trimmed = trim_ascii(raw);
    if trimmed.is_empty() {
        return Err(ParseError::Empty);
    }
    match trimmed[0] {
        b'{' => return json::parse_text(trimmed, ctx),
        b'<' => return syslog::parse(raw, ctx),
        _ => {}
    }
    if auditd::looks_like(trimmed) {
        return auditd::parse(trimmed, ctx);
    }
    if web::looks_like_combined(trimmed) {
        return web::parse_combined(trimmed, web::Flavor::Apache, ctx);
    }
    if web::looks_like_w3c(trimmed)
        && let Ok(Some(ev)) = web::W3c::new().push(trimmed, ctx)
    {
        return Ok(ev);
    }
    syslog::parse(raw, ctx)
}

/// The format of an input's text lines (config key `format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Sniffed per line (see [`parse_line`]); audit records are joined and `#Fields:`
    /// directives switch to W3C.
    #[default]
    Auto,
    Syslog,
    Json,
    Auditd,
    Apache,
    Nginx,
    Iis,
}

/// A stateful line decoder: joins audit records into events and follows W3C `#Fields:`
/// directives. Each call returns the events completed so far and the error of the line just
/// pushed (if any), oldest first.
pub struct Decoder {
    format: Format,
    w3c: web::W3c,
    w3c_header: bool,
    audit: auditd::Assembler,
}

impl Decoder {
    pub fn new(format: Format) -> Self {
        Decoder { format, w3c: web::W3c::new(), w3c_header: false, audit: auditd::Assembler::new() }
    }

    /// Records held back (audit records waiting for the rest of their event).
    pub fn pending(&self) -> usize {
        self.audit.pending()
    }

    /// Decodes one line.
    pub fn push(&mut self, raw: &[u8], ctx: &ParseContext<'_>) -> Vec<Result<Event, ParseError>> {
        let mut out = Vec::new();
        self.push_each(raw, ctx, |r| out.push(r));
        out
    }

    /// Decodes one line, handing each result to `f` (oldest first) instead of collecting them:
    /// the single-record formats give their record straight to `f`.
    pub fn push_each(&mut self, raw: &[u8], ctx: &ParseContext<'_>, mut f: impl FnMut(Result<Event, ParseError>)) {
        let t = trim_ascii(raw);
        if t.is_empty() {
            return;
        }
        let w3c = |d: &mut Self, f: &mut dyn FnMut(Result<Event, ParseError>)| match d.w3c.push(t, ctx) {
            Ok(Some(ev)) => f(Ok(ev)),
            Ok(None) => {}
            Err(e) => f(Err(e)),
        };
        match self.format {
            Format::Syslog => f(syslog::parse(raw, ctx)),
            Format::Json => f(json::parse_text(t, ctx)),
            Format::Auditd => self.audit.push(t, ctx).into_iter().for_each(f),
            Format::Apache => f(web::parse_combined(t, web::Flavor::Apache, ctx)),
            Format::Nginx => f(web::parse_combined(t, web::Flavor::Nginx, ctx)),
            Format::Iis => w3c(self, &mut f),
            Format::Auto => {
                if t[0] == b'#' {
                    self.w3c_header |= t.starts_with(b"#Fields:");
                    return w3c(self, &mut f);
                }
                if self.w3c_header && web::looks_like_w3c(t) {
                    return w3c(self, &mut f);
                }
                if auditd::looks_like(t) {
                    return self.audit.push(t, ctx).into_iter().for_each(f);
                }
                f(parse_line(raw, ctx))
            }
        }
    }

    /// A syslog line's event normalized straight into a new last element of `events` (an
    /// event is large: building it and handing it through [`Self::push_each`]'s callback costs
    /// several copies of it). `None` when the line is not one `push_each` would parse as
    /// syslog (the caller gives it to `push_each`); the parse error of a syslog line otherwise.
    pub(crate) fn push_syslog_into(
        &mut self,
        raw: &[u8],
        ctx: &ParseContext<'_>,
        events: &mut Vec<Event>,
    ) -> Option<Result<(), ParseError>> {
        let t = trim_ascii(raw);
        // The same choice as `push_each` makes: syslog when so configured, or a `<PRI>` line
        // that is neither a W3C line (after a `#Fields:` header) nor an audit record.
        let syslog = match self.format {
            Format::Syslog => !t.is_empty(),
            Format::Auto => {
                t.first() == Some(&b'<') && !(self.w3c_header && web::looks_like_w3c(t)) && !auditd::looks_like(t)
            }
            _ => false,
        };
        if !syslog {
            return None;
        }
        Some(
            syslog::parse_message(raw, ctx.received, ctx.local_offset_secs)
                .map(|m| syslog::push_event(m, raw, ctx, events)),
        )
    }

    /// Completes what is held back (end of input, or the input went idle).
    pub fn finish(&mut self, ctx: &ParseContext<'_>) -> Vec<Result<Event, ParseError>> {
        self.audit.finish(ctx)
    }
}

/// The envelope of a normalized log: `event_type = log`, the event time (or the receive
/// time), the host (or the sender), the input.
pub(crate) fn log_event(ctx: &ParseContext<'_>, timestamp: Option<Timestamp>, host: Option<String>, log: Log) -> Event {
    let mut ev = Event::new(EventType::Log, ctx.received);
    fill_log_event(&mut ev, ctx, timestamp, host, log);
    ev
}

/// [`log_event`] on an event already in place (a new `log` event, see [`Event::new`]).
pub(crate) fn fill_log_event(
    ev: &mut Event,
    ctx: &ParseContext<'_>,
    timestamp: Option<Timestamp>,
    host: Option<String>,
    mut log: Log,
) {
    ev.timestamp = timestamp.unwrap_or(ctx.received);
    ev.host = host.filter(|h| !h.is_empty()).or_else(|| ctx.peer.map(str::to_string));
    log.input = Some(ctx.input.to_string());
    if let Some(peer) = ctx.peer {
        log.extra.insert("peer".into(), Value::String(peer.to_string()));
    }
    ev.log = Some(log);
}

/// Adds the receive time to a text record (see the module docs).
pub(crate) fn add_received(log: &mut Log, ctx: &ParseContext<'_>) {
    log.extra.insert("received".into(), Value::String(ctx.received.to_string()));
}

pub fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !is_blank(*c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_blank(*c)).map(|p| p + 1).unwrap_or(start);
    &b[start..end.max(start)]
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// Text of a byte string, invalid UTF-8 replaced.
pub(crate) fn lossy(b: &[u8]) -> String {
    // Valid text (nearly every line) is checked by `from_utf8`, which takes ASCII a word at a
    // time; `from_utf8_lossy` walks it byte by byte.
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `lines` the way the sources do (syslog in place, the rest through `push_each`).
    fn in_place(format: Format, lines: &[&[u8]], ctx: &ParseContext<'_>) -> (Vec<Event>, Vec<ParseError>, usize) {
        let mut d = Decoder::new(format);
        let (mut events, mut errors, mut direct) = (Vec::new(), Vec::new(), 0);
        for line in lines {
            match d.push_syslog_into(line, ctx, &mut events) {
                Some(Ok(())) => direct += 1,
                Some(Err(e)) => errors.push(e),
                None => d.push_each(line, ctx, |r| match r {
                    Ok(ev) => events.push(ev),
                    Err(e) => errors.push(e),
                }),
            }
        }
        events.extend(d.finish(ctx).into_iter().filter_map(Result::ok));
        (events, errors, direct)
    }

    fn through_push_each(format: Format, lines: &[&[u8]], ctx: &ParseContext<'_>) -> (Vec<Event>, Vec<ParseError>) {
        let mut d = Decoder::new(format);
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        for line in lines {
            d.push_each(line, ctx, |r| match r {
                Ok(ev) => events.push(ev),
                Err(e) => errors.push(e),
            });
        }
        events.extend(d.finish(ctx).into_iter().filter_map(Result::ok));
        (events, errors)
    }

    #[test]
    fn syslog_lines_normalized_in_place_equal_the_push_each_events() {
        let ctx = ParseContext {
            input: "syslog-tcp",
            peer: Some("192.0.2.10"),
            received: Timestamp::from_unix_micros(1_718_445_600_000_000),
            local_offset_secs: 3600,
        };
        let lines: &[&[u8]] = &[
            b"<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 22 ssh2\n",
            b"<165>1 2024-06-15T10:00:00.123+07:00 h app 42 ID7 [ex@32473 a=\"1\"] msg \xe2\x82\xac",
            b"<13>hello",
            b"<999>bad pri",
            b"<34>1 notatime host app - - - msg",
            b"{\"message\":\"m\",\"host\":\"h\"}",
            b"type=SYSCALL msg=audit(1718445600.123:42): arch=c000003e syscall=59 success=yes",
            b"type=EOE msg=audit(1718445600.123:42):",
            b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken",
            b"<38>Jun 14 08:01:02 web01 sshd[1]: after a W3C header",
            b"Jun 15 10:00:00 web01 CRON[1]: (root) CMD (x)",
            b"  <14>Jun 15 10:00:00 h a: leading blanks",
        ];
        for format in [Format::Auto, Format::Syslog] {
            let (events, errors, direct) = in_place(format, lines, &ctx);
            let (want_events, want_errors) = through_push_each(format, lines, &ctx);
            assert_eq!(events, want_events, "{format:?}");
            assert_eq!(errors, want_errors, "{format:?}");
            assert!(direct >= 5, "{format:?}: {direct} lines in place");
        }
        // Formats that are not syslog never take the in-place path.
        let (_, _, direct) = in_place(Format::Json, lines, &ctx);
        assert_eq!(direct, 0);
    }
}
