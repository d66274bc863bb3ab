//! The bus between producers (sensor, collector) and consumers (correlator, forwarder).
//!
//! One topic per record [`Kind`] (`<prefix>.flow`, `<prefix>.alert`, `<prefix>.protocol`,
//! `<prefix>.log`, `<prefix>.detection`, `<prefix>.incident`, `<prefix>.dead-letter`).
//! Network records are keyed by Community ID, logs by host ([`soc_model::Event::bus_key`]),
//! so everything about one flow or one host lands on one partition.
//!
//! Delivery is at-least-once: [`Bus::publish`] returns only when the records are accepted,
//! and a [`Consumer`] commits offsets only when its handler calls [`Consumer::commit`] with
//! what it has finished. Duplicates after a crash are removed downstream by record id.
//!
//! ```
//! # tokio_test_block_on(async {
//! use soc_bus::{Bus, MemoryBus, Record};
//! use soc_model::Kind;
//! use std::time::Duration;
//! let bus = MemoryBus::new("soc", 1024);
//! bus.ensure_topics().await.unwrap();
//! bus.publish(Kind::Log, vec![Record::new("host-a", b"hello".to_vec())]).await.unwrap();
//! let mut c = bus.subscribe("correlator", &[Kind::Log]).await.unwrap();
//! let msgs = c.poll(100, Duration::from_millis(100)).await.unwrap();
//! assert_eq!(msgs[0].payload, b"hello");
//! c.commit(&msgs).await.unwrap();
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```
#![forbid(unsafe_code)]

mod journal;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;

pub use memory::MemoryBus;
use soc_model::{Event, Kind};
use std::collections::BTreeMap;
use std::time::Duration;

/// Bus failures. `Unavailable` is transient (retry with backoff); the others are not.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker unavailable at {addr}: {reason} (start it with deploy/kafka.sh start)")]
    Unavailable { addr: String, reason: String },
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    #[error("publish to {topic} failed: {reason}")]
    Publish { topic: String, reason: String },
    #[error("consume failed: {0}")]
    Consume(String),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("bus closed")]
    Closed,
    #[error("invalid bus configuration: {0}")]
    Config(String),
}

impl BusError {
    /// Whether retrying the same call later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BusError::Unavailable { .. } | BusError::Publish { .. } | BusError::Consume(_) | BusError::Commit(_)
        )
    }
}

/// One record to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn new(key: impl Into<Vec<u8>>, payload: Vec<u8>) -> Self {
        Record { key: key.into(), payload }
    }
    /// The record for an event: its JSON, keyed by [`Event::bus_key`].
    pub fn from_event(ev: &Event) -> Self {
        Record { key: ev.bus_key().into_bytes(), payload: ev.to_json() }
    }
}

/// One consumed record and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// The topic name of a kind under a prefix: `soc.flow`, `soc.dead-letter`, ...
pub fn topic_name(prefix: &str, kind: Kind) -> String {
    if prefix.is_empty() { kind.as_str().to_string() } else { format!("{prefix}.{}", kind.as_str()) }
}

/// A message bus: topics per [`Kind`], at-least-once delivery.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Creates every topic that does not exist yet (brokers may not auto-create).
    async fn ensure_topics(&self) -> Result<(), BusError>;
    /// Publishes records to the topic of `kind`; returns once all are accepted by the bus.
    async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError>;
    /// [`Bus::publish`] for records the caller keeps (to retry them after a failure): a bus
    /// that copies what it sends (Kafka: the client copies each record) borrows them; by
    /// default they are cloned.
    async fn publish_ref(&self, kind: Kind, records: &[Record]) -> Result<(), BusError> {
        self.publish(kind, records.to_vec()).await
    }
    /// Joins consumer group `group` on the topics of `kinds`.
    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError>;
    /// Short name for logs and metrics (`kafka`, `memory`).
    fn name(&self) -> &'static str;
}

/// A change of the partitions a consumer-group member owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebalance {
    /// These partitions are now this member's: it reads them from the group's commit.
    Assigned(Vec<(Kind, i32)>),
    /// These partitions are no longer this member's (revoked, or lost when the member was
    /// expelled from the group): another member reads them from the group's commit.
    Revoked(Vec<(Kind, i32)>),
}

/// A consumer-group member.
#[async_trait::async_trait]
pub trait Consumer: Send {
    /// Waits up to `timeout` for at most `max` messages (fewer, or none, on timeout).
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError>;
    /// Marks messages as done: commits, per topic and partition, the offset after the
    /// highest one given. Call only after the handler has durably processed them.
    async fn commit(&mut self, done: &[Message]) -> Result<(), BusError>;
    /// The partition changes that happened during the previous calls to [`poll`](Self::poll),
    /// oldest first, each reported once. A poll never returns messages of a partition revoked
    /// during that poll. Buses without partition assignment (the in-process bus: one member
    /// reads everything) report none.
    fn rebalances(&mut self) -> Vec<Rebalance> {
        Vec::new()
    }
}

/// Highest offset per (kind, partition) in a batch: what a commit must cover.
pub fn commit_points(done: &[Message]) -> BTreeMap<(Kind, i32), i64> {
    let mut m: BTreeMap<(Kind, i32), i64> = BTreeMap::new();
    for d in done {
        let e = m.entry((d.kind, d.partition)).or_insert(d.offset);
        if d.offset > *e {
            *e = d.offset;
        }
    }
    m
}

/// Publishes events grouped by kind, each keyed by [`Event::bus_key`].
pub async fn publish_events(bus: &dyn Bus, events: &[Event]) -> Result<(), BusError> {
    let mut by_kind: BTreeMap<Kind, Vec<Record>> = BTreeMap::new();
    for ev in events {
        by_kind.entry(ev.event_type.kind()).or_default().push(Record::from_event(ev));
    }
    for (kind, recs) in by_kind {
        bus.publish(kind, recs).await?;
    }
    Ok(())
}

/// Retries a transient bus operation with exponential backoff (100 ms .. 10 s), logging each
/// failure; gives up only on a permanent error or after `max_wait`.
pub async fn with_backoff<T, F, Fut>(what: &str, max_wait: Duration, mut f: F) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && start.elapsed() < max_wait => {
                metrics::counter!("soc_bus_retries_total", "op" => what.to_string()).increment(1);
                tracing::warn!(op = what, error = %e, retry_in_ms = delay.as_millis() as u64, "bus operation failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}
