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

pub mod json;
pub mod syslog;
mod timefmt;
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

/// Parses one text record as the network inputs receive it: a JSON object (NXLog, Winlogbeat
/// over TCP, any JSON log) when it starts with `{`, a syslog message otherwise.
pub fn parse_line(raw: &[u8], ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    let trimmed = trim_ascii(raw);
    if trimmed.is_empty() {
        return Err(ParseError::Empty);
    }
    if trimmed[0] == b'{' { json::parse_text(trimmed, ctx) } else { syslog::parse(raw, ctx) }
}

/// The envelope of a normalized log: `event_type = log`, the event time (or the receive
/// time), the host (or the sender), the input.
pub(crate) fn log_event(
    ctx: &ParseContext<'_>,
    timestamp: Option<Timestamp>,
    host: Option<String>,
    mut log: Log,
) -> Event {
    let mut ev = Event::new(EventType::Log, timestamp.unwrap_or(ctx.received));
    ev.host = host.filter(|h| !h.is_empty()).or_else(|| ctx.peer.map(str::to_string));
    log.input = Some(ctx.input.to_string());
    if let Some(peer) = ctx.peer {
        log.extra.insert("peer".into(), Value::String(peer.to_string()));
    }
    ev.log = Some(log);
    ev
}

/// Adds the receive time to a text record (see the module docs).
pub(crate) fn add_received(log: &mut Log, ctx: &ParseContext<'_>) {
    log.extra.insert("received".into(), Value::String(ctx.received.to_string()));
}

pub(crate) fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !is_blank(*c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_blank(*c)).map(|p| p + 1).unwrap_or(start);
    &b[start..end.max(start)]
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// Text of a byte string, invalid UTF-8 replaced.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
