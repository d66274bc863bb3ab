//! Correlation state per bus partition, checkpointed with the partition's offsets.
//!
//! Records are keyed on the bus by host (logs, detections) or flow (network records), so the
//! state built from them (correlation windows, open deduplicated alerts) belongs to the
//! partition they came from. The correlator keeps one [`PartitionState`] per (topic,
//! partition) and, after a batch is stored and published and **before** its offsets are
//! committed, writes the state of every partition the batch changed to a snapshot file: the
//! state and the last offset it reflects, written to a temporary file, synced and renamed
//! (a crash leaves the old snapshot or the new one, never a torn one).
//!
//! On restart (or when a partition is first seen) the snapshot is loaded. Records the bus
//! delivers again whose offset the snapshot already reflects (a crash after the checkpoint,
//! before the commit) are stored again (idempotent by id) but not fed to the windows and the
//! deduplication a second time (a redelivery starts at most one batch before the snapshot's
//! offset; offsets further back mean the partition started over, and the snapshot's offset is
//! then ignored). A snapshot may lag the committed offset (a batch that changed
//! nothing writes none): the records in between changed nothing, so it is still exact.
//!
//! Where the snapshots live: a directory (`<dir>/<group>/<topic>-<partition>.json`). The
//! all-in-one process uses its data directory, next to the bus journal, whose offsets it
//! matches. Correlators of a Kafka group that can take over one another's partitions share
//! the directory (a network file system): each partition's file is written only by the
//! member that owns the partition. A member that sees a partition's offsets jump past what it
//! processed (another member had the partition meanwhile) reloads the snapshot before going on.
//! Without a directory the state lives in memory only.

use crate::correlation::{CorrelationRules, CorrelationState, WindowSnapshot};
use crate::dedup::DedupState;
use serde::{Deserialize, Serialize};
use soc_bus::Message;
use soc_model::Kind;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A bus partition: topic kind and partition number.
pub type PartKey = (Kind, i32);

/// Snapshot file format version.
const FORMAT: u32 = 1;

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write correlation checkpoint {path}: {source}")]
pub struct CheckpointError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// State of one partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    pub correlation: CorrelationState,
    pub dedup: DedupState,
    /// The last offset this state reflects.
    pub offset: Option<i64>,
    /// The offset expected next in this process (`None` before the first record).
    next: Option<i64>,
    /// Changed since the last checkpoint.
    pub changed: bool,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    group: String,
    topic: String,
    partition: i32,
    offset: Option<i64>,
    windows: Vec<WindowSnapshot>,
    dedup: DedupState,
}

/// The partitions' states and where their snapshots go.
#[derive(Debug)]
pub struct Partitions {
    states: HashMap<PartKey, PartitionState>,
    dir: Option<PathBuf>,
    group: String,
    /// Records per consumed batch at most (bounds how far back a redelivery starts).
    max_batch: i64,
    /// Snapshots that could not be read (reported, then started empty).
    pub unreadable: u64,
}

fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

impl Partitions {
    /// States checkpointed under `dir` (none: in memory only) for consumer group `group`,
    /// consuming batches of at most `max_batch` records.
    pub fn new(dir: Option<PathBuf>, group: &str, max_batch: usize) -> Self {
        let max_batch = i64::try_from(max_batch).unwrap_or(i64::MAX);
        Partitions { states: HashMap::new(), dir, group: group.to_string(), max_batch, unreadable: 0 }
    }

    fn path(&self, part: PartKey) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(safe(&self.group)).join(format!("{}-{}.json", part.0.as_str(), part.1)))
    }

    /// Reads a partition's snapshot; `None` when there is none or it cannot be used (then
    /// reported and counted).
    fn load(&mut self, part: PartKey, rules: &CorrelationRules) -> Option<PartitionState> {
        let path = self.path(part)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.unreadable += 1;
                metrics::counter!("soc_correlator_checkpoint_unreadable_total").increment(1);
                tracing::warn!(path = %path.display(), error = %e, "correlation checkpoint unreadable; starting empty");
                return None;
            }
        };
        let snap: Snapshot = match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(s) if s.format == FORMAT => s,
            Ok(s) => {
                self.unreadable += 1;
                tracing::warn!(path = %path.display(), format = s.format, "correlation checkpoint of another format; starting empty");
                return None;
            }
            Err(e) => {
                self.unreadable += 1;
                metrics::counter!("soc_correlator_checkpoint_unreadable_total").increment(1);
                tracing::warn!(path = %path.display(), error = %e, "correlation checkpoint corrupt; starting empty");
                return None;
            }
        };
        let (correlation, dropped) = CorrelationState::restore(rules, snap.windows);
        if dropped > 0 {
            tracing::info!(path = %path.display(), dropped, "windows of correlations no longer loaded dropped");
        }
        tracing::info!(
            path = %path.display(),
            offset = ?snap.offset,
            windows = correlation.len(),
            alerts = snap.dedup.len(),
            "correlation state restored"
        );
        metrics::counter!("soc_correlator_checkpoint_restored_total").increment(1);
        Some(PartitionState { correlation, dedup: snap.dedup, offset: snap.offset, next: None, changed: false })
    }

    /// Called for each consumed record before it is processed: loads the partition's state
    /// when needed and says whether the state already reflects the record (a redelivery after
    /// a checkpoint: the caller stores it but does not detect on it again).
    pub fn begin(&mut self, part: PartKey, offset: i64, rules: &CorrelationRules) -> bool {
        if !self.states.contains_key(&part) {
            let mut st = self.load(part, rules).unwrap_or_default();
            // A redelivery starts at most one batch before the snapshot's offset (the batch
            // checkpointed but not committed). Further back, the partition's offsets started
            // over (a new topic, a reset journal): the snapshot's offset means nothing there.
            if st.offset.is_some_and(|o| offset < o.saturating_sub(self.max_batch)) {
                tracing::warn!(
                    topic = part.0.as_str(),
                    partition = part.1,
                    offset,
                    snapshot_offset = ?st.offset,
                    "offsets restarted below the checkpoint; keeping its windows, not its offset"
                );
                metrics::counter!("soc_correlator_checkpoint_offset_reset_total").increment(1);
                st.offset = None;
            }
            self.states.insert(part, st);
        } else if self.states.get(&part).and_then(|s| s.next).is_some_and(|n| offset > n) {
            // Offsets jumped: another member had the partition; its snapshot is newer.
            let ours = self.states.get(&part).and_then(|s| s.offset);
            if let Some(theirs) = self.load(part, rules).filter(|t| t.offset > ours) {
                self.states.insert(part, theirs);
            }
        }
        let st = self.states.entry(part).or_default();
        st.next = Some(st.next.map_or(offset + 1, |n| n.max(offset + 1)));
        st.offset.is_some_and(|o| offset <= o)
    }

    /// The state of a partition (created empty when unknown).
    pub fn state_mut(&mut self, part: PartKey) -> &mut PartitionState {
        self.states.entry(part).or_default()
    }

    /// Every partition's state.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&PartKey, &mut PartitionState)> {
        self.states.iter_mut()
    }

    /// Open correlation windows over all partitions.
    pub fn windows(&self) -> usize {
        self.states.values().map(|s| s.correlation.len()).sum()
    }

    /// Open deduplicated alerts over all partitions.
    pub fn alerts(&self) -> usize {
        self.states.values().map(|s| s.dedup.len()).sum()
    }

    /// After a batch is stored and published, before its commit: records the offsets the
    /// states now reflect and writes the snapshots of the partitions the batch changed.
    /// Returns the snapshots written.
    pub fn checkpoint(&mut self, done: &[Message], rules: &CorrelationRules) -> Result<usize, CheckpointError> {
        for ((kind, partition), offset) in soc_bus::commit_points(done) {
            let st = self.states.entry((kind, partition)).or_default();
            st.offset = Some(st.offset.map_or(offset, |o| o.max(offset)));
        }
        if self.dir.is_none() {
            for st in self.states.values_mut() {
                st.changed = false;
            }
            return Ok(0);
        }
        let changed: Vec<PartKey> = self.states.iter().filter(|(_, s)| s.changed).map(|(k, _)| *k).collect();
        for part in &changed {
            let Some(path) = self.path(*part) else { continue };
            let Some(st) = self.states.get(part) else { continue };
            let snap = Snapshot {
                format: FORMAT,
                group: self.group.clone(),
                topic: part.0.as_str().to_string(),
                partition: part.1,
                offset: st.offset,
                windows: st.correlation.snapshot(rules),
                dedup: st.dedup.clone(),
            };
            write_atomic(&path, &snap).map_err(|source| CheckpointError { path: path.clone(), source })?;
            if let Some(st) = self.states.get_mut(part) {
                st.changed = false;
            }
        }
        if !changed.is_empty() {
            metrics::counter!("soc_correlator_checkpoints_written_total").increment(changed.len() as u64);
        }
        Ok(changed.len())
    }
}

fn write_atomic(path: &Path, snap: &Snapshot) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, snap).map_err(std::io::Error::other)?;
        f.flush()?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all(); // directory entry durability; not supported everywhere
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: i64) -> Message {
        Message { kind: Kind::Log, partition: 0, offset, key: vec![], payload: vec![] }
    }

    #[test]
    fn a_snapshot_is_reloaded_and_reflected_offsets_are_recognized() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g/1", 10);
        assert!(!p.begin((Kind::Log, 0), 0, &rules));
        assert!(!p.begin((Kind::Log, 0), 1, &rules));
        p.state_mut((Kind::Log, 0)).changed = true;
        assert_eq!(p.checkpoint(&[msg(0), msg(1)], &rules).unwrap(), 1);
        assert!(dir.path().join("g_1/log-0.json").is_file());
        // Nothing changed: no write.
        assert!(!p.begin((Kind::Log, 0), 2, &rules));
        assert_eq!(p.checkpoint(&[msg(2)], &rules).unwrap(), 0);
        // A new process: offsets up to 1 are reflected, 2 is not (it changed nothing).
        let mut q = Partitions::new(Some(dir.path().to_path_buf()), "g/1", 10);
        assert!(q.begin((Kind::Log, 0), 1, &rules));
        assert!(!q.begin((Kind::Log, 0), 2, &rules));
    }

    #[test]
    fn a_corrupt_snapshot_is_reported_and_the_partition_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("g")).unwrap();
        std::fs::write(dir.path().join("g/log-3.json"), b"{not json").unwrap();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(!p.begin((Kind::Log, 3), 0, &CorrelationRules::default()));
        assert_eq!(p.unreadable, 1);
    }

    #[test]
    fn offsets_that_started_over_below_the_snapshot_are_not_taken_for_a_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        let done: Vec<Message> = (0..100).map(msg).collect();
        for m in &done {
            p.begin((Kind::Log, 0), m.offset, &rules);
        }
        p.state_mut((Kind::Log, 0)).changed = true;
        p.checkpoint(&done, &rules).unwrap();
        // Within one batch of the snapshot: a redelivery.
        let mut q = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(q.begin((Kind::Log, 0), 95, &rules));
        // Far below it: the bus started over; nothing is skipped.
        let mut r = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(!r.begin((Kind::Log, 0), 0, &rules));
        assert!(!r.begin((Kind::Log, 0), 1, &rules));
    }
}
