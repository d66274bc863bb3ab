//! The sink side: stamping, batching, publishing.
//!
//! Events are stamped with the collector's name (`sensor`) and segment, given their id, and
//! published with [`soc_bus::publish_events`] (logs keyed by host); dead letters go to
//! [`Kind::DeadLetter`] keyed by their source. Transient bus errors are retried with backoff
//! for [`SourceContext::bus_retry`]; a caller that awaits [`flush`] stops reading meanwhile,
//! which is the backpressure (a TCP sender's window fills; UDP datagrams queue in the socket
//! buffer).

use crate::parse::{self, Decoder, ParseContext, ParseError};
use crate::stats::InputStats;
use soc_bus::{Bus, BusError, Record, publish_events, with_backoff};
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
            batch_size: 500,
            flush_interval: Duration::from_millis(200),
            local_offset_secs: 0,
            bus_retry: Duration::from_secs(300),
        }
    }
}

/// Events and dead letters waiting to be published.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dead_letters.is_empty()
    }
}

/// Sets the collector's name and segment (where the record has none) and the record id.
pub fn stamp(ev: &mut Event, sensor: &str, segment: Option<&str>) {
    if ev.sensor.is_none() {
        ev.sensor = Some(sensor.to_string());
    }
    if ev.segment.is_none() {
        ev.segment = segment.map(str::to_string);
    }
    ev.ensure_id();
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
    pub(crate) fn accept_decoded(
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
        let results = decoder.push(raw, &ctx);
        self.take_results(batch, results, raw, input, source);
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
            match r {
                Ok(mut ev) => {
                    stamp(&mut ev, &self.sensor, self.segment.as_deref());
                    batch.events.push(ev);
                }
                Err(ParseError::Empty) => {}
                Err(e) => {
                    tracing::debug!(input, source, error = %e, "message dead-lettered");
                    batch.dead_letters.push(DeadLetter::new(source, e.to_string(), raw));
                }
            }
        }
    }
}

/// Publishes a batch: events (keyed by host), then dead letters (keyed by source), each
/// retried on transient errors for `retry`.
pub async fn publish(bus: &dyn Bus, batch: &Batch, retry: Duration) -> Result<(), BusError> {
    if !batch.events.is_empty() {
        let events = &batch.events;
        with_backoff("collector publish", retry, || publish_events(bus, events)).await?;
    }
    if !batch.dead_letters.is_empty() {
        let records: Vec<Record> =
            batch.dead_letters.iter().map(|d| Record::new(d.source.clone(), d.to_json())).collect();
        with_backoff("collector publish dead letters", retry, || bus.publish(Kind::DeadLetter, records.clone()))
            .await?;
    }
    Ok(())
}

/// Publishes and empties a batch, counting what was published or lost.
pub(crate) async fn flush(
    bus: &dyn Bus,
    batch: &mut Batch,
    ctx: &SourceContext,
    stats: &InputStats,
) -> Result<(), BusError> {
    if batch.is_empty() {
        return Ok(());
    }
    let b = std::mem::take(batch);
    match publish(bus, &b, ctx.bus_retry).await {
        Ok(()) => {
            stats.parsed(b.events.len() as u64);
            stats.dead_lettered(b.dead_letters.len() as u64);
            stats.batch();
            Ok(())
        }
        Err(e) => {
            tracing::error!(input = stats.input(), error = %e, lost = b.len(), "publishing failed; batch dropped");
            stats.dropped(b.len() as u64, "bus");
            Err(e)
        }
    }
}
