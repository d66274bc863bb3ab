//! In-process bus for the all-in-one mode: one bounded log per topic, consumer groups with
//! committed offsets, the same at-least-once contract as Kafka.
//!
//! Each topic has a single partition. A group starts at the oldest retained record; a new
//! member of a group resumes from the group's committed offset (records polled but not
//! committed by a member that went away are delivered again). Records are released once
//! every group has committed past them; a publisher waits while a topic holds `capacity`
//! unreleased records, so a slow consumer slows producers instead of growing memory. A topic
//! no group has subscribed to keeps only its newest `capacity` records (like a Kafka topic's
//! retention; evictions are counted), so an unconsumed topic never blocks a producer.
//!
//! [`MemoryBus::durable`] adds an on-disk journal ([`crate::journal`]): publishes are
//! appended (and flushed) before they return and commits are saved, so after a crash the
//! records no group had committed are delivered again, as Kafka would.

use crate::journal::Journal;
use crate::{Bus, BusError, Consumer, Message, Record, commit_points, topic_name};
use soc_model::Kind;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

struct Topic {
    /// Offset of `log[0]`.
    base: i64,
    log: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Committed offset (next to read) per group.
    groups: HashMap<String, i64>,
}

impl Topic {
    fn next_offset(&self) -> i64 {
        self.base + self.log.len() as i64
    }
    fn release(&mut self) {
        let Some(min) = self.groups.values().min().copied() else { return };
        while self.base < min && !self.log.is_empty() {
            self.log.pop_front();
            self.base += 1;
        }
    }
}

struct Inner {
    topics: Mutex<BTreeMap<Kind, Topic>>,
    /// Woken on publish (consumers wait on it).
    published: Notify,
    /// Woken on commit (blocked publishers wait on it).
    released: Notify,
    capacity: usize,
    prefix: String,
    /// The on-disk journal of a durable bus (lock order: topics, then journal).
    journal: Option<Mutex<Journal>>,
}

/// The in-process bus. Cheap to clone; clones share the topics.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl MemoryBus {
    /// A bus whose topics hold at most `capacity` unconsumed records each.
    pub fn new(prefix: &str, capacity: usize) -> Self {
        Self::with(prefix, capacity, BTreeMap::new(), None)
    }

    /// A bus backed by a journal under `dir` (created if missing): what it accepted survives
    /// a crash of the process. Opening replays the journal: records that no group had
    /// committed are delivered again to their groups. `fsync` also syncs every publish to
    /// the disk (survives power loss; slower).
    pub fn durable(prefix: &str, capacity: usize, dir: &std::path::Path, fsync: bool) -> Result<Self, BusError> {
        let (journal, recovered) = Journal::open(dir, fsync)?;
        let topics =
            recovered.into_iter().map(|(k, r)| (k, Topic { base: r.base, log: r.log, groups: r.groups })).collect();
        Ok(Self::with(prefix, capacity, topics, Some(journal)))
    }

    fn with(prefix: &str, capacity: usize, topics: BTreeMap<Kind, Topic>, journal: Option<Journal>) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                topics: Mutex::new(topics),
                published: Notify::new(),
                released: Notify::new(),
                capacity: capacity.max(1),
                prefix: prefix.to_string(),
                journal: journal.map(Mutex::new),
            }),
        }
    }

    #[cfg(test)]
    fn set_segment_bytes(&self, n: u64) {
        if let Some(mut j) = self.journal() {
            j.set_segment_bytes(n);
        }
    }

    /// Journal segment files of a topic (0 for a bus without journal).
    pub fn journal_segments(&self, kind: Kind) -> usize {
        self.journal().map_or(0, |j| j.segments(kind))
    }

    fn journal(&self) -> Option<MutexGuard<'_, Journal>> {
        self.inner.journal.as_ref().map(|j| j.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Kind, Topic>> {
        // A panic while holding this lock cannot leave a topic half-updated (every update is
        // a single push/pop), so a poisoned lock is still usable.
        self.inner.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records retained (not yet released by every group) per topic: the bus's lag gauge.
    pub fn depth(&self) -> BTreeMap<Kind, usize> {
        self.lock().iter().map(|(k, t)| (*k, t.log.len())).collect()
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn ensure_topics(&self) -> Result<(), BusError> {
        let mut t = self.lock();
        for k in Kind::ALL {
            t.entry(k).or_insert_with(|| Topic { base: 0, log: VecDeque::new(), groups: HashMap::new() });
        }
        Ok(())
    }

    async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError> {
        let mut pending = records.into_iter().peekable();
        while pending.peek().is_some() {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut topics = self.lock();
                let topic = topics.get_mut(&kind).ok_or_else(|| BusError::Topic {
                    topic: topic_name(&self.inner.prefix, kind),
                    reason: "does not exist (call ensure_topics first)".into(),
                })?;
                let unconsumed = topic.groups.is_empty();
                let mut evicted = 0u64;
                let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                loop {
                    if topic.log.len() + batch.len() >= self.inner.capacity {
                        if !unconsumed || pending.peek().is_none() {
                            break;
                        }
                        // Nobody consumes this topic (yet): keep the newest `capacity`
                        // records, as a Kafka topic's retention would, instead of blocking
                        // producers forever.
                        // The log is empty when the batch itself fills the topic: the batch's
                        // oldest record goes (its offset is used up all the same).
                        if topic.log.pop_front().is_none() {
                            batch.remove(0);
                        }
                        topic.base += 1;
                        evicted += 1;
                    }
                    match pending.next() {
                        Some(r) => batch.push((r.key, r.payload)),
                        None => break,
                    }
                }
                let n = batch.len() as u64;
                if let Some(mut j) = self.journal() {
                    // Durable before it is visible: a failed write leaves nothing behind.
                    j.append(kind, topic.next_offset(), &batch)?;
                    if evicted > 0 {
                        j.release_below(kind, topic.base);
                    }
                }
                topic.log.extend(batch);
                if evicted > 0 {
                    metrics::counter!("soc_bus_retention_evicted_total", "bus" => "memory", "topic" => kind.as_str())
                        .increment(evicted);
                }
                if n > 0 {
                    metrics::counter!("soc_bus_published_total", "bus" => "memory", "topic" => kind.as_str())
                        .increment(n);
                    self.inner.published.notify_waiters();
                }
            }
            if pending.peek().is_some() {
                metrics::counter!("soc_bus_backpressure_waits_total", "bus" => "memory", "topic" => kind.as_str())
                    .increment(1);
                released.await;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
        let mut topics = self.lock();
        let mut positions = BTreeMap::new();
        for k in kinds {
            let t = topics.get_mut(k).ok_or_else(|| BusError::Topic {
                topic: topic_name(&self.inner.prefix, *k),
                reason: "does not exist (call ensure_topics first)".into(),
            })?;
            let committed = match t.groups.get(group) {
                Some(c) => *c,
                None => {
                    let mut next = t.groups.clone();
                    next.insert(group.to_string(), t.base);
                    if let Some(mut j) = self.journal() {
                        j.save_groups(*k, &next).map_err(|e| BusError::Consume(e.to_string()))?;
                    }
                    t.groups = next;
                    t.base
                }
            };
            positions.insert(*k, committed);
        }
        Ok(Box::new(MemoryConsumer { bus: self.clone(), group: group.to_string(), positions }))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

struct MemoryConsumer {
    bus: MemoryBus,
    group: String,
    /// Next offset to read per topic (this member's position, ahead of the commit).
    positions: BTreeMap<Kind, i64>,
}

impl MemoryConsumer {
    fn take(&mut self, max: usize) -> Vec<Message> {
        let topics = self.bus.lock();
        let mut out = Vec::new();
        for (kind, pos) in self.positions.iter_mut() {
            let Some(t) = topics.get(kind) else { continue };
            if *pos < t.base {
                *pos = t.base;
            }
            while *pos < t.next_offset() && out.len() < max {
                let (key, payload) = &t.log[(*pos - t.base) as usize];
                out.push(Message {
                    kind: *kind,
                    partition: 0,
                    offset: *pos,
                    key: key.clone(),
                    payload: payload.clone(),
                });
                *pos += 1;
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl Consumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let inner = self.bus.inner.clone();
        loop {
            let published = inner.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let got = self.take(max.max(1));
            if !got.is_empty() {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self, done: &[Message]) -> Result<(), BusError> {
        let mut topics = self.bus.lock();
        for ((kind, _), offset) in commit_points(done) {
            if let Some(t) = topics.get_mut(&kind) {
                let current = t.groups.get(&self.group).copied().unwrap_or(0);
                if offset < current {
                    continue;
                }
                if let Some(mut j) = self.bus.journal() {
                    let mut next = t.groups.clone();
                    next.insert(self.group.clone(), offset + 1);
                    j.save_groups(kind, &next)?;
                }
                t.groups.insert(self.group.clone(), offset + 1);
                t.release();
                if let Some(mut j) = self.bus.journal() {
                    j.release_below(kind, t.base);
                }
            }
        }
        drop(topics);
        self.bus.inner.released.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> Record {
        Record::new(format!("k{i}"), i.to_be_bytes().to_vec())
    }

    #[tokio::test]
    async fn uncommitted_records_are_redelivered_to_the_next_member() {
        let bus = MemoryBus::new("t", 100);
        bus.ensure_topics().await.unwrap();
        bus.publish(Kind::Flow, (0..10).map(rec).collect()).await.unwrap();
        let mut c = bus.subscribe("g", &[Kind::Flow]).await.unwrap();
        let first = c.poll(4, Duration::from_millis(10)).await.unwrap();
        assert_eq!(first.len(), 4);
        c.commit(&first[..2]).await.unwrap();
        drop(c); // crashed after handling 4 but committing 2
        let mut c2 = bus.subscribe("g", &[Kind::Flow]).await.unwrap();
        let again = c2.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(again.first().map(|m| m.offset), Some(2));
        assert_eq!(again.len(), 8);
    }

    #[tokio::test]
    async fn groups_are_independent() {
        let bus = MemoryBus::new("t", 100);
        bus.ensure_topics().await.unwrap();
        let mut a = bus.subscribe("a", &[Kind::Log]).await.unwrap();
        let mut b = bus.subscribe("b", &[Kind::Log]).await.unwrap();
        bus.publish(Kind::Log, (0..3).map(rec).collect()).await.unwrap();
        let ma = a.poll(10, Duration::from_millis(10)).await.unwrap();
        a.commit(&ma).await.unwrap();
        assert_eq!(b.poll(10, Duration::from_millis(10)).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn full_topic_blocks_publisher_until_commit() {
        let bus = MemoryBus::new("t", 5);
        bus.ensure_topics().await.unwrap();
        let mut c = bus.subscribe("g", &[Kind::Alert]).await.unwrap();
        let b2 = bus.clone();
        let producer = tokio::spawn(async move { b2.publish(Kind::Alert, (0..12).map(rec).collect()).await });
        let mut seen = Vec::new();
        while seen.len() < 12 {
            let m = c.poll(3, Duration::from_millis(200)).await.unwrap();
            assert!(bus.depth()[&Kind::Alert] <= 5);
            c.commit(&m).await.unwrap();
            seen.extend(m.into_iter().map(|m| m.offset));
        }
        producer.await.unwrap().unwrap();
        assert_eq!(seen, (0..12).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn poll_times_out_empty_and_wakes_on_publish() {
        let bus = MemoryBus::new("t", 10);
        bus.ensure_topics().await.unwrap();
        let mut c = bus.subscribe("g", &[Kind::Incident]).await.unwrap();
        assert!(c.poll(1, Duration::from_millis(5)).await.unwrap().is_empty());
        let b2 = bus.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            b2.publish(Kind::Incident, vec![rec(1)]).await.unwrap();
        });
        assert_eq!(c.poll(1, Duration::from_secs(5)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn topic_without_consumers_keeps_the_newest_records_instead_of_blocking() {
        let bus = MemoryBus::new("t", 5);
        bus.ensure_topics().await.unwrap();
        bus.publish(Kind::Detection, (0..12).map(rec).collect()).await.unwrap();
        assert_eq!(bus.depth()[&Kind::Detection], 5);
        let mut c = bus.subscribe("late", &[Kind::Detection]).await.unwrap();
        let got = c.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![7, 8, 9, 10, 11]);
    }

    #[tokio::test]
    async fn unknown_topic_is_an_error() {
        let bus = MemoryBus::new("t", 10);
        assert!(bus.publish(Kind::Flow, vec![rec(1)]).await.is_err());
    }

    async fn drain(c: &mut Box<dyn Consumer>) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let m = c.poll(1000, Duration::from_millis(20)).await.unwrap();
            if m.is_empty() {
                return all;
            }
            all.extend(m);
        }
    }

    #[tokio::test]
    async fn durable_bus_redelivers_uncommitted_records_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::durable("t", 10_000, dir.path(), false).unwrap();
            bus.ensure_topics().await.unwrap();
            let mut c = bus.subscribe("g", &[Kind::Log]).await.unwrap();
            bus.publish(Kind::Log, (0..100).map(rec).collect()).await.unwrap();
            let got = drain(&mut c).await;
            assert_eq!(got.len(), 100);
            c.commit(&got[..40]).await.unwrap();
            // Dropped without a clean stop: the "crash".
        }
        let bus = MemoryBus::durable("t", 10_000, dir.path(), false).unwrap();
        bus.ensure_topics().await.unwrap();
        let mut c = bus.subscribe("g", &[Kind::Log]).await.unwrap();
        let got = drain(&mut c).await;
        let offsets: Vec<i64> = got.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (40..100).collect::<Vec<i64>>(), "exactly the uncommitted records, in order");
        assert_eq!(got[0].payload, 40u32.to_be_bytes().to_vec());
        c.commit(&got).await.unwrap();
        // New records continue the offsets, never reuse them.
        bus.publish(Kind::Log, vec![rec(1000)]).await.unwrap();
        let got = drain(&mut c).await;
        assert_eq!(got[0].offset, 100);
    }

    #[tokio::test]
    async fn fully_consumed_journal_restarts_after_the_last_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::durable("t", 100, dir.path(), true).unwrap();
            let mut c = bus.subscribe("g", &[Kind::Flow]).await.unwrap();
            bus.publish(Kind::Flow, (0..10).map(rec).collect()).await.unwrap();
            let got = drain(&mut c).await;
            c.commit(&got).await.unwrap();
        }
        let bus = MemoryBus::durable("t", 100, dir.path(), false).unwrap();
        let mut c = bus.subscribe("g", &[Kind::Flow]).await.unwrap();
        assert!(drain(&mut c).await.is_empty(), "everything was committed");
        bus.publish(Kind::Flow, vec![rec(7)]).await.unwrap();
        assert_eq!(drain(&mut c).await[0].offset, 10);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_the_records_before_it_survive() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::durable("t", 100, dir.path(), false).unwrap();
            bus.subscribe("g", &[Kind::Alert]).await.unwrap();
            bus.publish(Kind::Alert, (0..5).map(rec).collect()).await.unwrap();
        }
        let seg = std::fs::read_dir(dir.path().join("alert"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "log"))
            .unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        let good = bytes.len();
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 5]); // half a frame
        std::fs::write(&seg, &bytes).unwrap();
        let bus = MemoryBus::durable("t", 100, dir.path(), false).unwrap();
        let mut c = bus.subscribe("g", &[Kind::Alert]).await.unwrap();
        assert_eq!(drain(&mut c).await.len(), 5);
        assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, good, "tail truncated");
        bus.publish(Kind::Alert, vec![rec(9)]).await.unwrap();
        assert_eq!(drain(&mut c).await[0].offset, 5);
    }

    #[tokio::test]
    async fn committed_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let bus = MemoryBus::durable("t", 100_000, dir.path(), false).unwrap();
        bus.set_segment_bytes(1_000);
        let mut c = bus.subscribe("g", &[Kind::Log]).await.unwrap();
        for i in 0..50 {
            bus.publish(Kind::Log, (0..10).map(|j| rec(i * 10 + j)).collect()).await.unwrap();
        }
        assert!(bus.journal_segments(Kind::Log) > 10, "{}", bus.journal_segments(Kind::Log));
        let got = drain(&mut c).await;
        assert_eq!(got.len(), 500);
        c.commit(&got).await.unwrap();
        assert_eq!(bus.journal_segments(Kind::Log), 1, "only the active segment is kept");
    }
}
