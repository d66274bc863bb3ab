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
//! Writing is split so that the disk is off the hot path: [`Partitions::prepare`] (right after
//! the batch's state is final, before it is stored) serializes the changed partitions and a
//! blocking task writes and syncs them to temporary files while the batch is being stored;
//! [`PendingCheckpoint::finish`] (after the store acknowledged, before the commit) waits for
//! that task and renames the files into place. A snapshot therefore never reflects a batch the
//! store has not acknowledged, and every committed offset is covered by a snapshot.
//!
//! Partitions move between the members of a Kafka group: when one is revoked
//! ([`Partitions::revoke`]) its state is written if it changed and dropped from memory; when
//! one is assigned ([`Partitions::assign`]) a state still in memory from an earlier ownership
//! is dropped, and the partition's snapshot is loaded at its first record.
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
    /// Correlation windows kept per partition at most.
    max_groups: usize,
}

/// Temporary snapshot files written, and where each goes.
type Moves = Vec<(PathBuf, PathBuf)>;

/// Snapshots being written in the background: [`finish`](Self::finish) waits for them and
/// puts them in place.
#[derive(Debug)]
pub struct PendingCheckpoint {
    task: Option<tokio::task::JoinHandle<Result<Moves, CheckpointError>>>,
    written: usize,
}

impl PendingCheckpoint {
    /// Snapshots in this checkpoint.
    pub fn len(&self) -> usize {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Waits until the snapshots are written and synced, then renames them into place (each
    /// one atomically). Returns how many.
    pub async fn finish(mut self) -> Result<usize, CheckpointError> {
        let Some(task) = self.task.take() else { return Ok(0) };
        let moves = match task.await {
            Ok(r) => r?,
            Err(e) => {
                return Err(CheckpointError { path: PathBuf::new(), source: std::io::Error::other(e.to_string()) });
            }
        };
        tokio::task::spawn_blocking(move || {
            let mut dirs = std::collections::BTreeSet::new();
            for (tmp, path) in &moves {
                std::fs::rename(tmp, path).map_err(|source| CheckpointError { path: path.clone(), source })?;
                if let Some(parent) = path.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
            for d in dirs {
                if let Ok(d) = std::fs::File::open(&d) {
                    let _ = d.sync_all(); // directory entry durability; not supported everywhere
                }
            }
            metrics::counter!("soc_correlator_checkpoints_written_total").increment(moves.len() as u64);
            Ok(moves.len())
        })
        .await
        .map_err(|e| CheckpointError { path: PathBuf::new(), source: std::io::Error::other(e.to_string()) })?
    }
}

fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

impl Partitions {
    /// States checkpointed under `dir` (none: in memory only) for consumer group `group`,
    /// consuming batches of at most `max_batch` records.
    pub fn new(dir: Option<PathBuf>, group: &str, max_batch: usize) -> Self {
        let max_batch = i64::try_from(max_batch).unwrap_or(i64::MAX);
        Partitions {
            states: HashMap::new(),
            dir,
            group: group.to_string(),
            max_batch,
            unreadable: 0,
            max_groups: crate::correlation::MAX_GROUPS,
        }
    }

    /// Caps the correlation windows of each partition (default
    /// [`crate::correlation::MAX_GROUPS`]).
    pub fn with_max_groups(mut self, max_groups: usize) -> Self {
        self.max_groups = max_groups.max(1);
        for st in self.states.values_mut() {
            st.correlation.set_max_groups(self.max_groups);
        }
        self
    }

    fn empty(&self) -> PartitionState {
        let mut st = PartitionState::default();
        st.correlation.set_max_groups(self.max_groups);
        st
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
        let (mut correlation, dropped) = CorrelationState::restore(rules, snap.windows);
        correlation.set_max_groups(self.max_groups);
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
            let mut st = match self.load(part, rules) {
                Some(st) => st,
                None => self.empty(),
            };
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
        let Some(st) = self.states.get_mut(&part) else { return false };
        st.next = Some(st.next.map_or(offset + 1, |n| n.max(offset + 1)));
        st.offset.is_some_and(|o| offset <= o)
    }

    /// The state of a partition (created empty when unknown).
    pub fn state_mut(&mut self, part: PartKey) -> &mut PartitionState {
        if !self.states.contains_key(&part) {
            let st = self.empty();
            self.states.insert(part, st);
        }
        self.states.entry(part).or_default()
    }

    /// Marks every partition's state as changed (written at the next checkpoint).
    pub fn mark_all_changed(&mut self) {
        for st in self.states.values_mut() {
            st.changed = true;
        }
    }

    /// Partitions with a state in memory.
    pub fn owned(&self) -> Vec<PartKey> {
        let mut v: Vec<PartKey> = self.states.keys().copied().collect();
        v.sort();
        v
    }

    /// Drops what can no longer matter: correlation windows that can no longer fire and
    /// deduplicated alerts whose window passed, at each partition's latest event time plus
    /// `idle` (the bus has been idle that long: event time is taken to move with the clock).
    /// Returns the windows and alerts dropped; changed partitions are checkpointed with the
    /// next batch.
    pub fn prune_idle(
        &mut self,
        idle: std::time::Duration,
        rules: &CorrelationRules,
        dedup: Option<&crate::dedup::DedupOptions>,
    ) -> (usize, usize) {
        let idle_us = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
        let (mut windows, mut alerts) = (0, 0);
        for st in self.states.values_mut() {
            let mut n = 0;
            if let Some(w) = st.correlation.watermark() {
                let k = st.correlation.prune(rules, w.saturating_add(idle_us));
                windows += k;
                n += k;
            }
            if let Some(opts) = dedup
                && !st.dedup.is_empty()
            {
                let k = st.dedup.prune(opts, st.dedup.watermark().saturating_add(idle_us));
                alerts += k;
                n += k;
            }
            if n > 0 {
                st.changed = true;
            }
        }
        (windows, alerts)
    }

    /// A partition this member no longer owns: its state is written if it changed since the
    /// last checkpoint (it is not, between batches), then dropped from memory. The new owner
    /// loads the snapshot. Returns whether a state was in memory.
    pub fn revoke(&mut self, part: PartKey, rules: &CorrelationRules) -> Result<bool, CheckpointError> {
        let Some(st) = self.states.get(&part) else { return Ok(false) };
        if st.changed
            && let Some(path) = self.path(part)
        {
            let bytes =
                self.serialize(part, st, rules).map_err(|source| CheckpointError { path: path.clone(), source })?;
            write_atomic(&path, &bytes).map_err(|source| CheckpointError { path: path.clone(), source })?;
            metrics::counter!("soc_correlator_checkpoints_written_total").increment(1);
        }
        self.states.remove(&part);
        tracing::info!(
            group = %self.group,
            topic = part.0.as_str(),
            partition = part.1,
            "partition revoked: correlation state checkpointed and dropped from memory"
        );
        Ok(true)
    }

    /// A partition assigned to this member: a state left from an earlier ownership is stale
    /// (another member may have had the partition meanwhile) and dropped; the snapshot is
    /// loaded at the partition's first record.
    pub fn assign(&mut self, part: PartKey) {
        if self.states.remove(&part).is_some() {
            tracing::info!(
                topic = part.0.as_str(),
                partition = part.1,
                "stale state of a reassigned partition dropped"
            );
        }
    }

    fn serialize(&self, part: PartKey, st: &PartitionState, rules: &CorrelationRules) -> std::io::Result<Vec<u8>> {
        let snap = Snapshot {
            format: FORMAT,
            group: self.group.clone(),
            topic: part.0.as_str().to_string(),
            partition: part.1,
            offset: st.offset,
            windows: st.correlation.snapshot(rules),
            dedup: st.dedup.clone(),
        };
        serde_json::to_vec(&snap).map_err(std::io::Error::other)
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

    /// Once the batch's state is final (before it is stored): records the offsets the states
    /// will reflect and starts writing the snapshots of the partitions the batch changed to
    /// temporary files in the background. Nothing is visible until
    /// [`PendingCheckpoint::finish`], called after the store acknowledged the batch; if the
    /// batch fails instead, the process stops and the snapshots on disk stay the previous ones.
    pub fn prepare(
        &mut self,
        done: &[Message],
        rules: &CorrelationRules,
    ) -> Result<PendingCheckpoint, CheckpointError> {
        for ((kind, partition), offset) in soc_bus::commit_points(done) {
            if let Some(st) = self.states.get_mut(&(kind, partition)) {
                st.offset = Some(st.offset.map_or(offset, |o| o.max(offset)));
            } else {
                let mut st = self.empty();
                st.offset = Some(offset);
                self.states.insert((kind, partition), st);
            }
        }
        if self.dir.is_none() {
            for st in self.states.values_mut() {
                st.changed = false;
            }
            return Ok(PendingCheckpoint { task: None, written: 0 });
        }
        let mut jobs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for (part, st) in self.states.iter().filter(|(_, s)| s.changed) {
            let Some(path) = self.path(*part) else { continue };
            let bytes =
                self.serialize(*part, st, rules).map_err(|source| CheckpointError { path: path.clone(), source })?;
            jobs.push((path, bytes));
        }
        for st in self.states.values_mut() {
            st.changed = false;
        }
        let written = jobs.len();
        if jobs.is_empty() {
            return Ok(PendingCheckpoint { task: None, written });
        }
        let task = tokio::task::spawn_blocking(move || {
            let mut moves = Vec::with_capacity(jobs.len());
            for (path, bytes) in jobs {
                let tmp = write_tmp(&path, &bytes).map_err(|source| CheckpointError { path: path.clone(), source })?;
                moves.push((tmp, path));
            }
            Ok(moves)
        });
        Ok(PendingCheckpoint { task: Some(task), written })
    }

    /// [`prepare`](Self::prepare) and [`PendingCheckpoint::finish`] at once.
    pub async fn checkpoint(&mut self, done: &[Message], rules: &CorrelationRules) -> Result<usize, CheckpointError> {
        self.prepare(done, rules)?.finish().await
    }
}

/// Writes and syncs `bytes` next to `path` (`<path>.<pid>.<n>.tmp`); returns the temporary file.
fn write_tmp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Unique per process and write: group members sharing the directory never write the same
    // temporary file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("json.{}.{seq}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.flush()?;
    f.sync_all()?;
    Ok(tmp)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = write_tmp(path, bytes)?;
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

    #[tokio::test]
    async fn a_snapshot_is_reloaded_and_reflected_offsets_are_recognized() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g/1", 10);
        assert!(!p.begin((Kind::Log, 0), 0, &rules));
        assert!(!p.begin((Kind::Log, 0), 1, &rules));
        p.state_mut((Kind::Log, 0)).changed = true;
        assert_eq!(p.checkpoint(&[msg(0), msg(1)], &rules).await.unwrap(), 1);
        assert!(dir.path().join("g_1/log-0.json").is_file());
        // Nothing changed: no write.
        assert!(!p.begin((Kind::Log, 0), 2, &rules));
        assert_eq!(p.checkpoint(&[msg(2)], &rules).await.unwrap(), 0);
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

    #[tokio::test]
    async fn offsets_that_started_over_below_the_snapshot_are_not_taken_for_a_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        let done: Vec<Message> = (0..100).map(msg).collect();
        for m in &done {
            p.begin((Kind::Log, 0), m.offset, &rules);
        }
        p.state_mut((Kind::Log, 0)).changed = true;
        p.checkpoint(&done, &rules).await.unwrap();
        // Within one batch of the snapshot: a redelivery.
        let mut q = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(q.begin((Kind::Log, 0), 95, &rules));
        // Far below it: the bus started over; nothing is skipped.
        let mut r = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(!r.begin((Kind::Log, 0), 0, &rules));
        assert!(!r.begin((Kind::Log, 0), 1, &rules));
    }

    #[tokio::test]
    async fn a_prepared_snapshot_is_invisible_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(!p.begin((Kind::Log, 0), 0, &rules));
        p.state_mut((Kind::Log, 0)).changed = true;
        let pending = p.prepare(&[msg(0)], &rules).unwrap();
        assert_eq!(pending.len(), 1);
        // The batch is not stored yet: a restart would find no snapshot, so offset 0 is processed again.
        let mut before = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(!before.begin((Kind::Log, 0), 0, &rules), "a snapshot became visible before finish");
        assert_eq!(pending.finish().await.unwrap(), 1);
        let mut after = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        assert!(after.begin((Kind::Log, 0), 0, &rules));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("g"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[tokio::test]
    async fn a_revoked_partition_is_written_and_dropped_and_an_assigned_one_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let rules = CorrelationRules::default();
        let opts = crate::dedup::DedupOptions::default();
        let mut det = soc_model::Event::new(soc_model::EventType::Detection, soc_model::Timestamp::from_unix_micros(1));
        det.detection = Some(soc_model::Detection { rule_id: "r".into(), ..Default::default() });
        let mut p = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        for part in [0, 1] {
            assert!(!p.begin((Kind::Log, part), 0, &rules));
            p.state_mut((Kind::Log, part)).dedup.admit(&opts, det.clone());
        }
        p.checkpoint(&[msg(0)], &rules).await.unwrap();
        // Changed after the checkpoint (as an idle prune does): revoking writes it.
        p.state_mut((Kind::Log, 1)).changed = true;
        assert!(p.revoke((Kind::Log, 1), &rules).unwrap());
        assert_eq!(p.owned(), vec![(Kind::Log, 0)]);
        assert!(dir.path().join("g/log-1.json").is_file());
        // Another member (same directory) takes partition 1 over and finds the open alert.
        let mut q = Partitions::new(Some(dir.path().to_path_buf()), "g", 10);
        q.assign((Kind::Log, 1));
        q.begin((Kind::Log, 1), 1, &rules);
        assert_eq!(q.state_mut((Kind::Log, 1)).dedup.len(), 1);
        // Reassigned to the first member later: its stale copy is dropped first.
        p.assign((Kind::Log, 0));
        assert!(p.owned().is_empty());
    }
}
