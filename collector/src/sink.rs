//! The sink side: stamping, batching, publishing.
//!
//! Events are stamped with the collector's name (`sensor`) and segment, then encoded with
//! [`encode`] (their id and their JSON in one pass) and published keyed by [`Event::bus_key`]
//! (logs by host); dead letters go to [`Kind::DeadLetter`] keyed by their source. Transient
//! bus errors are retried with backoff for [`SourceContext::bus_retry`]; a caller that awaits
//! [`flush`] stops reading meanwhile, which is the backpressure (a TCP sender's window fills;
//! UDP datagrams queue in the socket buffer).

use crate::parse::{self, Decoder, ParseContext, ParseError};
use crate::stats::InputStats;
use soc_bus::{Bus, BusError, Record, with_backoff};
use soc_model::{DeadLetter, Event, Kind};
use std::time::Duration;

/// What every source needs besides its own address: who the collector is and how it batches.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceContext {
    /// Collector name, stamped as each event's `sensor`.
    pub sensor: String,
    /// Network segment, stamped as each event's `segment`.
    pub segment: Option<String>,
    /// Messages per published batch.
    pub batch_size: usize,
    /// Longest time a received message waits for its batch to fill.
    pub flush_interval: Duration,
    /// UTC offset (seconds east) of timestamps written without one.
    pub local_offset_secs: i32,
    /// How long a failing bus is retried before a batch is given up (counted as dropped).
    pub bus_retry: Duration,
}

impl Default for SourceContext {
    fn default() -> Self {
        SourceContext {
            sensor: "collector".into(),
            segment: None,
            batch_size: crate::config::DEFAULT_BATCH,
            flush_interval: Duration::from_millis(200),
            local_offset_secs: 0,
            bus_retry: Duration::from_secs(300),
        }
    }
}

/// Events (encoded, see [`encode`]) and dead letters waiting to be published.
///
/// An event is encoded as soon as it is accepted and dropped at once: a batch of thousands of
/// decoded events (each a large struct holding a dozen strings) would have left the caches and
/// the allocator's per-thread free lists by the time it was encoded and freed, which doubled
/// the collector's CPU per line against small batches (`bench_syslog_tcp --batch 100` vs
/// `--batch 5000`). The records are kept until the bus has taken them, so a failed publish is
/// retried with the same bytes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Records per kind, in arrival order within a kind.
    records: Vec<(Kind, Vec<Record>)>,
    events: usize,
    /// Events a decoder has just completed, before they are stamped and encoded.
    decoded: Vec<Event>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Batch {
    /// Messages (events and dead letters) in the batch.
    pub fn len(&self) -> usize {
        self.events + self.dead_letters.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.dead_letters.is_empty()
    }
    /// Events in the batch.
    pub fn events(&self) -> usize {
        self.events
    }
    /// The encoded events per kind.
    pub fn records(&self) -> impl Iterator<Item = (Kind, &[Record])> {
        self.records.iter().filter(|(_, r)| !r.is_empty()).map(|(k, r)| (*k, r.as_slice()))
    }
    /// Encodes an event into the batch.
    pub fn push_event(&mut self, ev: &Event) {
        let (kind, record) = encode(ev);
        match self.records.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, records)) => records.push(record),
            None => self.records.push((kind, vec![record])),
        }
        self.events += 1;
    }
    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        for (_, records) in &mut self.records {
            records.clear();
        }
        self.events = 0;
        self.decoded.clear();
        self.dead_letters.clear();
    }
    /// Stamps and encodes what a decoder completed.
    fn take_decoded(&mut self, sensor: &str, segment: Option<&str>) {
        // In place (an event is a large struct: moving it out would copy it).
        let mut decoded = std::mem::take(&mut self.decoded);
        for ev in &mut decoded {
            stamp_origin(ev, sensor, segment);
            self.push_event(ev);
        }
        decoded.clear();
        self.decoded = decoded;
    }
}

/// Sets the collector's name and segment (where the record has none) and the record id.
pub fn stamp(ev: &mut Event, sensor: &str, segment: Option<&str>) {
    stamp_origin(ev, sensor, segment);
    ev.ensure_id();
}

/// [`stamp`] without the id: [`encode`] computes it with the record's JSON.
fn stamp_origin(ev: &mut Event, sensor: &str, segment: Option<&str>) {
    if ev.sensor.is_none() {
        ev.sensor = Some(sensor.to_string());
    }
    if ev.segment.is_none() {
        ev.segment = segment.map(str::to_string);
    }
}

/// An event as its bus record: keyed by [`Event::bus_key`], the payload its JSON with its id
/// (the event's own, or [`Event::compute_id`]'s when it has none), see
/// [`Event::to_json_with_id`].
///
/// One serialization serves both: the canonical JSON that [`Event::compute_id`] hashes (keys
/// sorted, without `id`) is written once, hashed, and becomes the payload with the `id` member
/// appended. The payload's keys are therefore in canonical order instead of the struct's; it
/// reads back as the same event.
pub fn encode(ev: &Event) -> (Kind, Record) {
    (ev.event_type.kind(), Record::new(ev.bus_key(), ev.to_json_with_id()))
}

impl SourceContext {
    fn parse_context<'a>(&self, input: &'a str, peer_ip: Option<&'a str>) -> ParseContext<'a> {
        ParseContext {
            input,
            peer: peer_ip,
            received: parse::receive_time(),
            local_offset_secs: self.local_offset_secs,
        }
    }

    /// Like [`Self::accept_line`] through a stateful [`Decoder`] (a configured format, audit
    /// records joined per connection or file): the events it completed go to the batch, an
    /// error of this line becomes its dead letter. Blank lines are ignored (returns false).
    pub fn accept_decoded(
        &self,
        batch: &mut Batch,
        decoder: &mut Decoder,
        raw: &[u8],
        input: &str,
        peer_ip: Option<&str>,
        source: &str,
    ) -> bool {
        if parse::trim_ascii(raw).is_empty() {
            return false;
        }
        let ctx = self.parse_context(input, peer_ip);
        match decoder.push_syslog_into(raw, &ctx, &mut batch.decoded) {
            Some(Ok(())) => batch.take_decoded(&self.sensor, self.segment.as_deref()),
            Some(Err(e)) => self.take_result(batch, Err(e), raw, input, source),
            None => decoder.push_each(raw, &ctx, |r| self.take_result(batch, r, raw, input, source)),
        }
        true
    }

    /// Completes what a decoder holds back (end of a connection or file, idle input).
    pub(crate) fn finish_decoder(
        &self,
        batch: &mut Batch,
        decoder: &mut Decoder,
        input: &str,
        peer_ip: Option<&str>,
        source: &str,
    ) {
        if decoder.pending() == 0 {
            return;
        }
        let ctx = self.parse_context(input, peer_ip);
        let results = decoder.finish(&ctx);
        self.take_results(batch, results, b"", input, source);
    }

    fn take_results(
        &self,
        batch: &mut Batch,
        results: Vec<Result<Event, ParseError>>,
        raw: &[u8],
        input: &str,
        source: &str,
    ) {
        for r in results {
            self.take_result(batch, r, raw, input, source);
        }
    }

    fn take_result(&self, batch: &mut Batch, r: Result<Event, ParseError>, raw: &[u8], input: &str, source: &str) {
        match r {
            Ok(mut ev) => {
                stamp_origin(&mut ev, &self.sensor, self.segment.as_deref());
                batch.push_event(&ev);
            }
            Err(ParseError::Empty) => {}
            Err(e) => {
                tracing::debug!(input, source, error = %e, "message dead-lettered");
                batch.dead_letters.push(DeadLetter::new(source, e.to_string(), raw));
            }
        }
    }
}

/// Publishes a batch: events (encoded with [`encode`], keyed by host), then dead letters
/// (keyed by source), each retried on transient errors for `retry` (the batch keeps its
/// records until the bus has taken them).
pub async fn publish(bus: &dyn Bus, batch: &Batch, retry: Duration) -> Result<(), BusError> {
    for (kind, records) in batch.records() {
        with_backoff("collector publish", retry, || bus.publish_ref(kind, records)).await?;
    }
    if !batch.dead_letters.is_empty() {
        let records = || batch.dead_letters.iter().map(|d| Record::new(d.source.clone(), d.to_json())).collect();
        let mut first = Some(records());
        with_backoff("collector publish dead letters", retry, || {
            bus.publish(Kind::DeadLetter, first.take().unwrap_or_else(records))
        })
        .await?;
    }
    Ok(())
}

/// Publishes and empties a batch (keeping its memory), counting what was published or lost.
pub(crate) async fn flush(
    bus: &dyn Bus,
    batch: &mut Batch,
    ctx: &SourceContext,
    stats: &InputStats,
) -> Result<(), BusError> {
    if batch.is_empty() {
        return Ok(());
    }
    let r = publish(bus, batch, ctx.bus_retry).await;
    let (events, dead_letters) = (batch.events() as u64, batch.dead_letters.len() as u64);
    // Emptied, with its memory kept for the next batch.
    batch.clear();
    match r {
        Ok(()) => {
            stats.parsed(events);
            stats.dead_lettered(dead_letters);
            stats.batch();
            Ok(())
        }
        Err(e) => {
            let lost = events + dead_letters;
            tracing::error!(input = stats.input(), error = %e, lost, "publishing failed; batch dropped");
            stats.dropped(lost, "bus");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseContext, parse_line};

    #[test]
    fn a_batch_holds_each_event_encoded_grouped_by_kind_in_arrival_order_and_clears_to_empty() {
        let at: soc_model::Timestamp = "2024-06-15T12:00:00Z".parse().unwrap();
        let mut evs = Vec::new();
        for (i, t) in
            [soc_model::EventType::Log, soc_model::EventType::Flow, soc_model::EventType::Log].into_iter().enumerate()
        {
            let mut ev = Event::new(t, at);
            ev.host = Some(format!("h{i}"));
            evs.push(ev);
        }
        let mut batch = Batch::default();
        for ev in &evs {
            batch.push_event(ev);
        }
        batch.dead_letters.push(DeadLetter::new("src", "bad", b"raw"));
        assert_eq!((batch.len(), batch.events()), (4, 3));
        let got: Vec<(Kind, Vec<Record>)> = batch.records().map(|(k, r)| (k, r.to_vec())).collect();
        let want = vec![(Kind::Log, vec![encode(&evs[0]).1, encode(&evs[2]).1]), (Kind::Flow, vec![encode(&evs[1]).1])];
        assert_eq!(got, want);
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.records().count(), 0);
    }

    #[test]
    fn encode_gives_the_id_of_compute_id_and_a_payload_that_reads_back_as_the_event() {
        let lines: [&[u8]; 6] = [
            b"<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root from 203.0.113.7 port 22 ssh2",
            b"<165>1 2024-06-15T10:00:00.123+07:00 h app 42 ID7 [ex@32473 a=\"1\" b=\"\\\"q\\\"\"] msg \xe2\x82\xac",
            b"{\"message\":\"m\",\"host\":\"h\",\"n\":[1,2.5,-3e300],\"o\":{\"z\":null,\"a\":true}}",
            br#"{"EventID":4688,"Channel":"Security","Hostname":"H","TimeCreated":"2020-10-18 10:56:18.799"}"#,
            b"type=SYSCALL msg=audit(1718445600.123:42): arch=c000003e syscall=59 success=yes exe=\"/bin/sh\"",
            b"no pri at all \xff\xfe",
        ];
        for line in lines {
            let ctx = ParseContext::new("syslog-tcp", Some("10.0.0.5"));
            let mut ev = parse_line(line, &ctx).unwrap_or_else(|e| panic!("{e}"));
            stamp_origin(&mut ev, "col", Some("lab"));
            let (kind, rec) = encode(&ev);
            assert_eq!(kind, ev.event_type.kind());
            assert_eq!(rec.key, ev.bus_key().into_bytes());
            let back = Event::from_json(&rec.payload).unwrap_or_else(|e| panic!("{e}"));
            let mut want = ev.clone();
            want.ensure_id();
            assert_eq!(back.id.as_deref(), Some(ev.compute_id().as_str()), "{}", String::from_utf8_lossy(line));
            assert_eq!(back, want);
            // An id already set is kept.
            let (_, rec) = encode(&want);
            assert_eq!(Event::from_json(&rec.payload).unwrap(), want);
            let mut other = want.clone();
            other.id = Some("given \"id\"".into());
            let (_, rec) = encode(&other);
            assert_eq!(Event::from_json(&rec.payload).unwrap(), other);
        }
    }
}
