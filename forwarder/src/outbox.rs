//! The durable outbox (SQLite, WAL, synchronous=FULL): one row per incident version, with its
//! bundle, state, attempts, next retry time and last reason. A version is in the outbox
//! before its bus offset is committed, and leaves the pending states only when the server
//! confirmed it or refused it for good, so nothing is lost across forwarder or server
//! restarts. Another process (`soc forwarder approve`) may open the same file.

use rusqlite::{Connection, OptionalExtension, params};
use soc_model::ForwardState;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Outbox failures (the database could not be used).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("outbox: unknown state {0:?} in the database")]
    State(String),
}

/// Exponential backoff: `initial * 2^(attempt-1)`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(2), max: Duration::from_secs(600) }
    }
}

impl Backoff {
    /// Delay before the attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << exp).min(self.max)
    }
}

/// One incident version in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub incident_id: String,
    pub version: u64,
    pub state: ForwardState,
    pub bundle_id: String,
    /// The bundle as JSON text (sent byte for byte on every attempt).
    pub bundle: String,
    pub attempts: u32,
    pub next_attempt_us: i64,
    pub status_id: Option<String>,
    pub reason: Option<String>,
    pub updated_us: i64,
}

fn parse_state(s: &str) -> Result<ForwardState, OutboxError> {
    Ok(match s {
        "queued" => ForwardState::Queued,
        "awaiting_approval" => ForwardState::AwaitingApproval,
        "sent" => ForwardState::Sent,
        "confirmed" => ForwardState::Confirmed,
        "failed" => ForwardState::Failed,
        "rejected" => ForwardState::Rejected,
        "skipped" => ForwardState::Skipped,
        other => return Err(OutboxError::State(other.to_string())),
    })
}

const COLUMNS: &str =
    "incident_id, version, state, bundle_id, bundle, attempts, next_attempt_us, status_id, reason, updated_us";

fn now_us() -> i64 {
    soc_model::Timestamp::now().unix_micros()
}

/// The outbox database.
pub struct Outbox {
    conn: Mutex<Connection>,
    path: String,
    backoff: Backoff,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

type Row = (String, i64, String, String, String, i64, i64, Option<String>, Option<String>, i64);

impl Outbox {
    /// Opens (creates) the outbox at `path`.
    pub fn open(path: &Path, backoff: Backoff) -> Result<Self, OutboxError> {
        let p = path.display().to_string();
        let err = |source| OutboxError::Sqlite { path: p.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS outbox (
                incident_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                state TEXT NOT NULL,
                bundle_id TEXT NOT NULL,
                bundle TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_us INTEGER NOT NULL,
                status_id TEXT,
                reason TEXT,
                updated_us INTEGER NOT NULL,
                PRIMARY KEY (incident_id, version)
            );
            CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_us);
            CREATE TABLE IF NOT EXISTS approvals (
                incident_id TEXT PRIMARY KEY,
                approved_by TEXT NOT NULL,
                approved_us INTEGER NOT NULL
            );",
        )
        .map_err(err)?;
        Ok(Outbox { conn: Mutex::new(conn), path: p, backoff })
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, OutboxError> {
        let mut guard = match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard).map_err(|source| OutboxError::Sqlite { path: self.path.clone(), source })
    }

    fn entry(r: Row) -> Result<Entry, OutboxError> {
        Ok(Entry {
            incident_id: r.0,
            version: r.1 as u64,
            state: parse_state(&r.2)?,
            bundle_id: r.3,
            bundle: r.4,
            attempts: r.5 as u32,
            next_attempt_us: r.6,
            status_id: r.7,
            reason: r.8,
            updated_us: r.9,
        })
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ))
    }

    fn select(&self, sql_where: &str, p: impl rusqlite::Params) -> Result<Vec<Entry>, OutboxError> {
        let rows = self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM outbox {sql_where}"))?;
            st.query_map(p, Self::row)?.collect::<rusqlite::Result<Vec<Row>>>()
        })?;
        rows.into_iter().map(Self::entry).collect()
    }

    /// Adds an incident version in `state` (`queued`, `awaiting_approval` or `skipped`).
    /// Returns `None` when that version is already in the outbox (a redelivery), else the
    /// older versions it superseded (moved from a pending state to `skipped`): only the
    /// newest version of an incident needs to travel, it carries everything.
    pub fn enqueue(
        &self,
        incident_id: &str,
        version: u64,
        state: ForwardState,
        bundle_id: &str,
        bundle: &str,
        reason: Option<&str>,
    ) -> Result<Option<Vec<u64>>, OutboxError> {
        let now = now_us();
        self.with(|c| {
            let tx = c.transaction()?;
            let newer: Option<i64> = tx
                .query_row(
                    "SELECT MAX(version) FROM outbox WHERE incident_id = ?1 AND version > ?2",
                    params![incident_id, version as i64],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let (state, reason) = match newer {
                // A late, older version: a newer one is already on its way.
                Some(n) => (ForwardState::Skipped, Some(format!("superseded by version {n}"))),
                None => (state, reason.map(String::from)),
            };
            let n = tx.execute(
                "INSERT OR IGNORE INTO outbox (incident_id, version, state, bundle_id, bundle, attempts, next_attempt_us, reason, updated_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?6)",
                params![incident_id, version as i64, state.as_str(), bundle_id, bundle, now, reason],
            )?;
            if n == 0 {
                tx.commit()?;
                return Ok(None);
            }
            let mut superseded = vec![];
            if matches!(state, ForwardState::Queued | ForwardState::AwaitingApproval) {
                let mut st = tx.prepare(
                    "SELECT version FROM outbox WHERE incident_id = ?1 AND version < ?2
                     AND state IN ('queued', 'failed', 'awaiting_approval')",
                )?;
                superseded = st
                    .query_map(params![incident_id, version as i64], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                drop(st);
                tx.execute(
                    "UPDATE outbox SET state = 'skipped', reason = ?3, updated_us = ?4 WHERE incident_id = ?1 AND version < ?2
                     AND state IN ('queued', 'failed', 'awaiting_approval')",
                    params![incident_id, version as i64, format!("superseded by version {version}"), now],
                )?;
            }
            tx.commit()?;
            Ok(Some(superseded.into_iter().map(|v| v as u64).collect()))
        })
    }

    /// Whether a version of the incident went out (sent or confirmed).
    pub fn shared(&self, incident_id: &str) -> Result<bool, OutboxError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS(SELECT 1 FROM outbox WHERE incident_id = ?1 AND state IN ('sent', 'confirmed'))",
                params![incident_id],
                |r| r.get(0),
            )
        })
    }

    /// Whether an analyst approved the incident.
    pub fn approved(&self, incident_id: &str) -> Result<bool, OutboxError> {
        self.with(|c| {
            c.query_row("SELECT EXISTS(SELECT 1 FROM approvals WHERE incident_id = ?1)", params![incident_id], |r| {
                r.get(0)
            })
        })
    }

    /// Approves an incident: its versions awaiting approval (or rejected earlier, e.g. before
    /// a configuration fix) are queued now, later ones will not wait. Returns the versions
    /// queued.
    pub fn approve(&self, incident_id: &str, by: &str) -> Result<Vec<u64>, OutboxError> {
        let now = now_us();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR IGNORE INTO approvals (incident_id, approved_by, approved_us) VALUES (?1, ?2, ?3)",
                params![incident_id, by, now],
            )?;
            let versions = {
                let mut st = tx.prepare(
                    "SELECT version FROM outbox WHERE incident_id = ?1 AND state IN ('awaiting_approval', 'rejected') ORDER BY version",
                )?;
                st.query_map(params![incident_id], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<Vec<i64>>>()?
            };
            tx.execute(
                "UPDATE outbox SET state = 'queued', next_attempt_us = ?2, reason = ?3, updated_us = ?2
                 WHERE incident_id = ?1 AND state IN ('awaiting_approval', 'rejected')",
                params![incident_id, now, format!("approved by {by}")],
            )?;
            tx.commit()?;
            Ok(versions.into_iter().map(|v| v as u64).collect())
        })
    }

    /// Entries whose (next) attempt is due: queued, failed (retry), sent (status re-poll).
    pub fn due(&self, now_us: i64, limit: usize) -> Result<Vec<Entry>, OutboxError> {
        self.select(
            "WHERE state IN ('queued', 'failed', 'sent') AND next_attempt_us <= ?1 ORDER BY next_attempt_us, incident_id, version LIMIT ?2",
            params![now_us, limit as i64],
        )
    }

    /// When the next pending entry is due, if any.
    pub fn next_due_us(&self) -> Result<Option<i64>, OutboxError> {
        self.with(|c| {
            c.query_row(
                "SELECT MIN(next_attempt_us) FROM outbox WHERE state IN ('queued', 'failed', 'sent')",
                [],
                |r| r.get(0),
            )
        })
    }

    /// Counts the start of an attempt (before anything is sent); returns its number.
    pub fn begin_attempt(&self, incident_id: &str, version: u64) -> Result<u32, OutboxError> {
        let now = now_us();
        self.with(|c| {
            c.query_row(
                "UPDATE outbox SET attempts = attempts + 1, updated_us = ?3 WHERE incident_id = ?1 AND version = ?2 RETURNING attempts",
                params![incident_id, version as i64, now],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u32)
    }

    fn set(
        &self,
        incident_id: &str,
        version: u64,
        state: ForwardState,
        next_us: i64,
        status_id: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), OutboxError> {
        let now = now_us();
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET state = ?3, next_attempt_us = ?4, status_id = COALESCE(?5, status_id), reason = ?6, updated_us = ?7
                 WHERE incident_id = ?1 AND version = ?2",
                params![incident_id, version as i64, state.as_str(), next_us, status_id, reason, now],
            )
        })
        .map(|_| ())
    }

    /// The server accepted the request; its status is polled again at `repoll`.
    pub fn mark_sent(
        &self,
        incident_id: &str,
        version: u64,
        status_id: &str,
        repoll: Duration,
    ) -> Result<(), OutboxError> {
        let next = now_us().saturating_add(repoll.as_micros() as i64);
        self.set(incident_id, version, ForwardState::Sent, next, Some(status_id), None)
    }

    pub fn mark_confirmed(&self, incident_id: &str, version: u64) -> Result<(), OutboxError> {
        self.set(incident_id, version, ForwardState::Confirmed, i64::MAX, None, None)
    }

    /// A failed attempt: retried after the backoff for `attempts`. Returns the delay.
    pub fn mark_failed(
        &self,
        incident_id: &str,
        version: u64,
        attempts: u32,
        reason: &str,
    ) -> Result<Duration, OutboxError> {
        let d = self.backoff.delay(attempts);
        let next = now_us().saturating_add(d.as_micros() as i64);
        self.set(incident_id, version, ForwardState::Failed, next, None, Some(reason))?;
        Ok(d)
    }

    /// Refused for good: not retried (an analyst may re-queue it with `approve`).
    pub fn mark_rejected(&self, incident_id: &str, version: u64, reason: &str) -> Result<(), OutboxError> {
        self.set(incident_id, version, ForwardState::Rejected, i64::MAX, None, Some(reason))
    }

    /// Every version of one incident, oldest first.
    pub fn entries(&self, incident_id: &str) -> Result<Vec<Entry>, OutboxError> {
        self.select("WHERE incident_id = ?1 ORDER BY version", params![incident_id])
    }

    /// Every entry (for reports and tests), by incident and version.
    pub fn all(&self) -> Result<Vec<Entry>, OutboxError> {
        self.select("ORDER BY incident_id, version", [])
    }

    /// Number of entries per state.
    pub fn counts(&self) -> Result<Vec<(String, u64)>, OutboxError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")?;
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ob() -> (tempfile::TempDir, Outbox) {
        let d = tempfile::tempdir().unwrap();
        let o = Outbox::open(&d.path().join("o.sqlite"), Backoff::default()).unwrap();
        (d, o)
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(10) };
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(4), Duration::from_secs(8));
        assert_eq!(b.delay(5), Duration::from_secs(10));
        assert_eq!(b.delay(1000), Duration::from_secs(10));
    }

    #[test]
    fn a_redelivered_version_is_not_queued_twice() {
        let (_d, o) = ob();
        assert_eq!(o.enqueue("i", 1, ForwardState::Queued, "b1", "{}", None).unwrap(), Some(vec![]));
        assert_eq!(o.enqueue("i", 1, ForwardState::Queued, "b1", "{}", None).unwrap(), None);
        assert_eq!(o.all().unwrap().len(), 1);
    }

    #[test]
    fn a_newer_version_supersedes_pending_older_ones_and_a_late_older_one_is_skipped() {
        let (_d, o) = ob();
        o.enqueue("i", 1, ForwardState::Queued, "b1", "{}", None).unwrap();
        assert_eq!(o.enqueue("i", 3, ForwardState::Queued, "b3", "{}", None).unwrap(), Some(vec![1]));
        o.enqueue("i", 2, ForwardState::Queued, "b2", "{}", None).unwrap();
        let e = o.entries("i").unwrap();
        assert_eq!(
            e.iter().map(|e| e.state).collect::<Vec<_>>(),
            vec![ForwardState::Skipped, ForwardState::Skipped, ForwardState::Queued]
        );
        assert!(e[1].reason.as_deref().unwrap().contains("version 3"));
    }

    #[test]
    fn failures_are_retried_after_the_backoff_and_rejections_never() {
        let (_d, o) = ob();
        o.enqueue("i", 1, ForwardState::Queued, "b", "{}", None).unwrap();
        o.enqueue("j", 1, ForwardState::Queued, "b", "{}", None).unwrap();
        let now = now_us();
        assert_eq!(o.due(now, 10).unwrap().len(), 2);
        let n = o.begin_attempt("i", 1).unwrap();
        assert_eq!(n, 1);
        let d = o.mark_failed("i", 1, n, "HTTP 503").unwrap();
        o.mark_rejected("j", 1, "HTTP 413").unwrap();
        assert!(o.due(now_us(), 10).unwrap().is_empty());
        let later = now_us() + d.as_micros() as i64 + 1;
        let due = o.due(later, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].incident_id, "i");
        assert_eq!(due[0].reason.as_deref(), Some("HTTP 503"));
        assert!(o.due(i64::MAX - 1, 10).unwrap().iter().all(|e| e.incident_id != "j"));
    }

    #[test]
    fn approval_queues_waiting_versions_and_survives_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("o.sqlite");
        {
            let o = Outbox::open(&p, Backoff::default()).unwrap();
            o.enqueue("i", 1, ForwardState::AwaitingApproval, "b", "{}", None).unwrap();
            assert!(o.due(now_us(), 10).unwrap().is_empty());
        }
        let other = Outbox::open(&p, Backoff::default()).unwrap();
        assert_eq!(other.approve("i", "analyst").unwrap(), vec![1]);
        assert!(other.approved("i").unwrap());
        let o = Outbox::open(&p, Backoff::default()).unwrap();
        assert_eq!(o.due(now_us(), 10).unwrap().len(), 1);
        o.mark_sent("i", 1, "st", Duration::ZERO).unwrap();
        assert!(o.shared("i").unwrap());
        o.mark_confirmed("i", 1).unwrap();
        assert_eq!(o.counts().unwrap(), vec![("confirmed".to_string(), 1)]);
    }
}
