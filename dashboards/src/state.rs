//! The dashboard's own state database (SQLite): users, sessions, the audit log and
//! suppressions. Events, alerts (with their triage state) and incidents stay in the store;
//! this holds who the analysts are and what they did. The `alert_state` table is what older
//! versions kept triage state in; the API reads and writes the store's alert rows instead.
//!
//! The audit table is append-only: triggers abort any `UPDATE` or `DELETE`, and each entry
//! carries the SHA-256 of the previous entry's hash and its own fields (a hash chain that
//! [`StateDb::verify_audit_chain`] checks).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Failures of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("dashboard state database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("dashboard state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("dashboard state database unusable: a previous operation panicked")]
    Poisoned,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    username   TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    role       TEXT NOT NULL,
    segments   TEXT,
    created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_us   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS alert_state (
    alert_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    assignee    TEXT,
    verdict     TEXT,
    incident_id TEXT,
    comment     TEXT,
    updated_us  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressions (
    rule_key   TEXT NOT NULL,
    segment    TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (rule_key, segment)
);
";

/// A stored user.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub username: String,
    /// Argon2 PHC string.
    pub hash: String,
    pub role: String,
    /// Data scope; `None`: every segment.
    pub segments: Option<Vec<String>>,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub username: String,
    pub csrf: String,
    pub expires_us: i64,
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub ts_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub outcome: String,
    pub hash: String,
}

/// Triage state of one alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlertState {
    pub status: String,
    pub assignee: Option<String>,
    pub verdict: Option<String>,
    pub incident_id: Option<String>,
    pub comment: Option<String>,
}

/// The state database. Statements are short; one connection behind a mutex.
pub struct StateDb {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").finish_non_exhaustive()
    }
}

fn chain_hash(prev: &str, ts_us: i64, actor: &str, action: &str, target: &str, detail: &str, outcome: &str) -> String {
    let mut h = Sha256::new();
    for part in [prev, &ts_us.to_string(), actor, action, target, detail, outcome] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl StateDb {
    /// Opens (creating) the database at `path`, or a private in-memory one when `None`.
    pub fn open(path: Option<&Path>) -> Result<Self, StateError> {
        let shown = path.map(|p| p.display().to_string()).unwrap_or_else(|| ":memory:".into());
        let open_err = |e: rusqlite::Error| StateError::Open { path: shown.clone(), reason: e.to_string() };
        let conn = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StateError::Open { path: shown.clone(), reason: e.to_string() })?;
                }
                let c = Connection::open(p).map_err(open_err)?;
                c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).map_err(open_err)?;
                c
            }
            None => Connection::open_in_memory().map_err(open_err)?,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(StateDb { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Poisoned)
    }

    // ---- users

    pub fn user(&self, username: &str) -> Result<Option<UserRow>, StateError> {
        let c = self.conn()?;
        let row = c
            .query_row("SELECT username, hash, role, segments FROM users WHERE username = ?1", [username], user_row)
            .optional()?;
        Ok(row)
    }

    pub fn users(&self) -> Result<Vec<UserRow>, StateError> {
        let c = self.conn()?;
        let mut st = c.prepare("SELECT username, hash, role, segments FROM users ORDER BY username")?;
        let rows = st.query_map([], user_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn user_count(&self) -> Result<u64, StateError> {
        let c = self.conn()?;
        let n: i64 = c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub fn admin_count(&self) -> Result<u64, StateError> {
        let c = self.conn()?;
        let n: i64 = c.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Inserts a new user; false when the name is taken.
    pub fn insert_user(&self, u: &UserRow, now_us: i64) -> Result<bool, StateError> {
        let c = self.conn()?;
        let n = c.execute(
            "INSERT OR IGNORE INTO users (username, hash, role, segments, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.username, u.hash, u.role, segments_text(&u.segments), now_us],
        )?;
        Ok(n == 1)
    }

    /// Replaces a user's hash, role and scope; false when there is no such user.
    pub fn update_user(&self, u: &UserRow) -> Result<bool, StateError> {
        let c = self.conn()?;
        let n = c.execute(
            "UPDATE users SET hash = ?2, role = ?3, segments = ?4 WHERE username = ?1",
            params![u.username, u.hash, u.role, segments_text(&u.segments)],
        )?;
        Ok(n == 1)
    }

    /// Deletes a user and their sessions; false when there is no such user.
    pub fn delete_user(&self, username: &str) -> Result<bool, StateError> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let n = tx.execute("DELETE FROM users WHERE username = ?1", [username])?;
        tx.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
        tx.commit()?;
        Ok(n == 1)
    }

    // ---- sessions

    pub fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        now_us: i64,
        expires_us: i64,
    ) -> Result<(), StateError> {
        let c = self.conn()?;
        c.execute("DELETE FROM sessions WHERE expires_us <= ?1", [now_us])?;
        c.execute(
            "INSERT INTO sessions (token_hash, username, csrf, created_us, expires_us) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_hash, username, csrf, now_us, expires_us],
        )?;
        Ok(())
    }

    pub fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StateError> {
        let c = self.conn()?;
        Ok(c.query_row("SELECT username, csrf, expires_us FROM sessions WHERE token_hash = ?1", [token_hash], |r| {
            Ok(SessionRow { username: r.get(0)?, csrf: r.get(1)?, expires_us: r.get(2)? })
        })
        .optional()?)
    }

    pub fn delete_session(&self, token_hash: &str) -> Result<(), StateError> {
        let c = self.conn()?;
        c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    pub fn delete_sessions_of(&self, username: &str) -> Result<(), StateError> {
        let c = self.conn()?;
        c.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
        Ok(())
    }

    // ---- audit

    /// Appends one entry to the hash-chained audit log.
    pub fn append_audit(
        &self,
        ts_us: i64,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        outcome: &str,
    ) -> Result<(), StateError> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let prev: String = tx
            .query_row("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or_default();
        let hash = chain_hash(&prev, ts_us, actor, action, target, detail, outcome);
        tx.execute(
            "INSERT INTO audit (ts_us, actor, action, target, detail, outcome, prev, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ts_us, actor, action, target, detail, outcome, prev, hash],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Entries newest first, and the total.
    pub fn audit_page(&self, offset: u64, limit: u64) -> Result<(u64, Vec<AuditEntry>), StateError> {
        let c = self.conn()?;
        let total: i64 = c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        let mut st = c.prepare(
            "SELECT seq, ts_us, actor, action, target, detail, outcome, hash FROM audit \
             ORDER BY seq DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = st.query_map(
            params![i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX)],
            |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    ts_us: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: r.get(5)?,
                    outcome: r.get(6)?,
                    hash: r.get(7)?,
                })
            },
        )?;
        Ok((u64::try_from(total).unwrap_or(0), rows.collect::<Result<Vec<_>, _>>()?))
    }

    /// Recomputes the chain; returns the sequence number of the first broken entry, if any.
    pub fn verify_audit_chain(&self) -> Result<Option<i64>, StateError> {
        let c = self.conn()?;
        let mut st =
            c.prepare("SELECT seq, ts_us, actor, action, target, detail, outcome, prev, hash FROM audit ORDER BY seq")?;
        let mut rows = st.query([])?;
        let mut prev = String::new();
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let (ts, actor, action, target, detail, outcome): (i64, String, String, String, String, String) =
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            let stored_prev: String = r.get(7)?;
            let hash: String = r.get(8)?;
            if stored_prev != prev || chain_hash(&prev, ts, &actor, &action, &target, &detail, &outcome) != hash {
                return Ok(Some(seq));
            }
            prev = hash;
        }
        Ok(None)
    }

    /// Runs raw SQL (tests use it to check that the audit log refuses changes).
    pub fn execute_raw(&self, sql: &str) -> Result<usize, StateError> {
        let c = self.conn()?;
        Ok(c.execute(sql, [])?)
    }

    // ---- alert triage

    /// Stored states of these alerts (alerts never triaged are absent).
    pub fn alert_states(&self, ids: &[&str]) -> Result<HashMap<String, AlertState>, StateError> {
        let c = self.conn()?;
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut st = c.prepare_cached(&format!(
                "SELECT alert_id, status, assignee, verdict, incident_id, comment FROM alert_state \
                 WHERE alert_id IN ({marks})"
            ))?;
            let rows = st.query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    AlertState {
                        status: r.get(1)?,
                        assignee: r.get(2)?,
                        verdict: r.get(3)?,
                        incident_id: r.get(4)?,
                        comment: r.get(5)?,
                    },
                ))
            })?;
            for row in rows {
                let (id, s) = row?;
                out.insert(id, s);
            }
        }
        Ok(out)
    }

    pub fn set_alert_state(&self, id: &str, s: &AlertState, now_us: i64, by: &str) -> Result<(), StateError> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO alert_state (alert_id, status, assignee, verdict, incident_id, comment, updated_us, updated_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (alert_id) DO UPDATE SET status = excluded.status, assignee = excluded.assignee, \
             verdict = excluded.verdict, incident_id = excluded.incident_id, comment = excluded.comment, \
             updated_us = excluded.updated_us, updated_by = excluded.updated_by",
            params![id, s.status, s.assignee, s.verdict, s.incident_id, s.comment, now_us, by],
        )?;
        Ok(())
    }

    /// Suppressions as (rule key, segment) pairs.
    pub fn suppressions(&self) -> Result<Vec<(String, String)>, StateError> {
        let c = self.conn()?;
        let mut st = c.prepare_cached("SELECT rule_key, segment FROM suppressions")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn add_suppression(&self, rule_key: &str, segment: &str, now_us: i64, by: &str) -> Result<(), StateError> {
        let c = self.conn()?;
        c.execute(
            "INSERT OR IGNORE INTO suppressions (rule_key, segment, created_us, created_by) VALUES (?1, ?2, ?3, ?4)",
            params![rule_key, segment, now_us, by],
        )?;
        Ok(())
    }
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    let segs: Option<String> = r.get(3)?;
    Ok(UserRow {
        username: r.get(0)?,
        hash: r.get(1)?,
        role: r.get(2)?,
        segments: segs.map(|s| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default()),
    })
}

fn segments_text(s: &Option<Vec<String>>) -> Option<String> {
    s.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_log_is_append_only_and_chained() {
        let db = StateDb::open(None).unwrap();
        db.append_audit(1, "admin", "login", "admin", "", "ok").unwrap();
        db.append_audit(2, "alice", "alert.acknowledge", "a1", "{}", "ok").unwrap();
        assert_eq!(db.verify_audit_chain().unwrap(), None);
        assert!(db.execute_raw("UPDATE audit SET actor = 'mallory'").is_err());
        assert!(db.execute_raw("DELETE FROM audit").is_err());
        let (total, page) = db.audit_page(0, 10).unwrap();
        assert_eq!(total, 2);
        assert_eq!(page[0].actor, "alice");
    }

    #[test]
    fn users_round_trip_with_scope() {
        let db = StateDb::open(None).unwrap();
        let u = UserRow {
            username: "a".into(),
            hash: "h".into(),
            role: "analyst".into(),
            segments: Some(vec!["cpnet".into()]),
        };
        assert!(db.insert_user(&u, 0).unwrap());
        assert!(!db.insert_user(&u, 0).unwrap());
        assert_eq!(db.user("a").unwrap(), Some(u));
        assert!(db.delete_user("a").unwrap());
        assert_eq!(db.user("a").unwrap(), None);
    }
}
