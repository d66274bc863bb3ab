//! A bounded on-disk spool in front of the bus, for when the broker is unreachable.
//!
//! [`SpoolBus`] wraps a [`Bus`]: `publish` tries the bus for at most `publish_timeout`; if the
//! bus fails or does not answer in time, the records are written to the spool directory (one
//! file per publish call, numbered) and the call returns `Ok`: the sender goes on. A
//! background task replays the files in order, each until the bus takes it, then deletes it.
//! While anything is spooled, new records are spooled behind it instead of published
//! directly, so order is kept (per connection, per file, per HTTP request: each waits for its
//! previous publish to return). When the spool holds `max_bytes`, `publish` waits for room:
//! the inputs stop reading (TCP flow control, HTTP `429`s) instead of growing without bound.
//! Files survive a restart and are replayed first.
//!
//! A publish that timed out may still reach the broker later (the client library keeps it):
//! such records are delivered twice; the store deduplicates records by id.
//!
//! File format: `SOCSPOOL1\n`, the topic kind's name and `\n`, then per record the key length
//! and payload length (u32, big endian) followed by the bytes. Written to a temporary name and
//! renamed, so a file is complete or absent.

use async_trait::async_trait;
use soc_bus::{Bus, BusError, Consumer, Record};
use soc_model::Kind;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Notify};

const MAGIC: &[u8] = b"SOCSPOOL1\n";

/// Spool settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SpoolOptions {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// How long a direct publish may take before its records are spooled instead.
    pub publish_timeout: Duration,
}

#[derive(Default)]
struct Queue {
    next: u64,
    /// Spooled files (sequence number, bytes), oldest first; the head stays until replayed.
    files: VecDeque<(u64, u64)>,
    bytes: u64,
}

struct Shared {
    opts: SpoolOptions,
    inner: Arc<dyn Bus>,
    queue: Mutex<Queue>,
    /// Something was spooled.
    work: Notify,
    /// Something was replayed (room in the spool).
    room: Notify,
    spooled: AtomicU64,
    replayed: AtomicU64,
}

/// Counters of a spool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolCounts {
    /// Records written to the spool.
    pub spooled: u64,
    /// Records replayed from it to the bus.
    pub replayed: u64,
    /// Files waiting now.
    pub files: u64,
    /// Bytes waiting now.
    pub bytes: u64,
}

/// A bus with an on-disk spool (see the module docs).
pub struct SpoolBus {
    shared: Arc<Shared>,
    replayer: tokio::task::JoinHandle<()>,
}

impl Drop for SpoolBus {
    fn drop(&mut self) {
        self.replayer.abort();
    }
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.spool")
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> BusError {
    BusError::Publish { topic: "spool".into(), reason: format!("{what} {}: {e}", path.display()) }
}

fn encode(kind: Kind, records: &[Record]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| 8 + r.key.len() + r.payload.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'\n');
    for r in records {
        out.extend_from_slice(&(r.key.len() as u32).to_be_bytes());
        out.extend_from_slice(&(r.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&r.key);
        out.extend_from_slice(&r.payload);
    }
    out
}

fn decode(b: &[u8]) -> Result<(Kind, Vec<Record>), String> {
    let rest = b.strip_prefix(MAGIC).ok_or("not a spool file")?;
    let nl = rest.iter().position(|c| *c == b'\n').ok_or("no kind line")?;
    let name = std::str::from_utf8(&rest[..nl]).map_err(|_| "kind is not UTF-8")?;
    let kind = Kind::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| format!("unknown kind {name:?}"))?;
    let mut i = nl + 1;
    let mut records = Vec::new();
    let u32_at = |i: usize| -> Option<usize> {
        rest.get(i..i + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    while i < rest.len() {
        let (k, p) = match (u32_at(i), u32_at(i + 4)) {
            (Some(k), Some(p)) => (k, p),
            _ => return Err("truncated record header".into()),
        };
        i += 8;
        let key = rest.get(i..i + k).ok_or("truncated key")?.to_vec();
        i += k;
        let payload = rest.get(i..i + p).ok_or("truncated payload")?.to_vec();
        i += p;
        records.push(Record { key, payload });
    }
    Ok((kind, records))
}

impl SpoolBus {
    /// Opens (creates) the spool directory, takes up the files left there, and starts the
    /// replayer. Needs a Tokio runtime.
    pub async fn open(opts: SpoolOptions, inner: Arc<dyn Bus>) -> Result<Self, BusError> {
        tokio::fs::create_dir_all(&opts.dir).await.map_err(|e| io_err("cannot create", &opts.dir, e))?;
        let mut files = Vec::new();
        let mut rd = tokio::fs::read_dir(&opts.dir).await.map_err(|e| io_err("cannot read", &opts.dir, e))?;
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name.strip_suffix(".spool").and_then(|s| s.parse::<u64>().ok()) {
                let len = e.metadata().await.map(|m| m.len()).unwrap_or(0);
                files.push((seq, len));
            }
        }
        files.sort();
        let q = Queue {
            next: files.last().map(|f| f.0 + 1).unwrap_or(0),
            bytes: files.iter().map(|f| f.1).sum(),
            files: files.into(),
        };
        if !q.files.is_empty() {
            tracing::info!(dir = %opts.dir.display(), files = q.files.len(), bytes = q.bytes, "spool: replaying files left by a previous run");
        }
        let shared = Arc::new(Shared {
            opts,
            inner,
            queue: Mutex::new(q),
            work: Notify::new(),
            room: Notify::new(),
            spooled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        });
        let replayer = tokio::spawn(replay(shared.clone()));
        Ok(SpoolBus { shared, replayer })
    }

    pub async fn counts(&self) -> SpoolCounts {
        let q = self.shared.queue.lock().await;
        SpoolCounts {
            spooled: self.shared.spooled.load(Ordering::Relaxed),
            replayed: self.shared.replayed.load(Ordering::Relaxed),
            files: q.files.len() as u64,
            bytes: q.bytes,
        }
    }

    /// Waits until the spool is empty (everything replayed) or `timeout` passed; true if empty.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.room.notified();
            if self.shared.queue.lock().await.files.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.queue.lock().await.files.is_empty();
            }
        }
    }

    async fn spool(&self, kind: Kind, records: &[Record]) -> Result<(), BusError> {
        let s = &self.shared;
        let data = encode(kind, records);
        let size = data.len() as u64;
        loop {
            let room = s.room.notified();
            {
                let mut q = s.queue.lock().await;
                // A single batch larger than the spool is taken when the spool is empty.
                if q.bytes + size <= s.opts.max_bytes || q.files.is_empty() {
                    let seq = q.next;
                    let path = s.opts.dir.join(file_name(seq));
                    let tmp = s.opts.dir.join(format!("{}.tmp", file_name(seq)));
                    tokio::fs::write(&tmp, &data).await.map_err(|e| io_err("cannot write", &tmp, e))?;
                    tokio::fs::rename(&tmp, &path).await.map_err(|e| io_err("cannot rename", &tmp, e))?;
                    q.next += 1;
                    q.files.push_back((seq, size));
                    q.bytes += size;
                    s.spooled.fetch_add(records.len() as u64, Ordering::Relaxed);
                    metrics::counter!("soc_collector_spooled_total", "kind" => kind.as_str())
                        .increment(records.len() as u64);
                    metrics::gauge!("soc_collector_spool_bytes").set(q.bytes as f64);
                    s.work.notify_one();
                    return Ok(());
                }
            }
            tracing::debug!("spool full; waiting for room");
            room.await;
        }
    }
}

async fn replay(s: Arc<Shared>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let work = s.work.notified();
        let head = s.queue.lock().await.files.front().copied();
        let Some((seq, size)) = head else {
            work.await;
            continue;
        };
        let path = s.opts.dir.join(file_name(seq));
        let (kind, records) = match tokio::fs::read(&path).await.map_err(|e| e.to_string()).and_then(|b| decode(&b)) {
            Ok(x) => x,
            Err(e) => {
                // A damaged file cannot be replayed; keep it aside instead of blocking the spool.
                tracing::error!(file = %path.display(), error = %e, "spool: unreadable file set aside");
                let _ = tokio::fs::rename(&path, path.with_extension("bad")).await;
                pop(&s, seq, size).await;
                continue;
            }
        };
        match s.inner.publish_ref(kind, &records).await {
            Ok(()) => {
                delay = Duration::from_millis(100);
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(file = %path.display(), error = %e, "spool: cannot remove a replayed file");
                }
                s.replayed.fetch_add(records.len() as u64, Ordering::Relaxed);
                metrics::counter!("soc_collector_spool_replayed_total", "kind" => kind.as_str())
                    .increment(records.len() as u64);
                pop(&s, seq, size).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "spool: bus still unavailable");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn pop(s: &Shared, seq: u64, size: u64) {
    let mut q = s.queue.lock().await;
    if q.files.front().map(|f| f.0) == Some(seq) {
        q.files.pop_front();
        q.bytes = q.bytes.saturating_sub(size);
    }
    metrics::gauge!("soc_collector_spool_bytes").set(q.bytes as f64);
    drop(q);
    s.room.notify_waiters();
}

#[async_trait]
impl Bus for SpoolBus {
    async fn ensure_topics(&self) -> Result<(), BusError> {
        // An unreachable broker at start-up is what the spool is for: go on, replay later.
        match self.shared.inner.ensure_topics().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "bus unavailable at start-up; spooling until it is back");
                Ok(())
            }
            other => other,
        }
    }

    async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError> {
        self.publish_ref(kind, &records).await
    }

    async fn publish_ref(&self, kind: Kind, records: &[Record]) -> Result<(), BusError> {
        if records.is_empty() {
            return Ok(());
        }
        if !self.shared.queue.lock().await.files.is_empty() {
            return self.spool(kind, records).await;
        }
        match tokio::time::timeout(self.shared.opts.publish_timeout, self.shared.inner.publish_ref(kind, records)).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if !e.is_transient() => Err(e),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "bus unavailable; spooling");
                self.spool(kind, records).await
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.shared.opts.publish_timeout, "bus did not answer; spooling");
                self.spool(kind, records).await
            }
        }
    }

    async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
        self.shared.inner.subscribe(group, kinds).await
    }

    fn name(&self) -> &'static str {
        self.shared.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_damage_is_detected() {
        let recs = vec![Record::new("h1", b"{\"a\":1}".to_vec()), Record::new(Vec::new(), Vec::new())];
        let b = encode(Kind::DeadLetter, &recs);
        assert_eq!(decode(&b).unwrap(), (Kind::DeadLetter, recs));
        for n in 0..b.len() {
            // Every cut either fails or (at a record boundary) yields fewer records.
            if let Ok((_, r)) = decode(&b[..n]) {
                assert!(r.len() < 2);
            }
        }
        assert!(decode(b"SOCSPOOL1\nnope\n").unwrap_err().contains("unknown kind"));
    }
}
