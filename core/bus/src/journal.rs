//! The on-disk journal behind a durable [`MemoryBus`](crate::MemoryBus): what makes the
//! all-in-one mode keep accepted records across a crash.
//!
//! Per topic, a directory with append-only segment files named by the offset of their first
//! record (`00000000000000000042.log`) and a `groups` file with each consumer group's
//! committed offset. A record is framed as
//! `[u32 len][u32 crc32][i64 offset][u16 key len][key][payload]` (little endian; `len` and
//! the CRC cover everything after the CRC). Publishing appends and flushes to the operating
//! system before it returns, so a killed process loses nothing it acknowledged; with `fsync`
//! on, every append is also synced to the disk (power loss). Commits replace the `groups`
//! file atomically (write, sync, rename). Segments wholly below every group's commit are
//! deleted.
//!
//! On open, each topic is replayed from its oldest segment; a torn frame at the end of the
//! last segment (a crash in the middle of an append) is cut off, counted
//! (`soc_bus_journal_truncated_bytes_total`) and logged. The records no group has
//! committed are loaded back into memory and delivered again.

use crate::BusError;
use soc_model::Kind;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Segment size at which a new segment is started.
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Largest frame accepted on replay (a larger length is a torn or corrupt frame).
const MAX_FRAME: u32 = 64 * 1024 * 1024;
const HEADER: usize = 8;

/// What a topic held when the journal was opened.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Offset of `log[0]`.
    pub base: i64,
    pub log: VecDeque<(Vec<u8>, Vec<u8>)>,
    pub groups: HashMap<String, i64>,
}

struct TopicJournal {
    dir: PathBuf,
    /// Segment base offsets, ascending; the last one is active.
    segments: Vec<i64>,
    active: Option<(BufWriter<File>, u64)>,
}

/// The journal of every topic of one bus.
pub(crate) struct Journal {
    topics: HashMap<Kind, TopicJournal>,
    fsync: bool,
    segment_bytes: u64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> BusError {
    BusError::Config(format!("bus journal: cannot {what} {}: {e}", path.display()))
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn encode(offset: i64, key: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let key = &key[..usize::from(key_len)];
    let body_len = 8 + 2 + key.len() + payload.len();
    let start = out.len();
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Frames of a segment: (offset, key, payload).
type Frames = Vec<(i64, Vec<u8>, Vec<u8>)>;

/// Reads the frames of one segment; returns them and the length of the valid prefix.
fn read_segment(path: &Path) -> Result<(Frames, u64, u64), BusError> {
    let mut buf = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut buf)).map_err(|e| io_err("read", path, e))?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + HEADER <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
        let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        let end = pos + HEADER + len as usize;
        if !(10..=MAX_FRAME).contains(&len) || end > buf.len() || crc32fast::hash(&buf[pos + HEADER..end]) != crc {
            break;
        }
        let body = &buf[pos + HEADER..end];
        let mut off = [0u8; 8];
        off.copy_from_slice(&body[..8]);
        let key_len = usize::from(u16::from_le_bytes([body[8], body[9]]));
        if 10 + key_len > body.len() {
            break;
        }
        out.push((i64::from_le_bytes(off), body[10..10 + key_len].to_vec(), body[10 + key_len..].to_vec()));
        pos = end;
    }
    Ok((out, pos as u64, buf.len() as u64))
}

fn read_groups(path: &Path) -> HashMap<String, i64> {
    let Ok(text) = fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|l| {
            let (off, group) = l.split_once('\t')?;
            Some((group.to_string(), off.parse().ok()?))
        })
        .collect()
}

impl Journal {
    /// Opens (creating) the journal under `dir` and replays every topic.
    pub(crate) fn open(dir: &Path, fsync: bool) -> Result<(Journal, BTreeMap<Kind, Recovered>), BusError> {
        let mut topics = HashMap::new();
        let mut recovered = BTreeMap::new();
        for kind in Kind::ALL {
            let tdir = dir.join(kind.as_str());
            fs::create_dir_all(&tdir).map_err(|e| io_err("create", &tdir, e))?;
            let groups = read_groups(&tdir.join("groups"));
            let mut segments: Vec<i64> = fs::read_dir(&tdir)
                .map_err(|e| io_err("list", &tdir, e))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
                .collect();
            segments.sort_unstable();
            let floor = groups.values().min().copied();
            let mut rec = Recovered { base: 0, log: VecDeque::new(), groups: groups.clone() };
            let mut next = segments.first().copied().unwrap_or(0);
            let last = segments.len().saturating_sub(1);
            for (i, base) in segments.iter().enumerate() {
                let path = segment_path(&tdir, *base);
                let (frames, valid, total) = read_segment(&path)?;
                if valid < total {
                    let cut = total - valid;
                    metrics::counter!("soc_bus_journal_truncated_bytes_total", "topic" => kind.as_str()).increment(cut);
                    tracing::warn!(segment = %path.display(), bytes = cut, "bus journal: torn or corrupt tail cut off");
                    if i == last {
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .and_then(|f| f.set_len(valid))
                            .map_err(|e| io_err("truncate", &path, e))?;
                    }
                }
                for (off, key, payload) in frames {
                    if off < next {
                        continue; // cannot happen in a well-formed journal; keep offsets monotonic
                    }
                    next = off + 1;
                    if floor.is_none_or(|f| off >= f) {
                        if rec.log.is_empty() {
                            rec.base = off;
                        }
                        rec.log.push_back((key, payload));
                    }
                }
            }
            if rec.log.is_empty() {
                // Continue after everything written or committed, never reusing an offset.
                rec.base = next.max(groups.values().max().copied().unwrap_or(0));
            }
            let replayed = rec.log.len();
            if replayed > 0 {
                tracing::info!(topic = kind.as_str(), records = replayed, "bus journal: uncommitted records recovered");
            }
            topics.insert(kind, TopicJournal { dir: tdir, segments, active: None });
            recovered.insert(kind, rec);
        }
        Ok((Journal { topics, fsync, segment_bytes: SEGMENT_BYTES }, recovered))
    }

    #[cfg(test)]
    pub(crate) fn set_segment_bytes(&mut self, n: u64) {
        self.segment_bytes = n;
    }

    /// Appends records with consecutive offsets from `first`; on failure nothing of the batch
    /// remains in the journal.
    pub(crate) fn append(&mut self, kind: Kind, first: i64, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), BusError> {
        if records.is_empty() {
            return Ok(());
        }
        let fsync = self.fsync;
        let seg_bytes = self.segment_bytes;
        let t = self.topics.get_mut(&kind).ok_or_else(|| BusError::Topic {
            topic: kind.as_str().into(),
            reason: "no journal for this topic".into(),
        })?;
        let roll = match &t.active {
            Some((_, size)) => *size >= seg_bytes,
            None => true,
        };
        if roll {
            if let Some((mut w, _)) = t.active.take() {
                let _ = w.flush();
            }
            let path = segment_path(&t.dir, first);
            let f = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_err("open", &path, e))?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            if t.segments.last() != Some(&first) {
                t.segments.push(first);
            }
            t.active = Some((BufWriter::with_capacity(1 << 16, f), size));
        }
        let mut buf = Vec::with_capacity(records.iter().map(|(k, p)| k.len() + p.len() + 18).sum());
        for (i, (k, p)) in records.iter().enumerate() {
            encode(first + i as i64, k, p, &mut buf);
        }
        let Some((w, size)) = t.active.as_mut() else {
            return Err(BusError::Publish { topic: kind.as_str().into(), reason: "journal segment not open".into() });
        };
        let before = *size;
        let r = w
            .write_all(&buf)
            .and_then(|_| w.flush())
            .and_then(|_| if fsync { w.get_ref().sync_data() } else { Ok(()) });
        match r {
            Ok(()) => {
                *size += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut the partial batch off so a retry does not leave half of it behind.
                let _ = w.get_mut().set_len(before);
                let _ = w.get_mut().seek(SeekFrom::End(0));
                t.active = None;
                Err(BusError::Publish { topic: kind.as_str().into(), reason: format!("bus journal write failed: {e}") })
            }
        }
    }

    /// Replaces a topic's committed group offsets (atomically).
    pub(crate) fn save_groups(&mut self, kind: Kind, groups: &HashMap<String, i64>) -> Result<(), BusError> {
        let Some(t) = self.topics.get(&kind) else { return Ok(()) };
        let mut text = String::new();
        let mut sorted: Vec<_> = groups.iter().collect();
        sorted.sort();
        for (g, off) in sorted {
            text.push_str(&format!("{off}\t{g}\n"));
        }
        let tmp = t.dir.join("groups.tmp");
        let dst = t.dir.join("groups");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
            fs::rename(&tmp, &dst)
        };
        write().map_err(|e| BusError::Commit(format!("bus journal: cannot save offsets in {}: {e}", dst.display())))
    }

    /// Deletes segments whose records are all below `offset` (never the active one).
    pub(crate) fn release_below(&mut self, kind: Kind, offset: i64) {
        let Some(t) = self.topics.get_mut(&kind) else { return };
        while t.segments.len() > 1 && t.segments[1] <= offset {
            let base = t.segments.remove(0);
            let path = segment_path(&t.dir, base);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), error = %e, "bus journal: cannot delete a released segment");
            }
        }
    }

    /// Segment files of a topic (for tests and the lag view).
    pub(crate) fn segments(&self, kind: Kind) -> usize {
        self.topics.get(&kind).map_or(0, |t| t.segments.len())
    }
}
